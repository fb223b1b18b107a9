import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, ROOT } from '../helpers/cli.js';

/**
 * Finding 9 of issue 10, the caps: the real `gatehouse proxy` (built), attacked with raw sockets.
 * Connections per device and in total, the size of a request head, and the time a head may take
 * (slowloris) are capped; each refusal is a clear HTTP answer where one can be given, then a close.
 */

let dir: string;
let origin: http.Server;
let originPort: number;
const running: ChildProcess[] = [];

interface Proxy {
  port: number;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<string>;
}

async function startProxy(args: string[]): Promise<Proxy> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'proxy', '--policy', path.join(dir, 'filter.yaml'), '--port', '0', ...args], {
    cwd: ROOT,
    env: childEnv({ GATEHOUSE_PROXY_ALLOWED_DESTINATIONS: '127.0.0.2/32' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 30_000);
    child.stderr!.on('data', () => {
      const m = /ready on [^ ]*:(\d+):/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    port,
    child,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return stderr;
    },
  };
}

interface Held {
  socket: net.Socket;
  /** everything read until the proxy closed */
  closed: Promise<string>;
}

function open(port: number, localAddress = '127.0.0.1'): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let got = '';
    socket.on('data', (d) => (got += d.toString('latin1')));
    const closed = new Promise<string>((r) => socket.on('close', () => r(got)));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve({ socket, closed });
    });
  });
}

const ask = (held: Held, request: string) => {
  held.socket.write(request);
  return held.closed;
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-proxy-limits-'));
  origin = http.createServer((req, res) => res.end(`origin ${req.url}`));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.2', () => r()));
  originPort = (origin.address() as net.AddressInfo).port;
  writeFileSync(
    path.join(dir, 'filter.yaml'),
    `timeZone: Europe/London
unknownPolicy: pupils
lists:
  - { id: gambling, name: Gambling, kind: category, domains: [casino.example] }
policies:
  pupils: { name: Pupils, blockedCategories: [gambling] }
`,
  );
});

afterAll(() => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

const GET = () => `GET http://127.0.0.2:${originPort}/lesson HTTP/1.1\r\nHost: 127.0.0.2:${originPort}\r\nConnection: close\r\n\r\n`;

describe('gatehouse proxy: connection and request caps', () => {
  it('FI-01 attack: one device past --max-connections-per-client is answered 429 and closed, other devices are served, and past --max-connections everyone gets 503', async () => {
    const proxy = await startProxy(['--host', '127.0.0.1', '--client-networks', '127.0.0.0/8', '--max-connections-per-client', '4', '--max-connections', '6', '--head-timeout', '60']);
    try {
      const mine = await Promise.all(Array.from({ length: 4 }, () => open(proxy.port)));
      const fifth = await open(proxy.port);
      const refused = await ask(fifth, GET());
      expect(refused.split('\r\n')[0]).toBe('HTTP/1.1 429 Too Many Requests');
      expect(refused).toContain('Retry-After: 5');
      expect(refused).toContain('too many connections open');
      // Another device is still served, up to the proxy's total…
      const theirs = await Promise.all([open(proxy.port, '127.0.0.3'), open(proxy.port, '127.0.0.3')]);
      const third = await open(proxy.port, '127.0.0.4');
      const busy = await ask(third, GET());
      expect(busy.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
      // …and a connection that closes frees its place.
      mine[0]!.socket.destroy();
      await mine[0]!.closed;
      await new Promise((r) => setTimeout(r, 100));
      const again = await open(proxy.port);
      expect((await ask(again, GET())).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      for (const held of [...mine, ...theirs]) held.socket.destroy();
      const stopped = await proxy.stop();
      expect(stopped).toMatch(/refused: .*1 client connections.*1 total connections/);
    } finally {
      proxy.child.kill('SIGKILL');
    }
  }, 60_000);

  it('FI-01 attack: a 64 KiB header is answered 431 and closed (default cap 16 KiB), and --max-header-bytes sets the cap', async () => {
    const proxy = await startProxy(['--host', '127.0.0.1']);
    const small = await startProxy(['--host', '127.0.0.1', '--max-header-bytes', '4096']);
    try {
      const huge = `GET http://127.0.0.2:${originPort}/ HTTP/1.1\r\nHost: 127.0.0.2\r\nX-Padding: ${'a'.repeat(64 * 1024)}\r\n\r\n`;
      expect((await ask(await open(proxy.port), huge)).split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      const eightK = `GET http://127.0.0.2:${originPort}/ HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: close\r\nX-Padding: ${'a'.repeat(8 * 1024)}\r\n\r\n`;
      expect((await ask(await open(proxy.port), eightK)).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect((await ask(await open(small.port), eightK)).split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expect(await small.stop()).toMatch(/refused: 1 header too large/);
    } finally {
      proxy.child.kill('SIGKILL');
      small.child.kill('SIGKILL');
    }
  }, 60_000);

  it('FI-01 attack: slowloris — a head sent a byte at a time, and a connection that sends nothing, are answered 408 and closed after --head-timeout', async () => {
    const proxy = await startProxy(['--host', '127.0.0.1', '--head-timeout', '2']);
    try {
      // 4 bytes a second: the whole head would take over a minute; the proxy must not wait for it.
      const head = `GET http://127.0.0.2:${originPort}/ HTTP/1.1\r\nHost: 127.0.0.2\r\nUser-Agent: slow\r\nAccept: */*\r\nX-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\nX-Four: 4\r\nX-Padding: ${'p'.repeat(120)}\r\n\r\n`;
      expect(head.length).toBeGreaterThan(240);
      const slow = await open(proxy.port);
      let sent = 0;
      const drip = setInterval(() => {
        if (slow.socket.destroyed || sent >= head.length) return clearInterval(drip);
        slow.socket.write(head[sent++]!);
      }, 250);
      const silent = await open(proxy.port);
      const [slowAnswer, silentAnswer] = await Promise.all([slow.closed, silent.closed]);
      clearInterval(drip);
      expect(sent).toBeLessThan(head.length);
      expect(slowAnswer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(silentAnswer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(await proxy.stop()).toMatch(/refused: 2 head timeout/);
    } finally {
      proxy.child.kill('SIGKILL');
    }
  }, 60_000);

  it('FI-01 warns at start when it listens on every interface with the default client networks, naming them; not when they are given', async () => {
    const open1 = await startProxy(['--host', '0.0.0.0']);
    const warned = await open1.stop();
    expect(warned).toContain('warning: the filtering proxy listens on every interface (0.0.0.0) and serves devices in the default networks 127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7, fe80::/10');
    expect(warned).toContain('GATEHOUSE_FILTER_CLIENT_NETWORKS');
    const named = await startProxy(['--host', '0.0.0.0', '--client-networks', '10.20.0.0/16,127.0.0.1/32']);
    const quiet = await named.stop();
    expect(quiet).not.toContain('listens on every interface');
    // The exception for the test origin is announced too.
    expect(quiet).toContain('the filtering proxy may reach 127.0.0.2/32, which it otherwise refuses');
  }, 60_000);

  it('FI-01 refuses a bad --client-networks with a clear message', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'proxy', '--policy', path.join(dir, 'filter.yaml'), '--client-networks', 'school'], { cwd: ROOT, env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code).toBe(2);
    expect(stderr).toContain('--client-networks must be networks in CIDR form separated by commas');
  }, 30_000);
});
