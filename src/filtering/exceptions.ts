import { isIP } from 'node:net';
import { bumpGeneration } from './state.js';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { badRequest, conflict, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { FilterExceptionTable } from '../db/schema.js';
import type { DueItem } from '../dashboard/due.js';
import type { Runtime } from '../runtime.js';
import { ExceptionOverlay, type ExceptionInput, type ExceptionKind } from './engine/exceptions.js';
import { normaliseHost } from './engine/lists.js';

/**
 * Filter exceptions (issue 11): unblock requests decided (FI-13, FI-08 review), filtering turned off
 * for a person, group or device with a second person's approval (FI-07, FI-08), lesson allowances
 * by a class's teacher (FI-12), and device quarantine (IN-06). Every change is audited in the same
 * transaction; the filter service swaps the compiled overlay in at once and again at each expiry.
 * Illegal content is never opened by any of them (checked here, and again by the engine).
 */

export interface ExceptionSummary {
  id: string;
  kind: string;
  scope: string;
  subject: string | null;
  subjectName: string | null;
  targetKind: string | null;
  target: string | null;
  status: string;
  startsAt: string;
  endsAt: string | null;
  reason: string;
  requestId: string | null;
  incidentId: string | null;
  createdBy: string;
  decidedBy: string | null;
  decidedAt: string | null;
  endedBy: string | null;
  endedAt: string | null;
}

const summarise = (r: Selectable<FilterExceptionTable>): ExceptionSummary => ({
  id: r.id, kind: r.kind, scope: r.scope, subject: r.subject, subjectName: r.subject_name, targetKind: r.target_kind, target: r.target, status: r.status,
  startsAt: r.starts_at, endsAt: r.ends_at, reason: r.reason, requestId: r.request_id, incidentId: r.incident_id, createdBy: r.created_by_name,
  decidedBy: r.decided_by_name, decidedAt: r.decided_at, endedBy: r.ended_by_name, endedAt: r.ended_at,
});

const named = (actor: Actor): string => {
  if (!actor.id) throw forbidden('Only a named person can do this.');
  return actor.id;
};

/** Ask the filter service (if this runtime has one) to swap in the exceptions now. */
/**
 * After an exception changed: the identity counter tells every node sharing the database (each
 * reloads who is where and the exceptions at its next poll), and this node reloads now.
 */
async function changed(rt: Runtime): Promise<void> {
  const { filterServiceFor } = await import('./service.js');
  await bumpGeneration(rt.db.kysely, 'identity');
  await filterServiceFor(rt).changed();
}

/** Is this target illegal content (an illegal-list category, or a name on one)? */
async function illegal(rt: Runtime, targetKind: 'domain' | 'category', target: string): Promise<boolean> {
  const { filterServiceFor } = await import('./service.js');
  const service = filterServiceFor(rt);
  await service.ready();
  const snapshot = service.snapshot();
  if (targetKind === 'category') return snapshot.categories.some((c) => c.id === target && (c.kind === 'illegal' || c.kind === 'fallback'));
  const explained = snapshot.explain(target, 0, rt.clock.now().getTime());
  return explained.verdict.rule === 'illegal' || explained.verdict.rule === 'fallback' || explained.matches.some((m) => m.kind === 'illegal' || m.kind === 'fallback');
}

async function checkedTarget(rt: Runtime, t: { targetKind: 'domain' | 'category'; target: string }): Promise<{ targetKind: 'domain' | 'category'; target: string }> {
  let value = t.target;
  if (t.targetKind === 'domain') {
    const host = normaliseHost(value.replace(/^[a-z]+:\/\//i, '').split('/')[0]!);
    if (!host) throw badRequest('That is not a web address.');
    value = host;
  }
  if (await illegal(rt, t.targetKind, value)) throw badRequest('Illegal content is blocked for everyone and can never be opened.', { code: 'illegal' });
  return { targetKind: t.targetKind, target: value };
}

// --- Unblock requests from the block page (FI-13, FI-08) ---------------------------------------------

export const decideRequestSchema = z
  .object({
    decision: z.enum(['allow', 'refuse'], { error: 'must be allow or refuse' }),
    scope: z.enum(['person', 'group', 'everyone'], { error: 'must be person, group or everyone' }).optional(),
    groupId: z.string().max(100).optional(),
    minutes: z.number().int().min(5, 'at least 5 minutes').max(60 * 24 * 366, 'at most a year').optional(),
    note: z.string().trim().max(1000).optional(),
  })
  .strict();

export async function decideUnblockRequest(rt: Runtime, actor: Actor, requestId: string, input: z.infer<typeof decideRequestSchema>): Promise<{ status: string; exception: ExceptionSummary | null }> {
  const me = named(actor);
  const req = await rt.db.kysely.selectFrom('filter_request').selectAll().where('id', '=', requestId).executeTakeFirst();
  if (!req || req.kind !== 'request') throw notFound('There is no such request.');
  if (req.account_id !== null && req.account_id === me) throw forbidden('You cannot decide your own request.');
  if (req.status !== 'open') throw conflict('This request has already been decided.');
  let exceptionId: string | null = null;
  if (input.decision === 'refuse' && (!input.note || input.note.length < 3)) throw badRequest('Give the reason for refusing.', { field: 'note' });
  if (input.decision === 'allow' && (!input.scope || !input.minutes)) throw badRequest('Say who it is allowed for and for how long.', { field: input.scope ? 'minutes' : 'scope' });
  if (input.decision === 'allow') {
    const minutes = input.minutes!;
    const t = await checkedTarget(rt, { targetKind: 'domain', target: req.host });
    let scope: string = input.scope!;
    let subject: string | null = null;
    let subjectName: string | null = null;
    if (input.scope === 'person') {
      if (!req.account_id) throw badRequest('The request was made by someone not signed in: allow it for a group or everyone.');
      subject = req.account_id;
      subjectName = req.username;
    } else if (input.scope === 'group') {
      const g = input.groupId ? await rt.db.kysely.selectFrom('directory_group').select(['id', 'name']).where('id', '=', input.groupId).executeTakeFirst() : undefined;
      if (!g) throw badRequest('Choose a group.');
      subject = g.id;
      subjectName = g.name;
    } else scope = 'everyone';
    exceptionId = newId();
    const now = rt.clock.now();
    await rt.trail.transaction(actor, async (ctx) => {
      const claimed = await ctx.db.updateTable('filter_request').set({ status: 'approved', decided_at: now.toISOString(), decided_by: actor.name, decision_note: input.note ?? null }).where('id', '=', requestId).where('status', '=', 'open').executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) throw conflict('This request has already been decided.');
      await ctx.db.insertInto('filter_exception').values({
        id: exceptionId!, kind: 'allow', scope, subject, subject_name: subjectName, target_kind: t.targetKind, target: t.target, status: 'active', starts_at: now.toISOString(),
        ends_at: new Date(now.getTime() + minutes * 60_000).toISOString(), reason: input.note || req.reason, request_id: requestId, incident_id: null,
        created_by: me, created_by_name: actor.name, created_at: now.toISOString(), decided_by: me, decided_by_name: actor.name, decided_at: now.toISOString(), ended_by: null, ended_by_name: null, ended_at: null,
      }).execute();
      await ctx.audit.record({ action: 'filtering.request_allowed', target: `filter_request:${requestId}`, severity: 'notice', details: { host: t.target, scope, subject: subjectName, minutes, exception: exceptionId } });
    });
    await changed(rt);
  } else {
    await rt.trail.transaction(actor, async (ctx) => {
      const claimed = await ctx.db.updateTable('filter_request').set({ status: 'refused', decided_at: rt.clock.now().toISOString(), decided_by: actor.name, decision_note: input.note ?? null }).where('id', '=', requestId).where('status', '=', 'open').executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) throw conflict('This request has already been decided.');
      await ctx.audit.record({ action: 'filtering.request_refused', target: `filter_request:${requestId}`, severity: 'notice', details: { host: req.host } });
    });
  }
  const exception = exceptionId ? summarise(await rt.db.kysely.selectFrom('filter_exception').selectAll().where('id', '=', exceptionId).executeTakeFirstOrThrow()) : null;
  return { status: input.decision === 'allow' ? 'approved' : 'refused', exception };
}

/** What the requester sees (from the link the block page gives them): the outcome, never who else asked. */
export async function requestOutcome(rt: Runtime, requestId: string): Promise<{ id: string; host: string; status: string; decidedAt: string | null; note: string | null; allowedUntil: string | null }> {
  const req = await rt.db.kysely.selectFrom('filter_request').select(['id', 'host', 'status', 'decided_at', 'decision_note', 'kind']).where('id', '=', requestId).executeTakeFirst();
  if (!req) throw notFound('There is no such request.');
  const ex = await rt.db.kysely.selectFrom('filter_exception').select(['ends_at', 'status']).where('request_id', '=', requestId).executeTakeFirst();
  return { id: req.id, host: req.host, status: req.status, decidedAt: req.decided_at, note: req.decision_note, allowedUntil: ex?.ends_at ?? null };
}

/** FI-08: the decisions, each with who reviewed it and when. */
export async function decisionLog(rt: Runtime): Promise<Array<{ id: string; host: string; status: string; username: string | null; reason: string; decidedBy: string | null; decidedAt: string | null; note: string | null; reviewedBy: string | null; reviewedAt: string | null }>> {
  const rows = await rt.db.kysely
    .selectFrom('filter_request as r')
    .leftJoin('filter_request_review as v', 'v.request_id', 'r.id')
    .select(['r.id', 'r.host', 'r.status', 'r.username', 'r.reason', 'r.decided_by', 'r.decided_at', 'r.decision_note', 'v.reviewed_by_name', 'v.reviewed_at'])
    .where('r.decided_at', 'is not', null)
    .orderBy('r.decided_at', 'desc')
    .limit(500)
    .execute();
  return rows.map((r) => ({ id: r.id, host: r.host, status: r.status, username: r.username, reason: r.reason, decidedBy: r.decided_by, decidedAt: r.decided_at, note: r.decision_note, reviewedBy: r.reviewed_by_name, reviewedAt: r.reviewed_at }));
}

export async function reviewDecision(rt: Runtime, actor: Actor, requestId: string, note: string | null): Promise<void> {
  const me = named(actor);
  const req = await rt.db.kysely.selectFrom('filter_request').select(['id', 'decided_by', 'decided_at']).where('id', '=', requestId).executeTakeFirst();
  if (!req || !req.decided_at) throw notFound('There is no such decision.');
  if (req.decided_by === actor.name) throw forbidden('A decision is reviewed by someone other than who made it.');
  await rt.trail.transaction(actor, async (ctx) => {
    const done = await ctx.db.selectFrom('filter_request_review').select('request_id').where('request_id', '=', requestId).executeTakeFirst();
    if (done) throw conflict('This decision has already been reviewed.');
    await ctx.db.insertInto('filter_request_review').values({ request_id: requestId, reviewed_by: me, reviewed_by_name: actor.name, reviewed_at: ctx.clock.now().toISOString(), note }).execute();
    await ctx.audit.record({ action: 'filtering.decision_reviewed', target: `filter_request:${requestId}`, severity: 'info' });
  });
}

// --- Lesson allowances (FI-12) --------------------------------------------------------------------------

export const lessonAllowanceSchema = z
  .object({
    groupId: z.string().min(1, 'choose a class').max(100),
    targetKind: z.enum(['domain', 'category'], { error: 'must be domain or category' }),
    target: z.string().trim().min(1, 'is required').max(253),
    minutes: z.number().int().min(1, 'at least a minute'),
    reason: z.string().trim().min(3, 'say what the lesson needs').max(500),
  })
  .strict();

export async function openForClass(rt: Runtime, actor: Actor, input: z.infer<typeof lessonAllowanceSchema>): Promise<ExceptionSummary> {
  const me = named(actor);
  const max = rt.profile.governance.lessonAllowanceMaxMinutes;
  if (input.minutes > max) throw badRequest(`A lesson allowance lasts at most ${max} minutes.`, { code: 'too_long' });
  const teaches = await rt.db.kysely.selectFrom('group_member as m').innerJoin('directory_group as g', 'g.id', 'm.group_id').select(['g.id', 'g.name']).where('m.group_id', '=', input.groupId).where('m.account_id', '=', me).where('m.member_role', '=', 'teacher').executeTakeFirst();
  if (!teaches) throw forbidden('You can open sites only for a class you teach.');
  const t = await checkedTarget(rt, input);
  const now = rt.clock.now();
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('filter_exception').values({
      id, kind: 'lesson', scope: 'group', subject: teaches.id, subject_name: teaches.name, target_kind: t.targetKind, target: t.target, status: 'active', starts_at: now.toISOString(),
      ends_at: new Date(now.getTime() + input.minutes * 60_000).toISOString(), reason: input.reason, request_id: null, incident_id: null,
      created_by: me, created_by_name: actor.name, created_at: now.toISOString(), decided_by: me, decided_by_name: actor.name, decided_at: now.toISOString(), ended_by: null, ended_by_name: null, ended_at: null,
    }).execute();
    await ctx.audit.record({ action: 'filtering.lesson_allowance_opened', target: `filter_exception:${id}`, severity: 'notice', details: { group: teaches.name, [t.targetKind]: t.target, minutes: input.minutes } });
  });
  await changed(rt);
  return getException(rt, id);
}

