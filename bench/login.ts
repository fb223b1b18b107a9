// The morning rush: 1,500 distinct accounts signing in once within 60 s against a running
// Gatehouse on SQLite, beside the raw argon2id verify rate of the same parameters on this machine,
// measured in the same run. Then the sustained capacity: sign-ins as fast as they complete.
// Run: bench/login.sh  (options: --accounts N --seconds S --capacity-seconds S)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import { AuditTrail } from '../dist/audit/trail.js';
import { loadConfig } from '../dist/core/config.js';
import { systemClock } from '../dist/core/clock.js';
import { migrate, openDatabase } from '../dist/db/database.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const ACCOUNTS = arg('--accounts', 1500);
const SECONDS = arg('--seconds', 60);
const CAPACITY_SECONDS = arg('--capacity-seconds', 20);
const PASSWORD = 'Bench-Morning-Rush-2026';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cores = os.availableParallelism();
const { config } = loadConfig({});
const params = { type: argon2.argon2id, memoryCost: config.argon2MemoryKiB, timeCost: config.argon2Iterations, parallelism: config.argon2Parallelism } as const;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Clock ticks: 100 per second on Linux (sysconf(_SC_CLK_TCK)).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function rawVerifyRate(hash: string, seconds: number): Promise<number> {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: cores }, async () => {
      while (performance.now() < until) {
        if (!(await argon2.verify(hash, PASSWORD))) throw new Error('verify failed');
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

async function seed(dataDir: string, hash: string): Promise<void> {
  const db = await openDatabase({ databaseUrl: `sqlite:${path.join(dataDir, 'gatehouse.db')}` });
  await migrate(db);
  const trail = new AuditTrail(db, systemClock, undefined, { checkpointEvery: 1e9, checkpointMinutes: 60 });
  const now = new Date().toISOString();
  await trail.transaction({ id: null, name: 'bench', role: null }, async (ctx) => {
    for (let i = 0; i < ACCOUNTS; i += 200) {
      const rows = Array.from({ length: Math.min(200, ACCOUNTS - i) }, (_, j) => {
        const n = String(i + j + 1).padStart(4, '0');
        // One hash shared by every account: seeding is not what is measured, and verifying it costs the same.
        return { id: `bench-${n}`, username: `pupil${n}`, display_name: `Pupil ${n}`, email: null, role: 'pupil', password_hash: hash, status: 'active', is_break_glass: 0, created_at: now, updated_at: now, password_set_at: now };
      });
      await ctx.db.insertInto('account').values(rows).execute();
    }
    await ctx.audit.record({ action: 'bench.accounts_seeded', details: { accounts: ACCOUNTS } });
  });
  await db.close();
}

async function startServer(dataDir: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'serve'], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_'))), GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_PORT: '0', GATEHOUSE_LOG_LEVEL: 'info' /* as in production: one line per request */, GATEHOUSE_PROFILE: 'ncsc', ...(process.env.BENCH_SQLITE_SYNCHRONOUS ? { GATEHOUSE_SQLITE_SYNCHRONOUS: process.env.BENCH_SQLITE_SYNCHRONOUS } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const listen = (d: Buffer) => {
      out += d;
      const m = /"url":"(http:[^"]+)"/.exec(out);
      if (m) {
        // Keep reading (and dropping) the request log so the server never blocks on a full pipe.
        child.stdout!.off('data', listen).resume();
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', listen);
    child.stderr!.resume();
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); }),
  };
}

