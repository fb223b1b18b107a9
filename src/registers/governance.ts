import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { conflict, GatehouseError, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import type { Runtime } from '../runtime.js';
import { importErrors, readRows, toCsv, type CsvError } from './csv.js';

/**
 * Issue 12: the governance registers. Reviews and audits of technical security with their findings
 * and recommendations, reported to senior leaders (GV-01); the filtering and monitoring review, one
 * note per P4 9.15 point, due a year after the last one or sooner when a change is recorded
 * (GV-02, P4 9.14–9.17); training records per person, with the AUP accepted at induction taken
 * from sign-in (GV-05); policy reviews with their next date (GV-06); resource shortfalls and the
 * date they were reported to governors (GV-07); data-protection walks and spot checks (GV-09); the
 * physical-security checklist (GV-10). Every change is audited in its own transaction.
 */
type Meta = { ip: string | null; requestId: string | null };
const DAY = 86_400_000;
/** GV-02, GV-05, GV-06, GV-09, GV-10 ask for these at least yearly (REQUIREMENTS.md). */
export const YEAR_MONTHS = 12;
/** A change recorded after the last filtering review (P4 9.17) brings the next one to within this. */
export const REVIEW_AFTER_CHANGE_DAYS = 30;
const DUE_SOON_DAYS = 30;

export function addMonths(iso: string, months: number): string {
  const d = new Date(iso);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d.toISOString();
}

/** P4 9.15: what the filtering and monitoring review takes account of (paraphrased). */
export const filteringReviewPoints = [
  { id: 'risk_profile', label: 'The risk profile of pupils: their ages, SEND, English as an additional language' },
  { id: 'blocked_allowed', label: 'What the filtering blocks or allows, and why' },
  { id: 'outside_influences', label: 'Outside safeguarding influences, such as county lines' },
  { id: 'safeguarding_reports', label: 'Relevant safeguarding reports' },
  { id: 'digital_resilience', label: 'The digital resilience of pupils' },
  { id: 'teaching_requirements', label: 'Teaching requirements, e.g. the RSHE and PSHE curriculum' },
  { id: 'technologies', label: 'The technologies in use, including bring your own device (BYOD)' },
  { id: 'related_policies', label: 'The related safeguarding and technology policies in place' },
  { id: 'checks_and_actions', label: 'The checks taking place and how resulting actions are handled' },
] as const;
export type FilteringPoint = (typeof filteringReviewPoints)[number]['id'];

/** GV-10 (P4 6.1, 6.8): the physical-security checklist. */
export const physicalSecurityItems = [
  { id: 'server_room_locked', label: 'The server room is locked' },
  { id: 'cabinets_locked', label: 'Network cabinets are locked' },
  { id: 'restricted_access', label: 'Access to servers and network equipment is restricted to named people' },
  { id: 'cabling_secured', label: 'Cabling and network points are secured and not exposed to tampering' },
] as const;

export const changeKinds = ['safeguarding_risk', 'working_practice', 'new_technology'] as const;
export const changeKindLabels: Record<(typeof changeKinds)[number], string> = {
  safeguarding_risk: 'A safeguarding risk was identified',
  working_practice: 'A change in working practice (e.g. remote access, BYOD)',
  new_technology: 'New technology was introduced',
};
export const recommendationStatuses = ['open', 'in_progress', 'done'] as const;
export const reviewKinds = ['audit', 'review', 'filtering_monitoring', 'dp_walk', 'physical_security'] as const;
export type ReviewKind = (typeof reviewKinds)[number];

const text = (label: string, max: number) => z.string({ error: `say ${label}` }).trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);
const note = (max = 4000) => z.string().trim().max(max, `must be at most ${max} characters`).default('');
const isoDate = z.iso.date({ message: 'must be a date like 2027-01-31' });
const passFail = z.enum(['pass', 'fail'], { error: 'must be pass or fail' });

const recommendationSchema = z
  .object({ text: text('the recommendation', 2000), owner: text('who owns it', 200), dueAt: isoDate })
  .strict();

const reviewBase = {
  reviewedAt: isoDate.optional(),
  findings: text('the findings', 10_000),
  reportedTo: text('who the findings were reported to (e.g. the headteacher and senior leaders)', 500),
  recommendations: z.array(recommendationSchema).max(50, 'at most 50 recommendations').default([]),
};

export const auditSchema = z.object({ kind: z.enum(['audit', 'review'], { error: 'must be audit or review' }), title: text('what was reviewed or audited', 300), ...reviewBase }).strict();
export const filteringReviewSchema = z
  .object({
    title: text('the title', 300).default('Filtering and monitoring review'),
    ...reviewBase,
    points: z
      .object(Object.fromEntries(filteringReviewPoints.map((p) => [p.id, z.object({ note: text(`what the review found on this point (${p.label})`, 4000) }).strict()])) as Record<FilteringPoint, z.ZodObject<{ note: z.ZodString }>>, { error: 'give a note for every point of P4 9.15' })
      .strict(),
  })
  .strict();