// --- Filtering turned off (FI-07, FI-08) -----------------------------------------------------------------

export const filterOffSchema = z.object({
  scope: z.enum(['person', 'group', 'address']),
  subject: z.string().trim().min(1, 'is required').max(100),
  hours: z.number().int().min(1, 'at least an hour'),
  reason: z.string().trim().min(10, 'give the reason (at least a few words)').max(1000),
}).strict();

export async function requestFilterOff(rt: Runtime, actor: Actor, input: z.infer<typeof filterOffSchema>): Promise<ExceptionSummary> {
  const me = named(actor);
  const max = rt.profile.governance.filterOffMaxHours;
  if (input.hours > max) throw badRequest(`Filtering can be turned off for at most ${max} hours.`, { code: 'too_long' });
  // A person by id or username, a group by id or name (the console's form gives names); stored by id.
  let subjectName: string | null = null;
  let subject = input.subject;
  if (input.scope === 'person') {
    const row = await rt.db.kysely.selectFrom('account').select(['id', 'username']).where((eb) => eb.or([eb('id', '=', input.subject), eb('username', '=', input.subject.toLowerCase())])).executeTakeFirst();
    if (row) [subject, subjectName] = [row.id, row.username];
  } else if (input.scope === 'group') {
    const rows = await rt.db.kysely.selectFrom('directory_group').select(['id', 'name']).where((eb) => eb.or([eb('id', '=', input.subject), eb('name', '=', input.subject)])).limit(2).execute();
    if (rows.length === 2) throw badRequest('More than one group has that name; choose it by id.');
    if (rows[0]) [subject, subjectName] = [rows[0].id, rows[0].name];
  } else subjectName = isIP(input.subject) ? input.subject : null;
  if (!subjectName) throw badRequest('There is no such person, group or address.');
  const id = newId();
  const now = rt.clock.now();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('filter_exception').values({
      id, kind: 'filter-off', scope: input.scope, subject, subject_name: subjectName, target_kind: null, target: null, status: 'pending', starts_at: now.toISOString(),
      ends_at: new Date(now.getTime() + input.hours * 3_600_000).toISOString(), reason: input.reason, request_id: null, incident_id: null,
      created_by: me, created_by_name: actor.name, created_at: now.toISOString(), decided_by: null, decided_by_name: null, decided_at: null, ended_by: null, ended_by_name: null, ended_at: null,
    }).execute();
    await ctx.audit.record({ action: 'filtering.filter_off_requested', target: `filter_exception:${id}`, severity: 'warning', details: { scope: input.scope, subject: subjectName, hours: input.hours } });
  });
  return getException(rt, id);
}

