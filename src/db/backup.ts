import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { ensurePrivateFile, securePrivateSqliteFiles } from '../core/file-modes.js';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { GatehouseError } from '../core/errors.js';
import { migrations } from './migrations/index.js';
import { openSqliteHandle, sqlitePathOf } from './database.js';
import { decryptBackupFile, encryptBackupFile, isEncryptedBackup } from './backup-crypto.js';

/**
 * DP-03: the platform's own backups. SQLite: `VACUUM INTO` copies one read snapshot of the live
 * database (WAL readers do not block writers), so the copy is consistent even under load.
 * PostgreSQL has its own tools, named in the error.
 */
export const POSTGRES_BACKUP_ADVICE =
  'For PostgreSQL use its own tools: pg_dump --format=custom --file=gatehouse.dump "$GATEHOUSE_DATABASE_URL" to back up, and pg_restore --clean --if-exists --dbname="$GATEHOUSE_DATABASE_URL" gatehouse.dump to restore (see docs/backup.md).';

export interface BackupSummary {
  file: string;
  bytes: number;
  sha256: string;
  auditEvents: number;
  auditHeadHash: string | null;
  migrations: string[];
  /** the backup key's id when the file is encrypted (DP-01) */
  encryptedWithKey?: string;
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export function inspectBackup(file: string): BackupSummary {
  let handle: BetterSqlite3.Database;
  try {
    handle = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new GatehouseError('backup_unreadable', 400, `${file} cannot be opened as a SQLite database: ${(error as Error).message}`);
  }
  try {
    let integrity: unknown;
    try {
      integrity = handle.pragma('integrity_check', { simple: true });
    } catch (error) {
      throw new GatehouseError('backup_unreadable', 400, `${file} cannot be opened as a SQLite database: ${(error as Error).message}`);
    }
    if (integrity !== 'ok') throw new GatehouseError('backup_corrupt', 400, `${file} is damaged: SQLite integrity check says ${String(integrity)}`);
    let applied: string[];
    try {
      applied = (handle.prepare('SELECT name FROM gatehouse_migration ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
    } catch {
      throw new GatehouseError('backup_not_gatehouse', 400, `${file} is a SQLite database but not a Gatehouse one (it has no migration record).`);
    }
    const head = handle.prepare('SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    return {
      file,
      bytes: statSync(file).size,
      sha256: sha256File(file),
      auditEvents: head?.seq ?? 0,
      auditHeadHash: head?.hash ?? null,
      migrations: applied,
    };
  } finally {
    handle.close();
  }
}

export function backupSqlite(databaseUrl: string, target: string, options: { overwrite: boolean }): BackupSummary {
  const source = sqlitePathOf(databaseUrl);
  const destination = path.resolve(target);
  if (destination === source) throw new GatehouseError('bad_target', 400, 'The backup file cannot be the live database itself.');
  if (existsSync(destination) && !options.overwrite) {
    throw new GatehouseError('target_exists', 409, `${destination} already exists. Choose a new name, or pass --force to replace it.`);
  }
  if (!existsSync(source)) throw new GatehouseError('no_database', 404, `There is no database at ${source} to back up.`);
  const partial = `${destination}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  // The copy holds everything the database does: created empty and owner-only first, since
  // VACUUM INTO keeps the mode of an existing empty file (and otherwise uses 0644 less the umask).
  ensurePrivateFile(partial);
  const handle = openSqliteHandle(source, {});
  try {
    handle.prepare('VACUUM INTO ?').run(partial);
  } catch (error) {
    rmSync(partial, { force: true });
    throw new GatehouseError('backup_failed', 500, `The backup could not be written to ${destination}: ${(error as Error).message}`);
  } finally {
    handle.close();
  }
  const fd = openSync(partial, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(partial, 0o600);
  renameSync(partial, destination);
  return inspectBackup(destination);
}

/** Refuses backups this version cannot run: unknown (newer) migrations. */
export function checkRestorable(summary: BackupSummary): void {
  const known = new Set(Object.keys(migrations));
  const unknown = summary.migrations.filter((m) => !known.has(m));
  if (unknown.length > 0) {
    throw new GatehouseError('backup_too_new', 400, `${summary.file} was made by a newer Gatehouse (migration ${unknown.join(', ')}); upgrade before restoring it.`);
  }
}

/**
 * Copies the backup into the live database file with SQLite's online backup API, which takes the
 * proper locks: a server that is running (only with --force) sees the restored data at its next
 * query, never a half-written file.
 */
export async function restoreSqlite(databaseUrl: string, backupFile: string): Promise<void> {
  const destination = sqlitePathOf(databaseUrl);
  mkdirSync(path.dirname(destination), { recursive: true, mode: 0o700 });
  securePrivateSqliteFiles(destination);
  const source = new BetterSqlite3(backupFile, { readonly: true, fileMustExist: true });
  try {
    await source.backup(destination);
  } finally {
    source.close();
  }
  const live = openSqliteHandle(destination, {});
  try {
    live.pragma('journal_mode = WAL');
    const integrity = live.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new Error(`after restore, the integrity check says ${String(integrity)}`);
  } finally {
    live.close();
  }
}

/**
 * DP-01, DP-03: a backup written encrypted when a backup key is given. The plain snapshot is made
 * inside the data folder (which already holds the plain database), checked, encrypted into the
 * target and removed: the plaintext never reaches the backup location, which is often a share.
 */
export async function writeBackup(databaseUrl: string, scratchDir: string, target: string, options: { overwrite: boolean; key: Buffer | null }): Promise<BackupSummary> {
  if (!options.key) return backupSqlite(databaseUrl, target, { overwrite: options.overwrite });
  const destination = path.resolve(target);
  if (existsSync(destination) && !options.overwrite) {
    throw new GatehouseError('target_exists', 409, `${destination} already exists. Choose a new name, or pass --force to replace it.`);
  }
  const plain = path.join(scratchDir, `.backup-plain-${process.pid}-${Date.now()}.db`);
  try {
    const inner = backupSqlite(databaseUrl, plain, { overwrite: true });
    const { keyId } = await encryptBackupFile(plain, destination, options.key);
    return { ...inner, file: destination, bytes: statSync(destination).size, sha256: sha256File(destination), encryptedWithKey: keyId };
  } finally {
    rmSync(plain, { force: true });
  }
}

/**
 * A backup ready to inspect and restore: an encrypted one is decrypted (and authenticated) into an
 * owner-only scratch file first; `done` removes it. An encrypted file without a key is refused.
 */
export async function openBackup(file: string, key: Buffer | null, scratchDir: string): Promise<{ plainFile: string; encryptedWithKey: string | null; done: () => void }> {
  if (!existsSync(file)) throw new GatehouseError('no_backup', 404, `There is no file at ${file}.`);
  if (!isEncryptedBackup(file)) {
    if (key) throw new GatehouseError('backup_not_encrypted', 400, `${file} is not encrypted, but a backup key was given: check that this is the backup you mean (or leave out --key-file).`);
    return { plainFile: path.resolve(file), encryptedWithKey: null, done: () => undefined };
  }
  if (!key) throw new GatehouseError('backup_key_needed', 400, `${file} is encrypted: give its backup key with --key-file.`);
  mkdirSync(scratchDir, { recursive: true, mode: 0o700 });
  const plainFile = path.join(scratchDir, `.restore-plain-${process.pid}-${Date.now()}.db`);
  const { keyId } = await decryptBackupFile(file, plainFile, key);
  return { plainFile, encryptedWithKey: keyId, done: () => rmSync(plainFile, { force: true }) };
}
