import { sql, type Kysely } from 'kysely';

/**
 * SCIM reach (issue 10, finding 8): a SCIM token is granted a set of roles it may create and
 * change, privileged roles only with an explicit flag, and existing accounts only when told to
 * adopt them; every account and group SCIM makes belongs to the token's provisioning source.
 *
 * Existing tokens get a grant equal to their one role, not privileged, no adoption; their
 * provisioning source is their name. Existing SCIM accounts and groups belong to the token named
 * by the first SCIM event in the audit trail that created or changed them (the actor
 * `scim:<token name>`), which is the token that made or adopted them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('scim_token').addColumn('roles', 'text', (c) => c.notNull().defaultTo('[]')).execute();
  await db.schema.alterTable('scim_token').addColumn('allow_privileged', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('scim_token').addColumn('adopt_existing', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('scim_token').addColumn('provisioning_source', 'text', (c) => c.notNull().defaultTo('')).execute();
  await db.schema.alterTable('account').addColumn('provisioning_source', 'text').execute();
  await db.schema.alterTable('directory_group').addColumn('provisioning_source', 'text').execute();
  await db.schema.createIndex('account_provisioning_source').on('account').columns(['provisioning_source', 'role']).execute();

  const tokens = await db.selectFrom('scim_token').select(['id', 'name', 'default_role']).execute();
  for (const t of tokens as Array<{ id: string; name: string; default_role: string }>) {
    await db.updateTable('scim_token').set({ roles: JSON.stringify([t.default_role]), provisioning_source: t.name }).where('id', '=', t.id).execute();
  }

  // The first SCIM actor to create or change each account and group: its owner.
  for (const [table, actions, prefix] of [
    ['account', ['account.created', 'account.changed'], 'account:'],
    ['directory_group', ['group.created'], 'group:'],
  ] as const) {
    const firsts = await sql<{ target: string; actor: string }>`
      SELECT e.target, e.actor FROM audit_event e
      JOIN (SELECT target, MIN(seq) AS seq FROM audit_event
            WHERE actor LIKE 'scim:%' AND action IN (${sql.join(actions.map((a) => sql.lit(a)))}) AND target LIKE ${sql.lit(`${prefix}%`)}
            GROUP BY target) f ON f.seq = e.seq`.execute(db);
    for (const row of firsts.rows) {
      await db
        .updateTable(table)
        .set({ provisioning_source: row.actor.slice('scim:'.length) })
        .where('id', '=', row.target.slice(prefix.length))
        .where('source', '=', 'scim')
        .execute();
    }
  }
}
