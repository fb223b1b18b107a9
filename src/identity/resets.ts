import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError, conflict, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { AccountTable, ResetRequestTable } from '../db/schema.js';
import { teaches } from '../directory/groups.js';
import { loadAccount } from './accounts.js';
import type { Runtime } from '../runtime.js';
import { settingsFor } from './policy.js';
import { protectGuestPool } from './service.js';
import { ALLOCATE_AT_GUEST_DESK, issueTemporaryPassword } from './temporary-password.js';

/**
 * Password resets that reach only the genuine person (AC-10) and are logged (AU-02):
 * - self-service (AC-11, in self-service-reset.ts): the person proves themselves with their
 *   authenticator app or a recovery code and, as the profile asks (staff always), a link e-mailed to
 *   the address on file, then chooses a new password; it also unlocks a locked account. The profile
 *   says which groups may (pupils may not: "pupils' resets are done by staff"); administrators and
 *   accounts linked to an administrator account never may.
 * - pupils, by the staff who teach them (AC-03 object level): a temporary password to hand over,
 *   changed at first sign-in. Staff reach only pupils in classes they teach; administrators any pupil.
 * - staff and administrators, where the profile asks for a second person: a request with a
 *   reason, approved or refused by another authorised person, and only then a temporary password,
 *   issued by one of the two to the person whose identity they have checked.
 */
type Account = Selectable<AccountTable>;
type ResetRequest = Selectable<ResetRequestTable>;
type Meta = { ip: string | null; requestId: string | null };

const REQUEST_VALID_HOURS = 72;

// --- Pupils, by their teachers ----------------------------------------------------------------------

export interface PupilSummary {
  id: string;
  username: string;
  displayName: string;
  status: string;
  locked: boolean;
  classes: string[];
}

/** The pupils a member of staff may reset: those in the classes they teach (administrators: all). */
export async function myPupils(rt: Runtime, actor: Actor, q?: string): Promise<PupilSummary[]> {
  let query = rt.db.kysely
    .selectFrom('account as a')
    .innerJoin('group_member as p', (j) => j.onRef('p.account_id', '=', 'a.id').on('p.member_role', '=', 'member'))
    .innerJoin('directory_group as g', 'g.id', 'p.group_id')
    .select(['a.id', 'a.username', 'a.display_name', 'a.status', 'a.locked_at', 'g.name as group_name'])
    .where('a.role', '=', 'pupil')
    .where('a.status', '!=', 'left');
  if (actor.role !== 'administrator') {
    query = query.where('p.group_id', 'in', (eb) => eb.selectFrom('group_member').select('group_id').where('account_id', '=', actor.id!).where('member_role', '=', 'teacher'));
  }
  if (q) {
    const like = `%${q.toLowerCase().replace(/[%_\\]/g, '')}%`;
    query = query.where((eb) => eb.or([eb('a.username', 'like', like), eb(eb.fn('lower', ['a.display_name']), 'like', like)]));
  }
  const rows = await query.orderBy('a.display_name').limit(2000).execute();
  const byId = new Map<string, PupilSummary>();
  for (const r of rows) {
    const p = byId.get(r.id) ?? { id: r.id, username: r.username, displayName: r.display_name, status: r.status, locked: r.locked_at !== null, classes: [] };
    if (!p.classes.includes(r.group_name)) p.classes.push(r.group_name);
    byId.set(r.id, p);
  }
  return [...byId.values()];
}

/**
 * AC-11 / AC-03: a pupil's reset by a member of staff who teaches them (or an administrator): a
 * temporary password to hand to the pupil, who must change it at sign-in.
 */