export const dpWalkSchema = z
  .object({
    title: text('the title', 300).default('Data-protection walk'),
    ...reviewBase,
    items: z.array(z.object({ area: text('the area, system or device checked', 300), result: passFail, note: note(2000) }).strict()).min(1, 'record at least one thing checked').max(200, 'at most 200 items'),
  })
  .strict();
export const physicalCheckSchema = z
  .object({
    title: text('the title', 300).default('Physical-security check'),
    ...reviewBase,
    findings: note(10_000),
    items: z
      .object(Object.fromEntries(physicalSecurityItems.map((i) => [i.id, z.object({ result: passFail, note: note(2000) }).strict()])) as Record<(typeof physicalSecurityItems)[number]['id'], z.ZodObject<{ result: typeof passFail; note: z.ZodDefault<z.ZodString> }>>, { error: 'answer every item of the checklist' })
      .strict(),
  })
  .strict();
export const recommendationStatusSchema = z.object({ status: z.enum(recommendationStatuses, { error: `must be one of ${recommendationStatuses.join(', ')}` }) }).strict();
export const changeSchema = z.object({ kind: z.enum(changeKinds, { error: `must be one of ${changeKinds.join(', ')}` }), description: text('what changed', 2000) }).strict();
export const policyReviewSchema = z.object({ policy: text('which policy', 300), reviewedAt: isoDate.optional(), nextReviewAt: isoDate, notes: note(4000) }).strict();
export const shortfallSchema = z.object({ title: text('the shortfall', 300), risk: text('the risk it leaves', 4000), reportedToGovernorsAt: isoDate.optional() }).strict();
export const shortfallReportSchema = z.object({ reportedToGovernorsAt: isoDate }).strict();
export const trainingSchema = z
  .object({
    accountId: z.uuid('must be an account id'),
    course: text('the course', 300).default('NCSC cyber security training for school staff'),
    completedAt: isoDate,
    certificateReference: z.string().trim().max(300, 'must be at most 300 characters').optional(),
  })
  .strict();

export interface ChecklistEntry { point: string; label: string; result?: 'pass' | 'fail'; note: string }
export interface Recommendation { id: string; reviewId: string; text: string; owner: string; dueAt: string; status: string; doneAt: string | null; overdue: boolean }
export interface Review {
  id: string;
  kind: ReviewKind;
  title: string;
  reviewedAt: string;
  reviewedBy: string;
  checklist: ChecklistEntry[];
  failed: string[];
  findings: string;
  reportedTo: string;
  recommendations: Recommendation[];
}

async function who(rt: Runtime, actor: Actor): Promise<{ id: string; name: string }> {
  if (!actor.id) throw new GatehouseError('forbidden', 403, 'A record is made by a named person.');
  const a = await rt.db.kysely.selectFrom('account').select('display_name').where('id', '=', actor.id).executeTakeFirst();
  return { id: actor.id, name: a?.display_name ?? actor.name };
}

/** A date the thing happened: today when not given, never in the future. */
function pastDate(rt: Runtime, date: string | undefined, field: string): string {
  const now = rt.clock.now();
  if (!date) return now.toISOString();
  const at = new Date(`${date}T00:00:00.000Z`);
  if (at.getTime() > now.getTime()) throw validationFailed(`${field}: cannot be in the future.`, { fields: { [field]: 'cannot be in the future' } });
  if (at.getTime() < now.getTime() - 5 * 366 * DAY) throw validationFailed(`${field}: more than five years ago.`, { fields: { [field]: 'more than five years ago' } });
  return at.toISOString();
}

function futureDate(rt: Runtime, date: string, field: string, notAfter?: { iso: string; why: string }): string {
  const at = new Date(`${date}T00:00:00.000Z`);
  if (at.getTime() <= rt.clock.now().getTime()) throw validationFailed(`${field}: must be in the future.`, { fields: { [field]: 'must be in the future' } });
  if (notAfter && at.getTime() > Date.parse(notAfter.iso)) throw validationFailed(`${field}: ${notAfter.why}.`, { fields: { [field]: notAfter.why } });
  return at.toISOString();
}

function checklistOf(kind: ReviewKind, input: Record<string, unknown>): ChecklistEntry[] {
  if (kind === 'filtering_monitoring') {
    const points = input.points as Record<string, { note: string }>;
    return filteringReviewPoints.map((p) => ({ point: p.id, label: p.label, note: points[p.id]!.note }));
  }
  if (kind === 'physical_security') {
    const items = input.items as Record<string, { result: 'pass' | 'fail'; note: string }>;
    return physicalSecurityItems.map((i) => ({ point: i.id, label: i.label, result: items[i.id]!.result, note: items[i.id]!.note }));
  }
  if (kind === 'dp_walk') return (input.items as Array<{ area: string; result: 'pass' | 'fail'; note: string }>).map((i, n) => ({ point: `item_${n + 1}`, label: i.area, result: i.result, note: i.note }));
  return [];
}

