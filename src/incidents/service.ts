import { csvField } from '../core/csv.js';
import { randomBytes } from 'node:crypto';
import type { Selectable, Transaction } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { systemActor } from '../core/context.js';
import { conflict, GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { DueItem } from '../dashboard/due.js';
import type { IncidentEventTable, IncidentTable, Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { categories, categoryLabels, mayRead, readableCategories, readableConcernKinds, type Category } from './access.js';

/**
 * Incidents and breaches (issue 11: IN-01..IN-07, MO-03). Anyone reports a concern (a reference is
 * all they get back); staff record incidents by hand or from an alert; the register keeps people and
 * devices involved, containment, cause, actions, policy updates and outcome, with an append-only
 * timeline (each entry audited in the same transaction). A personal-data breach runs a 72-hour clock
 * from awareness (UK GDPR Art 33(1)), reminds the DPO at 24, 48 and 66 hours, records the ICO decision
 * and is listed in the Art 33(5) breach record. Cyber incidents record the report to Action Fraud or
 * the NCSC. Who reads which category: access.ts.
 */

type Meta = { ip: string | null; requestId: string | null };

/** UK GDPR Art 33(1): without undue delay and, where feasible, within 72 hours of awareness. */
export const BREACH_HOURS = 72;
/** When the DPO is reminded, in hours after awareness, while no ICO decision is recorded. */
export const REMINDER_MARKS = [24, 48, 66] as const;
const HOUR = 3_600_000;

const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);
const optionalText = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`).default('');
const when = z.iso.datetime({ offset: true, message: 'must be a date and time' });

export const categorySchema = z.enum(categories, { error: `must be one of ${categories.join(', ')}` });

// ---------------------------------------------------------------- concerns (IN-01, AC-04)

export const concernSchema = z
  .object({
    kind: z.enum(['online_safety', 'technical'], { error: 'say whether it is an online-safety or a technical concern' }),
    details: text('what happened', 4000),
    /** blank: anonymous */
    name: z.string().trim().max(100, 'must be at most 100 characters').optional(),
    source: z.enum(['sign_in', 'block_page', 'console']).default('sign_in'),
    blockedHost: z.string().trim().max(300).optional(),
  })
  .strict();

function reference(prefix: string): string {
  // 8 characters of Crockford base32: unguessable enough that a reference tells nothing about others
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  return `${prefix}-${[...randomBytes(8)].map((b) => alphabet[b % 32]).join('')}`;
}

/** Where notices go: the named contact for the role (GV-04), and active accounts holding the role. */
async function recipients(rt: Runtime, contact: 'dsl' | 'dpo' | 'it_provider', role: 'dsl' | 'dpo' | 'administrator'): Promise<string[]> {
  const named = await rt.db.kysely.selectFrom('school_contact').select('email').where('role', '=', contact).executeTakeFirst();
  const accounts = await rt.db.kysely.selectFrom('account').select('email').where('role', '=', role).where('status', '=', 'active').where('email', 'is not', null).execute();
  return [...new Set([named?.email, ...accounts.map((a) => a.email)].filter((e): e is string => !!e))];
}

/**
 * Stores a concern and tells the DSL (online safety) or the IT lead (technical) by e-mail. The
 * reporter gets a reference and nothing else, whatever happens next (no echo of their text, no
 * names of who was told, the same answer whether or not mail went out).
 */
export async function reportConcern(rt: Runtime, input: z.infer<typeof concernSchema>, meta: Meta): Promise<{ reference: string }> {
  const id = newId();
  const ref = reference('C');
  const now = rt.clock.now().toISOString();
  const name = input.name?.trim() ? input.name.trim() : null;
  await rt.trail.transaction(systemActor('concern-form'), async (ctx) => {
    await ctx.db
      .insertInto('incident_concern')
      .values({ id, reference: ref, kind: input.kind, source: input.source, reporter_name: name, details: input.details, blocked_host: input.blockedHost?.trim() || null, created_at: now, status: 'new', incident_id: null })
      .execute();
    // the audit trail says that a concern came in, never what it says or who sent it
    await ctx.audit.record({ action: 'incident.concern_reported', target: `incident_concern:${id}`, severity: 'notice', details: { reference: ref, kind: input.kind, source: input.source, anonymous: name === null } });
  }, meta);
  void notifyConcern(rt, id, ref, input.kind, input.source).catch((error: unknown) => rt.logger.error({ err: error }, 'concern notice failed'));
  return { reference: ref };
}

async function notifyConcern(rt: Runtime, id: string, ref: string, kind: string, source: string): Promise<void> {
  const to = kind === 'online_safety' ? await recipients(rt, 'dsl', 'dsl') : [...new Set([...(await recipients(rt, 'it_provider', 'administrator')), ...(await recipients(rt, 'dsl', 'dsl'))])];
  if (to.length === 0 || !rt.mailer.configured) return;
  const what = kind === 'online_safety' ? 'an online-safety concern' : 'a technical concern';
  const result = await rt.mailer.send({
    to: to.join(', '),
    subject: `New concern ${ref} reported in Gatehouse`,
    // the details stay in Gatehouse, behind sign-in: a mailbox is not the place for them
    text: `Someone has reported ${what} (${source.replace('_', ' ')}), reference ${ref}.\n\nPlease sign in to Gatehouse and open Incidents → Concerns to read it and take it up.\n\n— Gatehouse`,
  });
  await rt.trail.transaction(systemActor(), (ctx) =>
    ctx.audit.record({ action: result.sent ? 'incident.concern_notice_sent' : 'incident.concern_notice_failed', target: `incident_concern:${id}`, severity: result.sent ? 'info' : 'warning', details: { reference: ref, recipients: to.length, ...(result.sent ? {} : { error: result.error }) } }),
  );
}

export interface ConcernSummary {
  id: string;
  reference: string;
  kind: string;
  source: string;
  reporterName: string | null;
  details: string;
  blockedHost: string | null;
  createdAt: string;
  status: string;
  incidentId: string | null;
}

export async function listConcerns(rt: Runtime, actor: Actor): Promise<ConcernSummary[]> {
  const kinds = readableConcernKinds(actor);
  if (kinds.length === 0) return [];
  const rows = await rt.db.kysely.selectFrom('incident_concern').selectAll().where('kind', 'in', kinds).orderBy('created_at', 'desc').limit(500).execute();
  return rows.map((r) => ({ id: r.id, reference: r.reference, kind: r.kind, source: r.source, reporterName: r.reporter_name, details: r.details, blockedHost: r.blocked_host, createdAt: r.created_at, status: r.status, incidentId: r.incident_id }));
}

export const dismissSchema = z.object({ reason: text('why no incident is needed', 2000) }).strict();

export async function dismissConcern(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof dismissSchema>, meta: Meta): Promise<void> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('incident_concern').select(['kind', 'status', 'reference']).where('id', '=', id).executeTakeFirst();
    if (!row || !readableConcernKinds(actor).includes(row.kind)) throw notFound('There is no such concern.');
    const done = await ctx.db.updateTable('incident_concern').set({ status: 'dismissed' }).where('id', '=', id).where('status', '=', 'new').executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('This concern has already been dealt with.');
    await ctx.audit.record({ action: 'incident.concern_dismissed', target: `incident_concern:${id}`, details: { reference: row.reference, reason: input.reason } });
  }, meta);
}

// ---------------------------------------------------------------- the register (IN-02, IN-03, IN-07, MO-03)

export const createSchema = z
  .object({
    category: categorySchema,
    title: text('what the incident is, in a few words', 200),
    summary: text('what happened', 8000),
    people: optionalText(2000),
    devices: optionalText(2000),
    containment: optionalText(4000),
    /** an alert's reference (?alert=ID in the console), kept as text */
    alertRef: z.string().trim().max(200).optional(),
    /** a concern taken up as this incident */
    concernId: z.uuid('must be a concern id').optional(),
    /** data breach: when the school became aware (default now); the 72 hours run from here */
    awareAt: when.optional(),
  })
  .strict();

export const updateSchema = z
  .object({
    people: z.string().trim().max(2000),
    devices: z.string().trim().max(2000),
    containment: z.string().trim().max(4000),
    cause: z.string().trim().max(4000),
    actions: z.string().trim().max(4000),
    policyUpdates: z.string().trim().max(4000),
  })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, 'say what changed');

export const eventSchema = z
  .object({
    kind: z.enum(['note', 'containment', 'quarantine'], { error: 'must be note, containment or quarantine' }),
    text: text('what was done or found', 4000),
  })
  .strict();

export const closeSchema = z.object({ outcome: text('the outcome', 4000) }).strict();

export const icoSchema = z
  .object({
    decision: z.enum(['reportable', 'not_reportable'], { error: 'must be reportable or not_reportable' }),
    reasoning: text('why (the risk to people’s rights and freedoms)', 4000),
    reference: z.string().trim().max(100).optional(),
  })
  .strict()
  .refine((v) => v.decision === 'not_reportable' || !!v.reference, { message: 'give the ICO’s reference for a reported breach', path: ['reference'] });

export const authoritySchema = z
  .object({
    authority: z.enum(['action_fraud', 'ncsc', 'police', 'other'], { error: 'must be action_fraud, ncsc, police or other' }),
    reference: text('the reference they gave', 100),
    reportedAt: when.optional(),
  })
  .strict();

export interface IncidentEvent {
  id: string;
  at: string;
  by: string;
  kind: string;
  text: string;
}

export interface BreachClock {
  awareAt: string;
  deadline: string;
  hoursLeft: number;
  overdue: boolean;
}

export interface Incident {
  id: string;
  reference: string;
  category: Category;
  categoryLabel: string;
  title: string;
  summary: string;
  status: 'open' | 'closed';
  source: string;
  alertRef: string | null;
  concernReference: string | null;
  people: string;
  devices: string;
  containment: string;
  cause: string;
  actions: string;
  policyUpdates: string;
  outcome: string;
  recordedBy: string;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  breach: (BreachClock & { icoDecision: string | null; icoReasoning: string | null; icoReference: string | null; icoDecidedAt: string | null; icoDecidedBy: string | null }) | null;
  authorityReport: { authority: string; reference: string; reportedAt: string } | null;
  timeline?: IncidentEvent[];
}

/** A time as the school reads it: "Friday 4 December 2026, 00:20" in the profile's time zone. */
function local(rt: Runtime, iso: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: rt.profile.timeZone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}

export function breachClock(awareAt: string, now: Date): BreachClock {
  const deadline = Date.parse(awareAt) + BREACH_HOURS * HOUR;
  const left = (deadline - now.getTime()) / HOUR;
  // to a tenth, towards zero: 41.99 hours left is "41 hours", never rounded up to 42
  return { awareAt, deadline: new Date(deadline).toISOString(), hoursLeft: Math.trunc(left * 10) / 10, overdue: left < 0 };
}

function present(r: Selectable<IncidentTable>, now: Date, concernReference: string | null): Incident {
  return {
    id: r.id,
    reference: r.reference,
    category: r.category as Category,
    categoryLabel: categoryLabels[r.category as Category] ?? r.category,
    title: r.title,
    summary: r.summary,
    status: r.status as Incident['status'],
    source: r.source,
    alertRef: r.alert_ref,
    concernReference,
    people: r.people,
    devices: r.devices,
    containment: r.containment,
    cause: r.cause,
    actions: r.actions,
    policyUpdates: r.policy_updates,
    outcome: r.outcome,
    recordedBy: r.recorded_by_name,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    closedAt: r.closed_at,
    breach:
      r.category === 'data_breach' && r.aware_at
        ? { ...breachClock(r.aware_at, r.ico_decided_at ? new Date(r.ico_decided_at) : now), icoDecision: r.ico_decision, icoReasoning: r.ico_reasoning, icoReference: r.ico_reference, icoDecidedAt: r.ico_decided_at, icoDecidedBy: r.ico_decided_by }
        : null,
    authorityReport: r.authority ? { authority: r.authority, reference: r.authority_reference ?? '', reportedAt: r.authority_reported_at ?? '' } : null,
  };
}

const ev = (e: Selectable<IncidentEventTable>): IncidentEvent => ({ id: e.id, at: e.at, by: e.actor_name, kind: e.kind, text: e.text });

async function actorName(rt: Runtime, actor: Actor): Promise<string> {
  if (!actor.id) return actor.name;
  const a = await rt.db.kysely.selectFrom('account').select('display_name').where('id', '=', actor.id).executeTakeFirst();
  return a?.display_name ?? actor.name;
}

/** Lists only what the reader's role may see: other categories are not counted, titled or hinted at. */
export async function listIncidents(rt: Runtime, actor: Actor, query: { status?: 'open' | 'closed' | undefined } = {}): Promise<Incident[]> {
  const mine = readableCategories(actor);
  if (mine.length === 0) return [];
  let q = rt.db.kysely.selectFrom('incident').selectAll().where('category', 'in', mine);
  if (query.status) q = q.where('status', '=', query.status);
  const now = rt.clock.now();
  return (await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(500).execute()).map((r) => present(r, now, null));
}

/** One incident with its timeline; one the reader may not see is "not found", exactly like a missing one. */
export async function getIncident(rt: Runtime, actor: Actor, id: string): Promise<Incident> {
  const row = await rt.db.kysely.selectFrom('incident').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !mayRead(actor, row.category)) throw notFound('There is no such incident.');
  const concern = row.concern_id ? await rt.db.kysely.selectFrom('incident_concern').select('reference').where('id', '=', row.concern_id).executeTakeFirst() : undefined;
  const events = await rt.db.kysely.selectFrom('incident_event').selectAll().where('incident_id', '=', id).orderBy('seq').execute();
  return { ...present(row, rt.clock.now(), concern?.reference ?? null), timeline: events.map(ev) };
}

/**
 * Appends a timeline entry. Callers hold the incident's row (forChange updates it first, which locks
 * it on PostgreSQL; SQLite transactions are serial), so the next number is safe to take; the unique
 * (incident, seq) key is the backstop.
 */
async function appendEvent(ctx: { db: Transaction<Schema> }, incidentId: string, actor: Actor, name: string, at: string, kind: string, body: string): Promise<void> {
  const last = await ctx.db.selectFrom('incident_event').select((eb) => eb.fn.max<number>('seq').as('seq')).where('incident_id', '=', incidentId).executeTakeFirst();
  const seq = Number(last?.seq ?? 0) + 1;
  await ctx.db.insertInto('incident_event').values({ id: newId(), incident_id: incidentId, seq, at, actor_id: actor.id, actor_name: name, kind, text: body }).execute();
}

/**
 * Records an incident. Anyone with incidents.record may (staff record what they see, IN-01 and
 * MO-03); whether they can then read it is a separate matter: they get its reference either way.
 */
export async function recordIncident(rt: Runtime, actor: Actor, input: z.infer<typeof createSchema>, meta: Meta): Promise<{ id: string; reference: string; readable: boolean }> {
  const name = await actorName(rt, actor);
  const now = rt.clock.now();
  const nowIso = now.toISOString();
  let awareAt: string | null = null;
  if (input.category === 'data_breach') {
    const at = input.awareAt ? new Date(input.awareAt) : now;
    if (at.getTime() > now.getTime() + 5 * 60_000) throw new GatehouseError('validation_failed', 400, 'The school cannot have become aware of a breach in the future.');
    awareAt = at.toISOString();
  } else if (input.awareAt) throw new GatehouseError('validation_failed', 400, 'Only a personal-data breach has a time of awareness (the 72-hour clock).');
  const id = newId();
  const ref = reference('INC');
  await rt.trail.transaction(actor, async (ctx) => {
    let concernRef: string | null = null;
    if (input.concernId) {
      const concern = await ctx.db.selectFrom('incident_concern').select(['kind', 'reference']).where('id', '=', input.concernId).executeTakeFirst();
      if (!concern || !readableConcernKinds(actor).includes(concern.kind)) throw notFound('There is no such concern.');
      const taken = await ctx.db.updateTable('incident_concern').set({ status: 'taken_up', incident_id: id }).where('id', '=', input.concernId).where('status', '=', 'new').executeTakeFirst();
      if (Number(taken.numUpdatedRows) !== 1) throw conflict('This concern has already been dealt with.');
      concernRef = concern.reference;
    }
    await ctx.db
      .insertInto('incident')
      .values({
        id,
        reference: ref,
        category: input.category,
        title: input.title,
        summary: input.summary,
        status: 'open',
        source: input.concernId ? 'concern' : input.alertRef ? 'alert' : 'manual',
        alert_ref: input.alertRef || null,
        concern_id: input.concernId ?? null,
        people: input.people,
        devices: input.devices,
        containment: input.containment,
        cause: '',
        actions: '',
        policy_updates: '',
        outcome: '',
        recorded_by: actor.id,
        recorded_by_name: name,
        created_at: nowIso,
        updated_at: nowIso,
        closed_at: null,
        aware_at: awareAt,
        ico_decision: null,
        ico_reasoning: null,
        ico_reference: null,
        ico_decided_at: null,
        ico_decided_by: null,
        authority: null,
        authority_reference: null,
        authority_reported_at: null,
      })
      .execute();
    const from = concernRef ? ` from concern ${concernRef}` : input.alertRef ? ` from alert ${input.alertRef}` : '';
    await appendEvent(ctx, id, actor, name, nowIso, 'recorded', `Recorded${from}.${awareAt ? ` Aware of the breach since ${local(rt, awareAt)}; the ICO decision is due by ${local(rt, breachClock(awareAt, now).deadline)}.` : ''}`);
    if (input.containment) await appendEvent(ctx, id, actor, name, nowIso, 'containment', input.containment);
    await ctx.audit.record({
      action: 'incident.recorded',
      target: `incident:${id}`,
      severity: input.category === 'data_breach' || input.category === 'cyber' ? 'warning' : 'notice',
      // no title or summary in the trail: it is read more widely than safeguarding details may be
      details: { reference: ref, category: input.category, source: input.concernId ? 'concern' : input.alertRef ? 'alert' : 'manual', alertRef: input.alertRef ?? null, concern: concernRef, awareAt },
    });
  }, meta);
  if (input.category === 'data_breach' || input.category === 'security' || input.category === 'cyber') void notifyIncident(rt, id, ref, input.category).catch((error: unknown) => rt.logger.error({ err: error }, 'incident notice failed'));
  return { id, reference: ref, readable: mayRead(actor, input.category) };
}

/** IN-02, IN-04: security breaches to the IT lead, headteacher and DPO; personal-data breaches to the DPO at once. */
async function notifyIncident(rt: Runtime, id: string, ref: string, category: Category): Promise<void> {
  if (!rt.mailer.configured) return;
  const to = new Set(await recipients(rt, 'dpo', 'dpo'));
  if (category !== 'data_breach') {
    for (const e of await recipients(rt, 'it_provider', 'administrator')) to.add(e);
    const head = await rt.db.kysely.selectFrom('school_contact').select('email').where('role', '=', 'headteacher').executeTakeFirst();
    if (head?.email) to.add(head.email);
  }
  if (to.size === 0) return;
  const result = await rt.mailer.send({
    to: [...to].join(', '),
    subject: `${categoryLabels[category]} ${ref} recorded in Gatehouse`,
    text: `${categoryLabels[category]} ${ref} has been recorded.${category === 'data_breach' ? ` The school has ${BREACH_HOURS} hours from becoming aware of it to decide whether to report it to the ICO.` : ''}\n\nPlease sign in to Gatehouse and open Incidents to see it.\n\n— Gatehouse`,
  });
  await rt.trail.transaction(systemActor(), (ctx) => ctx.audit.record({ action: result.sent ? 'incident.notice_sent' : 'incident.notice_failed', target: `incident:${id}`, severity: result.sent ? 'info' : 'warning', details: { reference: ref, recipients: to.size } }));
}

/** Loads an incident for a change: missing and not-yours look the same; closed ones are read-only. */
async function forChange(ctx: { db: Transaction<Schema>; clock: { now(): Date } }, actor: Actor, id: string, open = true): Promise<Selectable<IncidentTable>> {
  // touch the row first: on PostgreSQL this holds it until the transaction ends, so changes to one incident queue
  await ctx.db.updateTable('incident').set({ updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
  const row = await ctx.db.selectFrom('incident').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !mayRead(actor, row.category)) throw notFound('There is no such incident.');
  if (open && row.status !== 'open') throw conflict('This incident is closed; reopen it to change it.');
  return row;
}

const fieldColumns = { people: 'people', devices: 'devices', containment: 'containment', cause: 'cause', actions: 'actions', policyUpdates: 'policy_updates' } as const;
const fieldLabels: Record<keyof typeof fieldColumns, string> = { people: 'People involved', devices: 'Devices involved', containment: 'Containment', cause: 'Cause', actions: 'Actions', policyUpdates: 'Policy updates' };

/** IN-03: containment, cause, actions, policy updates; each change is a timeline entry and an audit event. */
export async function updateIncident(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof updateSchema>, meta: Meta): Promise<Incident> {
  const name = await actorName(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await forChange(ctx, actor, id);
    const now = ctx.clock.now().toISOString();
    const set: Record<string, string> = {};
    const changed: string[] = [];
    for (const [key, column] of Object.entries(fieldColumns) as Array<[keyof typeof fieldColumns, (typeof fieldColumns)[keyof typeof fieldColumns]]>) {
      const value = input[key];
      if (value === undefined || value === row[column]) continue;
      set[column] = value;
      changed.push(key);
      await appendEvent(ctx, id, actor, name, now, 'update', `${fieldLabels[key]}: ${value || '(cleared)'}`);
    }
    if (changed.length === 0) return;
    await ctx.db.updateTable('incident').set({ ...set, updated_at: now }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'incident.updated', target: `incident:${id}`, details: { reference: row.reference, fields: changed } });
  }, meta);
  return getIncident(rt, actor, id);
}

/** Appends to the timeline (append-only: entries are never edited or removed). */
export async function addEvent(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof eventSchema>, meta: Meta): Promise<Incident> {
  const name = await actorName(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await forChange(ctx, actor, id);
    const now = ctx.clock.now().toISOString();
    await appendEvent(ctx, id, actor, name, now, input.kind, input.text);
    await ctx.db.updateTable('incident').set({ updated_at: now }).where('id', '=', id).execute();
    await ctx.audit.record({ action: input.kind === 'quarantine' ? 'incident.quarantine_recorded' : 'incident.timeline_added', target: `incident:${id}`, severity: input.kind === 'quarantine' ? 'warning' : 'info', details: { reference: row.reference, kind: input.kind } });
  }, meta);
  return getIncident(rt, actor, id);
}

/** IN-04: the ICO decision, once (a second is a conflict, not an overwrite). */
export async function recordIcoDecision(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof icoSchema>, meta: Meta): Promise<Incident> {
  const name = await actorName(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await forChange(ctx, actor, id, false);
    if (row.category !== 'data_breach') throw new GatehouseError('validation_failed', 400, 'Only a personal-data breach has an ICO decision.');
    const now = ctx.clock.now().toISOString();
    const done = await ctx.db
      .updateTable('incident')
      .set({ ico_decision: input.decision, ico_reasoning: input.reasoning, ico_reference: input.reference ?? null, ico_decided_at: now, ico_decided_by: name, updated_at: now })
      .where('id', '=', id)
      .where('ico_decision', 'is', null)
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('The ICO decision for this breach is already recorded.');
    const late = Date.parse(now) > Date.parse(row.aware_at!) + BREACH_HOURS * HOUR;
    await appendEvent(ctx, id, actor, name, now, 'ico_decision', `${input.decision === 'reportable' ? `Reported to the ICO (reference ${input.reference})` : 'Not reportable to the ICO'}: ${input.reasoning}${late ? ` (decided after the ${BREACH_HOURS} hours: the reasons for the delay belong in the reasoning)` : ''}`);
    await ctx.audit.record({ action: 'incident.ico_decision_recorded', target: `incident:${id}`, severity: 'warning', details: { reference: row.reference, decision: input.decision, icoReference: input.reference ?? null, withinDeadline: !late } });
  }, meta);
  return getIncident(rt, actor, id);
}

/** IN-05: the report to Action Fraud, the NCSC or the police, with their reference. */
export async function recordAuthorityReport(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof authoritySchema>, meta: Meta): Promise<Incident> {
  const name = await actorName(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await forChange(ctx, actor, id, false);
    if (row.category !== 'cyber' && row.category !== 'security') throw new GatehouseError('validation_failed', 400, 'A report to Action Fraud or the NCSC is recorded on a cyber or security incident.');
    const now = ctx.clock.now().toISOString();
    const at = input.reportedAt ? new Date(input.reportedAt).toISOString() : now;
    const done = await ctx.db.updateTable('incident').set({ authority: input.authority, authority_reference: input.reference, authority_reported_at: at, updated_at: now }).where('id', '=', id).where('authority', 'is', null).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('The report to the authorities is already recorded for this incident.');
    const label = { action_fraud: 'Action Fraud', ncsc: 'the NCSC', police: 'the police', other: 'the authorities' }[input.authority];
    await appendEvent(ctx, id, actor, name, now, 'authority_report', `Reported to ${label} on ${local(rt, at)}, reference ${input.reference}.`);
    await ctx.audit.record({ action: 'incident.authority_reported', target: `incident:${id}`, severity: 'notice', details: { reference: row.reference, authority: input.authority, authorityReference: input.reference } });
  }, meta);
  return getIncident(rt, actor, id);
}

/** MO-03: the outcome recorded when closing; a breach closes only with its ICO decision. */
export async function closeIncident(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof closeSchema>, meta: Meta): Promise<Incident> {
  const name = await actorName(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await forChange(ctx, actor, id);
    if (row.category === 'data_breach' && !row.ico_decision) throw conflict('Record the ICO decision (reportable or not, and why) before closing a personal-data breach.', 'ico_decision_missing');
    const now = ctx.clock.now().toISOString();
    const done = await ctx.db.updateTable('incident').set({ status: 'closed', outcome: input.outcome, closed_at: now, updated_at: now }).where('id', '=', id).where('status', '=', 'open').executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw conflict('This incident is closed; reopen it to change it.');
    await appendEvent(ctx, id, actor, name, now, 'closed', `Closed. Outcome: ${input.outcome}`);
    await ctx.audit.record({ action: 'incident.closed', target: `incident:${id}`, details: { reference: row.reference } });
  }, meta);
  return getIncident(rt, actor, id);
}

// ---------------------------------------------------------------- breach reminders and record (IN-04)

/**
 * Reminds the DPO at 24, 48 and 66 hours after awareness while no ICO decision is recorded. The
 * reminder row is inserted before the mail goes (its key is the breach and the mark), so two runs at
 * once, or a restart, never send one twice; a run that finds several marks passed sends the latest.
 */
export async function sendBreachReminders(rt: Runtime): Promise<{ sent: number; failed: number }> {
  const now = rt.clock.now();
  const open = await rt.db.kysely.selectFrom('incident').select(['id', 'reference', 'aware_at']).where('category', '=', 'data_breach').where('status', '=', 'open').where('ico_decision', 'is', null).where('aware_at', 'is not', null).execute();
  let sent = 0;
  let failed = 0;
  for (const b of open) {
    const elapsed = (now.getTime() - Date.parse(b.aware_at!)) / HOUR;
    const passed = REMINDER_MARKS.filter((m) => elapsed >= m);
    if (passed.length === 0) continue;
    const done = new Set((await rt.db.kysely.selectFrom('incident_reminder').select('mark').where('incident_id', '=', b.id).execute()).map((r) => Number(r.mark)));
    const due = passed.filter((m) => !done.has(m));
    if (due.length === 0) continue;
    const claimed: number[] = [];
    for (const mark of due) {
      try {
        await rt.db.kysely.insertInto('incident_reminder').values({ incident_id: b.id, mark, sent_at: now.toISOString(), sent: 0 }).execute();
        claimed.push(mark);
      } catch {
        // another run claimed it
      }
    }
    const latest = Math.max(...due);
    if (!claimed.includes(latest)) continue;
    const clock = breachClock(b.aware_at!, now);
    const to = await recipients(rt, 'dpo', 'dpo');
    const result = to.length && rt.mailer.configured
      ? await rt.mailer.send({
          to: to.join(', '),
          subject: `Breach ${b.reference}: ${Math.max(0, Math.floor(clock.hoursLeft))} hours left to decide on reporting to the ICO`,
          text: `Personal-data breach ${b.reference}: the school became aware of it ${latest} hours ago (${local(rt, b.aware_at!)}). A report to the ICO, where it is reportable, is due by ${local(rt, clock.deadline)} (72 hours, UK GDPR Art 33).\n\nNo decision is recorded yet. Please sign in to Gatehouse, open the incident and record whether it is reportable, and why.\n\n— Gatehouse`,
        })
      : { sent: false, error: to.length ? 'no SMTP server is configured' : 'no DPO e-mail address is known (name the DPO under School)' };
    if (result.sent) sent++;
    else failed++;
    await rt.trail.transaction(systemActor(), async (ctx) => {
      await ctx.db.updateTable('incident').set({ updated_at: now.toISOString() }).where('id', '=', b.id).execute();
      if (result.sent) await ctx.db.updateTable('incident_reminder').set({ sent: 1 }).where('incident_id', '=', b.id).where('mark', '=', latest).execute();
      await appendEvent(ctx, b.id, systemActor(), 'Gatehouse', now.toISOString(), 'reminder', result.sent ? `Reminder sent to the DPO at ${latest} hours (${Math.max(0, Math.floor(clock.hoursLeft))} hours left).` : `Reminder at ${latest} hours could not be sent: ${result.error ?? 'unknown error'}.`);
      await ctx.audit.record({ action: result.sent ? 'incident.breach_reminder_sent' : 'incident.breach_reminder_failed', target: `incident:${b.id}`, severity: result.sent ? 'notice' : 'warning', details: { reference: b.reference, mark: latest, recipients: to.length } });
    });
  }
  return { sent, failed };
}

/** UK GDPR Art 33(5): every personal-data breach, its facts, effects and remedial action, reported or not. */
export async function breachRecord(rt: Runtime): Promise<Array<Record<string, string>>> {
  const rows = await rt.db.kysely.selectFrom('incident').selectAll().where('category', '=', 'data_breach').orderBy('aware_at').execute();
  return rows.map((r) => ({
    reference: r.reference,
    awareAt: r.aware_at ?? '',
    deadline: r.aware_at ? breachClock(r.aware_at, rt.clock.now()).deadline : '',
    title: r.title,
    facts: r.summary,
    peopleAffected: r.people,
    containment: r.containment,
    cause: r.cause,
    remedialAction: r.actions,
    policyUpdates: r.policy_updates,
    icoDecision: r.ico_decision ?? 'not yet decided',
    icoReasoning: r.ico_reasoning ?? '',
    icoReference: r.ico_reference ?? '',
    icoDecidedAt: r.ico_decided_at ?? '',
    status: r.status,
    outcome: r.outcome,
  }));
}

export function toCsv(rows: Array<Record<string, string>>): string {
  if (rows.length === 0) return 'reference,awareAt,deadline,title,facts,peopleAffected,containment,cause,remedialAction,policyUpdates,icoDecision,icoReasoning,icoReference,icoDecidedAt,status,outcome\r\n';
  const cols = Object.keys(rows[0]!);
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvField(r[c])).join(','))].join('\r\n') + '\r\n';
}

// ---------------------------------------------------------------- overview, termly report

/** Open breaches with their clock (for the DPO and headteacher), and concerns nobody has taken up. */
export async function incidentsDue(rt: Runtime): Promise<DueItem[]> {
  const now = rt.clock.now();
  const items: DueItem[] = [];
  const breaches = await rt.db.kysely.selectFrom('incident').select(['id', 'reference', 'aware_at']).where('category', '=', 'data_breach').where('status', '=', 'open').where('ico_decision', 'is', null).execute();
  for (const b of breaches) {
    if (!b.aware_at) continue;
    const c = breachClock(b.aware_at, now);
    items.push({
      kind: 'data_breach',
      title: c.overdue ? `Breach ${b.reference}: the 72 hours to decide on reporting to the ICO have passed` : `Breach ${b.reference}: ${Math.floor(c.hoursLeft)} hours left to decide on reporting to the ICO`,
      detail: `Aware since ${local(rt, b.aware_at)}; the decision is due by ${local(rt, c.deadline)}.`,
      dueAt: c.deadline,
      overdue: c.overdue,
      href: `/incidents/${b.id}`,
      requirement: 'IN-04',
      permission: 'incidents.breach',
    });
  }
  const waiting = await rt.db.kysely.selectFrom('incident_concern').select(['kind', (eb) => eb.fn.countAll<number>().as('n')]).where('status', '=', 'new').groupBy('kind').execute();
  for (const w of waiting) {
    const n = Number(w.n);
    if (n === 0) continue;
    // online-safety concerns are the DSL's: "concerns.read" covers both, so only technical ones are
    // counted for everyone holding it; the DSL's list shows all
    if (w.kind !== 'technical') continue;
    items.push({ kind: 'concern', title: `${n} technical concern${n === 1 ? '' : 's'} reported, not yet taken up`, dueAt: null, overdue: false, href: '/incidents?tab=concerns', requirement: 'IN-01', permission: 'concerns.read' });
  }
  return items;
}

/** Inside `serve`: the breach reminders, every 10 minutes (a missed mark is sent on the next run). */
export function scheduleBreachReminders(rt: Runtime, everyMs = 10 * 60_000): Periodic {
  return schedulePeriodic(rt.logger, 'breach reminders', async () => {
    await sendBreachReminders(rt);
  }, { everyMs, firstAfterMs: 60_000 });
}
