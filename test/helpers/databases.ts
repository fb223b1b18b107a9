import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate, openDatabase, type Database } from '../../src/db/database.js';
import type { DialectName } from '../../src/db/dialect.js';

/**
 * Every store test runs on both databases: a fresh SQLite file, and a fresh PostgreSQL database
 * on the server at TEST_POSTGRES_URL (default: the local one). Without PostgreSQL the PostgreSQL
 * half is skipped locally, but under CI (CI=true) it is a failure.
 */
export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let postgresAvailable: Promise<boolean> | undefined;

export function isPostgresAvailable(): Promise<boolean> {
  postgresAvailable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch (error) {
      if (process.env.CI) throw new Error(`PostgreSQL at ${POSTGRES_ADMIN_URL} is unreachable, and under CI that is a failure: ${(error as Error).message}`);
      console.warn(`PostgreSQL unreachable at ${POSTGRES_ADMIN_URL}; skipping the PostgreSQL half of the store tests`);
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return postgresAvailable;
}

export interface TestDatabase {
  dialect: DialectName;
  url: string;
  dataDir: string;
  /** Opens a new handle (each test may open several, as separate processes would). */
  open(): Promise<Database>;
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `gatehouse-${dialect}-`));
  if (dialect === 'sqlite') {
    const url = `sqlite:${path.join(dataDir, 'gatehouse.db')}`;
    return {
      dialect,
      url,
      dataDir,
      open: () => openDatabase({ databaseUrl: url }),
      drop: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `gatehouse_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    dataDir,
    open: () => openDatabase({ databaseUrl: url.toString(), postgresPoolSize: 10 }),
    drop: async () => {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The dialects to run store tests on; PostgreSQL only when reachable (always under CI). */
export async function dialects(): Promise<DialectName[]> {
  return (await isPostgresAvailable()) ? ['sqlite', 'postgres'] : ['sqlite'];
}

export const ALL_DIALECTS: DialectName[] = ['sqlite', 'postgres'];

/** A migrated database for one test, closed and dropped afterwards by the returned cleanup. */
export async function migratedDatabase(dialect: DialectName): Promise<{ test: TestDatabase; db: Database; cleanup: () => Promise<void> }> {
  const test = await createTestDatabase(dialect);
  const db = await test.open();
  await migrate(db);
  return {
    test,
    db,
    cleanup: async () => {
      await db.close();
      await test.drop();
    },
  };
}
