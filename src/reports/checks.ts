import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem } from '../dashboard/due.js';
import type { FilteringCheckTable } from '../db/schema.js';
import { listPolicies } from '../filtering/policies.js';
import { filterServiceFor } from '../filtering/service.js';
import type { Runtime } from '../runtime.js';
import { decideSamples, probeEnforcementPoints, sampleAddresses, type CheckResultItem } from './guided-check.js';
import { periodBounds, periodOf } from './periods.js';

/**
 * The register of filtering and monitoring checks (GV-03, AU-04; P4 9.18-9.20): when, who, from
 * which device and location, for which user group, what was tested, the result and the resulting
 * actions. A check is either guided (Gatehouse tries real addresses of each UKSIC category through
 * the live filter for the group, person or device, and the running resolver and proxy) or done by
 * hand and recorded. Records are never deleted; the actions can be added afterwards (audited).
 */

type Meta = { ip: string | null; requestId: string | null };

const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);

export const perspectiveSchema = z.enum(['safeguarding', 'it'], { error: 'must be safeguarding or it' });

const common = {
  device: text('which device the check was made from (e.g. “Year 5 iPad 12”, “ICT suite PC 4”)', 200),
  location: text('where (e.g. “Library”, “Block B Wi-Fi”, “off site at home”)', 200),
  perspective: perspectiveSchema,
  actions: z.string().trim().max(4000, 'must be at most 4000 characters').default(''),
};

export const manualCheckSchema = z
  .object({
    ...common,
    userGroup: text('which user group was checked (e.g. pupils, staff, guests)', 200),
    what: text('what was tested', 4000),
    outcome: z.enum(['pass', 'fail'], { error: 'must be pass or fail' }),
    checkedAt: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
  })
  .strict();

export const guidedCheckSchema = z
  .object({
    ...common,
    /** who the check is for: a filtering policy (a group), a person (username), or a device's address */
    target: z.union([
      z.object({ policy: z.string().trim().min(1).max(200) }).strict(),
      z.object({ person: z.string().trim().min(1).max(100) }).strict(),
      z.object({ ip: z.ipv4({ message: 'must be an IPv4 or IPv6 address' }).or(z.ipv6({ message: 'must be an IPv4 or IPv6 address' })) }).strict(),
    ], { error: 'say which group (policy), person or device address to check' }),
    /** addresses of the checker's own, each expected blocked or allowed */
    addresses: z
      .array(z.object({ url: z.string().trim().min(1).max(2000), expect: z.enum(['block', 'allow']) }).strict())
      .max(20, 'at most 20 addresses of your own')
      .default([]),
  })
  .strict();

export const actionsSchema = z.object({ actions: text('what will be done', 4000) }).strict();

export interface CheckSummary {
  id: string;
  kind: 'guided' | 'manual';
  checkedAt: string;
  checkedBy: string;
  perspective: string;
  device: string;
  location: string;
  userGroup: string;
  policyId: string | null;
  what: string;
  results: CheckResultItem[] | null;
  passed: number;
  failed: number;
  outcome: 'pass' | 'fail';
  actions: string;
}

const summarise = (r: Selectable<FilteringCheckTable>): CheckSummary => ({
  id: r.id,
  kind: r.kind as CheckSummary['kind'],
  checkedAt: r.checked_at,
  checkedBy: r.checked_by_name,
  perspective: r.perspective,
  device: r.device,
  location: r.location,
  userGroup: r.user_group,
  policyId: r.policy_id,
  what: r.what,
  results: r.results ? (JSON.parse(r.results) as CheckResultItem[]) : null,
  passed: r.passed,
  failed: r.failed,
  outcome: r.outcome as CheckSummary['outcome'],
  actions: r.actions,
});

export async function listChecks(rt: Runtime, query: { from?: string | undefined; to?: string | undefined; limit?: number | undefined } = {}): Promise<CheckSummary[]> {
  let q = rt.db.kysely.selectFrom('filtering_check').selectAll();
  if (query.from) q = q.where('checked_at', '>=', query.from);
  if (query.to) q = q.where('checked_at', '<', query.to);
  return (await q.orderBy('checked_at', 'desc').orderBy('id', 'desc').limit(query.limit ?? 500).execute()).map(summarise);
}

export async function getCheck(rt: Runtime, id: string): Promise<CheckSummary> {
  const row = await rt.db.kysely.selectFrom('filtering_check').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such check.');
  return summarise(row);
}

async function store(rt: Runtime, actor: Actor, row: FilteringCheckTable, meta: Meta): Promise<CheckSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('filtering_check').values(row).execute();
    await ctx.audit.record({
      action: 'filtering.check_recorded',
      target: `filtering_check:${row.id}`,
      severity: row.outcome === 'fail' ? 'notice' : 'info',
      details: { kind: row.kind, perspective: row.perspective, device: row.device, location: row.location, userGroup: row.user_group, outcome: row.outcome, passed: row.passed, failed: row.failed },
    });
  }, meta);
  return getCheck(rt, row.id);
}

/** Who made the check, by the name people know them by (the register is read by governors). */
export async function checker(rt: Runtime, actor: Actor): Promise<{ id: string; name: string }> {
  if (!actor.id) throw new GatehouseError('forbidden', 403, 'A check is recorded by a named person.');
  const account = await rt.db.kysely.selectFrom('account').select('display_name').where('id', '=', actor.id).executeTakeFirst();
  return { id: actor.id, name: account?.display_name ?? actor.name };
}

