import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { totpNow } from '../../src/identity/totp.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

/**
 * Issue 10, finding 6: a self-service reset took over an administrator with only a TOTP code.
 * Administrators and accounts linked to one never reset their own password; staff need a code from
 * their authenticator (or a recovery code) and a single-use link e-mailed to them, over real SMTP.
 */
const PASSWORD = 'Violet-Harbour-Lantern-7';
const NEW_PASSWORD = 'Quiet-Meadow-Compass-19';
const OFF_SITE = '203.0.113.7';
const PUBLIC_URL = 'https://gatehouse.school.example';

type Sink = Awaited<ReturnType<typeof startSmtpSink>>;

async function person(t: TestApp, username: string, role: Role, extra: { linkedAccountId?: string } = {}): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `${username} Person`, email: `${username}@school.example`, role, passwordHash: hash, ...extra }));
}

/** Signs the person in once so that they enrol an authenticator app (off site: the profile asks staff to). */
async function enrolled(t: TestApp, username: string): Promise<string> {
  return (await signIn(t, username, PASSWORD, { ip: OFF_SITE })).totpSecret!;
}

/** What a browser would send back after a step: the reset cookie and the CSRF token (when the answer gave them). */
function heldBy(response: LightMyRequestResponse): Record<string, string> {
  const cookie = response.cookies.find((c) => c.name === '__Host-gatehouse-reset');
  const body = response.json() as { csrfToken?: string };
  return { ...(cookie ? { cookie: `${cookie.name}=${cookie.value}` } : {}), ...(body.csrfToken ? { 'x-csrf-token': body.csrfToken } : {}) };
}

async function start(t: TestApp, username: string, code: string) {
  return t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username, code }, remoteAddress: OFF_SITE });
}

/** The mail as a person reads it (quoted-printable undone). */
function mailText(raw: string): string {
  return Buffer.from(raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

function mailedCode(sink: Sink, n: number): { to: string[]; code: string; link: string | null } {
  const text = mailText(sink.messages[n]!.raw);
  const code = /\n\s+([a-z0-9]{5}-[a-z0-9]{5})\s*\n/.exec(text)?.[1];
  if (!code) throw new Error(`no code in mail ${n}:\n${text}`);
  return { to: sink.messages[n]!.to, code, link: /(https:\/\/\S+\/reset#code=[a-z0-9]+)/.exec(text)?.[1] ?? null };
}

async function signInWorks(t: TestApp, username: string, password: string): Promise<boolean> {
  const r = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: '10.0.0.9' });
  return r.statusCode === 200;
}

async function resetEvents(t: TestApp): Promise<Array<[string, unknown]>> {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'body']).where('action', 'like', 'password_reset.%').orderBy('seq').execute();
  return rows.map((r) => [r.action, (JSON.parse(r.body) as { details: { reason?: string } }).details.reason ?? null]);
}

