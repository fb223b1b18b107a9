import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { teaches } from '../../src/directory/groups.js';
import { guessMapping, readCsv, readGenericCsv, readSds, type ColumnMapping, type GenericCsvOptions } from '../../src/directory/import-sources.js';
import { applyImport, countsOf, planImport } from '../../src/directory/imports.js';
import { createAccount } from '../../src/identity/service.js';
import { ROOT } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type TestApp } from '../helpers/runtime.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'imports');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const sdsFixture = () => Object.fromEntries(['users.csv', 'roles.csv', 'classes.csv', 'enrollments.csv', 'orgs.csv'].map((f) => [f, fixture(`sds/${f}`)]));
const actor = systemActor('cli:test');
const PASSWORD = 'Violet-Harbour-Lantern-7';

/** A school's own export: headers that are not ours, mapped by hand. */
const MIS_EXPORT = [
  'Login,Forename,Family,Tutor group,UPN,Type',
  'pa1,Priya,Ahmed,7A;Year 7,K100,Student',
  'pb2,Oscar,Bell,7A;Year 7,K101,Student',
  'pc3,Zoë,Clarke,7B,K102,Student',
  'tt1,Tara,Teacher,7A,T900,Teacher',
].join('\n');
const MIS_MAPPING: ColumnMapping = { username: 'Login', givenName: 'Forename', familyName: 'Family', groups: 'Tutor group', externalId: 'UPN', role: 'Type' };

const available = await dialects();

