import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JsonlActivityWriter, loadStandalone, StandaloneError, type Standalone } from '../standalone.js';
import { SquidHelper, serveSquidHelper, squidEncode } from './helper.js';

/**
 * The `gatehouse squid-helper` process. Squid starts several of these and waits for them, so this
 * module's import graph is kept small (no database, HTTP server, commander or zod): `bin/gatehouse.js`
 * loads it directly, and `gatehouse squid-helper` in src/main.ts reaches it by a dynamic import.
 * Requests on standard input, answers on standard output, messages on standard error (Squid's
 * cache.log). SIGHUP reloads the files without dropping a request.
 */

export interface SquidHelperCliOptions {
  ut1?: string;
  policy?: string;
  unknownPolicy?: string;
  activity?: string;
  check?: boolean;
}

export const SQUID_HELPER_USAGE = `Usage: gatehouse squid-helper [--ut1 FOLDER] [--policy FILE] [--unknown-policy ID] [--activity FILE] [--check]

Squid external ACL helper (docs/squid.md). In squid.conf:
  external_acl_type gatehouse ttl=60 negative_ttl=60 concurrency=50 children-max=2 children-startup=2 %SRC %>ru %un %METHOD /usr/local/bin/gatehouse squid-helper --policy /etc/gatehouse/filter.yaml
  acl gatehouse external gatehouse
  http_access deny !gatehouse

Options:
  --ut1 FOLDER          a UT1 list folder (categories); overrides the policy file's ut1
  --policy FILE         the policy file (YAML or JSON): lists, policies, clients, users
  --unknown-policy ID   the policy for clients the file does not list
  --activity FILE       append every decision to FILE as JSON lines (MO-01)
  --check               load the files, print what was compiled, and exit
`;

const tag = `gatehouse squid-helper[${process.pid}]`;
const say = (message: string) => process.stderr.write(`${tag}: ${message}\n`);

/** Runs the helper until standard input ends; returns the exit code. */
export async function runSquidHelper(options: SquidHelperCliOptions): Promise<number> {
  const load = () => loadStandalone({ ut1: options.ut1 ?? null, policyFile: options.policy ?? null, unknownPolicy: options.unknownPolicy ?? null, warn: (m) => say(`warning: ${m}`) });
  let loaded: Standalone;
  try {
    loaded = await load();
  } catch (error) {
    const message = error instanceof StandaloneError ? error.message : (error as Error).stack ?? String(error);
    say(`cannot start: ${message}`);
    if (options.check || process.stdin.isTTY) return 1;
    // Squid would restart a helper that exits, then stop altogether. Instead every request is
    // refused (BH: Squid denies it) with the reason, in the cache log and on the error page.
    const refusal = `BH message=${squidEncode(`Gatehouse filter not loaded: ${message}`)}`;
    await serveLines((line) => {
      const channel = /^(\d{1,9})(?:[ \t]|$)/.exec(line)?.[1];
      return channel === undefined ? refusal : `${channel} ${refusal}`;
    });
    return 1;
  }
  const summary = (s: Standalone) => `${s.policies.length} polic${s.policies.length === 1 ? 'y' : 'ies'} (${s.policies.join(', ')}; unknown clients: ${s.unknownPolicy}), ${s.categories} categories and lists, ${s.domains.toLocaleString('en-GB')} names, loaded in ${Math.round(s.loadMs)} ms`;
  if (options.check) {
    process.stdout.write(`OK: ${summary(loaded)}\n`);
    return 0;
  }
  say(`ready: ${summary(loaded)}`);

  const writer = options.activity ? new JsonlActivityWriter(options.activity, (e) => say(`cannot write activity to ${options.activity}: ${e.message}`)) : null;
  if (writer) loaded.point.onRecord((a) => writer.add(a));
  const point = loaded.point;
  const helper = new SquidHelper(point, { warn: say });

  let reloading = false;
  const onHup = () => {
    if (reloading) return;
    reloading = true;
    load().then(
      (next) => {
        // Same policies: swap the snapshot under the identities already handed out.
        try {
          point.replace(next.snapshot);
          say(`reloaded: ${summary(next)}`);
        } catch (error) {
          say(`reload refused (the policies changed: restart the helper, e.g. squid -k reconfigure): ${(error as Error).message}`);
        }
      },
      (error) => say(`reload failed, keeping what was loaded: ${(error as Error).message}`),
    ).finally(() => (reloading = false));
  };
  process.on('SIGHUP', onHup);
  await serveSquidHelper(helper, process.stdin, process.stdout);
  process.off('SIGHUP', onHup);
  writer?.close();
  const { requests, allowed, blocked, broken } = helper.stats;
  if (requests > 0) say(`input closed after ${requests} requests: ${allowed} allowed, ${blocked} blocked, ${broken} unreadable`);
  return 0;
}

function serveLines(answer: (line: string) => string): Promise<void> {
  return new Promise((resolve) => {
    let pending = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      if (lines.length) process.stdout.write(lines.map((l) => `${answer(l)}\n`).join(''));
    });
    process.stdin.on('end', () => {
      if (pending) process.stdout.write(`${answer(pending)}\n`);
      resolve();
    });
    process.stdin.on('error', () => resolve());
  });
}

function isEntry(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/** `gatehouse squid-helper …` from bin/gatehouse.js (arguments after the command name). */
export async function squidHelperMain(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ut1: { type: 'string' },
        policy: { type: 'string' },
        'unknown-policy': { type: 'string' },
        activity: { type: 'string' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    process.stderr.write(`gatehouse squid-helper: ${(error as Error).message}\n\n${SQUID_HELPER_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(SQUID_HELPER_USAGE);
    return 0;
  }
  return runSquidHelper({ ut1: v.ut1, policy: v.policy, unknownPolicy: v['unknown-policy'], activity: v.activity, check: v.check });
}

// Run directly (`node --import tsx src/filtering/squid/cli.ts …`, as the tests do).
if (isEntry()) {
  process.stdout.on('error', () => process.exit(0));
  process.exitCode = await squidHelperMain(process.argv.slice(2));
}
