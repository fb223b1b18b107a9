import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { ManualClock } from '../../src/core/clock.js';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { totpNow } from '../../src/identity/totp.js';
import { dialects } from '../helpers/databases.js';
import { masterSecrets, reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';

interface Pending {
  status: string;
  csrfToken: string;
  step?: { step: string; reason?: string; aup?: { id: string; version: number }; secret?: string };
  banner?: string | null;
  passwordReminder?: string | null;
  account?: { username: string };
}

async function person(t: TestApp, username: string, role: Role, password = PASSWORD, displayName = 'Jane Bloggs'): Promise<string> {
  const hash = await t.runtime.hasher.hash(password);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function attempt(t: TestApp, username: string, password: string, ip = '10.0.0.20') {
  return t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: ip });
}

function pendingHeaders(response: Awaited<ReturnType<typeof attempt>>): Record<string, string> {
  const cookie = response.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
  return { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': (response.json() as Pending).csrfToken };
}

async function events(t: TestApp, prefix: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'severity', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => ({ action: r.action, severity: r.severity, details: parseBody(r.body).details as Record<string, unknown> }));
}

const available = await dialects();

for (const dialect of available) {
  describe(`sign-in under the policy profile (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });
    const start = async (profile: string, options: { clock?: ManualClock; smtpUrl?: string; failuresPerAddress?: number } = {}) => {
      t = await startTestApp(dialect, {
        clock: options.clock,
        config: { profile, ...(options.smtpUrl ? { smtpUrl: options.smtpUrl } : {}), ...(options.failuresPerAddress ? { signInFailuresPerAddress: options.failuresPerAddress } : {}) },
      });
      return t;
    };

    it('PW-07 p1 locks a staff account after 6 successive failures; the right password is then refused alike', async () => {
      await start('p1');
      await person(t, 'jbloggs', 'staff');
      for (let i = 1; i <= 5; i++) expect((await attempt(t, 'jbloggs', `wrong-${i}`)).statusCode).toBe(401);
      let account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', 'jbloggs').executeTakeFirstOrThrow();
      expect(account).toMatchObject({ failed_attempts: 5, locked_at: null });
      expect((await attempt(t, 'jbloggs', 'wrong-6')).statusCode).toBe(401);
      account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', 'jbloggs').executeTakeFirstOrThrow();
      expect(account.locked_at).not.toBeNull();
      const right = await attempt(t, 'jbloggs', PASSWORD);
      const wrong = await attempt(t, 'jbloggs', 'wrong-7');
      expect(right.statusCode).toBe(401);
      expect({ ...right.json().error, requestId: 0 }).toEqual({ ...wrong.json().error, requestId: 0 });
      const locked = await events(t, 'account.locked');
      expect(locked).toEqual([{ action: 'account.locked', severity: 'warning', details: expect.objectContaining({ username: 'jbloggs', failures: 6, threshold: 6 }) }]);
      const failures = await events(t, 'session.sign_in_failed');
      expect(failures.map((f) => f.details.reason)).toEqual([...Array(6).fill('wrong_password'), 'account_locked', 'account_locked']);
    });

    it('PW-07 p4 locks after 3 failures, and a success in between resets the count', async () => {
      await start('p4');
      await person(t, 'pupil1', 'pupil', 'Quiet7moonlight');
      await attempt(t, 'pupil1', 'nope-1');
      await attempt(t, 'pupil1', 'nope-2');
      expect((await attempt(t, 'pupil1', 'Quiet7moonlight')).json()).toMatchObject({ status: 'signed_in' });
      await attempt(t, 'pupil1', 'nope-3');
      await attempt(t, 'pupil1', 'nope-4');
      expect((await attempt(t, 'pupil1', 'Quiet7moonlight')).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) await attempt(t, 'pupil1', `nope-${i}`);
      expect((await attempt(t, 'pupil1', 'Quiet7moonlight')).statusCode).toBe(401);
      expect((await t.runtime.db.kysely.selectFrom('account').select('locked_at').where('username', '=', 'pupil1').executeTakeFirstOrThrow()).locked_at).not.toBeNull();
    });

    it('PW-07 an administrator unlocks a locked account; the unlock is audited', async () => {
      await start('p4');
      const admin = await setUpSchool(t);
      const id = await person(t, 'pupil2', 'pupil', 'Quiet7moonlight');
      for (let i = 0; i < 3; i++) await attempt(t, 'pupil2', `x${i}`);
      const locked = (await t.app.inject({ url: '/api/accounts?status=locked', headers: admin.headers })).json();
      expect(locked.accounts.map((a: { username: string }) => a.username)).toEqual(['pupil2']);
      const unlocked = await t.app.inject({ method: 'POST', url: `/api/accounts/${id}/unlock`, headers: admin.headers });
      expect(unlocked.json()).toMatchObject({ locked: false, failedAttempts: 0 });
      expect((await attempt(t, 'pupil2', 'Quiet7moonlight')).json()).toMatchObject({ status: 'signed_in' });
      expect(await events(t, 'account.unlocked')).toEqual([{ action: 'account.unlocked', severity: 'notice', details: expect.objectContaining({ username: 'pupil2', by: 'administrator' }) }]);
    });

    it('PW-07 unknown, locked and disabled accounts cost the same argon2id work as a wrong password', async () => {
      await start('p4');
      await person(t, 'known', 'staff');
      const verify = vi.spyOn(t.runtime.hasher, 'verify');
      for (const [username, password] of [['known', 'wrong'], ['nobody', 'wrong'], ['known', 'wrong'], ['known', 'wrong'], ['known', PASSWORD]]) {
        verify.mockClear();
        const response = await attempt(t, username!, password!);
        expect(response.statusCode).toBe(401);
        // One full verification for each attempt, whether or not the account exists or is locked.
        expect(verify).toHaveBeenCalledTimes(1);
      }
    });

    it('PW-07 throttles a flood of failures from one address before any hashing, without slowing other addresses', async () => {
      await start('ncsc', { failuresPerAddress: 5 });
      await person(t, 'staff1', 'staff');
      for (let i = 0; i < 5; i++) await attempt(t, 'staff1', `guess-${i}`, '203.0.113.9');
      const hash = vi.spyOn(t.runtime.hasher, 'verify');
      const refused = await attempt(t, 'staff1', PASSWORD, '203.0.113.9');
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('too_many_attempts');
      expect(hash).not.toHaveBeenCalled();
      expect((await attempt(t, 'staff1', PASSWORD, '10.9.9.9')).statusCode).toBe(200);
      t.clock.advance(5 * 60_000);
      expect((await attempt(t, 'staff1', PASSWORD, '203.0.113.9')).statusCode).toBe(200);
    });

    it('AC-09 PW-08 a new account gets a system-generated temporary password that must be changed at first sign-in', async () => {
      await start('p4');
      const admin = await setUpSchool(t);
      const created = await t.app.inject({ method: 'POST', url: '/api/accounts', headers: admin.headers, payload: { username: 'asmith', displayName: 'Alex Smith', email: null, role: 'staff' } });
      expect(created.statusCode).toBe(201);
      const { temporaryPassword, account } = created.json();
      expect(temporaryPassword).toMatch(/^[A-Z][a-z]+-[A-Z][a-z]+-[A-Z][a-z]+-\d{2}$/);
      expect(account).toMatchObject({ mustChangePassword: true, temporaryExpiresAt: expect.any(String) });
      // Never stored or logged in the clear.
      expect(t.logs.text).not.toContain(temporaryPassword);
      const audit = (await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute()).map((r) => r.body).join('\n');
      expect(audit).not.toContain(temporaryPassword);

      const first = await attempt(t, 'asmith', temporaryPassword);
      expect(first.json()).toMatchObject({ status: 'pending', step: { step: 'change_password', reason: 'temporary' } });
      const headers = pendingHeaders(first);
      const weak = await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers, payload: { currentPassword: temporaryPassword, newPassword: 'alexsmith' } });
      expect(weak.statusCode).toBe(400);
      const rules = weak.json().error.details.rules as Array<{ id: string; ok: boolean }>;
      expect(rules.filter((r) => !r.ok).map((r) => r.id)).toEqual(['composition', 'personal']);
      const done = await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers, payload: { currentPassword: temporaryPassword, newPassword: 'Zq9-Xv7-Wk5-Jy3!' } });
      expect(done.json()).toMatchObject({ status: 'signed_in', account: { username: 'asmith' } });
      expect((await attempt(t, 'asmith', temporaryPassword)).statusCode).toBe(401);
      expect((await events(t, 'account.')).map((e) => e.action)).toEqual(expect.arrayContaining(['account.created', 'account.password_changed']));
    });

    it('AC-09 a temporary password stops working when unused past the profile’s limit', async () => {
      await start('ncsc');
      const admin = await setUpSchool(t);
      const { temporaryPassword } = (await t.app.inject({ method: 'POST', url: '/api/accounts', headers: admin.headers, payload: { username: 'late', displayName: 'Late Starter', role: 'staff' } })).json();
      t.clock.advance(73 * 3_600_000);
      expect((await attempt(t, 'late', temporaryPassword)).statusCode).toBe(401);
      expect((await events(t, 'session.sign_in_failed')).at(-1)!.details.reason).toBe('temporary_password_expired');
    });

    it('PW-06 p4 expires passwords after 90 days, with a reminder in the last 14', async () => {
      await start('p4');
      await person(t, 'pupil3', 'pupil', 'Quiet7moonlight');
      t.clock.advance(80 * 86_400_000);
      const reminded = (await attempt(t, 'pupil3', 'Quiet7moonlight')).json() as Pending;
      expect(reminded.status).toBe('signed_in');
      expect(reminded.passwordReminder).toMatch(/^Your password expires in 10 days/);
      t.clock.advance(11 * 86_400_000);
      const expired = await attempt(t, 'pupil3', 'Quiet7moonlight');
      expect(expired.json()).toMatchObject({ status: 'pending', step: { step: 'change_password', reason: 'expired' } });
    });

    it('PW-06 p3 expires staff passwords when the next term starts', async () => {
      await start('p3', { clock: new ManualClock('2026-10-01T09:00:00.000Z') });
      await person(t, 'teacher', 'staff', 'Quietmoonlight7');
      // Staff off site need MFA under the baseline; these sign in from the school network.
      const before = (await attempt(t, 'teacher', 'Quietmoonlight7')).json() as Pending & { account: { passwordExpiresAt: string } };
      expect(before.account.passwordExpiresAt).toBe('2027-01-05T00:00:00.000Z');
      t.clock.set('2027-01-05T08:30:00.000Z');
      expect((await attempt(t, 'teacher', 'Quietmoonlight7')).json()).toMatchObject({ step: { step: 'change_password', reason: 'expired' } });
    });

    it('PW-06 p3 a password chosen with 15+ characters and all four classes earns the exemption at change time', async () => {
      await start('p3', { clock: new ManualClock('2026-10-01T09:00:00.000Z') });
      await person(t, 'teacher', 'staff', 'Quietmoonlight7');
      const session = await signIn(t, 'teacher', 'Quietmoonlight7');
      const changed = await t.app.inject({ method: 'POST', url: '/api/account/password', headers: session.headers, payload: { currentPassword: 'Quietmoonlight7', newPassword: 'Harbour-Lantern-Fog-91' } });
      expect(changed.statusCode).toBe(204);
      t.clock.set('2027-02-01T08:00:00.000Z');
      const later = (await attempt(t, 'teacher', 'Harbour-Lantern-Fog-91')).json() as Pending & { account: { passwordExpiresAt: string | null } };
      expect(later.status).toBe('signed_in');
      expect(later.account.passwordExpiresAt).toBeNull();
    });

    it('PW-05 p1 refuses any of the last four passwords, compared against stored hashes', async () => {
      await start('p1');
      await person(t, 'staff5', 'staff', 'Alpha-River-Stone-1');
      let session = await signIn(t, 'staff5', 'Alpha-River-Stone-1');
      const sequence = ['Bravo-Canyon-Field-2', 'Charlie-Desert-Grove-3', 'Delta-Meadow-Hill-4'];
      let current = 'Alpha-River-Stone-1';
      for (const next of sequence) {
        const r = await t.app.inject({ method: 'POST', url: '/api/account/password', headers: session.headers, payload: { currentPassword: current, newPassword: next } });
        expect(r.statusCode, r.body).toBe(204);
        current = next;
      }
      const reuse = await t.app.inject({ method: 'POST', url: '/api/account/password', headers: session.headers, payload: { currentPassword: current, newPassword: 'Alpha-River-Stone-1' } });
      expect(reuse.statusCode).toBe(400);
      expect((reuse.json().error.details.rules as Array<{ id: string; ok: boolean; requirement: string }>).find((r) => !r.ok)).toMatchObject({ id: 'reuse', requirement: 'PW-05' });
      session = await signIn(t, 'staff5', current);
      expect(session.cookie).toBeTruthy();
    });

    it('PW-04 p4 refuses a new password containing part of the current one', async () => {
      await start('p4');
      await person(t, 'staff6', 'staff', 'Tulip-Garden-42X');
      const session = await signIn(t, 'staff6', 'Tulip-Garden-42X');
      const r = await t.app.inject({ method: 'POST', url: '/api/account/password', headers: session.headers, payload: { currentPassword: 'Tulip-Garden-42X', newPassword: 'Garden-Violet-99' } });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.message).toContain('no 4 characters in a row from your current password');
    });

    it('AC-06 p3 staff accept the current Acceptable Use Policy before access, and again after a new version', async () => {
      await start('p3');
      const admin = await setUpSchool(t);
      const published = await t.app.inject({ method: 'POST', url: '/api/aup', headers: admin.headers, payload: { audience: 'staff', title: 'Staff AUP', body: 'Use school systems for school work. Report incidents to the DSL at once.' } });
      expect(published.statusCode).toBe(201);
      await person(t, 'staff7', 'staff', 'Quietmoonlight7');
      const first = await attempt(t, 'staff7', 'Quietmoonlight7');
      expect(first.json()).toMatchObject({ status: 'pending', step: { step: 'aup', aup: { title: 'Staff AUP', version: 1 } } });
      const accepted = await t.app.inject({ method: 'POST', url: '/api/sign-in/aup', headers: pendingHeaders(first), payload: { versionId: (first.json() as Pending).step!.aup!.id } });
      expect(accepted.json()).toMatchObject({ status: 'signed_in' });
      expect((await attempt(t, 'staff7', 'Quietmoonlight7')).json()).toMatchObject({ status: 'signed_in' });
      await t.app.inject({ method: 'POST', url: '/api/aup', headers: admin.headers, payload: { audience: 'staff', title: 'Staff AUP', body: 'Version two: use school systems for school work only. Lock your screen.' } });
      expect((await attempt(t, 'staff7', 'Quietmoonlight7')).json()).toMatchObject({ step: { step: 'aup', aup: { version: 2 } } });
      const record = (await t.app.inject({ url: '/api/aup/staff/acceptances', headers: admin.headers })).json();
      expect(record.acceptances).toEqual([expect.objectContaining({ username: 'staff7', version: 1 })]);
      // Pupils under P3 are not asked.
      await person(t, 'pupil7', 'pupil', 'Quietmoonlight7');
      expect((await attempt(t, 'pupil7', 'Quietmoonlight7')).json()).toMatchObject({ status: 'signed_in' });
    });

    it('AC-14 p4 asks staff for MFA only away from the school’s networks', async () => {
      await start('p4');
      await person(t, 'staff8', 'staff', 'Quietmoonlight7');
      expect((await attempt(t, 'staff8', 'Quietmoonlight7', '10.20.30.40')).json()).toMatchObject({ status: 'signed_in' });
      const away = await attempt(t, 'staff8', 'Quietmoonlight7', '203.0.113.50');
      expect(away.json()).toMatchObject({ status: 'pending', step: { step: 'mfa_enrol', reason: 'offsite' } });
      // Once enrolled, the code is asked for everywhere.
      const headers = pendingHeaders(away);
      const secret = (away.json() as Pending).step!.secret!;
      expect((await t.app.inject({ method: 'POST', url: '/api/sign-in/mfa-enrolment', headers, payload: { code: await totpNow(secret, t.clock) } })).json()).toMatchObject({ status: 'signed_in' });
      expect((await attempt(t, 'staff8', 'Quietmoonlight7', '10.20.30.40')).json()).toMatchObject({ step: { step: 'mfa' } });
    });

    it('AC-14 a TOTP code is accepted once; a recovery code works once', async () => {
      await start('ncsc');
      const master = await setUpSchool(t);
      const secret = masterSecrets.get(t)!;
      t.clock.advance(30_000);
      const code = await totpNow(secret, t.clock);
      const first = await attempt(t, 'master', 'Correct-Horse-Battery-Staple-42');
      expect((await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers: pendingHeaders(first), payload: { code } })).json()).toMatchObject({ status: 'signed_in' });
      const replay = await attempt(t, 'master', 'Correct-Horse-Battery-Staple-42');
      const refused = await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers: pendingHeaders(replay), payload: { code } });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.code).toBe('wrong_code');

      // A recovery code from enrolment signs in once, in the same minute as the TOTP code above (no code from the app at all)…
      const recoveryCode = master.recoveryCodes![0]!;
      const withRecovery = await attempt(t, 'master', 'Correct-Horse-Battery-Staple-42');
      const used = await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers: pendingHeaders(withRecovery), payload: { recoveryCode } });
      expect(used.json()).toMatchObject({ status: 'signed_in', account: { username: 'master' } });
      expect(await events(t, 'mfa.recovery_code_used')).toEqual([{ action: 'mfa.recovery_code_used', severity: 'notice', details: expect.objectContaining({ username: 'master', remaining: master.recoveryCodes!.length - 1 }) }]);
      // …and the same code is refused the second time, as a wrong second factor.
      const again = await attempt(t, 'master', 'Correct-Horse-Battery-Staple-42');
      const reused = await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers: pendingHeaders(again), payload: { recoveryCode } });
      expect(reused.statusCode).toBe(400);
      expect(reused.json().error.code).toBe('wrong_code');
      expect((await events(t, 'session.sign_in_failed')).at(-1)!.details.reason).toBe('wrong_second_factor');
      // Another unused code still works.
      const other = await attempt(t, 'master', 'Correct-Horse-Battery-Staple-42');
      expect((await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers: pendingHeaders(other), payload: { recoveryCode: master.recoveryCodes![1]! } })).json()).toMatchObject({ status: 'signed_in' });
    });

    it('AC-07 administrator rights only on a separate, linked account that must use MFA', async () => {
      await start('ncsc');
      const admin = await setUpSchool(t);
      const refused = await t.app.inject({ method: 'POST', url: '/api/accounts', headers: admin.headers, payload: { username: 'boss', displayName: 'Boss', role: 'administrator' } });
      expect(refused.statusCode).toBe(400);
      const id = await person(t, 'itlead', 'staff', 'Quietmoonlight7', 'Ian Tech');
      // Giving administrator rights needs a recent re-authentication (test/identity/reauth.test.ts).
      await reauthenticate(t, admin);
      const created = await t.app.inject({ method: 'POST', url: `/api/accounts/${id}/administrator-account`, headers: admin.headers });
      expect(created.statusCode).toBe(201);
      const { account, temporaryPassword } = created.json();
      expect(account).toMatchObject({ username: 'itlead.admin', role: 'administrator', linkedAccountId: id });
      const first = await attempt(t, 'itlead.admin', temporaryPassword);
      const changed = await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers: pendingHeaders(first), payload: { currentPassword: temporaryPassword, newPassword: 'Granite-Beacon-Willow-63' } });
      expect(changed.json()).toMatchObject({ status: 'pending', step: { step: 'mfa_enrol', reason: 'administrator' } });
      const again = await t.app.inject({ method: 'POST', url: `/api/accounts/${id}/administrator-account`, headers: admin.headers });
      expect(again.statusCode).toBe(409);
    });

    it('AC-08 the break-glass account cannot be deleted, disabled, demoted or reset by another administrator, and its use is e-mailed', async () => {
      const sink = await startSmtpSink();
      try {
        await start('ncsc', { smtpUrl: sink.url });
        const master = await setUpSchool(t);
        await t.app.inject({ method: 'PUT', url: '/api/school/contacts/headteacher', headers: master.headers, payload: { name: 'Helen Head', email: 'head@school.example' } });
        const masterId = (await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', 'master').executeTakeFirstOrThrow()).id;
        const everyday = await person(t, 'netman', 'staff', 'Quietmoonlight7', 'Nina Network');
        await reauthenticate(t, master);
        const { temporaryPassword } = (await t.app.inject({ method: 'POST', url: `/api/accounts/${everyday}/administrator-account`, headers: master.headers })).json();
        const first = await attempt(t, 'netman.admin', temporaryPassword);
        const changed = await t.app.inject({ method: 'POST', url: '/api/sign-in/password', headers: pendingHeaders(first), payload: { currentPassword: temporaryPassword, newPassword: 'Granite-Beacon-Willow-63' } });
        const enrolSecret = (changed.json() as Pending).step!.secret!;
        const enrolled = await t.app.inject({ method: 'POST', url: '/api/sign-in/mfa-enrolment', headers: pendingHeaders(changed.cookies.length ? changed : first), payload: { code: await totpNow(enrolSecret, t.clock) } });
        expect(enrolled.json()).toMatchObject({ status: 'signed_in' });
        const other: Session = { cookie: '', csrf: '', headers: {} };
        const cookie = enrolled.cookies.find((c) => c.name === '__Host-gatehouse-session')!;
        other.headers = { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': enrolled.json().csrfToken };
        for (const [method, url, payload] of [
          ['DELETE', `/api/accounts/${masterId}`, undefined],
          ['PATCH', `/api/accounts/${masterId}`, { status: 'disabled' }],
          ['PATCH', `/api/accounts/${masterId}`, { role: 'staff' }],
          ['POST', `/api/accounts/${masterId}/temporary-password`, undefined],
        ] as const) {
          const r = await t.app.inject({ method, url, headers: other.headers, payload });
          expect(r.statusCode, `${method} ${url}`).toBe(403);
          expect(r.json().error.code).toBe('break_glass_protected');
        }
        expect((await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', masterId).executeTakeFirstOrThrow()).status).toBe('active');
        // Every sign-in with the master account is high severity and goes to the headteacher.
        await signIn(t, 'master', 'Correct-Horse-Battery-Staple-42', { totpSecret: masterSecrets.get(t) });
        await sink.waitFor(1);
        expect(sink.messages.map((m) => m.to)).toEqual([['head@school.example']]);
        expect(sink.messages[0]!.raw).toContain('master (break-glass) account was used');
        // The first sign-in, before a headteacher was named, could not be sent: that is recorded too.
        expect((await events(t, 'notification.failed')).map((e) => e.details.about)).toContain('break_glass_sign_in');
        const signIns = (await events(t, 'session.signed_in')).filter((e) => e.details.username === 'master');
        expect(signIns.every((e) => e.severity === 'high')).toBe(true);
        // The notice is recorded once the mail has gone.
        for (let i = 0; i < 100 && (await events(t, 'notification.sent')).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect((await events(t, 'notification.sent')).map((e) => e.details.about)).toContain('break_glass_sign_in');
      } finally {
        await sink.close();
      }
    });

    it('PW-11 a password reported compromised ends every session, forces a change and tells the DPO', async () => {
      const sink = await startSmtpSink();
      try {
        await start('ncsc', { smtpUrl: sink.url });
        const admin = await setUpSchool(t);
        await t.app.inject({ method: 'PUT', url: '/api/school/contacts/dpo', headers: admin.headers, payload: { name: 'Dana Protector', email: 'dpo@school.example' } });
        const id = await person(t, 'staff9', 'staff', 'Quietmoonlight7');
        const s1 = await signIn(t, 'staff9', 'Quietmoonlight7');
        const s2 = await signIn(t, 'staff9', 'Quietmoonlight7');
        const report = await t.app.inject({ method: 'POST', url: `/api/accounts/${id}/compromised`, headers: admin.headers });
        expect(report.statusCode).toBe(204);
        for (const s of [s1, s2]) expect((await t.app.inject({ url: '/api/session', headers: s.headers })).statusCode).toBe(401);
        expect((await attempt(t, 'staff9', 'Quietmoonlight7')).json()).toMatchObject({ step: { step: 'change_password', reason: 'required' } });
        await sink.waitFor(1);
        expect(sink.messages[0]!.to).toEqual(['dpo@school.example']);
        expect(sink.messages[0]!.raw).toContain('reported as possibly compromised');
        expect(await events(t, 'account.password_compromised')).toEqual([expect.objectContaining({ severity: 'high', details: expect.objectContaining({ username: 'staff9', sessionsEnded: 2 }) })]);
      } finally {
        await sink.close();
      }
    });

    it('AC-04 any user, a pupil too, can report at once that their logon may be known to someone else', async () => {
      await start('ncsc');
      await setUpSchool(t);
      await person(t, 'kid4', 'pupil', 'Quietmoonlight7');
      const mine = await signIn(t, 'kid4', 'Quietmoonlight7');
      const elsewhere = await signIn(t, 'kid4', 'Quietmoonlight7');
      const report = await t.app.inject({ method: 'POST', url: '/api/account/compromised', headers: mine.headers });
      expect(report.statusCode).toBe(204);
      for (const s of [mine, elsewhere]) expect((await t.app.inject({ url: '/api/session', headers: s.headers })).statusCode).toBe(401);
      expect((await attempt(t, 'kid4', 'Quietmoonlight7')).json()).toMatchObject({ step: { step: 'change_password', reason: 'required' } });
      expect(await events(t, 'account.password_compromised')).toEqual([expect.objectContaining({ severity: 'high', details: expect.objectContaining({ reportedBy: 'self' }) })]);
    });

    it('AC-15 sessions end after the profile’s idle time; a password change ends the others; “my sessions” signs out the rest', async () => {
      await start('ncsc');
      await person(t, 'staff10', 'staff', 'Quietmoonlight7');
      const a = await signIn(t, 'staff10', 'Quietmoonlight7');
      const b = await signIn(t, 'staff10', 'Quietmoonlight7');
      const c = await signIn(t, 'staff10', 'Quietmoonlight7');
      const list = (await t.app.inject({ url: '/api/account/sessions', headers: a.headers })).json();
      expect(list.sessions).toHaveLength(3);
      expect(list.sessions.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
      expect((await t.app.inject({ method: 'DELETE', url: '/api/account/sessions/others', headers: a.headers })).json()).toEqual({ ended: 2 });
      expect((await t.app.inject({ url: '/api/session', headers: b.headers })).statusCode).toBe(401);
      expect((await t.app.inject({ url: '/api/session', headers: c.headers })).statusCode).toBe(401);
      t.clock.advance(14 * 60_000);
      expect((await t.app.inject({ url: '/api/session', headers: a.headers })).statusCode).toBe(200);
      t.clock.advance(16 * 60_000);
      const idle = await t.app.inject({ url: '/api/session', headers: a.headers });
      expect(idle.statusCode).toBe(401);
      expect(idle.json().error.message).toContain('Your session has ended');
    });

    it('AC-16 shows each group its own sign-in message', async () => {
      await start('p4');
      await person(t, 'kid', 'pupil', 'Quiet7moonlight');
      await person(t, 'teach', 'staff', 'Quiet7moonlight');
      expect(((await attempt(t, 'kid', 'Quiet7moonlight')).json() as Pending).banner).toMatch(/^Welcome! This computer is for school work/);
      expect(((await attempt(t, 'teach', 'Quiet7moonlight')).json() as Pending).banner).toMatch(/^You are signing in to a school system/);
    });

    it('AC-14 changing the second factor needs the password and a code again', async () => {
      await start('ncsc');
      const admin = await setUpSchool(t);
      const refused = await t.app.inject({ method: 'POST', url: '/api/account/mfa/totp/start', headers: admin.headers });
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('reauthentication_required');
      t.clock.advance(30_000);
      const reauth = await t.app.inject({ method: 'POST', url: '/api/account/reauthenticate', headers: admin.headers, payload: { password: 'Correct-Horse-Battery-Staple-42', code: await totpNow(masterSecrets.get(t)!, t.clock) } });
      expect(reauth.statusCode).toBe(204);
      const started = await t.app.inject({ method: 'POST', url: '/api/account/mfa/totp/start', headers: admin.headers });
      expect(started.json().qrSvg).toContain('<svg');
      // An administrator must keep MFA.
      expect((await t.app.inject({ method: 'DELETE', url: '/api/account/mfa/totp', headers: admin.headers })).json().error.code).toBe('mfa_required');
      t.clock.advance(6 * 60_000);
      expect((await t.app.inject({ method: 'POST', url: '/api/account/mfa/recovery-codes', headers: admin.headers })).statusCode).toBe(403);
    });
  });
}
