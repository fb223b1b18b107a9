import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipv4ToNumber, ipv6ToBigInt, JsonlActivityWriter, loadStandalone } from '../../src/filtering/standalone.js';
import { ROOT } from '../helpers/cli.js';
import { fullUt1 } from '../helpers/ut1.js';

const UT1 = fullUt1();
const EVENING = Date.parse('2026-09-07T18:00:00Z');
const SCHOOL_HOURS = Date.parse('2026-09-07T09:00:00Z');

describe('standalone filter (policy file, no server)', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gh-standalone-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('FI-02 identifies clients by the most specific address range, IPv4, IPv6 and IPv4-mapped, then by proxy user name', async () => {
    file('block.txt', '# the school’s own\nblocked.example\n');
    const policy = file(
      'filter.yaml',
      `
unknownPolicy: guests
lists:
  - { id: school-block, name: School block list, kind: block, file: block.txt }
  - { id: games, name: Games, kind: category, domains: [games.example] }
policies:
  pupils: { schedules: [{ categories: [games], days: [1,2,3,4,5], from: "08:30", to: "15:30" }] }
  staff: {}
  guests: { blockedCategories: [games], defaultAction: allow }
clients:
  - { address: 10.0.0.0/8, policy: staff }
  - { address: 10.1.0.0/16, policy: pupils, name: Pupil Wi-Fi }
  - { address: 10.1.2.3, policy: staff, name: Head's laptop }
  - { address: "2001:db8:1::/48", policy: pupils }
users:
  J.Smith: staff
`,
    );
    const { point, snapshot, policies } = await loadStandalone({ policyFile: policy });
    expect(policies).toEqual(['pupils', 'staff', 'guests']);
    const who = (ip: string, user?: string) => point.identify(ip, user).policyId;
    expect(who('10.1.2.3')).toBe('staff');
    expect(point.identify('10.1.2.3').deviceName).toBe("Head's laptop");
    expect(who('10.1.2.4')).toBe('pupils');
    expect(who('10.200.0.1')).toBe('staff');
    expect(who('::ffff:10.1.9.9')).toBe('pupils');
    expect(who('2001:db8:1:ffff::1')).toBe('pupils');
    expect(who('2001:db8:2::1')).toBe('guests');
    expect(who('192.0.2.1')).toBe('guests');
    expect(point.identify('192.0.2.1').via).toBe('unknown');
    expect(who('10.1.2.4', 'j.smith')).toBe('staff');
    expect(point.identify('10.1.2.4', 'j.smith')).toMatchObject({ via: 'proxy-auth', username: 'J.Smith' });
    // Lists from a file; a policy naming no block lists uses the school's block lists.
    // (The snapshot's clock only moves forward: school hours first.)
    expect(snapshot.decide('games.example', point.identify('10.1.2.4').policyIndex, SCHOOL_HOURS)).toMatchObject({ action: 'block', rule: 'schedule' });
    expect(snapshot.decide('www.blocked.example', point.identify('10.200.0.1').policyIndex, EVENING)).toMatchObject({ action: 'block', rule: 'school-block' });
    expect(snapshot.decide('games.example', point.identify('10.1.2.4').policyIndex, EVENING).action).toBe('allow');
    expect(ipv4ToNumber('255.255.255.255')).toBe(4294967295);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '1..2.3', '01234.1.1.1', '']) expect(ipv4ToNumber(bad), bad).toBe(-1);
    expect(ipv6ToBigInt('::1')).toBe(1n);
    expect(ipv6ToBigInt('[2001:db8::]')).toBe(0x20010db8n << 96n);
    for (const bad of ['1::2::3', '12345::', 'example.com', '1:2:3:4:5:6:7:8:9']) expect(ipv6ToBigInt(bad), bad).toBeNull();
  });

  it('FI-01 without policies in the file, starts from the shipped profile’s policies over the UT1 lists (unknown devices filtered too)', async () => {
    const warnings: string[] = [];
    const s = await loadStandalone({ ut1: UT1, policyFile: file('only-lists.json', JSON.stringify({ lists: [{ id: 'school-allow', name: 'School allow list', kind: 'allow', domains: ['allowed-game.example'] }] })), warn: (m) => warnings.push(m) });
    expect(s.policies).toEqual(expect.arrayContaining(['pupils', 'staff', 'guests', 'administrators', 'unknown']));
    expect(s.unknownPolicy).toBe('unknown');
    expect(s.domains).toBeGreaterThan(100_000);
    const unknown = s.point.identify('203.0.113.9').policyIndex;
    expect(s.snapshot.decide('www.0-casino.info', unknown, EVENING)).toMatchObject({ action: 'block', category: 'gambling' });
    expect(s.snapshot.decideUrl('020sextoy.com', '/sk/page', unknown, EVENING)).toMatchObject({ action: 'block', category: 'adult' });
    expect(s.snapshot.decide('nordvpn.com', unknown, EVENING)).toMatchObject({ action: 'block' });
    expect(s.snapshot.decide('www.bbc.co.uk', unknown, EVENING).action).toBe('allow');
    for (const w of warnings) expect(w).toMatch(/^no list provides .+; left out of the policies$/);
  });

  it('FI-01 the example policy file in docs/squid/ loads over the UT1 lists', async () => {
    const example = readFileSync(path.join(ROOT, 'docs', 'squid', 'filter.example.yaml'), 'utf8');
    file('school-block.txt', 'blocked.example\n');
    const s = await loadStandalone({ ut1: UT1, policyFile: file('example.yaml', example) });
    expect(s.policies).toEqual(['pupils', 'staff', 'unknown']);
    expect(s.point.identify('10.20.5.17')).toMatchObject({ policyId: 'pupils', deviceName: 'Library kiosk' });
    expect(s.point.identify('10.20.5.18').policyId).toBe('staff');
    expect(s.snapshot.decide('www.0-casino.info', s.point.identify('10.10.1.1').policyIndex, EVENING)).toMatchObject({ action: 'block', category: 'gambling', policy: 'Pupils' });
  });

  it('FI-02 reads the same file as gatehouse dns: policies as a list, clients as address: policy, safeSearch as an object', async () => {
    const s = await loadStandalone({
      policyFile: file(
        'dns-style.yaml',
        [
          'unknownPolicy: pupils',
          'policies:',
          '  - { id: pupils, name: Pupils, blockedCategories: [adult, games], blockLists: [school-block], safeSearch: { search: "on", youtube: strict } }',
          '  - { id: staff, name: Staff, blockedCategories: [adult] }',
          'clients:',
          '  127.0.0.0/24: pupils',
          '  127.0.0.2: staff',
          'lists:',
          '  - { id: school-block, name: School block list, kind: block, domains: [blocked.example] }',
        ].join('\n'),
      ),
    });
    expect(s.policies).toEqual(['pupils', 'staff']);
    expect(s.point.identify('127.0.0.2').policyId).toBe('staff');
    expect(s.point.identify('127.0.0.9').policyId).toBe('pupils');
    const pupils = s.point.identify('127.0.0.9').policyIndex;
    expect(s.snapshot.decide('blocked.example', pupils, EVENING).rule).toBe('school-block');
    expect(s.snapshot.decide('www.youtube.com', pupils, EVENING)).toMatchObject({ action: 'rewrite', target: 'restrict.youtube.com' });
    // SafeSearch is on unless a policy turns it off (YouTube moderate).
    expect(s.snapshot.decide('www.youtube.com', s.point.identify('127.0.0.2').policyIndex, EVENING)).toMatchObject({ action: 'rewrite', target: 'restrictmoderate.youtube.com' });
  });

  it('FI-02 adopt() takes a reloaded file whole: new clients, policies and unknown policy, the activity sink kept (gatehouse dns on SIGHUP)', async () => {
    const first = await loadStandalone({ policyFile: file('reload.yaml', 'unknownPolicy: pupils\npolicies:\n  - { id: pupils }\n  - { id: staff }\nclients:\n  10.0.0.2: staff\n') });
    const seen: string[] = [];
    first.point.onRecord((a) => seen.push(a.host));
    expect(first.point.identify('10.0.0.2').policyId).toBe('staff');
    expect(first.point.identify('2001:db8::1').policyId).toBe('pupils');
    const next = await loadStandalone({
      policyFile: file('reload.yaml', 'unknownPolicy: guests\npolicies:\n  - { id: guests, blockLists: [] }\n  - { id: staff }\nclients:\n  10.0.0.3: staff\n  2001:db8::/32: staff\nlists:\n  - { id: school-block, domains: [blocked.example] }\n'),
    });
    first.point.adopt(next.point);
    expect(first.point.identify('10.0.0.2').policyId).toBe('guests');
    expect(first.point.identify('10.0.0.3').policyId).toBe('staff');
    expect(first.point.identify('2001:db8::1').policyId).toBe('staff');
    const staff = first.point.identify('10.0.0.3').policyIndex;
    expect(first.point.snapshot().decide('blocked.example', staff, EVENING).rule).toBe('school-block');
    expect(first.point.snapshot().decide('blocked.example', first.point.identify('10.0.0.2').policyIndex, EVENING).action).toBe('allow');
    first.point.record({ at: EVENING, host: 'x.example' } as Parameters<typeof first.point.record>[0]);
    expect(seen).toEqual(['x.example']);
  });

  it('says what is wrong with a policy file, in words', async () => {
    const load = (text: string, name = 'bad.yaml') => loadStandalone({ policyFile: file(name, text) });
    await expect(load('policies: {p: {}}\nclients: [{ address: 10.0.0.0/33, policy: p }]')).rejects.toThrow('clients[0]: "10.0.0.0/33" is not an IP address or CIDR range');
    await expect(load('policies: {p: {}}\nclients: [{ address: 10.0.0.1, policy: q }]')).rejects.toThrow('clients[0]: there is no policy "q"');
    await expect(load('policies: {p: {blockLists: [mine]}}')).rejects.toThrow('policies.p: there is no list "mine" in lists');
    await expect(load('policies: {p: {safeSearch: maybe}}')).rejects.toThrow('policies.p.safeSearch must be one of on, off');
    await expect(load('policies: {p: {schedules: [{categories: [], days: [8], from: "08:00", to: "09:00"}]}}')).rejects.toThrow('days must list days 1 (Monday) to 7 (Sunday)');
    await expect(load('policies: {p: {}}\ncolour: blue')).rejects.toThrow('unknown setting "colour"');
    await expect(load('policies: {p: {}}\nunknownPolicy: nobody')).rejects.toThrow('the policy for unknown clients, "nobody", is not one of p');
    await expect(load('policies: [')).rejects.toThrow(/bad\.yaml is not valid YAML/);
    await expect(load('{"policies": ', 'bad.json')).rejects.toThrow(/bad\.json is not valid JSON/);
    await expect(load('policies: {p: {}}\nlists: [{ id: l, kind: block, file: nowhere.txt }]')).rejects.toThrow(/lists\[0\]: cannot read .*nowhere\.txt: ENOENT/);
    await expect(loadStandalone({ policyFile: path.join(dir, 'absent.yaml') })).rejects.toThrow(/cannot read .*absent\.yaml: ENOENT/);
    await expect(loadStandalone({ ut1: path.join(dir, 'no-such-folder'), policyFile: file('ok.yaml', 'policies: {p: {}}') })).rejects.toThrow('does not exist');
  });

  it('MO-01 writes recorded decisions as JSON lines in batches', async () => {
    const out = path.join(dir, 'activity.jsonl');
    const writer = new JsonlActivityWriter(out);
    const record = { at: EVENING, point: 'squid' as const, clientIp: '10.0.0.1', deviceId: null, deviceName: null, personId: null, username: null, host: 'a.example', url: null, searchTerm: null, action: 'allow' as const, category: null, rule: 'default', policy: 'P' };
    writer.add(record);
    writer.add({ ...record, host: 'b.example' });
    writer.close();
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { host: string; at: string });
    expect(lines.map((l) => l.host)).toEqual(['a.example', 'b.example']);
    expect(lines[0]!.at).toBe('2026-09-07T18:00:00.000Z');
  });
});
