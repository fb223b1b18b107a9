import { describe, expect, it } from 'vitest';
import { isBlockCategory, normaliseHost, parseGlobalUsage, parseList, readableCategoryName, readUt1Folder } from '../../src/filtering/engine/lists.js';
import { compileSnapshot, type PolicyInput } from '../../src/filtering/engine/snapshot.js';
import { ut1Categories } from '../../src/filtering/engine/ut1.js';
import { UT1_SAMPLE, fullUt1 } from '../helpers/ut1.js';
// Monday 7 September 2026, 10:00 in London (BST) and 19:00.
const SCHOOL_HOURS = Date.parse('2026-09-07T09:00:00Z');
const EVENING = Date.parse('2026-09-07T18:00:00Z');

const policy = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  id: 'pupils',
  name: 'Pupils',
  blockedCategories: ['adult'],
  schedules: [{ categories: ['games'], days: [1, 2, 3, 4, 5], from: '08:30', to: '15:30', label: 'school hours' }],
  allowLists: ['school-allow'],
  blockLists: ['school-block'],
  safeSearch: { search: 'on', youtube: 'strict' },
  defaultAction: 'allow',
  downloadsAllowed: false,
  ...over,
});

function snapshot(policies: PolicyInput[] = [policy()]) {
  return compileSnapshot({
    timeZone: 'Europe/London',
    policies,
    categories: [
      { id: 'adult', name: 'Adult', description: '', kind: 'category', domains: ['adult.example', 'both.example'], urls: ['pages.example/adult/'] },
      { id: 'games', name: 'Games', description: '', kind: 'category', domains: ['games.example', 'xn--mnchen-3ya.de', '192.0.2.7'] },
      { id: 'iwf', name: 'IWF list', description: '', kind: 'illegal', domains: ['illegal.example'] },
      { id: 'school-allow', name: 'School allow list', description: '', kind: 'allow', domains: ['both.example', 'illegal.example', 'ok.games.example'] },
      { id: 'school-block', name: 'School block list', description: '', kind: 'block', domains: ['ok.games.example', 'blocked.example'] },
      { id: 'proxies', name: 'Proxies', description: '', kind: 'category', domains: [], expressions: ['^[^/]*/proxy\\?url='] },
    ],
  });
}