type AnyReviewInput = z.infer<typeof auditSchema> | z.infer<typeof filteringReviewSchema> | z.infer<typeof dpWalkSchema> | z.infer<typeof physicalCheckSchema>;

/** GV-01, GV-02, GV-09, GV-10: a review, audit, walk or check with its checklist and recommendations (audited). */
export async function recordReview(rt: Runtime, actor: Actor, kind: ReviewKind, input: AnyReviewInput, meta: Meta): Promise<Review> {
  const person = await who(rt, actor);
  const reviewedAt = pastDate(rt, input.reviewedAt, 'reviewedAt');
  const checklist = checklistOf(kind, input as Record<string, unknown>);
  const recommendations = input.recommendations.map((r, i) => ({ ...r, dueAt: futureDate(rt, r.dueAt, `recommendations.${i}.dueAt`) }));
  const id = newId();
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('governance_review').values({ id, kind, title: input.title, reviewed_at: reviewedAt, reviewed_by: person.id, reviewed_by_name: person.name, checklist: JSON.stringify(checklist), findings: input.findings, reported_to: input.reportedTo, created_at: now }).execute();
    for (const r of recommendations) {
      await ctx.db.insertInto('governance_recommendation').values({ id: newId(), review_id: id, text: r.text, owner: r.owner, due_at: r.dueAt, done_at: null, status: 'open', updated_at: now }).execute();
    }
    const failed = checklist.filter((c) => c.result === 'fail').map((c) => c.point);
    await ctx.audit.record({ action: 'governance.review_recorded', target: `governance_review:${id}`, severity: failed.length ? 'notice' : 'info', details: { kind, title: input.title, reviewedAt, reportedTo: input.reportedTo, points: checklist.length, failed, recommendations: recommendations.length } });
  }, meta);
  return (await listReviews(rt, { id }))[0]!;
}

export async function listReviews(rt: Runtime, filter: { kind?: ReviewKind; id?: string } = {}): Promise<Review[]> {
  const now = rt.clock.now().getTime();
  let q = rt.db.kysely.selectFrom('governance_review').selectAll().orderBy('reviewed_at', 'desc').orderBy('created_at', 'desc').limit(500);
  if (filter.kind) q = q.where('kind', '=', filter.kind);
  if (filter.id) q = q.where('id', '=', filter.id);
  const rows = await q.execute();
  const recs = rows.length ? await rt.db.kysely.selectFrom('governance_recommendation').selectAll().where('review_id', 'in', rows.map((r) => r.id)).orderBy('due_at').execute() : [];
  return rows.map((r) => {
    const checklist = JSON.parse(r.checklist) as ChecklistEntry[];
    return {
      id: r.id,
      kind: r.kind as ReviewKind,
      title: r.title,
      reviewedAt: r.reviewed_at,
      reviewedBy: r.reviewed_by_name,
      checklist,
      failed: checklist.filter((c) => c.result === 'fail').map((c) => c.label),
      findings: r.findings,
      reportedTo: r.reported_to,
      recommendations: recs.filter((x) => x.review_id === r.id).map((x) => recommendationView(x, now)),
    };
  });
}

function recommendationView(x: { id: string; review_id: string; text: string; owner: string; due_at: string; status: string; done_at: string | null }, now: number): Recommendation {
  return { id: x.id, reviewId: x.review_id, text: x.text, owner: x.owner, dueAt: x.due_at, status: x.status, doneAt: x.done_at, overdue: x.status !== 'done' && Date.parse(x.due_at) <= now };
}

/** GV-01: a recommendation moves to in progress or done (audited with the previous status). */
export async function setRecommendationStatus(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof recommendationStatusSchema>, meta: Meta): Promise<Recommendation> {
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    const before = await ctx.db.selectFrom('governance_recommendation').select(['status', 'review_id']).where('id', '=', id).executeTakeFirst();
    if (!before) throw notFound('There is no such recommendation.');
    await ctx.db.updateTable('governance_recommendation').set({ status: input.status, done_at: input.status === 'done' ? now : null, updated_at: now }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'governance.recommendation_updated', target: `governance_recommendation:${id}`, details: { reviewId: before.review_id, previous: before.status, status: input.status } });
  }, meta);
  const row = await rt.db.kysely.selectFrom('governance_recommendation').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return recommendationView(row, rt.clock.now().getTime());
}

