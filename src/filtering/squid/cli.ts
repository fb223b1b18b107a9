import { parseArgs } from 'node:util';
import {
  describeStandalone,
  isEntryModule,
  loadStandaloneFiles,
  recordActivityTo,
  reloadOnSighup,
  StandaloneError,
  STANDALONE_ARGS,
  type Standalone,
  type StandaloneFileOptions,
} from '../standalone.js';
import { SquidHelper, serveSquidHelper, squidEncode } from './helper.js';

/**
 * The `gatehouse squid-helper` process. Squid starts several of these and waits for them, so this
 * module's import graph is kept small (no database, HTTP server, commander or zod): `bin/gatehouse.js`
 * loads it directly, and `gatehouse squid-helper` in src/main.ts reaches it by a dynamic import.
 * Requests on standard input, answers on standard output, messages on standard error (Squid's
 * cache.log). SIGHUP reloads the files without dropping a request.
 */

export type SquidHelperCliOptions = StandaloneFileOptions;

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
  const load = () => loadStandaloneFiles(options, say);
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
  if (options.check) {
    process.stdout.write(`OK: ${describeStandalone(loaded)}\n`);
    return 0;
  }
  say(`ready: ${describeStandalone(loaded)}`);

  const writer = recordActivityTo(loaded.point, options.activity, say);
  const helper = new SquidHelper(loaded.point, { warn: say });
  const stopReloading = reloadOnSighup(load, loaded.point, say, 'restart the helper, e.g. squid -k reconfigure');
  await serveSquidHelper(helper, process.stdin, process.stdout);
  stopReloading();
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

/** `gatehouse squid-helper …` from bin/gatehouse.js (arguments after the command name). */
export async function squidHelperMain(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: STANDALONE_ARGS,
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
if (isEntryModule(import.meta.url)) {
  process.stdout.on('error', () => process.exit(0));
  process.exitCode = await squidHelperMain(process.argv.slice(2));
}
