import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { setupAndSignIn, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * Issue 10, finding 12: the database holds the school's personal data and sealed second factors;
 * the data folder holds the keys. Nobody else on the machine reads them, whatever the umask of
 * whoever started Gatehouse. (SQLite only: PostgreSQL's files are the database server's.)
 */
const modeOf = (file: string) => `0${(statSync(file).mode & 0o777).toString(8)}`;

describe('DP-02 files of the data folder', () => {
  let server: ServerProcess | undefined;
  let root: string | undefined;
  let umask: number | undefined;
  afterEach(async () => {
    await server?.stop('SIGKILL');
    if (umask !== undefined) process.umask(umask);
    if (root) rmSync(root, { recursive: true, force: true });
    server = undefined;
    root = undefined;
    umask = undefined;
  });

  it('DP-02 attack: under umask 000, another user of the machine still cannot read the database, its WAL and shared-memory files, a backup, the keys or the data folder; an install left more open is tightened at start, with a warning', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-modes-'));
    const dataDir = path.join(root, 'data');
    const db = path.join(dataDir, 'gatehouse.db');
    const env = { GATEHOUSE_DATA_DIR: dataDir };
    // The server and the CLI inherit the most permissive umask there is.
    umask = process.umask(0o000);

    server = await startServerProcess(env);
    await setupAndSignIn(server);
    const files = [db, `${db}-wal`, `${db}-shm`, 'secret.key', 'hmac.key', 'audit-signing-key.pem'].map((f) => path.resolve(dataDir, f));
    expect(Object.fromEntries([dataDir, ...files].map((f) => [path.basename(f), modeOf(f)]))).toEqual({
      data: '0700',
      'gatehouse.db': '0600',
      'gatehouse.db-wal': '0600',
      'gatehouse.db-shm': '0600',
      'secret.key': '0600',
      'hmac.key': '0600',
      'audit-signing-key.pem': '0600',
    });

    const backupFile = path.join(root, 'nightly.db');
    const backup = await runCli(['backup', backupFile], env);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(modeOf(backupFile)).toBe('0600');

    // An install from before: everything readable by all. The next start tightens it and says so.
    await server.stop('SIGKILL');
    for (const f of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(f)) chmodSync(f, 0o666);
    chmodSync(dataDir, 0o777);
    server = await startServerProcess(env);
    expect(Object.fromEntries([dataDir, db, `${db}-wal`, `${db}-shm`].map((f) => [path.basename(f), modeOf(f)]))).toEqual({
      data: '0700',
      'gatehouse.db': '0600',
      'gatehouse.db-wal': '0600',
      'gatehouse.db-shm': '0600',
    });
    const json = (line: string) => {
      try {
        return JSON.parse(line) as { level: number; path?: string; was?: string };
      } catch {
        return { level: 0 };
      }
    };
    const warnings = server.logs.map(json).filter((l): l is { level: number; path: string; was: string } => l.level === 40 && 'path' in l);
    expect(warnings.map((w) => [path.basename(w.path), w.was])).toEqual(expect.arrayContaining([['data', '0777'], ['gatehouse.db', '0666']]));
  }, 180_000);
});
