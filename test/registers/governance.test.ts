import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import type { Role } from '../../src/core/authz.js';
import { acceptAupVersion, publishAup } from '../../src/identity/aup.js';
import { createAccount } from '../../src/identity/service.js';
import { csrfTokenFor, startSession } from '../../src/identity/sessions.js';
import { Facts, probe } from '../../src/compliance/probes.js';
import { filteringReviewPoints, governanceDue } from '../../src/registers/governance.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const available = await dialects();
const DAY = 86_400_000;

const points = Object.fromEntries(filteringReviewPoints.map((p) => [p.id, { note: `Discussed: ${p.label}` }]));
const filteringReview = { findings: 'Filtering fits our pupils; YouTube restricted mode stays on.', reportedTo: 'Headteacher and governors (FGB 14 Sept)', points, recommendations: [{ text: 'Add BYOD guidance to the staff handbook', owner: 'DSL', dueAt: '2026-12-01' }] };
const physicalOk = { reportedTo: 'Business manager', items: { server_room_locked: { result: 'pass' }, cabinets_locked: { result: 'pass' }, restricted_access: { result: 'pass' }, cabling_secured: { result: 'pass' } } };

for (const dialect of available) {
  describe(`governance registers (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    afterEach(async () => {
      await t?.close();
    });

    async function start() {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    }
    /** The clock moved on: a fresh session, as an idle one would have expired. */
    const later = async (ms: number) => {
      t.clock.advance(ms);
      admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecrets.get(t)! });
    };
    const call = (method: string, url: string, payload?: unknown, headers: Record<string, string> | null = admin.headers) =>
      t.app.inject({ method: method as 'GET', url, payload: payload as object, headers: headers ?? {} });
    const events = async (action: string) => (await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', '=', action).execute()).length;
    const judged = async (id: string) => (await probe(id)!.evaluate(new Facts(t.runtime))).status;
    const dueKinds = async () => (await governanceDue(t.runtime)).map((i) => i.kind);
    async function person(role: Role, username: string, displayName = `A ${role}`) {
      const id = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: null, role, passwordHash: null }));
      const { token } = await t.runtime.trail.transaction(systemActor('test'), (ctx) => startSession(ctx, id, role, t.runtime.profile, { ip: null, userAgent: null }));
      return { id, headers: { cookie: `__Host-gatehouse-session=${token}`, 'x-csrf-token': csrfTokenFor(token) } };
    }

    it('GV-02 the filtering and monitoring review covers every P4 9.15 point, is due a year on, and sooner when a change is recorded', async () => {
      await start();
      expect(await judged('filtering-review')).toBe('not_met');
      expect(await dueKinds()).toContain('filtering_review');
      // A point left out is refused, naming it; nothing is stored.
      const { teaching_requirements: _left, ...missing } = points;
      const partial = await call('POST', '/api/governance/filtering-reviews', { ...filteringReview, points: missing });
      expect(partial.statusCode).toBe(400);
      expect(partial.body).toContain('teaching_requirements');
      const blank = await call('POST', '/api/governance/filtering-reviews', { ...filteringReview, points: { ...points, risk_profile: { note: '   ' } } });
      expect(blank.statusCode).toBe(400);
      expect(blank.body).toContain('risk_profile');
      expect((await call('GET', '/api/governance')).json().reviews).toEqual([]);

      const made = await call('POST', '/api/governance/filtering-reviews', filteringReview);
      expect(made.statusCode).toBe(201);
      expect(made.json().checklist).toHaveLength(9);
      expect(made.json().recommendations[0]).toMatchObject({ owner: 'DSL', status: 'open' });
      expect(await judged('filtering-review')).toBe('met');
      expect(await dueKinds()).not.toContain('filtering_review');
      const status = (await call('GET', '/api/governance')).json().filtering;
      expect(status.dueAt.slice(0, 10)).toBe('2027-09-07');
      expect(await events('governance.review_recorded')).toBe(1);

      // P4 9.17: new technology brings the review forward to within 30 days.
      await later(3_600_000);
      const change = await call('POST', '/api/governance/review-triggers', { kind: 'new_technology', description: 'Pupil iPads arrive in year 5' });
      expect(change.statusCode).toBe(201);
      expect(await judged('filtering-review')).toBe('due_soon');
      const due = (await governanceDue(t.runtime)).find((i) => i.kind === 'filtering_review')!;
      expect(due.detail).toContain('Pupil iPads');
      expect(due.dueAt!.slice(0, 10)).toBe('2026-10-07');
      await later(31 * DAY);
      expect(await judged('filtering-review')).toBe('not_met');
      expect((await call('POST', '/api/governance/filtering-reviews', filteringReview, (await person('dsl', 'dsl1')).headers)).statusCode).toBe(201);
      expect(await judged('filtering-review')).toBe('met');
      t.clock.advance(366 * DAY);
      expect(await judged('filtering-review')).toBe('not_met');
      expect(await events('governance.change_recorded')).toBe(1);
    });

    it('GV-01 reviews and audits go to senior leaders with recommendations, each with an owner, due date and status', async () => {
      await start();
      expect(await judged('governance-reviews')).toBe('not_met');
      const past = await call('POST', '/api/governance/reviews', { kind: 'audit', title: 'Annual IT security audit', findings: 'Two unpatched servers', reportedTo: 'SLT', recommendations: [{ text: 'Patch', owner: 'IT', dueAt: '2020-01-01' }] });
      expect(past.statusCode).toBe(400);
      expect(past.body).toContain('recommendations.0.dueAt');
      const audit = await call('POST', '/api/governance/reviews', { kind: 'audit', title: 'Annual IT security audit', findings: 'Two unpatched servers; admin passwords shared', reportedTo: 'Headteacher and SLT, 10 Sept', recommendations: [{ text: 'Patch both servers', owner: 'IT provider', dueAt: '2026-09-30' }, { text: '=HYPERLINK("http://evil")', owner: 'Business manager', dueAt: '2026-12-31' }] });
      expect(audit.statusCode).toBe(201);
      expect(await judged('governance-reviews')).toBe('met');
      const [patch] = audit.json().recommendations;
      expect((await call('PUT', `/api/governance/recommendations/${patch.id}`, { status: 'in_progress' })).json()).toMatchObject({ status: 'in_progress', overdue: false });
      await later(30 * DAY);
      expect(await judged('governance-reviews')).toBe('not_met');
      expect(await dueKinds()).toContain('recommendation');
      expect((await call('PUT', `/api/governance/recommendations/${patch.id}`, { status: 'done' })).json()).toMatchObject({ status: 'done', overdue: false });
      expect(await judged('governance-reviews')).toBe('met');
      expect(await dueKinds()).not.toContain('recommendation');
      expect((await call('PUT', `/api/governance/recommendations/${patch.id}`, { status: 'finished' })).statusCode).toBe(400);
      expect(await events('governance.recommendation_updated')).toBe(2);
      const csv = await call('GET', '/api/governance/export/recommendations');
      expect(csv.statusCode).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      expect(csv.body).toContain(`"'=HYPERLINK(""http://evil"")"`);
      expect(csv.body).toContain('Patch both servers');
      expect(await events('governance.register_exported')).toBe(1);
      expect((await call('GET', '/api/governance/export/passwords')).statusCode).toBe(400);
    });

    it('GV-05 training records per member of staff, with the AUP accepted at induction from sign-in, lapse after a year', async () => {
      await start();
      const teacher = await person('staff', 'teacher1', 'Ann Teacher');
      const office = await person('office', 'office1', 'Bob Office');
      await person('pupil', 'pupil1');
      await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        const v = await publishAup(ctx, { audience: 'staff', title: 'Staff AUP', body: 'I will use the school systems responsibly and report concerns.' });
        await acceptAupVersion(ctx, teacher.id, 'teacher1', v.id);
      });
      const before = (await call('GET', '/api/governance/training')).json().people;
      expect(before.map((p: { username: string }) => p.username).sort()).toEqual(['office1', 'teacher1']);
      expect(before.find((p: { username: string }) => p.username === 'teacher1')).toMatchObject({ state: 'none', aupAcceptedAt: '2026-09-07T08:00:00.000Z' });
      expect(await judged('training-records')).toBe('not_met');
      expect(await dueKinds()).toContain('training_overdue');

      const rec = await call('POST', '/api/governance/training', { accountId: teacher.id, completedAt: '2026-09-01', certificateReference: 'NCSC-2026-0412' });
      expect(rec.statusCode).toBe(201);
      expect(rec.json()).toMatchObject({ state: 'current', currentUntil: '2027-09-01T00:00:00.000Z' });
      expect(rec.json().records[0]).toMatchObject({ course: 'NCSC cyber security training for school staff', certificateReference: 'NCSC-2026-0412' });
      // The same record again (a replayed request) is refused.
      expect((await call('POST', '/api/governance/training', { accountId: teacher.id, completedAt: '2026-09-01' })).statusCode).toBe(409);
      // Pupils have no training record here; the future is refused.
      const pupilId = (await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', 'pupil1').executeTakeFirstOrThrow()).id;
      expect((await call('POST', '/api/governance/training', { accountId: pupilId, completedAt: '2026-09-01' })).statusCode).toBe(404);
      expect((await call('POST', '/api/governance/training', { accountId: office.id, completedAt: '2027-01-01' })).statusCode).toBe(400);
      expect((await call('POST', '/api/governance/training', { accountId: office.id, completedAt: '2026-09-05' })).statusCode).toBe(201);
      expect(await judged('training-records')).toBe('met');
      expect(await dueKinds()).not.toContain('training_overdue');

      // "My training": a member of staff sees their own record, and only theirs.
      const mine = await call('GET', '/api/my/training', undefined, teacher.headers);
      expect(mine.statusCode).toBe(200);
      expect(mine.json().person).toMatchObject({ username: 'teacher1', state: 'current' });
      expect(mine.body).not.toContain('office1');
      expect(mine.body).not.toContain('Bob Office');
      expect(await events('governance.training_recorded')).toBe(2);

      t.clock.advance(350 * DAY);
      expect(await judged('training-records')).toBe('due_soon');
      t.clock.advance(20 * DAY);
      expect(await judged('training-records')).toBe('not_met');
      expect((await governanceDue(t.runtime)).find((i) => i.kind === 'training_overdue')!.detail).toContain('Ann Teacher');
    });

    it('GV-05 attacks: a member of staff cannot read others’ training or record their own; governors read but cannot record; wrong roles get 403', async () => {
      await start();
      const teacher = await person('staff', 'teacher1', 'Ann Teacher');
      const other = await person('staff', 'teacher2', 'Carl Other');
      const governor = await person('governor', 'gov1');
      const pupil = await person('pupil', 'pupil1');
      expect((await call('POST', '/api/governance/training', { accountId: other.id, completedAt: '2026-09-01', certificateReference: 'SECRET-REF' })).statusCode).toBe(201);
      for (const url of ['/api/governance/training', '/api/governance', '/api/governance/export/training']) {
        const r = await call('GET', url, undefined, teacher.headers);
        expect(r.statusCode, url).toBe(403);
        expect(r.body).not.toContain('SECRET-REF');
      }
      // No way to name another person on "my training": the query and body are ignored, only the session counts.
      const probeOther = await call('GET', `/api/my/training?accountId=${other.id}`, undefined, teacher.headers);
      expect([200, 400]).toContain(probeOther.statusCode);
      expect(probeOther.body).not.toContain('SECRET-REF');
      expect(probeOther.body).not.toContain('Carl Other');
      // A pupil has no training record and sees nothing of anyone's.
      const pupilMine = await call('GET', '/api/my/training', undefined, pupil.headers);
      expect(pupilMine.json()).toEqual({ person: null });
      expect((await call('POST', '/api/governance/training', { accountId: teacher.id, completedAt: '2026-09-01' }, teacher.headers)).statusCode).toBe(403);
      expect((await call('POST', '/api/governance/training/import', { csv: 'Username,Completed\nteacher1,2026-09-01\n' }, teacher.headers)).statusCode).toBe(403);
      expect((await call('GET', '/api/governance/training', undefined, governor.headers)).statusCode).toBe(200);
      expect((await call('POST', '/api/governance/training', { accountId: teacher.id, completedAt: '2026-09-01' }, governor.headers)).statusCode).toBe(403);
      expect((await call('POST', '/api/governance/filtering-reviews', filteringReview, governor.headers)).statusCode).toBe(403);
      expect((await call('POST', '/api/governance/shortfalls', { title: 'x', risk: 'y' }, teacher.headers)).statusCode).toBe(403);
      expect((await call('GET', '/api/governance', undefined, null)).statusCode).toBe(401);
      expect(await t.runtime.db.kysely.selectFrom('training_record').select('id').execute()).toHaveLength(1);
      // Needs attention: governors see the governance items; staff do not.
      expect((await call('GET', '/api/dashboard/due', undefined, governor.headers)).body).toContain('filtering and monitoring review');
      const staffDue = await call('GET', '/api/dashboard/due', undefined, teacher.headers);
      expect(staffDue.body).not.toContain('filtering and monitoring review');
      expect(staffDue.body).not.toContain('Carl Other');
    });

    it('GV-05 concurrency: the same training record sent five times at once is stored once, the others refused', async () => {
      await start();
      const teacher = await person('staff', 'teacher1', 'Ann Teacher');
      const answers = await Promise.all(Array.from({ length: 5 }, () => call('POST', '/api/governance/training', { accountId: teacher.id, completedAt: '2026-09-01', certificateReference: 'NCSC-1' })));
      expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
      expect(await t.runtime.db.kysely.selectFrom('training_record').select('id').execute()).toHaveLength(1);
      expect(await events('governance.training_recorded')).toBe(1);
    });

    it('GV-05 training CSV import is all-or-nothing: a hostile or wrong file names line and column and stores nothing; a replayed file is refused', async () => {
      await start();
      await person('staff', 'teacher1', 'Ann Teacher');
      await person('staff', 'teacher2', 'Carl Other');
      const count = async () => (await t.runtime.db.kysely.selectFrom('training_record').select('id').execute()).length;
      const bad = 'Username,Course,Completed,Certificate\n' +
        'teacher1,NCSC cyber security training,2026-09-01,C-1\n' +
        '=cmd|\'/c calc\'!A1,NCSC,2026-09-01,\n' +
        'teacher2,NCSC,01/09/2026,\n' +
        'teacher2,NCSC,2027-09-01,\n' +
        `teacher2,${'x'.repeat(400)},2026-09-01,\n`;
      const r = await call('POST', '/api/governance/training/import', { csv: bad });
      expect(r.statusCode).toBe(400);
      const errors = r.json().error.details.errors as Array<{ line: number; column: string; message: string }>;
      expect(errors).toEqual(expect.arrayContaining([
        expect.objectContaining({ line: 3, column: 'Username' }),
        expect.objectContaining({ line: 4, column: 'Completed', message: 'must be a date like 2026-09-01' }),
        expect.objectContaining({ line: 5, column: 'Completed', message: 'is in the future' }),
        expect.objectContaining({ line: 6, column: 'Course' }),
      ]));
      expect(r.json().error.message).toContain('nothing was imported');
      expect(await count()).toBe(0);
      expect((await call('POST', '/api/governance/training/import', { csv: 'Name,When\nteacher1,2026-09-01\n' })).json().error.message).toContain('“Username”');
      expect((await call('POST', '/api/governance/training/import', { csv: 'Username,Completed\nteacher1,2026-09-01\0\n' })).statusCode).toBe(400);
      expect(await count()).toBe(0);

      const good = 'Username,Course,Completed,Certificate\nteacher1,,2026-09-01,NCSC-1\nTEACHER2,Data protection refresher,2026-08-15,\n';
      const ok = await call('POST', '/api/governance/training/import', { csv: good });
      expect(ok.statusCode).toBe(201);
      expect(ok.json()).toEqual({ imported: 2 });
      expect(await count()).toBe(2);
      expect(await events('governance.training_imported')).toBe(1);
      const replay = await call('POST', '/api/governance/training/import', { csv: good });
      expect(replay.statusCode).toBe(400);
      expect(replay.body).toContain('already recorded');
      expect(await count()).toBe(2);
    });

    it('GV-06 policies are reviewed at least yearly: the next review must be within 12 months, and a due review needs attention', async () => {
      await start();
      expect(await judged('policies-reviewed')).toBe('not_met');
      const tooFar = await call('POST', '/api/governance/policy-reviews', { policy: 'Online safety policy', nextReviewAt: '2027-12-01' });
      expect(tooFar.statusCode).toBe(400);
      expect(tooFar.body).toContain('nextReviewAt');
      expect((await call('POST', '/api/governance/policy-reviews', { policy: 'Online safety policy', nextReviewAt: '2026-01-01' })).statusCode).toBe(400);
      expect((await call('POST', '/api/governance/policy-reviews', { policy: '', nextReviewAt: '2027-06-01' })).statusCode).toBe(400);
      const made = await call('POST', '/api/governance/policy-reviews', { policy: 'Online safety policy', nextReviewAt: '2027-06-01', notes: 'Updated for the new filtering' });
      expect(made.statusCode).toBe(201);
      expect(await judged('policies-reviewed')).toBe('met');
      t.clock.advance(250 * DAY);
      expect(await judged('policies-reviewed')).toBe('due_soon');
      expect(await dueKinds()).toContain('policy_review');
      await later(30 * DAY);
      expect(await judged('policies-reviewed')).toBe('not_met');
      // A new review of the same policy replaces it in the register.
      expect((await call('POST', '/api/governance/policy-reviews', { policy: 'online safety policy', nextReviewAt: '2028-05-01' })).statusCode).toBe(201);
      expect((await call('GET', '/api/governance')).json().policies).toHaveLength(1);
      expect(await judged('policies-reviewed')).toBe('met');
      expect(await events('governance.policy_reviewed')).toBe(2);
    });

    it('GV-07 resource shortfalls and their risks are reported to governors, with the date', async () => {
      await start();
      expect(await judged('shortfalls-reported')).toBe('due_soon');
      const s = await call('POST', '/api/governance/shortfalls', { title: 'No budget for a second firewall', risk: 'A single point of failure for filtering' });
      expect(s.statusCode).toBe(201);
      expect(await judged('shortfalls-reported')).toBe('not_met');
      expect(await dueKinds()).toContain('shortfall_unreported');
      expect((await call('PUT', `/api/governance/shortfalls/${s.json().id}/reported`, { reportedToGovernorsAt: '2027-01-01' })).statusCode).toBe(400);
      const reported = await call('PUT', `/api/governance/shortfalls/${s.json().id}/reported`, { reportedToGovernorsAt: '2026-09-07' });
      expect(reported.json()).toMatchObject({ reportedToGovernorsAt: '2026-09-07T00:00:00.000Z' });
      expect(await judged('shortfalls-reported')).toBe('met');
      expect(await dueKinds()).not.toContain('shortfall_unreported');
      expect((await call('DELETE', `/api/governance/shortfalls/${s.json().id}`)).statusCode).toBe(204);
      expect((await call('DELETE', `/api/governance/shortfalls/${s.json().id}`)).statusCode).toBe(404);
      const csv = (await call('GET', '/api/governance/export/shortfalls')).body;
      expect(csv).toContain('No budget for a second firewall');
      expect(await events('governance.shortfall_reported')).toBe(1);
    });

    it('GV-09 GV-10 data-protection walks and the physical-security checklist: a failed item needs attention until a later check passes', async () => {
      await start();
      expect(await judged('dp-walk')).toBe('not_met');
      expect(await judged('physical-security')).toBe('not_met');
      const walk = await call('POST', '/api/governance/dp-walks', { findings: 'One unlocked screen in the office', reportedTo: 'DPO and headteacher', items: [{ area: 'School office PCs', result: 'fail', note: 'Screen left unlocked' }, { area: 'Staff room printer', result: 'pass' }] });
      expect(walk.statusCode).toBe(201);
      expect(walk.json().failed).toEqual(['School office PCs']);
      expect((await call('POST', '/api/governance/dp-walks', { findings: 'x', reportedTo: 'y', items: [] })).statusCode).toBe(400);
      const missing = await call('POST', '/api/governance/physical-checks', { ...physicalOk, items: { ...physicalOk.items, cabling_secured: undefined } });
      expect(missing.statusCode).toBe(400);
      expect(missing.body).toContain('cabling_secured');
      expect((await call('POST', '/api/governance/physical-checks', { ...physicalOk, items: { ...physicalOk.items, server_room_locked: { result: 'maybe' } } })).statusCode).toBe(400);
      const failed = await call('POST', '/api/governance/physical-checks', { ...physicalOk, findings: 'Comms cabinet in the hall was open', items: { ...physicalOk.items, cabinets_locked: { result: 'fail', note: 'Hall cabinet open, key in the lock' } } });
      expect(failed.statusCode).toBe(201);
      expect(await judged('physical-security')).toBe('not_met');
      expect(await dueKinds()).toContain('physical_security_failed');
      await later(DAY);
      expect((await call('POST', '/api/governance/physical-checks', physicalOk)).statusCode).toBe(201);
      expect(await judged('physical-security')).toBe('met');
      expect(await dueKinds()).not.toContain('physical_security_failed');
      expect(await judged('dp-walk')).toBe('not_met'); // its last walk found a failure
      const csv = (await call('GET', '/api/governance/export/physical')).body;
      expect(csv).toContain('Hall cabinet open');
      t.clock.advance(366 * DAY);
      expect(await judged('physical-security')).toBe('not_met');
      expect(await dueKinds()).toEqual(expect.arrayContaining(['physical_security', 'dp_walk']));
    });

    it('GV-01 hostile input: unknown fields, over-long text and markup are refused or kept as plain text; nothing half-stored', async () => {
      await start();
      expect((await call('POST', '/api/governance/reviews', { kind: 'audit', title: 'x', findings: 'y', reportedTo: 'z', admin: true })).statusCode).toBe(400);
      expect((await call('POST', '/api/governance/reviews', { kind: 'root', title: 'x', findings: 'y', reportedTo: 'z' })).statusCode).toBe(400);
      expect((await call('POST', '/api/governance/reviews', { kind: 'audit', title: 'x'.repeat(301), findings: 'y', reportedTo: 'z' })).statusCode).toBe(400);
      const many = Array.from({ length: 51 }, () => ({ text: 'a', owner: 'b', dueAt: '2027-01-01' }));
      expect((await call('POST', '/api/governance/reviews', { kind: 'audit', title: 'x', findings: 'y', reportedTo: 'z', recommendations: many })).statusCode).toBe(400);
      // One bad recommendation among good ones: the review is not stored either.
      const mixed = await call('POST', '/api/governance/reviews', { kind: 'review', title: 'Mixed', findings: 'y', reportedTo: 'z', recommendations: [{ text: 'ok', owner: 'b', dueAt: '2027-01-01' }, { text: 'bad', owner: 'b', dueAt: '2026-13-40' }] });
      expect(mixed.statusCode).toBe(400);
      expect(await t.runtime.db.kysely.selectFrom('governance_review').select('id').execute()).toHaveLength(0);
      expect(await t.runtime.db.kysely.selectFrom('governance_recommendation').select('id').execute()).toHaveLength(0);
      const xss = await call('POST', '/api/governance/reviews', { kind: 'review', title: '<img src=x onerror=alert(1)>', findings: '<script>alert(1)</script>', reportedTo: 'SLT' });
      expect(xss.statusCode).toBe(201);
      expect(xss.json().title).toBe('<img src=x onerror=alert(1)>');
      expect((await call('PUT', '/api/governance/recommendations/00000000-0000-4000-8000-000000000000', { status: 'done' })).statusCode).toBe(404);
      expect((await call('PUT', '/api/governance/recommendations/not-an-id', { status: 'done' })).statusCode).toBe(400);
    });
  });
}
