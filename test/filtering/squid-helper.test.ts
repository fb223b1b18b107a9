import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSnapshot, type PolicyInput } from '../../src/filtering/engine/snapshot.js';
import { StaticFilterPoint } from '../../src/filtering/point.js';
import { parseRequest, serveSquidHelper, splitAuthority, squidDecode, SquidHelper } from '../../src/filtering/squid/helper.js';
import { childEnv, ROOT } from '../helpers/cli.js';

// Monday 7 September 2026, 10:00 in London (school hours) and 19:00.
const SCHOOL_HOURS = Date.parse('2026-09-07T09:00:00Z');
const EVENING = Date.parse('2026-09-07T18:00:00Z');
/** The built module, run directly (npm test builds first). */
const CLI = path.join(ROOT, 'dist', 'filtering', 'squid', 'cli.js');
const CLI_SOURCE = path.join(ROOT, 'src', 'filtering', 'squid', 'cli.ts');

const policy = (over: Partial<PolicyInput>): PolicyInput => ({
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

function point(now = EVENING) {
  const snapshot = compileSnapshot({
    timeZone: 'Europe/London',
    policies: [policy({}), policy({ id: 'staff', name: 'Staff', blockedCategories: [], schedules: [] }), policy({ id: 'guests', name: 'Guests', blockedCategories: ['adult', 'games'], schedules: [] })],
    categories: [
      { id: 'adult', name: 'Adult', description: '', kind: 'category', domains: ['adult.example'], urls: ['pages.example/adult/'] },
      { id: 'games', name: 'Games', description: '', kind: 'category', domains: ['games.example'] },
      { id: 'iwf', name: 'IWF list', description: '', kind: 'illegal', domains: ['illegal.example'] },
      { id: 'school-allow', name: 'School allow list', description: '', kind: 'allow', domains: ['illegal.example', 'adult-but-ok.adult.example'] },
      { id: 'school-block', name: 'School block list', description: '', kind: 'block', domains: ['blocked.example'] },
    ],
  });
  const p = new StaticFilterPoint(snapshot, {
    unknownPolicy: 'guests',
    clients: { '10.1.0.5': { policyId: 'pupils', deviceName: 'Library PC 5' }, '10.2.0.9': { policyId: 'staff', username: 'mrs.jones' } },
    users: { 'a.teacher': 'staff' },
  });
  return { point: p, helper: new SquidHelper(p, { now: () => now }) };
}

/** Fields of an answer line: channel, result, and key=value pairs %-decoded. */
function answerOf(line: string) {
  const tokens = line.split(' ');
  const channel = /^\d+$/.test(tokens[0]!) ? tokens.shift()! : null;
  const result = tokens.shift()!;
  const kv: Record<string, string> = {};
  for (const t of tokens) {
    const eq = t.indexOf('=');
    kv[t.slice(0, eq)] = squidDecode(t.slice(eq + 1));
  }
  return { channel, result, ...kv } as { channel: string | null; result: string; message?: string; tag?: string; log?: string };
}

/** Drives the helper over a stream pair, as Squid does over its pipe, in the chunks given. */
async function overPipe(helper: SquidHelper, chunks: string[]): Promise<string[]> {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d) => (text += d));
  const done = serveSquidHelper(helper, input, output, { maxLine: 4096 });
  for (const c of chunks) {
    input.write(c);
    await new Promise((r) => setImmediate(r));
  }
  input.end();
  await done;
  return text.split('\n').slice(0, -1);
}

