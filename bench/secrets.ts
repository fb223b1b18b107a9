// Stored second factors (issue 10): what a recovery-code check costs as HMAC-SHA-256 (chosen) and as
// argon2id (the alternative), and how long `gatehouse secret-key rotate` takes for a school's worth
// of authenticator secrets, on SQLite and PostgreSQL. Run: bench/secrets.sh [--accounts N]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import pg from 'pg';
import { loadConfig } from '../dist/core/config.js';
import { systemActor } from '../dist/core/context.js';
import { createLogger } from '../dist/core/logger.js';
import { keyedHasher } from '../dist/core/keyed-hash.js';
import { rotateSecretKey } from '../dist/identity/secret-key-rotation.js';
import { createAccount } from '../dist/identity/service.js';
import { recoveryCodeHash, newRecoveryCodes, newTotpSecret } from '../dist/identity/totp.js';
import { sealAccountTotp } from '../dist/identity/totp-secret.js';
import { openRuntime } from '../dist/runtime.js';

const args = process.argv.slice(2);
const ACCOUNTS = Number(args[args.indexOf('--accounts') + 1] ?? 0) || 10_000;
const PG_ADMIN = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function codeChecks(): Promise<void> {
  const hasher = keyedHasher(Buffer.alloc(32, 7));
  const [code] = newRecoveryCodes(1);
  const id = '2b1e6f0c-6a53-4a8f-9a39-1f2d1b0c9e11';
  const hmacRuns: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) recoveryCodeHash(hasher, id, code!);
    hmacRuns.push(((performance.now() - t0) * 1000) / 100_000);
  }
  const argonRuns: number[] = [];
  const salt = Buffer.from(id.replace(/-/g, ''), 'hex');
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    await argon2.hash(code!, { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1, salt, raw: true });
    argonRuns.push((performance.now() - t0) * 1000);
  }
  console.log(`recovery-code check, median of runs:  HMAC-SHA-256 ${median(hmacRuns).toFixed(2)} µs   argon2id (19 MiB, t=2) ${(median(argonRuns) / 1000).toFixed(1)} ms   ratio ${Math.round(median(argonRuns) / median(hmacRuns)).toLocaleString('en-GB')}×`);
}

async function rotation(dialect: 'sqlite' | 'postgres'): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-secrets-'));
  let url = `sqlite:${path.join(dataDir, 'gatehouse.db')}`;
  let drop = async () => undefined as void;
  if (dialect === 'postgres') {
    const name = `gatehouse_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(PG_ADMIN);
    u.pathname = `/${name}`;
    url = u.toString();
    drop = async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  }
  const { config } = loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: url });
  const rt = await openRuntime(config, { logger: createLogger('silent'), signing: 'none' });
  try {
    for (let start = 0; start < ACCOUNTS; start += 1000) {
      await rt.trail.transaction(systemActor('bench'), async (ctx) => {
        for (let i = start; i < Math.min(ACCOUNTS, start + 1000); i++) {
          const id = await createAccount(ctx, { username: `staff${i}`, displayName: `Staff ${i}`, email: null, role: 'staff', passwordHash: null });
          await ctx.db.updateTable('account').set({ totp_secret: sealAccountTotp(rt, id, newTotpSecret()), totp_enrolled_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
        }
      });
    }
    const t0 = performance.now();
    const report = await rotateSecretKey(rt, systemActor('bench'), { whileRunning: false });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`secret-key rotate, ${dialect.padEnd(8)}  ${report.totpSecrets.toLocaleString('en-GB')} authenticator secrets re-sealed in ${seconds.toFixed(2)} s (${Math.round(report.totpSecrets / seconds).toLocaleString('en-GB')}/s), one transaction`);
  } finally {
    await rt.close();
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await codeChecks();
await rotation('sqlite');
try {
  await rotation('postgres');
} catch (error) {
  console.log(`secret-key rotate, postgres: skipped (${(error as Error).message})`);
}
