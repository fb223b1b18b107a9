import type { Kysely } from 'kysely';

/**
 * Issue 10 (finding 11): the authenticator secret of an enrolment from My account is kept by the
 * server, sealed and bound to the session and its account, until the first code confirms it (or it
 * expires); the browser sends only the code. Before, the browser sent the secret back, so a stolen
 * session could enrol a secret of the attacker's choosing.
 *
 * Self-contained: creates what it needs and nothing else. Released: never edit; add a new one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('session').addColumn('pending_totp_secret', 'text').execute();
  await db.schema.alterTable('session').addColumn('pending_totp_expires_at', 'text').execute();
}