describe('Squid external ACL helper protocol', () => {
  it('FI-01 echoes each concurrency channel ID and answers every line in order, even when lines arrive split across reads', async () => {
    const { helper } = point();
    const lines = Array.from({ length: 60 }, (_, i) => `${i % 50} 10.1.0.5 http://${i % 3 === 0 ? 'adult.example' : 'news.example'}/p${i} - GET -`);
    const text = `${lines.join('\n')}\n`;
    // Cut the stream at awkward places: mid-line, mid-channel-ID, right after a newline.
    const chunks = [text.slice(0, 7), text.slice(7, 200), text.slice(200, 201), text.slice(201, 1500), text.slice(1500)];
    const answers = await overPipe(helper, chunks);
    expect(answers).toHaveLength(60);
    answers.forEach((a, i) => {
      const parsed = answerOf(a);
      expect(parsed.channel, a).toBe(String(i % 50));
      expect(parsed.result, a).toBe(i % 3 === 0 ? 'ERR' : 'OK');
    });
    // Without concurrency there is no channel ID, and none is invented.
    expect(helper.answer('10.1.0.5 http://adult.example/ - GET')).toMatch(/^ERR /);
    expect(helper.answer('10.1.0.5 http://news.example/ - GET')).toMatch(/^OK /);
  });

  it('FI-01 blocks with ERR and a %-encoded message (the reason) and tag (the category); allows with OK', () => {
    const { helper } = point();
    const blocked = helper.answer('7 10.1.0.5 http://www.adult.example/page - GET -');
    // One token per value: no raw spaces or quotes inside a value, ASCII only (Squid shows %o byte by byte).
    expect(blocked).toMatch(/^7 ERR message=[^ ]+ tag=[^ ]+ log=[^ ]+$/);
    expect(blocked).not.toMatch(/[^\x20-\x7e]/);
    expect(answerOf(blocked)).toMatchObject({ channel: '7', result: 'ERR', message: 'Blocked: Adult for Pupils', tag: 'adult', log: 'action=block,category=adult,rule=category,policy=pupils' });
    expect(blocked).toContain('message=Blocked%3A%20Adult%20for%20Pupils');
    // The school's block list (typographic quotes in the reason made plain).
    expect(answerOf(helper.answer('8 10.1.0.5 http://blocked.example/ - GET -'))).toMatchObject({ result: 'ERR', message: 'Blocked: on the school\'s block list "School block list"', tag: 'school-block' });
    // Illegal content: blocked although the school's allow list names it, and says it cannot be unblocked.
    const illegal = answerOf(helper.answer('9 10.2.0.9 http://illegal.example/ - GET -'));
    expect(illegal).toMatchObject({ result: 'ERR', tag: 'iwf' });
    expect(illegal.message).toContain('cannot be unblocked');
    // A URL prefix list decides on the path; the rest of the host is allowed.
    expect(answerOf(helper.answer('10 10.1.0.5 http://pages.example/adult/x.html - GET -'))).toMatchObject({ result: 'ERR', tag: 'adult' });
    expect(answerOf(helper.answer('11 10.1.0.5 http://pages.example/news/ - GET -'))).toMatchObject({ result: 'OK', log: 'action=allow,category=-,rule=default,policy=pupils' });
    // SafeSearch hosts pass (the resolver answers with the engines' SafeSearch names).
    expect(answerOf(helper.answer('12 10.1.0.5 http://www.google.co.uk/search?q=x - GET -'))).toMatchObject({ result: 'OK', log: 'action=rewrite,category=-,rule=safe-search,policy=pupils' });
  });

  it('FI-01 decodes Squid\'s %-encoding of every field: escaped IPv6 brackets, user names with spaces, IDN hosts', () => {
    const { helper, point: p } = point();
    expect(answerOf(helper.answer('0 10.1.0.5 http://%5B2001:db8::1%5D:8080/x - GET -')).result).toBe('OK');
    expect(p.recorded.at(-1)).toMatchObject({ host: '2001:db8::1', url: 'http://[2001:db8::1]:8080/x' });
    helper.answer('1 10.9.9.9 http://news.example/a%20b%22c Jo%20Bloggs GET -');
    expect(p.recorded.at(-1)).toMatchObject({ username: 'Jo Bloggs', url: 'http://news.example/a%20b%22c' });
    // A host Squid received in UTF-8 and %-encoded: matched as its punycode form.
    helper.answer('2 10.9.9.9 http://m%C3%BCnchen.games.example/ - GET -');
    expect(p.recorded.at(-1)).toMatchObject({ host: 'xn--mnchen-3ya.games.example', action: 'block', category: 'games' });
    expect(parseRequest('3 10.0.0.1 host.example:443 - CONNECT -').request).toMatchObject({ channel: '3', url: 'host.example:443', method: 'CONNECT', user: null });
    expect(splitAuthority('[2001:db8::1]:853')).toEqual({ host: '2001:db8::1', port: 853 });
    expect(splitAuthority('example.com:99999')).toBeNull();
    expect(splitAuthority('example.com')).toBeNull();
  });

  it('FI-10 refuses CONNECT to port 853 (DNS over TLS) whatever the host, and decides other CONNECTs on the host', () => {
    const { helper, point: p } = point();
    const dot = answerOf(helper.answer('4 10.2.0.9 dns.google:853 - CONNECT -'));
    expect(dot).toMatchObject({ channel: '4', result: 'ERR', tag: 'dns-over-tls' });
    expect(dot.message).toMatch(/DNS over TLS \(port 853\) is not allowed/);
    expect(p.recorded.at(-1)).toMatchObject({ host: 'dns.google', url: null, action: 'block', rule: 'dns-over-tls', point: 'squid' });
    expect(answerOf(helper.answer('5 10.2.0.9 %5B2606:4700::1111%5D:853 - CONNECT -')).tag).toBe('dns-over-tls');
    expect(answerOf(helper.answer('6 10.2.0.9 dns.google:443 - CONNECT -')).result).toBe('OK');
    expect(answerOf(helper.answer('7 10.1.0.5 adult.example:443 - CONNECT -'))).toMatchObject({ result: 'ERR', tag: 'adult' });
    expect(answerOf(helper.answer('8 10.1.0.5 www.adult.example:443 - CONNECT -')).message).toBe('Blocked: Adult for Pupils');
  });

  it('FI-01 answers BH to lines it cannot read, with the reason, and keeps answering the lines after them', async () => {
    const { helper } = point();
    const garbage = [
      '',
      'rubbish',
      '3 not-an-address http://x.example/ - GET -',
      '4 10.0.0.1',
      '5 10.0.0.1 - - GET -',
      '6 10.0.0.1 http:// - GET -',
      '7 10.0.0.1 no-port-here:http - CONNECT -',
      '8 10.0.0.1 %E0%A4%A http://x/ - GET',
      '9 \u0000\u0001\u00ff binary',
      `10 10.0.0.1 http://x.example/${'a'.repeat(5000)} - GET -`,
      '11 10.1.0.5 http://adult.example/ - GET -',
    ];
    const answers = await overPipe(helper, [garbage.slice(0, 5).join('\n'), `\n${garbage.slice(5).join('\r\n')}\n`]);
    expect(answers).toHaveLength(garbage.length);
    const parsed = answers.map(answerOf);
    expect(parsed.slice(0, 10).map((a) => a.result)).toEqual(Array(10).fill('BH'));
    expect(parsed.slice(2, 10).map((a) => a.channel)).toEqual(['3', '4', '5', '6', '7', '8', '9', '10']);
    expect(parsed[0]!.channel).toBeNull();
    expect(parsed[2]!.message).toMatch(/"not-an-address" is not a client address; expected "\[channel-ID\] %SRC %>ru %un %METHOD"/);
    expect(parsed[4]!.message).toMatch(/no URL/);
    expect(parsed[9]!.message).toMatch(/longer than 4096/);
    expect(parsed[10]).toMatchObject({ channel: '11', result: 'ERR', tag: 'adult' });
    expect(helper.stats).toMatchObject({ requests: 10, broken: 10, blocked: 1 });
  });

  it('FI-02 applies the policy of the client: its address, its proxy user name, or the unknown-device policy', () => {
    // In school hours games are blocked for pupils by schedule; guests always; staff never.
    const { helper } = point(SCHOOL_HOURS);
    const games = (client: string, user = '-') => answerOf(helper.answer(`1 ${client} http://games.example/ ${user} GET -`));
    expect(games('10.1.0.5')).toMatchObject({ result: 'ERR', message: 'Blocked: Games for Pupils (school hours)', tag: 'games' });
    expect(games('10.2.0.9')).toMatchObject({ result: 'OK', log: 'action=allow,category=-,rule=default,policy=staff' });
    expect(games('192.0.2.44')).toMatchObject({ result: 'ERR', message: 'Blocked: Games for Guests' });
    // Proxy authentication names the person: their policy wins over the address's.
    expect(games('10.1.0.5', 'a.teacher')).toMatchObject({ result: 'OK', log: 'action=allow,category=-,rule=default,policy=staff' });
    // After school, pupils may play.
    const evening = point(EVENING).helper;
    expect(evening.answer('1 10.1.0.5 http://games.example/ - GET -')).toMatch(/^1 OK /);
  });

  it('MO-01 records every decision, allowed or blocked, with device, person, address, host, URL and search term', () => {
    const { helper, point: p } = point();
    helper.answer('0 10.1.0.5 http://www.bing.com/search?q=how%20to%20make%20slime&form=x - GET -');
    helper.answer('1 10.2.0.9 http://adult.example/x - GET -');
    helper.answer('2 192.0.2.1 http://news.example/ a.teacher GET -');
    helper.answer('3 192.0.2.1 rubbish');
    expect(p.recorded).toHaveLength(3);
    expect(p.recorded[0]).toEqual({
      at: EVENING,
      point: 'squid',
      clientIp: '10.1.0.5',
      deviceId: null,
      deviceName: 'Library PC 5',
      personId: null,
      username: null,
      host: 'www.bing.com',
      url: 'http://www.bing.com/search?q=how%20to%20make%20slime&form=x',
      searchTerm: 'how to make slime',
      action: 'rewrite',
      category: null,
      rule: 'safe-search',
      policy: 'Pupils',
    });
    expect(p.recorded[1]).toMatchObject({ clientIp: '10.2.0.9', username: 'mrs.jones', action: 'allow', policy: 'Staff' });
    expect(p.recorded[2]).toMatchObject({ clientIp: '192.0.2.1', username: 'a.teacher', action: 'allow', policy: 'Staff' });
  });
});