/** A second person among the profile's change approvers approves; it runs for the hours asked from now, and ends by itself. */
export async function approveFilterOff(rt: Runtime, actor: Actor, id: string): Promise<ExceptionSummary> {
  const me = named(actor);
  if (!actor.role || !rt.profile.governance.changeApprovers.includes(actor.role)) throw forbidden('Only the school’s change approvers can approve turning filtering off.');
  const row = await rt.db.kysely.selectFrom('filter_exception').selectAll().where('id', '=', id).where('kind', '=', 'filter-off').executeTakeFirst();
  if (!row) throw notFound('There is no such request.');
  if (row.created_by === me) throw forbidden('The person who asked cannot approve it: a second person must.');
  const now = rt.clock.now();
  const hours = Math.round((Date.parse(row.ends_at!) - Date.parse(row.starts_at)) / 3_600_000);
  await rt.trail.transaction(actor, async (ctx) => {
    const done = await ctx.db.updateTable('filter_exception').set({ status: 'active', decided_by: me, decided_by_name: actor.name, decided_at: now.toISOString(), starts_at: now.toISOString(), ends_at: new Date(now.getTime() + hours * 3_600_000).toISOString() }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('This request has already been decided.');
    await ctx.audit.record({ action: 'filtering.filter_off_approved', target: `filter_exception:${id}`, severity: 'warning', details: { subject: row.subject_name, hours } });
  });
  await changed(rt);
  return getException(rt, id);
}

// --- Device quarantine (IN-06) ----------------------------------------------------------------------------

export const quarantineSchema = z.object({
  address: z.string().trim().max(45).optional(),
  mac: z.string().trim().regex(/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i, 'must be a MAC like 00:11:22:33:44:55').optional(),
  reason: z.string().trim().min(3, 'give the reason').max(1000),
  incidentId: z.string().max(100).nullable().optional(),
}).strict().refine((v) => Boolean(v.address) !== Boolean(v.mac), 'give an address or a MAC (one of them)');

/** One action: the device is blocked everywhere (resolver and proxy at once) except the remediation sites. For incidents too. */
export async function quarantineDevice(rt: Runtime, actor: Actor, input: z.infer<typeof quarantineSchema>): Promise<ExceptionSummary> {
  const me = named(actor);
  const parsed = quarantineSchema.parse(input);
  if (parsed.address && !isIP(parsed.address)) throw badRequest('That is not an IP address.');
  const scope = parsed.address ? 'address' : 'mac';
  const subject = parsed.address ?? parsed.mac!.toLowerCase().replace(/-/g, ':');
  const id = newId();
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    const already = await ctx.db.selectFrom('filter_exception').select('id').where('kind', '=', 'quarantine').where('status', '=', 'active').where('subject', '=', subject).executeTakeFirst();
    if (already) throw conflict('This device is already quarantined.');
    await ctx.db.insertInto('filter_exception').values({
      id, kind: 'quarantine', scope, subject, subject_name: subject, target_kind: null, target: null, status: 'active', starts_at: now, ends_at: null, reason: parsed.reason, request_id: null, incident_id: parsed.incidentId ?? null,
      created_by: me, created_by_name: actor.name, created_at: now, decided_by: me, decided_by_name: actor.name, decided_at: now, ended_by: null, ended_by_name: null, ended_at: null,
    }).execute();
    await ctx.audit.record({ action: 'filtering.device_quarantined', target: `filter_exception:${id}`, severity: 'high', details: { [scope]: subject, incident: parsed.incidentId ?? null } });
  });
  await changed(rt);
  return getException(rt, id);
}

