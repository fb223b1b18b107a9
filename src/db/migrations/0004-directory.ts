import { sql, type Kysely } from 'kysely';

/**
 * Accounts from joining to leaving (issue 4): the directory (names, external ids, where a person came
 * from, groups and memberships), SCIM tokens, the access-rights matrix and its annual review, the
 * guest pool, reset requests, leaver checklists and the shared-secrets register.
 * Released: never edit; add a new migration instead.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('account').addColumn('given_name', 'text').execute();
  await db.schema.alterTable('account').addColumn('family_name', 'text').execute();
  await db.schema.alterTable('account').addColumn('external_id', 'text').execute();
  await db.schema.alterTable('account').addColumn('source', 'text', (c) => c.notNull().defaultTo('manual')).execute();
  await db.schema.alterTable('account').addColumn('left_at', 'text').execute();
  await db.schema.alterTable('account').addColumn('access_ends_at', 'text').execute();
  await db.schema.createIndex('account_external_id').on('account').columns(['source', 'external_id']).unique().execute();
  await db.schema.createIndex('account_role').on('account').columns(['role', 'status']).execute();

  await db.schema
    .createTable('directory_group')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text')
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('manual'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('directory_group_external_id').on('directory_group').columns(['source', 'external_id']).unique().execute();

  await db.schema
    .createTable('group_member')
    .addColumn('group_id', 'text', (c) => c.notNull().references('directory_group.id').onDelete('cascade'))
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('member_role', 'text', (c) => c.notNull())
    .addColumn('added_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_member_pk', ['group_id', 'account_id'])
    .execute();
  await db.schema.createIndex('group_member_account').on('group_member').column('account_id').execute();

  await db.schema
    .createTable('scim_token')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('default_role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();

  await db.schema
    .createTable('school_system')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // subject: "role:<role>" or "group:<directory_group.id>"
  await db.schema
    .createTable('access_grant')
    .addColumn('system_id', 'text', (c) => c.notNull().references('school_system.id').onDelete('cascade'))
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('access_grant_pk', ['system_id', 'subject'])
    .execute();

  await db.schema
    .createTable('access_review')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('started_by', 'text', (c) => c.notNull())
    .addColumn('snapshot', 'text', (c) => c.notNull())
    .addColumn('decisions', 'text', (c) => c.notNull())
    .addColumn('signed_off_at', 'text')
    .addColumn('signed_off_by', 'text')
    .addColumn('summary', 'text')
    .execute();
  // One review in progress at a time, even when two senior leaders start one at the same moment.
  await db.schema.createIndex('access_review_one_open').on('access_review').column('status').unique().where(sql.ref('status'), '=', 'in_progress').execute();

  await db.schema
    .createTable('guest_allocation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('visitor_name', 'text')
    .addColumn('organisation', 'text')
    .addColumn('purpose', 'text')
    .addColumn('host', 'text')
    .addColumn('starts_at', 'text', (c) => c.notNull())
    .addColumn('ends_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .addColumn('end_reason', 'text')
    .addColumn('wiped_at', 'text')
    .addColumn('allocated_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('guest_allocation_account').on('guest_allocation').columns(['account_id', 'ended_at']).execute();

  await db.schema
    .createTable('reset_request')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text')
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'text')
    .addColumn('decision_note', 'text')
    .addColumn('issued_by', 'text')
    .addColumn('issued_at', 'text')
    .addColumn('verified_how', 'text')
    .addColumn('token_hash', 'text')
    .execute();
  await db.schema.createIndex('reset_request_status').on('reset_request').columns(['status', 'created_at']).execute();

  await db.schema
    .createTable('leaver_checklist')
    .addColumn('account_id', 'text', (c) => c.primaryKey().references('account.id').onDelete('cascade'))
    .addColumn('left_on', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('started_by', 'text', (c) => c.notNull())
    .addColumn('items', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('completed_at', 'text')
    .execute();

  await db.schema
    .createTable('shared_secret')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('rotation', 'text', (c) => c.notNull())
    .addColumn('rotation_days', 'integer')
    .addColumn('last_rotated_at', 'text')
    .addColumn('next_due_at', 'text', (c) => c.notNull())
    .addColumn('flagged_at', 'text')
    .addColumn('flag_reason', 'text')
    .addColumn('notes', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text')
    .execute();

  await db.schema
    .createTable('shared_secret_holder')
    .addColumn('secret_id', 'text', (c) => c.notNull().references('shared_secret.id').onDelete('cascade'))
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('shared_secret_holder_pk', ['secret_id', 'account_id'])
    .execute();
  await db.schema.createIndex('shared_secret_holder_account').on('shared_secret_holder').column('account_id').execute();
}
