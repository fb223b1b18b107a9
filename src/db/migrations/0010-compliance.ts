import type { Kysely } from 'kysely';

/**
 * Issue 12 (GV-08): the compliance view. What is computed from live data is never stored as the
 * truth; stored are only what a person attests (a manual sign-off of a clause, with its evidence
 * and how long it holds) and dated snapshots of each framework's standing, for its history.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('compliance_signoff')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('framework_id', 'text', (c) => c.notNull())
    .addColumn('clause_id', 'text', (c) => c.notNull())
    .addColumn('statement', 'text', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('signed_by', 'text', (c) => c.notNull())
    .addColumn('signed_by_name', 'text', (c) => c.notNull())
    .addColumn('signed_at', 'text', (c) => c.notNull())
    .addColumn('valid_until', 'text', (c) => c.notNull())
    .addColumn('withdrawn_at', 'text')
    .addColumn('withdrawn_by', 'text')
    .addColumn('withdrawn_reason', 'text')
    .execute();
  await db.schema.createIndex('compliance_signoff_clause').on('compliance_signoff').columns(['framework_id', 'clause_id', 'signed_at']).execute();
  await db.schema
    .createTable('compliance_snapshot')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('taken_at', 'text', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('framework_id', 'text', (c) => c.notNull())
    .addColumn('met', 'integer', (c) => c.notNull())
    .addColumn('due_soon', 'integer', (c) => c.notNull())
    .addColumn('not_met', 'integer', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull())
    /** JSON: clause id -> status, to show which clauses changed */
    .addColumn('clauses', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('compliance_snapshot_day').on('compliance_snapshot').columns(['framework_id', 'day']).unique().execute();
}
