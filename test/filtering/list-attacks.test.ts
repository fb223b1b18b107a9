import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/core/ids.js';
import type { FetchLimits } from '../../src/filtering/lists-service.js';
import { filterServiceFor, type FilterService } from '../../src/filtering/service.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { profileWithoutChangeControl, reauthenticate, setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Issue 10, finding 1: a list's location was a way to read the server's own files and reach its
 * own network, and the first line of whatever it read came back in `lastError`, the log and the
 * audit trail. Each test here performs one attack against the running app (files on this machine,
 * the app's own /metrics over real HTTP, names resolved by the system resolver, redirects, archive
 * bombs) and checks that nothing of the target's content appears anywhere an administrator or a log
 * reader could see it — and that the list in use stays.
 */

/** The test's list origin listens here; GATEHOUSE_LIST_ALLOWED_NETWORKS allows this address only (the rest of loopback stays refused). */
const ALLOWED = '127.0.0.2';

/** Pieces of a secret that would show if any of it were quoted: the start of each line (or NUL-separated entry), at least 8 characters. */
function fragments(secret: string): string[] {
  const out = new Set<string>();
  for (const piece of secret.split(/[\0\n]/)) {
    const p = piece.trim();
    if (p.length >= 8) out.add(p.slice(0, 16));
    // Windows through the middle of a line without paths in it (a key, a metric line).
    if (p.length >= 24 && !p.includes('/')) for (let i = 6; i + 12 <= p.length; i += 6) out.add(p.slice(i, i + 12));
  }
  return [...out];
}

function expectNoLeak(secret: string, places: Record<string, string>): void {
  const pieces = fragments(secret);
  expect(pieces.length).toBeGreaterThan(0);
  for (const [where, text] of Object.entries(places)) {
    const found = pieces.find((p) => text.includes(p));
    expect(found, `${where} quotes the target's content`).toBeUndefined();
  }
}

