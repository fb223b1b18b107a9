#!/usr/bin/env node
import { createWriteStream, existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { finished } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { exportJsonl } from './audit/export.js';
import { loadSigner, signingKeyPath } from './audit/signing.js';
import { splitNotes } from './audit/checkpoints.js';
import { registerAuditWitnessCommands } from './audit/cli.js';
import { parseHead } from './audit/fingerprint.js';
import { parseVkey } from './audit/witness.js';
import { lookUpUsername } from './audit/username-lookup.js';
import { hmacKeyPath, normaliseUsername } from './core/keyed-hash.js';
import { secretKeyPath, writeNewKeyFile } from './core/secret-box.js';
import { verifyTrail, type VerifyReport } from './audit/verify.js';
import { describeSettings, loadConfig, redactedConfig, type Config, type LoadedConfig } from './core/config.js';
import { systemActor } from './core/context.js';
import { ConfigError, GatehouseError } from './core/errors.js';
import { describeLocal } from './core/local-time.js';
import { addPoolAccounts, allocateGuest, allocateSchema, endVisit, listPool, listVisits, poolAddSchema, sweepGuests } from './guests/service.js';
import { createLogger } from './core/logger.js';
import { ProcessLock } from './core/process-lock.js';
import { groups, loadProfile, type Group } from './core/profile.js';
import { acceptable, checkPassword } from './identity/password-rules.js';
import { profileTable } from './core/profile-describe.js';
import { profileWarnings } from './core/profile-warnings.js';
import { POSTGRES_BACKUP_ADVICE, checkRestorable, inspectBackup, openBackup, restoreSqlite, writeBackup } from './db/backup.js';
import { backupKeyIdOf, readBackupKey } from './db/backup-crypto.js';
import { migrate, openDatabase, pendingMigrations } from './db/database.js';
import { VERSION } from './http/version.js';
import { openRuntime } from './runtime.js';
import { rotateSecretKey, secretKeyUsage } from './identity/secret-key-rotation.js';
import { registerImportCommands } from './directory/import-cli.js';
import { registerScimCommands } from './directory/scim-cli.js';
import { registerDirectoryCommands } from './directory/cli.js';
import { registerFilteringCommands } from './filtering/cli.js';
import { registerDnsCommands } from './filtering/dns/cli.js';
import { dueSecrets, listSecrets } from './registers/shared-secrets.js';
import { formatSecrets } from './registers/shared-secret-cli.js';
import { accessMatrix } from './access/matrix.js';
import { formatMatrix, formatReviewStatus } from './access/print.js';
import { listReviews, reviewStatus } from './access/review.js';

/** A failure the operator caused or can fix: printed as one message, exit code 1 (2 for config). */
class CliError extends Error {}

const cliActor = () => systemActor(`cli:${os.userInfo().username}`);

function config(): LoadedConfig {
  return loadConfig(process.env);
}

const quietLogger = () => createLogger(process.env.GATEHOUSE_LOG_LEVEL ?? 'warn', 2);

const number = (n: number) => n.toLocaleString('en-GB');

/** For repeatable options: each use adds one value. */
const collect = (value: string, all: string[]) => [...all, value];

function printExternal(report: VerifyReport): void {
  const x = report.external;
  if (x.checkpoints === 0 && x.fingerprints === 0) {
    process.stdout.write(
      '    Nothing kept outside the server was compared (--checkpoints, --head): this shows the trail agrees with itself and\n' +
        '    with the server’s own signatures, not that someone holding the database and the signing key left it alone.\n',
    );
    return;
  }
  process.stdout.write(`    Outside the server: ${x.summary}${x.lastSeq ? `, the newest covering event ${number(x.lastSeq)}` : ''}${x.sources.length ? ` (${x.sources.join(', ')})` : ''}.\n`);
  for (const w of x.witnesses) {
    process.stdout.write(
      `    witness ${w.name} (${w.keyId}): ${w.cosigned} checkpoint${w.cosigned === 1 ? '' : 's'} cosigned` +
        `${w.lastSeq ? `, the newest covering event ${number(w.lastSeq)}, cosigned ${w.lastCosignedAt}` : ''}.\n`,
    );
  }
  if (report.ok && (x.lastSeq ?? 0) < report.headSeq) {
    process.stdout.write(
      `    ${number(report.headSeq - (x.lastSeq ?? 0))} newest events are covered by nothing kept outside the server: a rewrite of them by someone holding the database and the signing key would not show.\n`,
    );
  }
}

function printReport(report: VerifyReport): void {
  const rate = report.seconds > 0 ? ` (${number(Math.round(report.events / report.seconds))} events/s)` : '';
  if (report.ok) {
    process.stdout.write(
      `OK: ${number(report.events)} audit events, every link intact${rate}.\n` +
        `    ${report.checkpoints.checked} signed checkpoint${report.checkpoints.checked === 1 ? '' : 's'} verified` +
        `${report.checkpoints.lastSeq ? `, the last covering event ${number(report.checkpoints.lastSeq)}` : ''}` +
        `${report.keys.length ? ` (key${report.keys.length > 1 ? 's' : ''} ${report.keys.join(', ')})` : ''}.\n` +
        `    head: event ${report.headSeq}, hash ${report.headHash}\n`,
    );
    if (report.checkpoints.lastSeq !== null && report.checkpoints.lastSeq < report.headSeq) {
      process.stdout.write(`    ${number(report.headSeq - report.checkpoints.lastSeq)} newest events are not yet covered by a checkpoint.\n`);
    }
    printExternal(report);
    return;
  }
  process.stdout.write(`BROKEN at sequence ${report.firstBrokenSeq}: ${report.problems[0]!.message}\n`);
  for (const p of report.problems.slice(1)) process.stdout.write(`  also at ${p.seq}: ${p.message}\n`);
  process.stdout.write(`Checked ${number(report.events)} events and ${report.checkpoints.checked} checkpoints.\n`);
  printExternal(report);
}

async function withRuntime<T>(cfg: Config, signing: 'load' | 'none' | 'create', work: (rt: Awaited<ReturnType<typeof openRuntime>>) => Promise<T>): Promise<T> {
  const runtime = await openRuntime(cfg, { logger: quietLogger(), signing });
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

function dateOption(value: string, name: string): string {
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw new CliError(`${name}: "${value}" is not a date; use 2026-09-01 or 2026-09-01T08:00:00Z`);
  }
  return d.toISOString();
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('give the password on standard input, e.g. from a file or a pipe (it is never taken as an argument, which other users could see)');
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

export function buildCli(): Command {
  const program = new Command()
    .name('gatehouse')
    .description('Gatehouse: the school’s technical-security policy, enforced, recorded and shown.')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('start the server: console, API and scheduled work (what `npm start` runs)')
    .action(async () => {
      const { config: cfg } = config();
      const logger = createLogger(cfg.logLevel);
      // Loaded here, not at the top: the web server and every route module are most of the
      // command's start-up time, and only `serve` needs them.
      const { startServer } = await import('./http/server.js');
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(cfg, { logger });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new CliError(`${cfg.host}:${cfg.port} is already in use; stop what is using it or set GATEHOUSE_PORT.`);
        if (code === 'EACCES') throw new CliError(`Not allowed to listen on ${cfg.host}:${cfg.port}; choose a port above 1023 or grant the capability.`);
        if (/already running with the data folder/.test((error as Error).message)) throw new CliError((error as Error).message);
        throw error;
      }
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          server.stop(signal).then(
            () => process.exit(0),
            (error) => {
              logger.error({ err: error }, 'shutdown failed');
              process.exit(1);
            },
          );
        });
      }
    });

  program
    .command('config')
    .description('print the effective configuration, secrets redacted, with where each value came from')
    .option('--json', 'print JSON')
    .option('--describe', 'list every setting with its variable and meaning')
    .action((options: { json?: boolean; describe?: boolean }) => {
      if (options.describe) {
        for (const s of describeSettings()) {
          process.stdout.write(`${s.env}${s.secret ? ' (secret)' : ''}\n    ${s.description}${s.default !== undefined ? ` Default: ${String(s.default)}.` : ''}\n`);
        }
        return;
      }
      const loaded = config();
      const shown = redactedConfig(loaded.config);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      const settings = new Map(describeSettings().map((s) => [s.key, s]));
      if (loaded.file) process.stdout.write(`# config file: ${loaded.file}\n`);
      for (const [key, value] of Object.entries(shown)) {
        const source = loaded.sources[key as keyof typeof loaded.sources] ?? 'unset';
        process.stdout.write(`${key.padEnd(24)} ${value === null ? '-' : String(value)}   (${source}; ${settings.get(key as never)?.env})\n`);
      }
    });

  program
    .command('migrate')
    .description('apply pending database migrations (serve does this at start)')
    .option('--status', 'only list pending migrations')
    .action(async (options: { status?: boolean }) => {
      const { config: cfg } = config();
      const db = await openDatabase({ databaseUrl: cfg.databaseUrl, sqliteSynchronous: cfg.sqliteSynchronous });
      try {
        if (options.status) {
          const pending = await pendingMigrations(db);
          process.stdout.write(pending.length ? `pending: ${pending.join(', ')}\n` : 'up to date\n');
          return;
        }
        const applied = await migrate(db);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date\n');
      } finally {
        await db.close();
      }
    });

  const profile = program.command('profile').description('the school’s policy profile');

  profile
    .command('check <file>')
    .description('validate a profile (a file, or a shipped name: ncsc, p0…p4) and print its rules and warnings; exit 1 if invalid')
    .option('--json', 'print JSON')
    .action((file: string, options: { json?: boolean }) => {
      const loaded = loadProfile(file);
      const warnings = profileWarnings(loaded);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ valid: true, profile: loaded, warnings }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${file}: valid — "${loaded.name}"${loaded.lineage.length > 1 ? ` (extends ${loaded.lineage.slice(0, -1).join(' → ')})` : ''}\n`);
      if (loaded.source) process.stdout.write(`Source: ${loaded.source}\n`);
      process.stdout.write(`\n${profileTable(loaded)}\n\n`);
      if (warnings.length === 0) {
        process.stdout.write('No warnings: every setting follows NCSC and NIST guidance.\n');
        return;
      }
      process.stdout.write(`${warnings.length} warning${warnings.length === 1 ? '' : 's'} (allowed, but against NCSC/NIST guidance):\n`);
      for (const w of warnings) {
        process.stdout.write(`  ! ${w.setting} (${w.groups.join(', ')})\n    ${w.message}\n    Guidance: ${w.guidance}\n`);
      }
    });

  program
    .command('password')
    .description('passwords under the school’s profile')
    .command('check')
    .description('check a password (read from standard input) against a profile’s rules; print each rule as JSON; exit 0 only if acceptable')
    .requiredOption('--profile <profile>', 'a shipped profile (ncsc, p0…p4) or a profile file')
    .addOption(new Option('--group <group>', 'whose rules').choices([...groups]).default('staff'))
    .option('--username <username>', 'the person’s username')
    .option('--name <name>', 'the person’s full name')
    .option('--detail <value...>', 'other recorded personal details (e-mail, date of birth)')
    .option('--current-stdin', 'standard input holds the current password on its first line, the candidate on the second')
    .action(async (options: { profile: string; group: Group; username?: string; name?: string; detail?: string[]; currentStdin?: boolean }) => {
      const loaded = loadProfile(options.profile);
      const input = await readStdin();
      const lines = input.replace(/\r?\n$/, '').split(/\r?\n/);
      const [current, candidate] = options.currentStdin ? [lines[0] ?? '', lines[1] ?? ''] : [null, lines[0] ?? ''];
      if (options.currentStdin && lines.length < 2) throw new CliError('--current-stdin: give the current password on the first line and the candidate on the second');
      const rules = checkPassword(loaded.groups[options.group], candidate, {
        username: options.username ?? null,
        names: options.name ? [options.name] : [],
        personal: options.detail ?? [],
        current,
      });
      const ok = acceptable(rules);
      process.stdout.write(`${JSON.stringify({ acceptable: ok, profile: loaded.name, group: options.group, rules }, null, 2)}\n`);
      if (!ok) process.exitCode = 1;
    });

  const guests = program.command('guests').description('the guest desk (AC-05): the pool of guest accounts, visits, and the sweep that ends them');

  guests
    .command('pool')
    .description('list the guest-account pool, or add accounts to it')
    .option('--add <count>', 'add this many guest accounts (guest-01, guest-02 … numbered on; no password, disabled while free)')
    .action(async (options: { add?: string }) => {
      const { config: cfg } = config();
      await withRuntime(cfg, 'none', async (rt) => {
        if (options.add !== undefined) {
          const parsed = poolAddSchema.safeParse({ count: Number(options.add) });
          if (!parsed.success || !/^\d+$/.test(options.add)) throw new CliError(`--add: ${parsed.error?.issues[0]?.message ?? 'must be a whole number'}`);
          const created = await addPoolAccounts(rt, cliActor(), parsed.data, { ip: null, requestId: null });
          process.stdout.write(`Added ${created.length} guest account${created.length === 1 ? '' : 's'}: ${created.join(', ')}\n`);
        }
        const pool = await listPool(rt);
        if (pool.length === 0) {
          process.stdout.write('The pool is empty: add guest accounts with `gatehouse guests pool --add 5`.\n');
          return;
        }
        for (const p of pool) {
          const v = p.visit;
          const what = p.state === 'free' ? 'free' : `${p.state === 'allocated' ? 'allocated' : 'past its end (awaiting the sweep)'} to ${v!.visitorName} until ${describeLocal(new Date(v!.endsAt), rt.profile.timeZone)}`;
          process.stdout.write(`${p.username.padEnd(10)} ${what}\n`);
        }
        process.stdout.write(`${pool.filter((p) => p.state === 'free').length} of ${pool.length} free.\n`);
      });
    });

  guests
    .command('visits')
    .description('list today’s visits (in progress, and every one that started today)')
    .addOption(new Option('--scope <scope>', 'which visits').choices(['today', 'open', 'all']).default('today'))
    .option('--json', 'print JSON')
    .action(async (options: { scope: 'today' | 'open' | 'all'; json?: boolean }) => {
      const { config: cfg } = config();
      await withRuntime(cfg, 'none', async (rt) => {
        const visits = await listVisits(rt, options.scope);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(visits, null, 2)}\n`);
          return;
        }
        if (visits.length === 0) process.stdout.write('No visits.\n');
        for (const v of visits) {
          const who = v.wipedAt ? '(details wiped)' : `${v.visitorName}${v.organisation ? ` (${v.organisation})` : ''}, with ${v.host}`;
          const when = v.endedAt ? `ended ${describeLocal(new Date(v.endedAt), rt.profile.timeZone)}${v.endReason === 'expired' ? ' (time up)' : ''}` : `until ${describeLocal(new Date(v.endsAt), rt.profile.timeZone)}`;
          process.stdout.write(`${v.id}  ${v.username.padEnd(10)} ${who}; ${when}\n`);
        }
      });
    });

  guests
    .command('allocate')
    .description('allocate a free guest account to a named visitor and print the slip (the password is shown once)')
    .requiredOption('--visitor <name>', 'the visitor’s full name')
    .option('--organisation <name>', 'who they are from')
    .requiredOption('--purpose <text>', 'why they are here')
    .requiredOption('--host <name>', 'the member of staff they are with')
    .requiredOption('--until <time>', 'expected end: a time today such as 15:30, or a date and time with its zone; at the latest the end of the school day')
    .option('--account <username>', 'a particular free guest account (otherwise the lowest-numbered free one)')
    .action(async (options: { visitor: string; organisation?: string; purpose: string; host: string; until: string; account?: string }) => {
      const { config: cfg } = config();
      await withRuntime(cfg, 'none', async (rt) => {
        let accountId: string | undefined;
        if (options.account) {
          const row = await rt.db.kysely.selectFrom('account').select('id').where('username', '=', options.account.trim().toLowerCase()).where('role', '=', 'guest').executeTakeFirst();
          if (!row) throw new CliError(`--account: there is no guest account "${options.account}"`);
          accountId = row.id;
        }
        const parsed = allocateSchema.safeParse({ visitorName: options.visitor, organisation: options.organisation, purpose: options.purpose, host: options.host, expectedEnd: options.until, accountId });
        if (!parsed.success) {
          const flags: Record<string, string> = { visitorName: '--visitor', organisation: '--organisation', purpose: '--purpose', host: '--host', expectedEnd: '--until' };
          throw new CliError(parsed.error.issues.map((i) => `${flags[String(i.path[0])] ?? String(i.path[0])}: ${i.message}`).join('; '));
        }
        const { visit, slip } = await allocateGuest(rt, cliActor(), parsed.data, { ip: null, requestId: null });
        process.stdout.write(
          `${slip.school} — guest access\n\n  Visitor:     ${slip.visitorName}${slip.organisation ? ` (${slip.organisation})` : ''}\n  Username:    ${slip.username}\n  Password:    ${slip.password}\n` +
            `  Valid until: ${describeLocal(new Date(slip.validUntil), slip.timeZone)}\n\nThe password is shown only now. Visit id: ${visit.id}\n`,
        );
      });
    });

  guests
    .command('end <visit-id>')
    .description('end a visit now: the guest’s sessions end and the account is disabled and freed')
    .action(async (id: string) => {
      const { config: cfg } = config();
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new CliError(`"${id}" is not a visit id (see \`gatehouse guests visits\`)`);
      const visit = await withRuntime(cfg, 'none', (rt) => endVisit(rt, cliActor(), id, { ip: null, requestId: null }));
      process.stdout.write(`Ended the visit of ${visit.visitorName ?? 'the visitor'} on ${visit.username}; the account is free again.\n`);
    });

  guests
    .command('sweep')
    .description('end every visit whose time is up and wipe visitor details past the retention period (the server does this every minute)')
    .action(async () => {
      const { config: cfg } = config();
      const result = await withRuntime(cfg, 'none', (rt) => sweepGuests(rt, cliActor()));
      process.stdout.write(`Ended ${result.ended} visit${result.ended === 1 ? '' : 's'} past their end; wiped the details of ${result.wiped} visit${result.wiped === 1 ? '' : 's'} past the retention period.\n`);
    });

  const audit = program.command('audit').description('the tamper-evident audit trail');

  audit
    .command('verify')
    .description('check every link of the hash chain, every signed checkpoint, and every checkpoint or fingerprint kept outside the server; exit 1 and name the first broken sequence number if any')
    .option('--checkpoints <file>', 'also compare the trail with the checkpoints in this file: the checkpoint log kept on other storage, a witness log, a saved fingerprint e-mail (repeat for several; - reads standard input)', collect, [] as string[])
    .option('--witness-key <key>', 'check the cosignatures of this witness (its public key, name+keyid+base64) on the checkpoints given; repeat for several witnesses', collect, [] as string[])
    .option('--head <SEQ:HEX>', 'a fingerprint written down earlier (event number and the first hex digits of its hash, e.g. "1234:9f3a 1c0b 77de 42a0"); repeatable', collect, [] as string[])
    .option('--trusted-key <id...>', 'require checkpoints to be signed by these key ids')
    .option('--json', 'print the report as JSON')
    .action(async (options: { checkpoints: string[]; witnessKey: string[]; head: string[]; trustedKey?: string[]; json?: boolean }) => {
      const { config: cfg } = config();
      const sources = options.checkpoints.map((file) => {
        try {
          return { name: file === '-' ? 'standard input' : file, notes: splitNotes(readFileSync(file === '-' ? 0 : file, 'utf8')) };
        } catch (error) {
          throw new CliError(`--checkpoints: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
        }
      });
      for (const source of sources) {
        if (source.notes.length === 0) throw new CliError(`--checkpoints: ${source.name} holds no checkpoint notes`);
      }
      const witnessKeys = options.witnessKey.map((vkey) => {
        try {
          return parseVkey(vkey);
        } catch (error) {
          throw new CliError(`--witness-key: ${(error as Error).message}`);
        }
      });
      const heads = options.head.map((text) => {
        try {
          return parseHead(text);
        } catch (error) {
          throw new CliError(`--head: ${(error as Error).message}`);
        }
      });
      const report = await withRuntime(cfg, 'none', async (rt) => {
        const progress = process.stderr.isTTY && !options.json;
        const result = await verifyTrail(rt.db, {
          sources,
          witnessKeys,
          heads,
          trustedKeys: options.trustedKey,
          onProgress: progress ? (n) => process.stderr.write(`\r  checked ${number(n)} events…`) : undefined,
        });
        if (progress) process.stderr.write('\r\x1b[K');
        return result;
      });
      if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else printReport(report);
      if (!report.ok) process.exitCode = 1;
    });

  audit
    .command('export')
    .description('write audit events as JSON lines, oldest first (for the local authority or police); the export is itself audited')
    .option('--since <date>', 'from this date or time (inclusive)')
    .option('--until <date>', 'up to this date or time (exclusive)')
    .option('--after <seq>', 'only events after this sequence number (for a witness: the events since the checkpoint it cosigned last)')
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl']).default('jsonl'))
    .option('--output <file>', 'write to this file instead of standard output')
    .option('--reason <text>', 'why the export is made (recorded in the trail)')
    .action(async (options: { since?: string; until?: string; after?: string; output?: string; reason?: string }) => {
      const { config: cfg } = config();
      const since = options.since ? dateOption(options.since, '--since') : undefined;
      const until = options.until ? dateOption(options.until, '--until') : undefined;
      const afterSeq = options.after === undefined ? undefined : Number(options.after);
      if (afterSeq !== undefined && (!Number.isSafeInteger(afterSeq) || afterSeq < 0)) throw new CliError(`--after: "${options.after}" is not a sequence number`);
      const count = await withRuntime(cfg, 'none', async (rt) => {
        await rt.trail.transaction(cliActor(), (ctx) =>
          ctx.audit.record({
            action: 'audit.exported',
            target: 'audit_trail',
            severity: 'notice',
            details: { since: since ?? null, until: until ?? null, ...(afterSeq !== undefined ? { afterSeq } : {}), reason: options.reason ?? null, via: 'cli', output: options.output ?? 'stdout' },
          }),
        );
        const out = options.output ? createWriteStream(options.output, { mode: 0o600 }) : process.stdout;
        const n = await exportJsonl(rt.db, out, { since, until, afterSeq });
        if (options.output) {
          out.end();
          await finished(out);
        }
        return n;
      });
      process.stderr.write(`exported ${number(count)} events${options.output ? ` to ${options.output}` : ''}\n`);
    });

  audit
    .command('lookup-username <username>')
    .description('was this username tried? Usernames that match no account are kept in the trail only as a keyed hash (people type passwords there); this computes the same hash and lists the events that carry it. Exit 1 when none do')
    .option('--json', 'print JSON')
    .action(async (username: string, options: { json?: boolean }) => {
      const { config: cfg } = config();
      const result = await withRuntime(cfg, 'none', (rt) => lookUpUsername(rt.db, rt.keyedHash, username));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else if (result.matches.length === 0) {
        process.stdout.write(`No event records an attempt with a username that matched no account and was "${normaliseUsername(username)}".\n`);
      } else {
        process.stdout.write(`${result.matches.length} event${result.matches.length === 1 ? '' : 's'} with the unknown username "${normaliseUsername(username)}" (hash ${result.usernameHash}):\n`);
        for (const m of result.matches) process.stdout.write(`  ${m.seq}  ${m.at}  ${m.action}${m.reason ? `  ${m.reason}` : ''}${m.ip ? `  from ${m.ip}` : ''}\n`);
      }
      if (result.matches.length === 0) process.exitCode = 1;
    });

  audit
    .command('key')
    .description('show this server’s checkpoint signing key (public half and id) and the keys on record')
    .action(async () => {
      const { config: cfg } = config();
      const signer = loadSigner(cfg.dataDir);
      if (signer) {
        process.stdout.write(`This server signs checkpoints with key ${signer.keyId} (Ed25519).\nPrivate key: ${signingKeyPath(cfg.dataDir)} (keep it there; back it up separately)\n\n${signer.publicKeyPem}\n`);
      } else {
        process.stdout.write(`No signing key yet: it is created at ${signingKeyPath(cfg.dataDir)} when the server first starts.\n`);
      }
      await withRuntime(cfg, 'none', async (rt) => {
        const keys = await rt.db.kysely.selectFrom('audit_key').selectAll().orderBy('created_at').execute();
        if (keys.length) process.stdout.write(`Keys on record:\n${keys.map((k) => `  ${k.key_id}  since ${k.created_at}`).join('\n')}\n`);
      });
    });

  audit
    .command('checkpoint')
    .description('sign a checkpoint of the current head now (the server also does this on its own)')
    .action(async () => {
      const { config: cfg } = config();
      if (!loadSigner(cfg.dataDir)) throw new CliError(`No signing key at ${signingKeyPath(cfg.dataDir)}: start the server once to create it.`);
      const cp = await withRuntime(cfg, 'load', (rt) => rt.trail.checkpointNow());
      process.stdout.write(cp ? cp.note : 'The head is already covered by a checkpoint.\n');
    });

  registerAuditWitnessCommands(audit);

  const secrets = program.command('secrets').description('the shared-secrets register (PW-12): where each secret is kept, who knows it, when it is next due to change — never the secret');

  secrets
    .command('list')
    .description('every shared secret in the register, soonest due first')
    .option('--all', 'include retired secrets')
    .option('--json', 'print JSON')
    .action(async (options: { all?: boolean; json?: boolean }) => {
      const { config: cfg } = config();
      await withRuntime(cfg, 'none', async (rt) => {
        const list = await listSecrets(rt, { includeRetired: options.all === true });
        process.stdout.write(options.json ? `${JSON.stringify({ secrets: list }, null, 2)}\n` : formatSecrets(rt.profile, list, 'The register is empty: record shared secrets in the console (Shared secrets).'));
      });
    });

  secrets
    .command('due')
    .description('secrets overdue, due within the next days, or flagged because someone who knew them left')
    .option('--days <days>', 'how far ahead to look', '14')
    .option('--json', 'print JSON')
    .action(async (options: { days: string; json?: boolean }) => {
      if (!/^\d{1,4}$/.test(options.days)) throw new CliError(`--days: "${options.days}" is not a whole number of days`);
      const { config: cfg } = config();
      await withRuntime(cfg, 'none', async (rt) => {
        const list = await dueSecrets(rt, Number(options.days));
        process.stdout.write(options.json ? `${JSON.stringify({ secrets: list }, null, 2)}\n` : formatSecrets(rt.profile, list, `Nothing is due in the next ${options.days} days and nothing is flagged.`));
      });
    });

  const secretKey = program.command('secret-key').description('the key that seals authenticator-app secrets in the database (secret.key); see docs/security-keys.md');

  secretKey
    .command('rotate')
    .description('re-seal every stored authenticator secret under a new secret.key in one audited transaction; the old key is kept as secret.key.old-<date> (0600) until you delete it')
    .option('--force', 'rotate even though a server is running with this data folder (restart it straight after)')
    .action(async (options: { force?: boolean }) => {
      const { config: cfg } = config();
      const running = ProcessLock.holder(cfg.dataDir);
      if (running && !options.force) {
        throw new CliError(
          `A Gatehouse server (process ${running}) is running with this data folder. It holds the old key in memory: until it restarts, authenticator codes are refused and any enrolment it completes is sealed under the old key. Stop it first (and every other node on this database), or pass --force and restart it straight after.`,
        );
      }
      const report = await withRuntime(cfg, 'none', (rt) => rotateSecretKey(rt, cliActor(), { whileRunning: running !== undefined }));
      process.stdout.write(
        report.resumed
          ? `Finished an interrupted rotation: the database was already sealed under key ${report.newKeyId}, now in ${report.keyFile}.\n`
          : `Rotated ${report.keyFile}: key ${report.oldKeyId} → ${report.newKeyId}. Re-sealed ${number(report.totpSecrets)} authenticator secret${report.totpSecrets === 1 ? '' : 's'} and ${number(report.pendingEnrolments)} pending enrolment${report.pendingEnrolments === 1 ? '' : 's'}${report.unreadable ? `; ${number(report.unreadable)} value${report.unreadable === 1 ? '' : 's'} did not open under the old key either and ${report.unreadable === 1 ? 'was' : 'were'} left as ${report.unreadable === 1 ? 'it was' : 'they were'}` : ''}.\n`,
      );
      process.stdout.write(
        `The old key is kept in ${report.oldKeyFile} (owner-only); nothing reads it. Delete it once the new key is in your key backup${cfg.databaseUrl.startsWith('postgres') ? ', and copy the new secret.key to every other node of this database before starting them' : ''}.\n`,
      );
      if (running) process.stdout.write(`Restart the server (process ${running}) now.\n`);
    });

  secretKey
    .command('status')
    .description('this node’s key id and how many stored values are sealed under it (on several nodes: each should hold the key the database uses)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { config: cfg } = config();
      const usage = await withRuntime(cfg, 'none', (rt) => secretKeyUsage(rt));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(usage, null, 2)}\n`);
      } else {
        process.stdout.write(`${usage.keyFile}: key ${usage.keyId}\n`);
        const entries = Object.entries(usage.sealedUnder);
        if (entries.length === 0) process.stdout.write('No sealed values are stored yet.\n');
        for (const [id, n] of entries) process.stdout.write(`  ${number(n)} sealed under ${id}${id === usage.keyId ? ' (this key)' : ' — NOT this node’s key: these do not open here'}\n`);
      }
      if (Object.keys(usage.sealedUnder).some((id) => id !== usage.keyId)) process.exitCode = 1;
    });

  program
    .command('backup <file>')
    .description('write a consistent copy of the live SQLite database to FILE (safe while the server runs); encrypted with --key-file')
    .option('--force', 'replace FILE if it exists')
    .option('--key-file <file>', 'encrypt the backup (AES-256-GCM) with this backup key (make one with `gatehouse backup-key FILE`; never secret.key)')
    .action(async (file: string, options: { force?: boolean; keyFile?: string }) => {
      const { config: cfg } = config();
      if (!cfg.databaseUrl.startsWith('sqlite:')) throw new CliError(POSTGRES_BACKUP_ADVICE);
      const key = options.keyFile ? readBackupKey(options.keyFile, secretKeyPath(cfg.dataDir, cfg.secretKeyFile)) : null;
      const summary = await writeBackup(cfg.databaseUrl, cfg.dataDir, file, { overwrite: options.force === true, key });
      await withRuntime(cfg, 'none', (rt) =>
        rt.trail.transaction(cliActor(), (ctx) =>
          ctx.audit.record({
            action: 'platform.backup_created',
            target: 'database',
            details: { file: summary.file, bytes: summary.bytes, sha256: summary.sha256, auditEvents: summary.auditEvents, encryptedWithKey: summary.encryptedWithKey ?? null },
          }),
        ),
      );
      process.stdout.write(`Backed up to ${summary.file}: ${number(summary.bytes)} bytes, ${number(summary.auditEvents)} audit events, sha256 ${summary.sha256}${summary.encryptedWithKey ? `, encrypted with backup key ${summary.encryptedWithKey}` : ''}\n`);
      process.stdout.write(`Keep the key files backed up too, separately: the audit signing key (${signingKeyPath(cfg.dataDir)}), ${secretKeyPath(cfg.dataDir, cfg.secretKeyFile)} and ${hmacKeyPath(cfg.dataDir, cfg.hmacKeyFile)}${options.keyFile ? `, and the backup key (${options.keyFile}) somewhere other than the backups` : ''} (docs/security-keys.md).\n`);
    });

  program
    .command('backup-key <file>')
    .description('make a new backup key (256 bits, owner-only) for encrypted backups; keep it apart from the backups and from the data folder')
    .action((file: string) => {
      const { config: cfg } = config();
      const target = path.resolve(file);
      if (target === secretKeyPath(cfg.dataDir, cfg.secretKeyFile)) throw new CliError(`${target} is the server's own secret.key; choose another file.`);
      if (existsSync(target)) throw new CliError(`${target} already exists; a backup key is never overwritten (the backups made with it would be lost).`);
      const key = writeNewKeyFile(target);
      process.stdout.write(`Made backup key ${backupKeyIdOf(key)} in ${target} (0600). Keep a copy off the server (a password manager or a sealed envelope): without it, no encrypted backup can be restored.\n`);
    });

  program
    .command('decrypt-backup <file> <out>')
    .description('decrypt an encrypted backup into OUT (0600), after checking it was not altered and is a Gatehouse database')
    .requiredOption('--key-file <file>', 'the backup key it was made with')
    .option('--force', 'replace OUT if it exists')
    .action(async (file: string, out: string, options: { keyFile: string; force?: boolean }) => {
      const { config: cfg } = config();
      const key = readBackupKey(options.keyFile, secretKeyPath(cfg.dataDir, cfg.secretKeyFile));
      const target = path.resolve(out);
      if (existsSync(target) && !options.force) throw new CliError(`${target} already exists. Choose a new name, or pass --force to replace it.`);
      const opened = await openBackup(file, key, path.dirname(target));
      try {
        if (!opened.encryptedWithKey) throw new CliError(`${file} is not encrypted; there is nothing to decrypt.`);
        const summary = inspectBackup(opened.plainFile);
        renameSync(opened.plainFile, target);
        process.stdout.write(`Decrypted ${file} into ${target}: ${number(summary.bytes)} bytes, ${number(summary.auditEvents)} audit events, sha256 ${summary.sha256}\n`);
      } finally {
        opened.done();
      }
    });

  program
    .command('restore <file>')
    .description('replace the SQLite database with a backup, after checking the backup and its audit trail (--key-file for an encrypted one)')
    .option('--force', 'restore even though a server is running on this database')
    .option('--key-file <file>', 'the backup key an encrypted backup was made with')
    .action(async (file: string, options: { force?: boolean; keyFile?: string }) => {
      const { config: cfg } = config();
      if (!cfg.databaseUrl.startsWith('sqlite:')) throw new CliError(POSTGRES_BACKUP_ADVICE);
      const running = ProcessLock.holder(cfg.dataDir);
      if (running && !options.force) {
        throw new CliError(
          `A Gatehouse server (process ${running}) is running on this database. Stop it first, or pass --force to restore underneath it (its sessions and any writes since the backup are replaced).`,
        );
      }
      const key = options.keyFile ? readBackupKey(options.keyFile, secretKeyPath(cfg.dataDir, cfg.secretKeyFile)) : null;
      const opened = await openBackup(file, key, cfg.dataDir);
      try {
        const summary = inspectBackup(opened.plainFile);
        checkRestorable({ ...summary, file });
        const backupDb = await openDatabase({ databaseUrl: `sqlite:${summary.file}`, readonly: true });
        let report: VerifyReport;
        try {
          report = await verifyTrail(backupDb);
        } finally {
          await backupDb.close();
        }
        if (!report.ok) {
          throw new CliError(`Refusing to restore ${file}: its audit trail is broken at sequence ${report.firstBrokenSeq} (${report.problems[0]!.message}).`);
        }
        await restoreSqlite(cfg.databaseUrl, summary.file);
        await withRuntime(cfg, 'none', async (rt) => {
          await rt.trail.transaction(cliActor(), (ctx) =>
            ctx.audit.record({
              action: 'platform.restored',
              target: 'database',
              severity: 'high',
              details: { file: path.resolve(file), sha256: summary.sha256, auditEvents: summary.auditEvents, whileRunning: running !== undefined, encryptedWithKey: opened.encryptedWithKey },
            }),
          );
        });
        process.stdout.write(`Restored ${path.resolve(file)}: ${number(summary.auditEvents)} audit events, chain verified${opened.encryptedWithKey ? `, decrypted with backup key ${opened.encryptedWithKey}` : ''}.\n`);
      } finally {
        opened.done();
      }
    });

  const access = program.command('access').description('the access-rights matrix and the annual access review (AC-01, AC-02)');

  access
    .command('matrix')
    .description('print who can do what: each role in Gatehouse, each role and group in the school’s systems, and the object-level rules')
    .option('--json', 'print the matrix as JSON')
    .action(async (options: { json?: boolean }) => {
      const { config: cfg } = config();
      const matrix = await withRuntime(cfg, 'none', (rt) => accessMatrix(rt.db.kysely));
      process.stdout.write(options.json ? `${JSON.stringify(matrix, null, 2)}\n` : formatMatrix(matrix));
    });

  access
    .command('review')
    .description('the annual access review')
    .command('status')
    .description('when the access review was last signed off, when it is next due, and any review in progress')
    .option('--check', 'exit with code 1 when the review is overdue (for monitoring)')
    .action(async (options: { check?: boolean }) => {
      const { config: cfg } = config();
      const { status, reviews } = await withRuntime(cfg, 'none', async (rt) => ({ status: await reviewStatus(rt), reviews: await listReviews(rt.db.kysely) }));
      process.stdout.write(formatReviewStatus(status, reviews));
      if (options.check && status.overdue) process.exitCode = 1;
    });

  program
    .command('squid-helper')
    .description('Squid external ACL helper (FI-01, MO-01): answers Squid from the UT1 lists and a policy file; see docs/squid.md')
    .option('--ut1 <folder>', 'a UT1 list folder (categories)')
    .option('--policy <file>', 'the policy file (YAML or JSON): lists, policies, clients, users')
    .option('--unknown-policy <id>', 'the policy for clients the file does not list')
    .option('--activity <file>', 'append every decision to this file as JSON lines')
    .option('--check', 'load the files, print what was compiled, and exit')
    .action(async (options: { ut1?: string; policy?: string; unknownPolicy?: string; activity?: string; check?: boolean }) => {
      // bin/gatehouse.js takes a faster path to the same code; this one serves `--help` and tests.
      const { runSquidHelper } = await import('./filtering/squid/cli.js');
      process.exitCode = await runSquidHelper(options);
    });

  program
    .command('proxy')
    .description('the filtering web proxy (FI-03, FI-13, AS-08, MO-01) from the UT1 lists and a policy file; see docs/proxy.md')
    .option('--ut1 <folder>', 'a UT1 list folder (categories)')
    .option('--policy <file>', 'the policy file (YAML or JSON): lists, policies, clients, users')
    .option('--unknown-policy <id>', 'the policy for clients the file does not list')
    .option('--activity <file>', 'append every decision to this file as JSON lines')
    .option('--port <n>', 'listening port (default GATEHOUSE_PROXY_PORT, else 3128)')
    .option('--host <address>', 'listening address (default GATEHOUSE_PROXY_HOST, else GATEHOUSE_HOST)')
    .option('--console-url <url>', 'the Gatehouse console, for the block page links (default GATEHOUSE_PUBLIC_URL)')
    .option('--forwarded-for <mode>', 'X-Forwarded-For: delete, append or transparent')
    .option('--connect-ports <list>', 'ports CONNECT may reach, e.g. 443,80 (853 is always refused)')
    .option('--client-networks <list>', 'networks whose devices may use the proxy (default GATEHOUSE_FILTER_CLIENT_NETWORKS)')
    .option('--allowed-destinations <list>', 'networks reachable although otherwise refused (loopback, link-local, this server)')
    .option('--refused-destinations <list>', 'networks refused besides the built-in ones, e.g. the private ranges')
    .option('--max-connections <n>', 'client connections at once, per process (default 4096)')
    .option('--max-connections-per-client <n>', 'client connections at once per device address (default 256)')
    .option('--max-header-bytes <n>', 'largest request head, else 431 (default 16384)')
    .option('--head-timeout <seconds>', 'time for a whole request head, else 408 (default 10)')
    .option('--idle-timeout <seconds>', 'time a client connection may sit idle (default 60)')
    .option('--workers <n>', 'processes sharing the port')
    .option('--check', 'load the files, print what was compiled, and exit')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { runProxyCli } = await import('./filtering/proxy/cli.js');
      process.exitCode = await runProxyCli(options);
    });

  registerImportCommands(program);
  registerScimCommands(program);
  registerDirectoryCommands(program);
  registerFilteringCommands(program);
  registerDnsCommands(program);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof CliError || error instanceof GatehouseError) {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`gatehouse: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  }
}
