import type { ExpressionBuilder, Kysely, Selectable, Updateable } from 'kysely';
import { endAccountAccess } from '../identity/sessions.js';
import { z } from 'zod';
import { isPrivilegedRole, isRole, roleLabels, roles, type Role } from '../core/authz.js';
import type { Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import type { AccountTable, DirectoryGroupTable, Schema } from '../db/schema.js';
import { createAccount, GUEST_POOL_SOURCE, usernameSchema } from '../identity/service.js';
import type { Runtime } from '../runtime.js';
import { createGroup, deleteGroup, removeMembership, setMembership, updateGroup } from './groups.js';
import { startLeaver } from './leavers.js';
import { grantedRoles, scimActor, type ScimClient, type ScimGrant } from './scim-tokens.js';

/**
 * SCIM 2.0 (RFC 7643 schemas, RFC 7644 protocol) for Users and Groups, so Microsoft Entra ID or
 * Google can keep the directory current (AC-12). Shaped by what Entra's provisioning service
 * actually sends: `filter=attr eq "value"` (joined by `and`), PATCH with capitalised op names,
 * booleans as strings ("False"), Replace without a path and an object value, paths such as
 * `emails[type eq "work"].value`, and group membership as Add/Remove of `members`.
 *
 * People map onto `account` (source `scim`), groups onto `directory_group` (source `scim`, kind
 * `other`). SCIM never sees administrator accounts, the break-glass account, guest-pool accounts
 * or people who have left: to it they do not exist (404). A change to a guest-pool account is
 * refused with its reason (403): those accounts are Gatehouse's own, and their visits end at the
 * guest desk (AC-05). Every change is audited with the token's name as the actor (`scim:<name>`).
 *
 * Each token reaches only what it was granted (issue 10, finding 8; scim-tokens.ts): the roles of
 * its grant, the accounts and groups its provisioning source made (or, with adoptExisting, any
 * account of those roles), never a person's linked administrator account. See `reach`.
 */

export const SCIM = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  enterprise: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  list: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

export type ScimType = 'invalidFilter' | 'invalidValue' | 'invalidSyntax' | 'invalidPath' | 'uniqueness' | 'mutability' | 'noTarget' | 'tooMany';

/** A GatehouseError that the SCIM error handler turns into the SCIM error schema with `scimType`. */
export function scimError(status: number, scimType: ScimType | undefined, detail: string): GatehouseError {
  return new GatehouseError(`scim_${scimType ?? 'error'}`, status, detail, scimType ? { scimType } : undefined);
}

const invalidValue = (detail: string) => scimError(400, 'invalidValue', detail);
const invalidFilter = (detail: string) => scimError(400, 'invalidFilter', detail);
const notFoundScim = (what: 'User' | 'Group', id: string) => scimError(404, undefined, `There is no ${what} with the id "${id}".`);

export const MAX_RESULTS = 200;
export const DEFAULT_COUNT = 100;

type Account = Selectable<AccountTable>;
type Group = Selectable<DirectoryGroupTable>;
type Meta = { ip: string | null; requestId: string | null };

// --- Filters -----------------------------------------------------------------------------------

type FilterValue = string | boolean | null;

/** One `attr eq "value"` (or `attr[sub eq "v"].leaf eq "value"`, or `attr[sub eq "v"]`) condition. */
export interface Condition {
  /** lower-case attribute path without schema URN, e.g. `username`, `emails.value`, `members.value` */
  path: string;
  /** a value filter in brackets: `emails[type eq "work"]` */
  where?: { attr: string; value: FilterValue };
  /** undefined for the bracket-only form `members[value eq "…"]` */
  value?: FilterValue;
}

const TOKEN = /\s*(?:(\[)|(\])|(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()[\]"]+))/y;

type Token = { kind: '[' | ']' | '(' | ')' | 'string' | 'word'; text: string };

function tokenise(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(text);
    if (!m) throw invalidFilter(`The filter "${text}" could not be read near "${text.slice(TOKEN.lastIndex, TOKEN.lastIndex + 20)}".`);
    if (m[1]) tokens.push({ kind: '[', text: '[' });
    else if (m[2]) tokens.push({ kind: ']', text: ']' });
    else if (m[3]) tokens.push({ kind: '(', text: '(' });
    else if (m[4]) tokens.push({ kind: ')', text: ')' });
    else if (m[5]) tokens.push({ kind: 'string', text: m[5] });
    else tokens.push({ kind: 'word', text: m[6]! });
  }
  return tokens;
}

/**
 * Strips the core schema URN from an attribute path (keeping the case of any filter value in it);
 * the enterprise extension becomes `enterprise:`. Other extensions keep their `urn:` prefix.
 */
function stripSchema(path: string): string {
  const text = path.trim();
  const lower = text.toLowerCase();
  for (const urn of [SCIM.user, SCIM.group]) if (lower.startsWith(`${urn.toLowerCase()}:`)) return text.slice(urn.length + 1);
  if (lower.startsWith(`${SCIM.enterprise.toLowerCase()}:`)) return `enterprise:${text.slice(SCIM.enterprise.length + 1)}`;
  return text;
}

/** An attribute name, lower case, without its core schema URN. */
export function attributeName(name: string): string {
  return stripSchema(name).toLowerCase();
}

/** An attribute of an extension Gatehouse does not keep (e.g. a custom Entra extension). */
const isOtherExtension = (path: string) => /^urn:/i.test(stripSchema(path));

/** Text Gatehouse never stores or looks up: C0 controls (NUL above all: PostgreSQL refuses it) and DEL. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

const OPERATORS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr']);

/**
 * Parses the part of RFC 7644 §3.4.2.2 that provisioning clients use: `eq` comparisons, joined by
 * `and`. Anything else is refused with scimType `invalidFilter`, never ignored.
 */
export function parseFilter(text: string): Condition[] {
  if (text.length > 1000) throw invalidFilter('The filter is too long.');
  const tokens = tokenise(text);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const literal = (t: Token | undefined): FilterValue => {
    if (!t) throw invalidFilter(`The filter "${text}" ends where a value was expected.`);
    if (t.kind === 'string') {
      let value: string;
      try {
        value = JSON.parse(t.text) as string;
      } catch {
        throw invalidFilter(`The value ${t.text} in the filter is not a valid string.`);
      }
      // No attribute Gatehouse keeps holds a NUL, and PostgreSQL refuses one in a query (found by fuzzing).
      if (value.includes('\u0000')) throw invalidFilter('A value in the filter contains a NUL character, which no attribute Gatehouse keeps can hold.');
      return value;
    }
    if (t.kind === 'word') {
      const w = t.text.toLowerCase();
      if (w === 'true') return true;
      if (w === 'false') return false;
      if (w === 'null') return null;
      if (/^-?\d+(\.\d+)?$/.test(w)) return w;
    }
    throw invalidFilter(`Expected a quoted value in the filter "${text}", found "${t.text}".`);
  };
  const operator = (t: Token | undefined): void => {
    if (!t || t.kind !== 'word') throw invalidFilter(`Expected "eq" in the filter "${text}".`);
    const op = t.text.toLowerCase();
    if (op === 'eq') return;
    if (OPERATORS.has(op)) throw invalidFilter(`The operator "${t.text}" is not supported; Gatehouse filters with "eq" only.`);
    throw invalidFilter(`"${t.text}" is not a filter operator; Gatehouse filters with "eq" only, e.g. userName eq "jbloggs".`);
  };
  const conditions: Condition[] = [];
  for (;;) {
    const attr = next();
    if (!attr || attr.kind !== 'word' || OPERATORS.has(attr.text.toLowerCase()) || ['and', 'or', 'not'].includes(attr.text.toLowerCase())) {
      if (attr?.kind === '(' || attr?.text.toLowerCase() === 'not') throw invalidFilter('Grouping with parentheses and "not" are not supported; use attr eq "value" joined by "and".');
      throw invalidFilter(`Expected an attribute name in the filter "${text}".`);
    }
    const condition: Condition = { path: attributeName(attr.text) };
    let leafed = false;
    if (peek()?.kind === '[') {
      next();
      const sub = next();
      if (!sub || sub.kind !== 'word') throw invalidFilter(`Expected an attribute name inside [ ] in the filter "${text}".`);
      operator(next());
      condition.where = { attr: sub.text.toLowerCase(), value: literal(next()) };
      if (next()?.kind !== ']') throw invalidFilter(`Expected "]" in the filter "${text}".`);
      const leaf = peek();
      if (leaf?.kind === 'word' && leaf.text.startsWith('.')) {
        next();
        condition.path = `${condition.path}.${leaf.text.slice(1).toLowerCase()}`;
        leafed = true;
      }
    }
    const after = peek();
    if (condition.where && !leafed && (!after || (after.kind === 'word' && after.text.toLowerCase() === 'and'))) {
      // `members[value eq "…"]`: the bracket holds the comparison itself.
      condition.path = `${condition.path}.${condition.where.attr}`;
      condition.value = condition.where.value;
      delete condition.where;
    } else {
      operator(next());
      condition.value = literal(next());
    }
    conditions.push(condition);
    const joiner = next();
    if (!joiner) return conditions;
    const j = joiner.text.toLowerCase();
    if (j === 'or') throw invalidFilter('"or" is not supported in filters; use attr eq "value", joined by "and" if need be.');
    if (joiner.kind !== 'word' || j !== 'and') throw invalidFilter(`Unexpected "${joiner.text}" in the filter "${text}".`);
  }
}

const asText = (value: FilterValue, attr: string): string => {
  if (typeof value !== 'string') throw invalidFilter(`${attr} is compared with a quoted string.`);
  return value;
};

// --- Who SCIM can see ---------------------------------------------------------------------------

/** Accounts SCIM may ever read and change: never administrators, the break-glass account, the guest pool or leavers. */
function visible(eb: ExpressionBuilder<Schema, 'account'>) {
  return eb.and([eb('account.role', '!=', 'administrator'), eb('account.is_break_glass', '=', 0), eb('account.status', '!=', 'left'), eb('account.source', '!=', GUEST_POOL_SOURCE)]);
}

/**
 * A token's reach (finding 8): the accounts SCIM may see, whose role is one the token is granted,
 * and that its provisioning source made or adopted, or any such account when it may adopt them.
 * Everything else is, to this token, not there: not listed, not found, not a member it can see.
 */
export function reach(client: ScimGrant) {
  const granted = grantedRoles(client);
  return (eb: ExpressionBuilder<Schema, 'account'>) =>
    eb.and([
      visible(eb),
      granted.length > 0 ? eb('account.role', 'in', granted) : eb.lit(false),
      ...(client.adoptExisting ? [] : [eb('account.provisioning_source', '=', client.source)]),
    ]);
}

/** Why a token was refused, recorded as `scim.refused` (warning) by `withRefusalsAudited`. */
type RefusalReason = 'not_provisioned_by_token' | 'role_not_granted' | 'privileged_not_granted' | 'administrator' | 'break_glass' | 'guest_desk' | 'linked_administrator';

interface Refusal {
  reason: RefusalReason;
  target: string;
  details: Record<string, unknown>;
}

/** A refusal: the SCIM client is told `detail` (403, or 404 where the account must stay unseen); the trail records why. */
function refused(status: 403 | 404, detail: string, refusal: Refusal): GatehouseError {
  return new GatehouseError('scim_refused', status, detail, { refusal });
}

type Operation = 'create' | 'replace' | 'patch' | 'delete' | 'group_create' | 'group_replace' | 'group_patch';

/**
 * Runs a change; when it is refused, the refusal is recorded in its own transaction (the change's
 * was rolled back) with the token as the actor, then the error goes on to the client.
 */
async function withRefusalsAudited<T>(rt: Runtime, client: ScimClient, meta: Meta, operation: Operation, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const refusal = error instanceof GatehouseError ? (error.details?.refusal as Refusal | undefined) : undefined;
    if (refusal) {
      await rt.trail.transaction(scimActor(client), (ctx) =>
        ctx.audit.record({
          action: 'scim.refused',
          target: refusal.target,
          severity: 'warning',
          details: { reason: refusal.reason, operation, grant: { roles: client.roles, allowPrivileged: client.allowPrivileged, adoptExisting: client.adoptExisting, source: client.source }, ...refusal.details },
        }), meta);
    }
    throw error;
  }
}

const grantText = (client: ScimGrant) => {
  const granted = grantedRoles(client);
  return granted.length ? granted.map((r) => roleLabels[r]).join(', ') : 'no role';
};

const HOW_TO_WIDEN = 'An administrator can make a token with a wider grant (gatehouse scim token create --roles …; privileged roles need --allow-privileged, accounts made elsewhere --adopt-existing) and revoke this one.';

/** Why a token may not change this (SCIM-visible) account, or undefined when it may. */
function outOfReach(client: ScimGrant, account: Account): Refusal & { detail: string } | undefined {
  const target = `account:${account.id}`;
  const details = { accountId: account.id, username: account.username, role: account.role, source: account.source, provisioningSource: account.provisioning_source };
  if (!client.adoptExisting && account.provisioning_source !== client.source) {
    const madeBy = account.source === 'scim' ? 'another provisioning source' : account.source === 'manual' ? 'hand, in Gatehouse' : `an import (${account.source})`;
    return {
      reason: 'not_provisioned_by_token',
      target,
      details,
      detail: `This token may not change the user "${account.id}": it was made by ${madeBy}, not through this token's provisioning source ("${client.source}"), and the token may not adopt existing accounts. ${HOW_TO_WIDEN}`,
    };
  }
  const role = account.role as Role;
  if (!grantedRoles(client).includes(role)) {
    const privileged = client.roles.includes(role) && isPrivilegedRole(role);
    return {
      reason: privileged ? 'privileged_not_granted' : 'role_not_granted',
      target,
      details,
      detail: `This token may not change the user "${account.id}": their role (${roleLabels[role] ?? role}) is ${privileged ? 'privileged and the token has no privileged grant' : 'outside the token\'s grant'} (it may give ${grantText(client)}). ${HOW_TO_WIDEN}`,
    };
  }
  return undefined;
}

/** Why a guest-desk account is not the identity provider's to change (the provisioning log shows this). */
const guestDeskAccount = (account: Account) =>
  refused(
    403,
    `"${account.username}" is one of Gatehouse's guest-desk accounts. Guest accounts are Gatehouse's own, not the identity provider's: they are allocated to visitors and their visits ended at the guest desk, so provisioning cannot change or delete them.`,
    { reason: 'guest_desk', target: `account:${account.id}`, details: { accountId: account.id, username: account.username } },
  );

/** An account this token may read: anything else is a 404. */
async function loadAccountToRead(db: Kysely<Schema>, client: ScimGrant, id: string): Promise<Account> {
  const account = await db.selectFrom('account').selectAll().where('id', '=', id).where(reach(client)).executeTakeFirst();
  if (!account) throw notFoundScim('User', id);
  return account;
}

/**
 * An account this token may change. An account SCIM never sees (administrator, break-glass) is a
 * 404, the attempt recorded; a leaver is a plain 404; a guest-desk account, or an account outside
 * the token's reach, is refused (403) with the reason, and recorded.
 */
async function loadAccountToChange(db: Kysely<Schema>, client: ScimGrant, id: string): Promise<Account> {
  const account = await db.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirst();
  if (!account || account.status === 'left') throw notFoundScim('User', id);
  if (account.role === 'administrator' || account.is_break_glass) {
    throw refused(404, `There is no User with the id "${id}".`, {
      reason: account.is_break_glass ? 'break_glass' : 'administrator',
      target: `account:${id}`,
      details: { accountId: id, username: account.username, role: account.role },
    });
  }
  if (account.source === GUEST_POOL_SOURCE) throw guestDeskAccount(account);
  const out = outOfReach(client, account);
  if (out) throw refused(403, out.detail, out);
  return account;
}

/** A userName no other account has; a guest-desk account's name, or one out of the token's reach, is refused with the reason. */
async function assertUserNameFree(ctx: Ctx, client: ScimGrant, username: string, exceptId: string | null): Promise<void> {
  let q = ctx.db.selectFrom('account').selectAll().where('username', '=', username);
  if (exceptId) q = q.where('id', '!=', exceptId);
  const taken = await q.executeTakeFirst();
  if (!taken) return;
  if (taken.source === GUEST_POOL_SOURCE) {
    throw scimError(409, 'uniqueness', `The userName "${username}" belongs to one of Gatehouse's guest-desk accounts, which are Gatehouse's own and not provisioned: give this person another userName.`);
  }
  const seen = await ctx.db.selectFrom('account').select('id').where('id', '=', taken.id).where(reach(client)).executeTakeFirst();
  if (!seen) {
    throw scimError(409, 'uniqueness', `The userName "${username}" is already taken by an account this token may not manage (an administrator account, a leaver, or one made by hand, by an import or by another provisioning source, or of a role outside the token's grant). ${HOW_TO_WIDEN}`);
  }
  throw scimError(409, 'uniqueness', `The userName "${username}" is already taken.`);
}

/** SCIM groups belong to the provisioning source that made them: other groups are not there. */
async function loadScimGroup(db: Kysely<Schema>, client: ScimGrant, id: string): Promise<Group> {
  const group = await db.selectFrom('directory_group').selectAll().where('id', '=', id).where('source', '=', 'scim').where('provisioning_source', '=', client.source).executeTakeFirst();
  if (!group) throw notFoundScim('Group', id);
  return group;
}

// --- Resources ---------------------------------------------------------------------------------

export type Resource = Record<string, unknown>;

interface GroupRef {
  value: string;
  display: string;
  $ref: string;
}

export function userResource(a: Account, groups: GroupRef[], base: string): Resource {
  const name: Record<string, string> = { formatted: a.display_name };
  if (a.given_name) name.givenName = a.given_name;
  if (a.family_name) name.familyName = a.family_name;
  return {
    schemas: [SCIM.user],
    id: a.id,
    ...(a.external_id ? { externalId: a.external_id } : {}),
    userName: a.username,
    name,
    displayName: a.display_name,
    emails: a.email ? [{ value: a.email, type: 'work', primary: true }] : [],
    active: a.status === 'active',
    userType: roleLabels[a.role as Role] ?? a.role,
    groups,
    meta: { resourceType: 'User', created: a.created_at, lastModified: a.updated_at, location: `${base}/Users/${a.id}` },
  };
}

function groupResource(g: Group, members: Array<{ id: string; display_name: string }> | undefined, base: string): Resource {
  return {
    schemas: [SCIM.group],
    id: g.id,
    ...(g.external_id ? { externalId: g.external_id } : {}),
    displayName: g.name,
    ...(members ? { members: members.map((m) => ({ value: m.id, display: m.display_name, type: 'User', $ref: `${base}/Users/${m.id}` })) } : {}),
    meta: { resourceType: 'Group', created: g.created_at, lastModified: g.updated_at, location: `${base}/Groups/${g.id}` },
  };
}

const ALWAYS_RETURNED = new Set(['id', 'schemas']);

/** `attributes` keeps only the named top-level attributes (and id); `excludedAttributes` drops them. */
export function project(resource: Resource, attributes: string | undefined, excluded: string | undefined): Resource {
  const names = (list: string | undefined) => (list ? list.split(',').map((a) => attributeName(a).split(/[.[]/)[0]!).filter(Boolean) : []);
  const keep = new Set(names(attributes));
  const drop = new Set(names(excluded));
  if (keep.size === 0 && drop.size === 0) return resource;
  return Object.fromEntries(
    Object.entries(resource).filter(([key]) => {
      const k = key.toLowerCase();
      if (ALWAYS_RETURNED.has(k)) return true;
      if (keep.size > 0) return keep.has(k);
      return !drop.has(k);
    }),
  );
}

export const listQuerySchema = z.object({
  // Longer than the parser takes, so a long filter is refused by the parser (invalidFilter) with its reason.
  filter: z.string().max(4000).optional(),
  startIndex: z.coerce.number().int('must be a whole number').optional(),
  count: z.coerce.number().int('must be a whole number').optional(),
  attributes: z.string().max(1000).optional(),
  excludedAttributes: z.string().max(1000).optional(),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

function page(query: ListQuery): { startIndex: number; count: number } {
  return { startIndex: Math.max(1, query.startIndex ?? 1), count: Math.min(MAX_RESULTS, Math.max(0, query.count ?? DEFAULT_COUNT)) };
}

export function listResponse(resources: Resource[], total: number, startIndex: number): Resource {
  return { schemas: [SCIM.list], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** The SCIM groups of many accounts, in one query. */
async function scimGroupsOf(db: Kysely<Schema>, client: ScimGrant, accountIds: string[], base: string): Promise<Map<string, GroupRef[]>> {
  const out = new Map<string, GroupRef[]>();
  if (accountIds.length === 0) return out;
  const rows = await db
    .selectFrom('group_member as m')
    .innerJoin('directory_group as g', 'g.id', 'm.group_id')
    .select(['m.account_id', 'g.id', 'g.name'])
    .where('m.account_id', 'in', accountIds)
    .where('g.source', '=', 'scim')
    .where('g.provisioning_source', '=', client.source)
    .orderBy('g.name')
    .execute();
  for (const r of rows) {
    const list = out.get(r.account_id) ?? [];
    list.push({ value: r.id, display: r.name, $ref: `${base}/Groups/${r.id}` });
    out.set(r.account_id, list);
  }
  return out;
}

async function membersOfGroups(db: Kysely<Schema>, client: ScimGrant, groupIds: string[]): Promise<Map<string, Array<{ id: string; display_name: string }>>> {
  const out = new Map<string, Array<{ id: string; display_name: string }>>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return out;
  const rows = await db
    .selectFrom('group_member as m')
    .innerJoin('account', 'account.id', 'm.account_id')
    .select(['m.group_id', 'account.id', 'account.display_name'])
    .where('m.group_id', 'in', groupIds)
    .where(reach(client))
    .orderBy('account.created_at')
    .orderBy('account.id')
    .execute();
  for (const r of rows) out.get(r.group_id)!.push({ id: r.id, display_name: r.display_name });
  return out;
}

export async function listUsers(db: Kysely<Schema>, client: ScimGrant, query: ListQuery, base: string): Promise<Resource> {
  let q = db.selectFrom('account').where(reach(client));
  for (const c of query.filter ? parseFilter(query.filter) : []) {
    const value = c.value ?? null;
    switch (c.path) {
      case 'username':
        q = q.where('account.username', '=', asText(value, 'userName').trim().toLowerCase());
        break;
      case 'externalid':
        q = q.where('account.external_id', '=', asText(value, 'externalId'));
        break;
      case 'id':
        q = q.where('account.id', '=', asText(value, 'id'));
        break;
      case 'displayname':
        q = q.where((eb) => eb(eb.fn('lower', ['account.display_name']), '=', asText(value, 'displayName').toLowerCase()));
        break;
      case 'name.givenname':
        q = q.where((eb) => eb(eb.fn('lower', ['account.given_name']), '=', asText(value, 'name.givenName').toLowerCase()));
        break;
      case 'name.familyname':
        q = q.where((eb) => eb(eb.fn('lower', ['account.family_name']), '=', asText(value, 'name.familyName').toLowerCase()));
        break;
      case 'emails':
      case 'emails.value': {
        // Gatehouse holds one address, the work one.
        if (c.where && !(c.where.attr === 'type' && typeof c.where.value === 'string' && c.where.value.toLowerCase() === 'work') && !(c.where.attr === 'primary' && (c.where.value === true || String(c.where.value).toLowerCase() === 'true'))) {
          if (!['type', 'primary'].includes(c.where.attr)) throw invalidFilter(`emails[${c.where.attr} …] is not supported: use emails[type eq "work"].value.`);
          q = q.where((eb) => eb.lit(false));
          break;
        }
        q = q.where((eb) => eb(eb.fn('lower', ['account.email']), '=', asText(value, 'emails.value').toLowerCase()));
        break;
      }
      case 'active':
        if (typeof value !== 'boolean') throw invalidFilter('active is compared with true or false.');
        q = q.where('account.status', '=', value ? 'active' : 'disabled');
        break;
      default:
        throw invalidFilter(`Users cannot be filtered by "${c.path}"; use userName, externalId, id, displayName, emails.value or active.`);
    }
  }
  const { startIndex, count } = page(query);
  const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = count === 0 ? [] : await q.selectAll('account').orderBy('account.created_at').orderBy('account.id').limit(count).offset(startIndex - 1).execute();
  const wantsGroups = project({ groups: true }, query.attributes, query.excludedAttributes).groups !== undefined;
  const groups = wantsGroups ? await scimGroupsOf(db, client, rows.map((r) => r.id), base) : new Map<string, GroupRef[]>();
  return listResponse(rows.map((a) => project(userResource(a, groups.get(a.id) ?? [], base), query.attributes, query.excludedAttributes)), Number(total.n), startIndex);
}

export async function getUser(db: Kysely<Schema>, client: ScimGrant, id: string, base: string, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'> = {}): Promise<Resource> {
  const account = await loadAccountToRead(db, client, id);
  const groups = await scimGroupsOf(db, client, [id], base);
  return project(userResource(account, groups.get(id) ?? [], base), query.attributes, query.excludedAttributes);
}

export async function listGroups(db: Kysely<Schema>, client: ScimGrant, query: ListQuery, base: string): Promise<Resource> {
  let q = db.selectFrom('directory_group').where('directory_group.source', '=', 'scim').where('directory_group.provisioning_source', '=', client.source);
  for (const c of query.filter ? parseFilter(query.filter) : []) {
    const value = c.value ?? null;
    switch (c.path) {
      case 'displayname':
        q = q.where((eb) => eb(eb.fn('lower', ['directory_group.name']), '=', asText(value, 'displayName').toLowerCase()));
        break;
      case 'externalid':
        q = q.where('directory_group.external_id', '=', asText(value, 'externalId'));
        break;
      case 'id':
        q = q.where('directory_group.id', '=', asText(value, 'id'));
        break;
      case 'members':
      case 'members.value': {
        const member = asText(value, 'members.value');
        q = q.where('directory_group.id', 'in', (eb) => eb.selectFrom('group_member').select('group_id').where('account_id', '=', member));
        break;
      }
      default:
        throw invalidFilter(`Groups cannot be filtered by "${c.path}"; use displayName, externalId, id or members.value.`);
    }
  }
  const { startIndex, count } = page(query);
  const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = count === 0 ? [] : await q.selectAll('directory_group').orderBy('directory_group.created_at').orderBy('directory_group.id').limit(count).offset(startIndex - 1).execute();
  const wantsMembers = project({ members: true }, query.attributes, query.excludedAttributes).members !== undefined;
  const members = wantsMembers ? await membersOfGroups(db, client, rows.map((r) => r.id)) : undefined;
  return listResponse(rows.map((g) => project(groupResource(g, members?.get(g.id), base), query.attributes, query.excludedAttributes)), Number(total.n), startIndex);
}

export async function getGroup(db: Kysely<Schema>, client: ScimGrant, id: string, base: string, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'> = {}): Promise<Resource> {
  const group = await loadScimGroup(db, client, id);
  const wantsMembers = project({ members: true }, query.attributes, query.excludedAttributes).members !== undefined;
  const members = wantsMembers ? await membersOfGroups(db, client, [id]) : undefined;
  return project(groupResource(group, members?.get(id), base), query.attributes, query.excludedAttributes);
}

// --- Values as clients send them ---------------------------------------------------------------

/** Entra sends booleans as "True"/"False" strings. */
function asBoolean(value: unknown, attr: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  throw invalidValue(`${attr} must be true or false, not ${JSON.stringify(value)}.`);
}

/** A single string; a one-element list or an object with `value` is unwrapped. */
function asString(value: unknown, attr: string, max = 200): string | null {
  let v = value;
  if (Array.isArray(v)) {
    if (v.length === 0) return null;
    if (v.length > 1) throw invalidValue(`${attr} takes one value, not a list of ${v.length}.`);
    v = v[0];
  }
  if (v && typeof v === 'object' && 'value' in v) v = (v as { value: unknown }).value;
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') v = String(v);
  if (typeof v !== 'string') throw invalidValue(`${attr} must be text, not ${JSON.stringify(value)}.`);
  if (CONTROL_CHARACTER.test(v)) throw invalidValue(`${attr} contains a control character (such as NUL or a line break), which Gatehouse does not keep.`);
  const s = v.trim();
  if (s.length > max) throw invalidValue(`${attr} must be at most ${max} characters.`);
  return s === '' ? null : s;
}

const emailSchema = z.email();

function checkEmail(value: string | null): string | null {
  if (value === null) return null;
  if (value.length > 254 || !emailSchema.safeParse(value).success) throw invalidValue(`"${value}" is not an e-mail address.`);
  return value;
}

type EmailEntry = { value?: unknown; type?: unknown; primary?: unknown };

/** Gatehouse keeps one address: the primary one, else the work one, else the first. */
function pickEmail(value: unknown): string | null {
  const list: EmailEntry[] = (Array.isArray(value) ? value : [value]).filter((e) => e !== null && e !== undefined).map((e) => (typeof e === 'string' ? { value: e } : (e as EmailEntry)));
  if (list.length === 0) return null;
  const isTrue = (p: unknown) => p === true || (typeof p === 'string' && p.toLowerCase() === 'true');
  const chosen = list.find((e) => isTrue(e.primary)) ?? list.find((e) => typeof e.type === 'string' && e.type.toLowerCase() === 'work') ?? list[0]!;
  return checkEmail(asString(chosen.value, 'emails.value', 254));
}

const roleSynonyms: Record<string, Role | 'administrator'> = {
  student: 'pupil',
  learner: 'pupil',
  teacher: 'staff',
  teaching_staff: 'staff',
  support_staff: 'staff',
  employee: 'staff',
  faculty: 'staff',
  senior_leadership: 'senior_leader',
  slt: 'senior_leader',
  reception: 'office',
  admin: 'administrator',
  it_administrator: 'administrator',
};

/** The Gatehouse role a `userType` names (a role, its label, or a common synonym), if any. */
export function roleFromUserType(value: string): Role | undefined {
  const key = value.trim().toLowerCase().replace(/[\s-]+/g, '_');
  if (isRole(key)) return key;
  const byLabel = roles.find((r) => roleLabels[r].toLowerCase().replace(/[\s-]+/g, '_') === key);
  return byLabel ?? roleSynonyms[key];
}

// --- Users: the editable state and PATCH -------------------------------------------------------

interface UserState {
  userName: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  formatted: string | null;
  email: string | null;
  externalId: string | null;
  active: boolean;
  /** the raw userType (or primary role) sent; undefined when none was sent */
  userType: string | null | undefined;
}

function stateOf(a: Account): UserState {
  return { userName: a.username, displayName: a.display_name, givenName: a.given_name, familyName: a.family_name, formatted: null, email: a.email, externalId: a.external_id, active: a.status !== 'disabled', userType: undefined };
}

const blankState = (active = true): UserState => ({ userName: null, displayName: null, givenName: null, familyName: null, formatted: null, email: null, externalId: null, active, userType: undefined });

type Op = 'add' | 'replace' | 'remove';

/** A PATCH path split into attribute, optional `[sub eq "v"]` filter and sub-attribute. */
interface Path {
  attr: string;
  where?: { attr: string; value: FilterValue };
  sub?: string;
}

export function parsePath(text: string): Path {
  const normal = stripSchema(text);
  const m = /^([a-z0-9_:$-]+?)(?:\[\s*([a-z0-9_$]+)\s+eq\s+("(?:[^"\\]|\\.)*"|true|false)\s*\])?(?:\.([a-z0-9_$]+))?$/i.exec(normal);
  if (!m) throw scimError(400, 'invalidPath', `The path "${text}" is not supported.`);
  const path: Path = { attr: m[1]!.toLowerCase() };
  if (m[2]) {
    let value: FilterValue;
    try {
      value = m[3]!.startsWith('"') ? (JSON.parse(m[3]!) as string) : m[3]!.toLowerCase() === 'true';
    } catch {
      throw scimError(400, 'invalidPath', `The path "${text}" has a value that is not a valid string.`);
    }
    if (typeof value === 'string' && CONTROL_CHARACTER.test(value)) throw scimError(400, 'invalidPath', 'A value in the path contains a control character (such as NUL), which no attribute Gatehouse keeps can hold.');
    path.where = { attr: m[2].toLowerCase(), value };
  }
  if (m[4]) path.sub = m[4].toLowerCase();
  return path;
}

/** Applies one attribute (by path) to a user's state. Attributes Gatehouse does not keep are ignored. */
function applyUserAttribute(state: UserState, op: Op, rawPath: string, value: unknown): void {
  if (isOtherExtension(rawPath)) return;
  const path = parsePath(rawPath);
  const key = path.where ? path.attr : path.sub ? `${path.attr}.${path.sub}` : path.attr;
  const remove = op === 'remove';
  switch (key) {
    case 'username':
      if (remove) throw scimError(400, 'mutability', 'userName is required and cannot be removed.');
      state.userName = asString(value, 'userName', 200);
      return;
    case 'displayname':
      state.displayName = remove ? null : asString(value, 'displayName');
      return;
    case 'name':
      if (remove) {
        state.givenName = state.familyName = state.formatted = null;
        return;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidValue('name must be an object such as {"givenName": "Jane", "familyName": "Bloggs"}.');
      for (const [k, v] of Object.entries(value)) applyUserAttribute(state, op, `name.${k}`, v);
      return;
    case 'name.givenname':
      state.givenName = remove ? null : asString(value, 'name.givenName');
      return;
    case 'name.familyname':
      state.familyName = remove ? null : asString(value, 'name.familyName');
      return;
    case 'name.formatted':
      state.formatted = remove ? null : asString(value, 'name.formatted');
      return;
    case 'emails':
    case 'emails.value': {
      if (path.where && !['type', 'primary', 'value'].includes(path.where.attr)) return;
      if (path.where?.attr === 'type' && String(path.where.value).toLowerCase() !== 'work') return; // only the work address is kept
      if (remove) {
        if (value === undefined || value === null) state.email = null;
        else {
          const gone = (Array.isArray(value) ? value : [value]).map((e) => (typeof e === 'string' ? e : (e as EmailEntry)?.value)).filter((e): e is string => typeof e === 'string');
          if (state.email && gone.some((e) => e.toLowerCase() === state.email!.toLowerCase())) state.email = null;
        }
        return;
      }
      if (path.sub === 'value' || key === 'emails.value') state.email = checkEmail(asString(value, 'emails.value', 254));
      else if (path.where) state.email = checkEmail(asString(value, 'emails', 254));
      else state.email = pickEmail(value);
      return;
    }
    case 'externalid':
      state.externalId = remove ? null : asString(value, 'externalId', 255);
      return;
    case 'active':
      if (!remove) state.active = asBoolean(value, 'active');
      return;
    case 'usertype':
    case 'enterprise:usertype':
      state.userType = remove ? null : asString(value, 'userType', 100);
      return;
    case 'roles':
    case 'roles.value': {
      if (remove) return;
      const list = (Array.isArray(value) ? value : [value]) as Array<{ value?: unknown; primary?: unknown } | string>;
      const entries = list.map((e) => (typeof e === 'string' ? { value: e } : e ?? {}));
      const primary = entries.find((e) => e.primary === true || String(e.primary).toLowerCase() === 'true') ?? entries[0];
      const v = primary ? asString(primary.value, 'roles.value', 100) : null;
      if (v) state.userType = v;
      return;
    }
    default:
      return; // title, phoneNumbers, addresses, preferredLanguage, enterprise:employeeNumber, …: not kept
  }
}

/** A whole resource (POST/PUT body, or PATCH without a path) applied attribute by attribute. */
function applyUserObject(state: UserState, op: Op, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidValue('An operation without a path needs an object value, e.g. {"active": false}.');
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const lower = k.toLowerCase();
    if (['schemas', 'id', 'meta', 'groups', 'password'].includes(lower)) continue;
    if (lower === SCIM.enterprise.toLowerCase() || lower === SCIM.user.toLowerCase()) {
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) applyUserAttribute(state, op, lower === SCIM.user.toLowerCase() ? k2 : `${SCIM.enterprise}:${k2}`, v2);
      continue;
    }
    if (/^urn:/i.test(k) && !lower.startsWith(SCIM.user.toLowerCase()) && !lower.startsWith(SCIM.enterprise.toLowerCase())) continue; // other extensions, whole
    applyUserAttribute(state, op, k, v);
  }
}

export const patchSchema = z.looseObject({
  schemas: z.array(z.string()).optional(),
  Operations: z
    .array(z.looseObject({ op: z.string().max(20), path: z.string().max(500).optional(), value: z.unknown().optional() }))
    .min(1, 'needs at least one operation')
    .max(1000, 'has too many operations'),
});
export type PatchRequest = z.infer<typeof patchSchema>;

function opName(op: string): Op {
  const o = op.toLowerCase();
  if (o === 'add' || o === 'replace' || o === 'remove') return o;
  throw scimError(400, 'invalidSyntax', `"${op}" is not a PATCH operation: use add, replace or remove.`);
}

function applyUserPatch(state: UserState, request: PatchRequest): void {
  for (const operation of request.Operations) {
    const op = opName(operation.op);
    if (operation.path) applyUserAttribute(state, op, operation.path, operation.value);
    else if (op === 'remove') throw scimError(400, 'noTarget', 'A remove operation needs a path.');
    else applyUserObject(state, op, operation.value);
  }
}

/** What the state comes to in Gatehouse's terms, validated. */
interface UserFields {
  username: string;
  displayName: string;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  externalId: string | null;
  status: 'active' | 'disabled';
  /** the role userType (or the primary of roles) names, if it names one; the token's grant decides whether it may be given */
  role: Role | undefined;
  /** the userType as sent, when it names a role (for the trail) */
  userType: string | undefined;
  /** a userType that named no role (recorded, not applied) */
  ignoredUserType: string | undefined;
}

function fieldsOf(state: UserState): UserFields {
  if (!state.userName) throw invalidValue('userName is required.');
  const parsed = usernameSchema.safeParse(state.userName);
  if (!parsed.success) {
    throw invalidValue(
      `userName "${state.userName}" cannot be a Gatehouse username: it ${parsed.error.issues[0]?.message ?? 'is not valid'}. ` +
        'In Entra ID, map userName to mailNickname (or an expression without the @domain part).',
    );
  }
  const joined = [state.givenName, state.familyName].filter(Boolean).join(' ');
  const displayName = (state.displayName ?? state.formatted ?? (joined || null) ?? parsed.data).slice(0, 200);
  const role = state.userType ? roleFromUserType(state.userType) : undefined;
  return {
    username: parsed.data,
    displayName,
    givenName: state.givenName,
    familyName: state.familyName,
    email: state.email,
    externalId: state.externalId,
    status: state.active ? 'active' : 'disabled',
    role,
    userType: role ? (state.userType ?? undefined) : undefined,
    ignoredUserType: state.userType && !role ? state.userType : undefined,
  };
}

/**
 * A token gives and changes only the roles of its grant (finding 8): a role outside it, a
 * privileged role without the privileged grant, and administrator (never: AC-07, those are
 * separate accounts made by hand) are refused, whichever attribute named them (userType, the
 * enterprise extension's userType, roles, roles[primary eq true].value, in a PUT, a PATCH with or
 * without a path, or a POST). `target` is the account, or the userName for a new one.
 */
function assertRoleGranted(client: ScimGrant, role: Role, fields: UserFields, target: { id: string | null; from: string | null }): void {
  if (grantedRoles(client).includes(role)) return;
  const reason: RefusalReason = role === 'administrator' ? 'administrator' : client.roles.includes(role) && isPrivilegedRole(role) ? 'privileged_not_granted' : 'role_not_granted';
  const asked = fields.userType ? `userType "${fields.userType}" names the role ${roleLabels[role]}` : `the token's role for new people is ${roleLabels[role]}`;
  const why =
    reason === 'administrator'
      ? 'SCIM never makes an administrator: administrator rights go on a separate administrator account made by hand in Gatehouse (AC-07).'
      : reason === 'privileged_not_granted'
        ? `${roleLabels[role]} is a privileged role and this token has no privileged grant. ${HOW_TO_WIDEN}`
        : `This token may give ${grantText(client)} only. ${HOW_TO_WIDEN}`;
  throw refused(403, `${target.id ? `The user "${target.id}" cannot be changed` : `"${fields.username}" cannot be created`}: ${asked}. ${why}`, {
    reason,
    target: target.id ? `account:${target.id}` : `username:${fields.username}`,
    details: { ...(target.id ? { accountId: target.id } : {}), username: fields.username, ...(target.from ? { role: target.from } : {}), requestedRole: role, ...(fields.userType ? { userType: fields.userType } : {}) },
  });
}

async function assertExternalIdFree(ctx: Ctx, externalId: string | null, exceptId: string | null): Promise<void> {
  if (!externalId) return;
  let q = ctx.db.selectFrom('account').select('id').where('source', '=', 'scim').where('external_id', '=', externalId);
  if (exceptId) q = q.where('id', '!=', exceptId);
  if (await q.executeTakeFirst()) throw scimError(409, 'uniqueness', `Another user already has the externalId "${externalId}".`);
}

/** As changeAccount does for a disabled account or changed rights: sessions end, and any sign-in in progress. */
async function endAccess(ctx: Ctx, accountId: string, reason: string): Promise<number> {
  return (await endAccountAccess(ctx, accountId, reason)).sessionsEnded;
}

/** An administrator account linked to this person stays as it is (SCIM cannot touch it): say so loudly. */
async function linkedAdministrator(ctx: Ctx, accountId: string): Promise<{ id: string; username: string } | undefined> {
  return ctx.db.selectFrom('account').select(['id', 'username']).where('linked_account_id', '=', accountId).where('role', '=', 'administrator').where('status', '=', 'active').executeTakeFirst();
}

async function applyUserFields(ctx: Ctx, client: ScimClient, account: Account, next: UserFields): Promise<void> {
  if (next.role && next.role !== account.role) assertRoleGranted(client, next.role, next, { id: account.id, from: account.role });
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  const updated: string[] = [];
  const set: Updateable<AccountTable> = {};
  if (next.username !== account.username) {
    await assertUserNameFree(ctx, client, next.username, account.id);
    changes.username = { from: account.username, to: next.username };
    set.username = next.username;
  }
  if (next.externalId !== account.external_id || account.source !== 'scim') await assertExternalIdFree(ctx, next.externalId, account.id);
  if (next.externalId !== account.external_id) {
    changes.externalId = { from: account.external_id, to: next.externalId };
    set.external_id = next.externalId;
  }
  // An account this token may reach but did not make (it may adopt): from now on its source's.
  if (account.source !== 'scim') {
    changes.source = { from: account.source, to: 'scim' };
    set.source = 'scim';
  }
  if (account.provisioning_source !== client.source) {
    changes.provisioningSource = { from: account.provisioning_source, to: client.source };
    set.provisioning_source = client.source;
  }
  // Personal details: the trail records which changed, not their values.
  for (const [field, column, value] of [
    ['displayName', 'display_name', next.displayName],
    ['givenName', 'given_name', next.givenName],
    ['familyName', 'family_name', next.familyName],
    ['email', 'email', next.email],
  ] as const) {
    if ((account[column] ?? null) !== value) {
      updated.push(field);
      (set as Record<string, string | null>)[column] = value;
    }
  }
  if (next.status !== account.status) {
    changes.status = { from: account.status, to: next.status };
    set.status = next.status;
  }
  if (next.role && next.role !== account.role) {
    changes.role = { from: account.role, to: next.role };
    set.role = next.role;
  }
  if (Object.keys(changes).length === 0 && updated.length === 0) return;
  await ctx.db.updateTable('account').set({ ...set, updated_at: ctx.clock.now().toISOString() }).where('id', '=', account.id).execute();
  let sessionsEnded = 0;
  if (changes.status?.to === 'disabled') sessionsEnded = await endAccess(ctx, account.id, 'account_disabled');
  else if (changes.role) sessionsEnded = await endAccess(ctx, account.id, 'privileges_changed');
  const admin = changes.status?.to === 'disabled' ? await linkedAdministrator(ctx, account.id) : undefined;
  await ctx.audit.record({
    action: 'account.changed',
    target: `account:${account.id}`,
    severity: admin || (changes.role && isPrivilegedRole(changes.role.to as Role)) ? 'warning' : changes.status || changes.role ? 'notice' : 'info',
    details: {
      username: next.username,
      via: 'scim',
      changes,
      ...(updated.length ? { updated } : {}),
      ...(changes.status || changes.role ? { sessionsEnded } : {}),
      ...(next.ignoredUserType ? { ignoredUserType: next.ignoredUserType } : {}),
      ...(admin ? { linkedAdministratorAccount: { id: admin.id, username: admin.username, stillActive: true } } : {}),
    },
  });
}

export const resourceBodySchema = z.record(z.string(), z.unknown());

export async function createUser(rt: Runtime, client: ScimClient, body: Record<string, unknown>, meta: Meta): Promise<string> {
  return withRefusalsAudited(rt, client, meta, 'create', async () => {
    const state = blankState();
    applyUserObject(state, 'replace', body);
    const fields = fieldsOf(state);
    const role = fields.role ?? client.defaultRole;
    assertRoleGranted(client, role, fields, { id: null, from: null });
    return rt.trail.transaction(scimActor(client), async (ctx) => {
      await assertExternalIdFree(ctx, fields.externalId, null);
      await assertUserNameFree(ctx, client, fields.username, null);
      const id = await createAccount(ctx, {
        username: fields.username,
        displayName: fields.displayName,
        email: fields.email,
        role,
        passwordHash: null,
        givenName: fields.givenName,
        familyName: fields.familyName,
        externalId: fields.externalId,
        source: 'scim',
        status: fields.status,
      });
      // Owned by the token's provisioning source, in the same transaction.
      await ctx.db.updateTable('account').set({ provisioning_source: client.source }).where('id', '=', id).execute();
      return id;
    }, meta);
  });
}

export async function replaceUser(rt: Runtime, client: ScimClient, id: string, body: Record<string, unknown>, meta: Meta): Promise<void> {
  await withRefusalsAudited(rt, client, meta, 'replace', () =>
    rt.trail.transaction(scimActor(client), async (ctx) => {
      const account = await loadAccountToChange(ctx.db, client, id);
      const state = blankState(account.status !== 'disabled');
      applyUserObject(state, 'replace', body);
      await applyUserFields(ctx, client, account, fieldsOf(state));
    }, meta),
  );
}

export async function patchUser(rt: Runtime, client: ScimClient, id: string, request: PatchRequest, meta: Meta): Promise<void> {
  await withRefusalsAudited(rt, client, meta, 'patch', () =>
    rt.trail.transaction(scimActor(client), async (ctx) => {
      const account = await loadAccountToChange(ctx.db, client, id);
      const state = stateOf(account);
      applyUserPatch(state, request);
      await applyUserFields(ctx, client, account, fieldsOf(state));
    }, meta),
  );
}

/**
 * DELETE: the person has left (AC-13). The leaver action runs as for a leaver started by hand: the
 * account is marked left (kept for the record), its sessions end, the shared secrets they knew are
 * flagged, and the checklist starts. SCIM then no longer sees the account (404). A guest-desk
 * account is refused (403) and left as it is. So is a person with a linked administrator account:
 * the leaver would close that account, and provisioning never touches an administrator account
 * (finding 8), so an administrator starts that leaver in Gatehouse.
 */
export async function deleteUser(rt: Runtime, client: ScimClient, id: string, meta: Meta): Promise<void> {
  await withRefusalsAudited(rt, client, meta, 'delete', async () => {
    const account = await loadAccountToChange(rt.db.kysely, client, id);
    /** Inside the leaver's transaction, so an administrator account linked meanwhile is seen. */
    const guard = async (ctx: Ctx, current: Account, admins: Account[]) => {
      await loadAccountToChange(ctx.db, client, current.id);
      if (admins.length === 0) return;
      throw refused(
        403,
        `The user "${id}" has an administrator account linked to them, which the leaver action closes with them; provisioning never changes an administrator account. An administrator must start this leaver in Gatehouse (Leavers), or unlink the administrator account first.`,
        { reason: 'linked_administrator', target: `account:${id}`, details: { accountId: id, username: current.username, role: current.role, administratorAccounts: admins.map((a) => ({ id: a.id, username: a.username, status: a.status })) } },
      );
    };
    if (account.role !== 'guest') {
      await startLeaver(rt, scimActor(client), id, { note: `Deleted through SCIM by "${client.name}".` }, meta, guard);
      return;
    }
    // A guest the identity provider made (userType Guest; never a guest-desk account, which SCIM
    // cannot reach) has no visit and is not a leaver: it is just closed.
    await rt.trail.transaction(scimActor(client), async (ctx) => {
      await guard(ctx, account, await ctx.db.selectFrom('account').selectAll().where('linked_account_id', '=', id).where('role', '=', 'administrator').execute());
      const now = ctx.clock.now().toISOString();
      await ctx.db.updateTable('account').set({ status: 'left', left_at: now, updated_at: now }).where('id', '=', id).execute();
      const sessionsEnded = await endAccess(ctx, id, 'account_left');
      await ctx.audit.record({ action: 'account.left', target: `account:${id}`, severity: 'notice', details: { username: account.username, role: account.role, via: 'scim', sessionsEnded } });
    }, meta);
  });
}

// --- Groups ------------------------------------------------------------------------------------

interface GroupState {
  displayName: string | null;
  externalId: string | null;
  members: Set<string>;
}

function memberIds(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((m) => {
    const id = typeof m === 'string' ? m : m && typeof m === 'object' ? (m as { value?: unknown }).value : undefined;
    if (typeof id !== 'string' || id.length === 0 || id.length > 100 || CONTROL_CHARACTER.test(id)) throw invalidValue('Each member needs a "value" with a user id.');
    return id;
  });
}

function applyGroupAttribute(state: GroupState, op: Op, rawPath: string, value: unknown): void {
  if (isOtherExtension(rawPath)) return;
  const path = parsePath(rawPath);
  const key = path.sub ? `${path.attr}.${path.sub}` : path.attr;
  switch (key) {
    case 'displayname': {
      if (op === 'remove') throw scimError(400, 'mutability', 'displayName is required and cannot be removed.');
      const name = asString(value, 'displayName');
      if (!name) throw invalidValue('displayName cannot be empty.');
      state.displayName = name;
      return;
    }
    case 'externalid':
      state.externalId = op === 'remove' ? null : asString(value, 'externalId', 255);
      return;
    case 'members':
    case 'members.value': {
      if (path.where) {
        // members[value eq "…"]: that one member.
        if (path.where.attr !== 'value' || typeof path.where.value !== 'string') throw scimError(400, 'invalidPath', `The path "${rawPath}" is not supported; use members[value eq "<user id>"].`);
        if (op === 'remove') state.members.delete(path.where.value);
        else state.members.add(path.where.value);
        return;
      }
      const ids = memberIds(value);
      if (op === 'add') for (const id of ids) state.members.add(id);
      else if (op === 'replace') state.members = new Set(ids);
      else if (value === undefined || value === null) state.members.clear();
      else for (const id of ids) state.members.delete(id);
      return;
    }
    default:
      return;
  }
}

function applyGroupObject(state: GroupState, op: Op, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidValue('An operation without a path needs an object value, e.g. {"displayName": "Year 7"}.');
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (['schemas', 'id', 'meta'].includes(k.toLowerCase()) || (/^urn:/i.test(k) && !k.toLowerCase().startsWith(SCIM.group.toLowerCase()))) continue;
    applyGroupAttribute(state, op, k, v);
  }
}

async function assertGroupExternalIdFree(ctx: Ctx, externalId: string | null, exceptId: string): Promise<void> {
  if (!externalId) return;
  const clash = await ctx.db.selectFrom('directory_group').select('id').where('source', '=', 'scim').where('external_id', '=', externalId).where('id', '!=', exceptId).executeTakeFirst();
  if (clash) throw scimError(409, 'uniqueness', `Another group already has the externalId "${externalId}".`);
}

/** The group's members this token can see (its reach); others are neither shown nor changed. */
async function membersInReach(ctx: Ctx, client: ScimGrant, groupId: string): Promise<Set<string>> {
  const rows = await ctx.db.selectFrom('group_member').innerJoin('account', 'account.id', 'group_member.account_id').select('account.id').where('group_member.group_id', '=', groupId).where(reach(client)).execute();
  return new Set(rows.map((r) => r.id));
}

/**
 * Makes the group's members within the token's reach exactly `wanted` (audited one by one).
 * Members out of its reach stay as they are. A user SCIM never sees is refused as unknown (400);
 * one it may see but this token may not reach is refused with the reason (403, recorded).
 */
async function syncMembers(ctx: Ctx, client: ScimGrant, groupId: string, wanted: Set<string>): Promise<void> {
  const all = new Set((await ctx.db.selectFrom('group_member').select('account_id').where('group_id', '=', groupId).execute()).map((r) => r.account_id));
  const mine = await membersInReach(ctx, client, groupId);
  const toAdd = [...wanted].filter((id) => !all.has(id));
  if (toAdd.length > 0) {
    const found = new Map<string, Account>();
    for (let i = 0; i < toAdd.length; i += 500) {
      const rows = await ctx.db.selectFrom('account').selectAll().where('id', 'in', toAdd.slice(i, i + 500)).where(visible).execute();
      for (const r of rows) found.set(r.id, r);
    }
    const missing = toAdd.filter((id) => !found.has(id));
    if (missing.length) throw invalidValue(`There is no user with the id "${missing[0]}"${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}: add users before their group memberships.`);
    for (const account of found.values()) {
      const out = outOfReach(client, account);
      if (out) throw refused(403, `Group membership: ${out.detail}`, out);
    }
    for (const id of toAdd) await setMembership(ctx, groupId, id, 'member');
  }
  for (const id of mine) if (!wanted.has(id)) await removeMembership(ctx, groupId, id);
}

function groupName(state: GroupState): string {
  if (!state.displayName) throw invalidValue('displayName is required.');
  return state.displayName;
}

export async function createScimGroup(rt: Runtime, client: ScimClient, body: Record<string, unknown>, meta: Meta): Promise<string> {
  return withRefusalsAudited(rt, client, meta, 'group_create', async () => {
    const state: GroupState = { displayName: null, externalId: null, members: new Set() };
    applyGroupObject(state, 'replace', body);
    const name = groupName(state);
    return rt.trail.transaction(scimActor(client), async (ctx) => {
      if (state.externalId) await assertGroupExternalIdFree(ctx, state.externalId, '');
      const id = await createGroup(ctx, { name, kind: 'other', externalId: state.externalId, source: 'scim' });
      await ctx.db.updateTable('directory_group').set({ provisioning_source: client.source }).where('id', '=', id).execute();
      await syncMembers(ctx, client, id, state.members);
      return id;
    }, meta);
  });
}

async function applyGroupState(ctx: Ctx, client: ScimGrant, group: Group, state: GroupState, membersTouched: boolean): Promise<void> {
  const name = groupName(state);
  if (state.externalId !== group.external_id) await assertGroupExternalIdFree(ctx, state.externalId, group.id);
  await updateGroup(ctx, group.id, { name, externalId: state.externalId });
  if (membersTouched) await syncMembers(ctx, client, group.id, state.members);
}

export async function replaceScimGroup(rt: Runtime, client: ScimClient, id: string, body: Record<string, unknown>, meta: Meta): Promise<void> {
  await withRefusalsAudited(rt, client, meta, 'group_replace', () =>
    rt.trail.transaction(scimActor(client), async (ctx) => {
      const group = await loadScimGroup(ctx.db, client, id);
      const state: GroupState = { displayName: null, externalId: null, members: new Set() };
      applyGroupObject(state, 'replace', body);
      await applyGroupState(ctx, client, group, state, true);
    }, meta),
  );
}

export async function patchScimGroup(rt: Runtime, client: ScimClient, id: string, request: PatchRequest, meta: Meta): Promise<void> {
  await withRefusalsAudited(rt, client, meta, 'group_patch', () =>
    rt.trail.transaction(scimActor(client), async (ctx) => {
      const group = await loadScimGroup(ctx.db, client, id);
      const state: GroupState = { displayName: group.name, externalId: group.external_id, members: await membersInReach(ctx, client, id) };
      const before = new Set(state.members);
      for (const operation of request.Operations) {
        const op = opName(operation.op);
        if (operation.path) applyGroupAttribute(state, op, operation.path, operation.value);
        else if (op === 'remove') throw scimError(400, 'noTarget', 'A remove operation needs a path.');
        else applyGroupObject(state, op, operation.value);
      }
      const membersTouched = state.members.size !== before.size || [...state.members].some((m) => !before.has(m));
      await applyGroupState(ctx, client, group, state, membersTouched);
    }, meta),
  );
}

export async function deleteScimGroup(rt: Runtime, client: ScimClient, id: string, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    await loadScimGroup(ctx.db, client, id);
    await deleteGroup(ctx, id);
  }, meta);
}

// --- Discovery ---------------------------------------------------------------------------------

export function serviceProviderConfig(base: string): Resource {
  return {
    schemas: [SCIM.serviceProviderConfig],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'A SCIM token made under Provisioning in the Gatehouse console (or with gatehouse scim token create), sent as Authorization: Bearer <token>.',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

export function resourceTypes(base: string): Resource[] {
  return [
    { schemas: [SCIM.resourceType], id: 'User', name: 'User', endpoint: '/Users', description: 'People in the school directory', schema: SCIM.user, meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` } },
    { schemas: [SCIM.resourceType], id: 'Group', name: 'Group', endpoint: '/Groups', description: 'Groups of people in the school directory', schema: SCIM.group, meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/Group` } },
  ];
}

type AttributeOptions = { multiValued?: boolean; required?: boolean; caseExact?: boolean; mutability?: string; returned?: string; uniqueness?: string; subAttributes?: Resource[]; canonicalValues?: string[] };

function attribute(name: string, type: string, description: string, o: AttributeOptions = {}): Resource {
  return {
    name,
    type,
    multiValued: o.multiValued ?? false,
    description,
    required: o.required ?? false,
    caseExact: o.caseExact ?? false,
    mutability: o.mutability ?? 'readWrite',
    returned: o.returned ?? 'default',
    uniqueness: o.uniqueness ?? 'none',
    ...(o.canonicalValues ? { canonicalValues: o.canonicalValues } : {}),
    ...(o.subAttributes ? { subAttributes: o.subAttributes } : {}),
  };
}

export function schemaDefinitions(base: string): Resource[] {
  const user = [
    attribute('userName', 'string', 'The Gatehouse username: letters, digits, dots, dashes and underscores; stored in lower case.', { required: true, uniqueness: 'server' }),
    attribute('name', 'complex', 'The person’s name.', {
      subAttributes: [attribute('formatted', 'string', 'The full name.'), attribute('familyName', 'string', 'Family name.'), attribute('givenName', 'string', 'Given name.')],
    }),
    attribute('displayName', 'string', 'The name shown in Gatehouse.'),
    attribute('userType', 'string', 'The Gatehouse role: Pupil (or Student), Staff (or Teacher), Senior leader, Governor, … — one of the roles this token is granted, never administrator. Otherwise the token’s role for new people.'),
    attribute('active', 'boolean', 'false disables the account and ends its sessions.'),
    attribute('emails', 'complex', 'E-mail addresses; Gatehouse keeps one, the primary (or work) address.', {
      multiValued: true,
      subAttributes: [attribute('value', 'string', 'The address.'), attribute('type', 'string', 'work', { canonicalValues: ['work'] }), attribute('primary', 'boolean', 'The address to keep.')],
    }),
    attribute('groups', 'complex', 'The SCIM groups the person is a member of.', {
      multiValued: true,
      mutability: 'readOnly',
      subAttributes: [attribute('value', 'string', 'Group id.', { mutability: 'readOnly' }), attribute('display', 'string', 'Group name.', { mutability: 'readOnly' }), attribute('$ref', 'reference', 'Group address.', { mutability: 'readOnly' })],
    }),
  ];
  const group = [
    attribute('displayName', 'string', 'The group’s name.', { required: true }),
    attribute('members', 'complex', 'The group’s members (users only).', {
      multiValued: true,
      subAttributes: [attribute('value', 'string', 'User id.', { mutability: 'immutable' }), attribute('display', 'string', 'User name.', { mutability: 'readOnly' }), attribute('$ref', 'reference', 'User address.', { mutability: 'immutable' }), attribute('type', 'string', 'User', { mutability: 'immutable', canonicalValues: ['User'] })],
    }),
  ];
  return [
    { schemas: [SCIM.schema], id: SCIM.user, name: 'User', description: 'A person in the school directory', attributes: user, meta: { resourceType: 'Schema', location: `${base}/Schemas/${SCIM.user}` } },
    { schemas: [SCIM.schema], id: SCIM.group, name: 'Group', description: 'A group of people', attributes: group, meta: { resourceType: 'Schema', location: `${base}/Schemas/${SCIM.group}` } },
  ];
}
