/**
 * The protective DNS resolver side by side with dnsmasq and unbound under dnsperf, in one run on
 * this machine: each loaded with the same UT1 names as blocks, each forwarding to the same local
 * upstream, the same query file (half blocked names, half allowed names the upstream answers),
 * caches warmed first. Prints queries/s, lost queries and latency (p50/p99 at a fixed rate), with
 * medians over rounds and the ratios Gatehouse/dnsmasq and Gatehouse/unbound.
 *
 *   bash bench/dns.sh [--names 10000] [--seconds 15] [--rounds 3] [--workers 2] [--threads 2]
 *                     [--clients 8] [--outstanding 200] [--rate N] [--low-rate 20000] [--only gatehouse,gatehouse-dgram,dnsmasq,unbound] [--ut1 DIR]
 *                     [--upstream-ttl SECONDS] [--upstream stub|dnsmasq] [--regime deep] [--no-fixed-rate]
 *
 * --upstream-ttl: the TTL the upstream gives allowed names (default 1 day: after warming, every
 *   allowed name is a cache hit). 0 makes every allowed query go upstream (nothing can be cached).
 * --upstream: the local upstream: "stub" (a Node stub, test/helpers/dns-upstream.ts; counts what it is
 *   asked) or "dnsmasq" (`address=/#/192.0.2.1`, `local-ttl=TTL`: fast enough not to be the limit when
 *   every allowed query reaches it). Default: dnsmasq for TTL 0, the stub otherwise.
 * --outstanding / --clients: dnsperf's -q (queries in flight at most) and -c.
 * --regime deep: the issue-10 regime, `--upstream-ttl 0 --upstream dnsmasq --clients 20 --outstanding 2000 --no-fixed-rate`.
 *
 * Latency: every throughput run is dnsperf -v (one line per query with its latency, written to a
 * file), from which p50/p99/p99.9 are computed; dnsperf's own average is reported too. Every
 * contender pays the same for the -v output.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileSnapshot } from '../src/filtering/engine/snapshot.js';
import { ut1Categories } from '../src/filtering/engine/ut1.js';
import { startStubUpstream } from '../test/helpers/dns-upstream.js';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    clients: { type: 'string', default: '8' },
    outstanding: { type: 'string', default: '200' },
    rate: { type: 'string' },
    'latency-seconds': { type: 'string', default: '10' },
    'low-rate': { type: 'string', default: '20000' },
    only: { type: 'string' },
    ut1: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'upstream-ttl': { type: 'string' },
    upstream: { type: 'string' },
    regime: { type: 'string' },
    'no-fixed-rate': { type: 'boolean', default: false },
  },
});
if (values.regime !== undefined) {
  if (values.regime !== 'deep') throw new Error(`--regime: only "deep" is known`);
  values['upstream-ttl'] ??= '0';
  values.upstream ??= 'dnsmasq';
  // The figures: dnsperf -c 20 -q 2000 (defaults given explicitly still win).
  if (!process.argv.includes('--clients')) values.clients = '20';
  if (!process.argv.includes('--outstanding')) values.outstanding = '2000';
  if (!process.argv.includes('--fixed-rate')) values['no-fixed-rate'] = true;
}
const upstreamTtl = Number(values['upstream-ttl'] ?? 86_400);
const upstreamKind = values.upstream ?? (upstreamTtl === 0 ? 'dnsmasq' : 'stub');
if (upstreamKind !== 'stub' && upstreamKind !== 'dnsmasq') throw new Error('--upstream is stub or dnsmasq');
const regime = `dnsperf -c ${values.clients} -q ${values.outstanding}, upstream ${upstreamKind} TTL ${upstreamTtl}`;
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..');
const ut1Folder = values.ut1 ?? [process.env.GATEHOUSE_TEST_UT1, path.resolve(ROOT, '..', 'shared', 'data', 'ut1'), '/work/shared/data/ut1'].find((p) => p && spawnSync('test', ['-f', path.join(p, 'global_usage')]).status === 0);
if (!ut1Folder) throw new Error('UT1 lists not found: give --ut1 DIR');
const perHalf = Number(values.names);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const workers = Number(values.workers);
const threads = Number(values.threads);
const only = values.only ? values.only.split(',') : ['gatehouse', 'dnsmasq', 'unbound'];
const log = (s: string) => process.stderr.write(`${s}\n`);

for (const tool of ['dnsperf', 'dnsmasq', 'unbound', 'dig']) {
  const found = spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status === 0;
  if (!found) throw new Error(`${tool} is not installed: apt-get install -y dnsmasq unbound dnsperf bind9-dnsutils`);
}

// ---- the lists and the queries -------------------------------------------------------------------------
const WHITE = ['liste_blanche', 'liste_bu', 'exceptions_liste_bu'];
const { categories } = ut1Categories(ut1Folder);
const blockedCategories = categories.filter((c) => !WHITE.includes(c.id) && (c.domains as string[]).length > 0);
const blockedNames = [...new Set(blockedCategories.flatMap((c) => c.domains as string[]))].filter((n) => !/^\d+\.\d+\.\d+\.\d+$/.test(n) && !n.includes(':'));
const snapshot = compileSnapshot({
  categories: blockedCategories,
  timeZone: 'Europe/London',
  policies: [{ id: 'bench', name: 'Benchmark', blockedCategories: blockedCategories.map((c) => c.id), schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
});
let seed = 42;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const letters = 'abcdefghijklmnopqrstuvwxyz';
const label = (n: number) => Array.from({ length: n }, () => letters[Math.floor(rnd() * 26)]).join('');
const queries: string[] = [];
const now = Date.now();
for (let i = 0; i < perHalf; i++) {
  const listed = blockedNames[Math.floor(rnd() * blockedNames.length)]!;
  queries.push(`${rnd() < 0.3 ? 'www.' : ''}${listed} A`);
  let allowed: string;
  do allowed = `${label(6)}${i}.${label(8)}.net`;
  while (snapshot.decide(allowed, 0, now).action !== 'allow');
  queries.push(`${allowed} A`);
}
for (let i = queries.length - 1; i > 0; i--) {
  const j = Math.floor(rnd() * (i + 1));
  [queries[i], queries[j]] = [queries[j]!, queries[i]!];
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-dns-bench-'));
const queryFile = path.join(dir, 'queries.txt');
writeFileSync(queryFile, `${queries.join('\n')}\n`);
log(`UT1: ${blockedCategories.length} categories, ${blockedNames.length.toLocaleString('en-GB')} names blocked; ${queries.length.toLocaleString('en-GB')} queries (half blocked) in ${queryFile}`);

// ---- processes -------------------------------------------------------------------------------------------------
const children: ChildProcess[] = [];
function start(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  child.on('exit', (code, signal) => {
    if (!stopping) log(`${command} exited (${signal ?? code}): ${output.slice(-2000)}`);
  });
  children.push(child);
  return child;
}
let stopping = false;
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function sh(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

/** Waits until something answers on the port; stops at once if the server's process has exited (its message is above). */
async function waitForAnswer(port: number, timeoutMs: number, child?: ChildProcess): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`the server on port ${port} exited (${child.exitCode}) before it answered`);
    const out = await sh('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=1', 'ready-check.net']);
    if (/status: (NOERROR|NXDOMAIN)/.test(out)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`nothing answered on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** CPU seconds used so far by a process and its children (Gatehouse's workers), from /proc. */
function cpuSecondsOf(pid: number): number {
  const pids = [pid, ...spawnSync('pgrep', ['-P', String(pid)]).stdout.toString().split('\n').filter(Boolean).map(Number)];
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone
    }
  }
  return ticks / 100; // USER_HZ
}

function rssOf(pid: number): number {
  // The process and its children (Gatehouse's workers), in MB.
  const out = spawnSync('sh', ['-c', `ps -o rss= --pid ${pid} --ppid ${pid}`]).stdout.toString();
  return Math.round(out.split('\n').filter(Boolean).reduce((n, l) => n + Number(l.trim()), 0) / 1024);
}

// Below the kernel's ephemeral range (32768 and up on Linux), so a client socket of this run cannot hold a server's port.
let nextPort = 20_000 + Math.floor(Math.random() * 1000) * 10;
const freshPort = () => (nextPort += 10);

// ---- dnsperf ----------------------------------------------------------------------------------------------------
interface PerfResult {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  avgMs: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
  codes: string;
}
function parsePerf(out: string): PerfResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const latencies: number[] = [];
  for (const m of out.matchAll(/^> [A-Z]+ \S+ \S+ ([\d.]+)$/gm)) latencies.push(Number(m[1]) * 1000);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? +latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(3) : null);
  return {
    qps: Math.round(num(/Queries per second:\s+([\d.]+)/)),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgMs: +(num(/Average Latency \(s\):\s+([\d.]+)/) * 1000).toFixed(3),
    p50Ms: pct(50),
    p99Ms: pct(99),
    p999Ms: pct(99.9),
    maxMs: latencies.length ? +latencies.at(-1)!.toFixed(3) : null,
    codes: /Response codes:\s+(.*)/.exec(out)?.[1]?.trim() ?? '',
  };
}
async function dnsperf(port: number, extra: string[]): Promise<PerfResult> {
  const out = await sh('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, ...extra]);
  return parsePerf(out);
}
/** dnsperf -v (a line per query with its latency) into a file, so printing costs as little as it can. */
async function dnsperfLatency(port: number, extra: string[]): Promise<PerfResult> {
  const file = path.join(dir, 'latency.txt');
  const fd = openSync(file, 'w');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-v', ...extra], { stdio: ['ignore', fd, fd] });
    child.on('error', reject);
    child.on('close', () => resolve());
  });
  closeSync(fd);
  const result = parsePerf(readFileSync(file, 'utf8'));
  unlinkSync(file);
  return result;
}

/** The local upstream every contender forwards to; `queries` counts what it was asked (null: dnsmasq does not say). */
interface BenchUpstream {
  port: number;
  spec: string;
  queries: { length: number } | null;
  close(): Promise<void>;
}
async function startUpstream(): Promise<BenchUpstream> {
  if (upstreamKind === 'stub') {
    const stub = await startStubUpstream({ synthesize: true, ttl: upstreamTtl });
    log(`upstream (Node stub, synthesized A records, TTL ${upstreamTtl} s) on ${stub.spec}`);
    return { port: stub.port, spec: stub.spec, queries: stub.queries, close: () => stub.close() };
  }
  const port = freshPort();
  const conf = path.join(dir, 'upstream-dnsmasq.conf');
  writeFileSync(conf, [`port=${port}`, 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts', 'no-poll', 'address=/#/192.0.2.1', `local-ttl=${upstreamTtl}`, 'pid-file=', 'user=root'].join('\n'));
  const child = start('/usr/sbin/dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`]);
  await waitForAnswer(port, 60_000, child);
  log(`upstream (dnsmasq, address=/#/192.0.2.1, TTL ${upstreamTtl} s) on 127.0.0.1:${port}`);
  return { port, spec: `127.0.0.1:${port}`, queries: null, close: () => stop(child) };
}

