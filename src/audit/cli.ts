import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { cliActor } from '../core/cli-runtime.js';
import { loadConfig } from '../core/config.js';
import { GatehouseError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { openRuntime } from '../runtime.js';
import { emailFingerprint, headCheckpoint } from './fingerprint.js';
import { loadSigner, signingKeyPath } from './signing.js';
import { WitnessRefusal, createWitnessKey, loadWitnessKey, witnessCheckpoint } from './witness.js';

/**
 * `gatehouse audit witness`, `audit witness-key create|show` and `audit fingerprint`: the evidence
 * kept outside the server (docs/audit.md, "Witnesses outside the server"). The witness commands
 * run on another machine and need no database, configuration or server key: only the witness's
 * own key, its log, and the server's public key.
 */

const fail = (message: string) => new GatehouseError('cli', 1, message);

function readText(file: string, what: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (error) {
    throw fail(`${what}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

async function fetchCheckpoint(base: string): Promise<string> {
  const url = new URL('/api/audit/checkpoint', base);
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    throw fail(`--url: cannot reach ${url.href} (${(error as Error).message})`);
  }
  if (response.status === 401 || response.status === 403) {
    throw fail(`--url: ${url.href} needs a signed-in user; set GATEHOUSE_AUDIT_CHECKPOINT_PUBLIC=true on the server, or give the note with --checkpoint (the checkpoint log file, or \`gatehouse audit checkpoint\` output)`);
  }
  if (!response.ok) throw fail(`--url: ${url.href} answered ${response.status}`);
  const body = (await response.json()) as { note?: unknown };
  if (typeof body.note !== 'string') throw fail(`--url: ${url.href} did not answer with a checkpoint`);
  return body.note;
}

export function registerAuditWitnessCommands(audit: Command): void {
  const witnessKey = audit.command('witness-key').description('the offline key a witness cosigns checkpoints with (never kept on the server)');

  witnessKey
    .command('create')
    .description('make a witness key pair: the private key in a file only you can read, the public key printed for verifiers')
    .requiredOption('--name <name>', 'the witness’s name, e.g. governors-clerk.springfield (letters, digits, . _ / -)')
    .requiredOption('--out <file>', 'where to write the private key (never overwritten)')
    .action((options: { name: string; out: string }) => {
      if (existsSync(options.out)) throw fail(`${options.out} already exists; a witness key is never overwritten`);
      let signer;
      try {
        signer = createWitnessKey(options.out, options.name);
      } catch (error) {
        throw fail((error as Error).message);
      }
      process.stdout.write(
        `Witness key ${signer.name}, key id ${signer.keyId}.\n` +
          `Private key: ${options.out} (readable only by you). Keep it on this machine, never on the Gatehouse server, and back it up.\n\n` +
          `Public key (give it to whoever checks the trail: gatehouse audit verify --witness-key …):\n\n  ${signer.vkey}\n`,
      );
    });

  witnessKey
    .command('show')
    .description('print the public key of a witness key file')
    .requiredOption('--key <file>', 'the witness’s private key file')
    .action((options: { key: string }) => {
      try {
        const signer = loadWitnessKey(options.key);
        process.stdout.write(`${signer.vkey}\n`);
      } catch (error) {
        throw fail((error as Error).message);
      }
    });

  audit
    .command('witness')
    .description('cosign the server’s newest checkpoint with an offline witness key, after checking it extends the one cosigned before; appends to the witness log')
    .requiredOption('--key <file>', 'the witness’s private key (from `audit witness-key create`)')
    .requiredOption('--log <file>', 'the witness’s own log: cosigned checkpoints, appended to, kept on this machine')
    .requiredOption('--server-key <file>', 'the server’s public key (PEM, as `gatehouse audit key` prints it); repeat for a key change', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--checkpoint <file>', 'the checkpoint note to cosign: a file holding it (the server’s checkpoint log: the newest is taken), or - for standard input')
    .option('--url <url>', 'fetch the newest checkpoint from the server at this address instead')
    .option('--export <file>', 'an export of the events since the last cosigned checkpoint (`gatehouse audit export --after <seq>`): every event in between is checked to chain')
    .action(async (options: { key: string; log: string; serverKey: string[]; checkpoint?: string; url?: string; export?: string }) => {
      if (!options.checkpoint === !options.url) throw fail('give the checkpoint with --checkpoint <file> (or - for standard input) or --url <server address>, one of the two');
      let signer;
      try {
        signer = loadWitnessKey(options.key);
      } catch (error) {
        throw fail(`--key: ${(error as Error).message}`);
      }
      const serverKeys = options.serverKey.map((file) => {
        const text = readText(file, '--server-key');
        const pem = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/.exec(text)?.[0];
        if (!pem) throw fail(`--server-key: ${file} holds no public key (PEM "BEGIN PUBLIC KEY" lines, as \`gatehouse audit key\` prints)`);
        return `${pem}\n`;
      });
      const noteText = options.url ? await fetchCheckpoint(options.url) : readText(options.checkpoint!, '--checkpoint');
      const exportText = options.export ? readText(options.export, '--export') : undefined;
      try {
        const result = witnessCheckpoint({ noteText, logFile: options.log, signer, serverKeys, exportText, clock: systemClock });
        process.stdout.write(`${result.message}\n`);
        if (result.cosigned) process.stdout.write(`Witness log: ${options.log}. Fingerprint: ${result.note.seq}:${result.note.hash.slice(0, 16)}\n`);
      } catch (error) {
        if (error instanceof WitnessRefusal) throw fail(`NOT COSIGNED: ${error.message}`);
        throw fail((error as Error).message);
      }
    });

  audit
    .command('fingerprint')
    .description('the trail’s fingerprint (event number and head hash of a fresh signed checkpoint) for the governors to keep; --email sends it to the headteacher and the responsible governor now')
    .option('--email', 'e-mail it now to the headteacher and the responsible governor (School > Named roles)')
    .option('--json', 'print JSON')
    .action(async (options: { email?: boolean; json?: boolean }) => {
      const { config } = loadConfig(process.env);
      const signing = loadSigner(config.dataDir) ? 'load' : 'none';
      const rt = await openRuntime(config, { logger: createLogger(process.env.GATEHOUSE_LOG_LEVEL ?? 'warn', 2), signing });
      try {
        const cp = await headCheckpoint(rt, { sign: true });
        if (!cp) throw fail(`No checkpoint has been signed yet, and there is no signing key at ${signingKeyPath(config.dataDir)} to sign one: start the server once.`);
        const mail = options.email ? await emailFingerprint(rt, cliActor(), { scheduled: false }) : undefined;
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ seq: cp.seq, hash: cp.hash, at: cp.at, keyId: cp.keyId, fingerprint: cp.fingerprint.text, grouped: cp.fingerprint.grouped, note: cp.note, email: mail ?? null }, null, 2)}\n`);
        } else {
          process.stdout.write(
            `Event:        ${cp.seq.toLocaleString('en-GB')}\nFingerprint:  ${cp.fingerprint.grouped}\nSigned:       ${cp.at} (key ${cp.keyId})\n` +
              `Check later:  gatehouse audit verify --head "${cp.fingerprint.text}"\n`,
          );
          if (mail) {
            for (const to of mail.sent) process.stdout.write(`E-mailed to ${to}.\n`);
            for (const f of mail.failed) process.stdout.write(`Not sent to ${f.to}: ${f.error}\n`);
          }
        }
        if (mail && mail.failed.length > 0) process.exitCode = 1;
      } finally {
        await rt.close();
      }
    });
}
