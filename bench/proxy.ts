/**
 * The filtering proxy side by side with e2guardian (Debian), under wrk, in one run on one machine:
 * a local origin (nginx, one worker), Gatehouse's proxy (`gatehouse proxy`, from the same UT1 lists)
 * and e2guardian (as shipped, with the same UT1 categories as banned site and URL lists), each on a
 * high local port. wrk sends absolute-form requests (GET http://origin/…) through each proxy: allowed
 * URLs, then blocked URLs, with the same threads and connections. Prints requests/s, latency p50/p99,
 * errors, CPU used by each process, medians over rounds and the ratios Gatehouse / e2guardian.
 *
 *   node --import tsx bench/proxy.ts [--duration 10] [--connections 64] [--threads 1] [--rounds 3]
 *                                   [--workers 2] [--ut1 FOLDER] [--keep]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    ut1: { type: 'string' },
    keep: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..');
const UT1 = path.resolve(values.ut1 ?? process.env.GATEHOUSE_TEST_UT1 ?? path.resolve(ROOT, '..', 'shared', 'data', 'ut1'));
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const THREADS = Number(values.threads);
const ROUNDS = Number(values.rounds);
const WORKERS = Number(values.workers);
const log = (m: string) => process.stderr.write(`[bench/proxy] ${m}\n`);

for (const tool of ['nginx', 'e2guardian', 'wrk']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    log(`${tool} is not installed: apt-get install -y nginx-light e2guardian wrk (bench/proxy.sh does it)`);
    process.exit(2);
  }
}
if (!existsSync(UT1)) {
  log(`no UT1 folder at ${UT1} (give --ut1 FOLDER)`);
  process.exit(2);
}

// ---- ports and folders ---------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
const [ORIGIN_PORT, GATEHOUSE_PORT, E2G_PORT] = [await freePort(), await freePort(), await freePort()];
// Lower case only: e2guardian lower-cases the paths inside its phrase lists.
const dir = path.join(os.tmpdir(), `gatehouse-bench-proxy-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
mkdirSync(dir);
chmodSync(dir, 0o755); // e2guardian drops to its own user and must read its files
const children: Array<{ name: string; child: ChildProcess }> = [];

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const out = path.join(dir, `${name}.out`);
  writeFileSync(out, '');
  // Own process group, so the whole tree (nginx workers, e2guardian's logger, cluster workers) is ours to stop.
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout!.on('data', (d) => writeFileSync(out, d, { flag: 'a' }));
  child.stderr!.on('data', (d) => writeFileSync(out, d, { flag: 'a' }));
  children.push({ name, child });
  return child;
}

async function stopAll(): Promise<void> {
  for (const { child } of children) {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await new Promise((r) => setTimeout(r, 1500));
  // e2guardian does not stop on SIGTERM in the foreground (-N): end what is left of our groups.
  for (const { child } of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
let stopping = false;
const cleanup = async (code: number) => {
  if (stopping) return;
  stopping = true;
  await stopAll();
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
  process.exit(code);
};
process.on('SIGINT', () => void cleanup(130));
process.on('SIGTERM', () => void cleanup(143));

async function waitForPort(port: number, name: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not start listening on ${port}; see ${path.join(dir, `${name}.out`)}:\n${readFileSync(path.join(dir, `${name}.out`), 'utf8').slice(-2000)}`);
}

// ---- the same lists for both -------------------------------------------------------------------

// Every UT1 category but its allow lists, as the engine benchmark does.
const ALLOW_LISTS = new Set(['liste_blanche', 'liste_bu', 'exceptions_liste_bu']);
const categories = readdirSync(UT1, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !ALLOW_LISTS.has(d.name) && (existsSync(path.join(UT1, d.name, 'domains')) || existsSync(path.join(UT1, d.name, 'urls'))))
  .map((d) => d.name)
  .sort();
const domainFiles = categories.map((c) => path.join(UT1, c, 'domains')).filter(existsSync);
const urlFiles = categories.map((c) => path.join(UT1, c, 'urls')).filter(existsSync);
// A blocked name: the first of the largest gambling-like list available.
const blockedHost = ['gambling', 'games', 'dating', ...categories].map((c) => path.join(UT1, c, 'domains')).filter(existsSync).map((f) => readFileSync(f, 'utf8').split('\n').find((l) => /^[a-z0-9.-]+\.[a-z]{2,}$/.test(l.trim()))?.trim()).find(Boolean)!;
const ALLOWED_URL = `http://127.0.0.1:${ORIGIN_PORT}/index.html`;
const BLOCKED_URL = `http://${blockedHost}/index.html`;

// ---- origin: nginx, one worker, a small HTML page ----------------------------------------------

const page = `<!doctype html><html><head><title>Lesson resources</title></head><body><h1>Year 8 science</h1><p>${'Photosynthesis turns light into chemical energy. '.repeat(16)}</p></body></html>\n`;
mkdirSync(path.join(dir, 'www'));
writeFileSync(path.join(dir, 'www', 'index.html'), page);
writeFileSync(
  path.join(dir, 'nginx.conf'),
  `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  types { text/html html; }
  server {
    listen 127.0.0.1:${ORIGIN_PORT} backlog=4096;
    root ${dir}/www;
  }
}
`,
);

// ---- Gatehouse: the policy file the standalone proxy reads ---------------------------------------

writeFileSync(
  path.join(dir, 'policy.yaml'),
  `timeZone: Europe/London
unknownPolicy: pupils
ut1: ${UT1}
policies:
  pupils:
    name: Pupils
    blockedCategories: [${categories.join(', ')}]
    safeSearch: "on"
    youtube: strict
`,
);

// ---- e2guardian: the shipped configuration, on our port, with the same lists --------------------

const E2G = path.join(dir, 'e2guardian');
cpSync('/etc/e2guardian', E2G, { recursive: true });
const rewrite = (file: string, edit: (text: string) => string) => writeFileSync(file, edit(readFileSync(file, 'utf8')));
const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
for (const f of walk(E2G)) {
  const text = readFileSync(f, 'latin1');
  if (text.includes('/etc/e2guardian')) writeFileSync(f, text.replaceAll('/etc/e2guardian', E2G), 'latin1');
}
rewrite(path.join(E2G, 'e2guardian.conf'), (t) =>
  t
    .replace(/^filterip =.*$/m, 'filterip = 127.0.0.1')
    .replace(/^filterports =.*$/m, `filterports = ${E2G_PORT}`)
    .replace(/^transparenthttpsport =.*$/m, '')
    .replace(/^nodaemon =.*$/m, 'nodaemon = on')
    .replace(/^#pidfilename =.*$/m, `pidfilename = '${dir}/e2guardian.pid'`)
    .replace(/^#loglocation =.*$/m, `loglocation = '${dir}/e2guardian-access.log'`),
);
writeFileSync(path.join(E2G, 'lists', 'bannedsitelist'), domainFiles.map((f) => `.Include<${f}>`).join('\n') + '\n');
writeFileSync(path.join(E2G, 'lists', 'bannedurllist'), urlFiles.map((f) => `.Include<${f}>`).join('\n') + '\n');
for (const f of walk(E2G)) chmodSync(f, 0o644);
for (const d of [E2G, ...walk(E2G).map((f) => path.dirname(f))]) chmodSync(d, 0o755);
writeFileSync(path.join(dir, 'e2guardian-access.log'), '');
chmodSync(path.join(dir, 'e2guardian-access.log'), 0o666);

// ---- wrk -----------------------------------------------------------------------------------------

writeFileSync(
  path.join(dir, 'absolute.lua'),
  `-- Absolute-form requests through a proxy: wrk connects to the proxy, the request names the origin.
wrk.path = os.getenv("TARGET_URL")
wrk.headers["Host"] = os.getenv("TARGET_HOST")
wrk.headers["User-Agent"] = "wrk (Gatehouse proxy benchmark)"
done = function(summary, latency, requests)
  io.write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`,
);

interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

/** CPU seconds (user + system) used so far by every process in a process group. */
function groupCpu(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks / 100;
}

