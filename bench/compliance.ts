// The compliance dashboard (GV-08): how long evaluating every framework takes on a school's worth of
// data — 5,000 devices, 1,500 people, 50,000 audit events, 200,000 filtering-activity rows — on
// SQLite and PostgreSQL. Regimes: the first evaluation in a fresh process (framework files read,
// database caches cold), and warm evaluations after it (median of 20). Run: bench/compliance.sh
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../dist/core/config.js';
import { systemActor } from '../dist/core/context.js';
import { createLogger } from '../dist/core/logger.js';
import { newId } from '../dist/core/ids.js';
import { evaluateCompliance } from '../dist/compliance/service.js';
import { openRuntime } from '../dist/runtime.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const DEVICES = arg('--devices', 5_000);
const PEOPLE = arg('--people', 1_500);
const EVENTS = arg('--events', 50_000);
const ACTIVITY = arg('--activity', 200_000);
const PG_ADMIN = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function seed(url: string, dataDir: string): Promise<void> {
  const { config } = loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: url });
  const rt = await openRuntime(config, { logger: createLogger('warn'), signing: 'create' });
  const db = rt.db.kysely;
  const now = rt.clock.now();
  const iso = (msAgo: number) => new Date(now.getTime() - msAgo).toISOString();
  const chunk = async <T>(rows: T[], size: number, insert: (part: T[]) => Promise<unknown>) => {
    for (let i = 0; i < rows.length; i += size) await insert(rows.slice(i, i + size));
  };
  const roles = ['pupil', 'pupil', 'pupil', 'pupil', 'staff', 'staff', 'administrator', 'senior_leader'];
  await chunk(
    Array.from({ length: PEOPLE }, (_, i) => ({ id: newId(), username: `person${i}`, display_name: `Person ${i}`, email: null, role: roles[i % roles.length]!, password_hash: null, status: i % 50 === 0 ? 'disabled' : 'active', is_break_glass: i === 0 ? 1 : 0, created_at: iso(0), updated_at: iso(0), linked_account_id: null, locked_at: null, password_set_at: null, temporary_expires_at: null, totp_secret: null, totp_last_step: null, totp_enrolled_at: i % 3 === 0 ? iso(0) : null, given_name: null, family_name: null, external_id: null, left_at: null, access_ends_at: null, provisioning_source: null })),
    500,
    (part) => db.insertInto('account').values(part).execute(),
  );
  const policy = (await db.selectFrom('filter_policy').select('id').executeTakeFirst())?.id;
  if (policy) {
    await chunk(
      Array.from({ length: DEVICES }, (_, i) => ({ id: newId(), name: `device-${i}`, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, mac: null, policy_id: policy, note: null, created_at: iso(0), updated_at: iso(0) })),
      500,
      (part) => db.insertInto('filter_device').values(part).execute(),
    );
  }
  await chunk(
    Array.from({ length: ACTIVITY }, (_, i) => ({ at: iso((ACTIVITY - i) * 5_000), point: 'dns', client_ip: `10.0.${(i >> 8) & 255}.${i & 255}`, device_id: null, device_name: null, person_id: null, username: `person${i % PEOPLE}`, host: `site${i % 997}.example`, url: null, search_term: null, action: i % 4 === 0 ? 'block' : 'allow', category: i % 4 === 0 ? 'adult' : null, rule: i % 4 === 0 ? 'category' : 'default', policy: 'pupils' })),
    1_000,
    (part) => db.insertInto('filter_activity').values(part).execute(),
  );
  // Audit events go through the trail (hash chain, signing), 500 per transaction.
  for (let i = 0; i < EVENTS; i += 500) {
    await rt.trail.transaction(systemActor('bench'), async (ctx) => {
      for (let j = i; j < Math.min(EVENTS, i + 500); j++) await ctx.audit.record({ action: j % 7 === 0 ? 'session.signed_in' : 'filtering.list_updated', target: `bench:${j}`, details: { n: j } });
    });
  }
  await rt.close();
}

async function measure(url: string, dataDir: string): Promise<{ cold: number; warm: number; clauses: number }> {
  const { config } = loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: url });
  const rt = await openRuntime(config, { logger: createLogger('warn'), signing: 'load' });
  let t0 = performance.now();
  const first = await evaluateCompliance(rt);
  const cold = performance.now() - t0;
  const warm: number[] = [];
  for (let i = 0; i < 20; i++) {
    t0 = performance.now();
    await evaluateCompliance(rt);
    warm.push(performance.now() - t0);
  }
  await rt.close();
  return { cold, warm: median(warm), clauses: first.reduce((n, f) => n + f.clauses.length, 0) };
}

const results: Array<[string, { cold: number; warm: number; clauses: number }]> = [];
{
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-compliance-'));
  const url = `sqlite:${path.join(dir, 'gatehouse.db')}`;
  process.stderr.write(`seeding SQLite: ${DEVICES} devices, ${PEOPLE} people, ${EVENTS} audit events, ${ACTIVITY} activity rows…\n`);
  await seed(url, dir);
  results.push(['SQLite', await measure(url, dir)]);
  rmSync(dir, { recursive: true, force: true });
}
{
  const name = `gatehouse_bench_compliance_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  let reachable = true;
  try {
    await admin.connect();
    await admin.query(`create database ${name}`);
  } catch (error) {
    reachable = false;
    process.stderr.write(`PostgreSQL skipped: ${(error as Error).message}\n`);
  }
  if (reachable) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-compliance-pg-'));
    const url = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
    try {
      process.stderr.write('seeding PostgreSQL…\n');
      await seed(url, dir);
      results.push(['PostgreSQL', await measure(url, dir)]);
    } finally {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
console.log(`\nCompliance dashboard, every framework: ${DEVICES} devices, ${PEOPLE} people, ${EVENTS} audit events, ${ACTIVITY} activity rows`);
console.log('| database | clauses | first evaluation in a fresh process (ms) | warm, median of 20 (ms) |');
console.log('|---|---:|---:|---:|');
for (const [db, r] of results) console.log(`| ${db} | ${r.clauses} | ${r.cold.toFixed(1)} | ${r.warm.toFixed(1)} |`);