// ----- the real process ------------------------------------------------------------------------

const POLICY = `
timeZone: Europe/London
unknownPolicy: guests
lists:
  - { id: school-block, name: School block list, kind: block, domains: [blocked.example] }
  - { id: school-allow, name: School allow list, kind: allow, domains: [homework.games.test] }
  - { id: games, name: Games, kind: category, domains: [games.test] }
policies:
  pupils: { blockedCategories: [games, not-provided], safeSearch: "on", youtube: strict }
  staff: { name: Staff }
  guests: { blockedCategories: [games] }
clients:
  - { address: 127.0.0.1, policy: pupils, name: Pupil laptop }
  - { address: 127.0.0.0/8, policy: staff }
  - { address: "2001:db8::/32", policy: staff }
users:
  jsmith: staff
`;

function runHelper(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv({}), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Every package the module imports, statically or dynamically, through its relative imports. */
function packagesImportedBy(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec.startsWith('node:') ? 'node:' : spec.split('/')[0]!);
    }
  };
  visit(entry);
  return packages;
}

describe('gatehouse squid-helper (the process)', () => {
  it('FI-01 starts fast: nothing in its import graph loads the database, the HTTP server, commander or zod', () => {
    const packages = packagesImportedBy(CLI_SOURCE);
    expect([...packages].sort()).toEqual(['node:', 're2js', 'yaml']);
    // The launcher sends squid-helper straight to that module, before the full CLI is loaded.
    const launcher = readFileSync(path.join(ROOT, 'bin', 'gatehouse.js'), 'utf8');
    expect(launcher).toContain("'squid-helper': ['../dist/filtering/squid/cli.js', 'squidHelperMain']");
  });

  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gh-squid-'));
    writeFileSync(path.join(dir, 'filter.yaml'), POLICY);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('FI-01 answers over its pipe from a policy file: answers only on standard output, messages on standard error, decisions to --activity', async () => {
    const activity = path.join(dir, 'activity.jsonl');
    const { code, stdout, stderr } = await runHelper(['--policy', path.join(dir, 'filter.yaml'), '--activity', activity], [
      '0 127.0.0.1 http://games.test/ - GET -',
      '1 127.0.0.2 http://games.test/ - GET -',
      '2 192.0.2.1 http://games.test/ - GET -',
      '3 192.0.2.1 http://games.test/ jsmith GET -',
      '4 127.0.0.1 http://homework.games.test/ - GET -',
      '5 127.0.0.2 games.test:853 - CONNECT -',
      '6 ::ffff:127.0.0.1 http://blocked.example/ - GET -',
      '7 2001:db8::7 http://games.test/ - GET -',
      'nonsense',
    ].join('\n'));
    expect(code).toBe(0);
    const answers = stdout.trimEnd().split('\n').map(answerOf);
    expect(answers.map((a) => `${a.channel} ${a.result} ${a.tag ?? ''}`.trim())).toEqual(['0 ERR games', '1 OK', '2 ERR games', '3 OK', '4 OK', '5 ERR dns-over-tls', '6 ERR school-block', '7 OK', 'null BH']);
    expect(stderr).toMatch(/warning: no list provides not-provided; left out of the policies/);
    expect(stderr).toMatch(/ready: 3 policies \(pupils, staff, guests; unknown clients: guests\)/);
    const records = readFileSync(activity, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(8);
    expect(records[0]).toMatchObject({ point: 'squid', clientIp: '127.0.0.1', deviceName: 'Pupil laptop', host: 'games.test', url: 'http://games.test/', action: 'block', category: 'games', policy: 'Pupils' });
    expect(records[3]).toMatchObject({ username: 'jsmith', action: 'allow', policy: 'Staff' });
  });

  it('FI-01 refuses every request, with the reason, when its files cannot be loaded (fails closed rather than crashing Squid)', async () => {
    const { code, stdout, stderr } = await runHelper(['--policy', path.join(dir, 'missing.yaml')], '0 10.0.0.1 http://x.example/ - GET -\n1 10.0.0.1 http://y.example/ - GET -\n');
    expect(code).toBe(1);
    const answers = stdout.trimEnd().split('\n').map(answerOf);
    expect(answers.map((a) => `${a.channel} ${a.result}`)).toEqual(['0 BH', '1 BH']);
    expect(answers[0]!.message).toMatch(/^Gatehouse filter not loaded: cannot read .*missing\.yaml: ENOENT/);
    expect(stderr).toMatch(/cannot start/);
    const check = await runHelper(['--policy', path.join(dir, 'filter.yaml'), '--check'], '');
    expect(check).toMatchObject({ code: 0 });
    expect(check.stdout).toMatch(/^OK: 3 policies/);
    const bad = await runHelper(['--bogus'], '');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--bogus'/);
  });
});

// ----- end to end, against Squid from Debian -----------------------------------------------------

const SQUID = ['/usr/sbin/squid', '/usr/bin/squid'].find((p) => existsSync(p)) ?? null;
const CURL = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p)) ?? null;
const e2eMissing = !SQUID ? 'Squid is not installed (apt-get install -y squid)' : !CURL ? 'curl is not installed' : null;
if (e2eMissing && ['true', '1'].includes(process.env.CI ?? '')) throw new Error(`The Squid end-to-end test must run under CI: ${e2eMissing}`);
if (e2eMissing) console.warn(`SKIPPED the Squid end-to-end test: ${e2eMissing}`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** curl through the proxy; asynchronous, as the origin server answers from this process. */
function curl(args: string[]): Promise<{ status: string; body: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CURL!, ['-s', '-S', '--max-time', '20', '-w', '\n%{http_code} %{http_connect}', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const nl = out.lastIndexOf('\n');
      resolve({ body: out.slice(0, nl), status: out.slice(nl + 1), code });
    });
  });
}

