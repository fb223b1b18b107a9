import dgram from 'node:dgram';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor, type Actor } from '../../src/core/context.js';
import { createGroup, setMembership } from '../../src/directory/groups.js';
import { startDnsServer, type DnsServerHandle } from '../../src/filtering/dns/server.js';
import { ExceptionOverlay } from '../../src/filtering/engine/exceptions.js';
import { compileSnapshot } from '../../src/filtering/engine/snapshot.js';
import { approveFilterOff, endException, exceptionsDue, decideUnblockRequest, decisionLog, listExceptions, openForClass, quarantineDevice, releaseDevice, requestFilterOff, requestOutcome, reviewDecision } from '../../src/filtering/exceptions.js';
import { withExceptions, StaticFilterPoint } from '../../src/filtering/point.js';
import { startProxy, type ProxyHandle } from '../../src/filtering/proxy/proxy.js';
import { filterServiceFor, type FilterService } from '../../src/filtering/service.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { startStubUpstream, type StubUpstream } from '../helpers/dns-upstream.js';
import { approveAsSeniorLeader, reauthenticate, setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const system = systemActor('test');

function ut1Folder(root: string, lists: Record<string, string[]>): string {
  mkdirSync(root, { recursive: true });
  let usage = '# test\n';
  for (const [id, domains] of Object.entries(lists)) {
    mkdirSync(path.join(root, id), { recursive: true });
    writeFileSync(path.join(root, id, 'domains'), `${domains.join('\n')}\n`);
    usage += `NAME:\t${id}\nDEFAULT_TYPE: black\nDESC EN: ${id} sites.\nNAME EN: ${id[0]!.toUpperCase()}${id.slice(1)}\n\n`;
  }
  writeFileSync(path.join(root, 'global_usage'), usage);
  return root;
}

/** One A query to the resolver over UDP: the response code. */
function askDns(port: number, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no DNS answer'));
    }, 3000);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve((dnsPacket.decode(msg) as { rcode?: string }).rcode ?? 'NOERROR');
    });
    socket.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
  });
}

