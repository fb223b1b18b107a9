import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestinationGuard } from '../../src/filtering/proxy/guard.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * Finding 9 of issue 10, the proxy half: the filtering proxy inside a real `gatehouse serve` (the
 * built one), with curl and raw sockets as the clients. It used to serve any client and reach any
 * destination, /metrics on loopback included (its guard saw the proxy's 127.0.0.1). Now devices
 * outside GATEHOUSE_FILTER_CLIENT_NETWORKS are closed unanswered, and loopback, link-local,
 * unspecified and this server's own addresses are refused as destinations, however written and
 * after name resolution.
 */

interface CurlResult {
  code: number;
  status: number;
  body: string;
  stderr: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const cut = stdout.lastIndexOf('\n');
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut), stderr });
    });
  });
}

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Sends raw bytes from an optional local address; resolves with everything read until the proxy closes. */
function raw(port: number, bytes: string, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    let got = '';
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    socket.setTimeout(10_000, () => socket.destroy());
    socket.write(bytes);
  });
}

const ownLanAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i && !i.internal && i.family === 'IPv4')?.address;

let dir: string;
let server: ServerProcess;
let serverPort: number;
let proxyPort: number;
let allowedOrigin: http.Server;
let allowedPort: number;
let metricsReached = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-proxy-guard-'));
  // An origin on 127.0.0.2, which the school lets devices reach (GATEHOUSE_PROXY_ALLOWED_DESTINATIONS):
  // proof that the proxy forwards at all, so a refusal below is the guard and not the filter.
  allowedOrigin = http.createServer((req, res) => res.end(`origin ${req.url}`));
  await new Promise<void>((r) => allowedOrigin.listen(0, '127.0.0.2', () => r()));
  allowedPort = (allowedOrigin.address() as net.AddressInfo).port;
  serverPort = await freePort();
  proxyPort = await freePort();
  server = await startServerProcess(
    {
      GATEHOUSE_DATA_DIR: dir,
      GATEHOUSE_HOST: '127.0.0.1',
      GATEHOUSE_PORT: String(serverPort),
      GATEHOUSE_PROXY_PORT: String(proxyPort),
      GATEHOUSE_PROXY_CONNECT_PORTS: `443,80,${serverPort}`,
      GATEHOUSE_FILTER_CLIENT_NETWORKS: '127.0.0.1/32',
      GATEHOUSE_PROXY_ALLOWED_DESTINATIONS: '127.0.0.2/32',
    },
  );
  // The server's own /metrics, asked directly from this machine, works: the guard below is what stops the proxy.
  const direct = await curl([`http://127.0.0.1:${serverPort}/metrics`]);
  expect(direct.status).toBe(200);
  metricsReached = (direct.body.match(/route="\/metrics"/g) ?? []).length;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  allowedOrigin?.close();
  rmSync(dir, { recursive: true, force: true });
});

const viaProxy = (url: string, extra: string[] = []) => curl(['-x', `http://127.0.0.1:${proxyPort}`, ...extra, url]);

