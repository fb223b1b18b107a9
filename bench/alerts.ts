/**
 * Alerts end to end (FI-11, MO-02): the real `gatehouse serve` (built) with its protective DNS
 * resolver, driven by dnsperf at a steady rate (1,000 q/s by default) with a share of names in a
 * category of concern, each a distinct name so each raises its own alert. Measures, for every alert,
 * the time from the resolver receiving the query (the activity record's time, which the alert
 * carries as "when") to the mail server (a local SMTP sink in this process) receiving the mail that
 * names it: p50, p99, max. Allowed names are answered by a local stub upstream.
 *   node --import tsx bench/alerts.ts [--rate 1000] [--seconds 30] [--concern 0.02] [--dialect sqlite|postgres]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { createTestDatabase } from '../test/helpers/databases.js';
import { startStubUpstream } from '../test/helpers/dns-upstream.js';
import { portBelowEphemeral } from '../test/helpers/ports.js';
import { changeOverHttp, createPersonOverHttp, reauthOverHttp, setupAndSignIn, startServerProcess } from '../test/helpers/server-process.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '30' }, concern: { type: 'string', default: '0.02' }, dialect: { type: 'string', default: 'sqlite' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const share = Number(values.concern);

// The SMTP sink: when each alert's mail arrived.
const received = new Map<string, number>();
let mails = 0;
const sink = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _session, callback) {
    let raw = '';
    stream.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    stream.on('end', () => {
      const at = Date.now();
      mails++;
      const text = raw.replace(/=\r?\n/g, '');
      for (const m of text.matchAll(/what: (c\d+\.hate-site\.example)\s+why: [^\n]*\n\s+when: (\S+)/g)) if (!received.has(m[1]!)) received.set(m[1]!, at - new Date(m[2]!).getTime());
      callback();
    });
  },
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const smtpUrl = `smtp://127.0.0.1:${(sink.server.address() as AddressInfo).port}`;

const folder = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-alerts-'));
mkdirSync(path.join(folder, 'ut1', 'agressif'), { recursive: true });
writeFileSync(path.join(folder, 'ut1', 'agressif', 'domains'), 'hate-site.example\n');
writeFileSync(path.join(folder, 'ut1', 'global_usage'), 'NAME:\tagressif\nDEFAULT_TYPE: black\nNAME EN: Agressif\n');

const upstream = await startStubUpstream({ synthesize: true, ttl: 86_400 });
const test = await createTestDatabase(values.dialect as 'sqlite' | 'postgres');
const dnsPort = portBelowEphemeral();
const server = await startServerProcess(
  { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1', GATEHOUSE_LIST_FOLDER: folder, GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: upstream.spec, GATEHOUSE_SMTP_URL: smtpUrl },
);
try {
  const admin = await setupAndSignIn(server);
  await reauthOverHttp(server.url, admin);
  // A new list is a change request (FI-06): a senior leader approves it, as a school would.
  const made = await changeOverHttp(server.url, admin, 'POST', '/api/filtering/lists', { name: 'UT1', format: 'ut1', location: path.join(folder, 'ut1'), kind: 'category', scheduleHours: 24 });
  if (made.state !== 'applied') throw new Error(`list not created: ${made.state}`);
  await createPersonOverHttp(server.url, admin, { username: 'dsafe', displayName: 'Dana Safeguard', role: 'dsl', email: 'dsl@school.example' });
  await new Promise((r) => setTimeout(r, 3000)); // the list compiled into the snapshot

  // The queries: allowed names (answered from the stub, then the cache) and distinct concerning names.
  const total = rate * seconds;
  const lines: string[] = [];
  let concerning = 0;
  const every = Math.max(1, Math.round(1 / share));
  for (let i = 0; i < total; i++) {
    if (i % every === every - 1) lines.push(`c${concerning++}.hate-site.example A`);
    else lines.push(`www${i % 500}.allowed-${i % 37}.example A`);
  }
  const file = path.join(folder, 'queries.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const started = Date.now();
  const perf = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(dnsPort), '-d', file, '-Q', String(rate), '-n', '1', '-l', String(seconds + 5), '-c', '4', '-q', '200'], { maxBuffer: 64 * 1024 * 1024 });
  const sentFor = (Date.now() - started) / 1000;
  // Wait for the last alerts' mail.
  for (let i = 0; i < 120 && received.size < concerning; i++) await new Promise((r) => setTimeout(r, 500));
  const lat = [...received.values()].sort((a, b) => a - b);
  const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)]! : NaN);
  const qps = /Queries per second:\s+([\d.]+)/.exec(perf.stdout)?.[1];
  const lost = /Queries lost:\s+(\d+)/.exec(perf.stdout)?.[1];
  const result = {
    bench: 'alerts',
    regime: `dnsperf -Q ${rate} -c 4 -q 200 for ${seconds} s against the built server's resolver (${values.dialect}), ${(share * 100).toFixed(1)}% distinct names in a category of concern; latency = SMTP sink receipt − resolver receipt`,
    dialect: values.dialect,
    queries: total,
    dnsperfQps: qps ? Number(qps) : null,
    dnsperfLost: lost ? Number(lost) : null,
    seconds: sentFor,
    alertsExpected: concerning,
    alertsMailed: received.size,
    mails,
    p50ms: pct(50),
    p99ms: pct(99),
    maxMs: lat.at(-1) ?? null,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`alerts: ${received.size}/${concerning} alerts mailed in ${mails} mails; request → SMTP sink p50 ${result.p50ms} ms, p99 ${result.p99ms} ms, max ${result.maxMs} ms at ${qps} q/s (lost ${lost})\n`);
} finally {
  await server.stop();
  await test.drop();
  await upstream.close();
  sink.close();
}
