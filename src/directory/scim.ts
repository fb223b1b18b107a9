import type { ExpressionBuilder, Kysely, Selectable, Updateable } from 'kysely';
import { endAccountAccess } from '../identity/sessions.js';
import { z } from 'zod';
import { isRole, roleLabels, roles, type Role } from '../core/authz.js';
import type { Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import type { AccountTable, DirectoryGroupTable, Schema } from '../db/schema.js';
import { createAccount, GUEST_POOL_SOURCE, usernameSchema } from '../identity/service.js';
import type { Runtime } from '../runtime.js';
import { createGroup, deleteGroup, removeMembership, setMembership, updateGroup } from './groups.js';
import { startLeaver } from './leavers.js';
import { scimActor, type ScimClient } from './scim-tokens.js';

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
      try {
        return JSON.parse(t.text) as string;
      } catch {
        throw invalidFilter(`The value ${t.text} in the filter is not a valid string.`);
      }
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
      }
    }
    const after = peek();
    if (condition.where && (!after || (after.kind === 'word' && after.text.toLowerCase() === 'and'))) {
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

/** Accounts SCIM may read and change: never administrators, the break-glass account, the guest pool or leavers. */
function visible(eb: ExpressionBuilder<Schema, 'account'>) {
  return eb.and([eb('account.role', '!=', 'administrator'), eb('account.is_break_glass', '=', 0), eb('account.status', '!=', 'left'), eb('account.source', '!=', GUEST_POOL_SOURCE)]);
}

/** Why a guest-desk account is not the identity provider's to change (the provisioning log shows this). */
const guestDeskAccount = (username: string) =>
  scimError(
    403,
    undefined,
    `"${username}" is one of Gatehouse's guest-desk accounts. Guest accounts are Gatehouse's own, not the identity provider's: they are allocated to visitors and their visits ended at the guest desk, so provisioning cannot change or delete them.`,
  );

/**
 * An account SCIM may read (`read`) or change (`change`). Anything else is a 404, except that a
 * change to a guest-pool account is refused with the reason rather than as missing.
 */
async function loadVisibleAccount(db: Kysely<Schema>, id: string, purpose: 'read' | 'change' = 'read'): Promise<Account> {
  const account = await db.selectFrom('account').selectAll().where('id', '=', id).where(visible).executeTakeFirst();
  if (account) return account;
  if (purpose === 'change') {
    const pooled = await db.selectFrom('account').select('username').where('id', '=', id).where('source', '=', GUEST_POOL_SOURCE).executeTakeFirst();
    if (pooled) throw guestDeskAccount(pooled.username);
  }
  throw notFoundScim('User', id);
}

/** A userName no other account has; a guest-desk account's name is refused with the reason. */
async function assertUserNameFree(ctx: Ctx, username: string, exceptId: string | null): Promise<void> {
  let q = ctx.db.selectFrom('account').select('source').where('username', '=', username);
  if (exceptId) q = q.where('id', '!=', exceptId);
  const taken = await q.executeTakeFirst();
  if (!taken) return;
  if (taken.source === GUEST_POOL_SOURCE) {
    throw scimError(409, 'uniqueness', `The userName "${username}" belongs to one of Gatehouse's guest-desk accounts, which are Gatehouse's own and not provisioned: give this person another userName.`);
  }
  throw scimError(409, 'uniqueness', `The userName "${username}" is already taken.`);
}

async function loadScimGroup(db: Kysely<Schema>, id: string): Promise<Group> {
  const group = await db.selectFrom('directory_group').selectAll().where('id', '=', id).where('source', '=', 'scim').executeTakeFirst();
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
  filter: z.string().max(1000).optional(),
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
async function scimGroupsOf(db: Kysely<Schema>, accountIds: string[], base: string): Promise<Map<string, GroupRef[]>> {
  const out = new Map<string, GroupRef[]>();
  if (accountIds.length === 0) return out;
  const rows = await db
    .selectFrom('group_member as m')
    .innerJoin('directory_group as g', 'g.id', 'm.group_id')
    .select(['m.account_id', 'g.id', 'g.name'])
    .where('m.account_id', 'in', accountIds)
    .where('g.source', '=', 'scim')
    .orderBy('g.name')
    .execute();
  for (const r of rows) {
    const list = out.get(r.account_id) ?? [];
    list.push({ value: r.id, display: r.name, $ref: `${base}/Groups/${r.id}` });
    out.set(r.account_id, list);
  }
  return out;
}

async function membersOfGroups(db: Kysely<Schema>, groupIds: string[]): Promise<Map<string, Array<{ id: string; display_name: string }>>> {
  const out = new Map<string, Array<{ id: string; display_name: string }>>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return out;
  const rows = await db
    .selectFrom('group_member as m')
    .innerJoin('account', 'account.id', 'm.account_id')
    .select(['m.group_id', 'account.id', 'account.display_name'])
    .where('m.group_id', 'in', groupIds)
    .where(visible)
    .orderBy('account.created_at')
    .orderBy('account.id')
    .execute();
  for (const r of rows) out.get(r.group_id)!.push({ id: r.id, display_name: r.display_name });
  return out;
}

export async function listUsers(db: Kysely<Schema>, query: ListQuery, base: string): Promise<Resource> {
  let q = db.selectFrom('account').where(visible);
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
  const groups = wantsGroups ? await scimGroupsOf(db, rows.map((r) => r.id), base) : new Map<string, GroupRef[]>();
  return listResponse(rows.map((a) => project(userResource(a, groups.get(a.id) ?? [], base), query.attributes, query.excludedAttributes)), Number(total.n), startIndex);
}

export async function getUser(db: Kysely<Schema>, id: string, base: string, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'> = {}): Promise<Resource> {
  const account = await loadVisibleAccount(db, id);
  const groups = await scimGroupsOf(db, [id], base);
  return project(userResource(account, groups.get(id) ?? [], base), query.attributes, query.excludedAttributes);
}

export async function listGroups(db: Kysely<Schema>, query: ListQuery, base: string): Promise<Resource> {
  let q = db.selectFrom('directory_group').where('directory_group.source', '=', 'scim');
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
  const members = wantsMembers ? await membersOfGroups(db, rows.map((r) => r.id)) : undefined;
  return listResponse(rows.map((g) => project(groupResource(g, members?.get(g.id), base), query.attributes, query.excludedAttributes)), Number(total.n), startIndex);
}

export async function getGroup(db: Kysely<Schema>, id: string, base: string, query: Pick<ListQuery, 'attributes' | 'excludedAttributes'> = {}): Promise<Resource> {
  const group = await loadScimGroup(db, id);
  const wantsMembers = project({ members: true }, query.attributes, query.excludedAttributes).members !== undefined;
  const members = wantsMembers ? await membersOfGroups(db, [id]) : undefined;
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
  /** a role named by userType, if it names one other than administrator */
  role: Role | undefined;
  /** a userType that named no usable role (recorded, not applied) */
  ignoredUserType: string | undefined;
  /** a userType that named the administrator role: refused, and recorded as a warning */
  refusedAdministrator: boolean;
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
  const named = state.userType ? roleFromUserType(state.userType) : undefined;
  const role = named && named !== 'administrator' ? named : undefined;
  return {
    username: parsed.data,
    displayName,
    givenName: state.givenName,
    familyName: state.familyName,
    email: state.email,
    externalId: state.externalId,
    status: state.active ? 'active' : 'disabled',
    role,
    ignoredUserType: state.userType && !role ? state.userType : undefined,
    refusedAdministrator: named === 'administrator',
  };
}

/** SCIM never makes an administrator (AC-07: those are separate accounts made by hand); each attempt is recorded. */
async function recordAdministratorRefused(ctx: Ctx, accountId: string, username: string, fields: UserFields): Promise<void> {
  if (!fields.refusedAdministrator) return;
  await ctx.audit.record({ action: 'scim.administrator_refused', target: `account:${accountId}`, severity: 'warning', details: { username, userType: fields.ignoredUserType ?? null } });
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

async function applyUserFields(ctx: Ctx, account: Account, next: UserFields): Promise<void> {
  await recordAdministratorRefused(ctx, account.id, account.username, next);
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  const updated: string[] = [];
  const set: Updateable<AccountTable> = {};
  if (next.username !== account.username) {
    await assertUserNameFree(ctx, next.username, account.id);
    changes.username = { from: account.username, to: next.username };
    set.username = next.username;
  }
  if (next.externalId !== account.external_id || account.source !== 'scim') await assertExternalIdFree(ctx, next.externalId, account.id);
  if (next.externalId !== account.external_id) {
    changes.externalId = { from: account.external_id, to: next.externalId };
    set.external_id = next.externalId;
  }
  if (account.source !== 'scim') {
    changes.source = { from: account.source, to: 'scim' };
    set.source = 'scim';
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
    severity: admin ? 'warning' : changes.status || changes.role ? 'notice' : 'info',
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
  const state = blankState();
  applyUserObject(state, 'replace', body);
  const fields = fieldsOf(state);
  return rt.trail.transaction(scimActor(client), async (ctx) => {
    await assertExternalIdFree(ctx, fields.externalId, null);
    await assertUserNameFree(ctx, fields.username, null);
    const id = await createAccount(ctx, {
      username: fields.username,
      displayName: fields.displayName,
      email: fields.email,
      role: fields.role ?? client.defaultRole,
      passwordHash: null,
      givenName: fields.givenName,
      familyName: fields.familyName,
      externalId: fields.externalId,
      source: 'scim',
      status: fields.status,
    });
    await recordAdministratorRefused(ctx, id, fields.username, fields);
    return id;
  }, meta);
}

export async function replaceUser(rt: Runtime, client: ScimClient, id: string, body: Record<string, unknown>, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    const account = await loadVisibleAccount(ctx.db, id, 'change');
    const state = blankState(account.status !== 'disabled');
    applyUserObject(state, 'replace', body);
    await applyUserFields(ctx, account, fieldsOf(state));
  }, meta);
}

export async function patchUser(rt: Runtime, client: ScimClient, id: string, request: PatchRequest, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    const account = await loadVisibleAccount(ctx.db, id, 'change');
    const state = stateOf(account);
    applyUserPatch(state, request);
    await applyUserFields(ctx, account, fieldsOf(state));
  }, meta);
}