/** GV-02 (P4 9.17): a change that brings the filtering and monitoring review forward (audited). */
export async function recordChange(rt: Runtime, actor: Actor, input: z.infer<typeof changeSchema>, meta: Meta) {
  const person = await who(rt, actor);
  const id = newId();
  const at = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('governance_change').values({ id, kind: input.kind, description: input.description, recorded_at: at, recorded_by_name: person.name }).execute();
    await ctx.audit.record({ action: 'governance.change_recorded', target: `governance_change:${id}`, severity: 'notice', details: { kind: input.kind, description: input.description } });
  }, meta);
  return { id, kind: input.kind, description: input.description, recordedAt: at, recordedBy: person.name };
}

export interface FilteringReviewStatus {
  last: { id: string; reviewedAt: string; reviewedBy: string; reportedTo: string } | null;
  /** changes recorded since the last review (each brings the review forward) */
  changes: Array<{ id: string; kind: string; description: string; recordedAt: string; recordedBy: string }>;
  dueAt: string | null;
  reason: string;
  overdue: boolean;
  dueSoon: boolean;
}

/** GV-02: when the next filtering and monitoring review is due, and why. */
export async function filteringReviewStatus(rt: Runtime): Promise<FilteringReviewStatus> {
  const now = rt.clock.now().getTime();
  const last = await rt.db.kysely.selectFrom('governance_review').select(['id', 'reviewed_at', 'reviewed_by_name', 'reported_to', 'created_at']).where('kind', '=', 'filtering_monitoring').orderBy('reviewed_at', 'desc').orderBy('created_at', 'desc').limit(1).executeTakeFirst();
  // A change counts until a review is recorded after it (by when it was recorded, not the review's date).
  let cq = rt.db.kysely.selectFrom('governance_change').selectAll().orderBy('recorded_at');
  if (last) cq = cq.where('recorded_at', '>', last.created_at);
  const changes = (await cq.execute()).map((c) => ({ id: c.id, kind: c.kind, description: c.description, recordedAt: c.recorded_at, recordedBy: c.recorded_by_name }));
  let dueAt: string | null = last ? addMonths(last.reviewed_at, YEAR_MONTHS) : null;
  let reason = last ? 'a year after the last review' : 'no filtering and monitoring review is recorded';
  if (changes.length) {
    const byChange = new Date(Date.parse(changes[0]!.recordedAt) + REVIEW_AFTER_CHANGE_DAYS * DAY).toISOString();
    if (!dueAt || byChange < dueAt) {
      dueAt = byChange;
      reason = `${changeKindLabels[changes[0]!.kind as keyof typeof changeKindLabels] ?? 'a change was recorded'}: ${changes[0]!.description}`;
    }
  }
  const overdue = !last || (dueAt !== null && Date.parse(dueAt) <= now);
  return {
    last: last ? { id: last.id, reviewedAt: last.reviewed_at, reviewedBy: last.reviewed_by_name, reportedTo: last.reported_to } : null,
    changes,
    dueAt,
    reason,
    overdue,
    dueSoon: !overdue && (changes.length > 0 || (dueAt !== null && Date.parse(dueAt) - now < DUE_SOON_DAYS * DAY)),
  };
}

/** GV-06: a policy's review with its next date, at most a year on (audited). */
export async function recordPolicyReview(rt: Runtime, actor: Actor, input: z.infer<typeof policyReviewSchema>, meta: Meta) {
  const person = await who(rt, actor);
  const reviewedAt = pastDate(rt, input.reviewedAt, 'reviewedAt');
  const nextReviewAt = futureDate(rt, input.nextReviewAt, 'nextReviewAt', { iso: addMonths(reviewedAt, YEAR_MONTHS), why: 'policies are reviewed at least every year: choose a date within 12 months of this review' });
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('policy_review').values({ id, policy: input.policy, reviewed_at: reviewedAt, next_review_at: nextReviewAt, reviewed_by_name: person.name, notes: input.notes }).execute();
    await ctx.audit.record({ action: 'governance.policy_reviewed', target: `policy_review:${id}`, details: { policy: input.policy, reviewedAt, nextReviewAt } });
  }, meta);
  return (await listPolicyReviews(rt)).find((p) => p.id === id)!;
}

/** The latest review of each policy (by name, case-insensitive), earliest next review first. */
export async function listPolicyReviews(rt: Runtime) {
  const now = rt.clock.now().getTime();
  const rows = await rt.db.kysely.selectFrom('policy_review').selectAll().orderBy('reviewed_at', 'desc').orderBy('next_review_at', 'desc').execute();
  const latest = new Map<string, (typeof rows)[number]>();
  for (const r of rows) if (!latest.has(r.policy.toLowerCase())) latest.set(r.policy.toLowerCase(), r);
  return [...latest.values()]
    .map((r) => ({ id: r.id, policy: r.policy, reviewedAt: r.reviewed_at, nextReviewAt: r.next_review_at, reviewedBy: r.reviewed_by_name, notes: r.notes, overdue: Date.parse(r.next_review_at) <= now, dueSoon: Date.parse(r.next_review_at) - now < DUE_SOON_DAYS * DAY }))
    .sort((a, b) => a.nextReviewAt.localeCompare(b.nextReviewAt));
}

