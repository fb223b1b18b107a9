import { execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/filtering/engine/snapshot.js';
import { StaticFilterPoint } from '../../src/filtering/point.js';
import { nativeUdpUnavailable } from '../../src/filtering/dns/native-udp.js';
import { OUTSIDE_ANSWERS_PER_SECOND, startDnsServer, type DnsServerHandle, type DnsServerOptions } from '../../src/filtering/dns/server.js';
import { childEnv, GATEHOUSE_BIN, ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { startStubUpstream, type StubUpstream } from '../helpers/dns-upstream.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * Finding 9 of issue 10, the DNS half: the protective resolver answered anyone who could reach it
 * (an open resolver when listening on 0.0.0.0). Now only devices in GATEHOUSE_FILTER_CLIENT_NETWORKS
 * (default loopback and the private ranges) are answered. Others get REFUSED over UDP, as unbound's
 * access-control does by default for networks it was not told about (budgeted per address, never
 * larger than the query), or nothing with GATEHOUSE_DNS_OUTSIDE_CLIENTS=drop; a TCP connection from
 * outside is closed at once. Every refusal is counted (gatehouse_dns_refused_total) and logged once a
 * minute per address. The attacker is real `dig` bound to 127.0.0.2 (`-b`), the resolver the real one,
 * configured to serve 127.0.0.1/32 only.
 */

interface Dig {
  code: number;
  status: string;
  answers: number;
  stdout: string;
}

/** dig from `from`; never rejects (a refused TCP connection or a timeout is a non-zero exit). */
function dig(port: number, args: string[], from?: string): Promise<Dig> {
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', ...(from ? ['-b', from] : []), ...args], { encoding: 'utf8' }, (error, stdout) => {
      const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '';
      const answers = Number(/ANSWER: (\d+)/.exec(stdout)?.[1] ?? 0);
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, status, answers, stdout });
    });
  });
}

function makePoint(): StaticFilterPoint {
  const snapshot = compileSnapshot({
    timeZone: 'Europe/London',
    categories: [{ id: 'games', name: 'Games', description: '', kind: 'category', domains: ['games.example'] }],
    policies: [{ id: 'pupils', name: 'Pupils', blockedCategories: ['games'], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
  });
  return new StaticFilterPoint(snapshot, { unknownPolicy: 'pupils' });
}

/** A query as dig would send it (EDNS(0) with a cookie-less OPT), for raw floods. */
function query(name: string, id: number, edns = true): Buffer {
  return dnsPacket.encode({
    id,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: 'A' }],
    ...(edns ? { additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer] } : {}),
  });
}

/** Sends `count` queries from `from` and collects every answer that arrives within `waitMs`. */
async function flood(port: number, from: string, count: number, make: (i: number) => Buffer, waitMs = 1500): Promise<Array<{ sent: number; answer: Buffer }>> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  const sizes = new Map<number, number>();
  const answers: Array<{ sent: number; answer: Buffer }> = [];
  socket.on('message', (answer) => answers.push({ sent: sizes.get(answer.readUInt16BE(0)) ?? -1, answer }));
  for (let i = 0; i < count; i++) {
    const msg = make(i);
    sizes.set(msg.readUInt16BE(0), msg.length);
    socket.send(msg, port, '127.0.0.1');
  }
  await new Promise((r) => setTimeout(r, waitMs));
  socket.close();
  return answers;
}

// A fixed clock: no rate budget refills while a test runs, so the counts below are exact.
const clockMs = Date.parse('2026-09-07T10:00:00Z');
const now = () => clockMs;

const batchedMissing = nativeUdpUnavailable();