/**
 * DELETE: the person has left (AC-13). The leaver action runs as for a leaver started by hand: the
 * account is marked left (kept for the record), its sessions end, a linked administrator account is
 * closed with it, the shared secrets they knew are flagged, and the checklist starts. SCIM then no
 * longer sees the account (404). A guest-desk account is refused (403) and left as it is.
 */
export async function deleteUser(rt: Runtime, client: ScimClient, id: string, meta: Meta): Promise<void> {
  const account = await loadVisibleAccount(rt.db.kysely, id, 'change');
  if (account.role !== 'guest') {
    await startLeaver(rt, scimActor(client), id, { note: `Deleted through SCIM by "${client.name}".` }, meta);
    return;
  }
  // A guest the identity provider made (userType Guest; never a guest-desk account, which SCIM
  // cannot reach) has no visit and is not a leaver: it is just closed.
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    const now = ctx.clock.now().toISOString();
    await ctx.db.updateTable('account').set({ status: 'left', left_at: now, updated_at: now }).where('id', '=', id).execute();
    const sessionsEnded = await endAccess(ctx, id, 'account_left');
    await ctx.audit.record({ action: 'account.left', target: `account:${id}`, severity: 'notice', details: { username: account.username, role: account.role, via: 'scim', sessionsEnded } });
  }, meta);
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
    if (typeof id !== 'string' || id.length === 0 || id.length > 100) throw invalidValue('Each member needs a "value" with a user id.');
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

