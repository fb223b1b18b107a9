import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import { apiTokenNameSchema, apiTokens, summariseApiToken, type ApiTokenSummary } from '../core/api-tokens.js';
import { isRole, roles, type Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import type { Schema, ScimTokenTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';

/**
 * Bearer tokens for SCIM clients (Entra ID, Google; core/api-tokens.ts): each names the system that
 * uses it and the role given to people it creates without a recognised `userType`. Only the token's
 * SHA-256 is stored; the token itself is shown once, to whoever made it. Never the administrator
 * role: those accounts are made by hand (AC-07), and SCIM cannot see them.
 */

/** Recognisable in a leaked file or a secret scanner; the rest is 256 random bits. */
export const SCIM_TOKEN_PREFIX = 'gscim_';

const provisionableRoles = roles.filter((r) => r !== 'administrator') as [Role, ...Role[]];

export const newScimTokenSchema = z.object({
  name: apiTokenNameSchema,
  role: z.enum(provisionableRoles, { error: `must be a role other than administrator: ${provisionableRoles.join(', ')}` }),
});

export interface ScimTokenSummary extends ApiTokenSummary {
  defaultRole: Role;
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

const store = apiTokens({
  table: 'scim_token',
  prefix: SCIM_TOKEN_PREFIX,
  noun: 'SCIM token',
  nameTakenCode: 'scim_token_exists',
  audit: { created: 'scim.token_created', revoked: 'scim.token_revoked' },
});

const summarise = (row: Selectable<ScimTokenTable>): ScimTokenSummary => ({ ...summariseApiToken(row), defaultRole: row.default_role as Role });

export async function listScimTokens(db: Kysely<Schema>): Promise<ScimTokenSummary[]> {
  return (await store.list(db)).map(summarise);
}

/** A new token; `secret` is the only copy and is never stored or logged. */
export async function createScimToken(rt: Runtime, actor: Actor, input: z.infer<typeof newScimTokenSchema>, meta: Meta): Promise<{ token: ScimTokenSummary; secret: string }> {
  const { row, secret } = await store.create(rt, actor, { name: input.name, columns: { default_role: input.role }, details: { defaultRole: input.role } }, meta);
  return { token: summarise(row), secret };
}

/** Stops a token working at once; revoking twice changes nothing. */
export async function revokeScimToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<ScimTokenSummary> {
  return summarise(await store.revoke(rt, actor, id, meta));
}

/** The client a bearer token belongs to, or undefined (a token whose role is not one SCIM may give, too). */
export async function authenticateScimToken(db: Kysely<Schema>, clock: Clock, token: string): Promise<ScimClient | undefined> {
  const row = await store.authenticate(db, clock, token);
  if (!row || !isRole(row.default_role) || row.default_role === 'administrator') return undefined;
  return { tokenId: row.id, name: row.name, defaultRole: row.default_role };
}