/** Releases a quarantine (or ends any exception early), by a named person, audited. */
export async function releaseDevice(rt: Runtime, actor: Actor, id: string, note?: string): Promise<ExceptionSummary> {
  const me = named(actor);
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('filter_exception').select(['kind', 'subject_name']).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such exception.');
    const done = await ctx.db.updateTable('filter_exception').set({ status: 'ended', ended_by: me, ended_by_name: actor.name, ended_at: now }).where('id', '=', id).where('status', 'in', ['active', 'pending']).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('This has already ended.');
    await ctx.audit.record({ action: row.kind === 'quarantine' ? 'filtering.device_released' : 'filtering.exception_ended', target: `filter_exception:${id}`, severity: 'notice', details: { subject: row.subject_name, note: note ?? null } });
  });
  await changed(rt);
  return getException(rt, id);
}

export const endException = releaseDevice;

// --- Reading and compiling ----------------------------------------------------------------------------------

export async function getException(rt: Runtime, id: string): Promise<ExceptionSummary> {
  const row = await rt.db.kysely.selectFrom('filter_exception').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such exception.');
  return summarise(row);
}

export async function listExceptions(rt: Runtime, query: { kind?: string | undefined; current?: boolean | undefined } = {}): Promise<ExceptionSummary[]> {
  let q = rt.db.kysely.selectFrom('filter_exception').selectAll();
  if (query.kind) q = q.where('kind', '=', query.kind);
  if (query.current) q = q.where('status', 'in', ['active', 'pending']).where((eb) => eb.or([eb('ends_at', 'is', null), eb('ends_at', '>', rt.clock.now().toISOString())]));
  return (await q.orderBy('created_at', 'desc').limit(500).execute()).map(summarise);
}

