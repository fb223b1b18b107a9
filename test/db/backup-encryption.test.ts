import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { setUpSchool, startTestApp } from '../helpers/runtime.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * DP-01, DP-03: Gatehouse's own backups encrypted with a backup key of their own, and the attacks on
 * them: a wrong key, the server's own secret.key, a tampered byte (in the data and in the header), a
 * file cut short — each refused with a message saying which, and nothing restored.
 */

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

function contactName(dbFile: string): string {
  const db = new BetterSqlite3(dbFile, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM school_contact WHERE role = 'dsl'").get() as { name: string }).name;
  } finally {
    db.close();
  }
}

async function setContact(test: TestDatabase, name: string): Promise<void> {
  const db = new BetterSqlite3(test.url.slice('sqlite:'.length));
  try {
    db.prepare("UPDATE school_contact SET name = ? WHERE role = 'dsl'").run(name);
  } finally {
    db.close();
  }
}

describe('DP-01 DP-03 encrypted backups of Gatehouse’s own database', () => {
  let test: TestDatabase | undefined;
  let server: ServerProcess | undefined;
  afterEach(async () => {
    await server?.stop('SIGKILL');
    await test?.drop();
    server = undefined;
    test = undefined;
  });

  it('DP-01 DP-03 an encrypted backup restores with its key; a wrong key, secret.key, a tampered or truncated file are refused and nothing is restored', async () => {
    test = await createTestDatabase('sqlite');
    const t = await startTestApp('sqlite', { database: test });
    const admin = await setUpSchool(t);
    const put = await t.app.inject({ method: 'PUT', url: '/api/school/contacts/dsl', headers: admin.headers, payload: { name: 'Before Backup', email: null } });
    expect(put.statusCode).toBe(200);
    await t.app.close();
    await t.runtime.close();
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    const live = test.url.slice('sqlite:'.length);

    const keys = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-keys-'));
    const key = path.join(keys, 'backup.key');
    const made = await runCli(['backup-key', key], env);
    expect(made.stderr).toBe('');
    expect(made.stdout).toMatch(/^Made backup key [0-9a-f]{12} in /);
    expect(mode(key)).toBe('600');
    expect((await runCli(['backup-key', key], env)).stderr).toContain('already exists; a backup key is never overwritten');
    const other = path.join(keys, 'other.key');
    expect((await runCli(['backup-key', other], env)).code).toBe(0);

    // The server's own secret.key is refused, by path and by content.
    const enc = path.join(keys, 'nightly.db.enc');
    const bySecretPath = await runCli(['backup', enc, '--key-file', path.join(test.dataDir, 'secret.key')], env);
    expect(bySecretPath.code).toBe(1);
    expect(bySecretPath.stderr).toContain("is the server's own secret.key");
    const secretCopy = path.join(keys, 'copy.key');
    copyFileSync(path.join(test.dataDir, 'secret.key'), secretCopy);
    expect((await runCli(['backup', enc, '--key-file', secretCopy], env)).stderr).toContain("holds the same key as the server's secret.key");
    expect(existsSync(enc)).toBe(false);

    const backup = await runCli(['backup', enc, '--key-file', key], env);
    expect(backup.stderr).toBe('');
    expect(backup.stdout).toMatch(/encrypted with backup key [0-9a-f]{12}/);
    expect(mode(enc)).toBe('600');
    const bytes = readFileSync(enc);
    expect(bytes.subarray(0, 8).toString()).toBe('GHBACKUP');
    expect(bytes.includes(Buffer.from('SQLite format 3'))).toBe(false);
    expect(bytes.includes(Buffer.from('Springfield Primary'))).toBe(false);
    expect(bytes.includes(Buffer.from('Before Backup'))).toBe(false);
    // no plaintext left behind in the data folder or beside the backup
    expect(readdirSync(test.dataDir).filter((f) => f.startsWith('.backup-plain'))).toEqual([]);
    expect(readdirSync(keys).filter((f) => f.includes('partial'))).toEqual([]);

    await setContact(test, 'After Backup');
    const refusedRestore = async (file: string, args: string[], message: string | RegExp) => {
      const r = await runCli(['restore', file, ...args], env);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(contactName(live)).toBe('After Backup');
      expect(readdirSync(test!.dataDir).filter((f) => f.startsWith('.restore-plain'))).toEqual([]);
    };
    await refusedRestore(enc, [], /is encrypted: give its backup key with --key-file/);
    await refusedRestore(enc, ['--key-file', other], /was encrypted with backup key [0-9a-f]{12}, not with the key given \([0-9a-f]{12}\).*Nothing was restored/);

    const tampered = path.join(keys, 'tampered.db.enc');
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    writeFileSync(tampered, flipped, { mode: 0o600 });
    await refusedRestore(tampered, ['--key-file', key], /does not authenticate under its key: it was altered or damaged.*Nothing was restored/);

    const header = Buffer.from(bytes);
    header[30]! ^= 0x80; // inside the iv: the header is authenticated too
    writeFileSync(tampered, header, { mode: 0o600 });
    await refusedRestore(tampered, ['--key-file', key], /does not authenticate under its key/);

    const truncated = path.join(keys, 'truncated.db.enc');
    copyFileSync(enc, truncated);
    truncateSync(truncated, bytes.length - 1000);
    await refusedRestore(truncated, ['--key-file', key], /does not authenticate under its key/);
    truncateSync(truncated, 20);
    await refusedRestore(truncated, ['--key-file', key], /is cut short \(20 bytes\)/);

    // decrypt-backup: refused with the wrong key (nothing written), then a plain copy, 0600
    const out = path.join(keys, 'plain.db');
    expect((await runCli(['decrypt-backup', enc, out, '--key-file', other], env)).stderr).toContain('not with the key given');
    expect(existsSync(out)).toBe(false);
    const decrypted = await runCli(['decrypt-backup', enc, out, '--key-file', key], env);
    expect(decrypted.stderr).toBe('');
    expect(mode(out)).toBe('600');
    expect(contactName(out)).toBe('Before Backup');

    const restore = await runCli(['restore', enc, '--key-file', key], env);
    expect(restore.stderr).toBe('');
    expect(restore.stdout).toMatch(/chain verified, decrypted with backup key [0-9a-f]{12}\./);
    expect(contactName(live)).toBe('Before Backup');
    expect((await runCli(['audit', 'verify'], env)).code).toBe(0);
  }, 120_000);

  it('DP-01 DP-03 serve backs up its own database on schedule, encrypted and 0600, as the built-in job’s check-in', async () => {
    test = await createTestDatabase('sqlite');
    const keys = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-keys-'));
    const key = path.join(keys, 'backup.key');
    const dir = path.join(keys, 'backups');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    expect((await runCli(['backup-key', key], env)).code).toBe(0);
    server = await startServerProcess({ ...env, GATEHOUSE_BACKUP_DIR: dir, GATEHOUSE_BACKUP_KEY_FILE: key, GATEHOUSE_BACKUP_EVERY_MINUTES: '60' });
    const deadline = Date.now() + 30_000;
    while (!(existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.db.enc'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    const files = readdirSync(dir);
    expect(files).toEqual([expect.stringMatching(/^gatehouse-\d{8}T\d{6}Z\.db\.enc$/)]);
    expect(mode(dir)).toBe('700');
    expect(mode(path.join(dir, files[0]!))).toBe('600');
    await server.stop('SIGTERM');
    server = undefined;
    const out = path.join(keys, 'plain.db');
    expect((await runCli(['decrypt-backup', path.join(dir, files[0]!), out, '--key-file', key], env)).code).toBe(0);
    const db = new BetterSqlite3(test.url.slice('sqlite:'.length), { readonly: true });
    try {
      const job = db.prepare("SELECT name, encrypted, last_status, system FROM backup_job WHERE system = 'gatehouse'").get();
      expect(job).toEqual({ name: 'Gatehouse database', encrypted: 1, last_status: 'ok', system: 'gatehouse' });
    } finally {
      db.close();
    }
  }, 90_000);

  it('DP-01 serve refuses to start with a backup key others can read, or a key without a backup folder, naming the setting', async () => {
    test = await createTestDatabase('sqlite');
    const keys = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-keys-'));
    const key = path.join(keys, 'backup.key');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_PORT: '0' };
    expect((await runCli(['backup-key', key], env)).code).toBe(0);
    chmodSync(key, 0o644);
    const open = await runCli(['serve'], { ...env, GATEHOUSE_BACKUP_DIR: path.join(keys, 'b'), GATEHOUSE_BACKUP_KEY_FILE: key });
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/Backup key .*backup\.key: .*can be read by other users; run: chmod 600/);
    expect(existsSync(path.join(keys, 'b'))).toBe(false);
    expect(() => loadConfig({ GATEHOUSE_DATA_DIR: test!.dataDir, GATEHOUSE_BACKUP_KEY_FILE: key })).toThrow(/GATEHOUSE_BACKUP_KEY_FILE: set GATEHOUSE_BACKUP_DIR too/);
  }, 60_000);
});
