import type { Kysely } from 'kysely';

/**
 * Issue 11 (FI-07, FI-08, FI-12, FI-13, IN-06): filter exceptions. One row per exception: who it
 * is for (a person, a group, a device by address or MAC, everyone), what it opens (a domain or a
 * category; nothing for filter-off and quarantine), its kind (allow, lesson, filter-off,
 * quarantine), when it starts and ends, why, who made it and who decided or released it. Unblock
 * requests from the block page keep their decision (allow/refuse) and its review.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('filter_exception')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('subject_name', 'text')
    .addColumn('target_kind', 'text')
    .addColumn('target', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('starts_at', 'text', (c) => c.notNull())
    .addColumn('ends_at', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('incident_id', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_by_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_by_name', 'text')
    .addColumn('decided_at', 'text')
    .addColumn('ended_by', 'text')
    .addColumn('ended_by_name', 'text')
    .addColumn('ended_at', 'text')
    .execute();
  await db.schema.createIndex('filter_exception_status').on('filter_exception').columns(['status', 'ends_at']).execute();
  await db.schema
    .createTable('filter_request_review')
    .addColumn('request_id', 'text', (c) => c.primaryKey())
    .addColumn('reviewed_by', 'text', (c) => c.notNull())
    .addColumn('reviewed_by_name', 'text', (c) => c.notNull())
    .addColumn('reviewed_at', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .execute();
}
