import type { Kysely } from 'kysely';

/**
 * Issue 11 (GV-03, AU-04, MO-05): the register of filtering and monitoring checks (who checked what,
 * from which device, location and group, the result and the action: P4 9.18-9.20), and a record of
 * each termly monitoring report issued to senior leaders and governors (what it covered, who made
 * it, and a hash of the document, so the copy in the governors' pack can be matched to it).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('filtering_check')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** guided (run through the live filter by Gatehouse) | manual (done by hand, recorded) */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('checked_at', 'text', (c) => c.notNull())
    .addColumn('checked_by', 'text', (c) => c.notNull())
    .addColumn('checked_by_name', 'text', (c) => c.notNull())
    /** safeguarding | it (P4 9.18: checks from both perspectives) */
    .addColumn('perspective', 'text', (c) => c.notNull())
    .addColumn('device', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    /** the user group checked: pupil, staff, guest, unknown device, or a directory group's name */
    .addColumn('user_group', 'text', (c) => c.notNull())
    .addColumn('policy_id', 'text')
    .addColumn('what', 'text', (c) => c.notNull())
    /** JSON: for a guided check, each address tried, what was expected and what the filter did */
    .addColumn('results', 'text')
    .addColumn('passed', 'integer', (c) => c.notNull())
    .addColumn('failed', 'integer', (c) => c.notNull())
    /** pass | fail */
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('actions', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('filtering_check_at').on('filtering_check').column('checked_at').execute();
  await db.schema
    .createTable('monitoring_report')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('period_name', 'text', (c) => c.notNull())
    .addColumn('period_from', 'text', (c) => c.notNull())
    .addColumn('period_to', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'text', (c) => c.notNull())
    .addColumn('issued_by', 'text', (c) => c.notNull())
    .addColumn('issued_by_name', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull())
    /** the PDF as issued, base64: what governors were given can be produced again byte for byte */
    .addColumn('document', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('monitoring_report_issued').on('monitoring_report').column('issued_at').execute();
}
