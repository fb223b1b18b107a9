import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { changesDue, escalateEmergencies } from '../../src/governance/changes.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { createGroup } from '../../src/directory/groups.js';
import { ADMIN_PASSWORD, reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
/** An audit event's details, from its signed body. */
const detailsOf = (e: { body: string }): Record<string, unknown> => (JSON.parse(e.body) as { details?: Record<string, unknown> }).details ?? {};

async function harness(t: TestApp) {
  const sessions = new Map<string, Session>();
  const api = async (session: Session | null, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, extra: Record<string, string> = {}) => {
    const response = await t.app.inject({ method, url, headers: { ...(session?.headers ?? {}), ...extra }, payload: payload as object, remoteAddress: '127.0.0.1' });
    const json = response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined;
    return { status: response.statusCode, body: json, raw: response.rawPayload, headers: response.headers };
  };
  /** A person with a role (created once), signed in; `fresh` gives a second session of the same person. */
  const as = async (role: Role, n = 1, fresh = false): Promise<Session> => {
    const username = `${role.replace('_', '')}${n}`;
    if (!sessions.has(username)) {
      const hash = await t.runtime.hasher.hash(PASSWORD);
      await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `A ${role} ${n}`, email: `${username}@school.example`, role, passwordHash: hash }));
      sessions.set(username, await signIn(t, username, PASSWORD));
    } else if (fresh) {
      return signIn(t, username, PASSWORD, { totpSecret: sessions.get(username)!.totpSecret });
    }
    return sessions.get(username)!;
  };
  const events = async (action: string) => t.runtime.db.kysely.selectFrom('audit_event').selectAll().where('action', '=', action).execute();
  /** Sessions end when the clock moves on hours: everyone signs in again. */
  const renew = async () => {
    for (const [username, session] of sessions) sessions.set(username, await signIn(t, username, PASSWORD, { totpSecret: session.totpSecret }));
  };
  return { api, as, events, renew };
}

