import type { Kysely } from 'kysely';

/**
 * Issue 10 (findings 6 and 12): stored secrets bound to their rows and keyed, and e-mailed links
 * for self-service password resets.
 *
 * - `maintenance_task`: work that needs what a migration does not have (the key files in the data
 *   folder). The runtime does each task once at start, in one audited transaction, and deletes its
 *   row: here, re-sealing the TOTP secrets sealed before (v1, no associated data) bound to their
 *   rows, and re-keying the unsalted SHA-256 recovery-code hashes as HMAC-SHA-256 under the server
 *   key with the account id as salt (src/identity/secrets-upgrade.ts).
 * - `reset_request`: the e-mailed code of a self-service reset — stored hashed, bound to the
 *   attempt, single use, short-lived, with its wrong tries counted.
 *
 * Self-contained: creates what it needs and nothing else. Released: never edit; add a new one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('maintenance_task')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.insertInto('maintenance_task').values({ name: 'secrets-v2', created_at: new Date().toISOString() }).execute();

  await db.schema.alterTable('reset_request').addColumn('email_code_hash', 'text').execute();
  await db.schema.alterTable('reset_request').addColumn('email_sent_at', 'text').execute();
  await db.schema.alterTable('reset_request').addColumn('email_expires_at', 'text').execute();
  await db.schema.alterTable('reset_request').addColumn('email_verified_at', 'text').execute();
  await db.schema.alterTable('reset_request').addColumn('email_failures', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
