import type { Kysely } from 'kysely';

/**
 * Issue 12 (GV-08): the technical-security policy generated from the configuration in force. Each
 * distinct text is kept once, numbered, with its SHA-256, so a change of configuration shows as a
 * difference from the version before and the paper a governor signed can be matched to a version.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('policy_document_version')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('number', 'integer', (c) => c.notNull().unique())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .execute();
}
