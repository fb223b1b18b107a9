import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { profileWarnings } from '../../src/core/profile-warnings.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createGroup, setMembership } from '../../src/directory/groups.js';
import { createAccount } from '../../src/identity/service.js';
import { newRecoveryCodes, newTotpSecret, recoveryCodeHash, totpNow } from '../../src/identity/totp.js';
import { sealAccountTotp } from '../../src/identity/totp-secret.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const NEW_PASSWORD = 'Quiet-Meadow-Compass-19';

async function person(t: TestApp, username: string, role: Role, displayName = 'Jane Bloggs'): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function withTotp(t: TestApp, id: string): Promise<string> {
  const secret = newTotpSecret();
  await t.runtime.db.kysely.updateTable('account').set({ totp_secret: sealAccountTotp(t.runtime, id, secret), totp_enrolled_at: t.clock.now().toISOString() }).where('id', '=', id).execute();
  return secret;
}

/** The reset cookie and CSRF token a browser sends back after a self-service step. */
function held(response: LightMyRequestResponse): Record<string, string> {
  const cookie = response.cookies.find((c) => c.name === '__Host-gatehouse-reset');
  return { ...(cookie ? { cookie: `${cookie.name}=${cookie.value}` } : {}), 'x-csrf-token': (response.json() as { csrfToken: string }).csrfToken };
}

async function actions(t: TestApp, prefix: string): Promise<string[]> {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => r.action);
}

async function signInStatus(t: TestApp, username: string, password: string): Promise<{ code: number; step?: string; reason?: string }> {
  const r = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: '10.0.0.9' });
  const body = r.json() as { status?: string; step?: { step: string; reason?: string } };
  return { code: r.statusCode, step: body.status === 'signed_in' ? 'signed_in' : body.step?.step, reason: body.step?.reason };
}

