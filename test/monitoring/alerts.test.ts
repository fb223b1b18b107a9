import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { termlyReport, findPeriod } from '../../src/reports/termly.js';
import { alertEngineFor, alertsDue, type AlertEngine } from '../../src/monitoring/alerts.js';
import { checkWebhook } from '../../src/monitoring/delivery.js';
import { compileWatchList, matchWatchList, normaliseText } from '../../src/monitoring/rules.js';
import type { ActivityRecord } from '../../src/filtering/point.js';
import { filterServiceFor, type FilterService } from '../../src/filtering/service.js';
import { createAccount } from '../../src/identity/service.js';
import { loadProfile } from '../../src/core/profile.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, signIn, setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';

describe('alert rules (pure)', () => {
  const terms = compileWatchList([
    { term: 'kill myself', severity: 'high', theme: 'self-harm' },
    { term: 'suicide', severity: 'high', theme: 'self-harm' },
    { term: 'samobójstwo', severity: 'high', theme: 'self-harm' },
    { term: 'selbstmord', severity: 'high', theme: 'self-harm' },
    { term: 'porn', severity: 'medium', theme: 'adult' },
  ]);
  it('MO-03 a watch-list term matches through leetspeak, accents, run-together words and one wrong letter in words of 5+ letters, in several languages', () => {
    expect(normaliseText('K1ll   MY$3LF!!')).toBe('kill myself');
    expect(matchWatchList('how to k1ll mys3lf', terms)?.term).toBe('kill myself');
    expect(matchWatchList('killmyself', terms)?.term).toBe('kill myself');
    expect(matchWatchList('suicde methods', terms)?.term).toBe('suicide'); // a letter missing
    expect(matchWatchList('SU1C1DE', terms)?.term).toBe('suicide');
    expect(matchWatchList('suiicide', terms)?.term).toBe('suicide');
    expect(matchWatchList('samobojstwo', terms)?.term).toBe('samobójstwo'); // Polish without its accent
    expect(matchWatchList('selbstmordd gedanken', terms)?.term).toBe('selbstmord'); // German, doubled letter
    expect(matchWatchList('p0rn', terms)?.term).toBe('porn');
  });
  it('MO-03 attack: short words are matched exactly only, and ordinary searches do not alert', () => {
    expect(matchWatchList('corn recipes', terms)).toBeNull(); // porn is 4 letters: no fuzziness
    expect(matchWatchList('suite of rooms', terms)).toBeNull();
    expect(matchWatchList('skill my self', terms)).toBeNull();
    expect(matchWatchList('homework help fractions', terms)).toBeNull();
  });
  it('MO-02 DP-01 attack: a webhook to this machine, a private network or over plain http is refused (the list fetcher’s guard)', async () => {
    expect(await checkWebhook('https://127.0.0.1/hook')).toMatchObject({ problem: expect.stringContaining('loopback') });
    expect(await checkWebhook('https://[::1]/hook')).toMatchObject({ problem: expect.stringContaining('loopback') });
    expect(await checkWebhook('https://10.1.2.3/hook')).toMatchObject({ problem: expect.stringContaining('private') });
    expect(await checkWebhook('https://169.254.169.254/latest')).toMatchObject({ problem: expect.any(String) });
    expect(await checkWebhook('https://hooks.example/x', async () => [{ address: '127.0.0.1', family: 4 }])).toMatchObject({ problem: expect.stringContaining('loopback') });
    expect(await checkWebhook('http://203.0.113.9/hook')).toMatchObject({ problem: 'webhooks must use https' });
    expect(await checkWebhook('https://user:pw@hooks.example/x', async () => [{ address: '93.184.216.34', family: 4 }])).toMatchObject({ problem: expect.stringContaining('password') });
    expect(await checkWebhook('https://hooks.example/x', async () => [{ address: '93.184.216.34', family: 4 }])).toHaveProperty('target');
  });
  it('the baseline profile sets every alert setting', () => {
    const profile = loadProfile('ncsc');
    expect(profile.alerts.recipients.safeguarding).toContain('dsl');
    expect(profile.alerts.escalateAfterMinutes).toBeGreaterThan(0);
  });
});

