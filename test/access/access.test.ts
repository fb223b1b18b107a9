import { afterEach, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import { can, permissions, roles, type Permission, type Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createGroup } from '../../src/directory/groups.js';
import { createAccount } from '../../src/identity/service.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const DAY = 86_400_000;

async function person(t: TestApp, username: string, role: Role, displayName = username): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function events(t: TestApp, prefix: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'severity', 'actor', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => ({ action: r.action, severity: r.severity, actor: r.actor, details: parseBody(r.body).details as Record<string, unknown> }));
}

interface Matrix {
  gatehouse: { roles: Array<{ role: string; label: string; shortLabel: string }>; permissions: Array<{ permission: string; description: string; roles: string[] }> };
  systems: Array<{ id: string; name: string; description: string | null; grants: Array<{ subject: string; level: string; note: string | null }> }>;
  subjects: Array<{ subject: string; kind: string; name: string }>;
  rules: Array<{ id: string; rule: string }>;
}
interface Review {
  id: string;
  status: string;
  accounts: number;
  decided: number;
  changes: number;
  signedOffAt: string | null;
  signedOffBy: { id: string | null; name: string } | null;
  summary: string | null;
  snapshot: {
    takenAt: string;
    matrix: Matrix;
    accounts: Array<{ id: string; username: string; role: string; status: string; isBreakGlass: boolean; linkedAccount: { username: string } | null; reasons: string[]; lastSignInAt: string | null; mfaEnrolled: boolean }>;
  };
  decisions: { accounts: Record<string, { decision: string; note: string | null; disabled: boolean }>; matrixNote: string | null };
}
interface DueItem {
  kind: string;
  title: string;
  dueAt: string | null;
  overdue: boolean;
  href: string;
  requirement: string;
}

const available = await dialects();

