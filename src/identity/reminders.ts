import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { Role } from '../core/authz.js';
import { systemActor } from '../core/context.js';
import type { Runtime } from '../runtime.js';
import { passwordExpiresAt, settingsFor } from './policy.js';

/**
 * PW-06: "reminders before it" — besides the notice at sign-in, each person whose password expires
 * within the profile's `remindDaysBefore` is e-mailed once for that expiry (the audit trail records
 * each reminder, and is what keeps it to once). Nobody is e-mailed a password or a link to set one.
 */
export async function sendExpiryReminders(rt: Runtime): Promise<{ sent: number; failed: number }> {
  // Without an SMTP server the sign-in notice is the reminder; nothing to record every hour.
  if (!rt.mailer.configured) return { sent: 0, failed: 0 };
  const now = rt.clock.now();
  const accounts = await rt.db.kysely
    .selectFrom('account')
    .select(['id', 'username', 'display_name', 'email', 'role', 'password_set_at', 'password_expiry_exempt'])
    .where('status', '=', 'active')
    .where('email', 'is not', null)
    .where('password_hash', 'is not', null)
    .where('must_change_password', '=', 0)
    .execute();
  const due: Array<{ id: string; username: string; name: string; email: string; expiresAt: string }> = [];
  for (const a of accounts) {
    const expiresAt = passwordExpiresAt(rt.profile, a.role as Role, a.password_set_at, a.password_expiry_exempt === 1);
    if (!expiresAt) continue;
    const remind = settingsFor(rt.profile, a.role as Role).passwords.remindDaysBefore;
    const until = Date.parse(expiresAt) - now.getTime();
    if (remind <= 0 || until <= 0 || until > remind * 86_400_000) continue;
    due.push({ id: a.id, username: a.username, name: a.display_name, email: a.email!, expiresAt });
  }
  if (due.length === 0) return { sent: 0, failed: 0 };
  // Already reminded (or tried, and the failure recorded) for this expiry?
  const earlier = await rt.db.kysely
    .selectFrom('audit_event')
    .select(['target', 'body'])
    .where('action', 'in', ['password.expiry_reminder_sent', 'password.expiry_reminder_failed'])
    .where('target', 'in', due.map((d) => `account:${d.id}`))
    .execute();
  const done = new Set(earlier.map((e) => `${e.target}|${(JSON.parse(e.body) as { details: { expiresAt: string } }).details.expiresAt}`));
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  let sent = 0;
  let failed = 0;
  for (const d of due) {
    if (done.has(`account:${d.id}|${d.expiresAt}`)) continue;
    const day = new Intl.DateTimeFormat('en-GB', { timeZone: rt.profile.timeZone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(d.expiresAt));
    const result = await rt.mailer.send({
      to: d.email,
      subject: `Your ${school?.name ?? 'school'} password expires on ${day}`,
      text:
        `Dear ${d.name},\n\nUnder the school's password policy, the password of your account (${d.username}) expires on ${day}. ` +
        `Please sign in to Gatehouse before then and change it under My account; after that date you will be asked to choose a new one when you sign in.\n\n` +
        `This message never contains a link to change your password: if you receive one that does, do not use it and tell the IT team.\n\n— Gatehouse`,
    });
    if (result.sent) sent++;
    else failed++;
    await rt.trail.transaction(systemActor(), (ctx) =>
      ctx.audit.record({
        action: result.sent ? 'password.expiry_reminder_sent' : 'password.expiry_reminder_failed',
        target: `account:${d.id}`,
        severity: result.sent ? 'info' : 'warning',
        details: { username: d.username, expiresAt: d.expiresAt, ...(result.sent ? {} : { error: result.error ?? 'not sent' }) },
      }));
  }
  return { sent, failed };
}

/** Checks once an hour (and shortly after start) in `serve`. */
export function scheduleExpiryReminders(rt: Runtime, everyMs = 3_600_000): Periodic {
  return schedulePeriodic(rt.logger, 'password expiry reminders', async () => {
    const r = await sendExpiryReminders(rt);
    if (r.sent || r.failed) rt.logger.info({ reminders: r }, 'password expiry reminders e-mailed');
  }, { everyMs, firstAfterMs: 5_000 });
}