for (const transport of ['batched', 'dgram'] as const) {
  describe.skipIf(transport === 'batched' && batchedMissing !== null)(`the resolver serves only its client networks (${transport} UDP)`, () => {
    let upstream: StubUpstream;
    const servers: DnsServerHandle[] = [];
    const warnings: Array<{ fields: object; message: string }> = [];
    const logger = { warn: (fields: object, message: string) => warnings.push({ fields, message }) };

    async function start(options: Partial<DnsServerOptions>, point = makePoint()): Promise<{ server: DnsServerHandle; point: StaticFilterPoint }> {
      const server = await startDnsServer(point, { host: '127.0.0.1', port: 0, upstreams: [upstream.spec], now, udpTransport: transport, logger, ...options });
      servers.push(server);
      return { server, point };
    }

    beforeAll(async () => {
      upstream = await startStubUpstream({ synthesize: true });
    });
    afterAll(async () => {
      for (const s of servers) await s.close();
      await upstream.close();
    });

    it('FI-01 attack: dig from 127.0.0.2 at a resolver serving 127.0.0.1/32 gets REFUSED over UDP and a closed connection over TCP; nothing is decided, recorded or asked upstream; counted and logged once', async () => {
      warnings.length = 0;
      const { server, point } = await start({ clientNetworks: ['127.0.0.1/32'] });
      const askedBefore = upstream.queries.length;
      const outside = await dig(server.port, ['open-resolver-probe.example'], '127.0.0.2');
      expect(outside.status).toBe('REFUSED');
      expect(outside.answers).toBe(0);
      const blocked = await dig(server.port, ['www.games.example'], '127.0.0.2');
      expect(blocked.status).toBe('REFUSED');
      // TCP from outside: closed at accept, nothing read, no answer.
      const overTcp = await dig(server.port, ['open-resolver-probe.example', '+tcp'], '127.0.0.2');
      expect(overTcp.code).not.toBe(0);
      expect(overTcp.status).toBe('');
      const raw = await new Promise<string>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.2' });
        let got = '';
        socket.on('data', (d) => (got += d.toString('hex')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(got));
        socket.setTimeout(5000, () => socket.destroy());
      });
      expect(raw).toBe('');
      expect(upstream.queries.length).toBe(askedBefore);
      expect(point.recorded).toEqual([]);
      // The same questions from the served address are answered.
      expect((await dig(server.port, ['open-resolver-probe.example'], '127.0.0.1')).status).toBe('NOERROR');
      expect((await dig(server.port, ['open-resolver-probe.example', '+tcp'], '127.0.0.1')).answers).toBe(1);
      expect((await dig(server.port, ['www.games.example'], '127.0.0.1')).status).toBe('NXDOMAIN');
      const stats = server.stats();
      expect(stats.refused.client_network).toBe(4);
      expect(stats.queries).toBe(3);
      const refusals = warnings.filter((w) => w.message.startsWith('DNS resolver refused 127.0.0.2'));
      expect(refusals).toHaveLength(1);
      expect(refusals[0]!.fields).toEqual({ dns: { refused: 'client_network', client: '127.0.0.2' } });
    });

    it('FI-01 attack: with outsideClients "drop", dig from outside gets no answer at all; with the default networks 127.0.0.2 is served', async () => {
      const { server } = await start({ clientNetworks: ['127.0.0.1/32'], outsideClients: 'drop' });
      const outside = await dig(server.port, ['probe.example'], '127.0.0.2');
      expect(outside.code).not.toBe(0);
      expect(outside.stdout).toMatch(/timed out|no servers could be reached/);
      expect(server.stats().refused.client_network).toBe(1);
      const open = await start({});
      expect((await dig(open.server.port, ['probe.example'], '127.0.0.2')).status).toBe('NOERROR');
      expect(open.server.stats().refused.client_network).toBe(0);
    });

    it(`FI-01 attack: a reflection flood from outside (spoofed victim 127.0.0.2) gets at most ${OUTSIDE_ANSWERS_PER_SECOND} REFUSED answers a second, none larger than its query`, async () => {
      const { server } = await start({ clientNetworks: ['127.0.0.1/32'] });
      const answers = await flood(server.port, '127.0.0.2', 200, (i) => query(`amp${i}.example`, 1000 + i, i % 2 === 0));
      // The clock stands still: exactly the budget is answered, the rest dropped.
      expect(answers).toHaveLength(OUTSIDE_ANSWERS_PER_SECOND);
      for (const { sent, answer } of answers) {
        expect(answer[3]! & 0xf).toBe(5); // REFUSED
        expect(answer[2]! & 0x80).toBe(0x80); // QR: an answer
        expect(dnsPacket.decode(answer).questions).toHaveLength(1);
        expect(answer.length).toBeLessThanOrEqual(sent);
      }
      expect(server.stats().refused.client_network).toBe(200);
      // Junk from outside is never answered (no FORMERR to reflect either).
      const junk = await flood(server.port, '127.0.0.3', 20, (i) => Buffer.concat([Buffer.from([i, i, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 500);
      expect(junk).toEqual([]);
    });

    it('FI-01 attack: one served device flooding past clientRateLimit has the rest of its queries dropped and counted; other devices are still answered', async () => {
      const { server } = await start({ clientRateLimit: 5 });
      const answers = await flood(server.port, '127.0.0.1', 40, (i) => query(`flood${i}.example`, 2000 + i));
      expect(answers).toHaveLength(5);
      expect(server.stats().refused.rate_limit).toBe(35);
      expect((await dig(server.port, ['other-device.example'], '127.0.0.3')).status).toBe('NOERROR');
      expect(warnings.filter((w) => w.message.startsWith('DNS resolver refused 127.0.0.1: more than 5 queries a second'))).toHaveLength(1);
    });

    it('FI-01 warns at start when listening on every interface (0.0.0.0, ::) with the default client networks, naming them; not when they are given', async () => {
      warnings.length = 0;
      await start({ host: '0.0.0.0' });
      expect(warnings.map((w) => w.message)).toEqual([
        "the DNS resolver listens on every interface (0.0.0.0) and serves devices in the default networks 127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7, fe80::/10; name the school's own networks with GATEHOUSE_FILTER_CLIENT_NETWORKS (or --client-networks) so nothing else can use it",
      ]);
      warnings.length = 0;
      await start({ host: '::' });
      expect(warnings[0]?.message).toContain('the DNS resolver listens on every interface (::)');
      warnings.length = 0;
      await start({ host: '0.0.0.0', clientNetworks: ['10.20.0.0/16', '127.0.0.1/32'] });
      await start({ host: '127.0.0.1' });
      expect(warnings).toEqual([]);
    });
  });
}

describe('TCP: one device cannot hold every connection, nor make the resolver copy without end', () => {
  let upstream: StubUpstream;
  let server: DnsServerHandle;
  const warnings: string[] = [];
  beforeAll(async () => {
    upstream = await startStubUpstream({ synthesize: true });
    server = await startDnsServer(makePoint(), { host: '127.0.0.1', port: 0, upstreams: [upstream.spec], now, maxTcpConnectionsPerClient: 3, tcpIdleTimeoutMs: 30_000, logger: { warn: (_f, m) => warnings.push(m) } });
  });
  afterAll(async () => {
    await server.close();
    await upstream.close();
  });

  /** A TCP connection from `from` that has had one query answered (so the resolver has accepted it), or null when closed unanswered. */
  function held(from: string): Promise<net.Socket | null> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: server.port, localAddress: from });
      socket.on('error', () => undefined);
      socket.once('data', () => resolve(socket));
      socket.once('close', () => resolve(null));
      const q = query('held.example', 77);
      const framed = Buffer.alloc(q.length + 2);
      framed.writeUInt16BE(q.length);
      q.copy(framed, 2);
      socket.write(framed);
    });
  }

  it('FI-01 attack: a device opening more than maxTcpConnectionsPerClient connections has the extra ones closed at accept, counted; other devices still get TCP answers', async () => {
    const mine = await Promise.all([held('127.0.0.2'), held('127.0.0.2'), held('127.0.0.2')]);
    expect(mine.every((s) => s !== null)).toBe(true);
    expect(await held('127.0.0.2')).toBeNull();
    expect(await held('127.0.0.2')).toBeNull();
    expect(server.stats().refused.tcp_connections).toBe(2);
    expect(warnings.filter((w) => w.startsWith('DNS resolver refused 127.0.0.2: one TCP connection too many'))).toHaveLength(1);
    expect((await dig(server.port, ['other.example', '+tcp'], '127.0.0.3')).answers).toBe(1);
    // One closed: the device may open another.
    mine[0]!.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const again = await held('127.0.0.2');
    expect(again).not.toBeNull();
    for (const s of [...mine, again]) s?.destroy();
  });

  it('FI-01 attack: a 1.5 KB query sent a byte at a time over TCP is joined once (linear copying, not a copy of everything so far per byte) and answered', async () => {
    // A query whose additional section carries a 1,500-byte record (skipped by the parser).
    const big = Buffer.concat([query('slow.example', 99, false), Buffer.from([0, 0, 250, 0, 255, 0, 0, 0, 0, 1500 >> 8, 1500 & 0xff]), Buffer.alloc(1500, 7)]);
    big.writeUInt16BE(1, 10); // ARCOUNT 1
    const framed = Buffer.alloc(big.length + 2);
    framed.writeUInt16BE(big.length);
    big.copy(framed, 2);
    // Every join the resolver makes, by the bytes it copies (Buffer.concat, wrapped for the test).
    const original = Buffer.concat;
    const joins: number[] = [];
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      const out = original(list, total);
      joins.push(out.length);
      return out;
    }) as typeof Buffer.concat;
    let answer: Buffer | null = null;
    try {
      const socket = net.connect({ host: '127.0.0.1', port: server.port, noDelay: true });
      socket.on('error', () => undefined);
      const got = new Promise<Buffer>((resolve) => socket.once('data', (d) => resolve(d)));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // A byte, then a pause long enough for the resolver to read it on its own.
      for (let i = 0; i < framed.length; i++) {
        socket.write(framed.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
      answer = await got;
      socket.destroy();
    } finally {
      Buffer.concat = original;
    }
    const copied = joins.reduce((sum, n) => sum + n, 0);
    expect(copied).toBeLessThan(10 * framed.length);
    expect(answer!.readUInt16BE(2)).toBe(99);
    expect(answer![5]! & 0xf).toBe(0); // NOERROR
  });
});