async function signIn(url: string, username: string): Promise<{ ok: boolean; ms: number; status: number }> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }) });
    const body = (await r.json()) as { status?: string };
    return { ok: r.status === 200 && body.status === 'signed_in', ms: performance.now() - t0, status: r.status };
  } catch {
    return { ok: false, ms: performance.now() - t0, status: 0 };
  }
}

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-login-bench-'));
try {
  const hash = await argon2.hash(PASSWORD, params);
  console.log(`Gatehouse sign-in benchmark — ${os.cpus()[0]?.model ?? 'cpu'}, ${cores} cores, Node ${process.version}`);
  console.log(`argon2id m=${params.memoryCost} KiB, t=${params.timeCost}, p=${params.parallelism}; SQLite, synchronous=${process.env.BENCH_SQLITE_SYNCHRONOUS ?? "normal (default)"}; profile ncsc (pupils: no further step)\n`);

  const raw = await rawVerifyRate(hash, 10);
  console.log(`raw argon2id verify, ${cores} concurrent, 10 s:        ${raw.toFixed(1)} verifies/s`);

  await seed(dataDir, hash);
  const server = await startServer(dataDir);
  try {
    for (let i = 0; i < 20; i++) await signIn(server.url, `pupil${String(i + 1).padStart(4, '0')}`); // warm-up

    // Open loop: each account starts at its own moment in the window, whatever the others are doing.
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: ACCOUNTS }, (_, i) =>
        new Promise<{ ok: boolean; ms: number; status: number }>((resolve) => {
          setTimeout(() => resolve(signIn(server.url, `pupil${String(i + 1).padStart(4, '0')}`)), (i * SECONDS * 1000) / ACCOUNTS);
        }),
      ),
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    const latencies = results.map((r) => r.ms);
    if (process.env.BENCH_TRACE) {
      const slow = results.map((r, i) => [i, r.ms] as const).filter(([, v]) => v > 150);
      console.log(`  slow (>150 ms) at request numbers: ${slow.map(([i, v]) => `${i}:${v.toFixed(0)}`).join(' ')}`);
    }
    const errors = results.filter((r) => !r.ok);
    console.log(`morning rush: ${ACCOUNTS} distinct accounts over ${SECONDS} s (${(ACCOUNTS / SECONDS).toFixed(1)}/s), done in ${wall.toFixed(1)} s`);
    console.log(`  latency p50 ${ms(pct(latencies, 50))}, p95 ${ms(pct(latencies, 95))}, p99 ${ms(pct(latencies, 99))}, max ${ms(Math.max(...latencies))}`);
    console.log(`  errors ${errors.length}${errors.length ? ` (statuses ${[...new Set(errors.map((e) => e.status))].join(', ')})` : ''}`);
    console.log(`  server CPU ${cpu.toFixed(1)} s = ${((cpu / wall / cores) * 100).toFixed(0)}% of ${cores} cores`);

    // Closed loop: as many sign-ins as complete, 2 in flight per core.
    let done = 0;
    let capacityErrors = 0;
    const until = performance.now() + CAPACITY_SECONDS * 1000;
    const c0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: cores * 2 }, async () => {
        while (performance.now() < until) {
          const r = await signIn(server.url, `pupil${String((next++ % ACCOUNTS) + 1).padStart(4, '0')}`);
          if (r.ok) done++;
          else capacityErrors++;
        }
      }),
    );
    const rate = done / ((performance.now() - c0) / 1000);
    // The machine's speed drifts (shared cores): measure the raw rate again right after, and compare
    // with the mean of the two.
    const rawAfter = await rawVerifyRate(hash, 10);
    const rawMean = (raw + rawAfter) / 2;
    console.log(`capacity: ${rate.toFixed(1)} sign-ins/s sustained over ${CAPACITY_SECONDS} s (${capacityErrors} errors)`);
    console.log(`raw argon2id verify again, right after:          ${rawAfter.toFixed(1)} verifies/s`);
    console.log(`  sustained sign-ins = ${((rate / rawMean) * 100).toFixed(0)}% of the raw verify rate (mean of before and after, ${rawMean.toFixed(1)}/s)`);
    console.log(`  (Keycloak's published sizing: 15 password sign-ins/s per vCPU = ${15 * cores}/s for ${cores})`);
    const report = {
      date: new Date().toISOString(),
      cores,
      argon2: params,
      rawVerifiesPerSecond: raw,
      rush: { accounts: ACCOUNTS, seconds: SECONDS, p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99), max: Math.max(...latencies), errors: errors.length, serverCpuSeconds: cpu, wallSeconds: wall },
      capacity: { signInsPerSecond: rate, errors: capacityErrors, rawAfter, ratioToRaw: rate / rawMean },
    };
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench', 'results', `login-${report.date.slice(0, 19).replace(/:/g, '')}.json`), JSON.stringify(report, null, 2));
  } finally {
    await server.stop();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