/** A school list, asked for through the Lists route (a change request) and approved by a senior leader. */
async function blockList(h: Awaited<ReturnType<typeof harness>>, admin: Session, name = 'School block list', kind = 'block'): Promise<string> {
  const asked = await h.api(admin, 'POST', '/api/filtering/lists', { name, format: 'domains', location: null, kind });
  expect(asked.status).toBe(202);
  expect(asked.body.changeRequest).toMatchObject({ kind: 'list.source_add', state: 'pending' });
  const approved = await h.api(await h.as('senior_leader'), 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/approve`, {});
  expect(approved.body.state).toBe('applied');
  const lists = (await h.api(admin, 'GET', '/api/filtering/lists')).body.sources as Array<{ id: string; name: string }>;
  return lists.find((l) => l.name === name)!.id;
}

for (const dialect of await dialects()) {
  describe(`change control with the NCSC profile (senior leaders approve) on ${dialect}`, () => {
    let t: TestApp;
    let h: Awaited<ReturnType<typeof harness>>;
    let admin: Session;
    let listId: string;
    let sink: Awaited<ReturnType<typeof startSmtpSink>>;

    beforeAll(async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url } });
      admin = await setUpSchool(t);
      h = await harness(t);
      listId = await blockList(h, admin);
    });
    afterAll(async () => {
      await t?.close();
      await sink?.close();
    });

    it('FI-06 a change asked for by an administrator waits (202) and takes effect only when a senior leader approves it', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['games.example'] } }, reason: 'Distracting in lessons' });
      expect(asked.status).toBe(202);
      expect(asked.body).toMatchObject({ state: 'pending', requestedBy: 'master', summary: expect.stringContaining('games.example') });
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries).toEqual([]);
      const due = await changesDue(t.runtime);
      expect(due.some((d) => d.kind === 'change_pending' && d.requirement === 'FI-06')).toBe(true);

      const leader = await h.as('senior_leader');
      const approved = await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/approve`, { note: 'Agreed' });
      expect(approved.status).toBe(200);
      expect(approved.body).toMatchObject({ state: 'applied', decidedBy: 'seniorleader1' });
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries.map((e: any) => e.host)).toEqual(['games.example']);
      // Approving again changes nothing.
      expect((await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(409);
    });

    it('FI-06 a policy change applies on approval and the filter decides by it', async () => {
      const policies = (await h.api(admin, 'GET', '/api/filtering/policies')).body;
      const pupils = policies.policies.find((p: any) => p.id === 'role:pupils');
      const blockCategory = policies.categories.find((c: any) => c.kind === 'block');
      const { id: _i, kind: _k, groupId: _g, name: _n, edited: _e, updatedAt: _u, ...settings } = pupils;
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'policy.save', policyId: 'role:pupils', settings: { ...settings, blockLists: [blockCategory.id] } }, reason: 'Use the school block list for pupils' });
      expect(asked.status).toBe(202);
      const leader = await h.as('senior_leader');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(200);
      const test = await h.api(admin, 'GET', '/api/filtering/test?url=games.example&policy=role:pupils');
      expect(test.status).toBe(200);
      expect(test.body.verdict.action).toBe('block');
    });

    it('FI-06 the requester can never approve their own change, nor can an administrator the profile does not name (attack)', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['chat.example'] } }, reason: 'Chat site' });
      expect(asked.status).toBe(202);
      // The requester: permission-wise an approver? No: administrators hold changes.approve, the profile names senior leaders only.
      const own = await h.api(admin, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {});
      expect(own.status).toBe(403);
      const otherAdmin = await h.as('administrator', 2);
      const byAdmin = await h.api(otherAdmin, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {});
      expect(byAdmin.status).toBe(403);
      expect(byAdmin.body.error.message).toMatch(/senior leader/);
      // Roles without the permission at all.
      for (const role of ['staff', 'governor', 'dsl', 'dpo'] as const) {
        expect((await h.api(await h.as(role), 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(403);
      }
      // A senior leader may not ask for changes (only approve them).
      expect((await h.api(await h.as('senior_leader'), 'POST', '/api/governance/changes', { change: { kind: 'list.entry_remove', listId, host: 'games.example' }, reason: 'try' })).status).toBe(403);
      expect((await h.api(admin, 'GET', `/api/governance/changes/${asked.body.id}`)).body.state).toBe('pending');
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries.map((e: any) => e.host)).not.toContain('chat.example');
    });

    it('FI-06 two approvers approving at once apply the change once (parallel requests)', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['race.example'] } }, reason: 'Race' });
      const a = await h.as('senior_leader', 1);
      const b = await h.as('senior_leader', 2);
      const results = await Promise.all([a, b, a, b].map((s) => h.api(s, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409)).toHaveLength(3);
      const applied = (await h.events('filtering.list_entries_added')).filter((e) => JSON.stringify(detailsOf(e)).includes('race.example'));
      expect(applied).toHaveLength(1);
      expect((await h.events('change.applied')).filter((e) => e.target === `change_request:${asked.body.id}`)).toHaveLength(1);
    });

    it('FI-06 a stale change (its target changed since it was asked for) is refused with a clear message', async () => {
      const first = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['one.example'] } }, reason: 'One' });
      const second = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['two.example'] } }, reason: 'Two' });
      const leader = await h.as('senior_leader');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${first.body.id}/approve`, {})).status).toBe(200);
      const stale = await h.api(leader, 'POST', `/api/governance/changes/${second.body.id}/approve`, {});
      expect(stale.status).toBe(409);
      expect(stale.body.error.message).toMatch(/has changed since it was asked for/);
      expect((await h.api(leader, 'POST', `/api/governance/changes/${second.body.id}/refuse`, { reason: 'Stale: ask again' })).body.state).toBe('refused');
    });

    it('FI-06 refusal needs a reason; the requester may withdraw their own pending change, nobody else may', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entry_remove', listId, host: 'games.example' }, reason: 'Allowed again' });
      const leader = await h.as('senior_leader');
      const noReason = await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/refuse`, { reason: '' });
      expect(noReason.status).toBe(400);
      const other = await h.as('administrator', 2);
      expect((await h.api(other, 'POST', `/api/governance/changes/${asked.body.id}/withdraw`)).status).toBe(403);
      expect((await h.api(admin, 'POST', `/api/governance/changes/${asked.body.id}/withdraw`)).body.state).toBe('withdrawn');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(409);
    });

    it('FI-06 hostile input is refused at the edge: unknown kinds, extra fields, not-a-site, loosening as an emergency', async () => {
      expect((await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'sql.drop', listId }, reason: 'x y z' })).status).toBe(400);
      expect((await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['games.example'] }, extra: 1 }, reason: 'x y z' })).status).toBe(400);
      expect((await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['<script>alert(1)</script>'] } }, reason: 'x y z' })).status).toBe(400);
      const loosen = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entry_remove', listId, host: 'games.example' }, reason: 'Now please', emergency: true });
      expect(loosen.status).toBe(400);
      expect(loosen.body.error.message).toMatch(/Only blocking sites now/);
    });

    it('FI-06 an emergency block applies at once, stays awaiting approval, is escalated by e-mail and shows in needs attention; then approved', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['harmful.example'] } }, reason: 'Reported by the DSL: block now', emergency: true });
      expect(asked.status).toBe(201);
      expect(asked.body.state).toBe('applied_pending_approval');
      expect((await h.api(admin, 'GET', '/api/filtering/test?url=harmful.example&policy=role:pupils')).body.verdict.action).toBe('block');
      expect(await escalateEmergencies(t.runtime)).toBe(0);
      t.clock.advance(5 * 3_600_000);
      await h.renew();
      admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: admin.totpSecret });
      const before = sink.messages.length;
      expect(await escalateEmergencies(t.runtime)).toBe(1);
      await sink.waitFor(before + 1);
      const mail = sink.messages.slice(before);
      expect(mail.flatMap((m) => m.to)).toContain('seniorleader1@school.example');
      expect(mail[0]!.raw).toContain('harmful.example');
      // Once only.
      expect(await escalateEmergencies(t.runtime)).toBe(0);
      const due = await changesDue(t.runtime);
      expect(due.find((d) => d.kind === 'change_emergency')).toMatchObject({ overdue: true, requirement: 'FI-06', permission: 'changes.approve' });
      const ok = await h.api(await h.as('senior_leader'), 'POST', `/api/governance/changes/${asked.body.id}/approve`, {});
      expect(ok.body.state).toBe('approved');
      expect((await changesDue(t.runtime)).some((d) => d.kind === 'change_emergency')).toBe(false);
    });

    it('FI-06 a change whose applying was interrupted (the server stopped between the approval and "applied") shows in needs attention after ten minutes, and not as waiting for approval', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['interrupted.example'] } }, reason: 'Found by Year 5 in a lesson' });
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      const id = (asked.body.changeRequest ?? asked.body).id as string;
      // What approveChange's first step leaves if the process stops before the change is marked applied.
      const interrupt = (minutesAgo: number) => t.runtime.db.kysely.updateTable('change_request').set({ state: 'applying', decided_by_name: 'seniorleader1', decided_at: new Date(t.clock.now().getTime() - minutesAgo * 60_000).toISOString() }).where('id', '=', id).execute();
      await interrupt(1);
      expect((await changesDue(t.runtime)).filter((d) => d.title.includes('interrupted.example'))).toEqual([]);
      await interrupt(11);
      const shown = (await changesDue(t.runtime)).filter((d) => d.title.includes('interrupted.example'));
      expect(shown).toEqual([expect.objectContaining({ kind: 'change_interrupted', overdue: true, href: '/changes', requirement: 'FI-06', permission: 'changes.approve', detail: expect.stringContaining('Decided by seniorleader1') })]);
      await t.runtime.db.kysely.updateTable('change_request').set({ state: 'withdrawn' }).where('id', '=', id).execute();
    });

    it('FI-06 rolling back an emergency block restores the list as it was (and the requester cannot approve it)', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['games.example', 'mistake.example'] } }, reason: 'Block now', emergency: true });
      expect(asked.body.state).toBe('applied_pending_approval');
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries.map((e: any) => e.host)).toContain('mistake.example');
      expect((await h.api(admin, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(403);
      const leader = await h.as('senior_leader');
      const rolled = await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/rollback`, { reason: 'Blocks a teaching resource' });
      expect(rolled.status).toBe(200);
      expect(rolled.body.state).toBe('rolled_back');
      const hosts = (await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries.map((e: any) => e.host);
      expect(hosts).not.toContain('mistake.example');
      // games.example was on the list before the emergency change: it stays.
      expect(hosts).toContain('games.example');
      expect((await h.api(admin, 'GET', '/api/filtering/test?url=mistake.example&policy=role:pupils')).body.verdict.action).not.toBe('block');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${asked.body.id}/rollback`, { reason: 'again' })).status).toBe(409);
    });

    it('FI-06 the filtering routes make change requests (202) under the NCSC baseline (changeControl: required): nothing applies until approved', async () => {
      const added = await t.app.inject({ method: 'POST', url: `/api/filtering/lists/${listId}/entries`, headers: { ...admin.headers, 'x-change-reason': 'Asked from the Lists page' }, payload: { hosts: ['via-route.example'] }, remoteAddress: '127.0.0.1' });
      expect(added.statusCode).toBe(202);
      const body = added.json() as any;
      expect(body.changeRequest).toMatchObject({ state: 'pending', reason: 'Asked from the Lists page', kind: 'list.entries_add' });
      expect(body.entries.map((e: any) => e.host)).not.toContain('via-route.example');
      const device = await h.api(admin, 'POST', '/api/filtering/devices', { name: 'ICT suite PC 1', address: '10.0.5.1', policyId: 'role:pupils' });
      expect(device.status).toBe(202);
      expect((await h.api(admin, 'GET', '/api/filtering/devices')).body.devices).toEqual([]);
      const leader = await h.as('senior_leader');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${body.changeRequest.id}/approve`, {})).body.state).toBe('applied');
      expect((await h.api(leader, 'POST', `/api/governance/changes/${device.body.changeRequest.id}/approve`, {})).body.state).toBe('applied');
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${listId}/entries`)).body.entries.map((e: any) => e.host)).toContain('via-route.example');
      expect((await h.api(admin, 'GET', '/api/filtering/devices')).body.devices.map((d: any) => d.name)).toEqual(['ICT suite PC 1']);
    });

    it('AU-03 every step of a change is in the audit trail, with who and why', async () => {
      for (const action of ['change.requested', 'change.approved', 'change.applied', 'change.refused', 'change.withdrawn', 'change.emergency_requested', 'change.emergency_applied', 'change.escalated', 'change.emergency_approved', 'change.rollback_started', 'change.rolled_back']) {
        expect((await h.events(action)).length, action).toBeGreaterThan(0);
      }
      const approved = (await h.events('change.approved'))[0]!;
      expect(approved.actor).toBe('seniorleader1');
      expect(detailsOf(approved)).toMatchObject({ requestedBy: 'master' });
      const requested = (await h.events('change.requested')).find((e) => detailsOf(e).reason === 'Distracting in lessons');
      expect(detailsOf(requested!)).toMatchObject({ kind: 'list.entries_add', summary: expect.stringContaining('games.example') });
    });

    it('MO-06 the change-control log is exported as CSV and PDF by governors, senior leaders and the DPO (audited); staff and pupils cannot', async () => {
      const governor = await h.as('governor');
      const csv = await h.api(governor, 'GET', '/api/governance/changes/export.csv');
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      const text = csv.raw.toString('utf8');
      expect(text.split('\r\n')[0]).toBe('Requested at,Requested by,Change,Reason,Emergency,State,Decided by,Decided at,Decision reason,Applied at');
      expect(text).toContain('games.example');
      expect(text).toContain('Emergency: rolled back');
      const pdf = await h.api(await h.as('dpo'), 'GET', '/api/governance/changes/export.pdf?state=applied');
      expect(pdf.status).toBe(200);
      expect(pdf.raw.subarray(0, 5).toString()).toBe('%PDF-');
      expect((await h.api(await h.as('senior_leader'), 'GET', '/api/governance/changes?state=refused')).body.changes.every((c: any) => c.state === 'refused')).toBe(true);
      for (const role of ['staff', 'pupil', 'office', 'guest'] as const) {
        const s = await h.as(role);
        expect((await h.api(s, 'GET', '/api/governance/changes/export.csv')).status, role).toBe(403);
        expect((await h.api(s, 'GET', '/api/governance/changes')).status, role).toBe(403);
      }
      const exported = await h.events('change.log_exported');
      expect(exported.map((e) => e.actor)).toEqual(expect.arrayContaining(['governor1', 'dpo1']));
    });

    it('MO-06 a reason that looks like a spreadsheet formula is exported as text', async () => {
      await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['formula.example'] } }, reason: '=HYPERLINK("http://evil.example","x")' });
      const text = (await h.api(await h.as('governor'), 'GET', '/api/governance/changes/export.csv')).raw.toString('utf8');
      expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    });
  });

  describe(`change control where administrators are approvers too on ${dialect}`, () => {
    let t: TestApp;
    let h: Awaited<ReturnType<typeof harness>>;
    let admin: Session;
    let listId: string;
    beforeAll(async () => {
      const profile = path.join(mkdtempSync(path.join(os.tmpdir(), 'gatehouse-profile-')), 'school.yaml');
      writeFileSync(profile, 'name: Administrators approve too\nextends: ncsc\ngovernance:\n  changeApprovers: [senior_leader, administrator]\n');
      t = await startTestApp(dialect, { config: { profile } });
      admin = await setUpSchool(t);
      h = await harness(t);
      listId = await blockList(h, admin);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('FI-06 the requester cannot approve their own change, in the same session or a second one; another administrator can (attack)', async () => {
      const asked = await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.entries_add', listId, entries: { hosts: ['self.example'] } }, reason: 'Self-approval attempt' });
      expect(asked.status).toBe(202);
      const same = await h.api(admin, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {});
      expect(same.status).toBe(403);
      expect(same.body.error.message).toMatch(/You asked for this change/);
      const second = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: admin.totpSecret });
      expect((await h.api(second, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).status).toBe(403);
      expect((await h.api(second, 'POST', `/api/governance/changes/${asked.body.id}/refuse`, { reason: 'refuse my own' })).status).toBe(403);
      const other = await h.as('administrator', 2);
      expect((await h.api(other, 'POST', `/api/governance/changes/${asked.body.id}/approve`, {})).body.state).toBe('applied');
    });

    it('FI-06 the requester of a list-source change cannot approve it after a second sign-in, nor after their role is switched to senior leader (attack)', async () => {
      const requester = await h.as('administrator', 3);
      const asked = await h.api(requester, 'PATCH', `/api/filtering/lists/${listId}`, { scheduleHours: 5 });
      expect(asked.status).toBe(202);
      const again = await signIn(t, 'administrator3', PASSWORD, { totpSecret: requester.totpSecret });
      expect((await h.api(again, 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/approve`, {})).status).toBe(403);
      await t.runtime.db.kysely.updateTable('account').set({ role: 'senior_leader' }).where('username', '=', 'administrator3').execute();
      const switched = await signIn(t, 'administrator3', PASSWORD, { totpSecret: requester.totpSecret });
      const own = await h.api(switched, 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/approve`, {});
      expect(own.status).toBe(403);
      expect(own.body.error.message).toMatch(/You asked for this change/);
      expect((await h.api(admin, 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/approve`, {})).body.state).toBe('applied');
    });
  });
  describe(`change control of every filtering route (issue 11) on ${dialect}`, () => {
    let t: TestApp;
    let h: Awaited<ReturnType<typeof harness>>;
    let admin: Session;
    let work: string;
    let blockId: string;
    let allowId: string;
    const applied = async (asked: { status: number; body: any }) => {
      expect(asked.status, JSON.stringify(asked.body)).toBe(202);
      const approved = await h.api(await h.as('senior_leader'), 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/approve`, {});
      expect(approved.status, JSON.stringify(approved.body)).toBe(200);
      expect(approved.body.state).toBe('applied');
      return approved.body;
    };
    const sources = async () => (await h.api(admin, 'GET', '/api/filtering/lists')).body.sources as Array<{ id: string; name: string; kind: string; enabled: boolean; scheduleHours: number; location: string | null }>;
    const policy = async (id: string) => (await h.api(admin, 'GET', '/api/filtering/policies')).body.policies.find((p: any) => p.id === id);
    const settingsOf = (p: any) => {
      const { id: _i, kind: _k, groupId: _g, name: _n, edited: _e, updatedAt: _u, ...settings } = p;
      return settings;
    };

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cc-lists-'));
      writeFileSync(path.join(work, 'iwf.txt'), 'abuse.example\n');
      t = await startTestApp(dialect, { config: { listFolder: work } });
      admin = await setUpSchool(t);
      h = await harness(t);
      blockId = await blockList(h, admin, 'Blocked by the school');
      allowId = await blockList(h, admin, 'Allowed by the school', 'allow');
      await applied(await h.api(admin, 'POST', `/api/filtering/lists/${allowId}/entries`, { hosts: ['teaching.example', 'museum.example'] }));
    });
    afterAll(async () => {
      await t?.close();
    });

    it('FI-06 AU-03 list sources: adding one, changing its schedule and confirming a held update are each a change request of its own kind, with the before-state and a summary, applied only on approval', async () => {
      const added = await h.api(admin, 'POST', '/api/filtering/lists', { name: 'Extra block list', format: 'domains', location: null, kind: 'block' }, { 'x-change-reason': 'Sites the DSL asked for' });
      expect(added.body.changeRequest).toMatchObject({ kind: 'list.source_add', target: 'filter_list:new', before: null, reason: 'Sites the DSL asked for', summary: 'Add the block list “Extra block list” (edited here)' });
      expect((await sources()).map((s) => s.name)).not.toContain('Extra block list');
      await applied(added);
      const extra = (await sources()).find((s) => s.name === 'Extra block list')!;
      expect(extra).toBeDefined();

      const rescheduled = await h.api(admin, 'PATCH', `/api/filtering/lists/${extra.id}`, { scheduleHours: 6, enabled: false });
      expect(rescheduled.status).toBe(202);
      expect(rescheduled.body.changeRequest).toMatchObject({ kind: 'list.source_change', target: `filter_list:${extra.id}`, before: { schedule_hours: 24, enabled: 1, kind: 'block' }, summary: 'Change the block list “Extra block list”: switch it off; fetch it every 6 hours (was 24)' });
      expect((await sources()).find((s) => s.id === extra.id)).toMatchObject({ enabled: true, scheduleHours: 24 });
      await applied(rescheduled);
      expect((await sources()).find((s) => s.id === extra.id)).toMatchObject({ enabled: false, scheduleHours: 6 });
      // A request that changes nothing is refused at once, by what it lacks.
      expect((await h.api(admin, 'PATCH', `/api/filtering/lists/${extra.id}`, { scheduleHours: 6 })).body.error.message).toMatch(/changes nothing/);

      // A held update (as another node leaves it: the version is not on this node's disk).
      expect((await h.api(admin, 'POST', `/api/filtering/lists/${extra.id}/confirm`)).status).toBe(409);
      await t.runtime.db.kysely.updateTable('filter_list_source').set({ held_at: t.clock.now().toISOString(), held_entries: 1, held_version: 'elsewhere', entries: 40 }).where('id', '=', extra.id).execute();
      const confirm = await h.api(admin, 'POST', `/api/filtering/lists/${extra.id}/confirm`);
      expect(confirm.body.changeRequest).toMatchObject({ kind: 'list.held_confirm', summary: 'Use the held update of the block list “Extra block list”: 1 entries instead of 40', before: { held_entries: 1, entries: 40 } });
      expect((await t.runtime.db.kysely.selectFrom('filter_list_source').select('held_at').where('id', '=', extra.id).executeTakeFirstOrThrow()).held_at).not.toBeNull();
      await applied(confirm);
      expect(await t.runtime.db.kysely.selectFrom('filter_list_source').select(['held_at', 'entries']).where('id', '=', extra.id).executeTakeFirstOrThrow()).toEqual({ held_at: null, entries: 1 });

      for (const [kind, action] of [['list.source_add', 'filtering.list_added'], ['list.source_change', 'filtering.list_changed'], ['list.held_confirm', 'filtering.list_update_confirmed']] as const) {
        expect((await h.events('change.requested')).some((e) => detailsOf(e).kind === kind), kind).toBe(true);
        const done = (await h.events(action)).at(-1)!;
        expect(done.actor, action).toBe('seniorleader1');
      }
    });

    it('FI-06 AU-03 policies: a group’s own policy and putting a policy back are change requests; identity-API tokens are too, the secret shown once to the approver', async () => {
      const year7 = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createGroup(ctx, { name: 'Year 7', kind: 'year' }));
      const created = await h.api(admin, 'POST', '/api/filtering/policies', { groupId: year7, copyOf: 'role:staff' });
      expect(created.body.changeRequest).toMatchObject({ kind: 'policy.create', target: `filter_policy:group:${year7}`, summary: 'Give the group “Year 7” a filtering policy of its own (a copy of “Staff”)' });
      expect(await policy(`group:${year7}`)).toBeUndefined();
      await applied(created);
      expect(await policy(`group:${year7}`)).toMatchObject({ kind: 'group', name: 'Year 7' });

      const removed = await h.api(admin, 'DELETE', `/api/filtering/policies/${encodeURIComponent(`group:${year7}`)}`);
      expect(removed.body.changeRequest).toMatchObject({ kind: 'policy.remove', summary: 'Remove the filtering policy of the group “Year 7” (its members go back to their role’s policy)', before: { kind: 'group', name: 'Year 7' } });
      expect(await policy(`group:${year7}`)).toBeDefined();
      await applied(removed);
      expect(await policy(`group:${year7}`)).toBeUndefined();
      // The profile's own policy has nothing to put back.
      expect((await h.api(admin, 'DELETE', '/api/filtering/policies/role:guests')).status).toBe(400);

      const made = await h.api(admin, 'POST', '/api/filtering/identity-tokens', { name: 'RADIUS' });
      expect(made.body).toEqual({ changeRequest: expect.objectContaining({ kind: 'identity_token.create', summary: expect.stringContaining('RADIUS') }) });
      expect(JSON.stringify(made.body)).not.toMatch(/gh[a-z]*_/);
      expect((await h.api(admin, 'GET', '/api/filtering/identity-tokens')).body.tokens).toEqual([]);
      const approval = await applied(made);
      expect(approval.secret).toEqual(expect.any(String));
      // The secret is in the approval's answer only: not in the log, not in the request.
      expect(JSON.stringify((await h.api(admin, 'GET', `/api/governance/changes/${approval.id}`)).body)).not.toContain(approval.secret);
      const identity = await t.app.inject({ method: 'POST', url: '/api/filtering/identity', headers: { authorization: `Bearer ${approval.secret}` }, payload: { ip: '10.9.9.9', username: 'master' } });
      expect(identity.statusCode).toBe(200);
      const token = (await h.api(admin, 'GET', '/api/filtering/identity-tokens')).body.tokens[0];
      const revoked = await h.api(admin, 'DELETE', `/api/filtering/identity-tokens/${token.id}`);
      expect(revoked.body.changeRequest).toMatchObject({ kind: 'identity_token.revoke', summary: 'Revoke the identity-API token “RADIUS”' });
      await applied(revoked);
      expect((await t.app.inject({ method: 'POST', url: '/api/filtering/identity', headers: { authorization: `Bearer ${approval.secret}` }, payload: { ip: '10.9.9.9', username: 'master' } })).statusCode).toBe(401);
    });

    it('FI-06 an emergency change that only tightens (x-change-emergency: true) is in force at once, awaits approval, and rolling it back restores the before-state, for every emergency kind', async () => {
      const leader = await h.as('senior_leader');
      const emergency = { 'x-change-emergency': 'true', 'x-change-reason': 'Reported by the DSL this morning' };
      const rollBack = async (change: any) => {
        const rolled = await h.api(leader, 'POST', `/api/governance/changes/${change.id}/rollback`, { reason: 'Went too far' });
        expect(rolled.status, JSON.stringify(rolled.body)).toBe(200);
        expect(rolled.body.state).toBe('rolled_back');
      };
      const inForce = (asked: { status: number; body: any }, kind: string) => {
        expect(asked.status, JSON.stringify(asked.body)).toBe(200);
        expect(asked.body.changeRequest).toMatchObject({ kind, emergency: true, state: 'applied_pending_approval', reason: 'Reported by the DSL this morning' });
        return asked.body.changeRequest;
      };

      // A stricter policy: no allow list any more, YouTube strict.
      const pupils = await policy('role:pupils');
      expect(pupils).toMatchObject({ allowLists: 'all' });
      const stricter = { ...settingsOf(pupils), allowLists: [], youtube: 'strict' };
      const p = inForce(await h.api(admin, 'PUT', '/api/filtering/policies/role:pupils', stricter, emergency), 'policy.save');
      expect(await policy('role:pupils')).toMatchObject({ allowLists: [], youtube: 'strict' });
      await rollBack(p);
      expect(settingsOf(await policy('role:pupils'))).toEqual(settingsOf(pupils));

      // A new block list.
      const list = inForce(await h.api(admin, 'POST', '/api/filtering/lists', { name: 'Emergency block list', format: 'domains', location: null, kind: 'block' }, emergency), 'list.source_add');
      expect((await sources()).map((s) => s.name)).toContain('Emergency block list');
      await rollBack(list);
      expect((await sources()).map((s) => s.name)).not.toContain('Emergency block list');

      // The allow list off, and a site taken off it.
      const off = inForce(await h.api(admin, 'PATCH', `/api/filtering/lists/${allowId}`, { enabled: false }, emergency), 'list.source_change');
      expect((await sources()).find((s) => s.id === allowId)!.enabled).toBe(false);
      await rollBack(off);
      expect((await sources()).find((s) => s.id === allowId)!.enabled).toBe(true);
      const taken = inForce(await h.api(admin, 'DELETE', `/api/filtering/lists/${allowId}/entries/museum.example`, undefined, emergency), 'list.entry_remove');
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${allowId}/entries`)).body.entries.map((e: any) => e.host)).toEqual(['teaching.example']);
      await rollBack(taken);
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${allowId}/entries`)).body.entries.map((e: any) => e.host)).toEqual(['museum.example', 'teaching.example']);

      // A leaked identity token revoked at once; approved, it stays revoked; another rolled back works again.
      await applied(await h.api(admin, 'POST', '/api/filtering/identity-tokens', { name: 'Agent' }));
      const agent = (await h.api(admin, 'GET', '/api/filtering/identity-tokens')).body.tokens.find((x: any) => x.name === 'Agent');
      const revoke = inForce(await h.api(admin, 'DELETE', `/api/filtering/identity-tokens/${agent.id}`, undefined, emergency), 'identity_token.revoke');
      expect((await h.api(admin, 'GET', '/api/filtering/identity-tokens')).body.tokens.find((x: any) => x.id === agent.id).revokedAt).not.toBeNull();
      await rollBack(revoke);
      expect((await h.api(admin, 'GET', '/api/filtering/identity-tokens')).body.tokens.find((x: any) => x.id === agent.id).revokedAt).toBeNull();

      // Emergencies are escalated like any other until decided.
      const open = inForce(await h.api(admin, 'POST', `/api/filtering/lists/${blockId}/entries`, { hosts: ['urgent.example'] }, emergency), 'list.entries_add');
      expect((await changesDue(t.runtime)).some((d) => d.kind === 'change_emergency' && d.title.includes('urgent.example'))).toBe(true);
      expect((await h.api(leader, 'POST', `/api/governance/changes/${open.id}/approve`, {})).body.state).toBe('approved');
      for (const action of ['change.emergency_requested', 'change.emergency_applied', 'change.rollback_started', 'change.rolled_back']) {
        const kinds = new Set((await h.events(action)).map((e) => e.target));
        expect(kinds.size, action).toBeGreaterThanOrEqual(action.startsWith('change.roll') ? 5 : 6);
      }
    });

    it('FI-07 switching filtering off or loosening it is never an emergency: it waits for a second person, and a bad flag is refused by name', async () => {
      const staff = await policy('role:staff');
      const off = { ...settingsOf(staff), blockedCategories: [], defaultAction: 'allow', safeSearch: 'off' };
      const refused = await h.api(admin, 'PUT', '/api/filtering/policies/role:staff', off, { 'x-change-emergency': 'true' });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/Only blocking sites now/);
      expect(settingsOf(await policy('role:staff'))).toEqual(settingsOf(staff));
      const asked = await h.api(admin, 'PUT', '/api/filtering/policies/role:staff', off, { 'x-change-emergency': 'false', 'x-change-reason': 'Staff training day' });
      expect(asked.status).toBe(202);
      expect(settingsOf(await policy('role:staff'))).toEqual(settingsOf(staff));
      expect((await h.api(await h.as('senior_leader'), 'POST', `/api/governance/changes/${asked.body.changeRequest.id}/refuse`, { reason: 'Not without the DSL' })).body.state).toBe('refused');
      // Switching the allow list on, a group policy, a device, a token: none only tightens.
      for (const [method, url, payload] of [
        ['POST', '/api/filtering/lists', { name: 'Another allow list', format: 'domains', location: null, kind: 'allow' }],
        ['POST', '/api/filtering/devices', { name: 'Kiosk', address: '10.0.9.9', policyId: 'role:staff' }],
        ['POST', '/api/filtering/identity-tokens', { name: 'Sneaky' }],
      ] as const) {
        expect((await h.api(admin, method, url, payload, { 'x-change-emergency': 'true' })).status, url).toBe(400);
      }
      const bad = await h.api(admin, 'POST', `/api/filtering/lists/${blockId}/entries`, { hosts: ['x.example'] }, { 'x-change-emergency': 'now' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/x-change-emergency/);
    });

    it('FI-08 unblocking a site (adding it to an allow list) is decided by a responsible person: never an emergency, in force only on approval', async () => {
      expect((await h.api(admin, 'POST', `/api/filtering/lists/${allowId}/entries`, { hosts: ['unblock.example'] }, { 'x-change-emergency': 'true' })).status).toBe(400);
      const asked = await h.api(admin, 'POST', `/api/filtering/lists/${allowId}/entries`, { hosts: ['unblock.example'] }, { 'x-change-reason': 'Asked for by Year 6 teachers' });
      expect(asked.status).toBe(202);
      expect(asked.body.entries.map((e: any) => e.host)).not.toContain('unblock.example');
      const done = await applied(asked);
      expect(done).toMatchObject({ decidedBy: 'seniorleader1', reason: 'Asked for by Year 6 teachers' });
      expect((await h.api(admin, 'GET', `/api/filtering/lists/${allowId}/entries`)).body.entries.map((e: any) => e.host)).toContain('unblock.example');
    });

    it('FI-06 attacks: staff and office cannot ask; two approvers racing apply once; a replayed approval or rollback changes nothing; a change whose target changed since is refused', async () => {
      for (const role of ['staff', 'office', 'dsl', 'governor', 'senior_leader'] as const) {
        const who = await h.as(role);
        expect((await h.api(who, 'PATCH', `/api/filtering/lists/${blockId}`, { scheduleHours: 2 })).status, role).toBe(403);
        expect((await h.api(who, 'POST', '/api/governance/changes', { change: { kind: 'list.source_change', listId: blockId, source: { scheduleHours: 2 } }, reason: 'Please change' })).status, role).toBe(403);
      }
      const racing = await h.api(admin, 'PATCH', `/api/filtering/lists/${blockId}`, { scheduleHours: 3 });
      const a = await h.as('senior_leader', 1);
      const b = await h.as('senior_leader', 2);
      const results = await Promise.all([a, b, a, b].map((s) => h.api(s, 'POST', `/api/governance/changes/${racing.body.changeRequest.id}/approve`, {})));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409)).toHaveLength(3);
      expect((await h.events('filtering.list_changed')).filter((e) => JSON.stringify(detailsOf(e).changed) === '{"schedule_hours":3}')).toHaveLength(1);
      // The same approval sent again (a replay, same session and body) is refused.
      expect((await h.api(a, 'POST', `/api/governance/changes/${racing.body.changeRequest.id}/approve`, {})).status).toBe(409);

      // Two requests from the same state: the second is stale once the first is applied.
      const first = await h.api(admin, 'PATCH', `/api/filtering/lists/${blockId}`, { scheduleHours: 4 });
      const second = await h.api(admin, 'PATCH', `/api/filtering/lists/${blockId}`, { name: 'Renamed block list' });
      await applied(first);
      const stale = await h.api(a, 'POST', `/api/governance/changes/${second.body.changeRequest.id}/approve`, {});
      expect(stale.status).toBe(409);
      expect(stale.body.error.code).toBe('change_stale');
      expect((await sources()).find((s) => s.id === blockId)!.name).toBe('Blocked by the school');

      // A rollback sent twice undoes once.
      const emergency = await h.api(admin, 'POST', `/api/filtering/lists/${blockId}/entries`, { hosts: ['twice.example'] }, { 'x-change-emergency': 'true' });
      const rollbacks = await Promise.all([a, b].map((s) => h.api(s, 'POST', `/api/governance/changes/${emergency.body.changeRequest.id}/rollback`, { reason: 'A mistake' })));
      expect(rollbacks.map((r) => r.status).sort()).toEqual([200, 409]);
      expect((await h.events('change.rolled_back')).filter((e) => e.target === `change_request:${emergency.body.changeRequest.id}`)).toHaveLength(1);
      // A change that was never an emergency cannot be "rolled back".
      expect((await h.api(a, 'POST', `/api/governance/changes/${first.body.changeRequest.id}/rollback`, { reason: 'undo' })).status).toBe(409);
    });

    it('FI-03 FI-06 an illegal-content list is never removed or switched off, through its route, a change request or an emergency', async () => {
      await reauthenticate(t, admin);
      const iwf = await h.api(admin, 'POST', '/api/filtering/lists', { name: 'IWF list', format: 'domains', location: path.join(work, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 });
      await applied(iwf);
      const id = (await sources()).find((s) => s.name === 'IWF list')!.id;
      expect((await h.api(admin, 'DELETE', `/api/filtering/lists/${id}`)).status).toBe(400);
      expect((await h.api(admin, 'PATCH', `/api/filtering/lists/${id}`, { enabled: false })).status).toBe(400);
      expect((await h.api(admin, 'POST', '/api/governance/changes', { change: { kind: 'list.source_remove', listId: id }, reason: 'Remove it' })).status).toBe(400);
      expect((await h.api(admin, 'POST', '/api/filtering/lists', { name: 'IWF now', format: 'domains', location: path.join(work, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 }, { 'x-change-emergency': 'true' })).status).toBe(400);
      expect((await sources()).find((s) => s.id === id)!.enabled).toBe(true);
    });
  });
}