/** GV-07: a resource shortfall and the risk it leaves (audited). */
export async function recordShortfall(rt: Runtime, actor: Actor, input: z.infer<typeof shortfallSchema>, meta: Meta) {
  const id = newId();
  const now = rt.clock.now().toISOString();
  const reported = input.reportedToGovernorsAt ? pastDate(rt, input.reportedToGovernorsAt, 'reportedToGovernorsAt') : null;
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('resource_shortfall').values({ id, title: input.title, risk: input.risk, recorded_at: now, reported_to_governors_at: reported, resolved_at: null }).execute();
    await ctx.audit.record({ action: 'governance.shortfall_recorded', target: `resource_shortfall:${id}`, details: { title: input.title, reportedToGovernorsAt: reported } });
  }, meta);
  return (await listShortfalls(rt)).find((s) => s.id === id)!;
}

export async function reportShortfall(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof shortfallReportSchema>, meta: Meta) {
  const reported = pastDate(rt, input.reportedToGovernorsAt, 'reportedToGovernorsAt');
  await rt.trail.transaction(actor, async (ctx) => {
    const before = await ctx.db.selectFrom('resource_shortfall').select(['recorded_at', 'reported_to_governors_at']).where('id', '=', id).executeTakeFirst();
    if (!before) throw notFound('There is no such shortfall.');
    await ctx.db.updateTable('resource_shortfall').set({ reported_to_governors_at: reported }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'governance.shortfall_reported', target: `resource_shortfall:${id}`, details: { previous: before.reported_to_governors_at, reportedToGovernorsAt: reported } });
  }, meta);
  return (await listShortfalls(rt, true)).find((s) => s.id === id)!;
}

