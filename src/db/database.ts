import { mkdirSync } from 'node:fs';
import { securePrivateSqliteFiles, type Tightened } from '../core/file-modes.js';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type MigrationResultSet,
} from 'kysely';
import pg from 'pg';
import { ConfigError, unavailable } from '../core/errors.js';
import type { DialectName } from './dialect.js';
import { migrations } from './migrations/index.js';
import { sqlitePathOf } from './sqlite-path.js';
import type { Schema } from './schema.js';

export interface DatabaseOptions {
  databaseUrl: string;
  sqliteSynchronous?: 'full' | 'normal';
  postgresPoolSize?: number;
  /** Milliseconds a SQLite writer waits for another process's write lock before failing. */
  busyTimeoutMs?: number;
  /** SQLite only: open an existing file without changing it (inspecting a backup). */
  readonly?: boolean;
}

export interface Database {
  readonly kysely: Kysely<Schema>;
  readonly dialect: DialectName;
  /** Where the data is, for messages (passwords removed). */
  readonly location: string;
  /** The connection URL itself, for helpers that open their own connection (never log it). */
  readonly url: string;
  /** The raw SQLite handle, for the online backup API and the fast audit verifier. */
  readonly sqlite: BetterSqlite3.Database | undefined;
  /** SQLite: files whose mode was more open than 0600 and were tightened on opening (to warn about). */
  readonly tightened: Tightened[];
  close(): Promise<void>;
}

/**
 * Kysely's SQLite driver opens transactions with a plain BEGIN, which takes the write lock only at
 * the first write, so two processes can both read the audit head and then race. BEGIN IMMEDIATE
 * takes the write lock up front; with busy_timeout the second writer waits its turn.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #database: BetterSqlite3.Database;
  constructor(database: BetterSqlite3.Database) {
    super({ database });
    this.#database = database;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.#database });
  }
}

// int8 (bigint, count(*)) as numbers: our sequences stay far below 2^53.
pg.types.setTypeParser(20, (value) => Number(value));

export { sqlitePathOf };

/**
 * Opens (creating if need be) a SQLite database whose file, WAL and shared-memory files are owner
 * only: the file is made 0600 before SQLite opens it, and SQLite gives its WAL and -shm files the
 * database file's mode. Files left more open by an older version are tightened (`tightened`).
 */
export function openSqliteHandle(file: string, options: Omit<DatabaseOptions, 'databaseUrl'>, tightened: Tightened[] = []): BetterSqlite3.Database {
  if (options.readonly) {
    const handle = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
    handle.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
    return handle;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  securePrivateSqliteFiles(file, tightened);
  const handle = new BetterSqlite3(file);
  handle.pragma('journal_mode = WAL');
  handle.pragma('foreign_keys = ON');
  handle.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
  handle.pragma(`synchronous = ${options.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  return handle;
}

export function redactDatabaseUrl(databaseUrl: string): string {
  if (databaseUrl.startsWith('sqlite:')) return databaseUrl;
  try {
    const u = new URL(databaseUrl);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const { databaseUrl } = options;
  if (databaseUrl.startsWith('sqlite:')) {
    const file = sqlitePathOf(databaseUrl);
    let handle: BetterSqlite3.Database;
    const tightened: Tightened[] = [];
    try {
      handle = openSqliteHandle(file, options, tightened);
    } catch (error) {
      throw new ConfigError(`Cannot open the SQLite database ${file}: ${(error as Error).message}`);
    }
    const kysely = new Kysely<Schema>({ dialect: new ImmediateSqliteDialect(handle) });
    return {
      kysely,
      dialect: 'sqlite',
      location: file,
      url: databaseUrl,
      sqlite: handle,
      tightened,
      close: () => kysely.destroy(),
    };
  }
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    const pool = new pg.Pool({
      connectionString: databaseUrl,
      max: options.postgresPoolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      application_name: 'gatehouse',
    });
    // An idle client's error (server restart) must not crash the process; the next query retries.
    pool.on('error', () => undefined);
    const kysely = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    const database: Database = {
      kysely,
      dialect: 'postgres',
      location: redactDatabaseUrl(databaseUrl),
      url: databaseUrl,
      sqlite: undefined,
      tightened: [],
      close: () => kysely.destroy(),
    };
    try {
      await kysely.executeQuery(CompiledQuery.raw('select 1'));
    } catch (error) {
      await kysely.destroy().catch(() => undefined);
      throw new ConfigError(
        `Cannot reach PostgreSQL at ${database.location}: ${(error as Error).message}`,
      );
    }
    return database;
  }
  throw new ConfigError(`GATEHOUSE_DATABASE_URL: must start with sqlite: or postgres://`);
}

function migrator(db: Database): Migrator {
  return new Migrator({
    db: db.kysely,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'gatehouse_migration',
    migrationLockTableName: 'gatehouse_migration_lock',
  });
}

/** Applies pending migrations; refuses a database written by a newer Gatehouse. */
export async function migrate(db: Database): Promise<string[]> {
  const known = new Set(Object.keys(migrations));
  const applied = await appliedMigrations(db);
  const unknown = applied.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new ConfigError(
      `The database at ${db.location} was written by a newer Gatehouse (it has migration ${unknown.join(', ')}). Upgrade Gatehouse, or restore a backup made by this version.`,
    );
  }
  const result: MigrationResultSet = await migrator(db).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(
      `Migration ${failed?.migrationName ?? '(unknown)'} failed: ${(result.error as Error).message}`,
    );
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function appliedMigrations(db: Database): Promise<string[]> {
  try {
    const rows = await db.kysely
      .selectFrom('gatehouse_migration' as any)
      .select('name' as any)
      .orderBy('name' as any)
      .execute();
    return rows.map((r) => (r as { name: string }).name);
  } catch {
    return [];
  }
}

export async function pendingMigrations(db: Database): Promise<string[]> {
  const applied = new Set(await appliedMigrations(db));
  return Object.keys(migrations).filter((name) => !applied.has(name));
}

/** For /readyz: can we run a query, and is the schema current? */
export async function checkReady(db: Database): Promise<void> {
  try {
    await db.kysely.executeQuery(CompiledQuery.raw('select 1'));
  } catch (error) {
    throw unavailable(`The database is not reachable: ${(error as Error).message}`, 'database_unreachable');
  }
  const pending = await pendingMigrations(db);
  if (pending.length > 0) throw unavailable(`Migrations pending: ${pending.join(', ')}`, 'migrations_pending');
}