/** Makes the group's members exactly `wanted` (audited one by one); unknown users are refused. */
async function syncMembers(ctx: Ctx, groupId: string, wanted: Set<string>): Promise<void> {
  const current = new Set((await ctx.db.selectFrom('group_member').select('account_id').where('group_id', '=', groupId).execute()).map((r) => r.account_id));
  const toAdd = [...wanted].filter((id) => !current.has(id));
  if (toAdd.length > 0) {
    const found = new Set<string>();
    for (let i = 0; i < toAdd.length; i += 500) {
      const rows = await ctx.db.selectFrom('account').select('id').where('id', 'in', toAdd.slice(i, i + 500)).where(visible).execute();
      for (const r of rows) found.add(r.id);
    }
    const missing = toAdd.filter((id) => !found.has(id));
    if (missing.length) throw invalidValue(`There is no user with the id "${missing[0]}"${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}: add users before their group memberships.`);
    for (const id of toAdd) await setMembership(ctx, groupId, id, 'member');
  }
  for (const id of current) if (!wanted.has(id)) await removeMembership(ctx, groupId, id);
}

function groupName(state: GroupState): string {
  if (!state.displayName) throw invalidValue('displayName is required.');
  return state.displayName;
}

export async function createScimGroup(rt: Runtime, client: ScimClient, body: Record<string, unknown>, meta: Meta): Promise<string> {
  const state: GroupState = { displayName: null, externalId: null, members: new Set() };
  applyGroupObject(state, 'replace', body);
  const name = groupName(state);
  return rt.trail.transaction(scimActor(client), async (ctx) => {
    if (state.externalId) await assertGroupExternalIdFree(ctx, state.externalId, '');
    const id = await createGroup(ctx, { name, kind: 'other', externalId: state.externalId, source: 'scim' });
    await syncMembers(ctx, id, state.members);
    return id;
  }, meta);
}