/** The active exceptions as the engine needs them: groups expanded to their members, MACs to registered devices. */
export async function loadExceptionOverlay(rt: Runtime): Promise<ExceptionOverlay> {
  const now = rt.clock.now();
  const rows = await rt.db.kysely.selectFrom('filter_exception').selectAll().where('status', '=', 'active').where((eb) => eb.or([eb('ends_at', 'is', null), eb('ends_at', '>', now.toISOString())])).execute();
  const inputs: ExceptionInput[] = [];
  for (const r of rows) {
    const e: ExceptionInput = { id: r.id, kind: r.kind as ExceptionKind, everyone: r.scope === 'everyone', personIds: [], deviceIds: [], addresses: [], targetKind: r.target_kind as 'domain' | 'category' | null, target: r.target, startsAt: Date.parse(r.starts_at), endsAt: r.ends_at ? Date.parse(r.ends_at) : null, label: labelOf(r) };
    if (r.scope === 'person' && r.subject) e.personIds.push(r.subject);
    else if (r.scope === 'group' && r.subject) e.personIds.push(...(await rt.db.kysely.selectFrom('group_member').select('account_id').where('group_id', '=', r.subject).execute()).map((m) => m.account_id));
    else if (r.scope === 'address' && r.subject) e.addresses.push(r.subject);
    else if (r.scope === 'device' && r.subject) e.deviceIds.push(r.subject);
    else if (r.scope === 'mac' && r.subject) {
      const devices = await rt.db.kysely.selectFrom('filter_device').select(['id', 'mac', 'address']).where('mac', 'is not', null).execute();
      for (const d of devices) if (d.mac!.toLowerCase().replace(/-/g, ':') === r.subject) {
        e.deviceIds.push(d.id);
        if (d.address && !d.address.includes('/')) e.addresses.push(d.address);
      }
    }
    inputs.push(e);
  }
  return new ExceptionOverlay(inputs, rt.profile.quarantine.remediationSites, now.getTime());
}

