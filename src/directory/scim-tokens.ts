import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import { apiTokenNameSchema, apiTokens, summariseApiToken, type ApiTokenSummary } from '../core/api-tokens.js';
import { isPrivilegedRole, isRole, roleLabels, roles, type Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import type { Schema, ScimTokenTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';

/**
 * Bearer tokens for SCIM clients (Entra ID, Google; core/api-tokens.ts). Each names the system that
 * uses it and carries its reach (issue 10, finding 8):
 * - a grant: the roles it may give and change (never administrator); privileged roles
 *   (core/authz `privilegedRoles`) only with `allowPrivileged`, and making such a token is a
 *   high-severity audit event;
 * - the role given to people it creates without a `userType` (one of the granted roles);
 * - a provisioning source (by default its name): tokens with the same source share the accounts
 *   and groups they made, so a token can be replaced without losing them;
 * - `adoptExisting`: whether it may see and change accounts of its roles that it did not make
 *   (made by hand, imported, or by another source), taking them over on its first change.
 * Only the token's SHA-256 is stored; the token itself is shown once, to whoever made it.
 */

/** Recognisable in a leaked file or a secret scanner; the rest is 256 random bits. */
export const SCIM_TOKEN_PREFIX = 'gscim_';

export const provisionableRoles = roles.filter((r) => r !== 'administrator') as [Role, ...Role[]];
const roleSchema = z.enum(provisionableRoles, { error: `must be a role other than administrator: ${provisionableRoles.join(', ')}` });

const labels = (list: readonly Role[]) => list.map((r) => roleLabels[r]).join(', ');

export const newScimTokenSchema = z
  .strictObject({
    name: apiTokenNameSchema,
    /** The grant: the roles it may give and change. */
    roles: z.array(roleSchema).min(1, 'needs at least one role').max(provisionableRoles.length).optional(),
    /** The role for people created without a userType naming one; alone (no `roles`), it is the whole grant. */
    role: roleSchema.optional(),
    allowPrivileged: z.boolean({ error: 'must be true or false' }).optional(),
    adoptExisting: z.boolean({ error: 'must be true or false' }).optional(),
    /** Tokens with the same provisioning source share what they made (default: the token's name). */
    source: apiTokenNameSchema.optional(),
  })
  .superRefine((input, ctx) => {
    if (!input.roles && !input.role) {
      ctx.addIssue({ code: 'custom', path: ['roles'], message: 'choose the roles this token may give (e.g. pupil, staff)' });
      return;
    }
    const grant = [...new Set(input.roles ?? [input.role!])];
    if (input.role && !grant.includes(input.role)) ctx.addIssue({ code: 'custom', path: ['role'], message: `the role for new people (${input.role}) must be one of the roles granted (${grant.join(', ')})` });
    const privileged = grant.filter(isPrivilegedRole);
    if (privileged.length > 0 && input.allowPrivileged !== true) {
      ctx.addIssue({
        code: 'custom',
        path: ['roles'],
        message: `${labels(privileged)} ${privileged.length === 1 ? 'is a privileged role' : 'are privileged roles'}: a token gives ${privileged.length === 1 ? 'it' : 'them'} only with an explicit grant (allowPrivileged; on the command line --allow-privileged)`,
      });
    }
    if (input.allowPrivileged === true && privileged.length === 0) ctx.addIssue({ code: 'custom', path: ['allowPrivileged'], message: 'grants nothing: none of the roles is privileged' });
  });
export type NewScimToken = z.infer<typeof newScimTokenSchema>;

/** What a token may reach, as stored. */
export interface ScimGrant {
  roles: Role[];
  defaultRole: Role;
  allowPrivileged: boolean;
  adoptExisting: boolean;
  source: string;
}

/** The grant a (validated) request asks for. */
export function grantOf(input: NewScimToken): ScimGrant {
  const grant = [...new Set(input.roles ?? [input.role!])];
  return { roles: grant, defaultRole: input.role ?? grant[0]!, allowPrivileged: input.allowPrivileged === true, adoptExisting: input.adoptExisting === true, source: input.source ?? input.name };
}

export interface ScimTokenSummary extends ApiTokenSummary, ScimGrant {}

/** Who is calling the SCIM endpoints: the token's row and grant, as the auth hook found them. */
export interface ScimClient extends ScimGrant {
  tokenId: string;
  name: string;
}

/**
 * The roles a client may give, see and change now: its grant, less administrator (never) and,
 * without `allowPrivileged`, less every privileged role (a token migrated from a single privileged
 * role keeps that role in its grant but cannot use it until replaced; see docs/scim.md).
 */
export function grantedRoles(client: Pick<ScimGrant, 'roles' | 'allowPrivileged'>): Role[] {
  return client.roles.filter((r) => r !== 'administrator' && (client.allowPrivileged || !isPrivilegedRole(r)));
}

/** The SCIM client as the audit trail's actor: "scim:<token name>", no account, no role. */
export const scimActor = (client: Pick<ScimClient, 'name'>): Actor => ({ id: null, name: `scim:${client.name}`, role: null });

type Meta = { ip: string | null; requestId: string | null };

const store = apiTokens({
  table: 'scim_token',
  prefix: SCIM_TOKEN_PREFIX,
  noun: 'SCIM token',
  nameTakenCode: 'scim_token_exists',
  audit: { created: 'scim.token_created', revoked: 'scim.token_revoked' },
});

/** The stored grant; a row that does not read as one grants nothing. */
function storedGrant(row: Selectable<ScimTokenTable>): ScimGrant {
  let list: unknown;
  try {
    list = JSON.parse(row.roles);
  } catch {
    list = [];
  }
  const granted = Array.isArray(list) ? list.filter((r): r is Role => typeof r === 'string' && isRole(r) && r !== 'administrator') : [];
  return {
    roles: granted,
    defaultRole: row.default_role as Role,
    allowPrivileged: row.allow_privileged === 1,
    adoptExisting: row.adopt_existing === 1,
    source: row.provisioning_source || row.name,
  };
}

const summarise = (row: Selectable<ScimTokenTable>): ScimTokenSummary => ({ ...summariseApiToken(row), ...storedGrant(row) });

export async function listScimTokens(db: Kysely<Schema>): Promise<ScimTokenSummary[]> {
  return (await store.list(db)).map(summarise);
}

/**
 * A new token; `secret` is the only copy and is never stored or logged. A token that may give
 * privileged roles is recorded as a high-severity event, one that may adopt accounts as a warning.
 */
export async function createScimToken(rt: Runtime, actor: Actor, input: NewScimToken, meta: Meta): Promise<{ token: ScimTokenSummary; secret: string }> {
  const grant = grantOf(input);
  const { row, secret } = await store.create(
    rt,
    actor,
    {
      name: input.name,
      columns: { default_role: grant.defaultRole, roles: JSON.stringify(grant.roles), allow_privileged: grant.allowPrivileged ? 1 : 0, adopt_existing: grant.adoptExisting ? 1 : 0, provisioning_source: grant.source },
      details: { defaultRole: grant.defaultRole, roles: grant.roles, allowPrivileged: grant.allowPrivileged, adoptExisting: grant.adoptExisting, source: grant.source, ...(grant.allowPrivileged ? { privilegedRoles: grant.roles.filter(isPrivilegedRole) } : {}) },
      severity: grant.allowPrivileged ? 'high' : grant.adoptExisting ? 'warning' : 'notice',
    },
    meta,
  );
  return { token: summarise(row), secret };
}

/** Stops a token working at once; revoking twice changes nothing. */
export async function revokeScimToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<ScimTokenSummary> {
  return summarise(await store.revoke(rt, actor, id, meta));
}

/** The client a bearer token belongs to, or undefined. */
export async function authenticateScimToken(db: Kysely<Schema>, clock: Clock, token: string): Promise<ScimClient | undefined> {
  const row = await store.authenticate(db, clock, token);
  if (!row || !isRole(row.default_role) || row.default_role === 'administrator') return undefined;
  return { tokenId: row.id, name: row.name, ...storedGrant(row) };
}