export async function recordManualCheck(rt: Runtime, actor: Actor, input: z.infer<typeof manualCheckSchema>, meta: Meta): Promise<CheckSummary> {
  const who = await checker(rt, actor);
  const now = rt.clock.now();
  const at = input.checkedAt ? new Date(input.checkedAt) : now;
  if (at.getTime() > now.getTime() + 5 * 60_000) throw new GatehouseError('validation_failed', 400, 'A check cannot be recorded in the future.');
  return store(rt, actor, {
    id: newId(),
    kind: 'manual',
    checked_at: at.toISOString(),
    checked_by: who.id,
    checked_by_name: who.name,
    perspective: input.perspective,
    device: input.device,
    location: input.location,
    user_group: input.userGroup,
    policy_id: null,
    what: input.what,
    results: null,
    passed: input.outcome === 'pass' ? 1 : 0,
    failed: input.outcome === 'fail' ? 1 : 0,
    outcome: input.outcome,
    actions: input.actions,
  }, meta);
}

/** Runs the guided check through the live filter and records it with its results. */
export async function runGuidedCheck(rt: Runtime, actor: Actor, input: z.infer<typeof guidedCheckSchema>, meta: Meta): Promise<CheckSummary> {
  const who = await checker(rt, actor);
  const service = filterServiceFor(rt);
  await service.ready();
  const target = input.target;
  let personId: string | undefined;
  let groupLabel: string;
  if ('person' in target) {
    const person = await rt.db.kysely.selectFrom('account').select(['id', 'username', 'display_name']).where('username', '=', target.person.toLowerCase()).executeTakeFirst();
    if (!person) throw new GatehouseError('validation_failed', 400, `There is no person ${target.person}.`);
    personId = person.id;
    groupLabel = `${person.display_name} (${person.username})`;
  } else if ('ip' in target) {
    groupLabel = `the device at ${target.ip}`;
  } else groupLabel = '';
  const { policyId, identity } = service.policyFor({ policyId: 'policy' in target ? target.policy : undefined, personId, ip: 'ip' in target ? target.ip : undefined });
  const policy = (await listPolicies(rt)).find((p) => p.id === policyId);
  const policyName = policy?.name ?? policyId;
  if ('policy' in target) groupLabel = policyName;
  else if (identity?.username) groupLabel = `${groupLabel}, identified as ${identity.username}`;
  const now = rt.clock.now();
  const samples = await sampleAddresses(rt, service);
  const items = decideSamples(service, policyId, now, samples, input.addresses);
  const candidates = [...samples.values()].flat().map((s) => s.host);
  items.push(...(await probeEnforcementPoints(rt, service, now, candidates)));
  const passed = items.filter((i) => i.passed).length;
  const failed = items.length - passed;
  const tried = items.filter((i) => i.url !== null).length;
  const what = `Guided check for ${groupLabel} (policy “${policyName}”): ${tried} addresses across the UK Safer Internet Centre’s categories${input.addresses.length ? ` and ${input.addresses.length} of the checker’s own` : ''}, tried through the live filter${items.some((i) => i.category === 'dns' || i.category === 'proxy') ? ', the running DNS resolver and proxy' : ''}.`;
  return store(rt, actor, {
    id: newId(),
    kind: 'guided',
    checked_at: now.toISOString(),
    checked_by: who.id,
    checked_by_name: who.name,
    perspective: input.perspective,
    device: input.device,
    location: input.location,
    user_group: groupLabel,
    policy_id: policyId,
    what,
    results: JSON.stringify(items),
    passed,
    failed,
    outcome: failed === 0 ? 'pass' : 'fail',
    actions: input.actions,
  }, meta);
}

/** The resulting actions, added or changed after the check (P4 9.20), audited with the previous text. */
export async function setCheckActions(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof actionsSchema>, meta: Meta): Promise<CheckSummary> {
  await checker(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('filtering_check').select(['id', 'actions']).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such check.');
    await ctx.db.updateTable('filtering_check').set({ actions: input.actions }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'filtering.check_actions_recorded', target: `filtering_check:${id}`, severity: 'info', details: { previous: row.actions, actions: input.actions } });
  }, meta);
  return getCheck(rt, id);
}

/** The overview: no check yet this term, or a failed check with no action recorded. */
export async function checksDue(rt: Runtime): Promise<DueItem[]> {
  const now = rt.clock.now();
  const items: DueItem[] = [];
  const base = { href: '/reports/checks', requirement: 'GV-03', permission: 'checks.read' as const };
  const period = periodOf(rt.profile, now);
  if (period) {
    const { start, end } = periodBounds(period, rt.profile.timeZone);
    const inTerm = await rt.db.kysely.selectFrom('filtering_check').select('id').where('checked_at', '>=', start.toISOString()).where('checked_at', '<', end.toISOString()).limit(1).executeTakeFirst();
    if (!inTerm) items.push({ ...base, kind: 'filtering_check_due', title: `No check of the filtering and monitoring has been recorded this term (${period.name})`, detail: 'Check from pupils’, staff and guests’ devices in different places, and record who, what and the result (P4 9.18–9.20).', dueAt: end.toISOString(), overdue: false });
  }
  const open = await rt.db.kysely.selectFrom('filtering_check').select(['id', 'checked_at', 'user_group']).where('outcome', '=', 'fail').where('actions', '=', '').orderBy('checked_at', 'desc').limit(5).execute();
  for (const check of open) {
    items.push({ ...base, requirement: 'AU-04', kind: 'filtering_check_no_action', href: `/reports/checks/${check.id}`, title: `A filtering check for ${check.user_group} found problems and no action is recorded`, dueAt: check.checked_at, overdue: true });
  }
  return items;
}
