import type { Kysely } from 'kysely';

/**
 * Issue 11 (IN-01..IN-07, MO-03): concerns reported by anyone (a pupil too, from the sign-in page
 * or the block page), the incident register with its append-only timeline, the personal-data
 * breach clock (awareness, 72 hours, the ICO decision) and the reminders sent to the DPO.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('incident_concern')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** what the reporter is given back, and nothing else */
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    /** online_safety | technical */
    .addColumn('kind', 'text', (c) => c.notNull())
    /** sign_in | block_page | console */
    .addColumn('source', 'text', (c) => c.notNull())
    /** null: anonymous */
    .addColumn('reporter_name', 'text')
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('blocked_host', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    /** new | taken_up | dismissed */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('incident_id', 'text')
    .execute();
  await db.schema.createIndex('incident_concern_created').on('incident_concern').column('created_at').execute();
  await db.schema
    .createTable('incident')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    /** safeguarding | security | data_breach | cyber */
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    /** open | closed */
    .addColumn('status', 'text', (c) => c.notNull())
    /** manual | alert | concern */
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('alert_ref', 'text')
    .addColumn('concern_id', 'text')
    .addColumn('people', 'text', (c) => c.notNull())
    .addColumn('devices', 'text', (c) => c.notNull())
    .addColumn('containment', 'text', (c) => c.notNull())
    .addColumn('cause', 'text', (c) => c.notNull())
    .addColumn('actions', 'text', (c) => c.notNull())
    .addColumn('policy_updates', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('recorded_by', 'text')
    .addColumn('recorded_by_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('closed_at', 'text')
    /** personal-data breach (IN-04): when the school became aware; the 72 hours run from here */
    .addColumn('aware_at', 'text')
    /** reportable | not_reportable | null (not decided) */
    .addColumn('ico_decision', 'text')
    .addColumn('ico_reasoning', 'text')
    .addColumn('ico_reference', 'text')
    .addColumn('ico_decided_at', 'text')
    .addColumn('ico_decided_by', 'text')
    /** cyber (IN-05): action_fraud | ncsc | police | other */
    .addColumn('authority', 'text')
    .addColumn('authority_reference', 'text')
    .addColumn('authority_reported_at', 'text')
    .execute();
  await db.schema.createIndex('incident_category_status').on('incident').columns(['category', 'status']).execute();
  await db.schema
    .createTable('incident_event')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('incident_id', 'text', (c) => c.notNull())
    /** the entry's place in its incident's timeline, from 1 (entries made in one instant keep their order) */
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('actor_name', 'text', (c) => c.notNull())
    /** recorded | note | containment | quarantine | update | ico_decision | authority_report | reminder | closed | reopened */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addUniqueConstraint('incident_event_seq', ['incident_id', 'seq'])
    .execute();
  await db.schema
    .createTable('incident_reminder')
    .addColumn('incident_id', 'text', (c) => c.notNull())
    /** hours after awareness: 24 | 48 | 66 */
    .addColumn('mark', 'integer', (c) => c.notNull())
    .addColumn('sent_at', 'text', (c) => c.notNull())
    .addColumn('sent', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('incident_reminder_pk', ['incident_id', 'mark'])
    .execute();
}