describe('the filtering proxy in `gatehouse serve`: who it serves and where it goes', () => {
  it('FI-01 forwards an allowed request (the proxy works, so refusals below are the guard’s)', async () => {
    const allowed = await viaProxy(`http://127.0.0.2:${allowedPort}/lesson`);
    expect(allowed).toMatchObject({ status: 200, body: 'origin /lesson' });
  });

  it('FI-01 attack: curl -x proxy http://127.0.0.1:<server>/metrics — and every other spelling of this machine — is refused, never reaching /metrics', async () => {
    const spellings = [
      `127.0.0.1:${serverPort}`,
      `localhost:${serverPort}`,
      `LOCALHOST.:${serverPort}`,
      `[::ffff:127.0.0.1]:${serverPort}`,
      `[::ffff:7f00:1]:${serverPort}`,
      `[::127.0.0.1]:${serverPort}`,
      `[64:ff9b::7f00:1]:${serverPort}`,
      `[2002:7f00:1::]:${serverPort}`,
      `[::1]:${serverPort}`,
      `2130706433:${serverPort}`,
      `0x7f.1:${serverPort}`,
      `127.1:${serverPort}`,
      `0177.0.0.1:${serverPort}`,
      `0.0.0.0:${serverPort}`,
      `0:${serverPort}`,
      `169.254.169.254`,
      ...(ownLanAddress ? [`${ownLanAddress}:${serverPort}`] : []),
    ];
    for (const host of spellings) {
      const r = await viaProxy(`http://${host}/metrics`);
      expect(r.status, host).toBe(403);
      expect(r.body, host).toContain('does not connect to');
      expect(r.body, host).not.toContain('gatehouse_');
    }
    // /metrics counts its own requests: none came through the proxy.
    const after = await curl([`http://127.0.0.1:${serverPort}/metrics`]);
    expect(after.body).toMatch(/gatehouse_proxy_refused_total\{reason="destination"\} (\d+)/);
    const refused = Number(/gatehouse_proxy_refused_total\{reason="destination"\} (\d+)/.exec(after.body)![1]);
    expect(refused).toBeGreaterThanOrEqual(spellings.length);
    const served = /gatehouse_http_request_duration_seconds_count\{method="GET",route="\/metrics",status="200"\} (\d+)/.exec(after.body);
    expect(Number(served?.[1] ?? 0)).toBe(1 + metricsReached);
  });

  it('FI-01 attack: CONNECT and a WebSocket upgrade to this machine are refused, by address and by name', async () => {
    for (const target of [`127.0.0.1:${serverPort}`, `localhost:${serverPort}`, `[::1]:${serverPort}`, ...(ownLanAddress ? [`${ownLanAddress}:${serverPort}`] : [])]) {
      const answer = await raw(proxyPort, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      expect(answer.split('\r\n')[0], target).toBe('HTTP/1.1 403 Forbidden');
      expect(answer, target).toContain('does not connect to');
    }
    const upgrade = await raw(proxyPort, `GET http://localhost:${serverPort}/api/info HTTP/1.1\r\nHost: localhost:${serverPort}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    expect(upgrade.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(upgrade).toContain('resolves to 127.0.0.1');
  });

  it('FI-01 attack: a device outside GATEHOUSE_FILTER_CLIENT_NETWORKS is closed unanswered, counted, and logged once a minute', async () => {
    const first = await curl(['--interface', '127.0.0.2', '-x', `http://127.0.0.1:${proxyPort}`, `http://127.0.0.2:${allowedPort}/lesson`]);
    expect(first.code).not.toBe(0);
    expect(first.status).toBe(0);
    const second = await raw(proxyPort, `GET http://127.0.0.2:${allowedPort}/lesson HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n`, '127.0.0.2');
    expect(second).toBe('');
    // The same request from a served address goes through.
    expect((await viaProxy(`http://127.0.0.2:${allowedPort}/lesson`)).status).toBe(200);
    const metrics = (await curl([`http://127.0.0.1:${serverPort}/metrics`])).body;
    expect(metrics).toMatch(/gatehouse_proxy_refused_total\{reason="client_network"\} 2\b/);
    await new Promise((r) => setTimeout(r, 200));
    const logged = server.logs.filter((l) => l.includes('filtering proxy refused 127.0.0.2'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: 40, proxy: { refused: 'client_network', client: '127.0.0.2' } });
  });
});

describe('destination rules', () => {
  it('FI-01 refuses loopback, link-local, metadata, unspecified, multicast, IPv6 forms carrying them and this server’s addresses; allows the intranet unless refused; the allowed list wins', () => {
    const guard = new DestinationGuard({ ownAddresses: ['198.51.100.7'] });
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '0.0.0.0', '::', '169.254.169.254', 'fe80::1', 'fe80::1%eth0', '224.0.0.251', 'ff02::1', '255.255.255.255', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', 'fd00:ec2::254', '100.100.100.200', '198.51.100.7', ...(ownLanAddress ? [ownLanAddress] : [])]) {
      expect(guard.check(address), address).not.toBeNull();
    }
    for (const address of ['93.184.216.34', '2606:4700::1111', '10.1.2.3', '172.20.0.5', '192.168.1.1', 'fd12::5', '100.64.0.1']) {
      expect(guard.check(address), address).toBeNull();
    }
    const closed = new DestinationGuard({ refused: ['10.0.0.0/8', 'fc00::/7'], allowed: ['10.9.9.9/32', '127.0.0.2/32'] });
    expect(closed.check('10.1.2.3')).toMatch(/GATEHOUSE_PROXY_REFUSED_DESTINATIONS/);
    expect(closed.check('fd12::5')).not.toBeNull();
    expect(closed.check('10.9.9.9')).toBeNull();
    expect(closed.check('127.0.0.2')).toBeNull();
    expect(closed.check('::ffff:127.0.0.2')).toBeNull();
    expect(closed.opened()).toEqual(['127.0.0.2/32']);
  });

  it('FI-01 attack: DNS rebinding — a name is checked after resolution and connected to only at an address that was checked', async () => {
    // The first answer is public, the second loopback: whatever order, only the checked address is used.
    const answers = [[{ address: '127.0.0.1', family: 4 }], [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }]];
    let call = 0;
    const guard = new DestinationGuard({
      lookup: ((_host: string, _options: object, cb: (e: null, a: Array<{ address: string; family: number }>) => void) => cb(null, answers[call++ % answers.length]!)) as never,
    });
    const resolve = () => new Promise<{ error: NodeJS.ErrnoException | null; addresses: unknown }>((r) => guard.lookup('rebind.example', { all: true }, (error, addresses) => r({ error, addresses })));
    const first = await resolve();
    expect(first.error?.code).toBe('EDESTREFUSED');
    expect(first.error?.message).toBe('rebind.example resolves to 127.0.0.1, an address of this machine (loopback)');
    expect((await resolve()).addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });
});
