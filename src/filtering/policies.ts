import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { badRequest, conflict, notFound } from '../core/errors.js';
import { filterPolicyGroups, groupOf, type FilterPolicyGroup, type FilterPolicySettings } from '../core/profile.js';
import type { FilterPolicyTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import type { PolicyInput } from './engine/snapshot.js';
import { bumpGeneration } from './state.js';

/**
 * Filtering policies per group (FI-05): one for each of the four role groups (pupils, staff, guests,
 * administrators), one for unknown devices, and optionally one for any directory group (a year, a
 * class, a department). Until the school edits one, a role group's policy and the unknown-device
 * policy are the profile's (`filtering.policies`); editing stores the school's own copy.
 *
 * Which policy a person gets: the policy of one of their directory groups if any has one (the lowest
 * priority number first, then the name), otherwise their role group's. A device gets its registered
 * policy; anything unidentified gets the unknown-device policy.
 *
 * The school's allow and block lists apply to a policy as chosen: "all" (every such list, including
 * ones added later) or named lists. Illegal-content lists are never named here: they apply to every
 * policy, and no setting can allow them.
 */

export const ROLE_POLICY_NAMES: Record<FilterPolicyGroup, string> = {
  pupils: 'Pupils',
  staff: 'Staff',
  guests: 'Guests',
  administrators: 'Administrators',
  unknown: 'Unknown devices',
};

export const policyIdOfGroup = (group: FilterPolicyGroup): string => (group === 'unknown' ? 'unknown' : `role:${group}`);
export const UNKNOWN_POLICY = 'unknown';

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time like 08:30');
const categoryIds = z.array(z.string().min(1).max(200)).max(1000);
const listChoice = z.union([z.literal('all'), categoryIds]);

export const policySettingsSchema = z
  .object({
    blockedCategories: categoryIds,
    schedules: z
      .array(
        z
          .object({
            categories: categoryIds.min(1, 'name at least one category'),
            days: z.array(z.number().int().min(1).max(7)).min(1, 'choose at least one day').max(7),
            from: clockTime,
            to: clockTime,
            label: z.string().trim().max(100).optional(),
          })
          .strict()
          .refine((s) => s.from < s.to, 'a schedule must end after it starts (on the same day)'),
      )
      .max(50),
    allowLists: listChoice,
    blockLists: listChoice,
    safeSearch: z.enum(['on', 'off']),
    youtube: z.enum(['off', 'moderate', 'strict']),
    downloadsAllowed: z.boolean(),
    defaultAction: z.enum(['allow', 'block']),
    priority: z.number().int().min(1).max(1000).optional(),
  })
  .strict();
export type PolicySettings = z.infer<typeof policySettingsSchema>;

export interface PolicySummary extends Omit<PolicySettings, 'priority'> {
  id: string;
  /** role | group | unknown */
  kind: 'role' | 'group' | 'unknown';
  groupId: string | null;
  name: string;
  priority: number;
  /** false: the profile's starting policy, not yet edited */
  edited: boolean;
  updatedAt: string | null;
}

function fromProfile(settings: FilterPolicySettings): Omit<PolicySettings, 'priority'> {
  return {
    blockedCategories: settings.blockedCategories,
    schedules: settings.schedules,
    allowLists: 'all',
    blockLists: 'all',
    safeSearch: settings.safeSearch,
    youtube: settings.youtube,
    downloadsAllowed: settings.downloadsAllowed,
    defaultAction: settings.defaultAction,
  };
}

function fromRow(row: Selectable<FilterPolicyTable>): PolicySummary {
  const parsedList = (text: string) => JSON.parse(text) as 'all' | string[];
  return {
    id: row.id,
    kind: row.id === UNKNOWN_POLICY ? 'unknown' : row.group_id ? 'group' : 'role',
    groupId: row.group_id,
    name: row.name,
    priority: row.priority,
    blockedCategories: JSON.parse(row.blocked_categories) as string[],
    schedules: JSON.parse(row.schedules) as PolicySettings['schedules'],
    allowLists: parsedList(row.allow_lists),
    blockLists: parsedList(row.block_lists),
    safeSearch: row.safe_search as 'on' | 'off',
    youtube: row.youtube_mode as 'off' | 'moderate' | 'strict',
    downloadsAllowed: row.downloads_allowed === 1,
    defaultAction: row.default_action as 'allow' | 'block',
    edited: true,
    updatedAt: row.updated_at,
  };
}

/** Every policy in force: the stored ones, and the profile's for role groups not yet edited. */
export async function listPolicies(rt: Pick<Runtime, 'db' | 'profile'>): Promise<PolicySummary[]> {
  const rows = await rt.db.kysely.selectFrom('filter_policy').selectAll().execute();
  const stored = new Map(rows.map((r) => [r.id, fromRow(r)]));
  const out: PolicySummary[] = [];
  for (const group of filterPolicyGroups) {
    const id = policyIdOfGroup(group);
    out.push(stored.get(id) ?? { id, kind: group === 'unknown' ? 'unknown' : 'role', groupId: null, name: ROLE_POLICY_NAMES[group], priority: 1000, ...fromProfile(rt.profile.filtering.policies[group]), edited: false, updatedAt: null });
    stored.delete(id);
  }
  const groups = [...stored.values()].sort((a, b) => a.priority - b.priority || a.name.localeCompare(b.name));
  return [...out, ...groups];
}

export async function getPolicy(rt: Pick<Runtime, 'db' | 'profile'>, id: string): Promise<PolicySummary> {
  const policy = (await listPolicies(rt)).find((p) => p.id === id);
  if (!policy) throw notFound('There is no such filtering policy.');
  return policy;
}

type Meta = { ip: string | null; requestId: string | null };

/** Checks the categories and lists a policy names against what the lists provide. */
async function checkNames(rt: Runtime, settings: PolicySettings): Promise<void> {
  const categories = await rt.db.kysely.selectFrom('filter_category').select(['id', 'kind', 'name']).execute();
  const kindOf = new Map(categories.map((c) => [c.id, c]));
  const problems: string[] = [];
  const check = (ids: string[] | 'all', want: string) => {
    if (ids === 'all') return;
    for (const id of ids) {
      const c = kindOf.get(id);
      // A name no list provides yet is kept (the list may come later) and shown as a warning.
      if (!c) continue;
      if (c.kind === 'illegal') problems.push(`“${c.name}” is illegal content: it is blocked for everyone and cannot be part of a policy`);
      else if (c.kind !== want) problems.push(`“${c.name}” is not a ${want === 'category' ? 'category' : want === 'allow' ? 'school allow list' : 'school block list'}`);
    }
  };
  check(settings.blockedCategories, 'category');
  for (const s of settings.schedules) check(s.categories, 'category');
  check(settings.allowLists, 'allow');
  check(settings.blockLists, 'block');
  if (problems.length > 0) throw badRequest(`${problems.slice(0, 5).join('; ')}.`, { problems });
}

/**
 * Stores a policy's settings and audits what changed. `inForce` is what applied before when no row is
 * stored yet (a role group's policy still the profile's), so the first edit records only its changes.
 */
async function upsert(rt: Runtime, actor: Actor, id: string, base: { name: string; groupId: string | null; priority: number }, settings: PolicySettings, inForce: PolicySettings | null, meta: Meta, action: string): Promise<void> {
  await rt.trail.transaction(actor, async (ctx) => {
    const now = ctx.clock.now().toISOString();
    const values = {
      name: base.name,
      group_id: base.groupId,
      priority: settings.priority ?? base.priority,
      blocked_categories: JSON.stringify([...new Set(settings.blockedCategories)]),
      schedules: JSON.stringify(settings.schedules),
      allow_lists: JSON.stringify(settings.allowLists),
      block_lists: JSON.stringify(settings.blockLists),
      safe_search: settings.safeSearch,
      youtube_mode: settings.youtube,
      downloads_allowed: settings.downloadsAllowed ? 1 : 0,
      default_action: settings.defaultAction,
      updated_at: now,
    };
    const before = await ctx.db.selectFrom('filter_policy').selectAll().where('id', '=', id).executeTakeFirst();
    if (before) await ctx.db.updateTable('filter_policy').set(values).where('id', '=', id).execute();
    else await ctx.db.insertInto('filter_policy').values({ id, ...values, created_at: now }).execute();
    await bumpGeneration(ctx.db, 'policy');
    const old = before ? fromRow(before) : inForce;
    const changed: Record<string, unknown> = {};
    for (const key of ['blockedCategories', 'schedules', 'allowLists', 'blockLists', 'safeSearch', 'youtube', 'downloadsAllowed', 'defaultAction', 'priority'] as const) {
      const next = key === 'priority' ? values.priority : settings[key];
      if (!old || JSON.stringify(old[key]) !== JSON.stringify(next)) changed[key] = next;
    }
    await ctx.audit.record({ action, target: `filter_policy:${id}`, severity: 'notice', details: { name: base.name, changed } });
  }, meta);
}

/** Saves a policy's settings (a role group's becomes the school's own copy). */
export async function savePolicy(rt: Runtime, actor: Actor, id: string, settings: PolicySettings, meta: Meta): Promise<PolicySummary> {
  const current = await getPolicy(rt, id);
  await checkNames(rt, settings);
  await upsert(rt, actor, id, { name: current.name, groupId: current.groupId, priority: current.priority }, settings, current, meta, 'filtering.policy_changed');
  return getPolicy(rt, id);
}

/** A policy of its own for a directory group, starting as a copy of a role group's. */
export async function createGroupPolicy(rt: Runtime, actor: Actor, input: { groupId: string; copyOf?: string | undefined }, meta: Meta): Promise<PolicySummary> {
  const group = await rt.db.kysely.selectFrom('directory_group').select(['id', 'name']).where('id', '=', input.groupId).executeTakeFirst();
  if (!group) throw notFound('There is no such group in the directory.');
  const id = `group:${group.id}`;
  if (await rt.db.kysely.selectFrom('filter_policy').select('id').where('id', '=', id).executeTakeFirst()) throw conflict(`${group.name} already has a filtering policy.`, 'policy_exists');
  const from = await getPolicy(rt, input.copyOf ?? 'role:pupils');
  const { id: _id, kind: _kind, groupId: _g, name: _n, edited: _e, updatedAt: _u, ...settings } = from;
  await upsert(rt, actor, id, { name: group.name, groupId: group.id, priority: 100 }, { ...settings, priority: 100 }, null, meta, 'filtering.policy_created');
  return getPolicy(rt, id);
}

/** Removes a directory group's policy, or puts a role group's back to the profile's. */
export async function deletePolicy(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<void> {
  const policy = await getPolicy(rt, id);
  if (!policy.edited) return;
  const devices = await rt.db.kysely.selectFrom('filter_device').select('name').where('policy_id', '=', id).execute();
  if (policy.kind === 'group' && devices.length > 0) throw conflict(`Devices use this policy (${devices.slice(0, 3).map((d) => d.name).join(', ')}): give them another first.`, 'policy_in_use');
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.deleteFrom('filter_policy').where('id', '=', id).execute();
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action: policy.kind === 'group' ? 'filtering.policy_removed' : 'filtering.policy_reset', target: `filter_policy:${id}`, severity: 'notice', details: { name: policy.name } });
  }, meta);
}