export async function resolveShortfall(rt: Runtime, actor: Actor, id: string, meta: Meta) {
  await rt.trail.transaction(actor, async (ctx) => {
    const r = await ctx.db.updateTable('resource_shortfall').set({ resolved_at: rt.clock.now().toISOString() }).where('id', '=', id).where('resolved_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw notFound('There is no such open shortfall.');
    await ctx.audit.record({ action: 'governance.shortfall_resolved', target: `resource_shortfall:${id}` });
  }, meta);
}

export async function listShortfalls(rt: Runtime, includeResolved = false) {
  let q = rt.db.kysely.selectFrom('resource_shortfall').selectAll().orderBy('recorded_at', 'desc');
  if (!includeResolved) q = q.where('resolved_at', 'is', null);
  return (await q.execute()).map((r) => ({ id: r.id, title: r.title, risk: r.risk, recordedAt: r.recorded_at, reportedToGovernorsAt: r.reported_to_governors_at, resolvedAt: r.resolved_at }));
}

// ---------------------------------------------------------------------------------------------
// GV-05 training records

export interface TrainingEntry { id: string; course: string; completedAt: string; expiresAt: string; certificateReference: string | null; recordedBy: string }
export interface PersonTraining {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  /** the first acceptance of the AUP at sign-in: induction (AC-06 data) */
  aupAcceptedAt: string | null;
  /** the latest version accepted */
  aupLatestAt: string | null;
  records: TrainingEntry[];
  /** the latest expiry of a training record, if any */
  currentUntil: string | null;
  /** current | due_soon | lapsed | none */
  state: 'current' | 'due_soon' | 'lapsed' | 'none';
}

/** People who are trained: staff-side accounts in use, not pupils or guests, not a person's separate administrator account, not break-glass. */
async function trainees(rt: Runtime, accountId?: string) {
  let q = rt.db.kysely.selectFrom('account').select(['id', 'username', 'display_name', 'role']).where('status', '=', 'active').where('role', 'not in', ['pupil', 'guest']).where('is_break_glass', '=', 0).where('linked_account_id', 'is', null).orderBy('display_name');
  if (accountId) q = q.where('id', '=', accountId);
  return q.execute();
}

export async function trainingRegister(rt: Runtime, accountId?: string): Promise<PersonTraining[]> {
  const now = rt.clock.now().getTime();
  const people = await trainees(rt, accountId);
  if (people.length === 0) return [];
  const ids = people.map((p) => p.id);
  const records = await rt.db.kysely.selectFrom('training_record').select(['id', 'account_id', 'course', 'completed_at', 'expires_at', 'certificate_reference', 'recorded_by_name']).where('account_id', 'in', ids).orderBy('completed_at', 'desc').execute();
  const aups = await rt.db.kysely.selectFrom('aup_acceptance').select(['account_id', (eb) => eb.fn.min('accepted_at').as('first'), (eb) => eb.fn.max('accepted_at').as('latest')]).where('account_id', 'in', ids).groupBy('account_id').execute();
  return people.map((p) => {
    const mine = records.filter((r) => r.account_id === p.id).map((r) => ({ id: r.id, course: r.course, completedAt: r.completed_at, expiresAt: r.expires_at ?? addMonths(r.completed_at, YEAR_MONTHS), certificateReference: r.certificate_reference, recordedBy: r.recorded_by_name }));
    const until = mine.map((r) => r.expiresAt).sort().at(-1) ?? null;
    const aup = aups.find((a) => a.account_id === p.id);
    const left = until ? Date.parse(until) - now : -1;
    return {
      accountId: p.id,
      username: p.username,
      displayName: p.display_name,
      role: p.role,
      aupAcceptedAt: aup?.first ? String(aup.first) : null,
      aupLatestAt: aup?.latest ? String(aup.latest) : null,
      records: mine,
      currentUntil: until,
      state: !until ? 'none' : left <= 0 ? 'lapsed' : left < DUE_SOON_DAYS * DAY ? 'due_soon' : 'current',
    };
  });
}

/** The unique index on (account, course, completion date) refused a second copy made at the same moment. */
const isDuplicate = (error: unknown) => ['23505', 'SQLITE_CONSTRAINT_UNIQUE'].includes(String((error as { code?: unknown }).code));

async function insertTraining(ctx: { db: Runtime['db']['kysely'] }, row: { accountId: string; course: string; completedAt: string; certificateReference: string | null; recordedBy: string; now: string }) {
  const id = newId();
  await ctx.db.insertInto('training_record').values({ id, account_id: row.accountId, course: row.course, completed_at: row.completedAt, expires_at: addMonths(row.completedAt, YEAR_MONTHS), certificate_name: null, certificate_type: null, certificate_sha256: null, certificate: null, certificate_reference: row.certificateReference, recorded_by_name: row.recordedBy, created_at: row.now }).execute();
  return id;
}

/** GV-05: a completed course for one person; annual, so it lapses 12 months after completion (audited). */
export async function recordTraining(rt: Runtime, actor: Actor, input: z.infer<typeof trainingSchema>, meta: Meta): Promise<PersonTraining> {
  const person = await who(rt, actor);
  const completedAt = pastDate(rt, input.completedAt, 'completedAt');
  if ((await trainees(rt, input.accountId)).length === 0) throw notFound('There is no such member of staff (pupils, guests and separate administrator accounts have no training record).');
  await rt.trail.transaction(actor, async (ctx) => {
    // The same course on the same day for the same person is one record: a replayed request is refused
    // here, and two sent at the same moment by the unique index (caught below).
    if (await ctx.db.selectFrom('training_record').select('id').where('account_id', '=', input.accountId).where('course', '=', input.course).where('completed_at', '=', completedAt).executeTakeFirst()) throw conflict('This course on this date is already recorded for this person.');
    const id = await insertTraining(ctx, { accountId: input.accountId, course: input.course, completedAt, certificateReference: input.certificateReference || null, recordedBy: person.name, now: rt.clock.now().toISOString() });
    await ctx.audit.record({ action: 'governance.training_recorded', target: `training_record:${id}`, details: { accountId: input.accountId, course: input.course, completedAt, certificateReference: input.certificateReference || null } });
  }, meta).catch((error: unknown) => {
    throw isDuplicate(error) ? conflict('This course on this date is already recorded for this person.') : error;
  });
  return (await trainingRegister(rt, input.accountId))[0]!;
}

/**
 * GV-05: training records from a spreadsheet (columns Username, Course, Completed, Certificate).
 * Every row is checked first; one bad cell and nothing is stored, every problem named by line and
 * column. Audited as one event with the count.
 */
export async function importTrainingCsv(rt: Runtime, actor: Actor, csv: string, meta: Meta): Promise<{ imported: number }> {
  const person = await who(rt, actor);
  const rows = readRows(csv, ['Username', 'Completed']);
  const people = new Map((await trainees(rt)).map((p) => [p.username.toLowerCase(), p.id]));
  const errors: CsvError[] = [];
  const good: Array<{ accountId: string; course: string; completedAt: string; certificateReference: string | null }> = [];
  const now = rt.clock.now().getTime();
  const seen = new Set<string>();
  // A file imported twice (or rows already entered by hand) is refused, not doubled.
  const stored = new Set((await rt.db.kysely.selectFrom('training_record').select(['account_id', 'course', 'completed_at']).execute()).map((r) => `${r.account_id}|${r.course.toLowerCase()}|${r.completed_at.slice(0, 10)}`));
  for (const { line, cells } of rows) {
    const username = cells.get('username') ?? '';
    const accountId = people.get(username.toLowerCase());
    if (!username) errors.push({ line, column: 'Username', message: 'empty' });
    else if (!accountId) errors.push({ line, column: 'Username', message: `${username.slice(0, 60)} is not a member of staff in Gatehouse` });
    const course = cells.get('course') || 'NCSC cyber security training for school staff';
    if (course.length > 300) errors.push({ line, column: 'Course', message: 'longer than 300 characters' });
    const completed = cells.get('completed') ?? '';
    let completedAt: string | null = null;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(completed) || Number.isNaN(Date.parse(`${completed}T00:00:00Z`)) || new Date(`${completed}T00:00:00Z`).toISOString().slice(0, 10) !== completed) errors.push({ line, column: 'Completed', message: 'must be a date like 2026-09-01' });
    else {
      completedAt = new Date(`${completed}T00:00:00.000Z`).toISOString();
      if (Date.parse(completedAt) > now) errors.push({ line, column: 'Completed', message: 'is in the future' });
      else if (Date.parse(completedAt) < now - 5 * 366 * DAY) errors.push({ line, column: 'Completed', message: 'is more than five years ago' });
    }
    const certificate = cells.get('certificate') ?? '';
    if (certificate.length > 300) errors.push({ line, column: 'Certificate', message: 'longer than 300 characters' });
    const key = `${accountId}|${course.toLowerCase()}|${completed}`;
    if (accountId && seen.has(key)) errors.push({ line, column: 'Username', message: `${username.slice(0, 60)} has this course on this date twice in the file` });
    else if (accountId && stored.has(key)) errors.push({ line, column: 'Completed', message: `${username.slice(0, 60)}’s ${course.slice(0, 60)} on ${completed} is already recorded` });
    seen.add(key);
    if (accountId && completedAt) good.push({ accountId, course, completedAt, certificateReference: certificate || null });
  }
  if (errors.length) importErrors(errors);
  if (good.length === 0) throw validationFailed('The file has no rows; nothing was imported.');
  const at = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    for (const g of good) await insertTraining(ctx, { ...g, recordedBy: person.name, now: at });
    await ctx.audit.record({ action: 'governance.training_imported', target: 'training_record', details: { rows: good.length } });
  }, meta).catch((error: unknown) => {
    throw isDuplicate(error) ? conflict('Some of these records were stored by someone else meanwhile; nothing was imported. Import the file again to see which.') : error;
  });
  return { imported: good.length };
}

