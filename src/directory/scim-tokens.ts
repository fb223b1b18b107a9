import { z } from 'zod';
import { isRole, roles, type Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import { conflict, notFound } from '../core/errors.js';
import { hashToken, newId, newSecretToken } from '../core/ids.js';
import type { Kysely, Selectable } from 'kysely';
import type { Schema, ScimTokenTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';

/**
 * Bearer tokens for SCIM clients (Entra ID, Google): each names the system that uses it and the
 * role given to people it creates without a recognised `userType`. Only the token's SHA-256 is
 * stored; the token itself is shown once, to whoever made it. Never the administrator role: those
 * accounts are made by hand (AC-07), and SCIM cannot see them.
 */

/** Recognisable in a leaked file or a secret scanner; the rest is 256 random bits. */
export const SCIM_TOKEN_PREFIX = 'gscim_';

const provisionableRoles = roles.filter((r) => r !== 'administrator') as [Role, ...Role[]];

export const newScimTokenSchema = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'is required')
    .max(100, 'must be at most 100 characters')
    .regex(/^[^\s:][^:]*$/, 'may not contain a colon'),
  role: z.enum(provisionableRoles, { error: `must be a role other than administrator: ${provisionableRoles.join(', ')}` }),
});

export interface ScimTokenSummary {
  id: string;
  name: string;
  defaultRole: Role;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** Who is calling the SCIM endpoints: the token's row, as the auth hook found it. */
export interface ScimClient {
  tokenId: string;
  name: string;
  defaultRole: Role;
}

/** The SCIM client as the audit trail's actor: "scim:<token name>", no account, no role. */
export const scimActor = (client: ScimClient): Actor => ({ id: null, name: `scim:${client.name}`, role: null });

type Meta = { ip: string | null; requestId: string | null };

function summarise(row: Selectable<ScimTokenTable>): ScimTokenSummary {
  return {
    id: row.id,
    name: row.name,
    defaultRole: row.default_role as Role,
    createdAt: row.created_at,
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export async function listScimTokens(db: Kysely<Schema>): Promise<ScimTokenSummary[]> {
  const rows = await db.selectFrom('scim_token').selectAll().orderBy('created_at', 'desc').orderBy('id').execute();
  return rows.map(summarise);
}

/** A new token; `secret` is the only copy and is never stored or logged. */
export async function createScimToken(rt: Runtime, actor: Actor, input: z.infer<typeof newScimTokenSchema>, meta: Meta): Promise<{ token: ScimTokenSummary; secret: string }> {
  const secret = `${SCIM_TOKEN_PREFIX}${newSecretToken()}`;
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    const clash = await ctx.db.selectFrom('scim_token').select('id').where('name', '=', input.name).where('revoked_at', 'is', null).executeTakeFirst();
    if (clash) throw conflict(`A SCIM token called "${input.name}" is already in use; revoke it first or choose another name.`, 'scim_token_exists');
    await ctx.db
      .insertInto('scim_token')
      .values({ id, name: input.name, token_hash: hashToken(secret), default_role: input.role, created_at: ctx.clock.now().toISOString(), created_by: actor.name, last_used_at: null, revoked_at: null })
      .execute();
    await ctx.audit.record({ action: 'scim.token_created', target: `scim_token:${id}`, severity: 'notice', details: { name: input.name, defaultRole: input.role } });
  }, meta);
  const row = await rt.db.kysely.selectFrom('scim_token').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return { token: summarise(row), secret };
}

/** Stops a token working at once; revoking twice changes nothing. */
export async function revokeScimToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<ScimTokenSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('scim_token').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such SCIM token.');
    if (row.revoked_at) return;
    await ctx.db.updateTable('scim_token').set({ revoked_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'scim.token_revoked', target: `scim_token:${id}`, severity: 'notice', details: { name: row.name } });
  }, meta);
  const row = await rt.db.kysely.selectFrom('scim_token').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return summarise(row);
}

/**
 * The client a bearer token belongs to, or undefined. The token is looked up by its SHA-256, so
 * no comparison runs over the secret itself. `last_used_at` is written at most once a minute.
 */
export async function authenticateScimToken(db: Kysely<Schema>, clock: Clock, token: string): Promise<ScimClient | undefined> {
  if (token.length < 20 || token.length > 200) return undefined;
  const row = await db.selectFrom('scim_token').selectAll().where('token_hash', '=', hashToken(token)).where('revoked_at', 'is', null).executeTakeFirst();
  if (!row || !isRole(row.default_role) || row.default_role === 'administrator') return undefined;
  const now = clock.now();
  if (!row.last_used_at || now.getTime() - Date.parse(row.last_used_at) >= 60_000) {
    await db.updateTable('scim_token').set({ last_used_at: now.toISOString() }).where('id', '=', row.id).execute();
  }
  return { tokenId: row.id, name: row.name, defaultRole: row.default_role };
}
