import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';

/**
 * Internet filtering (issue 5): list sources and their categories, policies per group, registered
 * devices, who is at which address (captive sign-in, the identity API, proxy authentication), the
 * tokens of systems that post to the identity API, the activity log (MO-01) and the requests and
 * reports people send from the block page (FI-13). The lists themselves are files under the data
 * folder, not rows: they run to millions of lines.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const dialect = dialectOf(db);

  await db.schema
    .createTable('filter_list_source')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    // the category id of a single list (and the prefix of a UT1 category whose name is taken)
    .addColumn('slug', 'text', (c) => c.notNull().unique())
    // ut1 | domains | hosts | adblock
    .addColumn('format', 'text', (c) => c.notNull())
    // an http(s) URL, a folder or file path, or null for a list edited in the console
    .addColumn('location', 'text')
    // category | illegal | allow | block
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('schedule_hours', 'integer', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('last_fetched_at', 'text')
    // ok | held | error
    .addColumn('last_result', 'text')
    .addColumn('last_error', 'text')
    // when the list in use was fetched, its entries and bytes on disk
    .addColumn('current_at', 'text')
    .addColumn('entries', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('category_count', 'integer', (c) => c.notNull().defaultTo(0))
    // an update that shrank the list by more than half, waiting for an administrator
    .addColumn('held_at', 'text')
    .addColumn('held_entries', 'integer')
    .addColumn('held_version', 'text')
    .execute();

  // The school's own allow and block lists: a few entries each, edited in the console.
  await db.schema
    .createTable('filter_list_entry')
    .addColumn('source_id', 'text', (c) => c.notNull().references('filter_list_source.id').onDelete('cascade'))
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('added_at', 'text', (c) => c.notNull())
    .addColumn('added_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('filter_list_entry_pk', ['source_id', 'host'])
    .execute();

  await db.schema
    .createTable('filter_category')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('source_id', 'text', (c) => c.notNull().references('filter_list_source.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('domains', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('urls', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('filter_category_source').on('filter_category').column('source_id').execute();

  // id: role:<pupils|staff|guests|administrators>, unknown, or group:<directory_group.id>
  await db.schema
    .createTable('filter_policy')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('group_id', 'text', (c) => c.references('directory_group.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    // among a person's directory groups, the lowest number wins
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(100))
    // JSON lists
    .addColumn('blocked_categories', 'text', (c) => c.notNull())
    .addColumn('schedules', 'text', (c) => c.notNull())
    .addColumn('allow_lists', 'text', (c) => c.notNull())
    .addColumn('block_lists', 'text', (c) => c.notNull())
    .addColumn('safe_search', 'text', (c) => c.notNull())
    .addColumn('youtube_mode', 'text', (c) => c.notNull())
    .addColumn('downloads_allowed', 'integer', (c) => c.notNull())
    .addColumn('default_action', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('filter_device')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    // an address or a network in CIDR form
    .addColumn('address', 'text')
    .addColumn('mac', 'text')
    .addColumn('policy_id', 'text', (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('filter_device_mac').on('filter_device').column('mac').execute();

  // Who (or which device) is at an address, from a captive sign-in, the identity API or proxy authentication.
  await db.schema
    .createTable('filter_identity')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.references('account.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.references('filter_device.id').onDelete('cascade'))
    .addColumn('mac', 'text')
    // captive | api | proxy-auth
    .addColumn('via', 'text', (c) => c.notNull())
    .addColumn('reported_by', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .execute();
  await db.schema.createIndex('filter_identity_current').on('filter_identity').columns(['ended_at', 'expires_at']).execute();
  await db.schema.createIndex('filter_identity_ip').on('filter_identity').columns(['ip', 'started_at']).execute();

  await db.schema
    .createTable('filter_identity_token')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();

  // MO-01: every decision, written in batches off the hot path.
  await db.schema
    .createTable('filter_activity')
    .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('point', 'text', (c) => c.notNull())
    .addColumn('client_ip', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('device_name', 'text')
    .addColumn('person_id', 'text')
    .addColumn('username', 'text')
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('search_term', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('category', 'text')
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('policy', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('filter_activity_at').on('filter_activity').column('at').execute();
  await db.schema.createIndex('filter_activity_person').on('filter_activity').columns(['username', 'at']).execute();
  await db.schema.createIndex('filter_activity_client').on('filter_activity').columns(['client_ip', 'at']).execute();
  await db.schema.createIndex('filter_activity_device').on('filter_activity').columns(['device_name', 'at']).execute();
  await db.schema.createIndex('filter_activity_action').on('filter_activity').columns(['action', 'at']).execute();

  // FI-13: "request access" and "report this page" from the block page, for the governance issue.
  await db.schema
    .createTable('filter_request')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // request | report
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('category', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    // open | approved | refused | closed
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.references('account.id').onDelete('set null'))
    .addColumn('username', 'text')
    .addColumn('client_ip', 'text')
    .addColumn('device_name', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('decided_at', 'text')
    .addColumn('decided_by', 'text')
    .addColumn('decision_note', 'text')
    .execute();
  await db.schema.createIndex('filter_request_status').on('filter_request').columns(['status', 'created_at']).execute();

  // One row: bumped on every change a snapshot depends on, so other nodes recompile (polled).
  await db.schema
    .createTable('filter_state')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('policy_generation', 'integer', (c) => c.notNull())
    .addColumn('identity_generation', 'integer', (c) => c.notNull())
    .execute();
  await db.insertInto('filter_state').values({ id: 1, policy_generation: 0, identity_generation: 0 }).execute();
}
