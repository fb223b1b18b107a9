import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { csrfTokenFor, startSession } from '../../src/identity/sessions.js';
import { createAccount } from '../../src/identity/service.js';
import { setContact } from '../../src/school/service.js';
import { incidentsDue, sendBreachReminders } from '../../src/incidents/service.js';
import { incidentsSection } from '../../src/incidents/termly-section.js';
import { breachDecisionsProbe } from '../../src/incidents/probes.js';
import { Facts } from '../../src/compliance/probes.js';
import { dialects } from '../helpers/databases.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { setUpSchool, startTestApp, type TestApp } from '../helpers/runtime.js';

const HOUR = 3_600_000;
const FORM = { 'x-gatehouse-concern': '1' };

for (const dialect of await dialects()) {
  describe(`incidents and breaches on ${dialect}`, () => {
    let t: TestApp;
    let sink: Awaited<ReturnType<typeof startSmtpSink>>;
    const headers = new Map<Role, Record<string, string>>();
    const roleList: Role[] = ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor', 'office', 'staff', 'pupil'];

    type Who = Role | null;
    const api = async (who: Who, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, extra: Record<string, string> = {}, remoteAddress = '127.0.0.1') => {
      const response = await t.app.inject({ method, url, headers: { ...(who ? headers.get(who)! : {}), ...extra }, payload: payload as object, remoteAddress });
      const json = response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined;
      return { status: response.statusCode, body: json, text: response.body };
    };
    const auditActions = async (target: string) =>
      (await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'body']).where('target', '=', target).orderBy('seq').execute()).map((e) => e.action);

    const waitMail = async (match: (m: { to: string[]; raw: string }) => boolean) => {
      for (let i = 0; i < 200 && !sink.messages.some(match); i++) await new Promise((r) => setTimeout(r, 25));
      const found = sink.messages.find(match);
      if (!found) throw new Error('the expected mail did not arrive');
      return found;
    };
    const ids = new Map<Role, string>();
    /** sessions end with time; after the clock moves on, everyone signs in again */
    const startSessions = async () => {
      for (const role of roleList) {
        const { token } = await t.runtime.trail.transaction(systemActor('test'), (ctx) => startSession(ctx, ids.get(role)!, role, t.runtime.profile, { ip: null, userAgent: null }));
        headers.set(role, { cookie: `__Host-gatehouse-session=${token}`, 'x-csrf-token': csrfTokenFor(token) });
      }
    };

    beforeAll(async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url, rateLimitReportPerMinute: 20 } });
      await setUpSchool(t);
      for (const role of roleList) {
        const id = await t.runtime.trail.transaction(systemActor('test'), (ctx) =>
          createAccount(ctx, { username: `user-${role.replace('_', '')}`, displayName: `A ${role}`, email: `${role}@school.example`, role, passwordHash: null }),
        );
        ids.set(role, id);
      }
      await startSessions();
      await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        await setContact(ctx, 'headteacher', { name: 'Ms Head', email: 'head@school.example' });
        await setContact(ctx, 'dpo', { name: 'Mr Data', email: 'dpo-named@school.example' });
      });
    });
    afterAll(async () => {
      await t.close();
      await sink.close();
    });

    it('IN-01 AC-04 a pupil reports an online-safety concern anonymously from the sign-in page: a reference back, the DSL told by e-mail without the details', async () => {
      const r = await api(null, 'POST', '/api/concerns', { kind: 'online_safety', details: 'Someone in Year 6 is sending me messages that scare me', source: 'sign_in' }, FORM);
      expect(r.status).toBe(202);
      expect(Object.keys(r.body)).toEqual(['reference']);
      expect(r.body.reference).toMatch(/^C-[0-9A-Z]{8}$/);
      const mail = await waitMail((m) => m.to.includes('dsl@school.example') && m.raw.includes(r.body.reference));
      expect(mail.raw).not.toContain('scare me');
      const dsl = await api('dsl', 'GET', '/api/concerns');
      const mine = dsl.body.concerns.find((c: any) => c.reference === r.body.reference);
      expect(mine).toMatchObject({ kind: 'online_safety', reporterName: null, source: 'sign_in', status: 'new' });
      // the IT lead sees technical concerns, not online-safety ones
      expect((await api('administrator', 'GET', '/api/concerns')).body.concerns.some((c: any) => c.reference === r.body.reference)).toBe(false);
      expect(await auditActions(`incident_concern:${mine.id}`)).toContain('incident.concern_reported');
    });

    it('IN-01 a named technical concern from the block page reaches the IT lead', async () => {
      const r = await api(null, 'POST', '/api/concerns', { kind: 'technical', details: 'The homework site is blocked', name: 'Sam (7B)', source: 'block_page', blockedHost: 'homework.example' }, FORM);
      expect(r.status).toBe(202);
      await waitMail((m) => m.to.includes('administrator@school.example') && m.raw.includes(r.body.reference));
      const admin = await api('administrator', 'GET', '/api/concerns');
      expect(admin.body.concerns.find((c: any) => c.reference === r.body.reference)).toMatchObject({ reporterName: 'Sam (7B)', blockedHost: 'homework.example' });
      expect((await incidentsDue(t.runtime)).some((d) => d.kind === 'concern' && d.permission === 'concerns.read')).toBe(true);
    });

    it('IN-01 attacks on the public form: no form header (cross-site), form-encoded, huge bodies, hostile HTML, unknown fields, floods', async () => {
      expect((await api(null, 'POST', '/api/concerns', { kind: 'technical', details: 'x' })).status).toBe(403);
      const encoded = await t.app.inject({ method: 'POST', url: '/api/concerns', headers: { ...FORM, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'kind=technical&details=x' });
      expect(encoded.statusCode).toBe(415);
      const huge = await api(null, 'POST', '/api/concerns', { kind: 'technical', details: 'a'.repeat(40_000) }, FORM);
      expect(huge.status).toBe(413);
      expect((await api(null, 'POST', '/api/concerns', { kind: 'technical', details: 'b'.repeat(4001) }, FORM)).status).toBe(400);
      expect((await api(null, 'POST', '/api/concerns', { kind: 'technical', details: 'x', role: 'administrator' }, FORM)).status).toBe(400);
      const script = '<script>alert(document.cookie)</script><img src=x onerror=alert(1)>';
      const r = await api(null, 'POST', '/api/concerns', { kind: 'technical', details: script, name: '<b>me</b>' }, FORM);
      expect(r.status).toBe(202);
      expect(r.text).not.toContain('<');
      const stored = (await api('dsl', 'GET', '/api/concerns')).body.concerns.find((c: any) => c.reference === r.body.reference);
      expect(stored.details).toBe(script); // kept as text; the console renders it as text
      // one address flooding the form is stopped (the report budget per minute)
      let limited = 0;
      for (let i = 0; i < 25; i++) if ((await api(null, 'POST', '/api/concerns', { kind: 'technical', details: `flood ${i}` }, FORM, '10.9.9.9')).status === 429) limited++;
      expect(limited).toBeGreaterThan(0);
    });

    let safeguardingId = '';
    it('MO-03 staff record an incident from an alert and get its reference only; the DSL reads it', async () => {
      const r = await api('staff', 'POST', '/api/incidents', { category: 'safeguarding', title: 'Pupil searched for self-harm', summary: 'Alert on 7B laptop', alertRef: 'ALERT-42', people: 'Pupil in 7B', devices: '7B laptop 3' });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ readable: false });
      expect(r.body.reference).toMatch(/^INC-/);
      safeguardingId = r.body.id;
      const got = await api('dsl', 'GET', `/api/incidents/${safeguardingId}`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ source: 'alert', alertRef: 'ALERT-42', category: 'safeguarding', status: 'open' });
      expect(got.body.timeline[0].text).toContain('from alert ALERT-42');
      const audit = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('target', '=', `incident:${safeguardingId}`).executeTakeFirstOrThrow();
      expect(audit.body).not.toContain('self-harm'); // the trail is read more widely than safeguarding details may be
    });

    it('IN-07 attacks on safeguarding details: staff and pupils by ID, other leaders by ID (IDOR), and list leaks', async () => {
      for (const role of ['staff', 'pupil', 'office', 'governor'] as Role[]) expect((await api(role, 'GET', `/api/incidents/${safeguardingId}`)).status, role).toBe(403);
      for (const role of ['administrator', 'senior_leader', 'dpo'] as Role[]) {
        const byId = await api(role, 'GET', `/api/incidents/${safeguardingId}`);
        const missing = await api(role, 'GET', `/api/incidents/${crypto.randomUUID()}`);
        expect(byId.status, role).toBe(404);
        expect([byId.body.error.code, byId.body.error.message]).toEqual([missing.body.error.code, missing.body.error.message]); // indistinguishable from one that does not exist
        const list = await api(role, 'GET', '/api/incidents');
        expect(list.text).not.toContain('self-harm');
        expect(list.body.incidents.every((i: any) => i.category !== 'safeguarding')).toBe(true);
        expect((await api(role, 'PATCH', `/api/incidents/${safeguardingId}`, { cause: 'x' })).status, role).toBe(404);
        expect((await api(role, 'POST', `/api/incidents/${safeguardingId}/timeline`, { kind: 'note', text: 'x' })).status, role).toBe(404);
      }
      expect((await api('staff', 'GET', '/api/incidents')).status).toBe(403);
      expect((await api(null, 'GET', '/api/incidents')).status).toBe(401);
      // a staff member cannot read even the incident they recorded
      expect((await api('staff', 'GET', `/api/incidents/${safeguardingId}`)).status).toBe(403);
    });

    it('IN-03 IN-06 IN-07 containment, quarantine slot, cause, actions, policy updates and outcome; the timeline is append-only and each entry audited', async () => {
      const contained = await api('dsl', 'POST', `/api/incidents/${safeguardingId}/timeline`, { kind: 'containment', text: 'Laptop taken out of use' });
      expect(contained.status).toBe(201);
      const quarantine = await api('dsl', 'POST', `/api/incidents/${safeguardingId}/timeline`, { kind: 'quarantine', text: 'Device 7B laptop 3 put in quarantine' });
      expect(quarantine.status).toBe(201);
      const updated = await api('dsl', 'PATCH', `/api/incidents/${safeguardingId}`, { cause: 'Search not filtered on the guest Wi-Fi', actions: 'Guest Wi-Fi moved behind the filter', policyUpdates: 'Wi-Fi section of the policy updated' });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ cause: 'Search not filtered on the guest Wi-Fi', policyUpdates: 'Wi-Fi section of the policy updated' });
      expect((await api('dsl', 'POST', `/api/incidents/${safeguardingId}/close`, {})).status).toBe(400);
      const closed = await api('dsl', 'POST', `/api/incidents/${safeguardingId}/close`, { outcome: 'Pupil supported; parents informed' });
      expect(closed.status).toBe(200);
      expect(closed.body.timeline.map((e: any) => e.kind)).toEqual(['recorded', 'containment', 'quarantine', 'update', 'update', 'update', 'closed']);
      expect(await auditActions(`incident:${safeguardingId}`)).toEqual(['incident.recorded', 'incident.timeline_added', 'incident.quarantine_recorded', 'incident.updated', 'incident.closed']);
      // closed: no more changes; no route edits or deletes a timeline entry
      expect((await api('dsl', 'PATCH', `/api/incidents/${safeguardingId}`, { cause: 'rewritten' })).status).toBe(409);
      expect((await api('dsl', 'POST', `/api/incidents/${safeguardingId}/close`, { outcome: 'again' })).status).toBe(409);
      for (const method of ['DELETE', 'PUT'] as const) expect((await t.app.inject({ method, url: `/api/incidents/${safeguardingId}`, headers: headers.get('dsl')! })).statusCode).toBe(404);
    });

    it('IN-01 the DSL takes up a concern as an incident, once even when two requests race', async () => {
      const c = await api(null, 'POST', '/api/concerns', { kind: 'online_safety', details: 'Chat app is being used to bully', source: 'block_page' }, FORM);
      const concern = (await api('dsl', 'GET', '/api/concerns')).body.concerns.find((x: any) => x.reference === c.body.reference);
      const body = { category: 'safeguarding', title: 'Bullying on chat', summary: 'From a concern', concernId: concern.id };
      const results = await Promise.all([api('dsl', 'POST', '/api/incidents', body), api('dsl', 'POST', '/api/incidents', body)]);
      expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
      // the IT lead may not take up an online-safety concern (not theirs to see)
      const c2 = await api(null, 'POST', '/api/concerns', { kind: 'online_safety', details: 'another' }, FORM);
      const concern2 = (await api('dsl', 'GET', '/api/concerns')).body.concerns.find((x: any) => x.reference === c2.body.reference);
      expect((await api('administrator', 'POST', '/api/incidents', { ...body, category: 'security', concernId: concern2.id })).status).toBe(404);
      expect((await api('administrator', 'POST', `/api/concerns/${concern2.id}/dismiss`, { reason: 'x' })).status).toBe(404);
      expect((await api('dsl', 'POST', `/api/concerns/${concern2.id}/dismiss`, { reason: 'Duplicate of the chat report' })).status).toBe(204);
      expect((await api('dsl', 'POST', `/api/concerns/${concern2.id}/dismiss`, { reason: 'again' })).status).toBe(409);
    });

    it('IN-02 a security breach goes to the IT lead, the headteacher and the DPO', async () => {
      const r = await api('administrator', 'POST', '/api/incidents', { category: 'security', title: 'Shared admin password found on a sticky note', summary: 'In the ICT suite' });
      expect(r.status).toBe(201);
      expect(r.body.readable).toBe(true);
      const mail = await waitMail((m) => m.raw.includes(r.body.reference));
      expect(mail.to).toEqual(expect.arrayContaining(['dpo-named@school.example', 'dpo@school.example', 'administrator@school.example', 'head@school.example']));
      expect((await api('dsl', 'GET', `/api/incidents/${r.body.id}`)).status).toBe(404);
    });

    it('IN-05 a cyber incident records its report to Action Fraud with the reference, once', async () => {
      const r = await api('administrator', 'POST', '/api/incidents', { category: 'cyber', title: 'Ransomware e-mail opened', summary: 'Office PC 2', devices: 'Office PC 2' });
      const reported = await api('administrator', 'POST', `/api/incidents/${r.body.id}/authority-report`, { authority: 'action_fraud', reference: 'NFRC260912345' });
      expect(reported.status).toBe(200);
      expect(reported.body.authorityReport).toMatchObject({ authority: 'action_fraud', reference: 'NFRC260912345' });
      expect(reported.body.timeline.at(-1).text).toContain('Action Fraud');
      expect((await api('administrator', 'POST', `/api/incidents/${r.body.id}/authority-report`, { authority: 'ncsc', reference: 'other' })).status).toBe(409);
      expect(await auditActions(`incident:${r.body.id}`)).toContain('incident.authority_reported');
    });

    let breachId = '';
    it('IN-04 a personal-data breach shows its 72-hour clock from awareness on the incident and the overview', async () => {
      const aware = new Date(t.clock.now().getTime() - 10 * HOUR).toISOString();
      const r = await api('staff', 'POST', '/api/incidents', { category: 'data_breach', title: 'Class list e-mailed to the wrong parent', summary: 'Names and dates of birth of 28 pupils', people: '28 pupils in 4C', awareAt: aware });
      expect(r.status).toBe(201);
      breachId = r.body.id;
      const got = await api('dpo', 'GET', `/api/incidents/${breachId}`);
      expect(got.body.breach).toMatchObject({ awareAt: aware, hoursLeft: 62, overdue: false, icoDecision: null });
      expect(got.body.breach.deadline).toBe(new Date(Date.parse(aware) + 72 * HOUR).toISOString());
      const due = (await incidentsDue(t.runtime)).find((d) => d.href === `/incidents/${breachId}`)!;
      expect(due).toMatchObject({ requirement: 'IN-04', permission: 'incidents.breach', overdue: false });
      expect(due.title).toContain('62 hours left');
      expect(due.title).not.toContain('Class list');
      expect((await api('dpo', 'GET', '/api/dashboard/due')).body.items.map((i: any) => i.title)).toContain(due.title);
      expect(JSON.stringify((await api('dsl', 'GET', '/api/dashboard/due')).body)).not.toContain(r.body.reference);
      // awareness in the future is refused, and only breaches have it
      expect((await api('dpo', 'POST', '/api/incidents', { category: 'data_breach', title: 'x', summary: 'y', awareAt: new Date(t.clock.now().getTime() + 2 * HOUR).toISOString() })).status).toBe(400);
      expect((await api('dpo', 'POST', '/api/incidents', { category: 'security', title: 'x', summary: 'y', awareAt: aware })).status).toBe(400);
    });

    it('IN-04 the DPO is reminded at 24, 48 and 66 hours, once each even when runs overlap', async () => {
      const dpoMails = () => sink.messages.filter((m) => m.to.includes('dpo-named@school.example') && m.raw.includes('hours left to decide'));
      const start = dpoMails().length;
      expect(await sendBreachReminders(t.runtime)).toEqual({ sent: 0, failed: 0 }); // 10 h: nothing yet
      t.clock.advance(14 * HOUR); // 24 h
      await startSessions();
      const runs = await Promise.all([sendBreachReminders(t.runtime), sendBreachReminders(t.runtime), sendBreachReminders(t.runtime)]);
      expect(runs.reduce((n, r) => n + r.sent, 0)).toBe(1);
      expect(dpoMails().length).toBe(start + 1);
      expect(dpoMails().at(-1)!.raw).toContain('48 hours left');
      t.clock.advance(24 * HOUR); // 48 h
      await startSessions();
      expect((await sendBreachReminders(t.runtime)).sent).toBe(1);
      expect((await sendBreachReminders(t.runtime)).sent).toBe(0);
      t.clock.advance(18 * HOUR); // 66 h
      await startSessions();
      expect((await sendBreachReminders(t.runtime)).sent).toBe(1);
      expect(dpoMails().length).toBe(start + 3);
      expect(dpoMails().at(-1)!.raw).toContain('6 hours left');
      const timeline = (await api('dpo', 'GET', `/api/incidents/${breachId}`)).body.timeline.filter((e: any) => e.kind === 'reminder');
      expect(timeline).toHaveLength(3);
      expect(await auditActions(`incident:${breachId}`)).toEqual(expect.arrayContaining(['incident.breach_reminder_sent']));
    });

    it('IN-04 the ICO decision: only the DPO or headteacher, with reasons and a reference when reported, once; the breach closes only after it', async () => {
      expect((await api('dpo', 'POST', `/api/incidents/${breachId}/close`, { outcome: 'done' })).status).toBe(409);
      expect((await api('administrator', 'POST', `/api/incidents/${breachId}/ico-decision`, { decision: 'reportable', reasoning: 'r', reference: 'x' })).status).toBe(403);
      expect((await api('dsl', 'POST', `/api/incidents/${breachId}/ico-decision`, { decision: 'not_reportable', reasoning: 'r' })).status).toBe(403);
      expect((await api('dpo', 'POST', `/api/incidents/${breachId}/ico-decision`, { decision: 'reportable', reasoning: 'Dates of birth of children' })).status).toBe(400);
      const decide = { decision: 'reportable', reasoning: 'Dates of birth of children: a risk to their rights', reference: 'IC-123456-A1B2' };
      const both = await Promise.all([api('dpo', 'POST', `/api/incidents/${breachId}/ico-decision`, decide), api('senior_leader', 'POST', `/api/incidents/${breachId}/ico-decision`, decide)]);
      expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
      const got = await api('dpo', 'GET', `/api/incidents/${breachId}`);
      expect(got.body.breach).toMatchObject({ icoDecision: 'reportable', icoReference: 'IC-123456-A1B2' });
      // replay of the decision
      expect((await api('dpo', 'POST', `/api/incidents/${breachId}/ico-decision`, decide)).status).toBe(409);
      expect((await incidentsDue(t.runtime)).some((d) => d.href === `/incidents/${breachId}`)).toBe(false);
      expect((await api('dpo', 'POST', `/api/incidents/${breachId}/close`, { outcome: 'Parent deleted the e-mail; staff retrained' })).status).toBe(200);
    });

    it('IN-04 the Art 33(5) record lists every breach, reported or not, and is safe to open in a spreadsheet', async () => {
      await api('dpo', 'POST', '/api/incidents', { category: 'data_breach', title: '=HYPERLINK("http://evil.example")', summary: 'Lost USB stick (encrypted)' });
      const csv = await t.app.inject({ method: 'GET', url: '/api/incidents/breach-record', headers: headers.get('dpo')! });
      expect(csv.statusCode).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      expect(csv.body).toContain('IC-123456-A1B2');
      expect(csv.body).toContain('not yet decided');
      expect(csv.body).toContain(`"'=HYPERLINK`);
      expect(csv.body.split('\r\n').filter(Boolean)).toHaveLength(3);
      expect((await api('dsl', 'GET', '/api/incidents/breach-record')).status).toBe(403);
      expect((await api('administrator', 'GET', '/api/incidents/breach-record')).status).toBe(403);
    });

    it('MO-05 IN-07 the termly report counts incidents by category, naming nobody', async () => {
      const from = new Date(t.clock.now().getTime() - 30 * 86_400_000).toISOString();
      const to = new Date(t.clock.now().getTime() + HOUR).toISOString();
      const section = await incidentsSection({ rt: t.runtime, period: { name: 'test', from: from.slice(0, 10), to: to.slice(0, 10) } as any, from, to });
      expect(section!.heading).toBe('Incidents and concerns');
      const rows = section!.table!.rows;
      expect(rows.find((r) => r[0] === 'Personal-data breach')![1]).toBe('2');
      expect(JSON.stringify(section)).not.toContain('Class list');
      expect(section!.paragraphs![0]).toContain('1 personal-data breach(es) were reported to the ICO');
    });

    it('IN-04 the compliance probe: breaches decided within 72 hours are met; an undecided one is due; a late one is not met', async () => {
      // the decided breach (66 h) and one recorded in the Art 33(5) test, still within its 72 hours
      const now = await breachDecisionsProbe.evaluate(new Facts(t.runtime));
      expect(now.status).toBe('due_soon');
      expect(now.summary).not.toContain('Class list');
      t.clock.advance(73 * HOUR);
      await startSessions();
      expect((await breachDecisionsProbe.evaluate(new Facts(t.runtime))).status).toBe('not_met');
      const compliance = await api('dpo', 'GET', '/api/compliance');
      expect(JSON.stringify(compliance.body)).toContain('breach-decisions');
    });
  });
}
