import type { Kysely } from 'kysely';

/**
 * Issue 12 (BK-05): the continuity and disaster recovery plan is written in the console, not only
 * linked: each version also holds the people to call (IT provider, insurer, Action Fraud, the DfE
 * sector security enquiries, the DPO…) and a note of what changed, so its history reads as a record.
 * The link to a longer document becomes optional (stored as '' when there is none).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('continuity_plan').addColumn('contacts', 'text', (c) => c.notNull().defaultTo('')).execute();
  await db.schema.alterTable('continuity_plan').addColumn('change_note', 'text').execute();
  await db.schema.alterTable('continuity_plan').addColumn('recorded_by', 'text').execute();
  await db.schema.createIndex('continuity_plan_reviewed_at').on('continuity_plan').column('reviewed_at').execute();
}
