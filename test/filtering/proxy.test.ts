import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSnapshot, type PolicyInput } from '../../src/filtering/engine/snapshot.js';
import { StaticFilterPoint } from '../../src/filtering/point.js';
import { SquidHelper } from '../../src/filtering/squid/helper.js';
import { startProxy, type ProxyHandle } from '../../src/filtering/proxy/proxy.js';
import { serverNameOf } from '../../src/filtering/proxy/client-hello.js';
import { ChunkedDecoder, parseResponseHead } from '../../src/filtering/proxy/upstream.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/**
 * The filtering proxy with real clients: curl -x against a local origin (plain HTTP) and a local
 * TLS origin with a self-signed certificate (CONNECT). Every origin name resolves to 127.0.0.1
 * through the proxy's lookup option; the names the proxy resolved are kept to show SafeSearch.
 */

const CONSOLE = 'https://gatehouse.school.example';
// Monday 7 September 2026, 19:00 in London (outside school hours).
const EVENING = Date.parse('2026-09-07T18:00:00Z');

const policy = (over: Partial<PolicyInput>): PolicyInput => ({
  id: 'pupils',
  name: 'Pupils',
  blockedCategories: ['adult'],
  schedules: [],
  allowLists: [],
  blockLists: [],
  safeSearch: { search: 'on', youtube: 'strict' },
  defaultAction: 'allow',
  downloadsAllowed: false,
  ...over,
});

const snapshot = compileSnapshot({
  timeZone: 'Europe/London',
  policies: [
    policy({}),
    policy({ id: 'staff', name: 'Staff', blockedCategories: [], safeSearch: { search: 'off', youtube: 'moderate' }, downloadsAllowed: true }),
  ],
  categories: [
    { id: 'adult', name: 'Adult', description: 'Adult sites', kind: 'category', domains: ['adult.example'], urls: ['pages.example/adult/', 'whole-site.example', 'site-root.example/'] },
    { id: 'iwf', name: 'IWF list', description: '', kind: 'illegal', domains: ['illegal.example'] },
  ],
});

