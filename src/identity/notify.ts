import type { Runtime } from '../runtime.js';

/**
 * E-mails one of the school's named contacts (School → Named roles) and records in the trail that
 * the notice went, or why it could not.
 */
export async function notifyContact(
  rt: Runtime,
  role: 'headteacher' | 'dpo',
  notice: { about: string; target: string; compose: (contactName: string, schoolName: string) => { subject: string; text: string } },
): Promise<void> {
  const contact = await rt.db.kysely.selectFrom('school_contact').select(['name', 'email']).where('role', '=', role).executeTakeFirst();
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  const result = contact?.email
    ? await rt.mailer.send({ to: contact.email, ...notice.compose(contact.name, school?.name ?? 'your school') })
    : { sent: false, error: `no ${role === 'dpo' ? 'DPO' : 'headteacher'} e-mail address is recorded under School > Named roles` };
  await rt.trail
    .transaction({ id: null, name: 'system', role: null }, (ctx) =>
      ctx.audit.record({
        action: result.sent ? 'notification.sent' : 'notification.failed',
        target: notice.target,
        severity: result.sent ? 'info' : 'warning',
        details: { about: notice.about, to: contact?.email ?? null, ...(result.error ? { error: result.error } : {}) },
      }),
    )
    .catch((error) => rt.logger.error({ err: error }, 'could not record a notification'));
}