/** A plain-HTTP request through the proxy: the status (403 is the filter's refusal). */
function throughProxy(port: number, url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('the exceptions overlay (engine)', () => {
  const snapshot = compileSnapshot({
    timeZone: 'Europe/London',
    policies: [{ id: 'pupils', name: 'Pupils', blockedCategories: ['games'], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
    categories: [
      { id: 'games', name: 'Games', description: '', kind: 'category', domains: ['games.example'] },
      { id: 'iwf', name: 'IWF', description: '', kind: 'illegal', domains: ['illegal.example'] },
    ],
  });
  const now = Date.parse('2026-09-07T09:00:00Z');
  const who = { personId: 'p1', deviceId: null };
  const base = { everyone: false, personIds: ['p1'], deviceIds: [], addresses: [], startsAt: now - 1000, endsAt: now + 60_000, label: 'test' };

  it('FI-07 illegal content is never opened: not by a domain or category allowance, not by filter-off for everyone, not as a remediation site', () => {
    const overlay = new ExceptionOverlay(
      [
        { ...base, id: 'a', kind: 'allow', targetKind: 'domain', target: 'illegal.example' },
        { ...base, id: 'b', kind: 'lesson', targetKind: 'category', target: 'iwf' },
        { ...base, id: 'c', kind: 'filter-off', everyone: true, targetKind: null, target: null },
        { ...base, id: 'd', kind: 'quarantine', personIds: [], addresses: ['10.0.0.9'], targetKind: null, target: null, endsAt: null },
      ],
      ['illegal.example'],
      now,
    );
    const p = snapshot.policy('pupils');
    for (const ip of ['10.0.0.1', '10.0.0.9']) {
      expect(overlay.apply(snapshot.decide('www.illegal.example', p, now), 'www.illegal.example', who, ip, now)).toMatchObject({ action: 'block', rule: 'illegal' });
    }
    // filter-off opens the rest
    expect(overlay.apply(snapshot.decide('games.example', p, now), 'games.example', who, '10.0.0.1', now)).toMatchObject({ action: 'allow', rule: 'filter-off' });
  });

  it('IN-06 quarantine wins over every allowance and filter-off; only remediation sites (and their subdomains) are reached', () => {
    const overlay = new ExceptionOverlay(
      [
        { ...base, id: 'c', kind: 'filter-off', targetKind: null, target: null },
        { ...base, id: 'q', kind: 'quarantine', personIds: [], deviceIds: ['dev1'], targetKind: null, target: null, endsAt: null },
      ],
      ['update.example'],
      now,
    );
    const p = snapshot.policy('pupils');
    const q = { personId: 'p1', deviceId: 'dev1' };
    expect(overlay.apply(snapshot.decide('news.example', p, now), 'news.example', q, '10.0.0.1', now)).toMatchObject({ action: 'block', rule: 'quarantine', unblockable: false });
    expect(overlay.apply(snapshot.decide('dl.update.example', p, now), 'dl.update.example', q, '10.0.0.1', now).action).toBe('allow');
    // the same person on another device: filter-off applies
    expect(overlay.apply(snapshot.decide('games.example', p, now), 'games.example', who, '10.0.0.2', now).action).toBe('allow');
  });

  it('FI-12 an allowance is exact to the millisecond of its end, without waiting for a reload', () => {
    const overlay = new ExceptionOverlay([{ ...base, id: 'l', kind: 'lesson', targetKind: 'category', target: 'games' }], [], now);
    const p = snapshot.policy('pupils');
    expect(overlay.apply(snapshot.decide('games.example', p, now), 'games.example', who, '10.0.0.1', now)).toMatchObject({ action: 'allow', rule: 'lesson-allowance' });
    expect(overlay.apply(snapshot.decide('games.example', p, now + 60_000), 'games.example', who, '10.0.0.1', now + 60_000)).toMatchObject({ action: 'block' });
    expect(overlay.nextChange).toBe(now + 60_000);
  });

  it('a point without exceptions returns the snapshot’s verdict itself (no allocation on the hot path)', () => {
    const point = new StaticFilterPoint(snapshot, { unknownPolicy: 'pupils' });
    const identity = point.identify('10.0.0.1');
    const v = snapshot.decide('games.example', identity.policyIndex, now);
    expect(withExceptions(point, v, 'games.example', identity, '10.0.0.1', now)).toBe(v);
  });
});

for (const dialect of await dialects()) {
  describe(`filter exceptions on ${dialect}`, () => {
    let t: TestApp;
    let session: Session;
    let service: FilterService;
    let work: string;
    const actors: Record<string, Actor> = {};
    let classId = '';
    let otherClassId = '';
    const at = () => t.clock.now().getTime();
    /** What the resolver and proxy decide for a person (proxy sign-in) at an address: the enforcement points' own path. */
    const decideFor = (host: string, username: string | null, ip = '10.30.0.5') => {
      const snapshot = service.snapshot();
      const identity = service.identify(ip, username);
      return withExceptions(service, snapshot.decide(host, identity.policyIndex, at()), host, identity, ip, at());
    };
    const person = async (username: string, role: Role): Promise<Actor> => {
      const hash = await t.runtime.hasher.hash(PASSWORD);
      const id = await t.runtime.trail.transaction(system, (ctx) => createAccount(ctx, { username, displayName: username, email: null, role, passwordHash: hash }));
      return { id, name: username, role };
    };
    const submit = async (host: string, username: string | null, ip: string) => {
      const res = await t.app.inject({ method: 'POST', url: '/api/filtering/requests', payload: { action: 'request', host, reason: 'I need it for my project' }, remoteAddress: ip, headers: username ? {} : {} });
      expect(res.statusCode).toBe(201);
      return res.json().id as string;
    };

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-exc-'));
      t = await startTestApp(dialect, { config: { listFolder: work } });
      session = await setUpSchool(t);
      await reauthenticate(t, session);
      service = filterServiceFor(t.runtime);
      const folder = ut1Folder(path.join(work, 'ut1'), { adult: ['adult.example'], games: ['games.example'] });
      const api = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: session.headers, payload: payload as object });
      // Each list is a change request (FI-06) a senior leader approves.
      await approveAsSeniorLeader(t, await api('/api/filtering/lists', { name: 'UT1', format: 'ut1', location: folder, kind: 'category', scheduleHours: 24 }));
      writeFileSync(path.join(work, 'iwf.txt'), 'illegal.example\n');
      await approveAsSeniorLeader(t, await api('/api/filtering/lists', { name: 'IWF', format: 'domains', location: path.join(work, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 }));
      await service.refresh(true);
      for (const [name, role] of [['pupil.one', 'pupil'], ['pupil.two', 'pupil'], ['t.teacher', 'staff'], ['o.teacher', 'staff'], ['d.dsl', 'dsl'], ['s.leader', 'senior_leader'], ['s.leader2', 'senior_leader']] as const) actors[name] = await person(name, role);
      classId = await t.runtime.trail.transaction(system, (ctx) => createGroup(ctx, { name: '7B', kind: 'class' }));
      otherClassId = await t.runtime.trail.transaction(system, (ctx) => createGroup(ctx, { name: '8C', kind: 'class' }));
      await t.runtime.trail.transaction(system, async (ctx) => {
        await setMembership(ctx, classId, actors['pupil.one']!.id!, 'member');
        await setMembership(ctx, classId, actors['t.teacher']!.id!, 'teacher');
        await setMembership(ctx, otherClassId, actors['pupil.two']!.id!, 'member');
        await setMembership(ctx, otherClassId, actors['o.teacher']!.id!, 'teacher');
      });
      await service.refresh(true);
    });
    afterAll(async () => {
      await service.stop();
      await t.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('the fixtures: adult is blocked for pupils, illegal for everyone', () => {
      expect(decideFor('adult.example', 'pupil.one')).toMatchObject({ action: 'block', rule: 'category' });
      expect(decideFor('illegal.example', 's.leader')).toMatchObject({ action: 'block', rule: 'illegal' });
    });

    it('FI-13 an unblock request is decided (allow for the person, for a time); the requester sees the outcome; the access ends by itself', async () => {
      // The pupil, signed in by proxy on their device, asks from the block page (signed out here: the address identifies them).
      const reqId = await submit('adult.example', null, '10.30.0.5');
      await t.runtime.db.kysely.updateTable('filter_request').set({ account_id: actors['pupil.one']!.id, username: 'pupil.one' }).where('id', '=', reqId).execute();
      expect((await requestOutcome(t.runtime, reqId)).status).toBe('open');
      const decided = await decideUnblockRequest(t.runtime, actors['d.dsl']!, reqId, { decision: 'allow', scope: 'person', minutes: 30, note: 'Research for PSHE' });
      expect(decided.exception).toMatchObject({ kind: 'allow', scope: 'person', target: 'adult.example', decidedBy: 'd.dsl' });
      expect(decideFor('adult.example', 'pupil.one')).toMatchObject({ action: 'allow', rule: 'exception-allow' });
      expect(decideFor('adult.example', 'pupil.two').action).toBe('block');
      // the requester's page (public, by the id the block page gave)
      const outcome = await t.app.inject({ method: 'GET', url: `/api/filtering/requests/${reqId}/outcome`, remoteAddress: '10.30.0.5' });
      expect(outcome.json()).toMatchObject({ status: 'approved', note: 'Research for PSHE', allowedUntil: new Date(at() + 30 * 60_000).toISOString() });
      // replay: the same request cannot be decided twice
      await expect(decideUnblockRequest(t.runtime, actors['s.leader']!, reqId, { decision: 'refuse', note: 'no' })).rejects.toMatchObject({ status: 409 });
      t.clock.advance(30 * 60_000);
      expect(decideFor('adult.example', 'pupil.one').action).toBe('block');
    });

    it('FI-13 a refusal carries its reason to the requester; FI-08 the decisions log shows reviewed by and when, reviewed by another person', async () => {
      const reqId = await submit('games-other.example', null, '10.30.0.6');
      await expect(decideUnblockRequest(t.runtime, actors['d.dsl']!, reqId, { decision: 'refuse' })).rejects.toMatchObject({ status: 400 });
      await decideUnblockRequest(t.runtime, actors['d.dsl']!, reqId, { decision: 'refuse', note: 'Not needed for school work' });
      expect(await requestOutcome(t.runtime, reqId)).toMatchObject({ status: 'refused', note: 'Not needed for school work', allowedUntil: null });
      await expect(reviewDecision(t.runtime, actors['d.dsl']!, reqId, null)).rejects.toMatchObject({ status: 403 });
      await reviewDecision(t.runtime, actors['s.leader']!, reqId, 'agreed');
      const log = await decisionLog(t.runtime);
      expect(log.find((d) => d.id === reqId)).toMatchObject({ decidedBy: 'd.dsl', reviewedBy: 's.leader', reviewedAt: t.clock.now().toISOString() });
      await expect(reviewDecision(t.runtime, actors['s.leader2']!, reqId, null)).rejects.toMatchObject({ status: 409 });
    });

    it('FI-13 attacks: a pupil cannot decide (their own) request over HTTP, nor decide one in code; parallel decisions allow once', async () => {
      const reqId = await submit('adult.example', null, '10.30.0.7');
      await t.runtime.db.kysely.updateTable('filter_request').set({ account_id: actors['d.dsl']!.id, username: 'd.dsl' }).where('id', '=', reqId).execute();
      await expect(decideUnblockRequest(t.runtime, actors['d.dsl']!, reqId, { decision: 'allow', scope: 'person', minutes: 30 })).rejects.toMatchObject({ status: 403 });
      const anon = await t.app.inject({ method: 'POST', url: `/api/filtering/requests/${reqId}/decision`, payload: { decision: 'allow', scope: 'everyone', minutes: 60 } });
      expect(anon.statusCode).toBe(401);
      const results = await Promise.allSettled([
        decideUnblockRequest(t.runtime, actors['s.leader']!, reqId, { decision: 'allow', scope: 'everyone', minutes: 10 }),
        decideUnblockRequest(t.runtime, actors['s.leader2']!, reqId, { decision: 'allow', scope: 'everyone', minutes: 10 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((await listExceptions(t.runtime, { kind: 'allow' })).filter((e) => e.requestId === reqId)).toHaveLength(1);
      expect(decideFor('adult.example', 'pupil.two')).toMatchObject({ action: 'allow' });
      t.clock.advance(10 * 60_000);
      expect(decideFor('adult.example', 'pupil.two').action).toBe('block');
    });

    it('FI-12 a teacher opens a category for their class for the lesson; it ends by itself (the timer reloads at the end)', async () => {
      const opened = await openForClass(t.runtime, actors['t.teacher']!, { groupId: classId, targetKind: 'category', target: 'adult', minutes: 45, reason: 'Sex education lesson' });
      expect(opened).toMatchObject({ kind: 'lesson', scope: 'group', subjectName: '7B', createdBy: 't.teacher' });
      expect(decideFor('www.adult.example', 'pupil.one')).toMatchObject({ action: 'allow', rule: 'lesson-allowance' });
      expect(decideFor('www.adult.example', 'pupil.two').action).toBe('block');
      const audit = await t.runtime.db.kysely.selectFrom('audit_event').select(['action']).where('action', '=', 'filtering.lesson_allowance_opened').execute();
      expect(audit).toHaveLength(1);
      t.clock.advance(45 * 60_000);
      expect(decideFor('www.adult.example', 'pupil.one').action).toBe('block');
      await service.reloadExceptions();
      expect(service.exceptions().size).toBe(0);
    });

    it('FI-12 attacks: a class the teacher does not teach, beyond the profile maximum, illegal content by category and by domain', async () => {
      await expect(openForClass(t.runtime, actors['t.teacher']!, { groupId: otherClassId, targetKind: 'domain', target: 'games.example', minutes: 30, reason: 'lesson' })).rejects.toMatchObject({ status: 403 });
      await expect(openForClass(t.runtime, actors['pupil.one']!, { groupId: classId, targetKind: 'domain', target: 'games.example', minutes: 30, reason: 'lesson' })).rejects.toMatchObject({ status: 403 });
      const max = t.runtime.profile.governance.lessonAllowanceMaxMinutes;
      await expect(openForClass(t.runtime, actors['t.teacher']!, { groupId: classId, targetKind: 'domain', target: 'games.example', minutes: max + 1, reason: 'lesson' })).rejects.toMatchObject({ status: 400 });
      const iwf = service.snapshot().categories.find((c) => c.kind === 'illegal')!.id;
      await expect(openForClass(t.runtime, actors['t.teacher']!, { groupId: classId, targetKind: 'category', target: iwf, minutes: 30, reason: 'lesson' })).rejects.toMatchObject({ status: 400 });
      await expect(openForClass(t.runtime, actors['t.teacher']!, { groupId: classId, targetKind: 'domain', target: 'https://www.illegal.example/x', minutes: 30, reason: 'lesson' })).rejects.toMatchObject({ status: 400 });
      const reqId = await submit('adult.example', null, '10.30.0.8');
      await t.runtime.db.kysely.updateTable('filter_request').set({ host: 'illegal.example' }).where('id', '=', reqId).execute();
      await expect(decideUnblockRequest(t.runtime, actors['s.leader']!, reqId, { decision: 'allow', scope: 'everyone', minutes: 30 })).rejects.toMatchObject({ status: 400 });
    });

    it('FI-07 FI-08 filtering turned off needs a second approver, is capped by the profile, never opens illegal content, and ends by itself', async () => {
      const max = t.runtime.profile.governance.filterOffMaxHours;
      await expect(requestFilterOff(t.runtime, actors['d.dsl']!, { scope: 'person', subject: actors['pupil.two']!.id!, hours: max + 1, reason: 'Research project on harmful content' })).rejects.toMatchObject({ status: 400 });
      const asked = await requestFilterOff(t.runtime, actors['s.leader']!, { scope: 'person', subject: actors['pupil.two']!.id!, hours: 2, reason: 'Research project on harmful content' });
      expect(asked.status).toBe('pending');
      expect(decideFor('adult.example', 'pupil.two').action).toBe('block');
      await expect(approveFilterOff(t.runtime, actors['s.leader']!, asked.id)).rejects.toMatchObject({ status: 403 });
      // the profile's approvers are senior leaders: the DSL may not approve
      await expect(approveFilterOff(t.runtime, actors['d.dsl']!, asked.id)).rejects.toMatchObject({ status: 403 });
      const approved = await approveFilterOff(t.runtime, actors['s.leader2']!, asked.id);
      expect(approved).toMatchObject({ status: 'active', decidedBy: 's.leader2' });
      await expect(approveFilterOff(t.runtime, actors['s.leader2']!, asked.id)).rejects.toMatchObject({ status: 409 });
      expect(decideFor('adult.example', 'pupil.two')).toMatchObject({ action: 'allow', rule: 'filter-off' });
      expect(decideFor('illegal.example', 'pupil.two')).toMatchObject({ action: 'block', rule: 'illegal' });
      t.clock.advance(2 * 3_600_000);
      expect(decideFor('adult.example', 'pupil.two').action).toBe('block');
    });

    it('FI-07 filtering off asked for by username (as the console form does) is stored against the account; an unknown name or address is refused', async () => {
      const asked = await requestFilterOff(t.runtime, actors['s.leader']!, { scope: 'person', subject: 'pupil.one', hours: 1, reason: 'Research project on harmful content' });
      expect(asked).toMatchObject({ status: 'pending', subject: actors['pupil.one']!.id, subjectName: 'pupil.one' });
      await expect(requestFilterOff(t.runtime, actors['s.leader']!, { scope: 'person', subject: 'nobody.here', hours: 1, reason: 'Research project on harmful content' })).rejects.toMatchObject({ status: 400 });
      await expect(requestFilterOff(t.runtime, actors['s.leader']!, { scope: 'address', subject: 'not-an-address', hours: 1, reason: 'Research project on harmful content' })).rejects.toMatchObject({ status: 400 });
      await endException(t.runtime, actors['s.leader2']!, asked.id);
    });

    it('IN-06 a quarantined address is blocked by the real resolver and proxy at once, but reaches remediation sites; released by a named person', async () => {
      const upstream: StubUpstream = await startStubUpstream({ synthesize: true });
      const dns: DnsServerHandle = await startDnsServer(service, { host: '127.0.0.1', port: 0, upstreams: [upstream.spec], now: at });
      const proxy: ProxyHandle = await startProxy(service, { now: at, auth: 'optional', authenticate: () => true });
      try {
        expect(await askDns(dns.port, 'news.example')).toBe('NOERROR');
        const q = await quarantineDevice(t.runtime, actors['d.dsl']!, { address: '127.0.0.1', reason: 'Malware beaconing seen', incidentId: 'INC-1' });
        expect(q).toMatchObject({ kind: 'quarantine', status: 'active', incidentId: 'INC-1', createdBy: 'd.dsl' });
        expect(await askDns(dns.port, 'news.example')).toBe('NXDOMAIN');
        expect(await askDns(dns.port, 'download.windowsupdate.com')).toBe('NOERROR');
        expect(await askDns(dns.port, 'illegal.example')).toBe('NXDOMAIN');
        expect(await throughProxy(proxy.port, 'http://news.example/')).toBe(403);
        // on the overview ("needs attention") until released
        expect((await exceptionsDue(t.runtime)).map((i) => i.kind)).toContain('device_quarantined');
        await expect(quarantineDevice(t.runtime, actors['d.dsl']!, { address: '127.0.0.1', reason: 'again' })).rejects.toMatchObject({ status: 409 });
        // the system (no named person) cannot release
        await expect(releaseDevice(t.runtime, systemActor('cron'), q.id)).rejects.toMatchObject({ status: 403 });
        const released = await releaseDevice(t.runtime, actors['s.leader']!, q.id, 'Reimaged');
        expect(released).toMatchObject({ status: 'ended', endedBy: 's.leader' });
        expect(await askDns(dns.port, 'news.example')).toBe('NOERROR');
        expect(await throughProxy(proxy.port, 'http://news.example/')).not.toBe(403);
        const audit = await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', 'in', ['filtering.device_quarantined', 'filtering.device_released']).execute();
        expect(audit.map((a) => a.action).sort()).toEqual(['filtering.device_quarantined', 'filtering.device_released']);
      } finally {
        await dns.close();
        await proxy.close();
        await upstream.close();
      }
    });

    it('IN-06 FI-02 another node sharing the database enforces a quarantine and its release after its next poll of the change counter', async () => {
      const { FilterService } = await import('../../src/filtering/service.js');
      const other = new FilterService(t.runtime);
      await other.ready();
      const onOther = (host: string, ip: string) => {
        const identity = other.identify(ip, null);
        return withExceptions(other, other.snapshot().decide(host, identity.policyIndex, at()), host, identity, ip, at());
      };
      try {
        expect(onOther('news.example', '10.30.9.9').action).toBe('allow');
        const q = await quarantineDevice(t.runtime, actors['d.dsl']!, { address: '10.30.9.9', reason: 'Seen on another node' });
        expect(decideFor('news.example', null, '10.30.9.9').action).toBe('block');
        // Not yet seen by the other node until it polls.
        expect(onOther('news.example', '10.30.9.9').action).toBe('allow');
        await other.refresh();
        expect(onOther('news.example', '10.30.9.9').action).toBe('block');
        await releaseDevice(t.runtime, actors['d.dsl']!, q.id);
        await other.refresh();
        expect(onOther('news.example', '10.30.9.9').action).toBe('allow');
      } finally {
        await other.stop();
      }
    });

    it('IN-06 attacks: a hostile address or MAC is refused at the edge; a pupil cannot quarantine or release', async () => {
      const pupilHttp = await t.app.inject({ method: 'POST', url: '/api/filtering/quarantine', payload: { address: '10.0.0.1', reason: 'x' } });
      expect(pupilHttp.statusCode).toBe(401);
      await expect(quarantineDevice(t.runtime, actors['d.dsl']!, { address: '10.0.0.1; DROP TABLE', reason: 'bad' })).rejects.toBeTruthy();
      await expect(quarantineDevice(t.runtime, actors['d.dsl']!, { mac: 'zz:zz', reason: 'bad input' } as never)).rejects.toBeTruthy();
      const byMac = await quarantineDevice(t.runtime, actors['d.dsl']!, { mac: 'AA-BB-CC-DD-EE-FF', reason: 'lost laptop' });
      expect(byMac.subject).toBe('aa:bb:cc:dd:ee:ff');
      await releaseDevice(t.runtime, actors['d.dsl']!, byMac.id);
    });
  });
}
