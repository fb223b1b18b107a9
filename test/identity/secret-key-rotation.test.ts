import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import { sealedFor, secretBox } from '../../src/core/secret-box.js';
import { createAccount } from '../../src/identity/service.js';
import { totpNow } from '../../src/identity/totp.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, reauthenticate, restartTestApp, setUpSchool, signIn, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Issue 10, finding 1 (tail): `gatehouse secret-key rotate` re-seals every sealed value under a new
 * secret.key, through the real CLI, on both databases.
 */
const PASSWORD = 'Violet-Harbour-Lantern-7';
const OFF_SITE = '203.0.113.7';

async function person(t: TestApp, username: string): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `${username} Person`, email: null, role: 'staff', passwordHash: hash }));
}

const keyOf = (file: string) => Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');

for (const dialect of await dialects()) {
  describe(`secret.key rotation (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    it('AC-14 `gatehouse secret-key rotate` re-seals every authenticator secret and pending enrolment under a new key in one audited step; the authenticators still work, the old key (kept 0600) opens nothing stored, and a running server makes it refuse without --force', async () => {
      t = await startTestApp(dialect);
      const master = await setUpSchool(t);
      const masterSecret = masterSecrets.get(t)!;
      // The master administrator half-way through setting up a new phone from My account (the secret kept with the session).
      await reauthenticate(t, master);
      const phoneSecret = ((await t.app.inject({ method: 'POST', url: '/api/account/mfa/totp/start', headers: master.headers })).json() as { secret: string }).secret;
      await person(t, 'jbloggs');
      const jane = await signIn(t, 'jbloggs', PASSWORD, { ip: OFF_SITE });
      // Someone half-way through enrolling (off site, shown a QR code, not yet confirmed).
      const johnId = await person(t, 'jsmith');
      const pending = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'jsmith', password: PASSWORD }, remoteAddress: OFF_SITE });
      expect(pending.json().step.step).toBe('mfa_enrol');
      const johnEnrolmentSecret = pending.json().step.secret as string;

      const keyFile = path.join(t.test.dataDir, 'secret.key');
      const oldKey = keyOf(keyFile);
      const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };

      // A server running with this data folder: refused unless --force.
      const lock = path.join(t.test.dataDir, 'gatehouse.pid');
      writeFileSync(lock, `${process.pid}\n`);
      const refused = await runCli(['secret-key', 'rotate'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/A Gatehouse server \(process \d+\) is running with this data folder.*--force/s);
      expect(keyOf(keyFile).equals(oldKey)).toBe(true);
      rmSync(lock);

      const rotated = await runCli(['secret-key', 'rotate'], env);
      expect(rotated.stderr).toBe('');
      expect(rotated.code).toBe(0);
      expect(rotated.stdout).toMatch(/^Rotated .*secret\.key: key [0-9a-f]{12} → [0-9a-f]{12}\. Re-sealed 2 authenticator secrets and 2 pending enrolments\.\n/);

      // The new key is in place, the old one kept beside it, owner-only.
      const newKey = keyOf(keyFile);
      expect(newKey.equals(oldKey)).toBe(false);
      const kept = readdirSync(t.test.dataDir).filter((f) => /^secret\.key\.old-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$/.test(f));
      expect(kept).toHaveLength(1);
      const keptFile = path.join(t.test.dataDir, kept[0]!);
      expect(keyOf(keptFile).equals(oldKey)).toBe(true);
      expect((statSync(keptFile).mode & 0o777).toString(8)).toBe('600');
      expect((statSync(keyFile).mode & 0o777).toString(8)).toBe('600');

      // The old key opens nothing stored any more; the new one opens everything.
      const accounts = await t.runtime.db.kysely.selectFrom('account').select(['id', 'totp_secret']).where('totp_secret', 'is not', null).execute();
      const attempt = await t.runtime.db.kysely.selectFrom('sign_in_attempt').select(['id', 'account_id', 'pending_totp_secret']).where('account_id', '=', johnId).executeTakeFirstOrThrow();
      const phone = await t.runtime.db.kysely.selectFrom('session').select(['id', 'account_id', 'pending_totp_secret']).where('pending_totp_secret', 'is not', null).executeTakeFirstOrThrow();
      const stored = [
        ...accounts.map((a) => [a.totp_secret!, sealedFor.accountTotp(a.id)] as const),
        [attempt.pending_totp_secret!, sealedFor.enrolment(attempt.id, attempt.account_id)] as const,
        [phone.pending_totp_secret!, sealedFor.sessionEnrolment(phone.id, phone.account_id)] as const,
      ];
      expect(stored).toHaveLength(4);
      for (const [value, binding] of stored) {
        expect(() => secretBox(oldKey).open(value, binding)).toThrow(/sealed under key/);
        expect(() => secretBox(newKey).open(value, binding)).not.toThrow();
      }
      expect(secretBox(newKey).open(attempt.pending_totp_secret!, sealedFor.enrolment(attempt.id, attempt.account_id))).toBe(johnEnrolmentSecret);

      // Audited with counts and key ids, never a value.
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'platform.secret_key_rotated').execute();
      expect(events.map((e) => JSON.parse(e.body).details)).toEqual([expect.objectContaining({ totpSecrets: 2, pendingEnrolments: 2, unreadable: 0, whileRunning: false })]);
      for (const secret of [masterSecret, jane.totpSecret!, johnEnrolmentSecret, phoneSecret, oldKey.toString('base64'), newKey.toString('base64')]) expect(events[0]!.body).not.toContain(secret);

      // After a restart the server has the new key: every authenticator still signs in.
      t = await restartTestApp(t);
      await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecret });
      await signIn(t, 'jbloggs', PASSWORD, { totpSecret: jane.totpSecret!, ip: OFF_SITE });
      // The set-up under way from My account finishes under the new key.
      await reauthenticate(t, master);
      const finished = await t.app.inject({ method: 'POST', url: '/api/account/mfa/totp', headers: master.headers, payload: { code: await totpNow(phoneSecret, t.clock) } });
      expect(finished.statusCode, finished.body).toBe(200);
      const status = await runCli(['secret-key', 'status', '--json'], env);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ keyId: secretBox(newKey).keyId, sealedUnder: { [secretBox(newKey).keyId]: 3 } });
    }, 180_000);
  });
}