for (const dialect of await dialects()) {
  describe(`password resets (${dialect})`, () => {
    let t: TestApp;
    let sink: Awaited<ReturnType<typeof startSmtpSink>> | undefined;
    afterEach(async () => {
      await t?.close();
      await sink?.close();
      sink = undefined;
    });

    it('AC-11 a member of staff resets their own password with their authenticator app and the link e-mailed to them, which also unlocks the account', async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url } });
      await setUpSchool(t);
      const id = await person(t, 'jbloggs', 'staff');
      const secret = await withTotp(t, id);
      await t.runtime.db.kysely.updateTable('account').set({ locked_at: t.clock.now().toISOString(), failed_attempts: 10 }).where('id', '=', id).execute();

      t.clock.advance(30_000);
      const start = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'JBloggs', code: await totpNow(secret, t.clock) } });
      expect(start.statusCode, start.body).toBe(200);
      expect(start.json()).toMatchObject({ next: 'email', username: 'jbloggs' });
      await sink.waitFor(1);
      // Without GATEHOUSE_PUBLIC_URL the mail carries the code to type, and no link.
      const mailed = /\n\s+([a-z0-9]{5}-[a-z0-9]{5})\s*\n/.exec(sink.messages[0]!.raw)![1]!;
      expect(sink.messages[0]!.raw).not.toMatch(/https?:\/\//);
      const confirmed = await t.app.inject({ method: 'POST', url: '/api/password-reset/email', headers: held(start), payload: { code: mailed } });
      expect(confirmed.statusCode, confirmed.body).toBe(200);
      const headers = held(confirmed);
      // A new tab of the same browser (the e-mailed link) finds where the reset stands.
      const current = await t.app.inject({ method: 'GET', url: '/api/password-reset', headers: { cookie: headers.cookie! } });
      expect(current.json()).toMatchObject({ next: 'new_password', username: 'jbloggs' });

      // The person's own rules apply: a weak password is refused and the reset stays usable.
      const weak = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers, payload: { newPassword: 'password' } });
      expect(weak.statusCode).toBe(400);
      expect(weak.json().error.code).toBe('password_rejected');
      // Another page (no CSRF token) cannot post the step.
      const forged = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers: { cookie: headers.cookie! }, payload: { newPassword: NEW_PASSWORD } });
      expect(forged.json().error.code).toBe('csrf_failed');
      const done = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers, payload: { newPassword: NEW_PASSWORD } });
      expect(done.statusCode, done.body).toBe(204);
      // Once only.
      const again = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers, payload: { newPassword: 'Another-Long-Phrase-88' } });
      expect(again.statusCode).toBe(410);

      const account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(account.locked_at).toBeNull();
      expect(await signInStatus(t, 'jbloggs', PASSWORD)).toMatchObject({ code: 401 });
      // Off-site staff need MFA; from school the new password is enough.
      expect((await signInStatus(t, 'jbloggs', NEW_PASSWORD)).code).toBe(200);
      expect(await actions(t, 'password_reset.')).toEqual(['password_reset.self_verified', 'password_reset.link_sent', 'password_reset.email_confirmed', 'password_reset.self_completed']);
    });

    it('AC-11 where the profile asks only for the authenticator (pupils, if a school allows them), the new password follows the code', async () => {
      const profile = path.join(mkdtempSync(path.join(os.tmpdir(), 'gatehouse-profile-')), 'school.yaml');
      writeFileSync(profile, 'name: Pupils reset their own\nextends: ncsc\ngroups:\n  pupils:\n    resets: { selfService: true, selfServiceFactors: [authenticator] }\n');
      t = await startTestApp(dialect, { config: { profile } });
      await setUpSchool(t);
      const id = await person(t, 'amy.p', 'pupil', 'Amy Pond');
      const secret = await withTotp(t, id);
      t.clock.advance(30_000);
      const start = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'amy.p', code: await totpNow(secret, t.clock) } });
      expect(start.json(), start.body).toMatchObject({ next: 'new_password' });
      const done = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers: held(start), payload: { newPassword: NEW_PASSWORD } });
      expect(done.statusCode, done.body).toBe(204);
      expect(profileWarnings(t.runtime.profile).find((w) => w.setting === 'resets.selfServiceFactors')?.groups).toEqual(['pupils']);
    });

    it('AC-11 a recovery code works for a reset once; wrong codes, unknown people and pupils all get the same answer', async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url } });
      await setUpSchool(t);
      const id = await person(t, 'jbloggs', 'staff');
      const [code] = newRecoveryCodes(1);
      await t.runtime.db.kysely.insertInto('recovery_code').values({ account_id: id, code_hash: recoveryCodeHash(t.runtime.keyedHash, id, code!), created_at: t.clock.now().toISOString(), used_at: null }).execute();
      const pupilId = await person(t, 'pupil1', 'pupil', 'Pat Pupil');
      const pupilSecret = await withTotp(t, pupilId);

      const first = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'jbloggs', code } });
      expect(first.statusCode).toBe(200);
      const answers = [];
      for (const payload of [
        { username: 'jbloggs', code }, // used already
        { username: 'jbloggs', code: '123456' },
        { username: 'nobody', code: '123456' },
        { username: 'pupil1', code: await totpNow(pupilSecret, t.clock) }, // pupils' resets are done by staff
      ]) {
        const r = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload });
        answers.push({ status: r.statusCode, code: r.json().error.code, message: r.json().error.message });
      }
      expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
      expect(answers[0]!.status).toBe(400);
      const failed = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'password_reset.self_failed').execute();
      expect(failed.map((f) => JSON.parse(f.body).details.reason)).toEqual(['wrong_code', 'wrong_code', 'unknown_username', 'not_allowed_for_group']);
    });

    it('AC-11 guessing codes for one username is throttled', async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url } });
      await setUpSchool(t);
      const id = await person(t, 'jbloggs', 'staff');
      await withTotp(t, id);
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'jbloggs', code: String(100000 + i) }, remoteAddress: `10.1.0.${i + 1}` });
        statuses.push(r.statusCode);
      }
      expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
      expect(statuses.slice(5)).toEqual([429, 429]);
    });

    describe('pupils, by their teachers', () => {
      let teacher: Session;
      let pupilId: string;
      let otherPupilId: string;

      async function classes() {
        t = await startTestApp(dialect);
        await setUpSchool(t);
        const teacherId = await person(t, 'mrsmith', 'staff', 'John Smith');
        pupilId = await person(t, 'amy.p', 'pupil', 'Amy Pond');
        otherPupilId = await person(t, 'rory.w', 'pupil', 'Rory Williams');
        await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
          const mine = await createGroup(ctx, { name: '7A', kind: 'class' });
          const theirs = await createGroup(ctx, { name: '7B', kind: 'class' });
          await setMembership(ctx, mine, teacherId, 'teacher');
          await setMembership(ctx, mine, pupilId, 'member');
          await setMembership(ctx, theirs, otherPupilId, 'member');
        });
        teacher = await signIn(t, 'mrsmith', PASSWORD);
      }

      it('AC-11 a teacher resets the password of a pupil in their class: a temporary password the pupil must change', async () => {
        await classes();
        const list = await t.app.inject({ method: 'GET', url: '/api/my-pupils', headers: teacher.headers });
        expect(list.json().pupils.map((p: { username: string; classes: string[] }) => [p.username, p.classes])).toEqual([['amy.p', ['7A']]]);
        const reset = await t.app.inject({ method: 'POST', url: `/api/my-pupils/${pupilId}/reset`, headers: teacher.headers });
        expect(reset.statusCode, reset.body).toBe(200);
        const { temporaryPassword } = reset.json() as { temporaryPassword: string };
        expect(await signInStatus(t, 'amy.p', PASSWORD)).toMatchObject({ code: 401 });
        expect(await signInStatus(t, 'amy.p', temporaryPassword)).toMatchObject({ code: 200, step: 'change_password' });
        expect(await actions(t, 'password_reset.')).toEqual(['password_reset.pupil']);
      });

      it('AC-03 a teacher is refused a reset for a pupil outside their classes, and the refusal is recorded', async () => {
        await classes();
        const reset = await t.app.inject({ method: 'POST', url: `/api/my-pupils/${otherPupilId}/reset`, headers: teacher.headers });
        expect(reset.statusCode).toBe(403);
        expect(reset.json().error.code).toBe('not_your_pupil');
        expect(await signInStatus(t, 'rory.w', PASSWORD)).toMatchObject({ code: 200 });
        expect(await actions(t, 'password_reset.')).toEqual(['password_reset.refused']);
        // Nor can a teacher reset a colleague this way.
        const colleague = await person(t, 'msjones', 'staff', 'Mary Jones');
        const staff = await t.app.inject({ method: 'POST', url: `/api/my-pupils/${colleague}/reset`, headers: teacher.headers });
        expect(staff.json().error.code).toBe('not_a_pupil');
      });
    });

    it('AC-09 PW-08 PW-07 a temporary password from the accounts page ends the person’s sessions and any sign-in in progress, clears a lock, and is audited without the password', async () => {
      t = await startTestApp(dialect);
      const admin = await setUpSchool(t);
      const pupilId = await person(t, 'amy.p', 'pupil', 'Amy Pond');
      const session = await signIn(t, 'amy.p', PASSWORD);
      // A sign-in under way with the old password, waiting at a step (here: choose a new password).
      await t.runtime.db.kysely.updateTable('account').set({ must_change_password: 1 }).where('id', '=', pupilId).execute();
      const pending = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'amy.p', password: PASSWORD }, remoteAddress: '10.0.0.9' });
      expect(pending.json()).toMatchObject({ status: 'pending', step: { step: 'change_password' } });
      const signInCookie = pending.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
      const pendingHeaders = { cookie: `${signInCookie.name}=${signInCookie.value}`, 'x-csrf-token': pending.json().csrfToken as string };
      await t.runtime.db.kysely.updateTable('account').set({ locked_at: t.clock.now().toISOString(), failed_attempts: 6 }).where('id', '=', pupilId).execute();

      const issued = await t.app.inject({ method: 'POST', url: `/api/accounts/${pupilId}/temporary-password`, headers: admin.headers });
      expect(issued.statusCode, issued.body).toBe(200);
      const { temporaryPassword } = issued.json() as { temporaryPassword: string };

      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: session.headers })).statusCode).toBe(401);
      expect(await t.runtime.db.kysely.selectFrom('sign_in_attempt').select('id').where('account_id', '=', pupilId).execute()).toEqual([]);
      const finish = await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers: pendingHeaders, payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
      expect(finish.statusCode).toBe(401);
      expect(await t.runtime.db.kysely.selectFrom('account').select(['locked_at', 'failed_attempts', 'must_change_password']).where('id', '=', pupilId).executeTakeFirstOrThrow()).toEqual({ locked_at: null, failed_attempts: 0, must_change_password: 1 });
      expect(await signInStatus(t, 'amy.p', temporaryPassword)).toMatchObject({ code: 200, step: 'change_password' });

      const event = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'account.temporary_password_issued').executeTakeFirstOrThrow();
      expect(JSON.parse(event.body).details).toMatchObject({ username: 'amy.p', sessionsEnded: 1, signInsDropped: 1 });
      expect(event.body).not.toContain(temporaryPassword);
    });

    it('AC-15 PW-11 changing one’s own password, or signing out everywhere else, also stops a sign-in under way elsewhere with the old password', async () => {
      t = await startTestApp(dialect);
      await setUpSchool(t);
      const id = await person(t, 'rory.w', 'pupil', 'Rory Williams');
      const session = await signIn(t, 'rory.w', PASSWORD);
      // Someone else, elsewhere, with the old password, waiting at a step.
      const waiting = async () => {
        await t.runtime.db.kysely.updateTable('account').set({ must_change_password: 1 }).where('id', '=', id).execute();
        const pending = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'rory.w', password: current }, remoteAddress: '10.0.0.66' });
        expect(pending.json()).toMatchObject({ status: 'pending', step: { step: 'change_password' } });
        await t.runtime.db.kysely.updateTable('account').set({ must_change_password: 0 }).where('id', '=', id).execute();
        const cookie = pending.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
        return { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': pending.json().csrfToken as string };
      };
      const finishes = async (headers: Record<string, string>) =>
        (await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers, payload: { currentPassword: current, newPassword: 'Some-Other-Harbour-83' } })).statusCode;
      let current = PASSWORD;

      const first = await waiting();
      const changed = await t.app.inject({ method: 'POST', url: '/api/account/password', headers: session.headers, payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
      expect(changed.statusCode, changed.body).toBe(204);
      expect(await finishes(first)).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: session.headers })).statusCode).toBe(200);
      current = NEW_PASSWORD;

      const second = await waiting();
      expect((await t.app.inject({ method: 'DELETE', url: '/api/account/sessions/others', headers: session.headers })).statusCode).toBe(200);
      expect(await finishes(second)).toBe(401);
      expect(await t.runtime.db.kysely.selectFrom('sign_in_attempt').select('id').where('account_id', '=', id).execute()).toEqual([]);

      const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'body']).where('action', 'in', ['account.password_changed', 'session.ended_by_owner']).orderBy('seq').execute();
      expect(events.map((e) => [e.action, JSON.parse(e.body).details.signInsDropped])).toEqual([
        ['account.password_changed', 1],
        ['session.ended_by_owner', 1],
      ]);
    });

    it('AC-10 a staff reset cannot complete without a second person’s approval; every step is audited (AU-02)', async () => {
      t = await startTestApp(dialect);
      const admin = await setUpSchool(t);
      const staffId = await person(t, 'jbloggs', 'staff');
      await person(t, 'head', 'senior_leader', 'Helen Head');
      const head = await signIn(t, 'head', PASSWORD);

      // The direct route is closed for a staff password that has been in use.
      const direct = await t.app.inject({ method: 'POST', url: `/api/accounts/${staffId}/temporary-password`, headers: admin.headers });
      expect(direct.statusCode).toBe(409);
      expect(direct.json().error.code).toBe('approval_required');

      const bad = await t.app.inject({ method: 'POST', url: '/api/password-resets', headers: admin.headers, payload: { accountId: staffId, reason: '' } });
      expect(bad.statusCode).toBe(400);
      const asked = await t.app.inject({ method: 'POST', url: '/api/password-resets', headers: admin.headers, payload: { accountId: staffId, reason: 'Forgot it after half term; phoned the office' } });
      expect(asked.statusCode, asked.body).toBe(201);
      const request = asked.json() as { id: string; status: string };
      expect(request.status).toBe('pending');

      // Not yet: no password before approval, and the requester cannot approve their own request.
      const early = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/issue`, headers: admin.headers, payload: { verifiedHow: 'In person, staff ID card' } });
      expect(early.json().error.code).toBe('approval_required');
      const self = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/approve`, headers: admin.headers, payload: {} });
      expect(self.statusCode).toBe(403);
      expect(self.json().error.code).toBe('second_person_required');
      expect(await signInStatus(t, 'jbloggs', PASSWORD)).toMatchObject({ code: 200 });

      // The approver sees it waiting on the overview.
      const due = await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: head.headers });
      expect(due.json().items.map((i: { kind: string; requirement: string }) => [i.kind, i.requirement])).toContainEqual(['password_reset', 'AC-10']);

      const approved = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/approve`, headers: head.headers, payload: { note: 'Confirmed with Jane by phone' } });
      expect(approved.statusCode, approved.body).toBe(200);
      const missing = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/issue`, headers: admin.headers, payload: {} });
      expect(missing.statusCode).toBe(400);
      const issued = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/issue`, headers: admin.headers, payload: { verifiedHow: 'In person at the office, staff ID card' } });
      expect(issued.statusCode, issued.body).toBe(200);
      const { temporaryPassword } = issued.json() as { temporaryPassword: string };
      expect(await signInStatus(t, 'jbloggs', temporaryPassword)).toMatchObject({ code: 200, step: 'change_password' });
      const twice = await t.app.inject({ method: 'POST', url: `/api/password-resets/${request.id}/issue`, headers: admin.headers, payload: { verifiedHow: 'In person at the office, staff ID card' } });
      expect(twice.statusCode).toBe(409);

      // A refused request issues nothing.
      const other = await person(t, 'msjones', 'staff', 'Mary Jones');
      const second = (await t.app.inject({ method: 'POST', url: '/api/password-resets', headers: head.headers, payload: { accountId: other, reason: 'Says she is locked out' } })).json() as { id: string };
      const refused = await t.app.inject({ method: 'POST', url: `/api/password-resets/${second.id}/refuse`, headers: admin.headers, payload: { note: 'Mary is on leave; this was not her' } });
      expect(refused.json().status).toBe('refused');
      const afterRefusal = await t.app.inject({ method: 'POST', url: `/api/password-resets/${second.id}/issue`, headers: head.headers, payload: { verifiedHow: 'In person, ID card' } });
      expect(afterRefusal.statusCode).toBe(409);

      expect(await actions(t, 'password_reset.')).toEqual([
        'password_reset.requested',
        'password_reset.approved',
        'password_reset.issued',
        'password_reset.requested',
        'password_reset.refused',
      ]);
      const issuedEvent = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'password_reset.issued').executeTakeFirstOrThrow();
      expect(issuedEvent.body).toContain('staff ID card');
      expect(issuedEvent.body).not.toContain(temporaryPassword);
    });

    it('AC-10 a request expires unissued, and the break-glass account cannot be reset this way', async () => {
      t = await startTestApp(dialect);
      const admin = await setUpSchool(t);
      const staffId = await person(t, 'jbloggs', 'staff');
      const master = await t.runtime.db.kysely.selectFrom('account').select('id').where('is_break_glass', '=', 1).executeTakeFirstOrThrow();
      const glass = await t.app.inject({ method: 'POST', url: '/api/password-resets', headers: admin.headers, payload: { accountId: master.id, reason: 'testing the master account' } });
      expect(glass.json().error.code).toBe('break_glass_protected');
      const asked = (await t.app.inject({ method: 'POST', url: '/api/password-resets', headers: admin.headers, payload: { accountId: staffId, reason: 'Forgot it' } })).json() as { id: string };
      t.clock.advance(73 * 3_600_000);
      const list = await t.app.inject({ method: 'GET', url: '/api/password-resets?status=all', headers: (await signIn(t, 'master', 'Correct-Horse-Battery-Staple-42', { totpSecret: admin.totpSecret })).headers });
      expect(list.json().requests.find((r: { id: string }) => r.id === asked.id).status).toBe('expired');
    });
  });
}
