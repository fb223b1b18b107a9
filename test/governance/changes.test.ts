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
import { ADMIN_PASSWORD, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
/** An audit event's details, from its signed body. */
const detailsOf = (e: { body: string }): Record<string, unknown> => (JSON.parse(e.body) as { details?: Record<string, unknown> }).details ?? {};

async function harness(t: TestApp) {
  const sessions = new Map<string, Session>();
  const api = async (session: Session | null, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const response = await t.app.inject({ method, url, headers: session?.headers ?? {}, payload: payload as object, remoteAddress: '127.0.0.1' });
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

async function blockList(api: Awaited<ReturnType<typeof harness>>['api'], admin: Session, name = 'School block list'): Promise<string> {
  const created = await api(admin, 'POST', '/api/filtering/lists', { name, format: 'domains', location: null, kind: 'block' });
  expect(created.status).toBe(201);
  return created.body.id as string;
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
      listId = await blockList(h.api, admin);
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
      const requested = (await h.events('change.requested'))[0]!;
      expect(detailsOf(requested).reason).toBe('Distracting in lessons');
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
      listId = await blockList(h.api, admin);
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
  });
}