describe.skipIf(e2eMissing !== null)('Squid from Debian with gatehouse squid-helper', () => {
  let dir: string;
  let squid: ChildProcess;
  let origin: http.Server;
  let originPort: number;
  let proxyPort: number;
  const proxy = () => `http://127.0.0.1:${proxyPort}`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gh-squid-e2e-'));
    // Squid started as root runs (and runs its helpers) as its own user, which must reach these files.
    chmodSync(dir, 0o777);
    origin = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`origin says hello to ${req.headers.host}${req.url}\n`);
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originPort = (origin.address() as net.AddressInfo).port;
    proxyPort = await freePort();

    writeFileSync(path.join(dir, 'filter.yaml'), POLICY);
    writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 allowed.test games.test homework.games.test blocked.example dot.test\n');
    const errors = path.join(dir, 'errors');
    mkdirSync(errors);
    for (const f of readdirSync('/usr/share/squid/errors/templates')) copyFileSync(path.join('/usr/share/squid/errors/templates', f), path.join(errors, f));
    // The block page shipped in docs/squid/, pointed at a console address.
    writeFileSync(path.join(errors, 'ERR_GATEHOUSE_BLOCKED'), readFileSync(path.join(ROOT, 'docs', 'squid', 'ERR_GATEHOUSE_BLOCKED'), 'utf8').replaceAll('https://gatehouse.school.example', 'https://console.test'));
    const helper = path.join(dir, 'helper.sh');
    writeFileSync(helper, `#!/bin/sh\ncd '${ROOT}' && exec '${process.execPath}' '${CLI}' "$@"\n`);
    chmodSync(helper, 0o755);
    writeFileSync(
      path.join(dir, 'squid.conf'),
      [
        `http_port 127.0.0.1:${proxyPort}`,
        `pid_filename ${dir}/squid.pid`,
        `cache_log stdio:${dir}/cache.log`,
        'logformat gatehouse %ts.%03tu %>a %un %rm %ru %>Hs %et %ea',
        `access_log stdio:${dir}/access.log gatehouse`,
        'cache deny all',
        `coredump_dir ${dir}`,
        `hosts_file ${dir}/hosts`,
        `error_directory ${errors}`,
        'shutdown_lifetime 1 seconds',
        'visible_hostname gatehouse-test',
        `external_acl_type gatehouse ttl=60 negative_ttl=60 concurrency=50 children-max=2 children-startup=1 %SRC %>ru %un %METHOD ${helper} --policy ${dir}/filter.yaml --activity ${dir}/activity.jsonl`,
        'acl gatehouse external gatehouse',
        'acl school src 127.0.0.0/8',
        'http_access deny !gatehouse',
        'deny_info ERR_GATEHOUSE_BLOCKED gatehouse',
        'http_access allow school',
        'http_access deny all',
        '',
      ].join('\n'),
    );
    const parse = spawnSync(SQUID!, ['-k', 'parse', '-f', path.join(dir, 'squid.conf')], { encoding: 'utf8' });
    expect(parse.status, parse.stderr).toBe(0);
    squid = spawn(SQUID!, ['-N', '-f', path.join(dir, 'squid.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let squidOutput = '';
    squid.stdout!.on('data', (d) => (squidOutput += d));
    squid.stderr!.on('data', (d) => (squidOutput += d));
    // Ready when it accepts connections (the helper may still be loading; Squid queues for it).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(proxyPort, '127.0.0.1', () => {
          s.destroy();
          r(true);
        });
        s.on('error', () => r(false));
      });
      if (ok) break;
      if (squid.exitCode !== null || Date.now() > deadline) {
        const log = existsSync(path.join(dir, 'cache.log')) ? readFileSync(path.join(dir, 'cache.log'), 'utf8') : '';
        throw new Error(`Squid did not start: ${squidOutput}\n${log.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    if (squid && squid.exitCode === null) {
      const exited = new Promise((r) => squid.once('exit', r));
      squid.kill('SIGTERM');
      const timer = setTimeout(() => squid.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise((r) => origin?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('FI-01 Squid passes an allowed site and refuses a blocked one with the Gatehouse block page (403, the reason and category)', async () => {
    const allowed = await curl(['-x', proxy(), `http://allowed.test:${originPort}/lesson`]);
    expect(allowed.status, allowed.body).toBe('200 000');
    expect(allowed.body.trim()).toBe(`origin says hello to allowed.test:${originPort}/lesson`);

    const blocked = await curl(['-x', proxy(), `http://blocked.example:${originPort}/anything`]);
    expect(blocked.status).toBe('403 000');
    expect(blocked.body).toContain('This page is blocked');
    expect(blocked.body).toContain('Blocked: on the school&#39;s block list &quot;School block list&quot;');
    expect(blocked.body).toContain('school-block');
    expect(blocked.body).toContain(`https://console.test/blocked?host=blocked.example&amp;url=http://blocked.example:${originPort}/anything&amp;category=school-block&amp;action=request`);
    expect(blocked.body).not.toContain('origin says hello');
  });

  it('FI-02 the policy follows the client: games blocked for the pupil laptop (127.0.0.1), allowed for staff (127.0.0.2)', async () => {
    const pupil = await curl(['-x', proxy(), `http://games.test:${originPort}/play`]);
    expect(pupil.status).toBe('403 000');
    expect(pupil.body).toContain('Blocked: Games for Pupils');
    const staff = await curl(['--interface', '127.0.0.2', '-x', proxy(), `http://games.test:${originPort}/play`]);
    expect(staff.status, staff.body).toBe('200 000');
    // The school's allow list lets pupils reach one games site.
    expect((await curl(['-x', proxy(), `http://homework.games.test:${originPort}/`])).status).toBe('200 000');
  });

  it('FI-10 Squid refuses CONNECT to port 853 (DNS over TLS)', async () => {
    const dot = await curl(['--interface', '127.0.0.2', '-x', proxy(), 'https://dot.test:853/']);
    expect(dot.status.split(' ')[1]).toBe('403');
    expect(dot.code).not.toBe(0);
  });

  it('MO-01 every decision is in the helper activity file and Squid access.log (tag and log values)', async () => {
    // The helper writes its batch once a second.
    await new Promise((r) => setTimeout(r, 1500));
    const records = readFileSync(path.join(dir, 'activity.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ point: 'squid', clientIp: '127.0.0.1', host: 'blocked.example', action: 'block', category: 'school-block' }),
        expect.objectContaining({ point: 'squid', clientIp: '127.0.0.2', host: 'games.test', action: 'allow', policy: 'Staff' }),
        expect.objectContaining({ point: 'squid', clientIp: '127.0.0.2', host: 'dot.test', action: 'block', rule: 'dns-over-tls', url: null }),
      ]),
    );
    const access = readFileSync(path.join(dir, 'access.log'), 'utf8');
    expect(access).toMatch(new RegExp(`127\\.0\\.0\\.1 - GET http://blocked\\.example:${originPort}/anything 403 school-block action=block,category=school-block,rule=school-block,policy=pupils`));
    expect(access).toMatch(/127\.0\.0\.2 - CONNECT dot\.test:853 403 dns-over-tls /);
  });
});
