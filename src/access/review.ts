import type { Kysely } from 'kysely';
import { z } from 'zod';
import { privilegedRoles, roleLabels, type Role } from '../core/authz.js';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError, conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Schema } from '../db/schema.js';
import type { DueItem } from '../dashboard/due.js';
import { changeAccount } from '../identity/accounts.js';
import { noStepUp } from '../identity/my-account.js';
import type { Runtime } from '../runtime.js';
import { accessMatrix, type AccessMatrix } from './matrix.js';

/**
 * The annual access review (AC-02). A senior leader starts it: the record takes a snapshot of the
 * whole matrix and of every privileged account as they stand. For each account the reviewer confirms
 * it or records that it must change (with a note, and optionally disabling it there and then); the
 * reviewer may add a note on the matrix; sign-off needs a decision for every account. The next review
 * is due `accessReview.everyMonths` after the last sign-off, and shows on the dashboard when due.
 */

/**
 * Roles whose holders are reviewed one by one, besides the master and linked administrator
 * accounts: every role with a permission everyday staff lack (core/authz, the same list SCIM's
 * privileged grant uses: the office and governors too), administrators and leaders first.
 */
const FIRST: readonly Role[] = ['administrator', 'senior_leader', 'dsl', 'dpo'];
const reviewedRoles: readonly Role[] = [...FIRST.filter((r) => privilegedRoles.includes(r)), ...privilegedRoles.filter((r) => !FIRST.includes(r))];

export interface Person {
  id: string | null;
  name: string;
}

export interface PrivilegedAccount {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  roleLabel: string;
  status: string;
  isBreakGlass: boolean;
  /** the everyday account an administrator account belongs to */
  linkedAccount: { id: string; username: string; displayName: string } | null;
  /** why the account is reviewed, in words */
  reasons: string[];
  lastSignInAt: string | null;
  mfaEnrolled: boolean;
}

export interface ReviewSnapshot {
  takenAt: string;
  startedBy: Person;
  everyMonths: number;
  matrix: AccessMatrix;
  accounts: PrivilegedAccount[];
}

export const decisionKinds = ['confirm', 'change'] as const;

export interface AccountDecision {
  decision: (typeof decisionKinds)[number];
  note: string | null;
  /** the account was disabled as part of this decision */
  disabled: boolean;
  decidedAt: string;
  decidedBy: Person;
}

/** What is stored in access_review.decisions. */
export interface ReviewDecisions {
  accounts: Record<string, AccountDecision>;
  matrixNote: string | null;
  signedOffBy?: Person;
}

export type ReviewStatus = 'in_progress' | 'signed_off' | 'cancelled';

export interface ReviewSummary {
  id: string;
  status: ReviewStatus;
  startedAt: string;
  startedBy: Person;
  signedOffAt: string | null;
  signedOffBy: Person | null;
  summary: string | null;
  accounts: number;
  decided: number;
  changes: number;
}

export interface Review extends ReviewSummary {
  snapshot: ReviewSnapshot;
  decisions: ReviewDecisions;
}

export const decisionInputSchema = z
  .object({
    decision: z.enum(decisionKinds, { error: 'must be confirm or change' }),
    note: z.string().trim().max(1000, 'must be at most 1000 characters').nullable().optional(),
    /** with "change": disable the account now (never the master account, never one's own) */
    disable: z.boolean().optional(),
  })
  .refine((v) => v.decision === 'change' || !v.disable, { message: 'an account is disabled only with a "change" decision', path: ['disable'] })
  .refine((v) => v.decision === 'confirm' || (v.note ?? '').length > 0, { message: 'say what should change', path: ['note'] });

export const matrixNoteSchema = z.object({ note: z.string().trim().max(2000, 'must be at most 2000 characters').nullable() });

export const signOffSchema = z.object({
  summary: z.string().trim().min(1, 'is required: a sentence or two on what was reviewed and what will change').max(2000, 'must be at most 2000 characters'),
});

// --- Reading --------------------------------------------------------------------------------------

type ReviewRow = Awaited<ReturnType<typeof loadRow>>;

async function loadRow(db: Kysely<Schema>, id: string) {
  const row = await db.selectFrom('access_review').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such access review.');
  return row;
}

function toReview(row: NonNullable<ReviewRow>): Review {
  const snapshot = JSON.parse(row.snapshot) as ReviewSnapshot;
  const decisions = JSON.parse(row.decisions) as ReviewDecisions;
  const made = Object.values(decisions.accounts);
  return {
    id: row.id,
    status: row.status as ReviewStatus,
    startedAt: row.started_at,
    startedBy: snapshot.startedBy,
    signedOffAt: row.signed_off_at,
    signedOffBy: row.signed_off_by ? (decisions.signedOffBy ?? { id: row.signed_off_by, name: row.signed_off_by }) : null,
    summary: row.summary,
    accounts: snapshot.accounts.length,
    decided: snapshot.accounts.filter((a) => decisions.accounts[a.id]).length,
    changes: made.filter((d) => d.decision === 'change').length,
    snapshot,
    decisions,
  };
}

