import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { startLeaver } from '../../src/directory/leavers.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';

interface Item {
  id: string;
  kind: string;
  label: string;
  how: string;
  done: boolean;
  notApplicable?: boolean;
  doneBy: string | null;
  detail?: string | null;
  ref?: string | null;
}
interface Leaver {
  accountId: string;
  username: string;
  leftOn: string;
  note: string | null;
  startedBy: string;
  completedAt: string | null;
  items: Item[];
  done: number;
  total: number;
}

async function person(t: TestApp, username: string, displayName: string, role: Role = 'staff'): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: `${username}@school.example`, role, passwordHash: hash }));
}

async function events(t: TestApp, prefix: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'severity', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => ({ action: r.action, severity: r.severity, details: parseBody(r.body).details as Record<string, unknown> }));
}

const available = await dialects();

for (const dialect of available) {
  describe(`leavers (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    afterEach(async () => {
      vi.restoreAllMocks();
      await t?.close();
    });
    const start = async () => {
      t = await startTestApp(dialect, { config: { profile: 'ncsc' } });
      admin = await setUpSchool(t);
    };
    const post = (url: string, payload: unknown = {}, headers = admin.headers) => t.app.inject({ method: 'POST', url, headers, payload: payload as object });
    const account = (id: string) => t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const secret = (id: string) => t.runtime.db.kysely.selectFrom('shared_secret').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const addSecret = async (name: string, holders: string[], kind = 'wifi') => {
      const r = await post('/api/secrets', { name, kind, location: 'IT office safe', lastRotatedOn: '2026-09-01', holders });
      expect(r.statusCode, r.body).toBe(201);
      return r.json().id as string;
    };
    const due = async () => (await t.app.inject({ url: '/api/dashboard/due', headers: admin.headers })).json().items as Array<{ kind: string; title: string; overdue: boolean; href: string; requirement: string }>;

    it('AC-13 closes a leaver’s account and ends their sessions in one action', async () => {
      await start();
      const jane = await person(t, 'jbloggs', 'Jane Bloggs');
      const laptop = await signIn(t, 'jbloggs', PASSWORD);
      const phone = await signIn(t, 'jbloggs', PASSWORD);
      expect((await t.app.inject({ url: '/api/session', headers: laptop.headers })).statusCode).toBe(200);

      const transactions = vi.spyOn(t.runtime.trail, 'transaction');
      const started = await post(`/api/accounts/${jane}/leaver`, { leftOn: '2026-09-04', note: 'Moved to a school in Leeds' });
      expect(started.statusCode, started.body).toBe(201);
      // Closing, ending sessions, flagging and the checklist: one transaction, one audit event.
      expect(transactions).toHaveBeenCalledTimes(1);
      const leaver = started.json() as Leaver;
      expect(leaver).toMatchObject({ accountId: jane, username: 'jbloggs', leftOn: '2026-09-04', note: 'Moved to a school in Leeds', startedBy: 'master', completedAt: null, done: 3, total: 4 });
      expect(leaver.items.map((i) => [i.id, i.how, i.done, i.notApplicable ?? false])).toEqual([
        ['account', 'automatic', true, false],
        ['sessions', 'automatic', true, false],
        ['administrator-account', 'automatic', true, true],
        ['equipment', 'manual', false, false],
      ]);
      expect(leaver.items[1]!.detail).toBe('2 sessions ended.');
      expect(leaver.items[3]!.detail).toContain('no equipment register yet');

      // Both sessions are dead, and the password no longer signs in.
      for (const session of [laptop, phone]) expect((await t.app.inject({ url: '/api/session', headers: session.headers })).statusCode).toBe(401);
      const again = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'jbloggs', password: PASSWORD } });
      expect(again.statusCode).toBe(401);
      expect(await account(jane)).toMatchObject({ status: 'left', left_at: t.clock.now().toISOString() });
      const sessions = await t.runtime.db.kysely.selectFrom('session').select(['ended_at', 'end_reason']).where('account_id', '=', jane).execute();
      expect(sessions).toEqual([
        { ended_at: t.clock.now().toISOString(), end_reason: 'account_left' },
        { ended_at: t.clock.now().toISOString(), end_reason: 'account_left' },
      ]);

      expect(await events(t, 'account.left')).toEqual([
        {
          action: 'account.left',
          severity: 'notice',
          details: expect.objectContaining({ username: 'jbloggs', role: 'staff', leftOn: '2026-09-04', sessionsEnded: 2, administratorAccounts: [], flaggedForRotation: [] }),
        },
      ]);
      expect((await events(t, 'session.sign_in_failed')).at(-1)!.details).toMatchObject({ reason: 'account_left' });

      const listed = (await t.app.inject({ url: '/api/leavers', headers: admin.headers })).json() as { open: Leaver[]; completed: Leaver[] };
      expect(listed.open.map((l) => l.username)).toEqual(['jbloggs']);
      expect(listed.completed).toEqual([]);
      expect((await t.app.inject({ url: `/api/leavers/${jane}`, headers: admin.headers })).json()).toMatchObject({ username: 'jbloggs', done: 3 });
      expect((await due()).filter((i) => i.kind === 'leaver')).toEqual([
        expect.objectContaining({ title: 'Leaver checklist for Jane Bloggs is not complete', href: '/leavers', requirement: 'AC-13', overdue: false }),
      ]);
    });

    it('AC-13 AC-07 also disables the leaver’s linked administrator account and drops its sign-in in progress; a pupil can be a leaver', async () => {
      await start();
      const ian = await person(t, 'ilead', 'Ian Lead');
      await reauthenticate(t, admin); // giving administrator rights needs it (test/identity/reauth.test.ts)
      const created = (await post(`/api/accounts/${ian}/administrator-account`)).json() as { account: { id: string; username: string }; temporaryPassword: string };
      expect(created.account.username).toBe('ilead.admin');
      // The administrator account is half-way through signing in.
      const pending = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'ilead.admin', password: created.temporaryPassword } });
      expect(pending.json()).toMatchObject({ status: 'pending' });
      const pendingCookie = pending.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
      const attempts = () => t.runtime.db.kysely.selectFrom('sign_in_attempt').select('id').where('account_id', '=', created.account.id).execute();
      expect(await attempts()).toHaveLength(1);

      const leaver = (await post(`/api/accounts/${ian}/leaver`, {})).json() as Leaver;
      expect(leaver.leftOn).toBe('2026-09-07');
      expect(leaver.items.find((i) => i.id === 'administrator-account')).toMatchObject({ done: true, notApplicable: false, detail: 'ilead.admin disabled.' });
      expect(await account(created.account.id)).toMatchObject({ status: 'disabled' });
      expect(await account(ian)).toMatchObject({ status: 'left' });
      expect(await attempts()).toEqual([]);
      const resumed = await t.app.inject({ url: '/api/sign-in', headers: { cookie: `${pendingCookie.name}=${pendingCookie.value}` } });
      expect(resumed.statusCode).toBeGreaterThanOrEqual(400);
      expect((await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'ilead.admin', password: created.temporaryPassword } })).statusCode).toBe(401);
      expect((await events(t, 'account.left'))[0]!.details).toMatchObject({ administratorAccounts: ['ilead.admin'], signInsDropped: 1 });

      const pupil = await person(t, 'pupil7', 'Sam Pupil', 'pupil');
      const pupilLeaver = await post(`/api/accounts/${pupil}/leaver`, { leftOn: '2026-07-22' });
      expect(pupilLeaver.statusCode, pupilLeaver.body).toBe(201);
      expect(await account(pupil)).toMatchObject({ status: 'left' });
    });

    it('PW-12 flags every shared secret a leaver held for rotation', async () => {
      await start();
      const jane = await person(t, 'jbloggs', 'Jane Bloggs');
      await reauthenticate(t, admin); // giving administrator rights needs it (test/identity/reauth.test.ts)
      const janeAdmin = (await post(`/api/accounts/${jane}/administrator-account`)).json().account.id as string;
      const brenda = await person(t, 'bursar', 'Brenda Bursar');
      const wifi = await addSecret('Staff Wi-Fi', [jane, brenda]);
      const firewall = await addSecret('Firewall console', [janeAdmin], 'admin_console');
      const alarm = await addSecret('Intruder alarm', [brenda], 'alarm_code');
      const old = await addSecret('Old file server', [jane], 'master_password');
      await post(`/api/secrets/${old}/retire`);
      const alarmBefore = await secret(alarm);

      t.clock.advance(60_000);
      const leaver = (await post(`/api/accounts/${jane}/leaver`, { note: 'Retired' })).json() as Leaver;
      const now = t.clock.now().toISOString();
      // What she knew, directly or through her administrator account, is due now and says why.
      for (const id of [wifi, firewall]) expect(await secret(id)).toMatchObject({ flagged_at: now, flag_reason: 'holder Jane Bloggs left', next_due_at: now });
      expect(await secret(alarm)).toEqual(alarmBefore);
      expect(await secret(old)).toMatchObject({ flagged_at: null });
      expect(leaver.items.filter((i) => i.kind === 'shared_secret').map((i) => [i.label, i.how, i.done, i.ref])).toEqual([
        ['Change “Firewall console”', 'linked', false, `shared_secret:${firewall}`],
        ['Change “Staff Wi-Fi”', 'linked', false, `shared_secret:${wifi}`],
      ]);
      expect((await events(t, 'account.left'))[0]!.details.flaggedForRotation).toEqual([
        { id: firewall, name: 'Firewall console' },
        { id: wifi, name: 'Staff Wi-Fi' },
      ]);
      const secrets = (await due()).filter((i) => i.kind === 'shared_secret');
      expect(secrets.map((i) => [i.title, i.overdue, i.href, i.requirement])).toEqual([
        ['Firewall console (administration console) must be changed: holder Jane Bloggs left', true, '/secrets', 'PW-12'],
        ['Staff Wi-Fi (wi-fi key) must be changed: holder Jane Bloggs left', true, '/secrets', 'PW-12'],
      ]);

      // A second leaver who knew the same key: both reasons stand until it is changed.
      await post(`/api/accounts/${brenda}/leaver`, {});
      expect(await secret(wifi)).toMatchObject({ flag_reason: 'holder Jane Bloggs left; holder Brenda Bursar left' });
      expect(await secret(alarm)).toMatchObject({ flag_reason: 'holder Brenda Bursar left' });
    });

    it('AC-13 the checklist completes when every item is done: a rotation recorded ticks its secret, a person ticks the equipment', async () => {
      await start();
      const jane = await person(t, 'jbloggs', 'Jane Bloggs');
      const other = await person(t, 'kstay', 'Kim Stay');
      const wifi = await addSecret('Staff Wi-Fi', [jane, other]);
      await post(`/api/accounts/${jane}/leaver`, {});

      // Gatehouse's own items and the secret cannot be ticked by hand; unknown items are not found.
      const linked = await post(`/api/leavers/${jane}/items/secret-${wifi}`, { done: true });
      expect(linked.statusCode).toBe(409);
      expect(linked.json().error.message).toContain('Shared secrets page');
      expect((await post(`/api/leavers/${jane}/items/account`, { done: false })).statusCode).toBe(409);
      expect((await post(`/api/leavers/${jane}/items/no-such-item`, { done: true })).statusCode).toBe(404);

      t.clock.advance(3_600_000);
      admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecrets.get(t) });
      const rotated = await post(`/api/secrets/${wifi}/rotation`);
      expect(rotated.json()).toMatchObject({ flaggedAt: null, flagReason: null, lastRotatedAt: t.clock.now().toISOString() });
      // She does not know the new key: she is no longer a holder; Kim still is.
      expect(rotated.json().holders.map((h: { username: string }) => h.username)).toEqual(['kstay']);
      let leaver = (await t.app.inject({ url: `/api/leavers/${jane}`, headers: admin.headers })).json() as Leaver;
      expect(leaver.items.find((i) => i.id === `secret-${wifi}`)).toMatchObject({ done: true, doneBy: 'master', detail: 'Changed on 2026-09-07' });
      expect(leaver.completedAt).toBeNull();
      expect((await events(t, 'shared_secret.rotated'))[0]!.details).toMatchObject({ flagCleared: 'holder Jane Bloggs left', holdersRemoved: ['jbloggs'], leaverChecklists: [jane] });

      leaver = (await post(`/api/leavers/${jane}/items/equipment`, { done: true })).json() as Leaver;
      expect(leaver).toMatchObject({ completedAt: t.clock.now().toISOString(), done: 5, total: 5 });
      expect(leaver.items.find((i) => i.id === 'equipment')).toMatchObject({ done: true, doneBy: 'master' });
      let listed = (await t.app.inject({ url: '/api/leavers', headers: admin.headers })).json() as { open: Leaver[]; completed: Leaver[] };
      expect([listed.open.length, listed.completed.map((l) => l.username)]).toEqual([0, ['jbloggs']]);
      expect((await due()).filter((i) => i.kind === 'leaver' || i.kind === 'shared_secret')).toEqual([]);

      // Unticking reopens it; ticking again completes it again. Each step is in the trail.
      leaver = (await post(`/api/leavers/${jane}/items/equipment`, { done: false })).json() as Leaver;
      expect(leaver.completedAt).toBeNull();
      listed = (await t.app.inject({ url: '/api/leavers', headers: admin.headers })).json() as { open: Leaver[]; completed: Leaver[] };
      expect(listed.open.map((l) => l.username)).toEqual(['jbloggs']);
      expect(((await post(`/api/leavers/${jane}/items/equipment`, { done: true })).json() as Leaver).completedAt).not.toBeNull();
      expect((await events(t, 'leaver.')).map((e) => [e.action, e.details.item ?? null, e.details.reopened ?? null])).toEqual([
        ['leaver.item_ticked', 'equipment', null],
        ['leaver.completed', null, null],
        ['leaver.item_unticked', 'equipment', true],
        ['leaver.item_ticked', 'equipment', null],
        ['leaver.completed', null, null],
      ]);
    });

    it('AC-05 AC-13 a guest-desk account is never a leaver: the leaver action is refused and its visit goes on, to be ended at the guest desk', async () => {
      await start();
      expect((await post('/api/guests/pool', { count: 1 })).statusCode).toBe(201);
      const visit = await post('/api/guests/visits', { visitorName: 'Ada Lovelace', purpose: 'STEM workshop', host: 'Mr Babbage', expectedEnd: '15:00' });
      expect(visit.statusCode, visit.body).toBe(201);
      const { slip } = visit.json() as { slip: { username: string; password: string } };
      const visitor = await signIn(t, slip.username, slip.password);
      const guest = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', slip.username).executeTakeFirstOrThrow();

      const refused = await post(`/api/accounts/${guest.id}/leaver`, {});
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error).toMatchObject({ code: 'guest_pool_account', message: expect.stringContaining('end the visit there (Guest desk → Visits)') });
      expect(await account(guest.id)).toEqual(guest);
      expect((await t.runtime.db.kysely.selectFrom('guest_allocation').select('ended_at').executeTakeFirstOrThrow()).ended_at).toBeNull();
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: visitor.headers })).statusCode).toBe(200);
      expect(await t.runtime.db.kysely.selectFrom('leaver_checklist').selectAll().execute()).toEqual([]);
      expect(await events(t, 'account.left')).toEqual([]);
    });

    it('AC-08 AC-13 the break-glass account is never a leaver, nor is oneself, a guest, an administrator account on its own or someone already leaving', async () => {
      await start();
      const master = (await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', 'master').executeTakeFirstOrThrow()).id;
      const breakGlass = await post(`/api/accounts/${master}/leaver`, {});
      expect(breakGlass.statusCode).toBe(403);
      expect(breakGlass.json().error.code).toBe('break_glass_protected');

      const ian = await person(t, 'ilead', 'Ian Lead');
      await reauthenticate(t, admin); // giving administrator rights needs it (test/identity/reauth.test.ts)
      const ianAdmin = (await post(`/api/accounts/${ian}/administrator-account`)).json().account.id as string;
      await expect(startLeaver(t.runtime, { id: ian, name: 'ilead', role: 'staff' }, ian, {})).rejects.toMatchObject({ code: 'own_account' });
      await expect(startLeaver(t.runtime, { id: ianAdmin, name: 'ilead.admin', role: 'administrator' }, ian, {})).rejects.toMatchObject({ code: 'own_account' });
      const adminOnly = await post(`/api/accounts/${ianAdmin}/leaver`, {});
      expect(adminOnly.statusCode).toBe(409);
      expect(adminOnly.json().error.message).toContain('Start the leaver from their everyday account (ilead)');

      const guest = await person(t, 'guest-01', 'Guest 01', 'guest');
      expect((await post(`/api/accounts/${guest}/leaver`, {})).json().error.code).toBe('guest_account');
      const future = await post(`/api/accounts/${ian}/leaver`, { leftOn: '2026-09-08' });
      expect(future.statusCode).toBe(400);
      expect(future.json().error.message).toContain('cannot be in the future');
      expect((await post(`/api/accounts/${ian}/leaver`, { leftOn: '7 September' })).statusCode).toBe(400);

      // Nothing happened to anyone refused.
      for (const id of [master, ian, ianAdmin, guest]) expect((await account(id)).status).toBe('active');
      expect(await t.runtime.db.kysely.selectFrom('leaver_checklist').selectAll().execute()).toEqual([]);
      expect(await events(t, 'account.left')).toEqual([]);

      expect((await post(`/api/accounts/${ian}/leaver`, {})).statusCode).toBe(201);
      const twice = await post(`/api/accounts/${ian}/leaver`, {});
      expect(twice.statusCode).toBe(409);
      expect(twice.json().error.code).toBe('already_leaver');

      // Staff without leavers.manage are refused (the authorization test checks every role).
      const kim = await person(t, 'kstay', 'Kim Stay');
      const staff = await signIn(t, 'kstay', PASSWORD);
      const refused = await post(`/api/accounts/${kim}/leaver`, {}, staff.headers);
      expect([refused.statusCode, refused.json().error.code]).toEqual([403, 'forbidden']);
    });
  });
}