/** The engine's input, leaving out names no list provides now (reported as warnings). */
export function toEngine(policies: PolicySummary[], categories: Array<{ id: string; kind: string }>): { policies: PolicyInput[]; warnings: string[] } {
  const kinds = new Map(categories.map((c) => [c.id, c.kind]));
  const warnings: string[] = [];
  const of = (kind: string) => categories.filter((c) => c.kind === kind).map((c) => c.id);
  const keep = (p: PolicySummary, ids: string[], kind: string, what: string) =>
    ids.filter((id) => {
      if (kinds.get(id) === kind) return true;
      warnings.push(`${p.name}: the ${what} “${id}” is not provided by any list in use`);
      return false;
    });
  const out = policies.map((p) => ({
    id: p.id,
    name: p.name,
    blockedCategories: keep(p, p.blockedCategories, 'category', 'category'),
    schedules: p.schedules.map((s) => ({ ...s, categories: keep(p, s.categories, 'category', 'scheduled category') })).filter((s) => s.categories.length > 0),
    allowLists: p.allowLists === 'all' ? of('allow') : keep(p, p.allowLists, 'allow', 'allow list'),
    blockLists: p.blockLists === 'all' ? of('block') : keep(p, p.blockLists, 'block', 'block list'),
    safeSearch: { search: p.safeSearch, youtube: p.youtube },
    defaultAction: p.defaultAction,
    downloadsAllowed: p.downloadsAllowed,
  }));
  return { policies: out, warnings: [...new Set(warnings)] };
}

/** A person's policy: their directory groups' (lowest priority number first), else their role group's. */
export function policyForPerson(role: Role, groupIds: string[], groupPolicies: Map<string, { id: string; priority: number; name: string }>): string {
  let best: { id: string; priority: number; name: string } | undefined;
  for (const g of groupIds) {
    const p = groupPolicies.get(g);
    if (p && (!best || p.priority < best.priority || (p.priority === best.priority && p.name < best.name))) best = p;
  }
  return best?.id ?? policyIdOfGroup(groupOf(role));
}