describe('`gatehouse serve` and `gatehouse dns` refuse devices outside the client networks', () => {
  let dir: string;
  let upstream: StubUpstream;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-dns-clients-'));
    upstream = await startStubUpstream({ synthesize: true });
  });
  afterAll(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('FI-01 attack: dig from 127.0.0.2 at the resolver in `serve` with GATEHOUSE_FILTER_CLIENT_NETWORKS=127.0.0.1/32 is REFUSED, counted in /metrics and logged', async () => {
    const dnsPort = await freePort();
    let server: ServerProcess | null = null;
    try {
      server = await startServerProcess(
        { GATEHOUSE_DATA_DIR: dir, GATEHOUSE_HOST: '127.0.0.1', GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: upstream.spec, GATEHOUSE_FILTER_CLIENT_NETWORKS: '127.0.0.1/32' },
        { timeoutMs: 90_000 },
      );
      expect((await dig(dnsPort, ['probe.example'], '127.0.0.2')).status).toBe('REFUSED');
      expect((await dig(dnsPort, ['probe.example'], '127.0.0.2')).status).toBe('REFUSED');
      expect((await dig(dnsPort, ['probe.example'], '127.0.0.1')).status).toBe('NOERROR');
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/gatehouse_dns_refused_total\{reason="client_network"\} 2\b/);
      expect(metrics).toMatch(/gatehouse_dns_refused_total\{reason="rate_limit"\} 0\b/);
      await new Promise((r) => setTimeout(r, 200));
      const logged = server.logs.filter((l) => l.includes('DNS resolver refused 127.0.0.2'));
      expect(logged).toHaveLength(1);
      expect(JSON.parse(logged[0]!)).toMatchObject({ level: 40, dns: { refused: 'client_network', client: '127.0.0.2' } });
    } finally {
      await server?.stop();
    }
  }, 150_000);

  it('FI-01 attack: `gatehouse dns --client-networks 127.0.0.1/32` refuses dig from 127.0.0.2; on 0.0.0.0 without a list it warns at start, once for all workers', async () => {
    writeFileSync(path.join(dir, 'policies.yaml'), ['unknownPolicy: pupils', 'policies:', '  - { id: pupils, name: Pupils }'].join('\n'));
    const run = async (extra: string[], check: (port: number, output: () => string) => Promise<void>) => {
      const port = await freePort();
      const child = spawn(process.execPath, [GATEHOUSE_BIN, 'dns', '--policies', path.join(dir, 'policies.yaml'), '--upstream', upstream.spec, '--port', String(port), ...extra], {
        cwd: ROOT,
        env: childEnv({}),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      try {
        const started = Date.now();
        while (!output.includes('answering on')) {
          if (Date.now() - started > 90_000 || child.exitCode !== null) throw new Error(`gatehouse dns did not start:\n${output}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await check(port, () => output);
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    };
    await run(['--host', '127.0.0.1', '--workers', '1', '--client-networks', '127.0.0.1/32'], async (port, output) => {
      expect((await dig(port, ['probe.example'], '127.0.0.2')).status).toBe('REFUSED');
      expect((await dig(port, ['probe.example'], '127.0.0.1')).status).toBe('NOERROR');
      expect(output()).toContain('gatehouse dns: warning: DNS resolver refused 127.0.0.2: a device outside the networks the resolver serves');
      expect(output()).not.toContain('listens on every interface');
    });
    await run(['--host', '0.0.0.0', '--workers', '2'], async (_port, output) => {
      await new Promise((r) => setTimeout(r, 300));
      expect(output().match(/gatehouse dns: warning: the DNS resolver listens on every interface \(0\.0\.0\.0\) and serves devices in the default networks 127\.0\.0\.0\/8/g)).toHaveLength(1);
    });
  }, 240_000);
});