function labelOf(r: Selectable<FilterExceptionTable>): string {
  const who = r.scope === 'everyone' ? 'everyone' : r.subject_name ?? r.subject ?? '';
  if (r.kind === 'quarantine') return `quarantined by ${r.created_by_name}`;
  if (r.kind === 'filter-off') return `filtering turned off for ${who}, approved by ${r.decided_by_name ?? '—'}`;
  if (r.kind === 'lesson') return `opened for ${who} for a lesson by ${r.created_by_name}`;
  return `unblocked for ${who} by ${r.decided_by_name ?? r.created_by_name}`;
}

/** "Needs attention": unblock requests waiting, filter-off waiting for a second approver, devices in quarantine. */
export async function exceptionsDue(rt: Runtime): Promise<DueItem[]> {
  const items: DueItem[] = [];
  const open = await rt.db.kysely.selectFrom('filter_request').select('created_at').where('kind', '=', 'request').where('status', '=', 'open').orderBy('created_at').execute();
  if (open.length > 0) items.push({ kind: 'unblock_requests', title: `${open.length} unblock request${open.length === 1 ? '' : 's'} from the block page waiting for a decision`, dueAt: open[0]!.created_at, overdue: false, href: '/filtering/decide', requirement: 'FI-13', permission: 'exceptions.decide' });
  const pending = await rt.db.kysely.selectFrom('filter_exception').select(['subject_name', 'created_at']).where('kind', '=', 'filter-off').where('status', '=', 'pending').execute();
  for (const p of pending) items.push({ kind: 'filter_off_approval', title: `Turning filtering off for ${p.subject_name ?? '?'} is waiting for a second approver`, dueAt: p.created_at, overdue: false, href: '/filtering/exceptions', requirement: 'FI-07', permission: 'filter_off.approve' });
  const quarantined = await rt.db.kysely.selectFrom('filter_exception').select(['subject_name', 'starts_at']).where('kind', '=', 'quarantine').where('status', '=', 'active').execute();
  for (const q of quarantined) items.push({ kind: 'device_quarantined', title: `Device ${q.subject_name ?? '?'} is quarantined`, detail: 'Release it once it has been cleaned (Filtering → Exceptions).', dueAt: null, overdue: false, href: '/filtering/exceptions', requirement: 'IN-06', permission: 'exceptions.read' });
  return items;
}
