import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import { createGroup, setMembership } from '../../src/directory/groups.js';
import { createAccount } from '../../src/identity/service.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { startTestApp, type TestApp } from '../helpers/runtime.js';

/** The directory, resets and recovery from the server's command line (SQLite: these start processes). */
describe('gatehouse directory / resets / accounts recover', () => {
  let test: TestDatabase | undefined;
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
    await test?.drop();
    test = undefined;
  });

  it('AC-12 lists and exports the directory by group from the CLI, and the export is audited', async () => {
    t = await startTestApp('sqlite');
    await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
      const amy = await createAccount(ctx, { username: 'amy.p', displayName: 'Amy Pond', email: null, role: 'pupil', passwordHash: null });
      await createAccount(ctx, { username: 'rory.w', displayName: 'Rory Williams', email: null, role: 'pupil', passwordHash: null });
      const teacher = await createAccount(ctx, { username: 'jsmith', displayName: 'John Smith', email: null, role: 'staff', passwordHash: null });
      const c = await createGroup(ctx, { name: '7A', kind: 'class' });
      await setMembership(ctx, c, amy, 'member');
      await setMembership(ctx, c, teacher, 'teacher');
    });
    const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
    const list = await runCli(['directory', 'list', '--group', '7a'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/amy\.p\s+Amy Pond\s+Pupil\s+active\s+7A\n/);
    expect(list.stdout).toMatch(/jsmith\s+John Smith\s+Staff\s+active\s+7A \(teaches\)\n/);
    expect(list.stdout).toContain('2 people.');
    const unknown = await runCli(['directory', 'list', '--group', '9Z'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('there is no group called "9Z"');

    const file = path.join(t.test.dataDir, 'pupils.csv');
    const exported = await runCli(['directory', 'export', '--role', 'pupil', '--output', file], env);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = readFileSync(file, 'utf8').replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines.map((l) => l.split(',')[0])).toEqual(['username', 'amy.p', 'rory.w']);
    const groups = await runCli(['directory', 'groups'], env);
    expect(groups.stdout).toMatch(/7A\s+class\s+1 members\s+1 teachers/);
    const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['actor', 'action']).where('action', '=', 'directory.exported').execute();
    expect(events).toEqual([{ actor: expect.stringMatching(/^cli:/), action: 'directory.exported' }]);
  });

  it('AC-08 the master account is recovered from the server only, at high severity', async () => {
    test = await createTestDatabase('sqlite');
    const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    const db = await test.open();
    try {
      const { migrate } = await import('../../src/db/database.js');
      await migrate(db);
      await db.kysely.insertInto('account').values({ id: '00000000-0000-4000-8000-000000000001', username: 'master', display_name: 'Master', email: null, role: 'administrator', password_hash: null, status: 'active', is_break_glass: 1, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z', linked_account_id: null, password_set_at: null, temporary_expires_at: null, totp_secret: null, totp_last_step: null, totp_enrolled_at: null, given_name: null, family_name: null, external_id: null, left_at: null, access_ends_at: null, locked_at: '2026-01-02T00:00:00.000Z' }).execute();
    } finally {
      await db.close();
    }
    const out = await runCli(['accounts', 'recover', 'master'], env);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/Temporary password for master:\n\n {2}[A-Za-z]+-[A-Za-z]+-[A-Za-z]+-\d\d\n/);
    const after = await test.open();
    try {
      const row = await after.kysely.selectFrom('account').selectAll().where('username', '=', 'master').executeTakeFirstOrThrow();
      expect(row.locked_at).toBeNull();
      expect(row.must_change_password).toBe(1);
      const event = await after.kysely.selectFrom('audit_event').select(['severity', 'body']).where('action', '=', 'account.recovered').executeTakeFirstOrThrow();
      expect(event.severity).toBe('high');
      expect(event.body).not.toContain(out.stdout.split('\n')[2]!.trim());
    } finally {
      await after.close();
    }
    const none = await runCli(['resets', 'list'], env);
    expect(none.stdout).toBe('No open reset requests.\n');
  });
});