// ---- the contenders ----------------------------------------------------------------------------------------------
interface Contender {
  name: string;
  port: number;
  child: ChildProcess | null;
  startMs: number;
  rssMB: number;
  throughput: PerfResult[];
  latency: PerfResult | null;
  latencyLow: PerfResult | null;
  upstreamDuringRuns: number;
  /** completed queries per CPU-second of the server's processes, each round */
  perCpuSecond: number[];
}

async function main(): Promise<void> {
  const upstream = await startUpstream();
  const upstreamSpec = `127.0.0.1#${upstream.port}`;

  /** Gatehouse with batched UDP (native/udp), or with node:dgram (GATEHOUSE_DNS_NATIVE=0) to see what batching buys. */
  async function startGatehouse(udp: 'batched' | 'dgram'): Promise<Contender> {
    const port = freshPort();
    writeFileSync(path.join(dir, 'policies.yaml'), `unknownPolicy: bench\npolicies:\n  - id: bench\n    name: Benchmark\n    blockedCategories: [${blockedCategories.map((c) => c.id).join(', ')}]\n    safeSearch: { search: 'off', youtube: 'off' }\n`);
    const started = Date.now();
    const env = udp === 'dgram' ? { ...process.env, GATEHOUSE_DNS_NATIVE: '0' } : process.env;
    let said = '';
    const child = start(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'dns', '--policies', path.join(dir, 'policies.yaml'), '--ut1', ut1Folder!, '--upstream', upstream.spec, '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--cache-entries', '200000'], env);
    child.stdout?.on('data', (chunk: Buffer) => (said += chunk.toString()));
    await waitForAnswer(port, 180_000, child);
    // The start-up line names the transport that answers: a benchmark of the wrong one would mislead.
    const deadline = Date.now() + 10_000;
    while (!said.includes('answering on') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const wanted = udp === 'batched' ? 'UDP batched' : 'UDP through node:dgram';
    if (!said.includes(wanted)) throw new Error(`gatehouse did not say "${wanted}" when it started: ${said.trim() || '(nothing)'}`);
    return { name: `gatehouse (${workers} workers, ${udp === 'batched' ? 'batched UDP' : 'node:dgram'})`, port, child, startMs: Date.now() - started, rssMB: 0, throughput: [], latency: null, latencyLow: null, upstreamDuringRuns: 0, perCpuSecond: [] };
  }

  const setups: Record<string, () => Promise<Contender>> = {
    gatehouse: () => startGatehouse('batched'),
    'gatehouse-dgram': () => startGatehouse('dgram'),
    async dnsmasq() {
      const port = freshPort();
      const conf = path.join(dir, 'dnsmasq.conf');
      writeFileSync(conf, [`port=${port}`, 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts', 'no-poll', 'no-negcache', `server=${upstreamSpec}`, 'cache-size=100000', 'dns-forward-max=1000', 'pid-file=', 'user=root', ...blockedNames.map((n) => `address=/${n}/`)].join('\n'));
      const started = Date.now();
      const child = start('/usr/sbin/dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`]);
      await waitForAnswer(port, 180_000, child);
      return { name: 'dnsmasq', port, child, startMs: Date.now() - started, rssMB: 0, throughput: [], latency: null, latencyLow: null, upstreamDuringRuns: 0, perCpuSecond: [] };
    },
    async unbound() {
      const port = freshPort();
      const conf = path.join(dir, 'unbound.conf');
      writeFileSync(
        conf,
        [
          'server:',
          '  interface: 127.0.0.1',
          `  port: ${port}`,
          `  num-threads: ${threads}`,
          '  so-reuseport: yes',
          '  do-daemonize: no',
          '  use-syslog: no',
          '  logfile: ""',
          '  verbosity: 0',
          '  username: ""',
          '  chroot: ""',
          `  directory: "${dir}"`,
          `  pidfile: "${path.join(dir, 'unbound.pid')}"`,
          '  access-control: 127.0.0.0/8 allow',
          '  do-not-query-localhost: no',
          '  do-ip6: no',
          '  module-config: "iterator"',
          '  qname-minimisation: no',
          '  msg-cache-size: 64m',
          '  rrset-cache-size: 128m',
          '  num-queries-per-thread: 4096',
          '  outgoing-range: 8192',
          ...blockedNames.map((n) => `  local-zone: "${n}." always_nxdomain`),
          'forward-zone:',
          '  name: "."',
          `  forward-addr: 127.0.0.1@${upstream.port}`,
          'remote-control:',
          '  control-enable: no',
        ].join('\n'),
      );
      const check = spawnSync('unbound-checkconf', [conf]);
      if (check.status !== 0) throw new Error(`unbound-checkconf: ${check.stdout}${check.stderr}`);
      const started = Date.now();
      const child = start('/usr/sbin/unbound', ['-d', '-c', conf]);
      await waitForAnswer(port, 180_000, child);
      return { name: `unbound (${threads} threads)`, port, child, startMs: Date.now() - started, rssMB: 0, throughput: [], latency: null, latencyLow: null, upstreamDuringRuns: 0, perCpuSecond: [] };
    },
  };

  // The upstream's own capacity, so it is known not to be the bottleneck (it answers only cache misses).
  const upstreamCapacity = await dnsperf(upstream.port, ['-l', '5', '-c', '4', '-q', '100']);
  log(`upstream alone: ${upstreamCapacity.qps} queries/s (lost ${upstreamCapacity.lost})`);

  const contenders: Contender[] = [];
  try {
    for (const key of only) {
      log(`starting ${key}…`);
      const c = await setups[key]!();
      // Warm the caches: every name through, gently, until a pass asks the upstream (almost) nothing
      // (Gatehouse's workers each keep their own cache and share the queries at random).
      for (let pass = 0; pass < 12; pass++) {
        const before = upstream.queries?.length ?? 0;
        await dnsperf(c.port, ['-n', '1', '-c', '4', '-q', '50']);
        if (upstream.queries === null || upstreamTtl === 0) break; // nothing to warm: every allowed query goes upstream
        if (pass > 0 && upstream.queries.length - before <= queries.length / 2000) break;
      }
      c.rssMB = rssOf(c.child!.pid!);
      log(`${c.name}: answering after ${(c.startMs / 1000).toFixed(1)} s, ${c.rssMB} MB`);
      contenders.push(c);
    }
    // Throughput: rounds, the contenders in turn each round.
    const flags = ['-l', String(seconds), '-c', values.clients!, '-q', values.outstanding!];
    for (let r = 1; r <= rounds; r++) {
      for (const c of contenders) {
        const before = upstream.queries?.length ?? 0;
        const cpuBefore = cpuSecondsOf(c.child!.pid!);
        const result = await dnsperfLatency(c.port, flags);
        const cpu = cpuSecondsOf(c.child!.pid!) - cpuBefore;
        c.upstreamDuringRuns += (upstream.queries?.length ?? 0) - before;
        c.throughput.push(result);
        c.perCpuSecond.push(Math.round(result.completed / cpu));
        log(`round ${r} ${c.name}: ${result.qps} q/s, lost ${result.lost}, avg ${result.avgMs} ms, p99 ${result.p99Ms} ms, ${cpu.toFixed(1)} CPU s (${Math.round(result.completed / cpu)} queries per CPU-second) (${result.codes})`);
      }
    }
    // Latency at fixed rates: a busy school's (--low-rate) and the aim's (unbound's median, or --rate).
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const unbound = contenders.find((c) => c.name.startsWith('unbound'));
    const rate = values.rate ? Number(values.rate) : unbound ? median(unbound.throughput.map((t) => t.qps)) : 40_000;
    const lowRate = Number(values['low-rate']);
    for (const c of values['no-fixed-rate'] ? [] : contenders) {
      for (const [which, q] of [['low', lowRate], ['aim', rate]] as const) {
        const result = await dnsperfLatency(c.port, ['-l', values['latency-seconds']!, '-c', values.clients!, '-q', values.outstanding!, '-Q', String(q)]);
        if (which === 'low') c.latencyLow = result;
        else c.latency = result;
        log(`${c.name} at ${q} q/s: achieved ${result.qps}, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, lost ${result.lost} of ${result.sent}`);
      }
    }

    const summary = contenders.map((c) => ({
      name: c.name,
      startSeconds: +(c.startMs / 1000).toFixed(1),
      rssMB: c.rssMB,
      qpsMedian: median(c.throughput.map((t) => t.qps)),
      qpsRounds: c.throughput.map((t) => t.qps),
      lostRounds: c.throughput.map((t) => t.lost),
      avgLatencyMsMedian: median(c.throughput.map((t) => t.avgMs)),
      p99MsMedian: median(c.throughput.map((t) => t.p99Ms ?? NaN)),
      p99MsRounds: c.throughput.map((t) => t.p99Ms),
      queriesPerCpuSecondMedian: median(c.perCpuSecond),
      queriesPerCpuSecondRounds: c.perCpuSecond,
      upstreamQueriesDuringRuns: upstream.queries === null ? null : c.upstreamDuringRuns,
      atLowRate: c.latencyLow && { rate: lowRate, achievedQps: c.latencyLow.qps, sent: c.latencyLow.sent, lost: c.latencyLow.lost, p50Ms: c.latencyLow.p50Ms, p99Ms: c.latencyLow.p99Ms, p999Ms: c.latencyLow.p999Ms, maxMs: c.latencyLow.maxMs },
      atFixedRate: c.latency && { rate, achievedQps: c.latency.qps, sent: c.latency.sent, lost: c.latency.lost, p50Ms: c.latency.p50Ms, p99Ms: c.latency.p99Ms, p999Ms: c.latency.p999Ms, maxMs: c.latency.maxMs },
    }));
    const by = (prefix: string) => summary.find((s) => s.name.startsWith(prefix));
    const g = summary.find((s) => s.name.includes('batched')) ?? by('gatehouse');
    const dgram = summary.find((s) => s.name.includes('node:dgram'));
    const ratio = (other?: { qpsMedian: number }) => (g && other ? +(g.qpsMedian / other.qpsMedian).toFixed(2) : null);
    const cpuRatio = (other?: { queriesPerCpuSecondMedian: number }) => (g && other ? +(g.queriesPerCpuSecondMedian / other.queriesPerCpuSecondMedian).toFixed(2) : null);
    const result = {
      benchmark: 'dns',
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
      setup: { regime, upstream: upstreamKind, upstreamTtl, ut1Categories: blockedCategories.length, blockedNames: blockedNames.length, queries: queries.length, seconds, rounds, dnsperf: flags.join(' '), upstreamAloneQps: upstreamCapacity.qps },
      results: summary,
      ratios: {
        gatehouseOverDnsmasq: ratio(by('dnsmasq')),
        gatehouseOverUnbound: ratio(by('unbound')),
        perCpuSecondGatehouseOverDnsmasq: cpuRatio(by('dnsmasq')),
        perCpuSecondGatehouseOverUnbound: cpuRatio(by('unbound')),
        batchedOverDgram: g !== dgram ? ratio(dgram) : null,
        perCpuSecondBatchedOverDgram: g !== dgram ? cpuRatio(dgram) : null,
      },
    };
    log('');
    log('');
    log(`${'name'.padEnd(36)} ${'q/s median'.padStart(10)} ${'lost'.padStart(5)} | at ${lowRate} q/s: ${'p50'.padStart(6)} ${'p99'.padStart(6)} ${'lost'.padStart(5)} | at ${rate} q/s: ${'q/s'.padStart(6)} ${'p50'.padStart(6)} ${'p99'.padStart(6)} ${'lost'.padStart(5)} | RSS MB`);
    for (const s of summary) {
      const lo = s.atLowRate;
      const hi = s.atFixedRate;
      // '-' where a fixed-rate run was not part of this regime (e.g. --regime deep).
      const show = (v: number | null | undefined) => (v === undefined || v === null ? '-' : String(v));
      log(`${s.name.padEnd(36)} ${String(s.qpsMedian).padStart(10)} ${String(s.lostRounds.reduce((a, b) => a + b, 0)).padStart(5)} | ${''.padStart(String(lowRate).length + 8)}${show(lo?.p50Ms).padStart(6)} ${show(lo?.p99Ms).padStart(6)} ${show(lo?.lost).padStart(5)} | ${''.padStart(String(rate).length + 8)}${show(hi?.achievedQps).padStart(6)} ${show(hi?.p50Ms).padStart(6)} ${show(hi?.p99Ms).padStart(6)} ${show(hi?.lost).padStart(5)} | ${s.rssMB}`);
    }
    for (const s of summary) log(`${s.name.padEnd(36)} ${s.queriesPerCpuSecondMedian} queries per CPU-second (median)`);
    // The side-by-side table (markdown): medians over the rounds of the throughput runs.
    log('');
    log(`regime: ${regime}; ${queries.length} queries, half blocked (UT1), ${rounds} rounds of ${seconds} s; medians`);
    log('| resolver | q/s | avg ms | p99 ms | lost | × unbound (q/s) |');
    log('|---|---:|---:|---:|---:|---:|');
    const ubQps = by('unbound')?.qpsMedian;
    for (const s of summary) log(`| ${s.name} | ${s.qpsMedian} | ${s.avgLatencyMsMedian} | ${s.p99MsMedian} | ${s.lostRounds.reduce((a, b) => a + b, 0)} | ${ubQps ? (s.qpsMedian / ubQps).toFixed(2) : '–'} |`);
    log('');
    log(`ratios (q/s): Gatehouse/dnsmasq ${result.ratios.gatehouseOverDnsmasq}, Gatehouse/unbound ${result.ratios.gatehouseOverUnbound}`);
    log(`ratios (queries per CPU-second): Gatehouse/dnsmasq ${result.ratios.perCpuSecondGatehouseOverDnsmasq}, Gatehouse/unbound ${result.ratios.perCpuSecondGatehouseOverUnbound}`);
    if (result.ratios.batchedOverDgram !== null) log(`batched UDP / node:dgram: ${result.ratios.batchedOverDgram} (q/s), ${result.ratios.perCpuSecondBatchedOverDgram} (per CPU-second)`);
    const ub = by('unbound');
    if (g && ub && g.atFixedRate) {
      // The aim: at least unbound's rate, p99 under 2 ms and nothing lost at that rate.
      const yes = (ok: boolean) => (ok ? 'met' : 'NOT met');
      log(`aim: rate >= unbound's ${yes(g.qpsMedian >= ub.qpsMedian)} (${g.qpsMedian} vs ${ub.qpsMedian}); at ${rate} q/s p99 < 2 ms ${yes(g.atFixedRate.p99Ms !== null && g.atFixedRate.p99Ms < 2)} (${g.atFixedRate.p99Ms} ms; unbound ${ub.atFixedRate?.p99Ms} ms), none lost ${yes(g.atFixedRate.lost === 0)} (${g.atFixedRate.lost})`);
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    stopping = true;
    for (const c of children) await stop(c);
    await upstream.close();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