for (const dialect of await dialects()) {
  describe(`self-service password reset (${dialect})`, () => {
    let t: TestApp;
    let sink: Sink;
    afterEach(async () => {
      await t?.close();
      await sink?.close();
    });
    const begin = async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url, publicUrl: PUBLIC_URL } });
      return setUpSchool(t);
    };
    /** A member of staff with an authenticator, who has just started a reset with a right code (200, link e-mailed). */
    const staffResetStarted = async () => {
      await begin();
      await person(t, 'jbloggs', 'staff');
      const secret = await enrolled(t, 'jbloggs');
      t.clock.advance(30_000);
      const started = await start(t, 'jbloggs', await totpNow(secret, t.clock));
      expect(started.statusCode, started.body).toBe(200);
      return { secret, started };
    };

    it('AC-10 attack: the master account, an administrator, a linked administrator account and the everyday account linked to it cannot reset their password self-service, even with a valid authenticator or recovery code; they get the answer a wrong code gets', async () => {
      const master = await begin();
      await person(t, 'it.admin', 'administrator');
      const everyday = await person(t, 'jsmith', 'staff');
      await person(t, 'jsmith.admin', 'administrator', { linkedAccountId: everyday });
      const secrets = { 'it.admin': await enrolled(t, 'it.admin'), 'jsmith.admin': await enrolled(t, 'jsmith.admin'), jsmith: await enrolled(t, 'jsmith') };

      const wrong = await start(t, 'nobody-at-all', '123456');
      expect(wrong.statusCode).toBe(400);
      const attempts: Array<[string, string]> = [
        ['master', master.recoveryCodes![0]!],
        ['it.admin', ''],
        ['jsmith.admin', ''],
        ['jsmith', ''],
      ];
      for (const [username, recovery] of attempts) {
        t.clock.advance(30_000);
        const code = recovery || (await totpNow(secrets[username as keyof typeof secrets], t.clock));
        const answer = await start(t, username, code);
        expect({ username, status: answer.statusCode, error: answer.json().error?.code, message: answer.json().error?.message }).toEqual({ username, status: 400, error: wrong.json().error.code, message: wrong.json().error.message });
        expect(answer.cookies.find((c) => c.name === '__Host-gatehouse-reset')).toBeUndefined();
      }
      t.clock.advance(30_000);
      const masterByApp = await start(t, 'master', await totpNow(master.totpSecret!, t.clock));
      expect([masterByApp.statusCode, masterByApp.json().error?.message]).toEqual([400, wrong.json().error.message]);

      // Nothing was sent, nothing changed, and the trail says who was refused and why.
      expect(sink.messages).toEqual([]);
      expect(await signInWorks(t, 'jsmith', PASSWORD)).toBe(true);
      expect(await resetEvents(t)).toEqual([
        ['password_reset.self_failed', 'unknown_username'],
        ['password_reset.self_failed', 'break_glass'],
        ['password_reset.self_failed', 'administrator'],
        ['password_reset.self_failed', 'administrator'],
        ['password_reset.self_failed', 'has_linked_administrator_account'],
        ['password_reset.self_failed', 'break_glass'],
      ]);
      // The recovery code was not even tried, so not used up.
      const unused = await t.runtime.db.kysely.selectFrom('recovery_code as r').innerJoin('account as a', 'a.id', 'r.account_id').select((eb) => eb.fn.countAll<number>().as('n')).where('a.username', '=', 'master').where('r.used_at', 'is', null).executeTakeFirstOrThrow();
      expect(Number(unused.n)).toBe(10);
    });

    it('AC-11 attack: a member of staff’s valid authenticator code alone does not reset their password; the link e-mailed to the address on file is needed too', async () => {
      // Someone with Jane's phone (or a code read over her shoulder) starts a reset ...
      const { started } = await staffResetStarted();
      // ... and tries to go straight to the new password, with what the first step gave them.
      const token = (started.json() as { token?: string }).token;
      const skipped = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers: heldBy(started), payload: { token, newPassword: NEW_PASSWORD } });
      expect(skipped.statusCode).not.toBe(204);
      expect(await signInWorks(t, 'jbloggs', NEW_PASSWORD)).toBe(false);
      expect(skipped.json().error.code).toBe('reset_email_pending');
      expect(started.json()).toMatchObject({ next: 'email', username: 'jbloggs', emailedTo: 'j•••@school.example' });
      const guessed = await t.app.inject({ method: 'POST', url: '/api/password-reset/email', headers: heldBy(started), payload: { code: 'abcde-fghjk' } });
      expect(guessed.json().error.code).toBe('reset_link_invalid');
      expect(await signInWorks(t, 'jbloggs', PASSWORD)).toBe(true);
      expect(await signInWorks(t, 'jbloggs', NEW_PASSWORD)).toBe(false);

      // Jane herself receives the link by real SMTP, and with it finishes the reset.
      await sink.waitFor(1);
      const mail = mailedCode(sink, 0);
      expect(mail.to).toEqual(['jbloggs@school.example']);
      expect(mail.link).toBe(`${PUBLIC_URL}/reset#code=${mail.code.replace('-', '')}`);
      expect(mailText(sink.messages[0]!.raw)).toMatch(/If you did not ask for this, do not use it, and tell the IT team/);
      const confirmed = await t.app.inject({ method: 'POST', url: '/api/password-reset/email', headers: heldBy(started), payload: { code: mail.code.toUpperCase() } });
      expect(confirmed.statusCode, confirmed.body).toBe(200);
      expect(confirmed.json()).toMatchObject({ next: 'new_password' });
      const finished = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers: heldBy(confirmed), payload: { newPassword: NEW_PASSWORD } });
      expect(finished.statusCode, finished.body).toBe(204);
      expect(await signInWorks(t, 'jbloggs', NEW_PASSWORD)).toBe(true);
      expect(await resetEvents(t)).toEqual([
        ['password_reset.self_verified', null],
        ['password_reset.link_sent', null],
        ['password_reset.self_failed', 'wrong_email_code'],
        ['password_reset.email_confirmed', null],
        ['password_reset.self_completed', null],
      ]);
    });

    it('AC-11 attack: an e-mailed link works once, only for the reset attempt it was sent for, and not after it expires; it is stored only as a keyed hash', async () => {
      await begin();
      await person(t, 'jbloggs', 'staff');
      const secret = await enrolled(t, 'jbloggs');
      const attempt = async () => {
        t.clock.advance(30_000);
        const before = sink.messages.length;
        const r = await start(t, 'jbloggs', await totpNow(secret, t.clock));
        expect(r.statusCode, r.body).toBe(200);
        await sink.waitFor(before + 1);
        return { headers: heldBy(r), code: mailedCode(sink, sink.messages.length - 1).code };
      };
      const email = (headers: Record<string, string>, code: string) => t.app.inject({ method: 'POST', url: '/api/password-reset/email', headers, payload: { code } });

      // Used once; a second use (a replayed link) is refused.
      const a = await attempt();
      expect((await email(a.headers, a.code)).statusCode).toBe(200);
      const replayed = await email(a.headers, a.code);
      expect(replayed.statusCode).toBe(400);
      expect(replayed.json().error.code).toBe('reset_link_invalid');

      // A new attempt ends the old one; each link opens only its own attempt.
      const b = await attempt();
      const stored = await t.runtime.db.kysely.selectFrom('reset_request').select('email_code_hash').where('status', '=', 'awaiting_email').executeTakeFirstOrThrow();
      const plain = b.code.replace('-', '');
      expect(stored.email_code_hash).not.toContain(plain);
      expect(stored.email_code_hash).not.toBe(createHash('sha256').update(plain).digest('hex'));
      expect((await email(a.headers, b.code)).statusCode).toBe(410);
      const crossed = await email(b.headers, a.code);
      expect(crossed.statusCode).toBe(400);
      expect(crossed.json().error.code).toBe('reset_link_invalid');
      const finishOld = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', headers: a.headers, payload: { newPassword: NEW_PASSWORD } });
      expect(finishOld.statusCode).toBe(410);

      // Late: after 15 minutes the link is dead.
      const c = await attempt();
      t.clock.advance(16 * 60_000);
      const late = await email(c.headers, c.code);
      expect(late.statusCode).toBe(410);
      expect(late.json().error.code).toBe('reset_expired');

      expect(await signInWorks(t, 'jbloggs', NEW_PASSWORD)).toBe(false);
      expect(await signInWorks(t, 'jbloggs', PASSWORD)).toBe(true);
      // Five wrong codes end an attempt, so the code cannot be guessed.
      const d = await attempt();
      for (let i = 0; i < 5; i++) expect((await email(d.headers, `wrong-${i}`)).statusCode).toBe(400);
      expect((await email(d.headers, d.code)).statusCode).toBe(410);
    });

    it('AC-11 attack: 40 authenticator codes sent at once for one username from 40 addresses, then the right one: at most five are checked and the right code is refused', async () => {
      await begin();
      await person(t, 'jbloggs', 'staff');
      const secret = await enrolled(t, 'jbloggs');
      t.clock.advance(30_000);
      // Every code the server would accept now (one step of drift either way) is left out of the guesses.
      const valid = new Set<string>();
      for (const drift of [-30_000, 0, 30_000]) {
        t.clock.advance(drift);
        valid.add(await totpNow(secret, t.clock));
        t.clock.advance(-drift);
      }
      const guesses: string[] = [];
      for (let n = 100_000; guesses.length < 40; n += 7919) if (!valid.has(String(n))) guesses.push(String(n));
      const send = (code: string, i: number) => t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'jbloggs', code }, remoteAddress: `198.51.100.${i + 1}` });
      const wrong = guesses.map((code, i) => send(code, i));
      // The right code goes while the wrong ones are still being checked.
      const right = send(await totpNow(secret, t.clock), 100);
      const answers = await Promise.all(wrong);
      const rightAnswer = await right;
      expect(rightAnswer.statusCode, rightAnswer.body).toBe(429);
      expect(answers.every((a) => a.statusCode === 400 || a.statusCode === 429)).toBe(true);
      const checked = (await resetEvents(t)).filter(([action, reason]) => action === 'password_reset.self_failed' && reason === 'wrong_code');
      expect(checked.length).toBeLessThanOrEqual(5);
      expect(answers.filter((a) => a.statusCode === 400)).toHaveLength(checked.length);
      expect((await resetEvents(t)).map(([action]) => action)).not.toContain('password_reset.self_verified');
      expect(sink.messages).toHaveLength(0);
    });

    it('AC-11 attack: 40 wrong e-mailed codes sent at once on one reset attempt, then the right one: at most five are compared, the attempt ends and the right code is refused', async () => {
      const { started } = await staffResetStarted();
      await sink.waitFor(1);
      const headers = heldBy(started);
      const { code } = mailedCode(sink, 0);
      const send = (c: string, i: number) => t.app.inject({ method: 'POST', url: '/api/password-reset/email', headers, payload: { code: c }, remoteAddress: `198.51.100.${i + 1}` });
      const wrong = Array.from({ length: 40 }, (_, i) => send(`wrong${String(i).padStart(5, '0')}`, i));
      const right = send(code, 100);
      const answers = await Promise.all(wrong);
      const rightAnswer = await right;
      expect(rightAnswer.statusCode, rightAnswer.body).toBe(410);
      const compared = (await resetEvents(t)).filter(([action, reason]) => action === 'password_reset.self_failed' && reason === 'wrong_email_code');
      expect(compared.length).toBeLessThanOrEqual(5);
      expect(answers.filter((a) => a.statusCode === 400)).toHaveLength(compared.length);
      expect(answers.every((a) => a.statusCode === 400 || a.statusCode === 410)).toBe(true);
      const stored = await t.runtime.db.kysely.selectFrom('reset_request').select(['status', 'email_verified_at']).executeTakeFirstOrThrow();
      expect(stored).toEqual({ status: 'expired', email_verified_at: null });
      expect(await signInWorks(t, 'jbloggs', PASSWORD)).toBe(true);
    });
  });
}