for (const dialect of available) {
  describe(`access rights and their review (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    afterEach(async () => {
      await t?.close();
    });

    const start = async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    };
    const as = (session: Session) => ({
      get: (url: string) => t.app.inject({ method: 'GET', url, headers: session.headers }),
      send: (method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => t.app.inject({ method, url, headers: session.headers, payload: payload as object }),
    });
    const headteacher = async () => {
      await person(t, 'head', 'senior_leader', 'Helen Head');
      return signIn(t, 'head', PASSWORD);
    };
    const dueItems = async (session: Session): Promise<DueItem[]> => {
      const response = await as(session).get('/api/dashboard/due');
      expect(response.statusCode).toBe(200);
      return (response.json() as { items: DueItem[] }).items.filter((i) => i.kind === 'access_review');
    };
    const signOffAll = async (head: Session) => {
      const review = (await as(head).send('POST', '/api/access/reviews')).json() as Review;
      for (const account of review.snapshot.accounts) {
        expect((await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${account.id}`, { decision: 'confirm' })).statusCode).toBe(200);
      }
      const signed = await as(head).send('POST', `/api/access/reviews/${review.id}/sign-off`, { summary: 'All privileged accounts confirmed.' });
      expect(signed.statusCode, signed.body).toBe(200);
      return signed.json() as Review;
    };

    it('AC-01 shows each role’s rights in Gatehouse from the authorization table', async () => {
      await start();
      await person(t, 'governor1', 'governor');
      const governor = await signIn(t, 'governor1', PASSWORD);
      const response = await as(governor).get('/api/access/matrix');
      expect(response.statusCode).toBe(200);
      const matrix = response.json() as Matrix;
      expect(matrix.gatehouse.roles.map((r) => r.role)).toEqual([...roles]);
      expect(matrix.gatehouse.roles.find((r) => r.role === 'dsl')).toMatchObject({ label: 'Designated safeguarding lead', shortLabel: 'DSL' });
      // Every permission, with its description and exactly the roles the authorization table grants it to.
      expect(matrix.gatehouse.permissions.map((p) => p.permission)).toEqual(Object.keys(permissions));
      for (const p of matrix.gatehouse.permissions) {
        expect(p.description).toBe(permissions[p.permission as Permission]);
        expect(p.roles, p.permission).toEqual(roles.filter((role) => can(role, p.permission as Permission)));
      }
      expect(matrix.gatehouse.permissions.find((p) => p.permission === 'access.review')!.roles).toEqual(['senior_leader']);
      expect(matrix.gatehouse.permissions.find((p) => p.permission === 'system.read')!.roles).toEqual(['administrator']);
      // AC-03: the object-level rules come with it, in plain English.
      expect(matrix.rules.map((r) => r.rule)).toContain(
        'Staff may reset pupils’ passwords only for pupils in classes they teach (recorded as the class’s teacher in the directory). IT administrators may reset any pupil’s password.',
      );
      // Subjects: every role, and the directory's groups.
      expect(matrix.subjects.filter((s) => s.kind === 'role').map((s) => s.subject)).toEqual(roles.map((r) => `role:${r}`));

      await person(t, 'pupil1', 'pupil');
      const pupil = await signIn(t, 'pupil1', PASSWORD);
      const refused = await as(pupil).get('/api/access/matrix');
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('forbidden');
    });

    it('AC-01 records each group’s rights in the school’s systems', async () => {
      await start();
      const head = await headteacher();
      const year7 = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createGroup(ctx, { name: 'Year 7', kind: 'year' }));

      const added = await as(admin).send('POST', '/api/access/systems', { name: 'MIS (Arbor)', description: 'Pupil records, attendance, behaviour' });
      expect(added.statusCode, added.body).toBe(201);
      const mis = added.json() as { id: string };
      const finance = (await as(head).send('POST', '/api/access/systems', { name: 'Finance' })).json() as { id: string };

      const grant = (systemId: string, body: unknown) => as(admin).send('PUT', `/api/access/systems/${systemId}/grants`, body);
      expect((await grant(mis.id, { subject: 'role:office', level: 'edit', note: 'Admissions and attendance' })).statusCode).toBe(200);
      expect((await grant(mis.id, { subject: 'role:staff', level: 'read' })).statusCode).toBe(200);
      expect((await grant(mis.id, { subject: `group:${year7}`, level: 'none' })).statusCode).toBe(200);
      expect((await grant(finance.id, { subject: 'role:office', level: 'admin' })).statusCode).toBe(200);
      // A change of level keeps the note; then the staff entry is cleared altogether.
      const changed = await grant(mis.id, { subject: 'role:office', level: 'admin' });
      expect(changed.json().grants).toContainEqual(expect.objectContaining({ subject: 'role:office', level: 'admin', note: 'Admissions and attendance' }));
      expect((await grant(mis.id, { subject: 'role:staff', level: null })).statusCode).toBe(200);
      // Setting what is already recorded changes nothing and records nothing.
      expect((await grant(finance.id, { subject: 'role:office', level: 'admin' })).statusCode).toBe(200);

      const renamed = await as(admin).send('PATCH', `/api/access/systems/${finance.id}`, { name: 'Finance (PS Financials)' });
      expect(renamed.json()).toMatchObject({ name: 'Finance (PS Financials)' });

      const matrix = (await as(head).get('/api/access/matrix')).json() as Matrix;
      expect(matrix.systems.map((s) => s.name)).toEqual(['Finance (PS Financials)', 'MIS (Arbor)']);
      expect(matrix.systems.find((s) => s.name === 'MIS (Arbor)')!.grants).toEqual([
        expect.objectContaining({ subject: `group:${year7}`, level: 'none', note: null }),
        expect.objectContaining({ subject: 'role:office', level: 'admin', note: 'Admissions and attendance' }),
      ]);
      expect(matrix.subjects).toContainEqual({ subject: `group:${year7}`, kind: 'group', name: 'Year 7', groupKind: 'year' });

      const grants = await events(t, 'access.grant_changed');
      expect(grants.map((e) => [e.details.system, e.details.subject, e.details.from, e.details.to])).toEqual([
        ['MIS (Arbor)', 'role:office', null, { level: 'edit', note: 'Admissions and attendance' }],
        ['MIS (Arbor)', 'role:staff', null, { level: 'read', note: null }],
        ['MIS (Arbor)', `group:${year7}`, null, { level: 'none', note: null }],
        ['Finance', 'role:office', null, { level: 'admin', note: null }],
        ['MIS (Arbor)', 'role:office', { level: 'edit', note: 'Admissions and attendance' }, { level: 'admin', note: 'Admissions and attendance' }],
        ['MIS (Arbor)', 'role:staff', { level: 'read', note: null }, null],
      ]);
      expect(grants.every((e) => e.severity === 'notice')).toBe(true);
      expect(grants[0]!.actor).toBe('master');
      expect(grants[2]!.details.subjectName).toBe('Year 7');

      // Removing a system removes its rights with it, and is recorded.
      expect((await as(admin).send('DELETE', `/api/access/systems/${finance.id}`)).statusCode).toBe(204);
      expect(((await as(head).get('/api/access/matrix')).json() as Matrix).systems.map((s) => s.name)).toEqual(['MIS (Arbor)']);
      expect(await events(t, 'access.system_')).toEqual([
        expect.objectContaining({ action: 'access.system_added', details: { name: 'MIS (Arbor)', description: 'Pupil records, attendance, behaviour' } }),
        expect.objectContaining({ action: 'access.system_added', actor: 'head', details: { name: 'Finance', description: null } }),
        expect.objectContaining({ action: 'access.system_changed', details: { name: 'Finance (PS Financials)', changes: { name: { from: 'Finance', to: 'Finance (PS Financials)' } } } }),
        expect.objectContaining({ action: 'access.system_removed', severity: 'notice', details: { name: 'Finance (PS Financials)', grantsRemoved: 1 } }),
      ]);

      // A governor reads the matrix but cannot change it.
      await person(t, 'governor1', 'governor');
      const governor = await signIn(t, 'governor1', PASSWORD);
      const refused = await as(governor).send('PUT', `/api/access/systems/${mis.id}/grants`, { subject: 'role:governor', level: 'admin' });
      expect(refused.statusCode).toBe(403);
    });

    it('AC-02 a senior leader reviews every privileged account and signs off; the snapshot is kept', async () => {
      await start();
      const head = await headteacher();
      const headId = (await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', 'head').executeTakeFirstOrThrow()).id;
      await person(t, 'dsl1', 'dsl', 'Dee Safeguarding');
      await person(t, 'dpo1', 'dpo', 'Dan Protection');
      const teacherId = await person(t, 'tteacher', 'staff', 'Tom Teacher');
      await person(t, 'pupil1', 'pupil');
      await reauthenticate(t, admin); // giving administrator rights needs it (test/identity/reauth.test.ts)
      const linked = await as(admin).send('POST', `/api/accounts/${teacherId}/administrator-account`);
      expect(linked.statusCode).toBe(201);
      const linkedId = (linked.json() as { account: { id: string } }).account.id;
      await as(admin).send('POST', '/api/access/systems', { name: 'Google Workspace' });

      const started = await as(head).send('POST', '/api/access/reviews');
      expect(started.statusCode, started.body).toBe(201);
      const review = started.json() as Review;
      expect(review.status).toBe('in_progress');
      const byName = new Map(review.snapshot.accounts.map((a) => [a.username, a]));
      // Everyone with privileged rights, and no one else.
      expect([...byName.keys()].sort()).toEqual(['dpo1', 'dsl1', 'head', 'master', 'tteacher.admin']);
      expect(byName.get('master')).toMatchObject({ isBreakGlass: true, mfaEnrolled: true, status: 'active' });
      expect(byName.get('master')!.lastSignInAt).not.toBeNull();
      expect(byName.get('head')).toMatchObject({ role: 'senior_leader', mfaEnrolled: false });
      expect(byName.get('head')!.lastSignInAt).not.toBeNull();
      expect(byName.get('dsl1')!.lastSignInAt).toBeNull();
      expect(byName.get('tteacher.admin')).toMatchObject({ role: 'administrator', linkedAccount: expect.objectContaining({ username: 'tteacher' }) });
      expect(byName.get('tteacher.admin')!.reasons).toContain('Administrator account of Tom Teacher (tteacher)');
      expect(review.snapshot.matrix.systems.map((s) => s.name)).toEqual(['Google Workspace']);
      expect(review.snapshot.matrix.gatehouse.permissions.length).toBe(Object.keys(permissions).length);

      // Only one review at a time.
      const second = await as(head).send('POST', '/api/access/reviews');
      expect(second.statusCode).toBe(409);
      expect(second.json().error.code).toBe('review_in_progress');

      const decide = (accountId: string, body: unknown) => as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${accountId}`, body);
      const id = (username: string) => byName.get(username)!.id;
      // The master account and one's own account cannot be disabled from the review.
      const glass = await decide(id('master'), { decision: 'change', note: 'Disable it', disable: true });
      expect(glass.statusCode).toBe(409);
      expect(glass.json().error.code).toBe('break_glass_protected');
      const own = await decide(headId, { decision: 'change', note: 'Me', disable: true });
      expect(own.statusCode).toBe(409);
      expect(own.json().error.code).toBe('own_account');

      expect((await decide(id('master'), { decision: 'confirm', note: 'Sealed envelope in the safe, checked' })).statusCode).toBe(200);
      expect((await decide(headId, { decision: 'confirm' })).statusCode).toBe(200);
      expect((await decide(id('dpo1'), { decision: 'confirm' })).statusCode).toBe(200);
      expect((await decide(id('dsl1'), { decision: 'change', note: 'Deputy DSL should also be recorded' })).statusCode).toBe(200);
      const disabled = await decide(linkedId, { decision: 'change', note: 'Tom no longer looks after the network', disable: true });
      expect(disabled.statusCode, disabled.body).toBe(200);
      const account = await t.runtime.db.kysely.selectFrom('account').select('status').where('id', '=', linkedId).executeTakeFirstOrThrow();
      expect(account.status).toBe('disabled');
      // The dsl account was only marked for change: still active.
      expect((await t.runtime.db.kysely.selectFrom('account').select('status').where('username', '=', 'dsl1').executeTakeFirstOrThrow()).status).toBe('active');
      expect((await as(head).send('PUT', `/api/access/reviews/${review.id}/matrix-note`, { note: 'Office should not have admin rights in Finance.' })).statusCode).toBe(200);

      const signed = await as(head).send('POST', `/api/access/reviews/${review.id}/sign-off`, { summary: 'Reviewed with the business manager. One administrator account disabled.' });
      expect(signed.statusCode, signed.body).toBe(200);
      const done = signed.json() as Review;
      expect(done).toMatchObject({ status: 'signed_off', accounts: 5, decided: 5, changes: 2, summary: 'Reviewed with the business manager. One administrator account disabled.', signedOffAt: t.clock.now().toISOString() });
      expect(done.signedOffBy).toEqual({ id: headId, name: 'Helen Head (head)' });
      expect(done.decisions.accounts[linkedId]).toMatchObject({ decision: 'change', disabled: true, note: 'Tom no longer looks after the network' });
      expect(done.decisions.matrixNote).toBe('Office should not have admin rights in Finance.');

      const audit = await events(t, 'access.review_');
      expect(audit.map((e) => e.action)).toEqual([
        'access.review_started',
        ...Array(5).fill('access.review_decided'),
        'access.review_matrix_noted',
        'access.review_signed_off',
      ]);
      expect(audit.at(-1)).toMatchObject({ severity: 'notice', actor: 'head', details: expect.objectContaining({ privilegedAccounts: 5, confirmed: 3, changes: 2, disabled: 1 }) });
      expect(await events(t, 'account.changed')).toEqual([expect.objectContaining({ actor: 'head', details: expect.objectContaining({ username: 'tteacher.admin', changes: { status: { from: 'active', to: 'disabled' } } }) })]);

      // Later changes to the matrix and accounts leave the record as it was.
      await as(admin).send('POST', '/api/access/systems', { name: 'Finance' });
      await person(t, 'newdsl', 'dsl');
      const kept = (await as(admin).get(`/api/access/reviews/${review.id}`)).json() as Review;
      expect(kept.snapshot.matrix.systems.map((s) => s.name)).toEqual(['Google Workspace']);
      expect(kept.snapshot.accounts.map((a) => a.username)).not.toContain('newdsl');
      expect(kept.snapshot.accounts.find((a) => a.id === linkedId)!.status).toBe('active');
      // A signed-off review is read-only.
      const late = await decide(id('dsl1'), { decision: 'confirm' });
      expect(late.statusCode).toBe(409);
      expect(late.json().error.code).toBe('review_closed');

      const list = (await as(admin).get('/api/access/reviews')).json() as { status: { lastSignedOffAt: string; nextDueAt: string; overdue: boolean; inProgress: unknown }; reviews: Review[] };
      expect(list.reviews.map((r) => [r.id, r.status])).toEqual([[review.id, 'signed_off']]);
      expect(list.status).toMatchObject({ lastSignedOffAt: done.signedOffAt, nextDueAt: done.signedOffAt!.replace('2026', '2027'), overdue: false, inProgress: null });
    });

    it('AC-02 the review covers every role with more than everyday rights: the school office and governors too, and no pupil or member of staff', async () => {
      await start();
      const head = await headteacher();
      await person(t, 'office1', 'office', 'Olive Office');
      await person(t, 'gov1', 'governor', 'Gina Governor');
      await person(t, 'tteacher', 'staff', 'Tom Teacher');
      await person(t, 'pupil1', 'pupil');
      const review = (await as(head).send('POST', '/api/access/reviews')).json() as Review;
      const byName = new Map(review.snapshot.accounts.map((a) => [a.username, a]));
      expect([...byName.keys()].sort()).toEqual(['gov1', 'head', 'master', 'office1']);
      expect(byName.get('office1')!.reasons).toContain('Role: School office (reception)');
      expect(byName.get('gov1')!.reasons).toContain('Role: Governor');
    });

    it('AC-02 refuses sign-off while a privileged account lacks a decision', async () => {
      await start();
      const head = await headteacher();
      await person(t, 'dsl1', 'dsl');
      const review = (await as(head).send('POST', '/api/access/reviews')).json() as Review;
      for (const account of review.snapshot.accounts.filter((a) => a.username !== 'dsl1')) {
        await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${account.id}`, { decision: 'confirm' });
      }
      const refused = await as(head).send('POST', `/api/access/reviews/${review.id}/sign-off`, { summary: 'Done' });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error).toMatchObject({ code: 'decisions_missing', message: expect.stringContaining('1 still needs a decision (dsl1)') });
      const still = (await as(head).get(`/api/access/reviews/${review.id}`)).json() as Review;
      expect(still).toMatchObject({ status: 'in_progress', signedOffAt: null, decided: 2, accounts: 3 });
      expect(await events(t, 'access.review_signed_off')).toEqual([]);
    });

    it('AC-02 an overdue review shows on the dashboard', async () => {
      await start();
      let head = await headteacher();
      await person(t, 'staff1', 'staff');
      const staff = await signIn(t, 'staff1', PASSWORD);

      // Never reviewed: due now, and overdue, for those who can see access rights.
      expect(await dueItems(head)).toEqual([expect.objectContaining({ title: 'Annual access review overdue', dueAt: null, overdue: true, href: '/access', requirement: 'AC-02' })]);
      expect(await dueItems(admin)).toHaveLength(1);
      expect(await dueItems(staff)).toEqual([]);

      const signed = await signOffAll(head);
      expect(await dueItems(head)).toEqual([]);

      // Within a month of the date (12 months under the baseline profile) it shows as due, not yet overdue.
      t.clock.advance(345 * DAY);
      head = await signIn(t, 'head', PASSWORD); // (sessions end after idle minutes)
      expect(await dueItems(head)).toEqual([expect.objectContaining({ title: 'Annual access review due', overdue: false, dueAt: signed.signedOffAt!.replace('2026', '2027') })]);
      // Thirteen months on, it is overdue again.
      t.clock.set(new Date(new Date(signed.signedOffAt!).getTime() + 13 * 31 * DAY));
      head = await signIn(t, 'head', PASSWORD);
      const [item] = await dueItems(head);
      expect(item).toMatchObject({ title: 'Annual access review overdue', overdue: true, dueAt: signed.signedOffAt!.replace('2026', '2027') });
      const status = (await as(head).get('/api/access/reviews')).json() as { status: { overdue: boolean } };
      expect(status.status.overdue).toBe(true);
    });

    it('AC-02 an IT administrator cannot start, decide or sign off a review', async () => {
      await start();
      const head = await headteacher();
      const review = (await as(head).send('POST', '/api/access/reviews')).json() as Review;
      const attempts = [
        await as(admin).send('POST', '/api/access/reviews'),
        await as(admin).send('PUT', `/api/access/reviews/${review.id}/accounts/${review.snapshot.accounts[0]!.id}`, { decision: 'confirm' }),
        await as(admin).send('POST', `/api/access/reviews/${review.id}/sign-off`, { summary: 'Signed by IT' }),
      ];
      for (const response of attempts) {
        expect(response.statusCode).toBe(403);
        expect(response.json().error.code).toBe('forbidden');
      }
      // The administrator can still read it.
      expect((await as(admin).get(`/api/access/reviews/${review.id}`)).statusCode).toBe(200);
    });

    it('AC-01 AC-02 explains bad input and changes nothing', async () => {
      await start();
      const head = await headteacher();
      const expectInvalid = async (response: Awaited<ReturnType<ReturnType<typeof as>['get']>>, field: string, message: RegExp) => {
        expect(response.statusCode, response.body).toBe(400);
        const error = response.json().error as { code: string; message: string; fields?: Array<{ field: string; message: string }> };
        expect(error.code).toBe('validation_failed');
        if (error.fields) expect(error.fields.map((f) => f.field)).toContain(field);
        expect(error.message).toMatch(message);
      };
      await expectInvalid(await as(admin).send('POST', '/api/access/systems', { name: '   ' }), 'body.name', /is required/);
      const mis = (await as(admin).send('POST', '/api/access/systems', { name: 'MIS (Arbor)' })).json() as { id: string };
      const duplicate = await as(admin).send('POST', '/api/access/systems', { name: 'mis (arbor)' });
      expect(duplicate.statusCode).toBe(409);
      expect(duplicate.json().error).toMatchObject({ code: 'system_exists', message: 'The school system "mis (arbor)" is already listed.' });
      await expectInvalid(await as(admin).send('PUT', `/api/access/systems/${mis.id}/grants`, { subject: 'role:staff', level: 'owner' }), 'body.level', /must be one of none, read, edit, admin/);
      await expectInvalid(await as(admin).send('PUT', `/api/access/systems/${mis.id}/grants`, { subject: 'role:wizard', level: 'read' }), 'body.subject', /must be role:<role>/);
      await expectInvalid(await as(admin).send('PUT', `/api/access/systems/${mis.id}/grants`, { subject: 'group:00000000-0000-4000-8000-000000000000', level: 'read' }), 'body.subject', /not in the directory/);
      const missing = await as(admin).send('PUT', '/api/access/systems/00000000-0000-4000-8000-000000000000/grants', { subject: 'role:staff', level: 'read' });
      expect(missing.statusCode).toBe(404);
      expect(((await as(admin).get('/api/access/matrix')).json() as Matrix).systems).toEqual([expect.objectContaining({ name: 'MIS (Arbor)', grants: [] })]);

      const review = (await as(head).send('POST', '/api/access/reviews')).json() as Review;
      const someone = review.snapshot.accounts[0]!.id;
      await expectInvalid(await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${someone}`, { decision: 'change' }), 'body.note', /say what should change/);
      await expectInvalid(await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${someone}`, { decision: 'confirm', disable: true }), 'body.disable', /only with a "change" decision/);
      await expectInvalid(await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/${someone}`, { decision: 'maybe' }), 'body.decision', /must be confirm or change/);
      await expectInvalid(await as(head).send('POST', `/api/access/reviews/${review.id}/sign-off`, { summary: '' }), 'body.summary', /is required/);
      const stranger = await as(head).send('PUT', `/api/access/reviews/${review.id}/accounts/00000000-0000-4000-8000-000000000000`, { decision: 'confirm' });
      expect(stranger.statusCode).toBe(404);
      const still = (await as(head).get(`/api/access/reviews/${review.id}`)).json() as Review;
      expect(still).toMatchObject({ status: 'in_progress', decided: 0 });
      expect(await events(t, 'access.review_decided')).toEqual([]);
    });

    if (dialect === 'sqlite') {
      it('AC-01 AC-02 the CLI prints the matrix and the review status', async () => {
        await start();
        await as(admin).send('POST', '/api/access/systems', { name: 'MIS (Arbor)' }).then((r) => as(admin).send('PUT', `/api/access/systems/${r.json().id}/grants`, { subject: 'role:office', level: 'edit', note: 'Admissions' }));
        const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
        const matrix = await runCli(['access', 'matrix'], env);
        expect(matrix.code, matrix.stderr).toBe(0);
        expect(matrix.stdout).toMatch(/access\.review\s+· +✓ +·/);
        expect(matrix.stdout).toMatch(/MIS \(Arbor\)\s+.*Edit\*/);
        expect(matrix.stdout).toContain('Staff may reset pupils’ passwords only for pupils in classes they teach');
        const status = await runCli(['access', 'review', 'status', '--check'], env);
        expect(status.stdout).toContain('Last signed off: never');
        expect(status.stdout).toContain('OVERDUE');
        expect(status.code).toBe(1);
      }, 60_000);
    }
  });
}