function summaryOf(review: Review): ReviewSummary {
  const { snapshot: _snapshot, decisions: _decisions, ...summary } = review;
  return summary;
}

export async function getReview(db: Kysely<Schema>, id: string): Promise<Review> {
  return toReview(await loadRow(db, id));
}

/** Every review, newest first, without their snapshots. */
export async function listReviews(db: Kysely<Schema>): Promise<ReviewSummary[]> {
  const rows = await db.selectFrom('access_review').selectAll().orderBy('started_at', 'desc').execute();
  return rows.map((r) => summaryOf(toReview(r)));
}

/** Adds calendar months in UTC; the 31st of a short month becomes its last day. */
export function addMonths(iso: string, months: number): string {
  const d = new Date(iso);
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  return target.toISOString();
}

export interface ReviewStatusReport {
  everyMonths: number;
  lastSignedOffAt: string | null;
  /** null: never reviewed, so due now */
  nextDueAt: string | null;
  overdue: boolean;
  inProgress: ReviewSummary | null;
}

export async function reviewStatus(rt: Runtime): Promise<ReviewStatusReport> {
  const db = rt.db.kysely;
  const everyMonths = rt.profile.accessReview.everyMonths;
  const last = await db.selectFrom('access_review').select('signed_off_at').where('status', '=', 'signed_off').orderBy('signed_off_at', 'desc').limit(1).executeTakeFirst();
  const lastSignedOffAt = last?.signed_off_at ?? null;
  const nextDueAt = lastSignedOffAt ? addMonths(lastSignedOffAt, everyMonths) : null;
  const current = await db.selectFrom('access_review').selectAll().where('status', '=', 'in_progress').executeTakeFirst();
  return {
    everyMonths,
    lastSignedOffAt,
    nextDueAt,
    overdue: nextDueAt === null || nextDueAt <= rt.clock.now().toISOString(),
    inProgress: current ? summaryOf(toReview(current)) : null,
  };
}

/** Shown as "due" this long before the date, so it can be planned into a senior leaders' meeting. */
const DUE_SOON_DAYS = 30;

/** The dashboard's "needs attention" item for AC-02. */
export async function accessReviewDue(rt: Runtime): Promise<DueItem[]> {
  const status = await reviewStatus(rt);
  const now = rt.clock.now().getTime();
  if (!status.overdue && new Date(status.nextDueAt!).getTime() - now > DUE_SOON_DAYS * 86_400_000) return [];
  const date = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: rt.profile.timeZone });
  const parts = [
    status.lastSignedOffAt
      ? `The last review was signed off on ${date(status.lastSignedOffAt)}; reviews are due every ${status.everyMonths} months.`
      : 'No access review has been signed off yet.',
    'A senior leader reviews the access-rights matrix and every privileged account, then signs off.',
  ];
  if (status.inProgress) parts.push(`A review started on ${date(status.inProgress.startedAt)} is in progress (${status.inProgress.decided} of ${status.inProgress.accounts} accounts decided).`);
  return [
    {
      kind: 'access_review',
      title: status.overdue ? 'Annual access review overdue' : 'Annual access review due',
      detail: parts.join(' '),
      dueAt: status.nextDueAt,
      overdue: status.overdue,
      href: '/access',
      requirement: 'AC-02',
      permission: 'access.read',
    },
  ];
}

