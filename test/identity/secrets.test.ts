import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { newTotpSecret, totpNow } from '../../src/identity/totp.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, restartTestApp, setUpSchool, signIn, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Issue 10, finding 12: the second factors a database holds are of no use to someone who has only
 * the database (a copy, a backup, or write access to its rows): TOTP secrets are sealed bound to
 * their account, recovery codes are keyed hashes salted per account.
 */
const PASSWORD = 'Violet-Harbour-Lantern-7';

async function person(t: TestApp, username: string, role: Role): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `${username} Person`, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function accountId(t: TestApp, username: string): Promise<string> {
  return (await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', username).executeTakeFirstOrThrow()).id;
}

/** The password step, then a second factor; the answer of the second-factor step. */
async function secondFactor(t: TestApp, username: string, password: string, factor: { code?: string; recoveryCode?: string }) {
  const first = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: '127.0.0.1' });
  expect(first.json(), first.body).toMatchObject({ status: 'pending', step: { step: 'mfa' } });
  const cookie = first.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
  return t.app.inject({
    method: 'POST',
    url: '/api/sign-in/second-factor',
    headers: { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': first.json().csrfToken as string },
    payload: factor,
    remoteAddress: '127.0.0.1',
  });
}

/** How secrets were sealed before issue 10: AES-256-GCM under secret.key, no associated data. */
function sealV1(dataDir: string, plain: string): string {
  const key = Buffer.from(readFileSync(path.join(dataDir, 'secret.key'), 'utf8').trim(), 'base64');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`;
}

/** How recovery codes were stored before issue 10, and what a database thief computes for a guess. */
const unkeyedHash = (code: string) => createHash('sha256').update(code.toLowerCase().replace(/[^a-z0-9]/g, '')).digest('hex');

async function events(t: TestApp, action: string): Promise<Array<Record<string, unknown>>> {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', action).orderBy('seq').execute();
  return rows.map((r) => JSON.parse(r.body).details as Record<string, unknown>);
}

for (const dialect of await dialects()) {
  describe(`stored second factors (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    it('AC-07 attack: an authenticator secret copied from another account’s row into the administrator’s does not open, and the sign-in is refused with a logged error', async () => {
      t = await startTestApp(dialect);
      await setUpSchool(t);
      // Mallory, a member of staff, enrols her own authenticator (off site, so the profile asks her to).
      await person(t, 'mallory', 'staff');
      const mallory = await signIn(t, 'mallory', PASSWORD, { ip: '203.0.113.7' });
      expect(mallory.totpSecret).toBeTruthy();

      // With write access to the database (not the key file), she copies her sealed secret into the
      // administrator's row; she has also learnt the administrator's password.
      const sealed = (await t.runtime.db.kysely.selectFrom('account').select('totp_secret').where('username', '=', 'mallory').executeTakeFirstOrThrow()).totp_secret!;
      await t.runtime.db.kysely.updateTable('account').set({ totp_secret: sealed, totp_last_step: null }).where('username', '=', 'master').execute();

      t.clock.advance(30_000);
      const answer = await secondFactor(t, 'master', ADMIN_PASSWORD, { code: await totpNow(mallory.totpSecret!, t.clock) });
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json().error.code).toBe('wrong_code');
      expect(answer.cookies.find((c) => c.name === '__Host-gatehouse-session')).toBeUndefined();

      // The operator is told plainly what happened; the trail records it loudly.
      const logged = t.logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; username?: string }).filter((l) => l.level >= 50 && /does not open/.test(l.msg));
      expect(logged.map((l) => [l.username, l.msg])).toEqual([['master', expect.stringMatching(/sealed for another account or altered/)]]);
      expect(await events(t, 'mfa.secret_unreadable')).toEqual([expect.objectContaining({ username: 'master', reason: 'not_for_this_row', what: 'account' })]);

      // In its own row the same value still works: the binding, not the value, refused it.
      t.clock.advance(30_000);
      const own = await secondFactor(t, 'mallory', PASSWORD, { code: await totpNow(mallory.totpSecret!, t.clock) });
      expect(own.statusCode, own.body).toBe(200);
      expect(own.json().status).toBe('signed_in');
    });

    it('AC-14 attack: a copy of the database alone cannot test a recovery-code guess; codes are HMAC-SHA-256 under hmac.key, salted with the account id', async () => {
      t = await startTestApp(dialect);
      const admin = await setUpSchool(t);
      const codes = admin.recoveryCodes!;
      expect(codes).toHaveLength(10);
      const masterId = await accountId(t, 'master');
      const stored = (await t.runtime.db.kysely.selectFrom('recovery_code').select('code_hash').where('account_id', '=', masterId).execute()).map((r) => r.code_hash);
      expect(stored).toHaveLength(10);

      // The thief holds the database and guesses right: the guess matches nothing stored.
      for (const code of codes) {
        expect(stored).not.toContain(unkeyedHash(code));
        expect(stored).not.toContain(createHash('sha256').update(`${masterId}${code}`).digest('hex'));
      }
      // Only with the key from the data folder does the guess check out; with any other key it does not.
      const hmac = (key: Buffer, code: string) => `h1:${createHmac('sha256', key).update('gatehouse recovery-code\0').update(`${masterId}\0${unkeyedHash(code)}`).digest('hex')}`;
      const realKey = Buffer.from(readFileSync(path.join(t.test.dataDir, 'hmac.key'), 'utf8').trim(), 'base64');
      expect(codes.map((c) => stored.includes(hmac(realKey, c)))).toEqual(codes.map(() => true));
      expect(codes.some((c) => stored.includes(hmac(randomBytes(32), c)))).toBe(false);

      // And the codes work as before: once each.
      const first = await secondFactor(t, 'master', ADMIN_PASSWORD, { recoveryCode: codes[3]!.toUpperCase() });
      expect(first.json(), first.body).toMatchObject({ status: 'signed_in' });
      const again = await secondFactor(t, 'master', ADMIN_PASSWORD, { recoveryCode: codes[3]! });
      expect(again.statusCode).toBe(400);
    });

    it('AC-14 secrets stored before the upgrade keep working: v1 TOTP secrets re-sealed bound to their rows and unsalted recovery-code hashes re-keyed, once, at start, audited; the same code on two accounts is then stored differently', async () => {
      t = await startTestApp(dialect);
      await setUpSchool(t);
      const jane = await person(t, 'jbloggs', 'staff');
      const john = await person(t, 'jsmith', 'staff');
      const janeSecret = newTotpSecret();
      const johnSecret = newTotpSecret();
      const now = t.clock.now().toISOString();
      // A database as the version before issue 10 left it: v1 seals, plain SHA-256 recovery codes,
      // and by chance the same code for both people; migration 0006 has just added its task.
      for (const [id, secret] of [[jane, janeSecret], [john, johnSecret]] as const) {
        await t.runtime.db.kysely.updateTable('account').set({ totp_secret: sealV1(t.test.dataDir, secret), totp_enrolled_at: now }).where('id', '=', id).execute();
        await t.runtime.db.kysely.insertInto('recovery_code').values({ account_id: id, code_hash: unkeyedHash('abcd-efgh'), created_at: now, used_at: null }).execute();
      }
      await t.runtime.db.kysely.insertInto('maintenance_task').values({ name: 'secrets-v2', created_at: now }).execute();

      t = await restartTestApp(t);
      const rows = await t.runtime.db.kysely.selectFrom('account').select(['id', 'totp_secret']).where('id', 'in', [jane, john]).execute();
      expect(rows.map((r) => r.totp_secret!.slice(0, 3))).toEqual(['v2:', 'v2:']);
      const hashes = await t.runtime.db.kysely.selectFrom('recovery_code').select(['account_id', 'code_hash']).where('account_id', 'in', [jane, john]).execute();
      expect(hashes).toHaveLength(2);
      expect(hashes.every((h) => h.code_hash.startsWith('h1:'))).toBe(true);
      expect(hashes[0]!.code_hash).not.toBe(hashes[1]!.code_hash);
      expect(await events(t, 'platform.secrets_upgraded')).toEqual([{ totpSecretsResealed: 2, enrolmentsResealed: 0, recoveryCodesRekeyed: 2, unreadable: 0 }]);

      t.clock.advance(30_000);
      const byApp = await secondFactor(t, 'jbloggs', PASSWORD, { code: await totpNow(janeSecret, t.clock) });
      expect(byApp.json(), byApp.body).toMatchObject({ status: 'signed_in' });
      const byCode = await secondFactor(t, 'jsmith', PASSWORD, { recoveryCode: 'ABCD EFGH' });
      expect(byCode.json(), byCode.body).toMatchObject({ status: 'signed_in' });

      // Once: a second start does nothing more.
      t = await restartTestApp(t);
      expect(await events(t, 'platform.secrets_upgraded')).toHaveLength(1);

      // After the upgrade, an unbound v1 value (say, from an old backup) written into a row is refused.
      await t.runtime.db.kysely.updateTable('account').set({ totp_secret: sealV1(t.test.dataDir, johnSecret), totp_last_step: null }).where('id', '=', jane).execute();
      t.clock.advance(30_000);
      const planted = await secondFactor(t, 'jbloggs', PASSWORD, { code: await totpNow(johnSecret, t.clock) });
      expect(planted.statusCode).toBe(400);
      expect(t.logs.text).toMatch(/old unbound format/);
    });
  });
}
