import { afterEach, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import { verifyTrail } from '../../src/audit/verify.js';
import type { Role } from '../../src/core/authz.js';
import { ManualClock } from '../../src/core/clock.js';
import { systemActor } from '../../src/core/context.js';
import { scheduleGuestSweep, sweepGuests } from '../../src/guests/service.js';
import { createAccount } from '../../src/identity/service.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const MINUTE = 60_000;
const DAY = 86_400_000;

interface Slip {
  school: string;
  visitorName: string;
  username: string;
  password: string;
  validUntil: string;
  timeZone: string;
}
interface Visit {
  id: string;
  accountId: string;
  username: string;
  visitorName: string | null;
  organisation: string | null;
  purpose: string | null;
  host: string | null;
  endsAt: string;
  endedAt: string | null;
  endReason: string | null;
  wipedAt: string | null;
  state: string;
}
interface PoolAccount {
  id: string;
  username: string;
  state: string;
  visit: Visit | null;
}

const ADA = { visitorName: 'Ada Lovelace', organisation: 'Analytical Engines Ltd', purpose: 'STEM workshop with Year 6', host: 'Mr Babbage' };

async function person(t: TestApp, username: string, role: Role, displayName = 'Jane Bloggs'): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function events(t: TestApp, prefix: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => ({ action: r.action, body: r.body, details: parseBody(r.body).details as Record<string, unknown> }));
}

async function addPool(t: TestApp, admin: Session, count: number): Promise<string[]> {
  const r = await t.app.inject({ method: 'POST', url: '/api/guests/pool', headers: admin.headers, payload: { count } });
  expect(r.statusCode, r.body).toBe(201);
  return (r.json() as { created: string[] }).created;
}

async function pool(t: TestApp, who: Session): Promise<{ accounts: PoolAccount[]; free: number }> {
  const r = await t.app.inject({ method: 'GET', url: '/api/guests/pool', headers: who.headers });
  expect(r.statusCode, r.body).toBe(200);
  return r.json();
}

function allocate(t: TestApp, who: Session, payload: Record<string, unknown>) {
  return t.app.inject({ method: 'POST', url: '/api/guests/visits', headers: who.headers, payload });
}

async function allocated(t: TestApp, who: Session, payload: Record<string, unknown>): Promise<{ visit: Visit; slip: Slip }> {
  const r = await allocate(t, who, payload);
  expect(r.statusCode, r.body).toBe(201);
  return r.json();
}

function signInAttempt(t: TestApp, username: string, password: string) {
  return t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: '10.0.0.30' });
}

async function sessionStatus(t: TestApp, s: Session): Promise<number> {
  return (await t.app.inject({ method: 'GET', url: '/api/session', headers: s.headers })).statusCode;
}

