import type { Kysely } from 'kysely';

/**
 * Issue 11 (FI-06, AU-03, MO-06): change control for filtering. Every change to lists, entries,
 * policies and devices is a request that a second responsible person approves; emergency
 * (tightening) changes apply at once and stay awaiting approval until approved or rolled back.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('change_request')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('before_state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('emergency', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_by_name', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_by_name', 'text')
    .addColumn('decided_at', 'text')
    .addColumn('decision_reason', 'text')
    .addColumn('applied_at', 'text')
    .addColumn('escalated_at', 'text')
    .execute();
  await db.schema.createIndex('change_request_state').on('change_request').columns(['state', 'requested_at']).execute();
}