// ---------------------------------------------------------------------------------------------
// CSV exports (audited)

export const exportableRegisters = ['reviews', 'recommendations', 'filtering', 'walks', 'physical', 'training', 'policies', 'shortfalls'] as const;
export type ExportableRegister = (typeof exportableRegisters)[number];

const checklistText = (c: ChecklistEntry[]) => c.map((e) => `${e.label}${e.result ? ` [${e.result}]` : ''}: ${e.note}`).join(' | ');

export async function exportRegisterCsv(rt: Runtime, actor: Actor, register: ExportableRegister, meta: Meta): Promise<string> {
  let body: string;
  let rows = 0;
  const reviewsOf = async (kinds: ReviewKind[]) => (await listReviews(rt)).filter((r) => kinds.includes(r.kind));
  if (register === 'reviews' || register === 'filtering' || register === 'walks' || register === 'physical') {
    const kinds: ReviewKind[] = register === 'reviews' ? ['audit', 'review'] : register === 'filtering' ? ['filtering_monitoring'] : register === 'walks' ? ['dp_walk'] : ['physical_security'];
    const list = await reviewsOf(kinds);
    rows = list.length;
    body = toCsv(['kind', 'title', 'reviewed_at', 'reviewed_by', 'reported_to', 'findings', 'checklist', 'failed', 'recommendations'], list.map((r) => [r.kind, r.title, r.reviewedAt, r.reviewedBy, r.reportedTo, r.findings, checklistText(r.checklist), r.failed.join('; '), r.recommendations.map((x) => `${x.text} (${x.owner}, due ${x.dueAt.slice(0, 10)}, ${x.status})`).join(' | ')]));
  } else if (register === 'recommendations') {
    const list = (await listReviews(rt)).flatMap((r) => r.recommendations.map((x) => ({ r, x })));
    rows = list.length;
    body = toCsv(['review', 'review_kind', 'recommendation', 'owner', 'due_at', 'status', 'done_at', 'overdue'], list.map(({ r, x }) => [r.title, r.kind, x.text, x.owner, x.dueAt, x.status, x.doneAt, x.overdue ? 'yes' : 'no']));
  } else if (register === 'training') {
    const people = await trainingRegister(rt);
    const list = people.flatMap((p): Array<{ p: PersonTraining; r: TrainingEntry | null }> => (p.records.length ? p.records.map((r) => ({ p, r })) : [{ p, r: null }]));
    rows = list.length;
    body = toCsv(['username', 'name', 'role', 'aup_accepted_at', 'course', 'completed_at', 'expires_at', 'certificate_reference', 'state'], list.map(({ p, r }) => [p.username, p.displayName, p.role, p.aupAcceptedAt, r?.course, r?.completedAt, r?.expiresAt, r?.certificateReference, p.state]));
  } else if (register === 'policies') {
    const list = await listPolicyReviews(rt);
    rows = list.length;
    body = toCsv(['policy', 'reviewed_at', 'next_review_at', 'reviewed_by', 'notes', 'overdue'], list.map((p) => [p.policy, p.reviewedAt, p.nextReviewAt, p.reviewedBy, p.notes, p.overdue ? 'yes' : 'no']));
  } else {
    const list = await listShortfalls(rt, true);
    rows = list.length;
    body = toCsv(['title', 'risk', 'recorded_at', 'reported_to_governors_at', 'resolved_at'], list.map((s) => [s.title, s.risk, s.recordedAt, s.reportedToGovernorsAt, s.resolvedAt]));
  }
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'governance.register_exported', target: `governance:${register}`, details: { register, rows } }), meta);
  return body;
}

