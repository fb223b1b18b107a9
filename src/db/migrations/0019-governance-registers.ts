import type { Kysely } from 'kysely';

/**
 * Issue 12 (GV-01, GV-02, GV-05): what the governance registers need beyond 0017 — each
 * recommendation's status (open, in progress, done), the reference of a training certificate (the
 * NCSC course's certificate number or where the school keeps it), and the changes that bring the
 * filtering and monitoring review forward (P4 9.17: a safeguarding risk identified, a change in
 * working practice, new technology).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('governance_recommendation').addColumn('status', 'text', (c) => c.notNull().defaultTo('open')).execute();
  await db.schema.alterTable('governance_recommendation').addColumn('updated_at', 'text').execute();
  await db.schema.alterTable('training_record').addColumn('certificate_reference', 'text').execute();
  // One record per person, course and completion date: two identical requests at once store one.
  await db.schema.createIndex('training_record_once').on('training_record').columns(['account_id', 'course', 'completed_at']).unique().execute();
  await db.schema
    .createTable('governance_change')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** safeguarding_risk | working_practice | new_technology */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('recorded_by_name', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('governance_change_at').on('governance_change').column('recorded_at').execute();
}