for (const dialect of available) {
  describe(`imports (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });
    const start = async () => (t = await startTestApp(dialect));

    const csv = (name: string, text: string, options: Partial<GenericCsvOptions> = {}) => {
      const table = readCsv(name, text);
      return readGenericCsv(table, { mapping: options.mapping ?? guessMapping(table.headers), ...options });
    };
    const importCsv = async (name: string, text: string, options: Partial<GenericCsvOptions> & { disableMissing?: boolean } = {}) => {
      const plan = await planImport(t.runtime, 'csv', csv(name, text, options), { disableMissing: options.disableMissing ?? false });
      const result = await applyImport(t.runtime, actor, plan);
      return { plan, result };
    };
    const account = (username: string) => t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirstOrThrow();
    const groupsOf = async (username: string) =>
      (
        await t.runtime.db.kysely
          .selectFrom('group_member as m')
          .innerJoin('directory_group as g', 'g.id', 'm.group_id')
          .innerJoin('account as a', 'a.id', 'm.account_id')
          .select(['g.name', 'g.kind', 'm.member_role'])
          .where('a.username', '=', username)
          .orderBy('g.name')
          .execute()
      ).map((r) => `${r.name}:${r.kind}:${r.member_role}`);
    const events = async (action: string) =>
      (await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', action).orderBy('seq').execute()).map((r) => parseBody(r.body));
    const lastSeq = async () => Number((await t.runtime.db.kysely.selectFrom('audit_event').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow()).seq);
    const person = (username: string, role: Role, extra: Partial<Parameters<typeof createAccount>[1]> = {}) =>
      t.runtime.trail.transaction(actor, (ctx) => createAccount(ctx, { username, displayName: `Manual ${username}`, email: null, role, passwordHash: null, ...extra }));

    it('AC-12 a generic CSV with a column mapping creates people, their groups and memberships', async () => {
      await start();
      const { plan, result } = await importCsv('mis-export.csv', MIS_EXPORT, { mapping: MIS_MAPPING });
      expect(result.counts).toMatchObject({ created: 4, updated: 0, bad: 0, groupsCreated: 3 });
      expect(plan.created.map((c) => c.username)).toEqual(['pa1', 'pb2', 'pc3', 'tt1']);

      const priya = await account('pa1');
      expect(priya).toMatchObject({ display_name: 'Priya Ahmed', given_name: 'Priya', family_name: 'Ahmed', role: 'pupil', status: 'active', source: 'csv', external_id: 'K100', password_hash: null });
      expect((await account('pc3')).display_name).toBe('Zoë Clarke');
      expect((await account('tt1')).role).toBe('staff');
      expect(await groupsOf('pa1')).toEqual(['7A:class:member', 'Year 7:year:member']);
      expect(await groupsOf('tt1')).toEqual(['7A:class:teacher']);
      const tara = await account('tt1');
      expect(await teaches(t.runtime.db.kysely, tara.id, priya.id)).toBe(true);
      expect(await teaches(t.runtime.db.kysely, tara.id, (await account('pc3')).id)).toBe(false);
    });

    it('AC-12 reads a BOM, CRLF line ends, quoted fields with commas and blank lines, with the right line numbers', async () => {
      await start();
      const data = csv('people.csv', fixture('people.csv'));
      expect(data.bad).toEqual([]);
      expect(data.people.map((p) => [p.line, p.username])).toEqual([[2, 'abrown'], [3, 'bcarter'], [5, 'cdavies'], [6, 'devans'], [7, 'fgreen'], [8, 'ghughes']]);
      await importCsv('people.csv', fixture('people.csv'));
      expect((await account('bcarter')).family_name).toBe('Carter, Jnr');
      expect((await account('abrown')).username).toBe('abrown'); // the BOM did not reach the first header
    });

    it('AC-12 every bad row is reported with its file, line and reason, and the good rows still import', async () => {
      await start();
      const { plan } = await importCsv('people-with-errors.csv', fixture('people-with-errors.csv'));
      expect(plan.bad.map((b) => [b.file, b.line])).toEqual([3, 4, 5, 6, 7, 8].map((line) => ['people-with-errors.csv', line]));
      const reasons = plan.bad.map((b) => b.reason);
      expect(reasons[0]).toBe('missing username');
      expect(reasons[1]).toMatch(/^invalid username "Harry Irwin"/);
      expect(reasons[2]).toBe('duplicate in file: the username "abrown" is also on line 2');
      expect(reasons[3]).toBe('invalid e-mail address "not-an-email"');
      expect(reasons[4]).toMatch(/^unknown role "Wizard"/);
      expect(reasons[5]).toMatch(/administrator role is refused/);
      expect(plan.created.map((c) => c.username)).toEqual(['abrown', 'mnash']);
      expect((await account('mnash')).family_name).toBe('Nash, Jr');
      expect(await groupsOf('mnash')).toEqual(['7B:class:member', 'Year 7:year:member']);
      const imported = await t.runtime.db.kysely.selectFrom('account').select('username').where('source', '=', 'csv').orderBy('username').execute();
      expect(imported.map((a) => a.username)).toEqual(['abrown', 'mnash']);
    });

    it('AC-12 a row that cannot be read as CSV is reported, and a broken mapping is a clear error', async () => {
      await start();
      const data = csv('short.csv', 'Username,Role\nann,pupil\nbob\n"cat,pupil\n');
      expect(data.people.map((p) => p.username)).toEqual(['ann']);
      expect(data.bad).toEqual([
        { file: 'short.csv', line: 3, reason: 'has 1 cells where the header has 2 columns (a missing or extra comma?)' },
        { file: 'short.csv', line: 4, reason: expect.stringMatching(/quoted field is never closed/) },
      ]);
      expect(() => csv('no-user.csv', 'Name,Role\nAnn,pupil\n')).toThrow(/Which column of no-user.csv holds the username/);
      expect(() => csv('no-role.csv', 'Username\nann\n')).toThrow(/no role column/);
      expect(() => csv('x.csv', 'Username,Role\nann,pupil\n', { mapping: { username: 'Login', role: 'Role' } })).toThrow(/has no column "Login"/);
      expect(csv('role.csv', 'Username\nann\n', { defaultRole: 'staff' }).people[0]!.role).toBe('staff');
    });

    it('AC-12 re-running the same file changes nothing and records only the summary', async () => {
      await start();
      await importCsv('people.csv', fixture('people.csv'));
      const before = await lastSeq();
      const rows = await t.runtime.db.kysely.selectFrom('account').selectAll().orderBy('username').execute();
      const { plan, result } = await importCsv('people.csv', fixture('people.csv'));
      expect(result.counts).toMatchObject({ created: 0, updated: 0, disabled: 0, unchanged: 6, bad: 0, groupsCreated: 0, membershipsAdded: 0, membershipsRemoved: 0 });
      expect(plan.unchanged).toHaveLength(6);
      expect(await t.runtime.db.kysely.selectFrom('account').selectAll().orderBy('username').execute()).toEqual(rows);
      const after = await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('seq', '>', before).execute();
      expect(after.map((e) => e.action)).toEqual(['import.committed']);
    });

    it('AC-12 disable-missing disables people of the same source no longer in the file, but not anyone whose row was refused', async () => {
      await start();
      await setUpSchool(t);
      await person('office1', 'office');
      await importCsv('people.csv', fixture('people.csv'));
      const devansAdmin = await person('devans.admin', 'administrator', { linkedAccountId: (await account('devans')).id });
      // devans has left the file; ghughes's row is now bad (a typo in the e-mail); the rest are as before.
      const next = fixture('people.csv')
        .split('\r\n')
        .filter((l) => !l.includes('devans'))
        .map((l) => l.replace('g.hughes@springfield.sch.uk', 'g.hughes@'))
        .join('\r\n');
      const dry = await planImport(t.runtime, 'csv', csv('people.csv', next), { disableMissing: true });
      expect(dry.disabled.map((d) => d.username)).toEqual(['devans']);
      expect(dry.bad.map((b) => b.line)).toEqual([7]);
      expect((await account('devans')).status).toBe('active'); // a plan changes nothing

      const withoutFlag = await planImport(t.runtime, 'csv', csv('people.csv', next), { disableMissing: false });
      expect(withoutFlag.disabled).toEqual([]);
      expect(dry.notes).toContain('Daniel Evans (devans) also has the administrator account "devans.admin", which an import does not change: close it with the leaver checklist.');

      await applyImport(t.runtime, actor, dry);
      expect((await account('devans')).status).toBe('disabled');
      expect((await account('ghughes')).status).toBe('active');
      expect((await account('office1')).status).toBe('active');
      expect((await account('master')).status).toBe('active');
      expect((await account('devans.admin')).id).toBe(devansAdmin);
      expect((await account('devans.admin')).status).toBe('active');
      const changed = (await events('account.changed')).filter((e) => e.details.reason === 'no longer in the import file');
      expect(changed.map((e) => e.details.username)).toEqual(['devans']);

      // devans comes back: reported, not silently re-enabled.
      const again = await planImport(t.runtime, 'csv', csv('people.csv', fixture('people.csv')), { disableMissing: true });
      expect(again.held.map((h) => [h.username, h.line])).toEqual([['devans', 6]]);
      expect(again.held[0]!.reason).toMatch(/stays disabled/);
    });

    it('AC-12 a person an import disables or gives another role loses their sessions and any sign-in in progress; the others keep theirs', async () => {
      await start();
      await setUpSchool(t);
      await importCsv('people.csv', fixture('people.csv'));
      const people = ['abrown', 'bcarter', 'devans', 'ghughes'];
      // Imported people get no password: give these one, as a temporary password would.
      await t.runtime.db.kysely.updateTable('account').set({ password_hash: await t.runtime.hasher.hash(PASSWORD), password_set_at: t.clock.now().toISOString() }).where('username', 'in', people).execute();
      const sessions = Object.fromEntries(await Promise.all(people.map(async (u) => [u, await signIn(t, u, PASSWORD)] as const)));
      // And a second sign-in under way for each, waiting at a step (here: choose a new password).
      await t.runtime.db.kysely.updateTable('account').set({ must_change_password: 1 }).where('username', 'in', people).execute();
      for (const username of people) {
        const pending = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password: PASSWORD }, remoteAddress: '10.0.0.9' });
        expect(pending.json(), username).toMatchObject({ status: 'pending', step: { step: 'change_password' } });
      }
      const ids = Object.fromEntries(await Promise.all(people.map(async (u) => [u, (await account(u)).id] as const)));
      const attempts = async (username: string) => (await t.runtime.db.kysely.selectFrom('sign_in_attempt').select('id').where('account_id', '=', ids[username]!).execute()).length;
      const endReasons = async (username: string) => (await t.runtime.db.kysely.selectFrom('session').select('end_reason').where('account_id', '=', ids[username]!).execute()).map((r) => r.end_reason);
      for (const username of people) expect(await attempts(username), username).toBe(1);

      // devans has left the file; ghughes is marked disabled; bcarter is now staff; abrown is as before.
      const lines = fixture('people.csv').split('\r\n').filter((l) => !l.includes('devans'));
      const next = lines
        .map((l, i) => (i === 0 ? `${l},Status` : l === '' ? l : `${l},${l.includes('ghughes') ? 'disabled' : 'active'}`))
        .join('\r\n')
        .replace('bcarter,ben.carter@springfield.sch.uk,7A,7,Pupil', 'bcarter,ben.carter@springfield.sch.uk,7A,7,Staff');
      const { plan, result } = await importCsv('people.csv', next, { disableMissing: true });
      expect(plan.disabled.map((d) => d.username)).toEqual(['devans']);
      expect(plan.updated.map((u) => [u.username, u.changes])).toEqual([
        ['bcarter', { role: { from: 'pupil', to: 'staff' } }],
        ['ghughes', { status: { from: 'active', to: 'disabled' } }],
      ]);
      expect(result.counts).toMatchObject({ updated: 2, disabled: 1, unchanged: 3 });

      for (const username of ['bcarter', 'devans', 'ghughes']) {
        expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: sessions[username]!.headers })).statusCode, username).toBe(401);
        expect(await attempts(username), username).toBe(0);
      }
      expect(await endReasons('devans')).toEqual(['account_disabled']);
      expect(await endReasons('ghughes')).toEqual(['privileges_changed']);
      expect(await endReasons('bcarter')).toEqual(['privileges_changed']);
      // The one the import did not change keeps both.
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: sessions.abrown!.headers })).statusCode).toBe(200);
      expect(await attempts('abrown')).toBe(1);
      expect(await endReasons('abrown')).toEqual([null]);
    });

    it('AC-12 a manual account with the same username is adopted and updated field by field; administrator and master accounts are never touched', async () => {
      await start();
      await setUpSchool(t);
      await person('abrown', 'pupil', { displayName: 'A. Brown', email: 'old@springfield.sch.uk' });
      const admin = await person('fgreen', 'administrator');
      const data = csv('people.csv', fixture('people.csv').replace('ghughes', 'master'));
      const plan = await planImport(t.runtime, 'csv', data, { disableMissing: false });
      expect(plan.updated).toHaveLength(1);
      expect(plan.updated[0]).toMatchObject({
        username: 'abrown',
        line: 2,
        changes: {
          givenName: { from: null, to: 'Amelia' },
          familyName: { from: null, to: 'Brown' },
          displayName: { from: 'A. Brown', to: 'Amelia Brown' },
          email: { from: 'old@springfield.sch.uk', to: 'amelia.brown@springfield.sch.uk' },
          source: { from: 'manual', to: 'csv' },
          externalId: { from: null, to: 'A1001' },
        },
      });
      expect(plan.bad.map((b) => [b.line, b.reason])).toEqual([
        [7, '"fgreen" is an administrator account: imports never change it'],
        [8, '"master" is the master (break-glass) account: imports never change it'],
      ]);
      await applyImport(t.runtime, actor, plan);
      const adopted = await account('abrown');
      expect(adopted).toMatchObject({ source: 'csv', external_id: 'A1001', display_name: 'Amelia Brown' });
      expect((await account('fgreen')).id).toBe(admin);
      expect((await account('fgreen')).display_name).toBe('Manual fgreen');
      // Personal details show in the trail as changed, not as values.
      const [change] = (await events('account.changed')).filter((e) => e.details.username === 'abrown');
      expect(change!.details.changes).toMatchObject({ displayName: 'changed', email: 'changed', source: { from: 'manual', to: 'csv' } });
      expect(JSON.stringify(change)).not.toContain('amelia.brown@');
    });

    it('AC-12 an account from another source keeps its owner, and "staff" does not demote a senior leader', async () => {
      await start();
      await person('abrown', 'pupil', { source: 'scim', externalId: 'entra-1' });
      await person('fgreen', 'senior_leader');
      const plan = await planImport(t.runtime, 'csv', csv('people.csv', fixture('people.csv')), { disableMissing: false });
      expect(plan.bad.map((b) => [b.line, b.reason])).toEqual([[2, 'the username "abrown" belongs to an account managed by SCIM provisioning; an import does not take it over']]);
      const fiona = plan.updated.find((u) => u.username === 'fgreen')!;
      expect(fiona.changes.role).toBeUndefined();
      expect(fiona.changes.source).toEqual({ from: 'manual', to: 'csv' });
    });

    it('AC-12 leavers in the file are reported and stay as they are', async () => {
      await start();
      await importCsv('people.csv', fixture('people.csv'));
      await t.runtime.db.kysely.updateTable('account').set({ status: 'left', left_at: '2026-07-20T15:00:00.000Z' }).where('username', '=', 'cdavies').execute();
      const { plan, result } = await importCsv('people.csv', fixture('people.csv'));
      expect(result.counts).toMatchObject({ held: 1, updated: 0, unchanged: 5 });
      expect(plan.held[0]).toMatchObject({ username: 'cdavies', file: 'people.csv', line: 5, status: 'left' });
      expect(plan.held[0]!.reason).toMatch(/left the school on 2026-07-20; the import does not bring leavers back/);
      expect((await account('cdavies')).status).toBe('left');
    });

    it('AC-12 a pupil who moves class leaves the old class and joins the new one', async () => {
      await start();
      await importCsv('mis-export.csv', MIS_EXPORT, { mapping: MIS_MAPPING });
      const { plan } = await importCsv('mis-export.csv', MIS_EXPORT.replace('pb2,Oscar,Bell,7A;Year 7', 'pb2,Oscar,Bell,7B;Year 7'), { mapping: MIS_MAPPING });
      expect(plan.updated.map((u) => [u.username, u.groupsAdded.map((g) => g.name), u.groupsRemoved.map((g) => g.name)])).toEqual([['pb2', ['7B'], ['7A']]]);
      expect(await groupsOf('pb2')).toEqual(['7B:class:member', 'Year 7:year:member']);
    });

    it('AC-12 SDS v2.1 files create pupils, staff and classes with their teachers and members', async () => {
      await start();
      const data = readSds(sdsFixture());
      expect(data.bad).toEqual([]);
      const plan = await planImport(t.runtime, 'sds', data, { disableMissing: false });
      const { counts } = await applyImport(t.runtime, actor, plan);
      expect(counts).toMatchObject({ created: 6, groupsCreated: 2, membershipsAdded: 6, bad: 0 });
      const roles = await t.runtime.db.kysely.selectFrom('account').select(['username', 'role', 'source', 'external_id']).where('source', '=', 'sds').orderBy('username').execute();
      expect(roles.map((r) => [r.username, r.role, r.external_id])).toEqual([
        ['awhite', 'pupil', 'u-100'],
        ['bblack', 'pupil', 'u-101'],
        ['cgrey', 'pupil', 'u-102'],
        ['mteach', 'staff', 'u-200'],
        // SDS administrator: staff here; administrator rights only on a separate linked account.
        ['phead', 'staff', 'u-201'],
        ['taide', 'staff', 'u-202'],
      ]);
      const classes = await t.runtime.db.kysely.selectFrom('directory_group').select(['name', 'kind', 'source', 'external_id']).orderBy('name').execute();
      expect(classes).toEqual([
        { name: '7 Science', kind: 'class', source: 'sds', external_id: 'c-7sci' },
        { name: '8 Science', kind: 'class', source: 'sds', external_id: 'c-8sci' },
      ]);
      expect(await groupsOf('mteach')).toEqual(['7 Science:class:teacher']);
      expect(await groupsOf('awhite')).toEqual(['7 Science:class:member']);
      const id = async (u: string) => (await account(u)).id;
      expect(await teaches(t.runtime.db.kysely, await id('mteach'), await id('awhite'))).toBe(true);
      expect(await teaches(t.runtime.db.kysely, await id('mteach'), await id('cgrey'))).toBe(false);
      expect(await teaches(t.runtime.db.kysely, await id('phead'), await id('cgrey'))).toBe(true);
      expect(await teaches(t.runtime.db.kysely, await id('awhite'), await id('bblack'))).toBe(false);
      // users.csv carries passwords: none of them is stored or recorded anywhere.
      expect(roles.length).toBeGreaterThan(0);
      const hashes = await t.runtime.db.kysely.selectFrom('account').select('password_hash').where('source', '=', 'sds').execute();
      expect(hashes.every((h) => h.password_hash === null)).toBe(true);
      const trail = await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute();
      expect(trail.some((e) => e.body.includes('Summer2026') || e.body.includes('Winter2026'))).toBe(false);
      expect(t.logs.text).not.toContain('Summer2026');

      // The same files again: nothing changes.
      const again = await planImport(t.runtime, 'sds', readSds(sdsFixture()), { disableMissing: true });
      expect(countsOf(again)).toMatchObject({ created: 0, updated: 0, disabled: 0, unchanged: 6, groupsCreated: 0, groupsRenamed: 0 });
    });

    it('AC-12 SDS bad rows: unknown roles, enrollments naming unknown classes or users, a pupil enrolled as teacher', async () => {
      await start();
      const files = sdsFixture();
      files['users.csv'] += 'u-300,bad name@springfield.sch.uk,Bad,Name,,,,,\nu-301,nrole@springfield.sch.uk,No,Role,,,,,\nu-100,again@springfield.sch.uk,Dup,Id,,,,,\n';
      files['roles.csv'] += 'u-301,org-1,wizard,SY2026,,TRUE,,\nu-999,org-1,student,SY2026,,TRUE,,\nu-300,org-1,student,SY2026,,TRUE,,\n';
      files['enrollments.csv'] += 'c-9zz,u-100,student\nc-8sci,u-999,student\nc-8sci,u-101,teacher\nc-8sci,u-300,student\n';
      const data = readSds(files);
      expect(data.bad.map((b) => [b.file, b.line, b.reason])).toEqual([
        ['users.csv', 8, 'invalid username "bad name": it may use letters, digits, dots, dashes and underscores, starting with a letter or digit (from the sign-in name "bad name@springfield.sch.uk")'],
        ['users.csv', 9, 'user "u-301" has no usable role in roles.csv'],
        ['users.csv', 10, 'duplicate in file: the sourcedId "u-100" is also on line 2'],
        ['roles.csv', 8, 'unknown role "wizard" (SDS roles include student, teacher, aide, staff, administrator)'],
        ['roles.csv', 9, 'names user "u-999", who is not in users.csv'],
        ['roles.csv', 10, 'user "u-300" was not imported (users.csv line 8)'],
        ['enrollments.csv', 8, 'names class "c-9zz", which is not in classes.csv'],
        ['enrollments.csv', 9, 'names user "u-999", who is not in users.csv'],
        ['enrollments.csv', 10, '"bblack" is a student but is enrolled in class "c-8sci" as "teacher": pupils never get a class\'s teacher role'],
        ['enrollments.csv', 11, 'user "u-300" was not imported (users.csv line 8)'],
      ]);
      // The good rows are unaffected.
      const plan = await planImport(t.runtime, 'sds', data, { disableMissing: false });
      expect(plan.created.map((c) => c.username).sort()).toEqual(['awhite', 'bblack', 'cgrey', 'mteach', 'phead', 'taide']);
      expect(plan.created.find((c) => c.username === 'bblack')!.groups.map((g) => [g.name, g.role])).toEqual([['7 Science', 'member']]);
      expect(() => readSds({ 'users.csv': files['users.csv']! })).toThrow(/needs users.csv and roles.csv/);
      expect(() => readSds({ 'users.csv': files['users.csv']!, 'roles.csv': files['roles.csv']!, 'classes.csv': files['classes.csv']! })).toThrow(/classes.csv and enrollments.csv together/);
      expect(() => readSds({ 'users.csv': 'id,username\n1,a\n', 'roles.csv': files['roles.csv']! })).toThrow(/users.csv lacks the column sourcedId/);
    });

    it('AU-02 each created, updated and disabled person is audited with the source, and one summary names the files, counts and who', async () => {
      await start();
      const plan = await planImport(t.runtime, 'sds', readSds(sdsFixture()), { disableMissing: false });
      const { importId } = await applyImport(t.runtime, systemActor('cli:itmanager'), plan);
      const created = await events('account.created');
      expect(created).toHaveLength(6);
      for (const e of created) {
        expect(e.actor).toBe('cli:itmanager');
        expect(e.details).toMatchObject({ via: 'import', source: 'sds', importId, file: 'users.csv' });
      }
      expect(created.find((e) => e.details.username === 'mteach')!.details.groups).toEqual(['7 Science (teacher)']);
      expect((await events('group.created')).map((e) => e.details.name).sort()).toEqual(['7 Science', '8 Science']);
      const [summary] = await events('import.committed');
      expect(summary!.actor).toBe('cli:itmanager');
      expect(summary!.details).toMatchObject({ importId, source: 'sds', files: ['users.csv', 'roles.csv', 'classes.csv', 'enrollments.csv'], by: 'cli:itmanager', counts: { created: 6, bad: 0 } });

      // One leaves the files: with disable-missing, that is audited too.
      const files = sdsFixture();
      files['users.csv'] = files['users.csv']!.split('\n').filter((l) => !l.startsWith('u-102')).join('\n');
      files['roles.csv'] = files['roles.csv']!.split('\n').filter((l) => !l.startsWith('u-102')).join('\n');
      files['enrollments.csv'] = files['enrollments.csv']!.split('\n').filter((l) => !l.includes('u-102')).join('\n');
      files['classes.csv'] = files['classes.csv']!.replace('8 Science', 'Year 8 Science');
      const next = await planImport(t.runtime, 'sds', readSds(files), { disableMissing: true });
      await applyImport(t.runtime, actor, next);
      const changed = await events('account.changed');
      expect(changed.map((e) => [e.details.username, e.details.changes])).toEqual([['cgrey', { status: { from: 'active', to: 'disabled' } }]]);
      expect((await events('group.changed')).map((e) => e.details.changes)).toEqual([{ name: { from: '8 Science', to: 'Year 8 Science' } }]);
      expect((await events('import.committed'))[1]!.details.counts).toMatchObject({ disabled: 1, unchanged: 5, groupsRenamed: 1 });
    });

    it('AC-12 the console previews (columns, guessed mapping, plan) and commits through the API', async () => {
      await start();
      const admin = await setUpSchool(t);
      const body = { kind: 'csv', files: { 'people-with-errors.csv': fixture('people-with-errors.csv') }, disableMissing: false };
      const preview = await t.app.inject({ method: 'POST', url: '/api/imports/preview', headers: admin.headers, payload: body });
      expect(preview.statusCode).toBe(200);
      const p = preview.json();
      expect(p.headers['people-with-errors.csv']).toEqual(['Admission number', 'First name', 'Surname', 'Username', 'Email', 'Form', 'Role']);
      expect(p.guessedMapping).toMatchObject({ username: 'Username', givenName: 'First name', familyName: 'Surname', externalId: 'Admission number', groups: 'Form', email: 'Email', role: 'Role' });
      expect(p.plan.counts).toMatchObject({ created: 2, bad: 6 });
      expect(p.plan.bad.map((b: { line: number }) => b.line)).toEqual([3, 4, 5, 6, 7, 8]);
      expect(await t.runtime.db.kysely.selectFrom('account').select('id').where('source', '=', 'csv').execute()).toEqual([]);

      // A mapping that leaves out the username: no plan yet, and the reason.
      const unmapped = await t.app.inject({ method: 'POST', url: '/api/imports/preview', headers: admin.headers, payload: { ...body, mapping: { givenName: 'First name', role: 'Role' } } });
      expect(unmapped.json()).toMatchObject({ plan: null, problem: expect.stringMatching(/holds the username/) });

      const commit = await t.app.inject({ method: 'POST', url: '/api/imports/commit', headers: admin.headers, payload: body });
      expect(commit.statusCode).toBe(200);
      expect(commit.json().plan.counts).toMatchObject({ created: 2, bad: 6 });
      expect((await account('mnash')).source).toBe('csv');
      const [summary] = await events('import.committed');
      expect(summary!.actor).toBe('master');

      const big = await t.app.inject({ method: 'POST', url: '/api/imports/preview', headers: { ...admin.headers, 'content-type': 'application/json' }, payload: JSON.stringify({ ...body, files: { 'huge.csv': 'x'.repeat(26 * 1024 * 1024) } }) });
      expect(big.statusCode).toBe(413);
      expect(big.json().error.message).toMatch(/too large to import at once \(at most 25 MB altogether\)/);
      const huge = await t.app.inject({ method: 'POST', url: '/api/imports/preview', headers: admin.headers, payload: { ...body, files: { 'huge.csv': `Username,Role\n${'a'.repeat(21 * 1024 * 1024)}` } } });
      expect(huge.statusCode).toBe(413);
      expect(huge.json().error.message).toMatch(/huge.csv is 21.0 MB; an import file may be at most 20 MB/);
    });
  });
}