async function applyGroupState(ctx: Ctx, group: Group, state: GroupState, membersTouched: boolean): Promise<void> {
  const name = groupName(state);
  if (state.externalId !== group.external_id) await assertGroupExternalIdFree(ctx, state.externalId, group.id);
  await updateGroup(ctx, group.id, { name, externalId: state.externalId });
  if (membersTouched) await syncMembers(ctx, group.id, state.members);
}

async function currentMembers(ctx: Ctx, groupId: string): Promise<Set<string>> {
  return new Set((await ctx.db.selectFrom('group_member').select('account_id').where('group_id', '=', groupId).execute()).map((r) => r.account_id));
}

export async function replaceScimGroup(rt: Runtime, client: ScimClient, id: string, body: Record<string, unknown>, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    const group = await loadScimGroup(ctx.db, id);
    const state: GroupState = { displayName: null, externalId: null, members: new Set() };
    applyGroupObject(state, 'replace', body);
    await applyGroupState(ctx, group, state, true);
  }, meta);
}

export async function patchScimGroup(rt: Runtime, client: ScimClient, id: string, request: PatchRequest, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    const group = await loadScimGroup(ctx.db, id);
    const state: GroupState = { displayName: group.name, externalId: group.external_id, members: await currentMembers(ctx, id) };
    const before = new Set(state.members);
    for (const operation of request.Operations) {
      const op = opName(operation.op);
      if (operation.path) applyGroupAttribute(state, op, operation.path, operation.value);
      else if (op === 'remove') throw scimError(400, 'noTarget', 'A remove operation needs a path.');
      else applyGroupObject(state, op, operation.value);
    }
    const membersTouched = state.members.size !== before.size || [...state.members].some((m) => !before.has(m));
    await applyGroupState(ctx, group, state, membersTouched);
  }, meta);
}

export async function deleteScimGroup(rt: Runtime, client: ScimClient, id: string, meta: Meta): Promise<void> {
  await rt.trail.transaction(scimActor(client), async (ctx) => {
    await loadScimGroup(ctx.db, id);
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
    attribute('userType', 'string', 'The Gatehouse role: Pupil (or Student), Staff (or Teacher), Senior leader, Governor, … — never administrator. Otherwise the token’s default role.'),
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
