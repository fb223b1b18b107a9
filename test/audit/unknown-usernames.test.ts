import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Issue 10, finding 12: people type their password into the username box. The trail can never be
 * edited, so what matches no account is kept only as a keyed hash; an administrator on the server
 * can still ask whether a given username was tried.
 */
const TYPED_AT_SIGN_IN = 'Harbour-Lantern-Violet-77';
const TYPED_AT_RESET = 'Quiet-Compass-Meadow-12';

for (const dialect of await dialects()) {
  describe(`unknown usernames in the audit trail (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    it('AU-02 attack: a password typed into the username box (sign-in or reset) is not stored in the trail; `gatehouse audit lookup-username` still finds the attempts', async () => {
      t = await startTestApp(dialect);
      await setUpSchool(t);
      const signInAnswer = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: TYPED_AT_SIGN_IN, password: 'whatever-they-typed' }, remoteAddress: '10.0.0.31' });
      expect(signInAnswer.statusCode).toBe(401);
      const resetAnswer = await t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: TYPED_AT_RESET, code: '123456' }, remoteAddress: '10.0.0.32' });
      expect(resetAnswer.statusCode).toBe(400);

      // Someone reading the trail (or an export of it) finds neither, in any letter case.
      const bodies = (await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute()).map((r) => r.body.toLowerCase());
      for (const typed of [TYPED_AT_SIGN_IN, TYPED_AT_RESET]) expect(bodies.filter((b) => b.includes(typed.toLowerCase()))).toEqual([]);
      // Nor the server's log.
      for (const typed of [TYPED_AT_SIGN_IN, TYPED_AT_RESET]) expect(t.logs.text.toLowerCase()).not.toContain(typed.toLowerCase());
      const failures = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', 'in', ['session.sign_in_failed', 'password_reset.self_failed']).orderBy('seq').execute();
      expect(failures.map((f) => JSON.parse(f.body).details)).toEqual([
        expect.objectContaining({ reason: 'unknown_username', usernameHash: expect.stringMatching(/^h1:[0-9a-f]{64}$/) }),
        expect.objectContaining({ reason: 'unknown_username', usernameHash: expect.stringMatching(/^h1:[0-9a-f]{64}$/) }),
      ]);

      // The administrator on the server asks; the same typing, in any case, finds each attempt.
      const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
      const found = await runCli(['audit', 'lookup-username', `  ${TYPED_AT_SIGN_IN.toUpperCase()} `, '--json'], env);
      expect(found.stderr).toBe('');
      expect(found.code).toBe(0);
      expect(JSON.parse(found.stdout).matches).toEqual([expect.objectContaining({ action: 'session.sign_in_failed', reason: 'unknown_username', ip: '10.0.0.31' })]);
      const reset = await runCli(['audit', 'lookup-username', TYPED_AT_RESET], env);
      expect(reset.code).toBe(0);
      expect(reset.stdout).toMatch(/^1 event with the unknown username "quiet-compass-meadow-12" \(hash h1:[0-9a-f]{64}\):\n\s+\d+\s+\S+\s+password_reset\.self_failed\s+unknown_username\n$/);
      const never = await runCli(['audit', 'lookup-username', 'nobody-typed-this'], env);
      expect(never.code).toBe(1);
      expect(never.stdout).toMatch(/^No event records an attempt/);
    }, 180_000);
  });
}