interface Seen {
  connection: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let dir: string;
let origin: http.Server;
let originPort: number;
let originConnections = 0;
const seen: Seen[] = [];
let raw: net.Server;
let rawPort: number;
let rawConnections = 0;
let tls: https.Server;
let tlsPort: number;
let tlsRequests = 0;
const resolved: string[] = [];
let point: StaticFilterPoint;
let proxy: ProxyHandle;
let authProxy: ProxyHandle;
const authPoint = new StaticFilterPoint(snapshot, { unknownPolicy: 'pupils', users: { 'ms.khan': 'staff' } });

const lookup: LookupFunction = (hostname, options, callback) => {
  resolved.push(hostname);
  const cb = callback as (err: NodeJS.ErrnoException | null, address: string | Array<{ address: string; family: number }>, family?: number) => void;
  if (hostname === 'nowhere.example') return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
  if ((options as { all?: boolean }).all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
};

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
/** status line + headers + body through the proxy */
const viaProxy = (url: string, extra: string[] = []) => curl(['-i', '-x', `http://127.0.0.1:${proxy.port}`, ...extra, url]);
const statusOf = (r: CurlResult) => Number(/^HTTP\/1\.1 (\d{3})/.exec(r.stdout)?.[1] ?? 0);
const bodyOf = (r: CurlResult) => r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-proxy-'));
  await selfSignedCertificate(dir, 'origin.test');
  origin = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const connection = (req.socket as net.Socket & { id?: number }).id!;
      seen.push({ connection, method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/download?id=7') {
        res.writeHead(200, { 'content-type': 'application/x-msdownload', 'content-disposition': 'attachment; filename="setup.exe"' });
        return res.end('MZ program');
      }
      if (req.url === '/file?id=8') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': "attachment; filename*=UTF-8''game%20installer.msi" });
        return res.end('installer');
      }
      if (req.url === '/setup.exe') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return res.end('MZ program');
      }
      if (req.url === '/stream') {
        // Chunked answer, several writes: the proxy must stream it on.
        res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-private', 'x-private': 'hop', 'keep-alive': 'timeout=5' });
        res.write('one,');
        setTimeout(() => res.end('two'), 20);
        return;
      }
      if (req.url === '/not-modified') {
        res.writeHead(304, { etag: '"v1"' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes' });
      res.end(`hello from ${req.headers.host}${req.method === 'POST' ? ` got ${Buffer.concat(chunks).length} bytes` : ''}`);
    });
  });
  origin.on('connection', (s: net.Socket & { id?: number }) => {
    s.id = ++originConnections;
  });
  origin.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    seen.push({ connection: 0, method: req.method!, url: req.url!, headers: req.headers, body: '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`echo:${d.toString()}`));
  });
  originPort = await listen(origin);
  // An origin by hand: a close-delimited answer, and a kept-alive connection it drops on reuse.
  raw = net.createServer((socket) => {
    rawConnections++;
    let served = 0;
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        const head = buffered.slice(0, buffered.indexOf('\r\n\r\n'));
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        const path = head.split(' ')[1];
        if (path === '/until-close') {
          socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until the origin closes');
          return;
        }
        if (served++ > 0) {
          socket.destroy(); // as an origin does when its idle timeout fires just as a request arrives
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nfirst');
      }
    });
  });
  rawPort = await listen(raw);
  tls = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
    tlsRequests++;
    res.end(`secure hello ${req.headers.host}`);
  });
  tlsPort = await listen(tls);
  point = new StaticFilterPoint(snapshot, {
    unknownPolicy: 'pupils',
    clients: { '127.0.0.1': { policyId: 'pupils', deviceName: 'LAB-PC-07', username: 'pupil.one' }, '127.0.0.2': { policyId: 'staff', deviceName: 'STAFF-LAPTOP-2' } },
  });
  // The origins here listen on loopback, which the proxy otherwise refuses as a destination (see the FI-01 attack tests).
  proxy = await startProxy(point, { consoleUrl: CONSOLE, lookup, now: () => EVENING, timeZone: 'Europe/London', connectPorts: [443, 80, tlsPort], forwardedFor: 'append', destinations: { allowed: ['127.0.0.1/32'] } });
  authProxy = await startProxy(authPoint, {
    lookup,
    destinations: { allowed: ['127.0.0.1/32'] },
    now: () => EVENING,
    auth: 'required',
    connectPorts: [443, tlsPort],
    authenticate: (user, password) => user === 'ms.khan' && password === 'right-password',
  });
}, 30_000);

