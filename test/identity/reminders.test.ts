import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import { sendExpiryReminders } from '../../src/identity/reminders.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { startTestApp, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

for (const dialect of await dialects()) {
  describe(`password expiry reminders (${dialect})`, () => {
    let t: TestApp | undefined;
    let sink: Awaited<ReturnType<typeof startSmtpSink>> | undefined;
    afterEach(async () => {
      await t?.close();
      await sink?.close();
    });

    it('PW-06 e-mails a reminder once before a password expires, never for passwords far from expiry', async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { profile: 'p1', smtpUrl: sink.url } });
      const hash = await t.runtime.hasher.hash('Violet-Harbour-Lantern-7');
      const daysAgo = (n: number) => new Date(t!.clock.now().getTime() - n * 86_400_000).toISOString();
      await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        for (const [username, email, setDaysAgo] of [['soon', 'soon@school.example', 80], ['later', 'later@school.example', 10], ['nomail', null, 85]] as const) {
          const id = await createAccount(ctx, { username, displayName: `Person ${username}`, email, role: 'staff', passwordHash: hash });
          await ctx.db.updateTable('account').set({ password_set_at: daysAgo(setDaysAgo) }).where('id', '=', id).execute();
        }
      });
      expect(await sendExpiryReminders(t.runtime)).toEqual({ sent: 1, failed: 0 });
      await sink.waitFor(1);
      expect(sink.messages[0]!.to).toEqual(['soon@school.example']);
      expect(sink.messages[0]!.raw).toContain('expires on');
      expect(sink.messages[0]!.raw).not.toMatch(/https?:\/\//);
      // Once per expiry: the next hourly check sends nothing more.
      expect(await sendExpiryReminders(t.runtime)).toEqual({ sent: 0, failed: 0 });
      // Five days later the second person is not yet within 14 days of expiry either.
      t.clock.advance(5 * 86_400_000);
      expect(await sendExpiryReminders(t.runtime)).toEqual({ sent: 0, failed: 0 });
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', 'like', 'password.expiry_reminder%').execute();
      expect(events).toHaveLength(1);
    });

    it('PW-06 without an SMTP server, nothing is sent or recorded (the sign-in notice remains)', async () => {
      t = await startTestApp(dialect, { config: { profile: 'p1' } });
      expect(await sendExpiryReminders(t.runtime)).toEqual({ sent: 0, failed: 0 });
    });
  });
}