/** One ustar entry: a 512-byte header, then the data padded to 512. */
function tarEntry(name: string, data: Buffer | string, type = '0', declaredSize?: number): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${(declaredSize ?? body.length).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write(type, 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([header, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

const GLOBAL_USAGE = 'NAME: adult\nDEFAULT_TYPE: black\nNAME EN: Adult\n\n';

/** An origin on 127.0.0.2: path → body, status, or a redirect. */
function origin(): Promise<{ url: string; port: number; routes: Map<string, Buffer | number | { redirect: string }>; close(): Promise<void> }> {
  const routes = new Map<string, Buffer | number | { redirect: string }>();
  const server: Server = createServer((req, res) => {
    const route = routes.get(req.url ?? '');
    if (route === undefined || typeof route === 'number') res.writeHead(typeof route === 'number' ? route : 404).end();
    else if (Buffer.isBuffer(route)) res.writeHead(200, { 'content-length': route.length }).end(route);
    else res.writeHead(302, { location: route.redirect }).end();
  });
  return new Promise((resolve) =>
    server.listen(0, ALLOWED, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({ url: `http://${ALLOWED}:${port}`, port, routes, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

for (const dialect of await dialects()) {
  describe(`FI-04 list locations under attack on ${dialect}`, () => {
    let t: TestApp;
    let session: Session;
    let service: FilterService;
    let work: string;
    let lists: string;
    let web: Awaited<ReturnType<typeof origin>>;
    let appPort: number;
    /** every HTTP answer the attacks got, to search for leaks */
    const responses: string[] = [];
    const api = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
      const response = await t.app.inject({ method, url, headers: session.headers, payload: payload as object, remoteAddress: '127.0.0.1' });
      responses.push(response.body);
      return { status: response.statusCode, body: response.body ? (response.json() as any) : undefined };
    };
    const decide = (host: string) => service.snapshot().decide(host, service.snapshot().policy('role:staff'), t.clock.now().getTime());
    /** lastError, the log, the audit trail, every HTTP answer and the lists page: where a leak would show */
    const everywhere = async (extra: Record<string, string> = {}) => ({
      ...extra,
      log: t.logs.text,
      audit: (await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute()).map((e) => e.body).join('\n'),
      responses: responses.join('\n'),
      listsPage: JSON.stringify((await api('GET', '/api/filtering/lists')).body),
      overview: JSON.stringify((await api('GET', '/api/dashboard/due')).body ?? ''),
    });
    const add = (name: string, location: string, format = 'domains', kind = 'block') => api('POST', '/api/filtering/lists', { name, format, location, kind, scheduleHours: 24 });
    /** A good list in use: a later attack must leave it in force. */
    const goodList = async (name: string, host: string) => {
      const file = path.join(lists, `${name}.txt`);
      writeFileSync(file, `${host}\nother.${host}\n`);
      const created = await add(name, file);
      expect(created.body).toMatchObject({ lastResult: 'ok', entries: 2 });
      expect(decide(`www.${host}`)).toMatchObject({ action: 'block', rule: 'school-block' });
      return { file, id: created.body.id as string };
    };
    const withLimits = async <T>(limits: Partial<FetchLimits>, run: () => Promise<T>): Promise<T> => {
      const saved = service.limits;
      (service as unknown as { limits: FetchLimits }).limits = { ...saved, ...limits };
      try {
        return await run();
      } finally {
        (service as unknown as { limits: FetchLimits }).limits = saved;
      }
    };
    let secretKey: string;
    let metrics: string;

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-list-attacks-'));
      lists = path.join(work, 'lists');
      mkdirSync(lists);
      // These attack where a list comes from and its fetch, so changes apply at once (change control: test/governance/changes.test.ts).
      t = await startTestApp(dialect, { config: { listFolder: lists, listAllowedNetworks: `${ALLOWED}/32`, profile: profileWithoutChangeControl() } });
      session = await setUpSchool(t);
      // Setting where a list comes from needs a recent re-authentication (test/identity/reauth.test.ts); this clock moves only when told.
      await reauthenticate(t, session);
      service = filterServiceFor(t.runtime);
      // The app itself on a real port, as in production: its /metrics answers this machine without a token.
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      appPort = (t.app.server.address() as AddressInfo).port;
      web = await origin();
      secretKey = readFileSync(path.join(t.test.dataDir, 'secret.key'), 'utf8');
      const scraped = await fetch(`http://127.0.0.1:${appPort}/metrics`);
      expect(scraped.status).toBe(200);
      metrics = (await scraped.text()).split('\n').filter((l) => l && !l.startsWith('#')).slice(0, 5).join('\n');
    });
    afterAll(async () => {
      await web.close();
      await t.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('FI-04 attack: a list at the data folder’s secret.key, /etc/passwd or /proc/self/environ is refused when saved, naming the list folder, and nothing of them shows', async () => {
      const targets: Array<[string, string]> = [
        [path.join(t.test.dataDir, 'secret.key'), secretKey],
        ['/etc/passwd', readFileSync('/etc/passwd', 'utf8')],
        ['/proc/self/environ', readFileSync('/proc/self/environ', 'utf8')],
        // Written inside the folder, climbing out of it.
        [`${lists}/../../${path.relative(path.dirname(work), t.test.dataDir)}/secret.key`, secretKey],
      ];
      for (const [i, [location, content]] of targets.entries()) {
        for (const format of ['domains', 'hosts', 'adblock']) {
          const refused = await add(`Stolen ${i} ${format}`, location, format);
          expect(refused.status, location).toBe(400);
          expect(refused.body.error.message).toMatch(location.includes('..') ? /contains “\.\.”/ : new RegExp(`outside the list folder ${lists.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
          expectNoLeak(content, { response: JSON.stringify(refused.body) });
        }
        expectNoLeak(content, await everywhere());
      }
      expect((await api('GET', '/api/filtering/lists')).body.sources.filter((s: { name: string }) => s.name.startsWith('Stolen'))).toEqual([]);
      // Changing a good list's location to one of them is refused the same way; the list keeps its location.
      const { file, id } = await goodList('moved', 'moved.example');
      const moved = await api('PATCH', `/api/filtering/lists/${id}`, { location: path.join(t.test.dataDir, 'secret.key') });
      expect(moved.status).toBe(400);
      expect(moved.body.error.message).toContain(`outside the list folder ${lists}`);
      expect((await api('GET', '/api/filtering/lists')).body.sources.find((s: { id: string }) => s.id === id).location).toBe(file);
    });

    it('FI-04 attack: a list saved before the folder rule (a row pointing at secret.key and /etc/passwd) is refused when fetched — from the console and `gatehouse filtering fetch` — and nothing of the file shows', async () => {
      for (const [location, content] of [[path.join(t.test.dataDir, 'secret.key'), secretKey], ['/etc/passwd', readFileSync('/etc/passwd', 'utf8')]] as const) {
        const id = newId();
        const now = t.clock.now().toISOString();
        await t.runtime.db.kysely
          .insertInto('filter_list_source')
          .values({ id, name: `Old ${location}`, slug: `old-${id.slice(0, 8)}`, format: 'domains', location, kind: 'block', description: null, schedule_hours: 24, created_at: now, updated_at: now, last_fetched_at: null, last_result: null, last_error: null, current_at: null, held_at: null, held_entries: null, held_version: null })
          .execute();
        const fetched = await api('POST', `/api/filtering/lists/${id}/fetch`);
        expect(fetched.body.outcome).toMatchObject({ status: 'failed' });
        expect(fetched.body.outcome.error).toContain(`outside the list folder ${lists}`);
        expect(fetched.body.source.lastError).toBe(fetched.body.outcome.error);
        const cli = await runCli(['filtering', 'fetch', '--list', `Old ${location}`], { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url, GATEHOUSE_LIST_FOLDER: lists, GATEHOUSE_LOG_LEVEL: 'debug' });
        expect(cli.stdout).toContain(`Old ${location}: failed — ${location} is outside the list folder`);
        expect(cli.code).toBe(1);
        const failed = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'filtering.list_update_failed').where('target', '=', `filter_list:${id}`).execute();
        expect(failed.length).toBe(2);
        expectNoLeak(content, await everywhere({ lastError: fetched.body.source.lastError, cliOut: cli.stdout, cliErr: cli.stderr }));
      }
    }, 90_000);

    it('FI-04 attack: what is not a list — a copy of secret.key or /etc/passwd inside the list folder, an allowed origin answering with the metrics — is refused by line numbers and counts only, never quoted', async () => {
      const passwd = readFileSync('/etc/passwd', 'utf8');
      const copies: Array<[string, string, string]> = [
        ['key-copy.txt', secretKey, 'line 1 is not a domain name or an address; 0 of 1 line was usable'],
        ['passwd-copy.txt', passwd, `line 1 is not a domain name or an address; 0 of ${passwd.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).length} lines were usable`],
      ];
      for (const [name, content, message] of copies) {
        writeFileSync(path.join(lists, name), content);
        const created = await add(`Copy ${name}`, path.join(lists, name));
        expect(created.status).toBe(201);
        expect(created.body).toMatchObject({ lastResult: 'error', lastError: message });
        expectNoLeak(content, await everywhere({ lastError: created.body.lastError }));
      }
      // Half usable: counted, the first refused line by number.
      writeFileSync(path.join(lists, 'mixed.txt'), `ok.mixed.example\n${secretKey}\nroot:x:0:0:root:/root:/bin/bash\n`);
      const mixed = await add('Mixed', path.join(lists, 'mixed.txt'));
      expect(mixed.body.lastError).toBe('most entries are not a domain name or an address: 2 refused, 1 usable, in 3 lines (the first refused on line 2)');
      web.routes.set('/metrics-copy', Buffer.from(`${metrics}\n`));
      for (const format of ['domains', 'adblock']) {
        const served = await add(`Metrics copy ${format}`, `${web.url}/metrics-copy`, format);
        expect(served.body.lastError).toMatch(/^line 1 is not .*; 0 of 5 lines were usable$/);
      }
      expectNoLeak(metrics, await everywhere());
      expectNoLeak(secretKey, await everywhere());
    });

    it('FI-04 attack: a UT1 expressions file holding an invalid pattern made of secret text is left out and counted, never quoted in the log or the console’s warnings', async () => {
      const ut1 = path.join(lists, 'ut1-patterns');
      mkdirSync(path.join(ut1, 'adult'), { recursive: true });
      writeFileSync(path.join(ut1, 'global_usage'), GLOBAL_USAGE);
      writeFileSync(path.join(ut1, 'adult', 'domains'), 'patterns.example\n');
      writeFileSync(path.join(ut1, 'adult', 'expressions'), `(${secretKey}\nporn[a-z]*\n`);
      const created = await add('UT1 patterns', ut1, 'ut1', 'category');
      expect(created.body).toMatchObject({ lastResult: 'ok', entries: 2 });
      const page = (await api('GET', '/api/filtering/lists')).body;
      expect(page.warnings.join(' ')).not.toContain('could not be compiled');
      expectNoLeak(secretKey, await everywhere({ warnings: JSON.stringify(page.warnings) }));
    });

    it('FI-04 attack: a symbolic link in the list folder pointing at secret.key is refused when saved, and when a good list is swapped for it after saving; the list in use stays', async () => {
      const link = path.join(lists, 'innocent.txt');
      symlinkSync(path.join(t.test.dataDir, 'secret.key'), link);
      const refused = await add('Innocent', link);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toContain(`leads outside the list folder ${lists}`);
      unlinkSync(link);

      // Time of use: saved while it was a good list, then replaced by the link.
      const { file, id } = await goodList('swapped', 'swapped.example');
      unlinkSync(file);
      symlinkSync(path.join(t.test.dataDir, 'secret.key'), file);
      const fetched = await api('POST', `/api/filtering/lists/${id}/fetch`);
      expect(fetched.body.outcome.status).toBe('failed');
      expect(fetched.body.outcome.error).toContain('leads outside the list folder');
      expect(fetched.body.source).toMatchObject({ entries: 2, lastResult: 'error' });
      expect(decide('www.swapped.example')).toMatchObject({ action: 'block', rule: 'school-block' });

      // Inside a UT1 folder: a category's domains file linking out.
      const ut1 = path.join(lists, 'ut1-linked');
      mkdirSync(path.join(ut1, 'adult'), { recursive: true });
      writeFileSync(path.join(ut1, 'global_usage'), GLOBAL_USAGE);
      writeFileSync(path.join(ut1, 'adult', 'domains'), 'adult-linked.example\n');
      const saved = await add('UT1 linked', ut1, 'ut1', 'category');
      expect(saved.body).toMatchObject({ lastResult: 'ok', entries: 1 });
      unlinkSync(path.join(ut1, 'adult', 'domains'));
      symlinkSync(path.join(t.test.dataDir, 'secret.key'), path.join(ut1, 'adult', 'domains'));
      const linked = await api('POST', `/api/filtering/lists/${saved.body.id}/fetch`);
      expect(linked.body.outcome).toMatchObject({ status: 'failed', error: 'adult/domains leads outside the list folder (a symbolic link): the list is not read' });
      expect(linked.body.source.entries).toBe(1);
      expectNoLeak(secretKey, await everywhere());
    });

    it('FI-04 attack: a FIFO in the list folder is refused when saved, and when swapped in after saving it is refused at once instead of hanging or reading what is written into it', async () => {
      // Someone feeds the pipe with /etc/passwd: a reader that opened it would get it (and without a writer, hang).
      const feed = (fifo: string) => spawn('sh', ['-c', `cat /etc/passwd > '${fifo}'`], { stdio: 'ignore', timeout: 30_000 });
      const fifo = path.join(lists, 'pipe.txt');
      execFileSync('mkfifo', [fifo]);
      const first = feed(fifo);
      try {
        const refused = await add('Pipe', fifo);
        expect(refused.status).toBe(400);
        expect(refused.body.error.message).toContain('is not a regular file or folder');
      } finally {
        first.kill();
      }
      rmSync(fifo);

      const { file, id } = await goodList('piped', 'piped.example');
      unlinkSync(file);
      execFileSync('mkfifo', [file]);
      const feeder = feed(file);
      try {
        const fetched = await api('POST', `/api/filtering/lists/${id}/fetch`);
        expect(fetched.body.outcome).toMatchObject({ status: 'failed', error: `${file} is not a regular file or folder (a device, pipe or socket): it is not read` });
        expect(decide('www.piped.example')).toMatchObject({ action: 'block', rule: 'school-block' });
      } finally {
        feeder.kill();
      }
      expectNoLeak(readFileSync('/etc/passwd', 'utf8'), await everywhere());
    });

    it('FI-04 attack: a URL to this server’s own /metrics — 127.0.0.1, localhost, 0.0.0.0, [::ffff:127.0.0.1], 2130706433 — is refused when saved, and nothing of the metrics shows', async () => {
      const forms = [`127.0.0.1:${appPort}`, `localhost:${appPort}`, `0.0.0.0:${appPort}`, `[::ffff:127.0.0.1]:${appPort}`, `[::ffff:7f00:1]:${appPort}`, `2130706433:${appPort}`, `127.1:${appPort}`, `[::1]:${appPort}`, `169.254.169.254`, `metadata.google.internal`, `[fd00:ec2::254]`, `10.1.2.3`, `192.168.1.1`, `100.64.0.1`, `[fe80::1]`, `[fc00::1]`];
      for (const form of forms) {
        const refused = await add(`Metrics ${form}`, `http://${form}/metrics`);
        expect(refused.status, form).toBe(400);
        expect(refused.body.error.message, form).toMatch(/lists are fetched only from public addresses, or from networks and hosts listed in GATEHOUSE_LIST_ALLOWED_NETWORKS/);
      }
      expect((await add('Metrics name', `http://localhost:${appPort}/metrics`)).body.error.message).toMatch(/^Localhost resolves to (127\.0\.0\.1|::1), an address of this machine \(loopback\)/);
      expectNoLeak(metrics, await everywhere());
    });

    it('FI-04 attack: a URL carrying a user name and password is refused without echoing them, so no password reaches the Lists page, the log or the audit trail', async () => {
      const password = 'Pa55-list-server-secret';
      for (const location of [`https://school:${password}@lists.example.org/block.txt`, `http://:${password}@lists.example.org/block.txt`]) {
        const refused = await add('Password in the address', location);
        expect(refused.status, location).toBe(400);
        expect(refused.body.error.message).toMatch(/user name or password in it is not accepted/);
      }
      expectNoLeak(password, await everywhere());
    });

    it('FI-04 attack: a URL on an allowed origin that redirects to 127.0.0.1 or localhost (another port, not allowed) is refused at the redirect; the allowed origin itself works; the list in use stays', async () => {
      web.routes.set('/ok.txt', Buffer.from('redirect-ok.example\nother.redirect-ok.example\n'));
      const created = await add('Redirected', `${web.url}/ok.txt`);
      expect(created.body).toMatchObject({ lastResult: 'ok', entries: 2 });
      for (const target of [`http://127.0.0.1:${appPort}/metrics`, `http://localhost:${appPort}/metrics`, `http://[::ffff:127.0.0.1]:${appPort}/metrics`, 'http://169.254.169.254/latest/meta-data/']) {
        web.routes.set('/ok.txt', { redirect: target });
        const fetched = await api('POST', `/api/filtering/lists/${created.body.id}/fetch`);
        expect(fetched.body.outcome.status, target).toBe('failed');
        expect(fetched.body.outcome.error, target).toMatch(/(an address of this machine \(loopback\)|a cloud metadata address)/);
        expect(fetched.body.source.entries).toBe(2);
        expect(decide('www.redirect-ok.example')).toMatchObject({ action: 'block', rule: 'school-block' });
      }
      // A redirect that stays on the allowed origin is followed, up to five.
      web.routes.set('/ok.txt', { redirect: '/hop1' });
      web.routes.set('/hop1', { redirect: `${web.url}/final.txt` });
      web.routes.set('/final.txt', Buffer.from('redirect-ok.example\nother.redirect-ok.example\nthird.redirect-ok.example\n'));
      expect((await api('POST', `/api/filtering/lists/${created.body.id}/fetch`)).body.outcome).toMatchObject({ status: 'updated', entries: 3 });
      for (let i = 0; i < 6; i++) web.routes.set(`/loop${i}`, { redirect: `/loop${i + 1}` });
      web.routes.set('/ok.txt', { redirect: '/loop0' });
      expect((await api('POST', `/api/filtering/lists/${created.body.id}/fetch`)).body.outcome).toMatchObject({ status: 'failed', error: 'more than 5 redirects, the limit: the list is not fetched' });
      expectNoLeak(metrics, await everywhere());
    });

    it('FI-04 attack: a gzip bomb (a plain list, and a .tar.gz whose padding unpacks past the limit) is stopped at the unpacked limit; the list in use stays', async () => {
      web.routes.set('/bomb.txt', Buffer.from('bomb.example\nother.bomb.example\n'));
      const plain = await add('Bomb', `${web.url}/bomb.txt`);
      expect(plain.body).toMatchObject({ lastResult: 'ok', entries: 2 });
      const bomb = gzipSync(Buffer.concat([Buffer.from('bomb.example\n'), Buffer.alloc(8 * 1_048_576, 0x0a)]));
      expect(bomb.length).toBeLessThan(64 * 1024);
      web.routes.set('/bomb.txt', bomb);
      const outcome = await withLimits({ maxUnpackedBytes: 1_048_576, maxFileBytes: 1_048_576 }, async () => (await api('POST', `/api/filtering/lists/${plain.body.id}/fetch`)).body);
      expect(outcome.outcome).toMatchObject({ status: 'failed', error: 'the list unpacks to more than 1 MB, the limit' });
      expect(outcome.source).toMatchObject({ entries: 2, lastError: 'the list unpacks to more than 1 MB, the limit' });
      expect(decide('www.bomb.example')).toMatchObject({ action: 'block', rule: 'school-block' });

      const good = Buffer.concat([tarEntry('blacklists/', '', '5'), tarEntry('blacklists/global_usage', GLOBAL_USAGE), tarEntry('blacklists/adult/domains', 'tar-bomb.example\n'), Buffer.alloc(1024)]);
      web.routes.set('/blacklists.tar.gz', gzipSync(good));
      const ut1 = await add('Tar bomb', `${web.url}/blacklists.tar.gz`, 'ut1', 'category');
      expect(ut1.body).toMatchObject({ lastResult: 'ok', entries: 1 });
      // The padding is an entry nobody keeps: it is still unpacked, and counted.
      const tarBomb = gzipSync(Buffer.concat([tarEntry('blacklists/', '', '5'), tarEntry('blacklists/global_usage', GLOBAL_USAGE), tarEntry('blacklists/padding', Buffer.alloc(8 * 1_048_576)), tarEntry('blacklists/adult/domains', 'tar-bomb.example\n'), Buffer.alloc(1024)]));
      expect(tarBomb.length).toBeLessThan(64 * 1024);
      web.routes.set('/blacklists.tar.gz', tarBomb);
      const fetched = await withLimits({ maxUnpackedBytes: 1_048_576, maxFileBytes: 16 * 1_048_576 }, async () => (await api('POST', `/api/filtering/lists/${ut1.body.id}/fetch`)).body);
      expect(fetched.outcome).toMatchObject({ status: 'failed', error: 'the archive unpacks to more than 1 MB, the limit' });
      expect(fetched.source.entries).toBe(1);
      // One entry larger than a file may be.
      const big = await withLimits({ maxFileBytes: 1_048_576, maxUnpackedBytes: 64 * 1_048_576 }, async () => (await api('POST', `/api/filtering/lists/${ut1.body.id}/fetch`)).body);
      expect(big.outcome).toMatchObject({ status: 'failed', error: 'an entry of the archive is 8 MB, above the limit of 1 MB for one file' });
    });

    it('FI-04 attack: a tar with too many entries, and a list with too many names, are refused with the limit named; the list in use stays', async () => {
      const entries = [tarEntry('blacklists/', '', '5'), tarEntry('blacklists/global_usage', GLOBAL_USAGE), tarEntry('blacklists/adult/domains', 'many-entries.example\n')];
      for (let i = 0; i < 200; i++) entries.push(tarEntry(`blacklists/empty${i}/`, '', '5'));
      web.routes.set('/many.tar.gz', gzipSync(Buffer.concat([entries[0]!, entries[1]!, entries[2]!, Buffer.alloc(1024)])));
      const ut1 = await add('Many entries', `${web.url}/many.tar.gz`, 'ut1', 'category');
      expect(ut1.body).toMatchObject({ lastResult: 'ok', entries: 1 });
      web.routes.set('/many.tar.gz', gzipSync(Buffer.concat([...entries, Buffer.alloc(1024)])));
      const fetched = await withLimits({ maxArchiveEntries: 100 }, async () => (await api('POST', `/api/filtering/lists/${ut1.body.id}/fetch`)).body);
      expect(fetched.outcome).toMatchObject({ status: 'failed', error: 'the archive has more than 100 entries, the limit' });
      expect(fetched.source.entries).toBe(1);

      const { file, id } = await goodList('names', 'names.example');
      writeFileSync(file, Array.from({ length: 500 }, (_, i) => `n${i}.names.example`).join('\n'));
      const names = await withLimits({ maxListEntries: 100 }, async () => (await api('POST', `/api/filtering/lists/${id}/fetch`)).body);
      expect(names.outcome).toMatchObject({ status: 'failed', error: 'the list has more than 100 entries, the limit' });
      expect(decide('www.names.example')).toMatchObject({ action: 'block', rule: 'school-block' });
    });
  });
}