export async function resetPupilPassword(rt: Runtime, actor: Actor, pupilId: string, m: Meta): Promise<{ username: string; displayName: string; temporaryPassword: string; expiresAt: string }> {
  const pupil = await loadAccount(rt, pupilId);
  if (pupil.role !== 'pupil') {
    throw new GatehouseError('not_a_pupil', 403, 'Only pupils’ passwords are reset this way. A staff password reset is a request that a second person approves (Password resets).');
  }
  if (actor.role !== 'administrator' && !(actor.id && (await teaches(rt.db.kysely, actor.id, pupil.id)))) {
    await rt.trail.transaction(actor, (ctx) =>
      ctx.audit.record({ action: 'password_reset.refused', target: `account:${pupil.id}`, severity: 'warning', details: { username: pupil.username, reason: 'not_their_teacher' } }), m);
    throw new GatehouseError('not_your_pupil', 403, `${pupil.display_name} is not in a class you teach, so you cannot reset their password. Ask their teacher or the IT team.`);
  }
  const relation = actor.role === 'administrator' ? 'administrator' : 'teacher';
  const { temporaryPassword, expiresAt } = await issueTemporaryPassword(rt, actor, pupil, {
    reason: `pupil_reset_by_${relation}`,
    meta: m,
    alsoIn: (ctx) => ctx.audit.record({ action: 'password_reset.pupil', target: `account:${pupil.id}`, severity: 'notice', details: { username: pupil.username, by: actor.name, relation } }),
  });
  return { username: pupil.username, displayName: pupil.display_name, temporaryPassword, expiresAt };
}

// --- Staff: request, second-person approval, issue ------------------------------------------------

export const requestSchema = z.object({
  accountId: z.uuid('must be an account id'),
  reason: z.string().trim().min(3, 'say why (at least a few words)').max(500),
});
export const decisionSchema = z.object({ note: z.string().trim().max(500).optional() });
export const issueSchema = z.object({
  verifiedHow: z.string().trim().min(5, 'say how you checked it is really them (e.g. "in person, staff ID card")').max(300),
});

export interface ResetRequestSummary {
  id: string;
  status: string;
  account: { id: string; username: string; displayName: string; role: string };
  requestedBy: string | null;
  reason: string | null;
  createdAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionNote: string | null;
  issuedBy: string | null;
  issuedAt: string | null;
  verifiedHow: string | null;
  needsSecondPerson: boolean;
}

async function names(rt: Runtime, ids: Array<string | null>): Promise<Map<string, string>> {
  const list = [...new Set(ids.filter((i): i is string => Boolean(i)))];
  if (list.length === 0) return new Map();
  const rows = await rt.db.kysely.selectFrom('account').select(['id', 'display_name']).where('id', 'in', list).execute();
  return new Map(rows.map((r) => [r.id, r.display_name]));
}

function effectiveStatus(rt: Runtime, r: ResetRequest): string {
  if ((r.status === 'pending' || r.status === 'approved') && r.expires_at <= rt.clock.now().toISOString()) return 'expired';
  return r.status;
}

export const listRequestsSchema = z.object({ status: z.enum(['open', 'all']).default('open') });

export async function listResetRequests(rt: Runtime, query: { status: 'open' | 'all'; id?: string }): Promise<ResetRequestSummary[]> {
  let q = rt.db.kysely
    .selectFrom('reset_request as r')
    .innerJoin('account as a', 'a.id', 'r.account_id')
    .selectAll('r')
    .select(['a.username', 'a.display_name', 'a.role'])
    .where('r.kind', '=', 'staff_reset')
    .orderBy('r.created_at', 'desc')
    .limit(200);
  if (query.status === 'open') q = q.where('r.status', 'in', ['pending', 'approved']);
  if (query.id) q = q.where('r.id', '=', query.id);
  const rows = await q.execute();
  const who = await names(rt, rows.flatMap((r) => [r.requested_by, r.decided_by, r.issued_by]));
  return rows
    .map((r) => ({
      id: r.id,
      status: effectiveStatus(rt, r),
      account: { id: r.account_id, username: r.username, displayName: r.display_name, role: r.role },
      requestedBy: r.requested_by ? (who.get(r.requested_by) ?? 'a deleted account') : null,
      reason: r.reason,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      decidedBy: r.decided_by ? (who.get(r.decided_by) ?? 'a deleted account') : null,
      decidedAt: r.decided_at,
      decisionNote: r.decision_note,
      issuedBy: r.issued_by ? (who.get(r.issued_by) ?? 'a deleted account') : null,
      issuedAt: r.issued_at,
      verifiedHow: r.verified_how,
      needsSecondPerson: r.decided_by !== r.requested_by,
    }))
    .filter((r) => query.status === 'all' || r.status !== 'expired');
}

