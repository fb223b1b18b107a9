// Audit trail throughput: append (one event per transaction, and batched) and verify, on SQLite
// and PostgreSQL. Run: bench/audit.sh  (or: node --import tsx bench/audit.ts [--events N])
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { AuditTrail } from '../dist/audit/trail.js';
import { verifyTrail } from '../dist/audit/verify.js';
import { systemClock } from '../dist/core/clock.js';
import { systemActor } from '../dist/core/context.js';
import { migrate, openDatabase, type Database } from '../dist/db/database.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SINGLE = arg('--single', 2000);
const BATCHED = arg('--events', 200_000);
const BATCH = arg('--batch', 1000);
const ROUNDS = arg('--rounds', 3);
const PG_ADMIN = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-GB').padStart(11);

function details(i: number) {
  return { username: `pupil${i % 1500}`, ip: `10.1.${(i >> 8) & 255}.${i & 255}`, reason: 'wrong_password', attempt: i % 7 };
}

async function appendSingle(trail: AuditTrail, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await trail.transaction(systemActor('bench'), (ctx) => ctx.audit.record({ action: 'session.sign_in_failed', target: `account:${i}`, details: details(i) }));
  }
  return n / ((performance.now() - t0) / 1000);
}

async function appendBatched(trail: AuditTrail, n: number, batch: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    await trail.transaction(systemActor('bench'), async (ctx) => {
      const writer = ctx.audit as unknown as { recordMany(e: unknown[]): Promise<number[]> };
      await writer.recordMany(Array.from({ length: Math.min(batch, n - i) }, (_, j) => ({ action: 'filter.activity_logged', target: `device:${(i + j) % 900}`, details: details(i + j) })));
    });
  }
  return n / ((performance.now() - t0) / 1000);
}

async function run(label: string, open: () => Promise<{ db: Database; drop: () => Promise<void> }>) {
  const single: number[] = [];
  const batched: number[] = [];
  const verify: number[] = [];
  let events = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { db, drop } = await open();
    try {
      await migrate(db);
      const trail = new AuditTrail(db, systemClock, undefined, { checkpointEvery: 1e12, checkpointMinutes: 1e6 });
      single.push(await appendSingle(trail, SINGLE));
      batched.push(await appendBatched(trail, BATCHED, BATCH));
      const report = await verifyTrail(db);
      if (!report.ok) throw new Error(`verify failed: ${report.problems[0]?.message}`);
      events = report.events;
      verify.push(report.events / report.seconds);
    } finally {
      await db.close();
      await drop();
    }
  }
  console.log(`${label.padEnd(11)} ${fmt(median(single))} ${fmt(median(batched))} ${fmt(median(verify))}   (${events.toLocaleString('en-GB')} events verified)`);
}

console.log(`Audit trail throughput, events/s, median of ${ROUNDS} rounds (${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores)`);
console.log(`single: ${SINGLE} events, one transaction each; batched: ${BATCHED} events, ${BATCH} per transaction; verify: the whole trail`);
console.log(`${'database'.padEnd(11)} ${'single'.padStart(11)} ${'batched'.padStart(11)} ${'verify'.padStart(11)}`);

await run('sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  return { db: await openDatabase({ databaseUrl: `sqlite:${path.join(dir, 'bench.db')}` }), drop: async () => rmSync(dir, { recursive: true, force: true }) };
});

const admin = new pg.Client({ connectionString: PG_ADMIN });
try {
  await admin.connect();
  await run('postgres', async () => {
    const name = `gatehouse_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(PG_ADMIN);
    url.pathname = `/${name}`;
    return { db: await openDatabase({ databaseUrl: url.toString() }), drop: async () => void (await admin.query(`DROP DATABASE ${name} WITH (FORCE)`)) };
  });
} catch (error) {
  console.log(`postgres    skipped: ${(error as Error).message}`);
} finally {
  await admin.end().catch(() => undefined);
}
