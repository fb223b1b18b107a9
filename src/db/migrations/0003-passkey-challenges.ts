import type { Kysely } from 'kysely';

/**
 * A pending WebAuthn challenge for a session (registering a passkey from My account).
 * Released: never edit; add a new migration instead.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('session').addColumn('challenge', 'text').execute();
}
