import type { Kysely } from 'kysely';

/**
 * Sign-in under the policy profile: lockout, password lifetimes and history, temporary passwords,
 * linked administrator accounts, MFA (TOTP, recovery codes, passkeys), Acceptable Use Policy
 * versions and acceptances, and sign-ins in progress.
 * Released: never edit; add a new migration instead.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('account').addColumn('linked_account_id', 'text', (c) => c.references('account.id').onDelete('set null')).execute();
  await db.schema.alterTable('account').addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('account').addColumn('locked_at', 'text').execute();
  await db.schema.alterTable('account').addColumn('password_set_at', 'text').execute();
  await db.schema.alterTable('account').addColumn('password_expiry_exempt', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('account').addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('account').addColumn('temporary_expires_at', 'text').execute();
  await db.schema.alterTable('account').addColumn('totp_secret', 'text').execute();
  await db.schema.alterTable('account').addColumn('totp_last_step', 'integer').execute();
  await db.schema.alterTable('account').addColumn('totp_enrolled_at', 'text').execute();
  await db.schema.alterTable('session').addColumn('reauthenticated_at', 'text').execute();

  await db.schema
    .createTable('password_history')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('set_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('password_history_account').on('password_history').columns(['account_id', 'set_at']).execute();

  await db.schema
    .createTable('recovery_code')
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addPrimaryKeyConstraint('recovery_code_pk', ['account_id', 'code_hash'])
    .execute();

  await db.schema
    .createTable('passkey')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'integer', (c) => c.notNull())
    .addColumn('transports', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .execute();
  await db.schema.createIndex('passkey_account').on('passkey').column('account_id').execute();

  await db.schema
    .createTable('aup_version')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('published_at', 'text', (c) => c.notNull())
    .addColumn('published_by', 'text')
    .addUniqueConstraint('aup_version_audience_version', ['audience', 'version'])
    .execute();

  await db.schema
    .createTable('aup_acceptance')
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('aup_version_id', 'text', (c) => c.notNull().references('aup_version.id'))
    .addColumn('accepted_at', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addPrimaryKeyConstraint('aup_acceptance_pk', ['account_id', 'aup_version_id'])
    .execute();

  await db.schema
    .createTable('sign_in_attempt')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('offsite', 'integer', (c) => c.notNull())
    .addColumn('mfa_verified', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('mfa_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('challenge', 'text')
    .addColumn('pending_totp_secret', 'text')
    .execute();
}