/** The last record of a kind, and when the next is due (a year on). */
export async function lastOfKind(rt: Runtime, kind: ReviewKind) {
  const r = (await listReviews(rt, { kind }))[0];
  return r ? { review: r, dueAt: addMonths(r.reviewedAt, YEAR_MONTHS) } : null;
}

/** Needs attention on the overview. */
export const governanceDue: DueProvider = async (rt) => {
  const now = rt.clock.now().getTime();
  const items: DueItem[] = [];
  const base = { href: '/governance', permission: 'governance.read' as const };
  const filtering = await filteringReviewStatus(rt);
  if (filtering.overdue || filtering.dueSoon) {
    items.push({ ...base, kind: 'filtering_review', requirement: 'GV-02', title: filtering.last ? 'The filtering and monitoring review is due' : 'No filtering and monitoring review is recorded', detail: `Due: ${filtering.reason}.`, dueAt: filtering.dueAt, overdue: filtering.overdue });
  }
  for (const p of await listPolicyReviews(rt)) {
    if (p.dueSoon) items.push({ ...base, kind: 'policy_review', requirement: 'GV-06', title: `The policy “${p.policy}” is due for review`, dueAt: p.nextReviewAt, overdue: p.overdue });
  }
  const reviews = await listReviews(rt);
  for (const r of reviews) {
    for (const x of r.recommendations) if (x.overdue) items.push({ ...base, kind: 'recommendation', requirement: 'GV-01', title: `Recommendation past its date: ${x.text}`, detail: `From “${r.title}”; owner ${x.owner}.`, dueAt: x.dueAt, overdue: true });
  }
  for (const s of await listShortfalls(rt)) {
    if (!s.reportedToGovernorsAt) items.push({ ...base, kind: 'shortfall_unreported', requirement: 'GV-07', title: `Resource shortfall not yet reported to governors: ${s.title}`, dueAt: null, overdue: false });
  }
  const training = await trainingRegister(rt);
  const lapsed = training.filter((p) => p.state === 'lapsed' || p.state === 'none');
  if (lapsed.length) items.push({ ...base, kind: 'training_overdue', requirement: 'GV-05', title: `${lapsed.length} member${lapsed.length === 1 ? '' : 's'} of staff without current cyber security training`, detail: lapsed.slice(0, 5).map((p) => p.displayName).join(', ') + (lapsed.length > 5 ? '…' : ''), dueAt: null, overdue: true });
  for (const [kind, requirement, label] of [['dp_walk', 'GV-09', 'data-protection walk'], ['physical_security', 'GV-10', 'physical-security check']] as const) {
    const last = reviews.find((r) => r.kind === kind);
    const dueAt = last ? addMonths(last.reviewedAt, YEAR_MONTHS) : null;
    if (!last || Date.parse(dueAt!) - now < DUE_SOON_DAYS * DAY) items.push({ ...base, kind, requirement, title: last ? `A ${label} is due` : `No ${label} is recorded`, dueAt, overdue: !last || Date.parse(dueAt!) <= now });
    if (last && last.failed.length) items.push({ ...base, kind: `${kind}_failed`, requirement, title: `The last ${label} found ${last.failed.length} failed item${last.failed.length === 1 ? '' : 's'}: ${last.failed.join('; ')}`, dueAt: null, overdue: true });
  }
  return items;
};
