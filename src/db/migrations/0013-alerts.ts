import type { Kysely } from 'kysely';

/**
 * Issue 11 (FI-11, MO-02, MO-03, MO-07): safeguarding and security alerts raised from the activity
 * stream and the sign-in events. An alert carries the minimum (who, device, what, when, why), never
 * page contents; repeats of the same alert while it is open add to its count (never muted). Each is
 * acknowledged and closed with an action and outcome by a named person; unacknowledged ones escalate.
 * `alert_state` holds where the audit-trail reader got to (security events come from the trail).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('alert')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** safeguarding (seen by the DSL and deputies) | security (seen by IT administrators) */
    .addColumn('kind', 'text', (c) => c.notNull())
    /** concern | repeated | circumvention | search_term | port_scan | privileged_sign_in | lockout */
    .addColumn('rule', 'text', (c) => c.notNull())
    /** high | medium | low */
    .addColumn('severity', 'text', (c) => c.notNull())
    /** identical alerts while one is open add to its count */
    .addColumn('dedupe_key', 'text', (c) => c.notNull())
    .addColumn('first_at', 'text', (c) => c.notNull())
    .addColumn('last_at', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('person_id', 'text')
    .addColumn('username', 'text')
    .addColumn('device', 'text')
    .addColumn('client_ip', 'text')
    /** what: a host name, a search term, an account name; never a page's content */
    .addColumn('what', 'text', (c) => c.notNull())
    /** why: the rule in words (category, watch-list term, threshold) */
    .addColumn('why', 'text', (c) => c.notNull())
    /** new | acknowledged | closed */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('acknowledged_at', 'text')
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_by_name', 'text')
    .addColumn('closed_at', 'text')
    .addColumn('closed_by', 'text')
    .addColumn('closed_by_name', 'text')
    .addColumn('action_taken', 'text')
    .addColumn('outcome', 'text')
    /** how many times it was escalated to the next role, and when last */
    .addColumn('escalations', 'integer', (c) => c.notNull())
    .addColumn('escalated_at', 'text')
    /** when its e-mail went out (null: not yet, or digest) */
    .addColumn('notified_at', 'text')
    .execute();
  await db.schema.createIndex('alert_status').on('alert').columns(['status', 'first_at']).execute();
  await db.schema.createIndex('alert_dedupe').on('alert').columns(['dedupe_key', 'status']).execute();
  await db.schema
    .createTable('alert_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    /** the last audit event read for security alerts */
    .addColumn('audit_seq', 'integer', (c) => c.notNull())
    .addColumn('digest_at', 'text')
    .execute();
}