/** Every account with more than everyday rights: the privileged roles, the master account, linked administrator accounts. */
export async function privilegedAccounts(db: Kysely<Schema>): Promise<PrivilegedAccount[]> {
  const rows = await db
    .selectFrom('account as a')
    .leftJoin('account as everyday', 'everyday.id', 'a.linked_account_id')
    .select([
      'a.id',
      'a.username',
      'a.display_name',
      'a.role',
      'a.status',
      'a.is_break_glass',
      'a.totp_enrolled_at',
      'everyday.id as everyday_id',
      'everyday.username as everyday_username',
      'everyday.display_name as everyday_display_name',
    ])
    .where((eb) => eb.or([eb('a.role', 'in', [...reviewedRoles]), eb('a.is_break_glass', '=', 1), eb('a.linked_account_id', 'is not', null)]))
    // People who have left are out of reach already (disabled, sessions ended); disabled accounts can be re-enabled, so they stay.
    .where('a.status', '!=', 'left')
    .orderBy('a.role')
    .orderBy('a.display_name')
    .execute();
  const ids = rows.map((r) => r.id);
  const lastSignIn = new Map<string, string>();
  const passkeys = new Set<string>();
  if (ids.length) {
    for (const s of await db.selectFrom('session').select((eb) => ['account_id', eb.fn.max('created_at').as('last')]).where('account_id', 'in', ids).groupBy('account_id').execute()) {
      if (s.last) lastSignIn.set(s.account_id, String(s.last));
    }
    for (const p of await db.selectFrom('passkey').select('account_id').distinct().where('account_id', 'in', ids).execute()) passkeys.add(p.account_id);
  }
  const order = (role: string) => (reviewedRoles as readonly string[]).indexOf(role);
  return rows
    .map((r): PrivilegedAccount => {
      const role = r.role as Role;
      const reasons: string[] = [];
      if (r.is_break_glass) reasons.push('The master (break-glass) account, for recovery only');
      if ((reviewedRoles as readonly string[]).includes(role)) reasons.push(`Role: ${roleLabels[role]}`);
      if (r.everyday_id) reasons.push(`Administrator account of ${r.everyday_display_name} (${r.everyday_username})`);
      else if (role === 'administrator' && !r.is_break_glass) reasons.push('Not linked to an everyday account');
      return {
        id: r.id,
        username: r.username,
        displayName: r.display_name,
        role,
        roleLabel: roleLabels[role] ?? r.role,
        status: r.status,
        isBreakGlass: r.is_break_glass === 1,
        linkedAccount: r.everyday_id ? { id: r.everyday_id, username: r.everyday_username!, displayName: r.everyday_display_name! } : null,
        reasons,
        lastSignInAt: lastSignIn.get(r.id) ?? null,
        mfaEnrolled: r.totp_enrolled_at !== null || passkeys.has(r.id),
      };
    })
    .sort((a, b) => Number(b.isBreakGlass) - Number(a.isBreakGlass) || (order(a.role) === -1 ? 99 : order(a.role)) - (order(b.role) === -1 ? 99 : order(b.role)) || a.displayName.localeCompare(b.displayName));
}

// --- Use cases ------------------------------------------------------------------------------------

async function personOf(ctx: Ctx): Promise<Person> {
  if (!ctx.actor.id) return { id: null, name: ctx.actor.name };
  const row = await ctx.db.selectFrom('account').select(['display_name', 'username']).where('id', '=', ctx.actor.id).executeTakeFirst();
  return { id: ctx.actor.id, name: row ? `${row.display_name} (${row.username})` : ctx.actor.name };
}

async function inProgress(db: Kysely<Schema>, id: string): Promise<Review> {
  const review = toReview(await loadRow(db, id));
  if (review.status !== 'in_progress') {
    throw conflict(review.status === 'signed_off' ? 'That review has been signed off; it can be read but no longer changed.' : 'That review was cancelled; start a new one.', 'review_closed');
  }
  return review;
}

export async function startReview(ctx: Ctx, everyMonths: number): Promise<string> {
  const open = await ctx.db.selectFrom('access_review').select(['id', 'started_at']).where('status', '=', 'in_progress').executeTakeFirst();
  if (open) throw conflict(`A review started on ${open.started_at.slice(0, 10)} is still in progress: finish or cancel it first.`, 'review_in_progress');
  const id = newId();
  const now = ctx.clock.now().toISOString();
  const snapshot: ReviewSnapshot = { takenAt: now, startedBy: await personOf(ctx), everyMonths, matrix: await accessMatrix(ctx.db), accounts: await privilegedAccounts(ctx.db) };
  const decisions: ReviewDecisions = { accounts: {}, matrixNote: null };
  await ctx.db
    .insertInto('access_review')
    .values({ id, status: 'in_progress', started_at: now, started_by: ctx.actor.id ?? ctx.actor.name, snapshot: JSON.stringify(snapshot), decisions: JSON.stringify(decisions), signed_off_at: null, signed_off_by: null, summary: null })
    .execute();
  await ctx.audit.record({
    action: 'access.review_started',
    target: `access_review:${id}`,
    severity: 'notice',
    details: { privilegedAccounts: snapshot.accounts.length, schoolSystems: snapshot.matrix.systems.length },
  });
  return id;
}

async function saveDecisions(ctx: Ctx, id: string, decisions: ReviewDecisions): Promise<void> {
  await ctx.db.updateTable('access_review').set({ decisions: JSON.stringify(decisions) }).where('id', '=', id).execute();
}

/**
 * Confirms an account or records that it must change. With `disable`, the account is disabled
 * first, under the same rules as in accounts administration (never the master account, never
 * one's own; its sessions end) and audited as such; then the decision is recorded.
 */
