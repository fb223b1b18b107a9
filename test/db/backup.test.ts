import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, type TestDatabase } from '../helpers/databases.js';
import { TEST_PASSWORD, call, setupAndSignIn, signInOverHttp, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const available = await dialects();

describe('DP-03 the platform’s own backups', () => {
  let test: TestDatabase | undefined;
  let server: ServerProcess | undefined;
  afterEach(async () => {
    await server?.stop('SIGKILL');
    await test?.drop();
    server = undefined;
    test = undefined;
  });

  it('DP-03 backs up a live database under load, restores it, and every committed row is there', async () => {
    test = await createTestDatabase('sqlite');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    server = await startServerProcess(env);
    const session = await setupAndSignIn(server);

    // Writes keep flowing in three streams while the backup runs in another process.
    const acknowledged: Array<{ seq: number; name: string; at: number }> = [];
    let running = true;
    let n = 0;
    const load = Array.from({ length: 3 }, (_, s) => (async () => {
      while (running) {
        const name = `Writer ${s} change ${n++}`;
        const response = await call(server!.url, 'PUT', `/api/school/contacts/${['dsl', 'dpo', 'governor'][s]}`, session, { name, email: null });
        if (response.status !== 200) throw new Error(`write failed: ${response.status}`);
        acknowledged.push({ seq: ((await response.json()) as { auditSeq: number }).auditSeq, name, at: Date.now() });
      }
    })());
    while (acknowledged.length < 100) await new Promise((r) => setTimeout(r, 10));
    const backupFile = path.join(test.dataDir, 'nightly.gatehouse-backup');
    const startedAt = Date.now();
    const backup = await runCli(['backup', backupFile], env);
    const writesDuringBackup = acknowledged.filter((a) => a.at > startedAt).length;
    running = false;
    await Promise.all(load);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/^Backed up to .*nightly\.gatehouse-backup: [\d,]+ bytes, [\d,]+ audit events, sha256 [0-9a-f]{64}/);
    expect(writesDuringBackup).toBeGreaterThan(0);
    const committedBefore = acknowledged.filter((a) => a.at < startedAt);

    // Restore into a new data folder, as on a replacement server.
    const restoredDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-restored-'));
    const restoredEnv = { GATEHOUSE_DATA_DIR: restoredDir };
    const restore = await runCli(['restore', backupFile], restoredEnv);
    expect(restore.stderr).toBe('');
    expect(restore.stdout).toMatch(/^Restored .*: [\d,]+ audit events, chain verified\./);
    const verify = await runCli(['audit', 'verify'], restoredEnv);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^OK: /);

    const restored = new BetterSqlite3(path.join(restoredDir, 'gatehouse.db'), { readonly: true });
    try {
      const events = new Map((restored.prepare('SELECT seq, body FROM audit_event').all() as Array<{ seq: number; body: string }>).map((r) => [r.seq, JSON.parse(r.body).details as { name?: string }]));
      for (const ack of committedBefore) expect(events.get(ack.seq)?.name).toBe(ack.name);
      // A consistent snapshot: the restored trail is a gap-free prefix plus the restore event.
      const last = restored.prepare('SELECT action FROM audit_event ORDER BY seq DESC LIMIT 1').get() as { action: string };
      expect(last.action).toBe('platform.restored');
      expect(restored.prepare('SELECT name FROM school').get()).toEqual({ name: 'Springfield Primary' });
    } finally {
      restored.close();
    }
  });

  it('DP-03 restore refuses to overwrite the database of a running server unless told to', async () => {
    test = await createTestDatabase('sqlite');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    server = await startServerProcess(env);
    const session = await setupAndSignIn(server);
    await call(server.url, 'PUT', '/api/school/contacts/dsl', session, { name: 'Before Backup', email: null });
    const file = path.join(test.dataDir, 'before.db');
    expect((await runCli(['backup', file], env)).code).toBe(0);
    await call(server.url, 'PUT', '/api/school/contacts/dsl', session, { name: 'After Backup', email: null });

    const refused = await runCli(['restore', file], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/A Gatehouse server \(process \d+\) is running on this database\. Stop it first, or pass --force/);

    const forced = await runCli(['restore', file, '--force'], env);
    expect(forced.code).toBe(0);
    // The running server reads the restored data at its next query.
    const again = await signInOverHttp(server.url, 'master', TEST_PASSWORD, session.totpSecret);
    const contacts = (await (await fetch(new URL('/api/school/contacts', server.url), { headers: { cookie: again.cookie } })).json()) as { contacts: Array<{ name: string }> };
    expect(contacts.contacts[0]!.name).toBe('Before Backup');
    expect((await runCli(['audit', 'verify'], env)).code).toBe(0);
  });

  it('DP-03 refuses bad backup files and an existing target, losing nothing', async () => {
    test = await createTestDatabase('sqlite');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    expect((await runCli(['migrate'], env)).code).toBe(0);
    const target = path.join(test.dataDir, 'exists.db');
    writeFileSync(target, 'precious');
    const overwrite = await runCli(['backup', target], env);
    expect(overwrite.code).toBe(1);
    expect(overwrite.stderr).toContain('already exists. Choose a new name, or pass --force');

    const notSqlite = path.join(test.dataDir, 'notes.txt');
    writeFileSync(notSqlite, 'hello, this is not a database');
    const bad = await runCli(['restore', notSqlite], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cannot be opened as a SQLite database|is damaged/);

    const other = path.join(test.dataDir, 'other.db');
    new BetterSqlite3(other).exec('CREATE TABLE x (y)');
    const foreign = await runCli(['restore', other], env);
    expect(foreign.stderr).toContain('is a SQLite database but not a Gatehouse one');
    expect(existsSync(path.join(test.dataDir, 'gatehouse.db'))).toBe(true);
  });

  if (available.includes('postgres')) {
    it('DP-03 on PostgreSQL, points to pg_dump and pg_restore', async () => {
      test = await createTestDatabase('postgres');
      const result = await runCli(['backup', path.join(test.dataDir, 'x.db')], { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('pg_dump --format=custom');
    });
  }
});