afterAll(async () => {
  await proxy?.close();
  await authProxy?.close();
  origin?.close();
  raw?.close();
  tls?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('filtering proxy (curl -x)', () => {
  it('FI-01 FI-13 a blocked host gets the block page naming the category, with "Request access" and "Report this page"', async () => {
    const r = await viaProxy(`http://www.adult.example:${originPort}/gallery?id=3`);
    expect(statusOf(r)).toBe(403);
    expect(r.stdout).toMatch(/content-type: text\/html; charset=utf-8/i);
    const page = bodyOf(r);
    expect(page).toContain('This page is blocked');
    expect(page).toContain('<strong>Adult</strong>');
    expect(page).toContain('Blocked: Adult for Pupils');
    expect(page).toContain('Monday, 7 September 2026 at 19:00'); // school time, not UTC
    const request = `${CONSOLE}/blocked?host=www.adult.example&amp;url=${encodeURIComponent(`http://www.adult.example:${originPort}/gallery?id=3`)}&amp;category=adult&amp;action=request`;
    expect(page).toContain(`href="${request}">Request access</a>`);
    expect(page).toContain('action=report">Report this page</a>');
    // No external assets: nothing is loaded from anywhere.
    expect(page).not.toMatch(/<(script|img|link)\b/i);
    expect(page).not.toMatch(/src=|url\(/i);
    // The origin never saw it.
    expect(seen.some((s) => s.headers.host?.includes('adult.example'))).toBe(false);
  });

  it('FI-01 a URL prefix list blocks a path of an otherwise allowed host', async () => {
    expect(statusOf(await viaProxy(`http://pages.example:${originPort}/adult/page.html`))).toBe(403);
    expect(statusOf(await viaProxy(`http://pages.example:${originPort}/maths/page.html`))).toBe(200);
  });

  it('FI-13 illegal content: the page offers no "Request access", only reporting', async () => {
    const r = await viaProxy(`http://illegal.example:${originPort}/`);
    expect(statusOf(r)).toBe(403);
    const page = bodyOf(r);
    expect(page).toContain('cannot be unblocked');
    expect(page).not.toContain('Request access');
    expect(page).toContain('Report this page');
  });

  it('FI-01 an allowed host is proxied over one kept-alive origin connection, hop-by-hop headers removed, Via added', async () => {
    const before = originConnections;
    const first = seen.length;
    const a = await viaProxy(`http://allowed.example:${originPort}/one`, ['-H', 'Connection: x-secret', '-H', 'X-Secret: drop-me', '-H', 'Proxy-Connection: keep-alive']);
    const b = await viaProxy(`http://allowed.example:${originPort}/two`);
    expect(statusOf(a)).toBe(200);
    expect(bodyOf(a)).toBe(`hello from allowed.example:${originPort}`);
    expect(bodyOf(b)).toBe(`hello from allowed.example:${originPort}`);
    expect(a.stdout).toMatch(/^x-origin: yes/im);
    expect(a.stdout).toMatch(/^via: 1\.1 gatehouse-[0-9a-f]{6}/im);
    // Two separate curl runs (two client connections): the origin saw one connection.
    expect(originConnections - before).toBe(1);
    const [one, two] = seen.slice(first);
    expect(one!.connection).toBe(two!.connection);
    expect(one!.url).toBe('/one');
    expect(one!.headers['x-secret']).toBeUndefined();
    expect(one!.headers['proxy-connection']).toBeUndefined();
    expect(one!.headers.via).toMatch(/^1\.1 gatehouse-/);
    expect(one!.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('FI-01 bodies stream both ways (upload and a chunked answer), and the origin’s hop-by-hop headers stop at the proxy', async () => {
    writeFileSync(path.join(dir, 'upload.txt'), 'x'.repeat(300_000));
    const r = await viaProxy(`http://allowed.example:${originPort}/upload`, ['--data-binary', `@${path.join(dir, 'upload.txt')}`, '-H', 'Content-Type: text/plain']);
    expect(bodyOf(r)).toBe(`hello from allowed.example:${originPort} got 300000 bytes`);
    const chunked = await viaProxy(`http://allowed.example:${originPort}/stream`);
    expect(bodyOf(chunked)).toBe('one,two');
    expect(chunked.stdout).not.toMatch(/^x-private:/im);
  });

  it('FI-01 HEAD, 304, a chunked upload, a close-delimited answer, and an origin that drops a reused connection all come through', async () => {
    const head = await viaProxy(`http://allowed.example:${originPort}/one`, ['-I']);
    expect(statusOf(head)).toBe(200);
    expect(head.stdout).toMatch(/^x-origin: yes/im);
    const notModified = await viaProxy(`http://allowed.example:${originPort}/not-modified`, ['-H', 'If-None-Match: "v1"']);
    expect(statusOf(notModified)).toBe(304);
    expect(bodyOf(notModified)).toBe('');
    writeFileSync(path.join(dir, 'chunked.txt'), 'y'.repeat(70_000));
    const chunked = await viaProxy(`http://allowed.example:${originPort}/upload`, ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${path.join(dir, 'chunked.txt')}`]);
    expect(bodyOf(chunked)).toBe(`hello from allowed.example:${originPort} got 70000 bytes`);
    expect(seen.at(-1)!.headers['transfer-encoding']).toBe('chunked');
    const untilClose = await viaProxy(`http://raw.example:${rawPort}/until-close`);
    expect(statusOf(untilClose)).toBe(200);
    expect(bodyOf(untilClose)).toBe('all of it, until the origin closes');
    // The second request reuses the kept-alive connection, which the origin drops: the proxy
    // tries once more on a fresh connection and the browser never knows.
    const before = rawConnections;
    expect(bodyOf(await viaProxy(`http://raw.example:${rawPort}/a`))).toBe('first');
    expect(bodyOf(await viaProxy(`http://raw.example:${rawPort}/b`))).toBe('first');
    expect(rawConnections - before).toBe(2);
  });

  it('FI-01 a WebSocket upgrade over plain HTTP is decided like a request, then tunnelled', async () => {
    const upgrade = (host: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(proxy.port, '127.0.0.1', () =>
          socket.write(`GET http://${host}:${originPort}/chat HTTP/1.1\r\nHost: ${host}:${originPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nProxy-Connection: keep-alive\r\n\r\n`),
        );
        let got = '';
        socket.on('data', (d) => {
          got += d.toString();
          if (got.includes('\r\n\r\n') && got.startsWith('HTTP/1.1 101') && !got.includes('echo:')) socket.write('ping');
          if (got.includes('echo:ping')) socket.destroy();
        });
        socket.on('close', () => resolve(got));
      });
    const ok = await upgrade('chat.example');
    expect(ok).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    expect(ok).toContain('echo:ping');
    expect(seen.at(-1)).toMatchObject({ url: '/chat', headers: { host: `chat.example:${originPort}`, upgrade: 'websocket' } });
    expect(seen.at(-1)!.headers['proxy-connection']).toBeUndefined();
    const blocked = await upgrade('adult.example');
    expect(blocked).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(blocked).toContain('Blocked: Adult for Pupils');
  });

  it('FI-01 a WebSocket upgrade goes to the origin with the head every passed-on request gets, Connection: Upgrade and Upgrade sent for the hop', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(proxy.port, '127.0.0.1', () =>
        socket.write(
          [
            `GET http://chat.example:${originPort}/room?id=4 HTTP/1.1`,
            `Host: chat.example:${originPort}`,
            'Upgrade: websocket',
            'Connection: Upgrade, X-Private',
            'X-Private: drop-me',
            'Keep-Alive: timeout=5',
            'Proxy-Connection: keep-alive',
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
            'Sec-WebSocket-Version: 13',
            'Via: 1.1 school-cache',
            'X-Forwarded-For: 10.9.9.9',
            '',
            '',
          ].join('\r\n'),
        ),
      );
      let got = '';
      socket.on('data', (d) => {
        got += d.toString();
        if (got.startsWith('HTTP/1.1 101') && got.includes('\r\n\r\n') && !got.includes('echo:')) socket.write('ping');
        if (got.includes('echo:ping')) socket.destroy();
      });
      socket.on('close', () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    expect(answer).toContain('echo:ping');
    const upgrade = seen.at(-1)!;
    expect(upgrade).toMatchObject({ url: '/room?id=4', headers: { host: `chat.example:${originPort}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', 'x-forwarded-for': '10.9.9.9, 127.0.0.1' } });
    expect(upgrade.headers.via).toMatch(/^1\.1 school-cache, 1\.1 gatehouse-[0-9a-f]{6}$/);
    for (const dropped of ['x-private', 'keep-alive', 'proxy-connection']) expect(upgrade.headers[dropped], dropped).toBeUndefined();
  });

  it('FI-01 a request or a WebSocket upgrade that comes back to the proxy that sent it is refused with 508, not passed round again', async () => {
    await viaProxy(`http://allowed.example:${originPort}/token`);
    const token = /gatehouse-[0-9a-f]{6}/.exec(String(seen.at(-1)!.headers.via))![0];
    const before = seen.length;
    const looped = await viaProxy(`http://allowed.example:${originPort}/again`, ['-H', `Via: 1.1 school-cache, 1.1 ${token}`]);
    expect(statusOf(looped)).toBe(508);
    const upgrade = await new Promise<string>((resolve) => {
      const socket = net.connect(proxy.port, '127.0.0.1', () =>
        socket.write(`GET http://chat.example:${originPort}/chat HTTP/1.1\r\nHost: chat.example:${originPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nVia: 1.1 ${token}\r\n\r\n`),
      );
      let got = '';
      socket.on('data', (d) => (got += d.toString()));
      socket.on('close', () => resolve(got));
    });
    expect(upgrade).toMatch(/^HTTP\/1\.1 508 Loop Detected/);
    expect(seen.length).toBe(before);
  });

  it('FI-01 an origin that cannot be found gets a clear 502 page', async () => {
    const r = await viaProxy('http://nowhere.example/');
    expect(statusOf(r)).toBe(502);
    expect(bodyOf(r)).toContain('could not be found');
  });

  it('FI-01 HTTPS: CONNECT to an allowed name is tunnelled to the TLS origin; to a blocked name it is refused with 403 and a reason', async () => {
    const ok = await curl(['-k', '-x', `http://127.0.0.1:${proxy.port}`, `https://secure.example:${tlsPort}/`]);
    expect(ok.stdout).toBe(`secure hello secure.example:${tlsPort}`);
    const blocked = await curl(['-k', '-x', `http://127.0.0.1:${proxy.port}`, '-w', '%{http_connect}', `https://adult.example:${tlsPort}/`]);
    expect(blocked.code).not.toBe(0);
    expect(blocked.stdout).toBe('403');
    // The reason is in the CONNECT answer (a browser shows its own error page for HTTPS).
    const raw = await rawConnect(proxy.port, `adult.example:${tlsPort}`);
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(raw).toContain('Blocked: Adult for Pupils');
  });

  it('FI-10 CONNECT to port 853 (DNS over TLS) is refused for everyone, and other ports than the allowed ones too', async () => {
    for (const iface of ['127.0.0.1', '127.0.0.2']) {
      const r = await curl(['-k', '--interface', iface, '-x', `http://127.0.0.1:${proxy.port}`, '-w', '%{http_connect}', 'https://dns.example:853/']);
      expect(r.stdout).toBe('403');
    }
    expect(await rawConnect(proxy.port, 'dns.example:853')).toContain('DNS over TLS (port 853) is not allowed');
    const other = await rawConnect(proxy.port, 'secure.example:22');
    expect(other).toMatch(/^HTTP\/1\.1 403/);
    expect(other).toContain(`may use ports 443, 80 and ${tlsPort} only`);
  });

  it('FI-01 the proxy and the Squid helper decide CONNECT alike: on the host, so a URL-list entry for a whole site ("/" or no path) blocks its pages, not tunnels', async () => {
    const squid = new SquidHelper(point, { now: () => EVENING });
    const decisionOf = (r: (typeof point.recorded)[number] | undefined) => ({ host: r?.host, action: r?.action, category: r?.category, rule: r?.rule, policy: r?.policy });
    const expected: Record<string, string> = { 'whole-site.example': 'allow', 'site-root.example': 'allow', 'adult.example': 'block', 'secure.example': 'allow' };
    for (const [host, action] of Object.entries(expected)) {
      const byProxy = await connectAnswer(proxy.port, `${host}:${tlsPort}`);
      const proxyDecision = decisionOf(point.recorded.at(-1));
      const bySquid = squid.answer(`1 127.0.0.1 ${host}:${tlsPort} - CONNECT -`);
      const squidDecision = decisionOf(point.recorded.at(-1));
      expect(byProxy, host).toMatch(action === 'allow' ? /^HTTP\/1\.1 200 / : /^HTTP\/1\.1 403 /);
      expect(bySquid, host).toMatch(action === 'allow' ? /^1 OK / : /^1 ERR /);
      expect(squidDecision, host).toEqual(proxyDecision);
      expect(proxyDecision, host).toMatchObject({ host, action });
    }
    // The same entries block the sites' pages, where the path is seen, at both points.
    for (const host of ['whole-site.example', 'site-root.example']) {
      expect(statusOf(await viaProxy(`http://${host}:${originPort}/any/page`)), host).toBe(403);
      expect(squid.answer(`2 127.0.0.1 http://${host}/any/page - GET -`), host).toMatch(/^2 ERR .*tag=adult/);
    }
  });

  it('FI-01 CONNECT to an IP address is decided on the TLS server name: a blocked SNI is refused, an allowed one tunnelled', async () => {
    const base = ['-k', '-x', `http://127.0.0.1:${proxy.port}`];
    const before = tlsRequests;
    // --connect-to makes curl CONNECT to 127.0.0.1 while sending SNI adult.example.
    const blocked = await curl([...base, '--connect-to', `adult.example:${tlsPort}:127.0.0.1:${tlsPort}`, `https://adult.example:${tlsPort}/`]);
    expect(blocked.code).not.toBe(0);
    expect(blocked.stderr).toMatch(/access denied/i);
    expect(tlsRequests).toBe(before);
    const allowed = await curl([...base, '--connect-to', `fine.example:${tlsPort}:127.0.0.1:${tlsPort}`, `https://fine.example:${tlsPort}/`]);
    expect(allowed.stdout).toBe(`secure hello fine.example:${tlsPort}`);
    const last = point.recorded.filter((r) => r.rule !== 'default' || r.host === 'fine.example').slice(-2);
    expect(last.map((r) => [r.host, r.action])).toEqual([['adult.example', 'block'], ['fine.example', 'allow']]);
  });

  it('FI-10 CONNECT to an IP address that carries no TLS server name (a VPN, say) is closed', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    const text = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('connect', () => socket.write(`CONNECT 127.0.0.1:${tlsPort} HTTP/1.1\r\nHost: 127.0.0.1:${tlsPort}\r\n\r\nSSH-2.0-OpenSSH_9.2\r\n`));
      socket.on('data', (d) => (got += d.toString('latin1')));
      socket.on('close', () => resolve(got));
    });
    expect(text).toBe('HTTP/1.1 200 Connection Established\r\n\r\n');
    expect(point.recorded.at(-1)).toMatchObject({ host: '127.0.0.1', action: 'block', rule: 'no-server-name' });
  });

  it('AS-08 an .exe is refused for pupils (by its path, and by the origin’s content type or file name) and allowed for staff', async () => {
    const byPath = await viaProxy(`http://downloads.example:${originPort}/setup.exe`);
    expect(statusOf(byPath)).toBe(403);
    expect(bodyOf(byPath)).toContain('Programs and installers');
    expect(bodyOf(byPath)).toContain('downloading programs and installers is not allowed for Pupils');
    expect(bodyOf(byPath)).toContain('Request access');
    expect(seen.some((s) => s.url === '/setup.exe')).toBe(false);
    const byType = await viaProxy(`http://downloads.example:${originPort}/download?id=7`);
    expect(statusOf(byType)).toBe(403);
    expect(bodyOf(byType)).not.toContain('MZ program');
    const byName = await viaProxy(`http://downloads.example:${originPort}/file?id=8`);
    expect(statusOf(byName)).toBe(403);
    // A page and a script are not downloads.
    expect(statusOf(await viaProxy(`http://downloads.example:${originPort}/index.html`))).toBe(200);
    // Staff (another device address) may download.
    const staff = await viaProxy(`http://downloads.example:${originPort}/setup.exe`, ['--interface', '127.0.0.2']);
    expect(statusOf(staff)).toBe(200);
    expect(bodyOf(staff)).toBe('MZ program');
    expect(bodyOf(await viaProxy(`http://downloads.example:${originPort}/download?id=7`, ['--interface', '127.0.0.2']))).toBe('MZ program');
    expect(point.recorded.filter((r) => r.rule === 'download').map((r) => r.url)).toEqual([
      `http://downloads.example:${originPort}/setup.exe`,
      `http://downloads.example:${originPort}/download?id=7`,
      `http://downloads.example:${originPort}/file?id=8`,
    ]);
  });

  it('FI-09 SafeSearch on the proxy path: Google and YouTube go to the enforcing names, YouTube also gets YouTube-Restrict', async () => {
    resolved.length = 0;
    const google = await viaProxy(`http://www.google.com:${originPort}/search?q=volcanoes`);
    expect(statusOf(google)).toBe(200);
    expect(resolved).toContain('forcesafesearch.google.com');
    expect(seen.at(-1)!.headers.host).toBe(`www.google.com:${originPort}`);
    const youtube = await viaProxy(`http://www.youtube.com:${originPort}/results?search_query=volcanoes`, ['-H', 'YouTube-Restrict: Off']);
    expect(statusOf(youtube)).toBe(200);
    expect(resolved).toContain('restrict.youtube.com');
    expect(seen.at(-1)!.headers['youtube-restrict']).toBe('Strict');
    // Staff: SafeSearch off, YouTube moderate.
    resolved.length = 0;
    await viaProxy(`http://www.google.com:${originPort}/search?q=volcanoes`, ['--interface', '127.0.0.2']);
    expect(resolved).toEqual(['www.google.com']);
    await viaProxy(`http://m.youtube.com:${originPort}/`, ['--interface', '127.0.0.2']);
    expect(seen.at(-1)!.headers['youtube-restrict']).toBe('Moderate');
    // HTTPS: the tunnel goes to the enforcing name, as DNS would answer it.
    resolved.length = 0;
    const secure = await curl(['-k', '-x', `http://127.0.0.1:${proxy.port}`, `https://www.google.com:${tlsPort}/`]);
    expect(secure.stdout).toBe(`secure hello www.google.com:${tlsPort}`);
    expect(resolved).toEqual(['forcesafesearch.google.com']);
  });

  it('MO-01 every decision is recorded: client IP, device, person, time, host, full URL and search term', async () => {
    point.recorded.length = 0;
    await viaProxy(`http://www.google.com:${originPort}/search?q=how+to+bake+bread`);
    await viaProxy(`http://adult.example:${originPort}/x`);
    await curl(['-k', '-x', `http://127.0.0.1:${proxy.port}`, `https://secure.example:${tlsPort}/`]);
    expect(point.recorded).toEqual([
      { at: EVENING, point: 'proxy', clientIp: '127.0.0.1', deviceId: null, deviceName: 'LAB-PC-07', personId: null, username: 'pupil.one', host: 'www.google.com', url: `http://www.google.com:${originPort}/search?q=how+to+bake+bread`, searchTerm: 'how to bake bread', action: 'rewrite', category: null, rule: 'safe-search', policy: 'Pupils' },
      { at: EVENING, point: 'proxy', clientIp: '127.0.0.1', deviceId: null, deviceName: 'LAB-PC-07', personId: null, username: 'pupil.one', host: 'adult.example', url: `http://adult.example:${originPort}/x`, searchTerm: null, action: 'block', category: 'adult', rule: 'category', policy: 'Pupils' },
      { at: EVENING, point: 'proxy', clientIp: '127.0.0.1', deviceId: null, deviceName: 'LAB-PC-07', personId: null, username: 'pupil.one', host: 'secure.example', url: null, searchTerm: null, action: 'allow', category: null, rule: 'default', policy: 'Pupils' },
    ]);
  });

  it('FI-02 proxy authentication: 407 until signed in, a wrong password is refused, the signed-in person gets their policy', async () => {
    const p = `http://127.0.0.1:${authProxy.port}`;
    const anonymous = await curl(['-i', '-x', p, `http://adult.example:${originPort}/`]);
    expect(statusOf(anonymous)).toBe(407);
    expect(anonymous.stdout).toMatch(/^proxy-authenticate: Basic realm="Gatehouse web filter"/im);
    expect(statusOf(await curl(['-i', '-x', p, '--proxy-user', 'ms.khan:wrong', `http://adult.example:${originPort}/`]))).toBe(407);
    const tunnel = await curl(['-k', '-x', p, '-w', '%{http_connect}', `https://secure.example:${tlsPort}/`]);
    expect(tunnel.stdout).toBe('407');
    // Ms Khan's staff policy does not block Adult; the origin never sees her credentials.
    const staff = await curl(['-i', '-x', p, '--proxy-user', 'ms.khan:right-password', `http://adult.example:${originPort}/`]);
    expect(statusOf(staff)).toBe(200);
    expect(seen.at(-1)!.headers['proxy-authorization']).toBeUndefined();
    expect(authPoint.recorded.at(-1)).toMatchObject({ username: 'ms.khan', action: 'allow', policy: 'Staff' });
    const secure = await curl(['-k', '-x', p, '--proxy-user', 'ms.khan:right-password', `https://secure.example:${tlsPort}/`]);
    expect(secure.stdout).toBe(`secure hello secure.example:${tlsPort}`);
  });

  it('FI-01 reads the server name from a real ClientHello, waiting for all of it, and nothing from non-TLS bytes', async () => {
    // A real ClientHello from Node's TLS client, caught by a plain TCP server.
    const catcher = net.createServer();
    const port = await listen(catcher);
    const caught = new Promise<Buffer>((resolve) => catcher.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
    const client = tlsConnect({ host: '127.0.0.1', port, servername: 'adult.example' });
    client.on('error', () => undefined);
    const hello = await caught;
    catcher.close();
    expect(serverNameOf(hello.subarray(0, 3))).toBeUndefined();
    expect(serverNameOf(hello.subarray(0, hello.length - 1))).toBeUndefined();
    expect(serverNameOf(hello)).toBe('adult.example');
    expect(serverNameOf(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
  });
});

/** A CONNECT by hand, to read the proxy's whole answer. */
/** The proxy's answer to a CONNECT (status line and headers); the tunnel, if opened, is closed at once. */
function connectAnswer(port: number, target: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let got = '';
    socket.on('data', (d) => {
      got += d.toString('utf8');
      if (got.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', () => resolve(got));
  });
}

function rawConnect(port: number, target: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let got = '';
    socket.on('data', (d) => (got += d.toString('utf8')));
    socket.on('close', () => resolve(got));
    socket.on('error', () => resolve(got));
  });
}

describe('origin response reading', () => {
  it('FI-01 decodes a chunked body split anywhere, with extensions and trailers, and refuses malformed ones', () => {
    const wire = Buffer.from('4\r\nWiki\r\n5;ext=1\r\npedia\r\nD\r\n in\r\n\r\nchunks\r\n0\r\nExpires: never\r\n\r\n');
    for (let cut = 0; cut <= wire.length; cut++) {
      const d = new ChunkedDecoder();
      const out: Buffer[] = [];
      const first = d.push(wire.subarray(0, cut), (p) => out.push(Buffer.from(p)));
      const done = first || d.push(wire.subarray(cut), (p) => out.push(Buffer.from(p)));
      expect(done, `cut at ${cut}`).toBe(true);
      expect(d.error).toBe(false);
      expect(Buffer.concat(out).toString()).toBe('Wikipedia in\r\n\r\nchunks');
    }
    for (const bad of ['zz\r\n', '4\r\nWikiX\r\n', '\r\n']) {
      const d = new ChunkedDecoder();
      d.push(Buffer.from(bad), () => undefined);
      expect(d.error, bad).toBe(true);
    }
  });

  it('FI-01 refuses response heads that could smuggle: two lengths, folded lines, bad names', () => {
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked')).toMatchObject({ chunked: true, contentLength: -1 });
    expect(parseResponseHead('HTTP/1.0 200 OK\r\nContent-Length: 5')).toMatchObject({ http10: true, contentLength: 5 });
    expect(parseResponseHead('HTTP/1.1 404 Not Found\r\nConnection: close')).toMatchObject({ status: 404, reason: 'Not Found', close: true });
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6')).toThrow(/two different/);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nX-A: 1\r\n folded')).toThrow(/folded/);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nBad Name: 1')).toThrow(/header name/);
    expect(() => parseResponseHead('SSH-2.0-OpenSSH')).toThrow(/HTTP/);
  });
});
