import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';

/**
 * The school, its named contacts, accounts and sessions, and the audit trail.
 * Released: never edit; add a new migration instead (test/db/migrations.test.ts holds the checksums).
 */
export async function up(db: Kysely<any>): Promise<void> {
  const dialect = dialectOf(db);
  const bigint = dialect === 'sqlite' ? 'integer' : 'bigint';

  await db.schema
    .createTable('school')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('urn', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('school_contact')
    .addColumn('role', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('account')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('is_break_glass', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('session')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('ended_at', 'text')
    .addColumn('end_reason', 'text')
    .execute();
  await db.schema.createIndex('session_account').on('session').column('account_id').execute();

  // The event's canonical JSON (what is hashed) is the stored truth; the columns people query by
  // are generated from it, so they cannot be changed without changing the hashed bytes.
  const field = (name: string) =>
    dialect === 'sqlite' ? sql.raw(`json_extract(body, '$.${name}')`) : sql.raw(`((body::jsonb) ->> '${name}')`);
  const generated = (c: any, name: string) => (dialect === 'sqlite' ? c.generatedAlwaysAs(field(name)) : c.generatedAlwaysAs(field(name)).stored());
  await db.schema
    .createTable('audit_event')
    .addColumn('seq', bigint, (c) => c.primaryKey())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => generated(c, 'at'))
    .addColumn('actor', 'text', (c) => generated(c, 'actor'))
    .addColumn('actor_id', 'text', (c) => generated(c, 'actorId'))
    .addColumn('action', 'text', (c) => generated(c, 'action'))
    .addColumn('target', 'text', (c) => generated(c, 'target'))
    .addColumn('severity', 'text', (c) => generated(c, 'severity'))
    .addColumn('prev_hash', 'text', (c) => generated(c, 'prev'))
    .execute();
  await db.schema.createIndex('audit_event_at').on('audit_event').column('at').execute();
  await db.schema.createIndex('audit_event_action').on('audit_event').column('action').execute();

  await db.schema
    .createTable('audit_key')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('audit_checkpoint')
    .addColumn('seq', bigint, (c) => c.primaryKey())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull().references('audit_key.key_id'))
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('note', 'text', (c) => c.notNull())
    .execute();

  // A second layer only: the hash chain is what proves integrity. This stops accidents and
  // casual edits through the application's own connection.
  for (const table of ['audit_event', 'audit_checkpoint', 'audit_key']) {
    if (dialect === 'sqlite') {
      await sql
        .raw(
          `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
        )
        .execute(db);
      await sql
        .raw(
          `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
        )
        .execute(db);
    }
  }
  if (dialect === 'postgres') {
    await sql
      .raw(
        `CREATE FUNCTION gatehouse_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$`,
      )
      .execute(db);
    for (const table of ['audit_event', 'audit_checkpoint', 'audit_key']) {
      await sql
        .raw(
          `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()`,
        )
        .execute(db);
    }
  }
}