async function loadRequest(rt: Runtime, id: string): Promise<ResetRequest> {
  const r = await rt.db.kysely.selectFrom('reset_request').selectAll().where('id', '=', id).where('kind', '=', 'staff_reset').executeTakeFirst();
  if (!r) throw notFound('There is no such reset request.');
  return r;
}

/** AC-10: someone asks for a staff (or administrator) password to be reset, saying why. */
export async function requestStaffReset(rt: Runtime, actor: Actor, input: z.infer<typeof requestSchema>, m: Meta): Promise<ResetRequestSummary> {
  const account = await loadAccount(rt, input.accountId);
  if (account.is_break_glass) throw new GatehouseError('break_glass_protected', 403, 'The master (break-glass) account cannot be reset by any administrator (AC-08); it is recovered from the server with the CLI.');
  if (account.id === actor.id) throw forbidden('You cannot ask for your own password to be reset; use “Forgot your password?” on the sign-in page, or ask a colleague to request it.');
  if (account.role === 'pupil') throw new GatehouseError('pupil_account', 409, 'Pupils’ passwords are reset by their teachers (My pupils), without a request.');
  protectGuestPool(account, ALLOCATE_AT_GUEST_DESK);
  if (account.status !== 'active') throw new GatehouseError('account_inactive', 409, `That account is ${account.status}; it cannot be given a password.`);
  const open = await rt.db.kysely.selectFrom('reset_request').select('id').where('account_id', '=', account.id).where('kind', '=', 'staff_reset').where('status', 'in', ['pending', 'approved']).where('expires_at', '>', rt.clock.now().toISOString()).executeTakeFirst();
  if (open) throw conflict(`There is already an open reset request for ${account.display_name}.`, 'request_open');
  const secondPerson = settingsFor(rt.profile, account.role as Role).resets.secondPersonApproval;
  const now = rt.clock.now();
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('reset_request').values({
      id, account_id: account.id, kind: 'staff_reset', status: secondPerson ? 'pending' : 'approved', requested_by: actor.id, reason: input.reason,
      created_at: now.toISOString(), expires_at: new Date(now.getTime() + REQUEST_VALID_HOURS * 3_600_000).toISOString(),
      // Where the profile asks for no second person, the request stands approved by its maker.
      decided_by: secondPerson ? null : actor.id, decided_at: secondPerson ? null : now.toISOString(), decision_note: secondPerson ? null : 'the profile asks for no second approval',
      issued_by: null, issued_at: null, verified_how: null, token_hash: null,
    }).execute();
    await ctx.audit.record({ action: 'password_reset.requested', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, requestId: id, reason: input.reason, needsSecondPerson: secondPerson } });
  }, m);
  return (await listResetRequests(rt, { status: 'all', id }))[0]!;
}

