import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { startDnsServer, type DnsServerHandle } from '../../src/filtering/dns/server.js';
import { savePolicy, type PolicySettings } from '../../src/filtering/policies.js';
import { filterServiceFor, type FilterService } from '../../src/filtering/service.js';
import { createAccount } from '../../src/identity/service.js';
import { checksDue } from '../../src/reports/checks.js';
import { termlyReportDue } from '../../src/reports/termly.js';
import { dialects } from '../helpers/databases.js';
import { freePort } from '../helpers/ports.js';
import { approveAsSeniorLeader, reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';

/** A UT1-layout folder with the categories the UKSIC checks map to (no self-harm list: UT1 has none). */
function ut1Folder(root: string): string {
  const lists: Record<string, string[]> = {
    agressif: ['hate-site.example', 'racist.example'],
    drogue: ['buy-drugs.example', 'weed-shop.example'],
    gambling: ['casino-royale.example', 'bet-now.example'],
    hacking: ['exploit-kit.example'],
    malware: ['malware-host.example'],
    adult: ['adult-site.example', 'xxx.example'],
    warez: ['free-films.example'],
    vpn: ['hide-me.example'],
    games: ['fun-games.example'],
  };
  mkdirSync(root, { recursive: true });
  let usage = '# test\n';
  for (const [id, domains] of Object.entries(lists)) {
    mkdirSync(path.join(root, id), { recursive: true });
    writeFileSync(path.join(root, id, 'domains'), `${domains.join('\n')}\n`);
    usage += `NAME:\t${id}\nDEFAULT_TYPE: black\nDESC EN: ${id} sites for the test.\nNAME EN: ${id[0]!.toUpperCase()}${id.slice(1)}\n\n`;
  }
  writeFileSync(path.join(root, 'global_usage'), usage);
  return root;
}

for (const dialect of await dialects()) {
  describe(`filtering checks and the termly report on ${dialect}`, () => {
    let t: TestApp;
    let admin: Session;
    let service: FilterService;
    let work: string;
    const sessions = new Map<Role, Session>();
    const api = async (session: Session | null, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
      const response = await t.app.inject({ method, url, headers: session?.headers ?? {}, payload: payload as object, remoteAddress: '127.0.0.1' });
      const json = response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined;
      return { status: response.statusCode, body: json, raw: response.rawPayload, headers: response.headers };
    };
    const as = async (role: Role): Promise<Session> => {
      if (!sessions.has(role)) {
        const username = `${role.replace('_', '')}1`;
        const hash = await t.runtime.hasher.hash(PASSWORD);
        await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `A ${role}`, email: null, role, passwordHash: hash }));
        sessions.set(role, await signIn(t, username, PASSWORD));
      }
      return sessions.get(role)!;
    };
    const guided = { device: 'Year 5 iPad 12', location: 'Library', perspective: 'safeguarding', target: { policy: 'role:pupils' } };

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-checks-'));
      t = await startTestApp(dialect, { config: { listFolder: work } });
      admin = await setUpSchool(t);
      await reauthenticate(t, admin);
      service = filterServiceFor(t.runtime);
      ut1Folder(path.join(work, 'ut1'));
      // Each list is a change request (FI-06) a senior leader approves.
      await approveAsSeniorLeader(t, await t.app.inject({ method: 'POST', url: '/api/filtering/lists', headers: admin.headers, payload: { name: 'UT1', format: 'ut1', location: path.join(work, 'ut1'), kind: 'category', scheduleHours: 24 } }));
      writeFileSync(path.join(work, 'iwf.txt'), 'abuse-images.example\n');
      await approveAsSeniorLeader(t, await t.app.inject({ method: 'POST', url: '/api/filtering/lists', headers: admin.headers, payload: { name: 'IWF list', format: 'domains', location: path.join(work, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 } }));
      await service.ready();
    });
    afterAll(async () => {
      await t.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('GV-03 AU-04 a guided check tries real addresses of each UKSIC category through the live filter for the pupils’ policy, and records who, where, what and the result', async () => {
      const dsl = await as('dsl');
      const run = await api(dsl, 'POST', '/api/checks/guided', guided);
      expect(run.status).toBe(201);
      const check = run.body;
      expect(check).toMatchObject({ kind: 'guided', checkedBy: 'A dsl', device: 'Year 5 iPad 12', location: 'Library', perspective: 'safeguarding', policyId: 'role:pupils' });
      const byCategory = (id: string) => check.results.filter((r: any) => r.category === id);
      // Illegal content, from the IWF list in use: blocked whatever the policy.
      expect(byCategory('illegal')).toEqual([expect.objectContaining({ url: 'http://abuse-images.example/', actual: 'block', passed: true })]);
      // Real names from the lists, decided by the engine for pupils.
      expect(byCategory('gambling').map((r: any) => [r.url, r.actual])).toEqual([['http://casino-royale.example/', 'block'], ['http://bet-now.example/', 'block']]);
      expect(byCategory('pornography')[0]).toMatchObject({ url: 'http://adult-site.example/', actual: 'block', passed: true });
      expect(byCategory('drugs')[0]).toMatchObject({ url: 'http://buy-drugs.example/', actual: 'block' });
      // UT1 has no self-harm list: the check says so and does not pass it.
      expect(byCategory('self-harm')).toEqual([expect.objectContaining({ actual: 'not_covered', passed: false, url: null })]);
      expect(check.outcome).toBe('fail');
      expect(check.failed).toBe(1);
      expect(check.what).toContain('Pupils');
      // Kept in the register and in the audit trail.
      expect((await api(dsl, 'GET', '/api/checks')).body.checks.map((c: any) => c.id)).toContain(check.id);
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'actor', 'target']).where('action', '=', 'filtering.check_recorded').execute();
      expect(events).toEqual([expect.objectContaining({ actor: 'dsl1', target: `filtering_check:${check.id}` })]);
    });

    it('GV-03 a category the policy stops blocking makes the next guided check fail for it, and staff see what their policy allows', async () => {
      const dsl = await as('dsl');
      const policy = (await api(admin, 'GET', '/api/filtering/policies')).body.policies.find((p: any) => p.id === 'role:pupils');
      const settings = Object.fromEntries(Object.entries(policy).filter(([k]) => ['blockedCategories', 'schedules', 'safeSearch', 'youtube', 'downloadsAllowed', 'defaultAction', 'allowLists', 'blockLists'].includes(k))) as unknown as PolicySettings;
      // The policy as changed through the filtering service (how a change reaches the filter is change control's business).
      await savePolicy(t.runtime, systemActor('test'), 'role:pupils', { ...settings, blockedCategories: policy.blockedCategories.filter((c: string) => c !== 'gambling') }, { ip: null, requestId: null });
      await service.refresh();
      const check = (await api(dsl, 'POST', '/api/checks/guided', guided)).body;
      const gambling = check.results.filter((r: any) => r.category === 'gambling');
      expect(gambling.every((r: any) => r.actual === 'allow' && r.passed === false)).toBe(true);
      expect(check.failed).toBe(3);
      // The staff policy blocks neither VPNs nor drugs (the profile's choice): a check for a member of staff shows it.
      await as('staff');
      await service.refresh(true); // (in `serve`, people are reloaded every 30 seconds)
      const staffRun = await api(dsl, 'POST', '/api/checks/guided', { ...guided, perspective: 'it', target: { person: 'staff1' } });
      expect(staffRun.status, JSON.stringify(staffRun.body)).toBe(201);
      const staffCheck = staffRun.body;
      expect(staffCheck.userGroup).toContain('staff1');
      expect(staffCheck.results.find((r: any) => r.category === 'circumvention')).toMatchObject({ actual: 'allow', passed: false });
      // Put the policy back for the other tests.
      await savePolicy(t.runtime, systemActor('test'), 'role:pupils', settings, { ip: null, requestId: null });
      await service.refresh();
    });

    it('AU-04 the resulting actions are recorded after a failed check (audited with the previous text), and the overview stops asking for them', async () => {
      const dsl = await as('dsl');
      const due = async () => (await checksDue(t.runtime)).filter((i) => i.kind === 'filtering_check_no_action');
      expect((await due()).length).toBeGreaterThan(0);
      const checks = (await api(dsl, 'GET', '/api/checks')).body.checks.filter((c: any) => c.outcome === 'fail');
      for (const check of checks) {
        const done = await api(dsl, 'PUT', `/api/checks/${check.id}/actions`, { actions: 'Asked the IT provider to add a self-harm list; gambling blocked again for pupils.' });
        expect(done.status).toBe(200);
        expect(done.body.actions).toContain('self-harm list');
      }
      expect(await due()).toEqual([]);
      const empty = await api(dsl, 'PUT', `/api/checks/${checks[0].id}/actions`, { actions: '   ' });
      expect(empty.status).toBe(400);
      expect((await api(dsl, 'GET', `/api/checks/${checks[0].id}`)).body.actions).toContain('self-harm list');
    });

    it('GV-03 attack: a DNS resolver that has been switched off fails the check, though the engine still blocks (P4 9.19: not deactivated)', async () => {
      const dsl = await as('dsl');
      const port = await freePort();
      let dns: DnsServerHandle | null = await startDnsServer(service, { host: '127.0.0.1', port, upstreams: ['127.0.0.1:9'], now: () => t.clock.now().getTime(), clientNetworks: ['127.0.0.0/8'] });
      (t.runtime.config as { dnsPort?: number }).dnsPort = port;
      (t.runtime.config as { dnsHost?: string }).dnsHost = '127.0.0.1';
      try {
        const running = (await api(dsl, 'POST', '/api/checks/guided', { ...guided, perspective: 'it' })).body;
        const probe = running.results.find((r: any) => r.category === 'dns');
        expect(probe).toMatchObject({ expected: 'block', actual: 'block', passed: true });
        // The same name through dig: what the check saw is what a device sees.
        const host = probe.url as string;
        // (dig runs beside this process: the resolver answers from this test's event loop)
        const { stdout } = await promisify(execFile)('dig', ['@127.0.0.1', '-p', String(port), host.replace(/^http:\/\/|\/$/g, ''), '+tries=1', '+time=3'], { encoding: 'utf8' });
        expect(stdout).toContain('status: NXDOMAIN');
        await dns.close();
        dns = null;
        const stopped = (await api(dsl, 'POST', '/api/checks/guided', { ...guided, perspective: 'it' })).body;
        expect(stopped.results.find((r: any) => r.category === 'dns')).toMatchObject({ actual: 'no_answer', passed: false });
        expect(stopped.results.find((r: any) => r.category === 'illegal')).toMatchObject({ actual: 'block', passed: true });
        expect(stopped.outcome).toBe('fail');
      } finally {
        await dns?.close();
        (t.runtime.config as { dnsPort?: number }).dnsPort = undefined;
      }
    });

    it('AU-04 a check made by hand is recorded with when, who, what and the actions; bad input is refused and nothing is stored', async () => {
      const head = await as('senior_leader');
      const before = (await api(head, 'GET', '/api/checks')).body.checks.length;
      const missing = await api(head, 'POST', '/api/checks', { device: 'Staff laptop 3', location: '', perspective: 'it', userGroup: 'staff', what: 'Tried a VPN', outcome: 'pass' });
      expect(missing.status).toBe(400);
      expect(JSON.stringify(missing.body)).toContain('location');
      const future = await api(head, 'POST', '/api/checks', { device: 'Staff laptop 3', location: 'Staff room', perspective: 'it', userGroup: 'staff', what: 'Tried a VPN', outcome: 'pass', checkedAt: '2030-01-01T10:00:00Z' });
      expect(future.status).toBe(400);
      const forged = await api(head, 'POST', '/api/checks', { device: 'Staff laptop 3', location: 'Staff room', perspective: 'it', userGroup: 'staff', what: 'Tried a VPN', outcome: 'pass', checkedBy: 'someone else' });
      expect(forged.status).toBe(400);
      expect((await api(head, 'GET', '/api/checks')).body.checks.length).toBe(before);
      const ok = await api(head, 'POST', '/api/checks', { device: 'Staff laptop 3', location: 'Staff room', perspective: 'it', userGroup: 'staff', what: 'Tried three VPN apps and a DoH setting in Firefox', outcome: 'fail', actions: 'IT to block the app store VPNs', checkedAt: '2026-09-07T07:30:00Z' });
      expect(ok.status).toBe(201);
      expect(ok.body).toMatchObject({ kind: 'manual', checkedBy: 'A senior_leader', checkedAt: '2026-09-07T07:30:00.000Z', outcome: 'fail', actions: 'IT to block the app store VPNs', results: null });
    });

    it('AU-04 attack: a governor reads the register but cannot record a check or change its actions; a pupil and a member of staff cannot read it', async () => {
      const governor = await as('governor');
      const list = await api(governor, 'GET', '/api/checks');
      expect(list.status).toBe(200);
      const id = list.body.checks[0].id;
      expect((await api(governor, 'POST', '/api/checks/guided', guided)).status).toBe(403);
      expect((await api(governor, 'PUT', `/api/checks/${id}/actions`, { actions: 'nothing to see' })).status).toBe(403);
      for (const role of ['pupil', 'staff'] as const) expect((await api(await as(role), 'GET', '/api/checks')).status).toBe(403);
      expect((await api(null, 'GET', '/api/checks')).status).toBe(401);
      expect((await api(governor, 'GET', `/api/checks/${id}`)).body.actions).not.toBe('nothing to see');
    });

    it('MO-05 the termly report counts blocks by category and group, requests, changes and checks, names no pupil, and an issued copy is kept byte for byte', async () => {
      const head = await as('senior_leader');
      // Activity as the enforcement points write it, in the autumn term.
      const row = (at: string, username: string, host: string, action: string, category: string | null, policy: string) => ({ at, point: 'dns', client_ip: '10.1.2.3', device_id: null, device_name: null, person_id: null, username, host, url: null, search_term: null, action, category, rule: category ? 'category' : 'default', policy });
      await t.runtime.db.kysely
        .insertInto('filter_activity')
        .values([
          row('2026-09-08T09:00:00.000Z', 'pupil.jones', 'casino-royale.example', 'block', 'gambling', 'role:pupils'),
          row('2026-09-08T09:01:00.000Z', 'pupil.jones', 'bet-now.example', 'block', 'gambling', 'role:pupils'),
          row('2026-09-09T10:00:00.000Z', 'pupil.smith', 'hide-me.example', 'block', 'vpn', 'role:pupils'),
          row('2026-09-09T10:05:00.000Z', 'pupil.smith', 'bbc.co.uk', 'allow', null, 'role:pupils'),
          row('2026-05-01T10:05:00.000Z', 'pupil.smith', 'casino-royale.example', 'block', 'gambling', 'role:pupils'),
        ])
        .execute();
      const shown = await api(head, 'GET', '/api/reports/termly?period=2026-09-01');
      expect(shown.status).toBe(200);
      const report = shown.body.report;
      expect(report.period).toEqual({ name: 'Autumn term 2026', from: '2026-09-01', to: '2026-12-31' });
      const section = (heading: string) => report.sections.find((s: any) => s.heading === heading);
      expect(section('What the filter blocked').facts).toEqual([['Requests decided', '4'], ['Blocked', '3 (75.0%)']]);
      expect(section('What the filter blocked').table.rows).toEqual([['Gambling', '2'], ['Vpn', '1']]);
      expect(section('Blocks by group').table.rows).toEqual([['Pupils', '3', '2', '1']]);
      expect(section('Checks of the filtering and monitoring').table.rows).toContainEqual(['2026-09-07', 'A senior_leader', 'staff', 'Staff laptop 3, Staff room', 'fail (1)', 'IT to block the app store VPNs']);
      expect(section('Changes to the filtering').table.rows.some((r: string[]) => r[2]?.includes('policy'))).toBe(true);
      expect(JSON.stringify(report)).not.toMatch(/pupil\.(jones|smith)/);
      // The PDF says the same, and no pupil either.
      const pdf = await api(head, 'GET', '/api/reports/termly/pdf?period=2026-09-01');
      expect(pdf.status).toBe(200);
      expect(pdf.headers['content-type']).toBe('application/pdf');
      const file = path.join(work, 'report.pdf');
      writeFileSync(file, pdf.raw);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      expect(text).toContain('Termly monitoring report: Autumn term 2026');
      expect(text).toMatch(/Gambling\s+2/);
      expect(text).not.toMatch(/pupil\.(jones|smith)/);
      // Issued: only by those who may, kept as issued.
      expect((await api(await as('governor'), 'POST', '/api/reports/termly/issue', { period: '2026-09-01' })).status).toBe(403);
      const issued = await api(head, 'POST', '/api/reports/termly/issue', { period: '2026-09-01' });
      expect(issued.status).toBe(201);
      const copy = await api(await as('governor'), 'GET', `/api/reports/issued/${issued.body.id}/pdf`);
      expect(copy.status).toBe(200);
      const { createHash } = await import('node:crypto');
      expect(createHash('sha256').update(copy.raw).digest('hex')).toBe(issued.body.sha256);
      expect((await api(head, 'GET', '/api/reports/termly?period=2026-09-01')).body.report.issued).toEqual([expect.objectContaining({ id: issued.body.id, issuedBy: 'A senior_leader', sha256: issued.body.sha256 })]);
      const bad = await api(head, 'GET', '/api/reports/termly?period=2019-01-01');
      expect(bad.status).toBe(400);
    });

    it('MO-05 the overview asks for the report of the term just ended until it is issued', async () => {
      const head = await as('senior_leader');
      const titles = async () => (await termlyReportDue(t.runtime)).map((i) => i.title);
      // 7 September: the summer term has ended and its report was never issued.
      expect(await titles()).toEqual(['The monitoring report for Summer term 2026 has not been issued to senior leaders and governors']);
      expect((await api(head, 'POST', '/api/reports/termly/issue', { period: '2026-05-01' })).status).toBe(201);
      expect(await titles()).toEqual([]);
    });
  });
}