export async function decideAccount(
  rt: Runtime,
  actor: Actor,
  reviewId: string,
  accountId: string,
  input: z.infer<typeof decisionInputSchema>,
  m: { ip: string | null; requestId: string | null },
): Promise<Review> {
  const review = await inProgress(rt.db.kysely, reviewId);
  const account = review.snapshot.accounts.find((a) => a.id === accountId);
  if (!account) throw notFound('That account is not among the privileged accounts of this review.');
  let disabled = false;
  if (input.disable) {
    if (account.isBreakGlass) throw new GatehouseError('break_glass_protected', 409, 'The master (break-glass) account cannot be disabled (AC-08). Record the change needed, and keep its sealed password safe.');
    if (accountId === actor.id) throw new GatehouseError('own_account', 409, 'You cannot disable your own account. Record the change needed and ask another person to make it.');
    const current = await rt.db.kysely.selectFrom('account').select('status').where('id', '=', accountId).executeTakeFirst();
    if (!current) throw notFound('That account no longer exists.');
    if (current.status === 'active') {
      // Disabling is no grant of rights: no step-up (changeAccount asks for one only for a privileged role).
      await changeAccount(rt, actor, accountId, { status: 'disabled' }, m, noStepUp);
      disabled = true;
    }
  }
  await rt.trail.transaction(actor, async (ctx) => {
    const fresh = await inProgress(ctx.db, reviewId);
    const previous = fresh.decisions.accounts[accountId];
    const decision: AccountDecision = {
      decision: input.decision,
      note: input.note || null,
      disabled: disabled || (previous?.disabled ?? false),
      decidedAt: ctx.clock.now().toISOString(),
      decidedBy: await personOf(ctx),
    };
    await saveDecisions(ctx, reviewId, { ...fresh.decisions, accounts: { ...fresh.decisions.accounts, [accountId]: decision } });
    await ctx.audit.record({
      action: 'access.review_decided',
      target: `access_review:${reviewId}`,
      details: { accountId, username: account.username, decision: input.decision, note: decision.note, disabledNow: disabled, ...(previous ? { was: previous.decision } : {}) },
    });
  }, m);
  return getReview(rt.db.kysely, reviewId);
}

export async function noteOnMatrix(ctx: Ctx, reviewId: string, input: z.infer<typeof matrixNoteSchema>): Promise<void> {
  const review = await inProgress(ctx.db, reviewId);
  const note = input.note || null;
  if (note === review.decisions.matrixNote) return;
  await saveDecisions(ctx, reviewId, { ...review.decisions, matrixNote: note });
  await ctx.audit.record({ action: 'access.review_matrix_noted', target: `access_review:${reviewId}`, details: { note } });
}

export async function signOff(ctx: Ctx, reviewId: string, input: z.infer<typeof signOffSchema>): Promise<void> {
  const review = await inProgress(ctx.db, reviewId);
  const missing = review.snapshot.accounts.filter((a) => !review.decisions.accounts[a.id]);
  if (missing.length > 0) {
    const names = missing.slice(0, 5).map((a) => a.username).join(', ');
    throw new GatehouseError(
      'decisions_missing',
      409,
      `Decide on every privileged account before signing off: ${missing.length} still ${missing.length === 1 ? 'needs' : 'need'} a decision (${names}${missing.length > 5 ? ', …' : ''}).`,
      { missing: missing.map((a) => a.id) },
    );
  }
  const now = ctx.clock.now().toISOString();
  const by = await personOf(ctx);
  const made = Object.values(review.decisions.accounts);
  await ctx.db
    .updateTable('access_review')
    .set({ status: 'signed_off', signed_off_at: now, signed_off_by: ctx.actor.id ?? ctx.actor.name, summary: input.summary, decisions: JSON.stringify({ ...review.decisions, signedOffBy: by }) })
    .where('id', '=', reviewId)
    .execute();
  await ctx.audit.record({
    action: 'access.review_signed_off',
    target: `access_review:${reviewId}`,
    severity: 'notice',
    details: {
      startedAt: review.startedAt,
      privilegedAccounts: review.snapshot.accounts.length,
      confirmed: made.filter((d) => d.decision === 'confirm').length,
      changes: made.filter((d) => d.decision === 'change').length,
      disabled: made.filter((d) => d.disabled).length,
      summary: input.summary,
    },
  });
}

export async function cancelReview(ctx: Ctx, reviewId: string): Promise<void> {
  const review = await inProgress(ctx.db, reviewId);
  await ctx.db.updateTable('access_review').set({ status: 'cancelled' }).where('id', '=', reviewId).execute();
  await ctx.audit.record({ action: 'access.review_cancelled', target: `access_review:${reviewId}`, severity: 'notice', details: { startedAt: review.startedAt, decided: review.decided, accounts: review.accounts } });
}