for (const dialect of await dialects()) {
  describe(`alerts on ${dialect}`, () => {
    let t: TestApp;
    let sink: Awaited<ReturnType<typeof startSmtpSink>>;
    let service: FilterService;
    let engine: AlertEngine;
    const ids = new Map<string, string>();
    const api = async (session: Session | null, method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const response = await t.app.inject({ method, url, headers: session?.headers ?? {}, payload: payload as object, remoteAddress: '127.0.0.1' });
      return { status: response.statusCode, body: response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined };
    };
    const person = async (role: Role, username: string, email: string | null) => {
      const hash = await t.runtime.hasher.hash(PASSWORD);
      const id = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `${role} ${username}`, email, role, passwordHash: hash }));
      ids.set(username, id);
      return id;
    };
    // A fresh session each time: the tests move the clock past the idle timeout.
    const as = async (role: Role): Promise<Session> => {
      if (role === 'administrator') return signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecrets.get(t)! });
      const username = `${role.replace('_', '')}1`;
      if (!ids.has(username)) await person(role, username, `${username}@school.example`);
      return signIn(t, username, PASSWORD);
    };
    const activity = (over: Partial<ActivityRecord>): ActivityRecord => ({
      at: t.clock.now().getTime(),
      point: 'proxy',
      clientIp: '10.0.5.12',
      deviceId: null,
      deviceName: 'Y5-IPAD-12',
      personId: ids.get('pupil7') ?? null,
      username: 'pupil7',
      host: 'example.org',
      url: null,
      searchTerm: null,
      action: 'block',
      category: null,
      rule: 'category',
      policy: 'role:pupils',
      ...over,
    });
    /** Through the real path: the filter service's activity writer, its written batch, the engine's queue. */
    const feed = async (...records: ActivityRecord[]) => {
      for (const r of records) service.record(r);
      await service.flushActivity();
      await engine.settle();
    };
    const mailsTo = (address: string) => sink.messages.filter((m) => m.to.includes(address));

    beforeAll(async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url, publicUrl: 'https://gatehouse.school.example' } });
      await setUpSchool(t);
      await t.runtime.db.kysely.updateTable('account').set({ email: 'it@school.example' }).where('role', '=', 'administrator').execute();
      service = filterServiceFor(t.runtime);
      engine = alertEngineFor(t.runtime);
      await person('pupil', 'pupil7', null);
      await person('dsl', 'dsl1', 'dsl@school.example');
      await person('senior_leader', 'seniorleader1', 'head@school.example');
      await person('dpo', 'dpo1', 'dpo@school.example');
      await engine.tick(); // the trail's past is not alerted on
    });
    afterAll(async () => {
      await engine.stop();
      await t.close();
      await sink.close();
    });

    it('FI-11 MO-02 a blocked request in a category of concern reaches the DSL’s mail server within seconds, with who, device, what, when, why and a console link, and no page content', async () => {
      const started = Date.now();
      await feed(activity({ host: 'hate-site.example', url: 'http://hate-site.example/page?secret=page-content-here', category: 'ut1.agressif' }));
      await sink.waitFor(1);
      expect(Date.now() - started).toBeLessThan(60_000);
      const mail = mailsTo('dsl@school.example');
      expect(mail).toHaveLength(1);
      expect(mail[0]!.raw).toContain('pupil7');
      expect(mail[0]!.raw).toContain('Y5-IPAD-12');
      expect(mail[0]!.raw).toContain('hate-site.example');
      expect(mail[0]!.raw).toContain('agressif is a category of concern');
      expect(mail[0]!.raw).toMatch(/https:\/\/gatehouse\.school\.example\/alerts\?id=(3D)?[0-9a-f-]{36}/);
      expect(mail[0]!.raw).not.toContain('page-content-here');
      // security people are not told of safeguarding alerts
      expect(mailsTo('it@school.example')).toHaveLength(0);
      const stored = await t.runtime.db.kysely.selectFrom('alert').selectAll().execute();
      expect(stored).toHaveLength(1);
      expect(JSON.stringify(stored)).not.toContain('page-content-here');
      expect(stored[0]).toMatchObject({ kind: 'safeguarding', rule: 'concern', severity: 'high', username: 'pupil7', device: 'Y5-IPAD-12', what: 'hate-site.example', status: 'new', count: 1 });
    });

    it('FI-11 identical alerts while one is open are counted on it, never muted; a circumvention attempt and a watch-list search raise their own', async () => {
      sink.messages.length = 0;
      await feed(activity({ host: 'hate-site.example', category: 'ut1.agressif' }), activity({ host: 'hate-site.example', category: 'ut1.agressif' }));
      const dsl = await as('dsl');
      const list = (await api(dsl, 'GET', '/api/alerts')).body.alerts;
      expect(list).toEqual([expect.objectContaining({ what: 'hate-site.example', count: 3 })]);
      await feed(activity({ host: 'hide-me.example', category: 'ut1.vpn' }), activity({ host: 'www.google.com', action: 'allow', url: 'http://www.google.com/search?q=how+to+k1ll+mys3lf', searchTerm: 'how to k1ll mys3lf' }));
      await sink.waitFor(1);
      const rules = (await api(dsl, 'GET', '/api/alerts')).body.alerts.map((a: any) => [a.rule, a.severity]);
      expect(rules).toEqual(expect.arrayContaining([['circumvention', 'medium'], ['search_term', 'high']]));
      // both in one mail: they arrived together
      expect(mailsTo('dsl@school.example')).toHaveLength(1);
      expect(mailsTo('dsl@school.example')[0]!.raw).toContain('kill myself');
    });

    it('FI-11 repeated blocked attempts raise one low-severity alert that goes out in the digest, not at once', async () => {
      sink.messages.length = 0;
      const many = Array.from({ length: 20 }, (_, i) => activity({ host: `game-${i}.example`, category: 'ut1.games' }));
      await feed(...many);
      const dsl = await as('dsl');
      const repeated = (await api(dsl, 'GET', '/api/alerts?severity=low')).body.alerts;
      expect(repeated).toEqual([expect.objectContaining({ rule: 'repeated', severity: 'low', notifiedAt: null })]);
      expect(sink.messages).toHaveLength(0);
      t.clock.advance(61 * 60_000);
      await engine.tick();
      await sink.waitFor(1);
      const digest = mailsTo('dsl@school.example').find((m) => m.raw.includes('(digest)'));
      expect(digest?.raw).toContain('20 blocked requests');
    });

    it('MO-07 an alert is acknowledged by a named person, then closed with an action and outcome; two people acknowledging at once: one succeeds', async () => {
      const dsl = await as('dsl');
      const head = await as('senior_leader');
      const [alert] = (await api(dsl, 'GET', '/api/alerts')).body.alerts.filter((a: any) => a.rule === 'circumvention');
      // closing before acknowledging is refused
      expect((await api(dsl, 'POST', `/api/alerts/${alert.id}/close`, { action: 'Spoke to pupil', outcome: 'spoken_to_pupil' })).status).toBe(409);
      const both = await Promise.all([api(dsl, 'POST', `/api/alerts/${alert.id}/acknowledge`), api(head, 'POST', `/api/alerts/${alert.id}/acknowledge`)]);
      expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
      // hostile input is refused with a clear message
      const bad = await api(dsl, 'POST', `/api/alerts/${alert.id}/close`, { action: '', outcome: 'whatever' });
      expect(bad.status).toBe(400);
      const closed = await api(dsl, 'POST', `/api/alerts/${alert.id}/close`, { action: 'Spoke to the pupil with their teacher; VPN app removed from the iPad', outcome: 'spoken_to_pupil' });
      expect(closed.status).toBe(200);
      expect(closed.body).toMatchObject({ status: 'closed', outcome: 'spoken_to_pupil', closedBy: expect.stringMatching(/dsl|senior_leader/) });
      // replay: closing again is refused
      expect((await api(dsl, 'POST', `/api/alerts/${alert.id}/close`, { action: 'again', outcome: 'no_concern' })).status).toBe(409);
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'target']).where('target', '=', `alert:${alert.id}`).orderBy('seq').execute();
      // (it was escalated while the digest test moved the clock on an hour)
      expect(events.map((e) => e.action)).toEqual(['alert.raised', 'alert.escalated', 'alert.acknowledged', 'alert.closed']);
      // a new identical event after closing opens a new alert
      await feed(activity({ host: 'hide-me.example', category: 'ut1.vpn' }));
      expect((await api(dsl, 'GET', '/api/alerts')).body.alerts.filter((a: any) => a.rule === 'circumvention' && a.status === 'new')).toHaveLength(1);
    });

    it('MO-07 an alert nobody acknowledges is escalated to the next role after the profile’s time, once per step (injectable clock)', async () => {
      sink.messages.length = 0;
      await feed(activity({ host: 'self-harm-forum.example', category: 'self-harm' }));
      await sink.waitFor(1);
      await engine.tick();
      expect(mailsTo('head@school.example')).toHaveLength(0);
      t.clock.advance(31 * 60_000);
      await engine.tick();
      await sink.waitFor(2);
      const escalated = mailsTo('head@school.example');
      expect(escalated.length).toBeGreaterThanOrEqual(1);
      expect(escalated[0]!.raw).toContain('ESCALATED');
      const before = sink.messages.length;
      await Promise.all([engine.tick(), engine.tick()]);
      expect(sink.messages.length).toBe(before); // not again until the next step is due
      const due = await alertsDue(t.runtime);
      expect(due).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'alert_safeguarding', overdue: true, requirement: 'MO-07', permission: 'alerts.safeguarding' })]));
      expect(due.map((d) => d.title).join(' ')).not.toContain('pupil7');
    });

    it('FI-11 a privileged account locked by failed sign-ins raises a security alert for the administrators, which the DSL cannot see', async () => {
      sink.messages.length = 0;
      await person('administrator', 'itadmin2', 'it2@school.example');
      for (let i = 0; i < 12; i++) await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'itadmin2', password: 'wrong-password-guess' }, remoteAddress: `10.9.0.${i + 1}` });
      await engine.tick();
      await engine.settle();
      const adminList = (await api(await as('administrator'), 'GET', '/api/alerts')).body.alerts;
      expect(adminList.map((a: any) => a.rule)).toEqual(expect.arrayContaining(['lockout']));
      expect(adminList.every((a: any) => a.kind === 'security')).toBe(true);
      await sink.waitFor(1);
      expect(mailsTo('it@school.example').length).toBeGreaterThanOrEqual(1);
      const dsl = await as('dsl');
      const lockout = adminList.find((a: any) => a.rule === 'lockout');
      expect((await api(dsl, 'GET', `/api/alerts/${lockout.id}`)).status).toBe(404);
      expect((await api(dsl, 'POST', `/api/alerts/${lockout.id}/acknowledge`)).status).toBe(404);
      expect((await api(dsl, 'GET', '/api/alerts')).body.alerts.some((a: any) => a.kind === 'security')).toBe(false);
    });

    it('MO-02 attack: pupils, staff, governors and the office cannot read or handle alerts; an administrator cannot read safeguarding ones', async () => {
      const dsl = await as('dsl');
      const any = (await api(dsl, 'GET', '/api/alerts')).body.alerts[0];
      for (const role of ['pupil', 'staff', 'governor', 'office'] as const) {
        const s = await as(role);
        expect((await api(s, 'GET', '/api/alerts')).status).toBe(403);
        expect((await api(s, 'GET', `/api/alerts/${any.id}`)).status).toBe(403);
        expect((await api(s, 'POST', `/api/alerts/${any.id}/acknowledge`)).status).toBe(403);
      }
      expect((await api(null, 'GET', '/api/alerts')).status).toBe(401);
      const admin = await as('administrator');
      expect((await api(admin, 'GET', `/api/alerts/${any.id}`)).status).toBe(404);
      expect((await api(admin, 'POST', `/api/alerts/${any.id}/acknowledge`)).status).toBe(404);
    });

    it('MO-02 attack: a webhook in the profile pointing at this machine is never called', async () => {
      let hits = 0;
      const server = http.createServer((_req, res) => {
        hits++;
        res.end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      t.runtime.profile.alerts.webhooks = [{ url: `https://127.0.0.1:${port}/hook`, format: 'json', kinds: ['safeguarding'] }];
      try {
        await feed(activity({ host: 'another-hate-site.example', category: 'agressif' }));
        expect(hits).toBe(0);
        expect(t.logs.text).toContain('webhook refused');
      } finally {
        t.runtime.profile.alerts.webhooks = [];
        server.close();
      }
    });

    it('FI-11 the hot path never waits on alert work: record() only buffers; the rules run after the batch is written', async () => {
      const before = await t.runtime.db.kysely.selectFrom('alert').select('id').execute();
      const started = performance.now();
      for (let i = 0; i < 1000; i++) service.record(activity({ host: `x${i}.hate-site-2.example`, category: 'agressif', personId: null, username: null, clientIp: '10.0.9.9' }));
      expect(performance.now() - started).toBeLessThan(200);
      expect(service.activityStats.pending).toBeGreaterThan(0);
      expect(await t.runtime.db.kysely.selectFrom('alert').select('id').execute()).toHaveLength(before.length);
      await service.flushActivity();
      await engine.settle();
      expect((await t.runtime.db.kysely.selectFrom('alert').select('id').execute()).length).toBeGreaterThan(before.length + 900);
    });

    it('MO-05 the termly report counts alerts by kind, rule and outcome, naming nobody', async () => {
      const report = await termlyReport(t.runtime, findPeriod(t.runtime, undefined));
      const section = report.sections.find((s) => s.heading === 'Alerts');
      expect(section).toBeDefined();
      expect(section!.facts).toEqual(expect.arrayContaining([['Closed with an outcome', '1']]));
      expect(JSON.stringify(section)).not.toContain('pupil7');
    });
  });
}
