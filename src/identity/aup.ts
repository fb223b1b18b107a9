import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { groups, type Group } from '../core/profile.js';
import type { Schema } from '../db/schema.js';

/**
 * AC-06: the Acceptable Use Policy, in numbered versions per audience (pupils, staff, guests,
 * administrators). Publishing a new version means everyone in that audience accepts it again at
 * their next sign-in; every acceptance is kept.
 */
export interface AupVersion {
  id: string;
  audience: Group;
  version: number;
  title: string;
  body: string;
  publishedAt: string;
  publishedBy: string | null;
}

export const aupInputSchema = z.object({
  audience: z.enum(groups, { error: `must be one of ${groups.join(', ')}` }),
  title: z.string().trim().min(3, 'must be at least 3 characters').max(200),
  body: z.string().trim().min(20, 'must be at least 20 characters: the policy itself').max(100_000),
});

const view = (r: Schema['aup_version']): AupVersion => ({
  id: r.id,
  audience: r.audience as Group,
  version: r.version,
  title: r.title,
  body: r.body,
  publishedAt: r.published_at,
  publishedBy: r.published_by,
});

export async function currentAup(db: Kysely<Schema>, audience: Group): Promise<AupVersion | undefined> {
  const row = await db.selectFrom('aup_version').selectAll().where('audience', '=', audience).orderBy('version', 'desc').limit(1).executeTakeFirst();
  return row ? view(row) : undefined;
}

export async function currentAups(db: Kysely<Schema>): Promise<AupVersion[]> {
  const out: AupVersion[] = [];
  for (const g of groups) {
    const v = await currentAup(db, g);
    if (v) out.push(v);
  }
  return out;
}

export async function hasAccepted(db: Kysely<Schema>, accountId: string, versionId: string): Promise<boolean> {
  return (await db.selectFrom('aup_acceptance').select('account_id').where('account_id', '=', accountId).where('aup_version_id', '=', versionId).executeTakeFirst()) !== undefined;
}

export async function publishAup(ctx: Ctx, input: z.infer<typeof aupInputSchema>): Promise<AupVersion> {
  const current = await currentAup(ctx.db, input.audience);
  const row = {
    id: newId(),
    audience: input.audience,
    version: (current?.version ?? 0) + 1,
    title: input.title,
    body: input.body,
    published_at: ctx.clock.now().toISOString(),
    published_by: ctx.actor.name,
  };
  await ctx.db.insertInto('aup_version').values(row).execute();
  await ctx.audit.record({
    action: 'aup.published',
    target: `aup_version:${row.id}`,
    severity: 'notice',
    details: { audience: row.audience, version: row.version, title: row.title },
  });
  return view(row);
}

export async function acceptAupVersion(ctx: Ctx, accountId: string, username: string, versionId: string): Promise<void> {
  const version = await ctx.db.selectFrom('aup_version').selectAll().where('id', '=', versionId).executeTakeFirst();
  if (!version) throw new GatehouseError('aup_not_found', 404, 'That version of the Acceptable Use Policy does not exist.');
  const latest = await currentAup(ctx.db, version.audience as Group);
  if (latest?.id !== version.id) throw new GatehouseError('aup_superseded', 409, 'A newer version of the Acceptable Use Policy has been published. Please read that one.');
  if (await hasAccepted(ctx.db, accountId, versionId)) return;
  await ctx.db.insertInto('aup_acceptance').values({ account_id: accountId, aup_version_id: versionId, accepted_at: ctx.clock.now().toISOString(), ip: ctx.ip }).execute();
  await ctx.audit.record({
    action: 'aup.accepted',
    target: `account:${accountId}`,
    details: { username, audience: version.audience, version: version.version, title: version.title, ip: ctx.ip },
  });
}

export interface AcceptanceRow {
  username: string;
  displayName: string;
  version: number;
  acceptedAt: string;
}

export async function acceptancesOf(db: Kysely<Schema>, audience: Group): Promise<AcceptanceRow[]> {
  const rows = await db
    .selectFrom('aup_acceptance')
    .innerJoin('aup_version', 'aup_version.id', 'aup_acceptance.aup_version_id')
    .innerJoin('account', 'account.id', 'aup_acceptance.account_id')
    .select(['account.username as username', 'account.display_name as displayName', 'aup_version.version as version', 'aup_acceptance.accepted_at as acceptedAt'])
    .where('aup_version.audience', '=', audience)
    .orderBy('aup_acceptance.accepted_at', 'desc')
    .execute();
  return rows;
}