describe('filter decision engine', () => {
  it('FI-01 matches a listed domain and all its subdomains, whatever the case, trailing dot or IDN form', () => {
    const s = snapshot([policy({ blockedCategories: ['adult', 'games'] })]);
    const p = s.policy('pupils');
    for (const host of ['adult.example', 'www.adult.example', 'A.B.Adult.Example.', 'ADULT.EXAMPLE']) expect(s.decide(host, p, EVENING).action, host).toBe('block');
    for (const host of ['notadult.example', 'adult.example.org', 'example', '']) expect(s.decide(host, p, EVENING).action, host).toBe('allow');
    // München in Unicode and punycode, as a DNS query or a browser sends it.
    expect(s.decide('münchen.de', p, EVENING).category).toBe('games');
    expect(s.decide('www.xn--mnchen-3ya.de', p, EVENING).category).toBe('games');
    // An IP literal matches whole, never as a "parent domain".
    expect(s.decide('192.0.2.7', p, EVENING).category).toBe('games');
    expect(s.decide('10.192.0.2.7', p, EVENING).action).toBe('allow');
  });

  it('FI-03 precedence: illegal > school block > school allow > category > default, with readable reasons', () => {
    const s = snapshot();
    const p = s.policy('pupils');
    // illegal.example is on the school's allow list too, yet blocked: illegal content is never unblockable.
    const illegal = s.decide('www.illegal.example', p, EVENING);
    expect(illegal).toMatchObject({ action: 'block', rule: 'illegal', unblockable: false });
    expect(illegal.reason).toContain('cannot be unblocked');
    expect(s.decide('both.example', p, EVENING)).toMatchObject({ action: 'allow', rule: 'school-allow' });
    expect(s.decide('ok.games.example', p, SCHOOL_HOURS)).toMatchObject({ action: 'block', rule: 'school-block' });
    expect(s.decide('blocked.example', p, EVENING)).toMatchObject({ action: 'block', rule: 'school-block', reason: 'Blocked: on the school’s block list “School block list”' });
    expect(s.decide('adult.example', p, EVENING)).toMatchObject({ action: 'block', rule: 'category', reason: 'Blocked: Adult for Pupils' });
    expect(s.decide('elsewhere.example', p, EVENING)).toMatchObject({ action: 'allow', rule: 'default' });
    const closed = snapshot([policy({ defaultAction: 'block' })]);
    expect(closed.decide('elsewhere.example', 0, EVENING)).toMatchObject({ action: 'block', rule: 'default' });
  });

  it('FI-02 a time schedule blocks games for pupils in school hours only (school local time)', () => {
    const s = snapshot();
    const p = s.policy('pupils');
    expect(s.decide('games.example', p, SCHOOL_HOURS)).toMatchObject({ action: 'block', rule: 'schedule' });
    expect(s.decide('games.example', p, SCHOOL_HOURS).reason).toBe('Blocked: Games for Pupils (school hours)');
    expect(s.decide('games.example', p, EVENING).action).toBe('allow');
    // Saturday morning.
    expect(s.decide('games.example', p, Date.parse('2026-09-12T09:00:00Z')).action).toBe('allow');
  });

  it('FI-09 enforces SafeSearch and YouTube Restricted Mode by answering with the engines’ own names', () => {
    const s = snapshot([policy(), policy({ id: 'staff', name: 'Staff', safeSearch: { search: 'off', youtube: 'moderate' } })]);
    const pupils = s.policy('pupils');
    const staff = s.policy('staff');
    expect(s.decide('www.google.co.uk', pupils, EVENING)).toMatchObject({ action: 'rewrite', target: 'forcesafesearch.google.com' });
    expect(s.decide('WWW.BING.COM.', pupils, EVENING)).toMatchObject({ action: 'rewrite', target: 'strict.bing.com' });
    expect(s.decide('duckduckgo.com', pupils, EVENING)).toMatchObject({ action: 'rewrite', target: 'safe.duckduckgo.com' });
    expect(s.decide('www.youtube.com', pupils, EVENING)).toMatchObject({ action: 'rewrite', target: 'restrict.youtube.com' });
    expect(s.decide('www.youtube.com', staff, EVENING)).toMatchObject({ action: 'rewrite', target: 'restrictmoderate.youtube.com' });
    expect(s.decide('www.google.co.uk', staff, EVENING).action).toBe('allow');
    expect(s.decide('mail.google.com', pupils, EVENING).action).toBe('allow');
  });

  it('FI-10 answers the DoH canary and iCloud Private Relay names so devices fall back to the school resolver, for everyone', () => {
    const s = snapshot([policy({ allowLists: [], blockLists: [], blockedCategories: [] })]);
    for (const host of ['use-application-dns.net', 'mask.icloud.com', 'mask-h2.icloud.com']) {
      expect(s.decide(host, 0, EVENING)).toMatchObject({ action: 'block', rule: 'fallback', unblockable: false });
    }
    expect(s.decide('icloud.com', 0, EVENING).action).toBe('allow');
  });

  it('FI-01 URL prefix lists and linear-time patterns decide web requests whose host alone is allowed', () => {
    const s = snapshot([policy({ blockedCategories: ['adult', 'proxies'] })]);
    expect(s.decideUrl('pages.example', '/adult/page1', 0, EVENING)).toMatchObject({ action: 'block', category: 'adult' });
    expect(s.decideUrl('pages.example', '/news/', 0, EVENING).action).toBe('allow');
    expect(s.decideUrl('relay.example', '/proxy?url=http://x', 0, EVENING)).toMatchObject({ action: 'block', category: 'proxies' });
    // A pathological pattern input stays linear-time (RE2): no catastrophic backtracking.
    const slow = compileSnapshot({ timeZone: 'Europe/London', policies: [policy({ blockedCategories: ['p'], allowLists: [], blockLists: [], schedules: [] })], categories: [{ id: 'p', name: 'P', description: '', kind: 'category', domains: [], expressions: ['(a+)+$'] }] });
    const started = performance.now();
    slow.decideUrl('x.example', `/${'a'.repeat(5000)}!`, 0, EVENING);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('FI-01 a web request reads the host as a name lookup does: IDN as punycode, any case, a trailing dot, IP literals whole', () => {
    const s = compileSnapshot({
      timeZone: 'Europe/London',
      policies: [policy({ blockedCategories: ['adult', 'proxies'], allowLists: [], schedules: [] })],
      categories: [
        // bücher.example and müller.example as lists hold them (punycode).
        { id: 'school-block', name: 'School block list', description: '', kind: 'block', domains: ['xn--bcher-kva.example'], urls: ['xn--mller-kva.example/adult/', '2.0.7/admin/', '192.0.2.9/admin/'] },
        { id: 'adult', name: 'Adult', description: '', kind: 'category', domains: [], urls: ['xn--bcher-kva.org/adult/', 'pages.example/adult/'] },
        { id: 'proxies', name: 'Proxies', description: '', kind: 'category', domains: [], expressions: ['^shop\\.example/cart', '^xn--mller-kva\\.org/relay'] },
      ],
    });
    const p = s.policy('pupils');
    // On a domain list: the same verdict by host and by URL.
    for (const host of ['bücher.example', 'BÜCHER.Example.', 'www.bücher.example', 'xn--bcher-kva.example']) {
      expect(s.decide(host, p, EVENING), host).toMatchObject({ action: 'block', rule: 'school-block' });
      expect(s.decideUrl(host, '/', p, EVENING), host).toBe(s.decide(host, p, EVENING));
    }
    // On a URL list, under the punycode name: found whatever form the host arrives in.
    for (const host of ['müller.example', 'MÜLLER.Example.', 'www.müller.example', 'xn--mller-kva.example']) {
      expect(s.decideUrl(host, '/adult/page', p, EVENING), host).toMatchObject({ action: 'block', rule: 'school-block' });
      expect(s.decideUrl(host, '/news/', p, EVENING).action, host).toBe('allow');
    }
    for (const host of ['bücher.org', 'Bücher.ORG.', 'PAGES.Example.']) expect(s.decideUrl(host, '/Adult/x', p, EVENING), host).toMatchObject({ action: 'block', category: 'adult' });
    // Patterns see the same name: no trailing dot, lower case, punycode.
    expect(s.decideUrl('SHOP.example.', '/cart', p, EVENING)).toMatchObject({ action: 'block', category: 'proxies' });
    expect(s.decideUrl('müller.org', '/relay?to=x', p, EVENING)).toMatchObject({ action: 'block', category: 'proxies' });
    // An IP address matches whole: "2.0.7" is not a parent domain of 192.2.0.7.
    expect(s.decideUrl('192.0.2.9', '/admin/users', p, EVENING)).toMatchObject({ action: 'block', rule: 'school-block' });
    expect(s.decideUrl('192.2.0.7', '/admin/users', p, EVENING).action).toBe('allow');
  });

  it('FI-01 explains a decision: every list the host or a parent is on and what it meant for the policy', () => {
    const s = snapshot();
    const e = s.explain('WWW.Both.Example.', s.policy('pupils'), EVENING);
    expect(e.host).toBe('www.both.example');
    expect(e.verdict.rule).toBe('school-allow');
    expect(e.matched).toBe('both.example');
    expect(e.matches.map((m) => [m.category, m.effect])).toEqual([
      ['adult', 'blocked for this policy'],
      ['school-allow', 'allowed (school list)'],
    ]);
  });

  it('FI-05 refuses a policy naming an unknown category, and an invalid pattern', () => {
    expect(() => snapshot([policy({ blockedCategories: ['nope'] })])).toThrow(/blocked category "nope" is not a known category/);
    expect(() => compileSnapshot({ timeZone: 'Europe/London', policies: [], categories: [{ id: 'p', name: 'P', description: '', kind: 'category', domains: [], expressions: ['(unclosed'] }] })).toThrow(/not valid RE2/);
  });
});

describe('list formats', () => {
  it('FI-04 reads plain lists, hosts files and ||domain^ lines, reporting unusable lines with their numbers', () => {
    const plain = parseList('# comment\nexample.com\n\nWWW.Example.ORG.\nbad domain\n*.wild.example\nxn--mnchen-3ya.de\nmünchen.de\n', 'domains');
    expect(plain.domains).toEqual(['example.com', 'www.example.org', 'wild.example', 'xn--mnchen-3ya.de', 'xn--mnchen-3ya.de']);
    // Line numbers only: a list's text is never quoted back (issue 10, finding 1).
    expect(plain.rejected).toEqual([5]);
    expect(plain.lines).toBe(6);
    const hosts = parseList('127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example # two\n::1 ip6-localhost\n0.0.0.0\n', 'hosts');
    expect(hosts.domains).toEqual(['ads.example', 'tracker.example']);
    expect(hosts.rejectedCount).toBe(1);
    const adblock = parseList('! title\n||ads.example^\n||cdn.example^$important\n@@||allowed.example^\n##.banner\n/banner/*\n||path.example/x^\n', 'adblock');
    expect(adblock.domains).toEqual(['ads.example', 'cdn.example']);
    expect(adblock.rejected).toEqual([6, 7]);
    expect(normaliseHost('[2001:DB8::1]')).toBe('2001:db8::1');
    expect(normaliseHost('a..b')).toBeNull();
    expect(normaliseHost('x'.repeat(64) + '.com')).toBeNull();
  });

  it('FI-04 reads the UT1 archive layout with category names and descriptions from global_usage', () => {
    const usage = parseGlobalUsage('#c\nNAME:\tgames\nDEFAULT_TYPE: black\nDESC EN: Game sites.\nNAME EN: Games\n\nNAME: liste_blanche\nDEFAULT_TYPE: white\n');
    expect(usage.get('games')).toEqual({ name: 'Games', description: 'Game sites.', defaultType: 'black' });
    const folder = readUt1Folder(UT1_SAMPLE);
    const games = folder.find((c) => c.id === 'games')!;
    expect(games.name).toMatch(/game/i);
    expect(games.description.length).toBeGreaterThan(5);
    expect(games.usage).toBe('black');
    const { categories } = ut1Categories(fullUt1());
    const s = compileSnapshot({ timeZone: 'Europe/London', categories, policies: [policy({ blockedCategories: ['games', 'gambling'], allowLists: [], blockLists: [], schedules: [] })] });
    expect(s.stats.domains).toBeGreaterThan(300_000);
    expect(s.decide('www.007arcadegames.com', 0, EVENING)).toMatchObject({ action: 'block', category: 'games' });
    expect(s.decide('01-casino.com', 0, EVENING)).toMatchObject({ action: 'block', category: 'gambling' });
  });

  it('FI-04 UT1’s whitelists and exception lists are not categories to block; categories global_usage names only by id get readable names', () => {
    const folder = readUt1Folder(fullUt1());
    const byId = new Map(folder.map((c) => [c.id, c]));
    // UT1 marks these as lists of sites to allow (usage "white"), or as another list's exceptions.
    expect(byId.get('liste_blanche')).toMatchObject({ usage: 'white', exceptionsOf: null });
    expect(byId.get('child')).toMatchObject({ usage: 'white' });
    expect(byId.get('exceptions_liste_bu')).toMatchObject({ exceptionsOf: 'liste_bu' });
    // Lists UT1 says serve either way stay categories (a school may well block AI or chat).
    expect(byId.get('ai')).toMatchObject({ usage: 'both' });
    expect(byId.get('games')).toMatchObject({ usage: 'black' });
    const offered = new Set(folder.filter(isBlockCategory).map((c) => c.id));
    for (const id of ['liste_blanche', 'liste_bu', 'exceptions_liste_bu', 'child', 'educational_games', 'sexual_education']) expect(offered.has(id), id).toBe(false);
    for (const id of ['ai', 'chat', 'webmail', 'games', 'adult', 'social_networks', 'vpn']) expect(offered.has(id), id).toBe(true);
    const { categories } = ut1Categories(fullUt1());
    expect(categories.map((c) => c.id).sort()).toEqual([...offered].sort());

    // Names: global_usage's where it has one; otherwise the id made readable, never the bare id.
    expect(byId.get('gambling')!.name).toBe('Gambling/Casino games');
    expect(byId.get('social_networks')!.name).toBe('Social networks');
    expect(byId.get('ai')!.name).toBe('AI');
    expect(byId.get('vpn')!.name).toBe('VPN');
    expect(byId.get('dynamic-dns')!.name).toBe('Dynamic DNS');
    expect(byId.get('associations_religieuses')!.name).toBe('Religious association');
    for (const c of folder) expect(c.name, c.id).not.toMatch(/^[a-z0-9]+([_-][a-z0-9]+)*$/);
    expect(readableCategoryName('new_category', undefined)).toBe('New category');
    expect(readableCategoryName('tv', '')).toBe('TV');
    expect(readableCategoryName('press', 'Press & news')).toBe('Press & news');
  });
});