function wrk(port: number, url: string, seconds: number): Promise<WrkResult & { cpu: Record<string, number> }> {
  const u = new URL(url);
  const before = Object.fromEntries(children.map(({ name, child }) => [name, groupCpu(child.pid!)]));
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '5s', '-s', path.join(dir, 'absolute.lua'), `http://127.0.0.1:${port}/`], {
      env: { ...process.env, TARGET_URL: url, TARGET_HOST: u.host },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
      if (!line) return reject(new Error(`wrk printed no result:\n${out}`));
      const cpu = Object.fromEntries(children.map(({ name, child }) => [name, +((groupCpu(child.pid!) - before[name]!) / seconds * 100).toFixed(0)]));
      resolve({ ...(JSON.parse(line) as WrkResult), cpu });
    });
  });
}

/** One request through a proxy, to check it answers as expected before measuring. */
function fetchVia(port: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: url, headers: { host: u.host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

// ---- run -----------------------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  log(`UT1 ${UT1}: ${categories.length} categories blocked (${domainFiles.length} domain lists, ${urlFiles.length} URL lists); blocked URL ${BLOCKED_URL}`);
  start('nginx', 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx-error.log')]);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_')));
  const t0 = Date.now();
  // The origin is nginx on loopback, which the proxy otherwise refuses as a destination; wrk's
  // connections all come from one address, so the per-device cap must hold them.
  const caps = ['--allowed-destinations', '127.0.0.1/32', '--max-connections-per-client', String(Math.max(256, CONNECTIONS * 2))];
  start('gatehouse', process.execPath, [path.join(ROOT, 'dist', 'filtering', 'proxy', 'cli.js'), '--policy', path.join(dir, 'policy.yaml'), '--host', '127.0.0.1', '--port', String(GATEHOUSE_PORT), '--workers', String(WORKERS), '--activity', path.join(dir, 'gatehouse-activity.jsonl'), ...caps], env);
  start('e2guardian', 'e2guardian', ['-N', '-c', path.join(E2G, 'e2guardian.conf')]);
  await waitForPort(ORIGIN_PORT, 'nginx');
  await waitForPort(GATEHOUSE_PORT, 'gatehouse');
  const gatehouseStart = Date.now() - t0;
  await waitForPort(E2G_PORT, 'e2guardian');
  const e2gStart = Date.now() - t0;
  log(`listening: origin :${ORIGIN_PORT}, Gatehouse :${GATEHOUSE_PORT} (${WORKERS} workers, ${gatehouseStart} ms), e2guardian :${E2G_PORT} (${e2gStart} ms)`);

  // Both proxies must pass the allowed page and refuse the blocked one before anything is measured.
  for (const [name, port] of [['gatehouse', GATEHOUSE_PORT], ['e2guardian', E2G_PORT]] as const) {
    const ok = await fetchVia(port, ALLOWED_URL);
    if (ok.status !== 200 || ok.body !== page) throw new Error(`${name} did not pass the allowed page (${ok.status})`);
    const blocked = await fetchVia(port, BLOCKED_URL);
    const refused = name === 'gatehouse' ? blocked.status === 403 && blocked.body.includes('This page is blocked') : blocked.body.includes('Access Denied') || blocked.body.includes('Blocked site');
    if (!refused) throw new Error(`${name} did not block ${BLOCKED_URL} (${blocked.status}: ${blocked.body.slice(0, 200)})`);
  }
  log('checked: both proxies pass the allowed page and show their block page for the blocked URL');

  // Warm-up (JIT, connection pools), not counted.
  for (const port of [GATEHOUSE_PORT, E2G_PORT]) {
    await wrk(port, ALLOWED_URL, 3);
    await wrk(port, BLOCKED_URL, 2);
  }

  type Key = 'origin' | 'gatehouse-allowed' | 'gatehouse-blocked' | 'e2guardian-allowed' | 'e2guardian-blocked';
  const runs: Record<Key, Array<WrkResult & { cpu: Record<string, number> }>> = { origin: [], 'gatehouse-allowed': [], 'gatehouse-blocked': [], 'e2guardian-allowed': [], 'e2guardian-blocked': [] };
  const only = values.only;
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate who goes first, so drift on a shared machine does not favour one side.
    const order: Key[] = round % 2 ? ['origin', 'gatehouse-allowed', 'e2guardian-allowed', 'gatehouse-blocked', 'e2guardian-blocked'] : ['origin', 'e2guardian-allowed', 'gatehouse-allowed', 'e2guardian-blocked', 'gatehouse-blocked'];
    for (const key of order) {
      if (only && key !== 'origin' && !key.startsWith(only)) continue;
      const port = key === 'origin' ? ORIGIN_PORT : key.startsWith('gatehouse') ? GATEHOUSE_PORT : E2G_PORT;
      const url = key === 'origin' ? `/index.html` : key.endsWith('allowed') ? ALLOWED_URL : BLOCKED_URL;
      // The origin alone: plain origin-form requests straight to nginx (how much it can serve).
      const r = key === 'origin' ? await wrk(port, `http://127.0.0.1:${ORIGIN_PORT}${url}`, DURATION) : await wrk(port, url, DURATION);
      runs[key].push(r);
      log(`round ${round} ${key.padEnd(19)} ${Math.round(r.requests / (r.durationUs / 1e6)).toString().padStart(7)} req/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms  socket errors ${r.connect + r.read + r.write + r.timeout}  non-2xx ${r.status}  cpu% ${JSON.stringify(r.cpu)}  load ${os.loadavg()[0]!.toFixed(1)}`);
    }
  }

  const summary = Object.fromEntries(
    (Object.entries(runs) as Array<[Key, typeof runs.origin]>)
      .filter(([, rs]) => rs.length > 0)
      .map(([key, rs]) => {
        const rps = rs.map((r) => r.requests / (r.durationUs / 1e6));
        const socketErrors = rs.reduce((n, r) => n + r.connect + r.read + r.write + r.timeout, 0);
        // e2guardian closes the connection after each block page; wrk counts every such close as a read error.
        const readErrors = rs.reduce((n, r) => n + r.read, 0);
        const non2xx = rs.reduce((n, r) => n + r.status, 0);
        const requests = rs.reduce((n, r) => n + r.requests, 0);
        const cpuKeys = Object.keys(rs[0]!.cpu);
        return [
          key,
          {
            requestsPerSecondMedian: Math.round(median(rps)),
            requestsPerSecondRounds: rps.map(Math.round),
            p50MsMedian: +(median(rs.map((r) => r.p50Us)) / 1000).toFixed(2),
            p99MsMedian: +(median(rs.map((r) => r.p99Us)) / 1000).toFixed(2),
            requests,
            socketErrors,
            readErrors,
            // Gatehouse's block page is a 403 (counted by wrk as a status error); e2guardian's is a 200.
            non2xx,
            cpuPercentMedian: Object.fromEntries(cpuKeys.map((k) => [k, median(rs.map((r) => r.cpu[k]!))])),
            // Requests per CPU-second of the process under test: what each core buys, whatever else
            // was running on the machine at the time.
            requestsPerCpuSecondMedian: Math.round(median(rs.map((r) => { const who = key === 'origin' ? 'nginx' : key.split('-')[0]!; return r.requests / (r.durationUs / 1e6) / Math.max(0.01, r.cpu[who]! / 100); }))),
          },
        ];
      }),
  ) as unknown as Partial<Record<Key, { requestsPerSecondMedian: number; requestsPerCpuSecondMedian: number; p50MsMedian: number; p99MsMedian: number; socketErrors: number; non2xx: number; requests: number }>>;
  const ratio = (a?: { requestsPerSecondMedian: number }, b?: { requestsPerSecondMedian: number }) => (a && b ? +(a.requestsPerSecondMedian / b.requestsPerSecondMedian).toFixed(2) : null);
  const cpuRatio = (a?: { requestsPerCpuSecondMedian?: number }, b?: { requestsPerCpuSecondMedian?: number }) => (a?.requestsPerCpuSecondMedian && b?.requestsPerCpuSecondMedian ? +(a.requestsPerCpuSecondMedian / b.requestsPerCpuSecondMedian).toFixed(2) : null);
  const latencyRatio = (a?: { p99MsMedian: number }, b?: { p99MsMedian: number }) => (a && b ? +(b.p99MsMedian / a.p99MsMedian).toFixed(2) : null);
  const result = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    setup: {
      durationSeconds: DURATION,
      connections: CONNECTIONS,
      threads: THREADS,
      rounds: ROUNDS,
      gatehouseWorkers: WORKERS,
      categories: categories.length,
      allowedUrl: ALLOWED_URL,
      blockedUrl: BLOCKED_URL,
      pageBytes: Buffer.byteLength(page),
      e2guardian: spawnSync('e2guardian', ['-v']).stdout.toString().split('\n')[0],
      gatehouseStartMs: gatehouseStart,
      e2guardianStartMs: e2gStart,
    },
    results: summary,
    ratios: {
      allowedThroughput: ratio(summary['gatehouse-allowed'], summary['e2guardian-allowed']),
      blockedThroughput: ratio(summary['gatehouse-blocked'], summary['e2guardian-blocked']),
      allowedP99LatencyE2guardianOverGatehouse: latencyRatio(summary['gatehouse-allowed'], summary['e2guardian-allowed']),
      blockedP99LatencyE2guardianOverGatehouse: latencyRatio(summary['gatehouse-blocked'], summary['e2guardian-blocked']),
      allowedPerCpuSecond: cpuRatio(summary['gatehouse-allowed'], summary['e2guardian-allowed']),
      blockedPerCpuSecond: cpuRatio(summary['gatehouse-blocked'], summary['e2guardian-blocked']),
      gatehouseAllowedShareOfOrigin: ratio(summary['gatehouse-allowed'], summary.origin),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  await cleanup(0);
} catch (error) {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  await cleanup(1);
}