/** AC-10: a second authorised person approves or refuses; never the one who asked, never the person themselves. */
export async function decideStaffReset(rt: Runtime, actor: Actor, id: string, decision: 'approved' | 'refused', note: string | undefined, m: Meta): Promise<ResetRequestSummary> {
  const request = await loadRequest(rt, id);
  const status = effectiveStatus(rt, request);
  if (status !== 'pending') throw conflict(`This request is ${status}; only a pending request can be ${decision}.`, 'request_not_pending');
  if (request.requested_by === actor.id) throw new GatehouseError('second_person_required', 403, 'A second person must decide: you made this request, so someone else with the right to approve resets has to approve or refuse it.');
  if (request.account_id === actor.id) throw forbidden('You cannot decide a request to reset your own password.');
  await rt.trail.transaction(actor, async (ctx) => {
    const done = await ctx.db.updateTable('reset_request').set({ status: decision, decided_by: actor.id, decided_at: ctx.clock.now().toISOString(), decision_note: note ?? null }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
    if (Number(done.numUpdatedRows ?? 0) !== 1) throw conflict('This request was decided by someone else a moment ago.', 'request_not_pending');
    await ctx.audit.record({ action: `password_reset.${decision}`, target: `account:${request.account_id}`, severity: 'notice', details: { requestId: id, ...(note ? { note } : {}) } });
  }, m);
  return (await listResetRequests(rt, { status: 'all', id }))[0]!;
}

/**
 * After approval, one of the two issues the temporary password, having checked the person is who
 * they say (recorded). The person must change it at sign-in; all their sessions end.
 */
export async function issueStaffReset(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof issueSchema>, m: Meta): Promise<{ request: ResetRequestSummary; temporaryPassword: string }> {
  const request = await loadRequest(rt, id);
  const status = effectiveStatus(rt, request);
  if (status === 'pending') throw new GatehouseError('approval_required', 409, 'This request has not been approved yet: a second authorised person must approve it before a temporary password can be issued.');
  if (status !== 'approved') throw conflict(`This request is ${status}; a temporary password can only be issued for an approved request.`, 'request_not_approved');
  if (actor.id !== request.requested_by && actor.id !== request.decided_by) throw forbidden('Only the person who asked for this reset or the person who approved it may issue the password.');
  if (actor.id === request.account_id) throw forbidden('You cannot issue your own reset.');
  const account = await loadAccount(rt, request.account_id);
  const { temporaryPassword } = await issueTemporaryPassword(rt, actor, account, {
    reason: 'approved_reset',
    meta: m,
    alsoIn: async (ctx) => {
      const done = await ctx.db.updateTable('reset_request').set({ status: 'issued', issued_by: actor.id, issued_at: ctx.clock.now().toISOString(), verified_how: input.verifiedHow }).where('id', '=', id).where('status', '=', 'approved').executeTakeFirst();
      if (Number(done.numUpdatedRows ?? 0) !== 1) throw conflict('This request was issued by someone else a moment ago.', 'request_not_approved');
      await ctx.audit.record({ action: 'password_reset.issued', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, requestId: id, verifiedHow: input.verifiedHow } });
    },
  });
  return { request: (await listResetRequests(rt, { status: 'all', id }))[0]!, temporaryPassword };
}

export async function cancelStaffReset(rt: Runtime, actor: Actor, id: string, m: Meta): Promise<void> {
  const request = await loadRequest(rt, id);
  const status = effectiveStatus(rt, request);
  if (status !== 'pending' && status !== 'approved') throw conflict(`This request is ${status}; it cannot be cancelled.`, 'request_closed');
  if (actor.id !== request.requested_by && actor.role !== 'administrator') throw forbidden('Only the person who asked, or an administrator, may cancel a request.');
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.updateTable('reset_request').set({ status: 'cancelled' }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'password_reset.cancelled', target: `account:${request.account_id}`, details: { requestId: id } });
  }, m);
}

/** Does a reset done for this account need a second person first (so the direct route must refuse)? */
export function needsApproval(rt: Runtime, account: Pick<Account, 'role'>): boolean {
  return account.role !== 'pupil' && settingsFor(rt.profile, account.role as Role).resets.secondPersonApproval;
}

/** Needs attention: staff resets waiting for a second person's decision, and approved ones not yet issued. */
export async function resetDueItems(rt: Runtime): Promise<import('../dashboard/due.js').DueItem[]> {
  const open = await listResetRequests(rt, { status: 'open' });
  return open.map((r) => ({
    kind: 'password_reset',
    title: r.status === 'pending' ? `Password reset for ${r.account.displayName} is waiting for a second person’s approval` : `Approved password reset for ${r.account.displayName} is ready to issue`,
    detail: `Asked by ${r.requestedBy ?? 'someone'}: ${r.reason ?? ''}`,
    dueAt: r.expiresAt,
    overdue: false,
    href: '/resets',
    requirement: 'AC-10',
    permission: r.status === 'pending' ? 'resets.approve' : 'resets.request',
  }));
}