for (const dialect of await dialects()) {
  describe(`guest desk (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });

    /** The school, its administrator and a receptionist (office role); 09:00 BST on Monday 7 September 2026. */
    async function desk(clock?: ManualClock): Promise<{ admin: Session; office: Session }> {
      t = await startTestApp(dialect, { clock });
      const admin = await setUpSchool(t);
      await person(t, 'reception', 'office', 'Rita Reception');
      const office = await signIn(t, 'reception', PASSWORD);
      return { admin, office };
    }

    it('AC-05 allocates a pre-created guest account to a named visitor and records it', async () => {
      const { admin, office } = await desk();
      expect(await addPool(t, admin, 3)).toEqual(['guest-01', 'guest-02', 'guest-03']);
      // Numbering carries on from the highest there is.
      expect(await addPool(t, admin, 2)).toEqual(['guest-04', 'guest-05']);
      const pooled = await t.runtime.db.kysely.selectFrom('account').selectAll().where('source', '=', 'guest-pool').orderBy('username').execute();
      expect(pooled.map((a) => [a.username, a.role, a.status, a.password_hash])).toEqual(
        ['guest-01', 'guest-02', 'guest-03', 'guest-04', 'guest-05'].map((u) => [u, 'guest', 'disabled', null]),
      );
      expect((await pool(t, office)).free).toBe(5);
      // A free guest account cannot be signed in to.
      expect((await signInAttempt(t, 'guest-01', 'Anything-At-All-1')).statusCode).toBe(401);

      const { visit, slip } = await allocated(t, office, { ...ADA, expectedEnd: '15:30' });
      expect(slip).toMatchObject({ school: 'Springfield Primary', visitorName: 'Ada Lovelace', username: 'guest-01', validUntil: '2026-09-07T14:30:00.000Z', timeZone: 'Europe/London' });
      expect(slip.password.length).toBeGreaterThanOrEqual(12);
      expect(visit).toMatchObject({ username: 'guest-01', ...ADA, endsAt: '2026-09-07T14:30:00.000Z', state: 'active', endedAt: null });

      const account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', 'guest-01').executeTakeFirstOrThrow();
      expect(account).toMatchObject({ status: 'active', must_change_password: 0, temporary_expires_at: null, access_ends_at: '2026-09-07T14:30:00.000Z' });
      expect(await t.runtime.hasher.verify(account.password_hash!, slip.password)).toBe(true);
      const row = await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().executeTakeFirstOrThrow();
      expect(row).toMatchObject({ account_id: account.id, visitor_name: 'Ada Lovelace', organisation: 'Analytical Engines Ltd', purpose: 'STEM workshop with Year 6', host: 'Mr Babbage', starts_at: '2026-09-07T08:00:00.000Z', ended_at: null, allocated_by: 'reception' });

      // Recorded with who the visitor is, and never the password (not in the trail, not in the log).
      const [allocatedEvent] = await events(t, 'guest.allocated');
      expect(allocatedEvent!.details).toMatchObject({ allocationId: visit.id, username: 'guest-01', ...ADA, endsAt: '2026-09-07T14:30:00.000Z', cappedAtEndOfDay: false });
      const everything = (await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute()).map((e) => e.body).join('\n');
      expect(everything).not.toContain(slip.password);
      expect(t.logs.text).not.toContain(slip.password);

      // The visitor signs in with what the slip says: no forced change.
      const guest = await signIn(t, 'guest-01', slip.password);
      expect(await sessionStatus(t, guest)).toBe(200);

      const after = await pool(t, office);
      expect(after.free).toBe(4);
      expect(after.accounts.find((a) => a.username === 'guest-01')).toMatchObject({ state: 'allocated', visit: { visitorName: 'Ada Lovelace', endsAt: '2026-09-07T14:30:00.000Z' } });
      const today = await t.app.inject({ method: 'GET', url: '/api/guests/visits', headers: office.headers });
      expect((today.json() as { visits: Visit[] }).visits.map((v) => v.visitorName)).toEqual(['Ada Lovelace']);

      // The next visitor gets the next free account, or the one reception chooses.
      const second = await allocated(t, office, { visitorName: 'Grace Hopper', purpose: 'Supply teaching', host: 'Mrs Smith', expectedEnd: '2026-09-07T16:00:00+01:00' });
      expect(second.slip.username).toBe('guest-02');
      expect(second.slip.password).not.toBe(slip.password);
      const chosen = pooled.find((a) => a.username === 'guest-05')!;
      const third = await allocated(t, office, { visitorName: 'Alan Turing', purpose: 'Governor visit', host: 'Head', expectedEnd: '12:00', accountId: chosen.id });
      expect(third.slip.username).toBe('guest-05');
    });

    it('AC-05 refuses a guest after the visit ends', async () => {
      const { admin, office: reception } = await desk();
      await addPool(t, admin, 2);
      const { visit, slip } = await allocated(t, reception, { ...ADA, expectedEnd: '09:30' });
      const guest = await signIn(t, slip.username, slip.password);

      // Up to the end, the session works (kept busy so the idle limit is not what stops it).
      for (let minute = 10; minute < 30; minute += 10) {
        t.clock.advance(10 * MINUTE);
        expect(await sessionStatus(t, guest)).toBe(200);
      }
      t.clock.advance(9 * MINUTE);
      expect(await sessionStatus(t, guest)).toBe(200);
      t.clock.advance(1 * MINUTE); // 09:30 BST: the visit's end
      expect(await sessionStatus(t, guest)).toBe(401);

      // The right password is now refused exactly as a wrong one is.
      const right = await signInAttempt(t, slip.username, slip.password);
      const wrong = await signInAttempt(t, slip.username, 'Not-The-Password-1');
      expect(right.statusCode).toBe(401);
      expect({ ...right.json().error, requestId: 0 }).toEqual({ ...wrong.json().error, requestId: 0 });
      const failures = await events(t, 'session.sign_in_failed');
      expect(failures.map((f) => f.details.reason)).toEqual(['access_ended', 'access_ended']);

      // Until the sweep has run, the overview shows the visit as past its end.
      const office = await signIn(t, 'reception', PASSWORD); // signed in again after the half hour
      const due = (await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers })).json() as { items: Array<{ kind: string; dueAt: string }> };
      expect(due.items).toContainEqual(expect.objectContaining({ kind: 'guest_visit_past_end', dueAt: '2026-09-07T08:30:00.000Z' }));

      // The sweep then disables the account, clears its password and frees it.
      expect(await sweepGuests(t.runtime)).toEqual({ ended: 1, wiped: 0 });
      const account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow();
      expect(account).toMatchObject({ status: 'disabled', password_hash: null, access_ends_at: null });
      const row = await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().where('id', '=', visit.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ ended_at: '2026-09-07T08:30:00.000Z', end_reason: 'expired', visitor_name: 'Ada Lovelace' });
      const sessions = await t.runtime.db.kysely.selectFrom('session').select(['ended_at', 'end_reason']).where('account_id', '=', visit.accountId).execute();
      expect(sessions).toEqual([{ ended_at: '2026-09-07T08:30:00.000Z', end_reason: 'guest_access_ended' }]);
      expect((await events(t, 'guest.visit_ended')).map((e) => e.details)).toEqual([expect.objectContaining({ allocationId: visit.id, username: 'guest-01', reason: 'expired', sessionsEnded: 1 })]);
      expect((await pool(t, office)).accounts.find((a) => a.username === 'guest-01')!.state).toBe('free');
      expect(await sweepGuests(t.runtime)).toEqual({ ended: 0, wiped: 0 });
      const dueAfter = (await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers })).json() as { items: Array<{ kind: string }> };
      expect(dueAfter.items.map((i) => i.kind)).not.toContain('guest_visit_past_end');
      // Still refused after the sweep, and the next visitor gets a fresh password.
      expect((await signInAttempt(t, slip.username, slip.password)).statusCode).toBe(401);
      const next = await allocated(t, office, { ...ADA, visitorName: 'Grace Hopper', expectedEnd: '11:00' });
      expect(next.slip.username).toBe('guest-01');
      expect((await signInAttempt(t, slip.username, slip.password)).statusCode).toBe(401);
      await signIn(t, next.slip.username, next.slip.password);
    });

    it('AC-05 ends a visit early at reception: the guest’s sessions end and the account is free again', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 1);
      const { visit, slip } = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
      const guest = await signIn(t, slip.username, slip.password);
      const ended = await t.app.inject({ method: 'POST', url: `/api/guests/visits/${visit.id}/end`, headers: office.headers });
      expect(ended.statusCode, ended.body).toBe(200);
      expect(ended.json()).toMatchObject({ id: visit.id, state: 'ended', endReason: 'ended_early', endedAt: '2026-09-07T08:00:00.000Z', visitorName: 'Ada Lovelace' });
      expect(await sessionStatus(t, guest)).toBe(401);
      expect((await signInAttempt(t, slip.username, slip.password)).statusCode).toBe(401);
      const account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow();
      expect(account).toMatchObject({ status: 'disabled', password_hash: null, access_ends_at: null });
      expect((await events(t, 'guest.visit_ended'))[0]!.details).toMatchObject({ reason: 'ended_early', sessionsEnded: 1 });
      expect((await pool(t, office)).free).toBe(1);
      const again = await t.app.inject({ method: 'POST', url: `/api/guests/visits/${visit.id}/end`, headers: office.headers });
      expect(again.statusCode).toBe(409);
      expect(again.json().error.message).toMatch(/already ended/);
    });

    it('AC-05 caps access at the end of the school day in local time (BST and GMT)', async () => {
      const desked = await desk();
      const admin = desked.admin;
      let office = desked.office;
      await addPool(t, admin, 4);
      // 21:00 asked for, 18:00 BST (17:00Z) given.
      const late = await allocated(t, office, { ...ADA, expectedEnd: '21:00' });
      expect(late.visit.endsAt).toBe('2026-09-07T17:00:00.000Z');
      expect((await events(t, 'guest.allocated'))[0]!.details).toMatchObject({ expectedEnd: '2026-09-07T20:00:00.000Z', endsAt: '2026-09-07T17:00:00.000Z', cappedAtEndOfDay: true });
      // Tomorrow is not today: still today's end of day.
      const tomorrow = await allocated(t, office, { ...ADA, visitorName: 'Grace Hopper', expectedEnd: '2026-09-08T10:00:00+01:00' });
      expect(tomorrow.visit.endsAt).toBe('2026-09-07T17:00:00.000Z');
      // In winter (GMT), 18:00 local is 18:00Z.
      t.clock.set('2026-12-07T09:00:00.000Z');
      office = await signIn(t, 'reception', PASSWORD);
      const winter = await allocated(t, office, { ...ADA, visitorName: 'Alan Turing', expectedEnd: '21:00' });
      expect(winter.visit.endsAt).toBe('2026-12-07T18:00:00.000Z');
      // After the end of the school day, nothing can be allocated until tomorrow.
      t.clock.set('2026-12-07T18:05:00.000Z');
      office = await signIn(t, 'reception', PASSWORD);
      const over = await allocate(t, office, { ...ADA, expectedEnd: '2026-12-07T20:00:00Z' });
      expect(over.statusCode).toBe(409);
      expect(over.json().error).toMatchObject({ code: 'guest_day_over' });
      expect(over.json().error.message).toContain('18:00');
    });

    it('AC-05 DP-02 wipes visitor details after the retention period while the audit trail keeps the allocation', async () => {
      const desked = await desk();
      const admin = desked.admin;
      let office = desked.office;
      await addPool(t, admin, 2);
      const { visit } = await allocated(t, office, { ...ADA, expectedEnd: '12:00' });
      t.clock.advance(3 * 3_600_000 + MINUTE); // past 12:00 BST
      expect(await sweepGuests(t.runtime)).toEqual({ ended: 1, wiped: 0 });

      // Kept through the retention period (30 days under the baseline)…
      t.clock.advance(29 * DAY);
      expect(await sweepGuests(t.runtime)).toEqual({ ended: 0, wiped: 0 });
      let row = await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().where('id', '=', visit.id).executeTakeFirstOrThrow();
      expect(row.visitor_name).toBe('Ada Lovelace');

      // …and the overview says when it is overdue for wiping.
      t.clock.advance(1 * DAY);
      office = await signIn(t, 'reception', PASSWORD);
      const due = await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers });
      expect((due.json() as { items: Array<{ kind: string }> }).items.map((i) => i.kind)).toContain('guest_details_wipe');

      expect(await sweepGuests(t.runtime)).toEqual({ ended: 0, wiped: 1 });
      row = await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().where('id', '=', visit.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ visitor_name: null, organisation: null, purpose: null, host: null, wiped_at: t.clock.now().toISOString(), ends_at: visit.endsAt, end_reason: 'expired' });
      const wiped = await events(t, 'guest.details_wiped');
      expect(wiped).toHaveLength(1);
      expect(wiped[0]!.details).toMatchObject({ allocationId: visit.id, username: 'guest-01' });
      for (const value of Object.values(ADA)) expect(wiped[0]!.body).not.toContain(value);

      // The trail still holds the allocation as it was recorded, and its chain is intact.
      expect((await events(t, 'guest.allocated'))[0]!.details).toMatchObject({ allocationId: visit.id, ...ADA });
      expect((await verifyTrail(t.runtime.db)).ok).toBe(true);
      const all = await t.app.inject({ method: 'GET', url: '/api/guests/visits?scope=all', headers: office.headers });
      expect((all.json() as { visits: Visit[] }).visits).toEqual([expect.objectContaining({ id: visit.id, state: 'wiped', visitorName: null, host: null })]);
      const dueAfter = await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers });
      expect((dueAfter.json() as { items: Array<{ kind: string }> }).items.map((i) => i.kind)).not.toContain('guest_details_wipe');
    });

    it('AC-05 refuses to allocate when every guest account is in use, with a clear message', async () => {
      const { admin, office } = await desk();
      const empty = await allocate(t, office, { ...ADA, expectedEnd: '15:00' });
      expect(empty.statusCode).toBe(409);
      expect(empty.json().error).toMatchObject({ code: 'guest_pool_empty', message: expect.stringContaining('Every guest account is in use') });

      await addPool(t, admin, 2);
      await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
      // One free: the overview warns that the pool is running low.
      let due = (await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers })).json() as { items: Array<{ kind: string; title: string }> };
      expect(due.items).toContainEqual(expect.objectContaining({ kind: 'guest_pool_low', title: 'Only one guest account is free' }));
      const second = await allocated(t, office, { ...ADA, visitorName: 'Grace Hopper', expectedEnd: '15:00' });
      const full = await allocate(t, office, { ...ADA, visitorName: 'Alan Turing', expectedEnd: '15:00' });
      expect(full.statusCode).toBe(409);
      expect(full.json().error.message).toMatch(/Every guest account is in use\. End a visit that has finished, or ask an IT administrator to add guest accounts/);
      due = (await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: office.headers })).json();
      expect(due.items).toContainEqual(expect.objectContaining({ kind: 'guest_pool_low', title: 'Every guest account is in use' }));
      // A chosen account that is in use is refused too.
      const taken = await allocate(t, office, { ...ADA, visitorName: 'Alan Turing', expectedEnd: '15:00', accountId: second.visit.accountId });
      expect(taken.statusCode).toBe(409);
      expect(taken.json().error.code).toBe('guest_account_unavailable');
      expect(await t.runtime.db.kysely.selectFrom('guest_allocation').select('id').execute()).toHaveLength(2);
    });

    it('AC-05 two desks allocating at once never get the same account', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 2);
      const names = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Mary Somerville'];
      const results = await Promise.all(names.map((visitorName) => allocate(t, office, { ...ADA, visitorName, expectedEnd: '15:00' })));
      const ok = results.filter((r) => r.statusCode === 201).map((r) => (r.json() as { slip: Slip }).slip.username);
      expect(ok.sort()).toEqual(['guest-01', 'guest-02']);
      expect(results.filter((r) => r.statusCode === 409).map((r) => r.json().error.code)).toEqual(['guest_pool_empty', 'guest_pool_empty']);
      const open = await t.runtime.db.kysely.selectFrom('guest_allocation').select('account_id').where('ended_at', 'is', null).execute();
      expect(new Set(open.map((o) => o.account_id)).size).toBe(2);
    });

    it('AC-05 office staff may allocate guest accounts but not create them; other staff may do neither', async () => {
      const { admin, office } = await desk();
      const refused = await t.app.inject({ method: 'POST', url: '/api/guests/pool', headers: office.headers, payload: { count: 2 } });
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('forbidden');
      await addPool(t, admin, 1);
      await allocated(t, office, { ...ADA, expectedEnd: '15:00' });

      await person(t, 'teacher', 'staff');
      const teacher = await signIn(t, 'teacher', PASSWORD);
      for (const [method, url] of [['GET', '/api/guests/pool'], ['GET', '/api/guests/visits'], ['POST', '/api/guests/visits']] as const) {
        const r = await t.app.inject({ method, url, headers: teacher.headers, ...(method === 'POST' ? { payload: { ...ADA, expectedEnd: '15:00' } } : {}) });
        expect(r.statusCode, `${method} ${url}`).toBe(403);
      }
      // An administrator may do both.
      await addPool(t, admin, 1);
      await allocated(t, admin, { ...ADA, visitorName: 'Grace Hopper', expectedEnd: '15:00' });
    });

    it('AC-05 guest-desk accounts are allocated only at the desk: not enabled or given a password by hand', async () => {
      const { admin } = await desk();
      await addPool(t, admin, 1);
      const pool = await t.runtime.db.kysely.selectFrom('account').select('id').where('source', '=', 'guest-pool').executeTakeFirstOrThrow();
      for (const [method, url, payload] of [
        ['PATCH', `/api/accounts/${pool.id}`, { status: 'active' }],
        ['POST', `/api/accounts/${pool.id}/temporary-password`, undefined],
      ] as const) {
        const r = await t.app.inject({ method, url, headers: admin.headers, ...(payload ? { payload } : {}) });
        expect(r.statusCode, url).toBe(409);
        expect(r.json().error.code).toBe('guest_pool_account');
      }
      const still = await t.runtime.db.kysely.selectFrom('account').select(['status', 'password_hash']).where('id', '=', pool.id).executeTakeFirstOrThrow();
      expect(still).toEqual({ status: 'disabled', password_hash: null });
    });

    it('AC-05 a guest-desk account cannot be deleted from the accounts page: its visits stay on record and a visit in progress goes on', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 3);
      const first = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
      const second = await allocated(t, office, { ...ADA, visitorName: 'Grace Hopper', expectedEnd: '15:00' });
      expect((await t.app.inject({ method: 'POST', url: `/api/guests/visits/${first.visit.id}/end`, headers: office.headers })).statusCode).toBe(200);
      const guest = await signIn(t, second.slip.username, second.slip.password);
      const accountsBefore = await t.runtime.db.kysely.selectFrom('account').selectAll().where('source', '=', 'guest-pool').orderBy('username').execute();
      const visitsBefore = await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().orderBy('starts_at').execute();
      expect(visitsBefore).toHaveLength(2);

      // guest-01: a visit ended (history); guest-02: a visit in progress; guest-03: never used.
      for (const pooled of accountsBefore) {
        const r = await t.app.inject({ method: 'DELETE', url: `/api/accounts/${pooled.id}`, headers: admin.headers });
        expect(r.statusCode, pooled.username).toBe(409);
        expect(r.json().error).toMatchObject({ code: 'guest_pool_account', message: expect.stringContaining(`${pooled.username} belongs to the guest desk`) });
        expect(r.json().error.message).toMatch(/cannot be deleted/);
      }
      expect(await t.runtime.db.kysely.selectFrom('account').selectAll().where('source', '=', 'guest-pool').orderBy('username').execute()).toEqual(accountsBefore);
      expect(await t.runtime.db.kysely.selectFrom('guest_allocation').selectAll().orderBy('starts_at').execute()).toEqual(visitsBefore);
      expect(await events(t, 'account.deleted')).toEqual([]);
      expect(await sessionStatus(t, guest)).toBe(200);
      const all = (await t.app.inject({ method: 'GET', url: '/api/guests/visits?scope=all', headers: office.headers })).json() as { visits: Visit[] };
      expect(all.visits.map((v) => [v.username, v.visitorName, v.state]).sort()).toEqual([
        ['guest-01', 'Ada Lovelace', 'ended'],
        ['guest-02', 'Grace Hopper', 'active'],
      ]);

      // An account of a person is still deleted as before.
      const temp = await person(t, 'temp.staff', 'staff');
      expect((await t.app.inject({ method: 'DELETE', url: `/api/accounts/${temp}`, headers: admin.headers })).statusCode).toBe(204);
      expect((await events(t, 'account.deleted')).map((e) => e.details.username)).toEqual(['temp.staff']);
    });

    it('AC-05 a guest-desk account in use gets no other password: not from the accounts page, nor through a staff reset request, nor as a linked administrator account', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 1);
      const { visit, slip } = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
      const before = await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow();
      for (const [url, payload] of [
        [`/api/accounts/${visit.accountId}/temporary-password`, undefined],
        ['/api/password-resets', { accountId: visit.accountId, reason: 'Visitor forgot the slip' }],
        [`/api/accounts/${visit.accountId}/administrator-account`, undefined],
      ] as const) {
        const r = await t.app.inject({ method: 'POST', url, headers: admin.headers, ...(payload ? { payload } : {}) });
        expect(r.statusCode, url).toBe(409);
        expect(r.json().error).toMatchObject({ code: 'guest_pool_account', message: expect.stringContaining('belongs to the guest desk') });
      }
      expect(await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow()).toEqual(before);
      expect(await t.runtime.db.kysely.selectFrom('reset_request').selectAll().execute()).toEqual([]);
      expect(await t.runtime.db.kysely.selectFrom('account').select('id').where('linked_account_id', '=', visit.accountId).execute()).toEqual([]);
      expect((await signInAttempt(t, slip.username, slip.password)).statusCode).toBe(200);
    });

    it('AC-05 explains bad input and changes nothing', async () => {
      const { admin, office } = await desk();
      for (const count of [0, 51, 2.5, 'three']) {
        const r = await t.app.inject({ method: 'POST', url: '/api/guests/pool', headers: admin.headers, payload: { count } });
        expect(r.statusCode, String(count)).toBe(400);
        expect(r.json().error.code).toBe('validation_failed');
      }
      await addPool(t, admin, 1);
      const pupilId = await person(t, 'pupil1', 'pupil');
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ ...ADA, visitorName: '  ' }, 'body.visitorName', /is required/],
        [{ ...ADA, purpose: undefined }, 'body.purpose', /is required/],
        [{ ...ADA, host: '' }, 'body.host', /is required: the member of staff/],
        [{ ...ADA, expectedEnd: '' }, 'body.expectedEnd', /^is required$/],
        [{ ...ADA, expectedEnd: 'teatime' }, 'body.expectedEnd', /like 15:30/],
        [{ ...ADA, expectedEnd: '2026-09-07T15:30:00' }, 'body.expectedEnd', /with its zone/],
        [{ ...ADA, visitorName: 'x'.repeat(201) }, 'body.visitorName', /at most 200/],
      ];
      for (const [payload, field, message] of cases) {
        const r = await allocate(t, office, { expectedEnd: '15:00', ...payload });
        expect(r.statusCode, JSON.stringify(payload)).toBe(400);
        expect(r.json().error.fields).toContainEqual({ field, message: expect.stringMatching(message) });
      }
      const past = await allocate(t, office, { ...ADA, expectedEnd: '08:30' });
      expect(past.statusCode).toBe(400);
      expect(past.json().error.message).toBe('The expected end (08:30 on Monday 7 September 2026) has already passed: give a time later than now.');
      const pupilHost = await allocate(t, office, { ...ADA, host: null, hostAccountId: pupilId, expectedEnd: '15:00' });
      expect(pupilHost.statusCode).toBe(400);
      expect(pupilHost.json().error.message).toMatch(/active member of staff/);

      expect(await t.runtime.db.kysely.selectFrom('guest_allocation').select('id').execute()).toHaveLength(0);
      expect((await pool(t, office)).free).toBe(1);
      expect(await events(t, 'guest.allocated')).toHaveLength(0);

      // A host with an account: their name is used when none is typed.
      const hostId = await person(t, 'cbabbage', 'staff', 'Charles Babbage');
      const ok = await allocated(t, office, { ...ADA, host: undefined, hostAccountId: hostId, expectedEnd: '15:00' });
      expect(ok.visit.host).toBe('Charles Babbage');
      expect((await events(t, 'guest.allocated'))[0]!.details).toMatchObject({ host: 'Charles Babbage', hostAccountId: hostId });
    });

    it('AC-05 a new visitor on a reused account starts clean: the last visitor’s authenticator app and recovery codes are gone', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 1);
      const first = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
      const accountId = first.visit.accountId;
      const db = t.runtime.db.kysely;
      await db.updateTable('account').set({ totp_secret: 'sealed', totp_enrolled_at: t.clock.now().toISOString() }).where('id', '=', accountId).execute();
      await db.insertInto('recovery_code').values({ account_id: accountId, code_hash: 'x', created_at: t.clock.now().toISOString(), used_at: null }).execute();
      const ended = await t.app.inject({ method: 'POST', url: `/api/guests/visits/${first.visit.id}/end`, headers: office.headers });
      expect(ended.statusCode).toBe(200);
      const account = await db.selectFrom('account').selectAll().where('id', '=', accountId).executeTakeFirstOrThrow();
      expect(account).toMatchObject({ totp_secret: null, totp_enrolled_at: null });
      expect(await db.selectFrom('recovery_code').select('code_hash').where('account_id', '=', accountId).execute()).toHaveLength(0);
    });

    it('AC-05 the server’s sweep ends visits on time by itself and stops cleanly', async () => {
      const { admin, office } = await desk();
      await addPool(t, admin, 1);
      const { visit } = await allocated(t, office, { ...ADA, expectedEnd: '09:05' });
      const sweep = scheduleGuestSweep(t.runtime, 25);
      try {
        await new Promise((r) => setTimeout(r, 120));
        expect((await t.runtime.db.kysely.selectFrom('guest_allocation').select('ended_at').where('id', '=', visit.id).executeTakeFirstOrThrow()).ended_at).toBeNull();
        t.clock.advance(5 * MINUTE);
        await expect.poll(async () => (await t.runtime.db.kysely.selectFrom('guest_allocation').select('end_reason').where('id', '=', visit.id).executeTakeFirstOrThrow()).end_reason, { timeout: 3000 }).toBe('expired');
      } finally {
        await sweep.stop();
      }
    });

    if (dialect === 'sqlite') {
      it('AC-05 gatehouse guests: pool, allocate, visits and sweep from the command line', async () => {
        const { admin, office } = await desk();
        const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
        const add = await runCli(['guests', 'pool', '--add', '2'], env);
        expect(add.code, add.stderr).toBe(0);
        expect(add.stdout).toContain('Added 2 guest accounts: guest-01, guest-02');
        expect(add.stdout).toContain('2 of 2 free.');
        const bad = await runCli(['guests', 'allocate', '--visitor', 'Ada Lovelace', '--purpose', 'Workshop', '--host', 'Mr Babbage', '--until', 'teatime'], env);
        expect(bad.code).toBe(1);
        expect(bad.stderr).toContain('--until: must be a time today like 15:30');
        // A visit allocated in September (the test clock) is long over by the real clock.
        void admin;
        const { visit } = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
        const visits = await runCli(['guests', 'visits', '--scope', 'open'], env);
        expect(visits.stdout).toContain(`${visit.id}  guest-01   Ada Lovelace (Analytical Engines Ltd), with Mr Babbage; until 15:00 on Monday 7 September 2026`);
        const swept = await runCli(['guests', 'sweep'], env);
        expect(swept.code, swept.stderr).toBe(0);
        expect(swept.stdout).toContain('Ended 1 visit past their end');
        const ended = await t.runtime.db.kysely.selectFrom('guest_allocation').select(['end_reason']).where('id', '=', visit.id).executeTakeFirstOrThrow();
        expect(ended.end_reason).toBe('expired');
        const list = await runCli(['guests', 'pool'], env);
        expect(list.stdout).toMatch(/guest-01 +free/);
      });

      it('AC-05 gatehouse accounts recover gives no password to a guest-desk account in use', async () => {
        const { admin, office } = await desk();
        await addPool(t, admin, 1);
        const { visit, slip } = await allocated(t, office, { ...ADA, expectedEnd: '15:00' });
        const before = await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow();
        const out = await runCli(['accounts', 'recover', slip.username], { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url });
        expect(out.code).toBe(1);
        expect(out.stderr).toContain('guest-01 belongs to the guest desk: allocate it to a visitor there');
        expect(out.stdout).not.toContain('Temporary password');
        expect(await t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', visit.accountId).executeTakeFirstOrThrow()).toEqual(before);
        expect(await events(t, 'account.recovered')).toEqual([]);
      });
    }
  });
}
