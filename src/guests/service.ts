import type { Kysely, Selectable } from 'kysely';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import { z } from 'zod';
import type { Actor, Ctx } from '../core/context.js';
import { systemActor } from '../core/context.js';
import { GatehouseError, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { describeLocal, localTimeOnSameDay, startOfLocalDay } from '../core/local-time.js';
import type { DueItem } from '../dashboard/due.js';
import type { GuestAllocationTable, Schema } from '../db/schema.js';
import { settingsFor } from '../identity/policy.js';
import { createAccount, GUEST_POOL_SOURCE } from '../identity/service.js';
import { endAccountAccess } from '../identity/sessions.js';
import { newTemporaryPassword } from '../identity/temporary-password.js';
import type { Runtime } from '../runtime.js';
import { getSchool } from '../school/service.js';
import { lockAuditWriter } from '../audit/writer.js';

/**
 * The guest desk (AC-05). Guests — supply and trainee teachers, visitors — get temporary access
 * through an agreed process: an administrator keeps a pool of pre-created guest accounts
 * (guest-01, guest-02 …, no password, disabled while free); reception allocates one to a named
 * visitor with a fresh password printed on a slip; access ends at the stated time or at the end of
 * the school day, whichever is first; the sweep then disables the account and frees it, and later
 * wipes the visitor's details from the allocation, while the audit trail keeps the allocation.
 */
const USERNAME = /^guest-(\d+)$/;

type Allocation = Selectable<GuestAllocationTable>;
type Meta = { ip: string | null; requestId: string | null };

export type PoolState = 'free' | 'allocated' | 'past_end';

export interface PoolAccount {
  id: string;
  username: string;
  /** free: ready to allocate; allocated: a visit in progress; past_end: the visit's time is up and the sweep has not yet disabled it (sign-in is already refused) */
  state: PoolState;
  visit: Visit | null;
  /** Ended visits whose details are still held (wiped after the retention period). */
  detailsHeld: number;
  lastUsedAt: string | null;
}

export type VisitState = 'active' | 'past_end' | 'ended' | 'wiped';

export interface Visit {
  id: string;
  accountId: string;
  username: string;
  visitorName: string | null;
  organisation: string | null;
  purpose: string | null;
  host: string | null;
  startsAt: string;
  endsAt: string;
  endedAt: string | null;
  endReason: string | null;
  wipedAt: string | null;
  allocatedBy: string;
  state: VisitState;
  /** When the visitor's details will be wiped (ended visits not yet wiped). */
  wipeDueAt: string | null;
}

export interface Slip {
  school: string;
  visitorName: string;
  organisation: string | null;
  username: string;
  /** Shown once, for the slip; never stored in clear or written to the trail. */
  password: string;
  validUntil: string;
  timeZone: string;
  /** The profile asks guests to accept the Acceptable Use Policy at first sign-in. */
  aupAtSignIn: boolean;
}

const DAY = 86_400_000;

function wipeDue(rt: Runtime, a: Allocation): string | null {
  if (!a.ended_at || a.wiped_at) return null;
  return new Date(Date.parse(a.ended_at) + rt.profile.guests.retentionDays * DAY).toISOString();
}

function visitState(rt: Runtime, a: Allocation): VisitState {
  if (a.wiped_at) return 'wiped';
  if (a.ended_at) return 'ended';
  return a.ends_at <= rt.clock.now().toISOString() ? 'past_end' : 'active';
}

function view(rt: Runtime, a: Allocation, username: string): Visit {
  return {
    id: a.id,
    accountId: a.account_id,
    username,
    visitorName: a.visitor_name,
    organisation: a.organisation,
    purpose: a.purpose,
    host: a.host,
    startsAt: a.starts_at,
    endsAt: a.ends_at,
    endedAt: a.ended_at,
    endReason: a.end_reason,
    wipedAt: a.wiped_at,
    allocatedBy: a.allocated_by,
    state: visitState(rt, a),
    wipeDueAt: wipeDue(rt, a),
  };
}

// --- The pool ---------------------------------------------------------------------------------

export async function listPool(rt: Runtime): Promise<PoolAccount[]> {
  const db = rt.db.kysely;
  const accounts = await db.selectFrom('account').select(['id', 'username']).where('role', '=', 'guest').where('source', '=', GUEST_POOL_SOURCE).execute();
  if (accounts.length === 0) return [];
  const allocations = await db.selectFrom('guest_allocation').selectAll().where('account_id', 'in', accounts.map((a) => a.id)).orderBy('starts_at', 'desc').execute();
  const byAccount = new Map<string, Allocation[]>();
  for (const a of allocations) byAccount.set(a.account_id, [...(byAccount.get(a.account_id) ?? []), a]);
  return accounts
    .map((account) => {
      const mine = byAccount.get(account.id) ?? [];
      const open = mine.find((a) => a.ended_at === null);
      const state: PoolState = open ? (visitState(rt, open) === 'past_end' ? 'past_end' : 'allocated') : 'free';
      return {
        id: account.id,
        username: account.username,
        state,
        visit: open ? view(rt, open, account.username) : null,
        detailsHeld: mine.filter((a) => a.ended_at !== null && a.wiped_at === null).length,
        lastUsedAt: mine[0]?.starts_at ?? null,
      };
    })
    .sort((a, b) => poolNumber(a.username) - poolNumber(b.username) || a.username.localeCompare(b.username));
}

function poolNumber(username: string): number {
  const m = USERNAME.exec(username);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

export const poolAddSchema = z.object({
  count: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(50, 'must be at most 50 at a time'),
});

/**
 * Adds `count` guest accounts to the pool, numbered on from the highest guest-NN there is (a
 * username someone else already has is skipped). No password, disabled: nobody can sign in to a
 * free guest account.
 */
export async function addPoolAccounts(rt: Runtime, actor: Actor, input: z.infer<typeof poolAddSchema>, m: Meta): Promise<string[]> {
  return rt.trail.transaction(actor, async (ctx) => {
    await lockAuditWriter(ctx.db); // one at a time (PostgreSQL), so two lists never pick the same numbers
    const taken = await ctx.db.selectFrom('account').select('username').where('username', 'like', 'guest-%').execute();
    const names = new Set(taken.map((t) => t.username));
    let next = Math.max(0, ...taken.map((t) => USERNAME.exec(t.username)).filter((x) => x !== null).map((x) => Number(x[1]))) + 1;
    const created: string[] = [];
    while (created.length < input.count) {
      const username = `guest-${String(next).padStart(2, '0')}`;
      next++;
      if (names.has(username)) continue;
      await createAccount(ctx, {
        username,
        displayName: `Guest ${username.slice('guest-'.length)}`,
        email: null,
        role: 'guest',
        passwordHash: null,
        source: GUEST_POOL_SOURCE,
        status: 'disabled',
      });
      created.push(username);
    }
    await ctx.audit.record({ action: 'guest.pool_extended', target: 'guest_pool', severity: 'notice', details: { added: created.length, usernames: created } });
    return created;
  }, m);
}

// --- Allocation at reception --------------------------------------------------------------------

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .nullish()
    .transform((v) => (v ? v : null));

export const allocateSchema = z
  .object({
    visitorName: z.string({ error: 'is required' }).trim().min(1, 'is required').max(200, 'must be at most 200 characters'),
    organisation: optionalText(200),
    purpose: z.string({ error: 'is required' }).trim().min(1, 'is required').max(300, 'must be at most 300 characters'),
    host: optionalText(200),
    /** The member of staff the visitor is with, if they have an account. */
    hostAccountId: z.uuid('must be an account id').nullish(),
    /** "15:30" (today, school time) or a date and time with its zone, e.g. 2026-09-07T15:30:00+01:00 */
    expectedEnd: z
      .string({ error: 'is required' })
      .trim()
      .min(1, { error: 'is required', abort: true })
      .refine((v) => HHMM.test(v) || (ISO_WITH_ZONE.test(v) && !Number.isNaN(Date.parse(v))), 'must be a time today like 15:30, or a date and time with its zone like 2026-09-07T15:30:00+01:00'),
    /** A particular free pool account; otherwise the lowest-numbered free one. */
    accountId: z.uuid('must be an account id').nullish(),
  })
  .refine((v) => v.host || v.hostAccountId, { message: 'is required: the member of staff the visitor is with', path: ['host'] });

export type AllocateInput = z.infer<typeof allocateSchema>;

/**
 * When the visit's access ends: the stated time, or the profile's end of the school day (local
 * time in the profile's zone, right across BST and GMT), whichever is first.
 */
export function accessEnd(rt: Runtime, expectedEnd: string): { endsAt: Date; expected: Date; capped: boolean; endOfDay: Date } {
  const now = rt.clock.now();
  const { timeZone, guests } = rt.profile;
  const expected = HHMM.test(expectedEnd) ? localTimeOnSameDay(now, expectedEnd, timeZone) : new Date(expectedEnd);
  const endOfDay = localTimeOnSameDay(now, guests.endOfDay, timeZone);
  if (expected.getTime() <= now.getTime()) {
    throw validationFailed(`The expected end (${describeLocal(expected, timeZone)}) has already passed: give a time later than now.`, { field: 'body.expectedEnd' });
  }
  if (endOfDay.getTime() <= now.getTime()) {
    throw new GatehouseError(
      'guest_day_over',
      409,
      `Guest access ends at ${guests.endOfDay} each day under the school’s policy, and it is already past that. A guest account can be allocated again tomorrow.`,
    );
  }
  const capped = endOfDay.getTime() < expected.getTime();
  return { endsAt: capped ? endOfDay : expected, expected, capped, endOfDay };
}

async function freeAccount(db: Kysely<Schema>, chosen: string | null | undefined) {
  let q = db
    .selectFrom('account')
    .select(['id', 'username'])
    .where('role', '=', 'guest')
    .where('source', '=', GUEST_POOL_SOURCE)
    .where('id', 'not in', (eb) => eb.selectFrom('guest_allocation').select('account_id').where('ended_at', 'is', null));
  if (chosen) q = q.where('id', '=', chosen);
  const rows = await q.execute();
  return rows.sort((a, b) => poolNumber(a.username) - poolNumber(b.username))[0];
}

/**
 * Allocates a free pool account to a named visitor: a fresh password (hashed before the
 * transaction), the account enabled until the visit's end, the allocation recorded and audited
 * with the visitor's details (never the password). The password comes back once, for the slip.
 */
export async function allocateGuest(rt: Runtime, actor: Actor, input: AllocateInput, m: Meta): Promise<{ visit: Visit; slip: Slip }> {
  const { endsAt, expected, capped } = accessEnd(rt, input.expectedEnd);
  let host = input.host ?? null;
  if (input.hostAccountId) {
    const staff = await rt.db.kysely.selectFrom('account').select(['display_name', 'role', 'status']).where('id', '=', input.hostAccountId).executeTakeFirst();
    if (!staff || staff.status !== 'active' || staff.role === 'guest' || staff.role === 'pupil') {
      throw validationFailed('The host must be an active member of staff.', { field: 'body.hostAccountId' });
    }
    host ??= staff.display_name;
  }
  const candidate = await freeAccount(rt.db.kysely, input.accountId);
  if (!candidate) throw poolExhausted(input.accountId);

  const { temporaryPassword: password, hash } = await newTemporaryPassword(rt, 'guest', { username: candidate.username, names: [input.visitorName], personal: input.organisation ? [input.organisation] : [] });

  const visit = await rt.trail.transaction(actor, async (ctx) => {
    // Another desk may have taken it since: look again under the trail's lock (which serialises
    // this with every other allocation on PostgreSQL, as BEGIN IMMEDIATE does on SQLite) and take
    // the next free one (or refuse, if one was chosen).
    await lockAuditWriter(ctx.db);
    const account = await freeAccount(ctx.db, input.accountId);
    if (!account) throw poolExhausted(input.accountId);
    const now = ctx.clock.now().toISOString();
    await clearPersonalState(ctx, account.id);
    // No forced change at first sign-in (must_change_password 0), unlike other temporary
    // passwords: the password is printed for one visitor, the account stops working the same
    // day and its password is cleared when the visit ends, and a visitor signs in on a phone and
    // a laptop with what the slip says. A forced change would make the slip wrong after the first
    // sign-in and add nothing the day's expiry does not already give.
    await ctx.db
      .updateTable('account')
      .set({
        password_hash: hash,
        password_set_at: now,
        status: 'active',
        must_change_password: 0,
        temporary_expires_at: null,
        access_ends_at: endsAt.toISOString(),
        failed_attempts: 0,
        locked_at: null,
        updated_at: now,
      })
      .where('id', '=', account.id)
      .execute();
    const id = newId();
    const row: Allocation = {
      id,
      account_id: account.id,
      visitor_name: input.visitorName,
      organisation: input.organisation ?? null,
      purpose: input.purpose,
      host,
      starts_at: now,
      ends_at: endsAt.toISOString(),
      ended_at: null,
      end_reason: null,
      wiped_at: null,
      allocated_by: actor.name,
    };
    await ctx.db.insertInto('guest_allocation').values(row).execute();
    await ctx.audit.record({
      action: 'guest.allocated',
      target: `account:${account.id}`,
      severity: 'notice',
      details: {
        allocationId: id,
        username: account.username,
        visitorName: row.visitor_name,
        organisation: row.organisation,
        purpose: row.purpose,
        host,
        ...(input.hostAccountId ? { hostAccountId: input.hostAccountId } : {}),
        expectedEnd: expected.toISOString(),
        endsAt: row.ends_at,
        cappedAtEndOfDay: capped,
      },
    });
    return view(rt, row, account.username);
  }, m);

  const school = await getSchool({ db: rt.db.kysely });
  return {
    visit,
    slip: {
      school: school?.name ?? '',
      visitorName: input.visitorName,
      organisation: input.organisation ?? null,
      username: visit.username,
      password,
      validUntil: visit.endsAt,
      timeZone: rt.profile.timeZone,
      aupAtSignIn: settingsFor(rt.profile, 'guest').aup.required,
    },
  };
}

function poolExhausted(chosen: string | null | undefined): GatehouseError {
  if (chosen) return new GatehouseError('guest_account_unavailable', 409, 'That guest account is not free: choose another, or leave the choice to Gatehouse.');
  return new GatehouseError(
    'guest_pool_empty',
    409,
    'Every guest account is in use. End a visit that has finished, or ask an IT administrator to add guest accounts to the pool (Guest desk → Pool).',
  );
}

/**
 * What one visitor may have left on a shared account: an authenticator app, passkeys, recovery
 * codes, password history, Acceptable Use Policy acceptances (the next visitor accepts for
 * themselves; the trail keeps every acceptance), sign-ins in progress.
 */
async function clearPersonalState(ctx: Ctx, accountId: string): Promise<void> {
  await ctx.db.deleteFrom('sign_in_attempt').where('account_id', '=', accountId).execute();
  await ctx.db.deleteFrom('recovery_code').where('account_id', '=', accountId).execute();
  await ctx.db.deleteFrom('passkey').where('account_id', '=', accountId).execute();
  await ctx.db.deleteFrom('password_history').where('account_id', '=', accountId).execute();
  await ctx.db.deleteFrom('aup_acceptance').where('account_id', '=', accountId).execute();
  await ctx.db.updateTable('account').set({ totp_secret: null, totp_last_step: null, totp_enrolled_at: null }).where('id', '=', accountId).execute();
}

// --- Visits ---------------------------------------------------------------------------------

export const visitsQuerySchema = z.object({
  scope: z.enum(['today', 'open', 'all'], { error: 'must be today, open or all' }).default('today'),
});

/**
 * today: visits in progress plus every visit that started today (school time); open: only those in
 * progress; all: every visit, newest first (wiped ones without their details).
 */
export async function listVisits(rt: Runtime, scope: 'today' | 'open' | 'all' = 'today'): Promise<Visit[]> {
  let q = rt.db.kysely.selectFrom('guest_allocation as g').innerJoin('account as a', 'a.id', 'g.account_id').selectAll('g').select('a.username as username');
  if (scope === 'open') q = q.where('g.ended_at', 'is', null);
  if (scope === 'today') {
    const midnight = startOfLocalDay(rt.clock.now(), rt.profile.timeZone).toISOString();
    q = q.where((eb) => eb.or([eb('g.ended_at', 'is', null), eb('g.starts_at', '>=', midnight)]));
  }
  const rows = await q.orderBy('g.starts_at', 'desc').limit(scope === 'all' ? 1000 : 500).execute();
  return rows.map(({ username, ...a }) => view(rt, a, username));
}

async function loadVisit(db: Kysely<Schema>, id: string) {
  const row = await db.selectFrom('guest_allocation as g').innerJoin('account as a', 'a.id', 'g.account_id').selectAll('g').select('a.username as username').where('g.id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such visit.');
  return row;
}

/**
 * Ends a visit inside the caller's transaction: sessions end, the account is disabled, its
 * password and access end cleared, whatever the visitor left on it removed; the account is free.
 */
async function endVisitIn(ctx: Ctx, visit: Allocation & { username: string }, reason: 'ended_early' | 'expired'): Promise<void> {
  const now = ctx.clock.now().toISOString();
  const { sessionsEnded } = await endAccountAccess(ctx, visit.account_id, reason === 'expired' ? 'guest_access_ended' : 'guest_visit_ended');
  await clearPersonalState(ctx, visit.account_id);
  await ctx.db
    .updateTable('account')
    .set({ status: 'disabled', password_hash: null, password_set_at: null, access_ends_at: null, must_change_password: 0, temporary_expires_at: null, failed_attempts: 0, locked_at: null, updated_at: now })
    .where('id', '=', visit.account_id)
    .execute();
  await ctx.db.updateTable('guest_allocation').set({ ended_at: now, end_reason: reason }).where('id', '=', visit.id).execute();
  await ctx.audit.record({
    action: 'guest.visit_ended',
    target: `account:${visit.account_id}`,
    severity: 'info',
    details: { allocationId: visit.id, username: visit.username, reason, endsAt: visit.ends_at, sessionsEnded },
  });
}

/** Reception ends a visit early (the visitor has left): sign-in stops at once. */
export async function endVisit(rt: Runtime, actor: Actor, id: string, m: Meta): Promise<Visit> {
  await rt.trail.transaction(actor, async (ctx) => {
    await lockAuditWriter(ctx.db);
    const visit = await loadVisit(ctx.db, id);
    if (visit.ended_at) throw new GatehouseError('visit_already_ended', 409, `That visit already ended (${visit.end_reason === 'expired' ? 'its time ran out' : 'it was ended at reception'}).`);
    await endVisitIn(ctx, visit, 'ended_early');
  }, m);
  const row = await loadVisit(rt.db.kysely, id);
  return view(rt, row, row.username);
}

// --- The sweep --------------------------------------------------------------------------------

export interface SweepResult {
  ended: number;
  wiped: number;
}

/**
 * Ends every visit whose time is up (end_reason 'expired'), then wipes the visitor's details
 * (name, organisation, purpose, host) from visits that ended more than the profile's
 * `guests.retentionDays` ago. The audit trail keeps each allocation as it was recorded. Safe to
 * run from several nodes at once: each transaction looks again under the trail's lock.
 */
export async function sweepGuests(rt: Runtime, actor: Actor = systemActor()): Promise<SweepResult> {
  const db = rt.db.kysely;
  const result: SweepResult = { ended: 0, wiped: 0 };
  const now = () => rt.clock.now().toISOString();
  const pastEnd = await db.selectFrom('guest_allocation').select('id').where('ended_at', 'is', null).where('ends_at', '<=', now()).execute();
  if (pastEnd.length > 0) {
    result.ended = await rt.trail.transaction(actor, async (ctx) => {
      await lockAuditWriter(ctx.db);
      let n = 0;
      for (const { id } of pastEnd) {
        const visit = await loadVisit(ctx.db, id);
        if (visit.ended_at || visit.ends_at > ctx.clock.now().toISOString()) continue;
        await endVisitIn(ctx, visit, 'expired');
        n++;
      }
      return n;
    });
  }
  const cutoff = () => new Date(rt.clock.now().getTime() - rt.profile.guests.retentionDays * DAY).toISOString();
  const toWipe = await db.selectFrom('guest_allocation').select('id').where('wiped_at', 'is', null).where('ended_at', 'is not', null).where('ended_at', '<=', cutoff()).execute();
  if (toWipe.length > 0) {
    result.wiped = await rt.trail.transaction(actor, async (ctx) => {
      await lockAuditWriter(ctx.db);
      let n = 0;
      for (const { id } of toWipe) {
        const visit = await loadVisit(ctx.db, id);
        if (visit.wiped_at || !visit.ended_at || visit.ended_at > cutoff()) continue;
        await ctx.db.updateTable('guest_allocation').set({ visitor_name: null, organisation: null, purpose: null, host: null, wiped_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
        await ctx.audit.record({
          action: 'guest.details_wiped',
          target: `guest_allocation:${id}`,
          severity: 'info',
          details: { allocationId: id, username: visit.username, endedAt: visit.ended_at, retentionDays: rt.profile.guests.retentionDays },
        });
        n++;
      }
      return n;
    });
  }
  return result;
}

/**
 * Runs the sweep every minute while the server runs (and once at start, for visits that ended
 * while it was down); `stop` waits for a sweep under way, so the database is not closed under it.
 */
export function scheduleGuestSweep(rt: Runtime, everyMs = 60_000): Periodic {
  return schedulePeriodic(rt.logger, 'guest sweep', async () => {
    const r = await sweepGuests(rt);
    if (r.ended || r.wiped) rt.logger.info({ guestSweep: r }, 'guest sweep: visits ended and details wiped');
  }, { everyMs, firstAfterMs: 0 });
}

// --- What needs attention -----------------------------------------------------------------------

/** The overview's items for the guest desk: a pool running low, visits past their end, details overdue for wiping. */
export async function guestDueItems(rt: Runtime): Promise<DueItem[]> {
  const pool = await listPool(rt);
  if (pool.length === 0) return [];
  const items: DueItem[] = [];
  const base = { href: '/guests', requirement: 'AC-05', permission: 'guests.manage' as const };
  const free = pool.filter((p) => p.state === 'free').length;
  if (free < 2) {
    items.push({
      ...base,
      kind: 'guest_pool_low',
      title: free === 0 ? 'Every guest account is in use' : 'Only one guest account is free',
      detail: `${pool.length} guest account${pool.length === 1 ? '' : 's'} in the pool, ${free} free. An IT administrator can add more on the Guest desk.`,
      dueAt: null,
      overdue: free === 0,
    });
  }
  for (const p of pool.filter((x) => x.state === 'past_end')) {
    items.push({
      ...base,
      kind: 'guest_visit_past_end',
      title: `${p.username}: the visit has passed its end and the account is not yet disabled`,
      detail: 'Sign-in is already refused; the sweep disables the account within a minute. If this stays, check that the server is running its scheduled work.',
      dueAt: p.visit!.endsAt,
      overdue: true,
    });
  }
  const cutoff = new Date(rt.clock.now().getTime() - rt.profile.guests.retentionDays * DAY).toISOString();
  const overdue = await rt.db.kysely
    .selectFrom('guest_allocation')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('ended_at').as('oldest')])
    .where('wiped_at', 'is', null)
    .where('ended_at', 'is not', null)
    .where('ended_at', '<=', cutoff)
    .executeTakeFirstOrThrow();
  if (Number(overdue.n) > 0) {
    items.push({
      ...base,
      kind: 'guest_details_wipe',
      title: `${Number(overdue.n)} ended visit${Number(overdue.n) === 1 ? '' : 's'} still hold visitor details past the ${rt.profile.guests.retentionDays}-day retention period`,
      detail: 'The sweep wipes them; run `gatehouse guests sweep` if the server has not done so.',
      dueAt: new Date(Date.parse(String(overdue.oldest)) + rt.profile.guests.retentionDays * DAY).toISOString(),
      overdue: true,
    });
  }
  return items;
}
