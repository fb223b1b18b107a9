import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/filtering/engine/snapshot.js';
import { StaticFilterPoint } from '../../src/filtering/point.js';
import { nativeUdpUnavailable } from '../../src/filtering/dns/native-udp.js';
import { startDnsServer, type DnsServerHandle, type DnsServerOptions } from '../../src/filtering/dns/server.js';
import { startStubUpstream, type StubUpstream } from '../helpers/dns-upstream.js';

/**
 * Issue 10, finding 10: the forwarder must not be poisonable by an off-path attacker. Real sockets,
 * real dig, a real (stub) upstream that answers late, and forged answers sent from the upstream's own
 * socket (a spoofed source, as an attacker on the path's side would) and from other addresses and ports.
 */

const run = promisify(execFile);

async function dig(port: number, args: string[]): Promise<{ status: string; addresses: string[]; raw: string }> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', ...args]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '';
  const addresses = [...stdout.matchAll(/\sIN\s+A\s+(\S+)$/gm)].map((m) => m[1]!);
  return { status, addresses, raw: stdout };
}

function point() {
  const snapshot = compileSnapshot({
    timeZone: 'Europe/London',
    categories: [{ id: 'adult', name: 'Adult', description: '', kind: 'category', domains: ['adult.example'] }],
    policies: [{ id: 'all', name: 'All', blockedCategories: ['adult'], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
  });
  return new StaticFilterPoint(snapshot, { unknownPolicy: 'all', clients: {} });
}

const REAL = '192.0.2.10';
const FORGED = '203.0.113.66';
const TARGET = 'www.online-bank.example';

/** The same name with one letter's case flipped: what a forger who ignores 0x20 would send. */
function otherCase(name: string): string {
  const i = [...name].findIndex((c) => /[a-z]/i.test(c));
  const c = name[i]!;
  return name.slice(0, i) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + name.slice(i + 1);
}

function forged(id: number, name: string, type: 'A' | 'AAAA' = 'A', klass: 'IN' | 'CH' = 'IN'): Buffer {
  return dnsPacket.encode({
    id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name, type, class: klass }],
    answers: [{ name, type: 'A', class: 'IN', ttl: 86_400, data: FORGED }],
  } as dnsPacket.Packet);
}

const batchedMissing = nativeUdpUnavailable();

for (const transport of ['batched', 'dgram'] as const) {
  describe.skipIf(transport === 'batched' && batchedMissing !== null && !process.env.CI)(`DNS forwarder against forged answers (${transport} UDP)`, () => {
    const servers: DnsServerHandle[] = [];
    const upstreams: StubUpstream[] = [];
    const sockets: dgram.Socket[] = [];

    async function start(options: Partial<DnsServerOptions> & Pick<DnsServerOptions, 'upstreams'>): Promise<DnsServerHandle> {
      const s = await startDnsServer(point(), { host: '127.0.0.1', port: 0, udpTransport: transport, ...options });
      servers.push(s);
      return s;
    }
    async function bind(address: string, port = 0): Promise<dgram.Socket> {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, address, () => resolve());
      });
      sockets.push(socket);
      return socket;
    }

    afterAll(async () => {
      for (const s of servers) await s.close();
      for (const u of upstreams) await u.close();
      for (const s of sockets) s.close();
    });

    it('FI-01 attack: forged answers racing the real one (other address, other port, wrong ID, wrong case, other name, type or class) are dropped; the client gets the real answer and the cache is not poisoned', async () => {
      const elsewhere = await bind('127.0.0.1');
      let upstream!: StubUpstream;
      let attacked = 0;
      let sameAddressOtherHost: dgram.Socket | null = null;
      upstream = await startStubUpstream({
        records: { [TARGET]: [{ type: 'A', data: REAL, ttl: 300 }] },
        delayMs: 300,
        onUdpQuery: (msg, rinfo, upstreamSocket) => {
          const query = dnsPacket.decode(msg);
          const asked = query.questions![0]!.name;
          if (asked.toLowerCase() !== TARGET) return;
          attacked++;
          const to = (packet: Buffer, from: dgram.Socket) => from.send(packet, rinfo.port, rinfo.address);
          // Everything right, but from another port on the upstream's address, and from the upstream's port on another address.
          to(forged(query.id!, asked), elsewhere);
          if (sameAddressOtherHost) to(forged(query.id!, asked), sameAddressOtherHost);
          // From the upstream's own address and port (a spoofed source): the wrong ID…
          to(forged((query.id! + 1) & 0xffff, asked), upstreamSocket);
          // …the right ID, but the name in another case (0x20 not echoed), another name, another type, another class.
          to(forged(query.id!, otherCase(asked)), upstreamSocket);
          to(forged(query.id!, TARGET.toLowerCase() === asked ? TARGET.toUpperCase() : TARGET), upstreamSocket);
          to(forged(query.id!, 'evil.example'), upstreamSocket);
          to(forged(query.id!, asked, 'AAAA'), upstreamSocket);
          to(forged(query.id!, asked, 'A', 'CH'), upstreamSocket);
        },
      });
      upstreams.push(upstream);
      sameAddressOtherHost = await bind('127.0.0.2', upstream.port).catch(() => null);
      // The real answer comes after 300 ms: before the resend (at a quarter of the 2 s timeout).
      const s = await start({ upstreams: [upstream.spec], upstreamTimeoutMs: 2000 });

      const first = await dig(s.port, [TARGET]);
      expect(attacked).toBe(1);
      expect(first.status).toBe('NOERROR');
      expect(first.addresses).toEqual([REAL]);
      // The cache holds the real answer: asked again, nothing goes upstream and nothing forged comes back.
      const again = await dig(s.port, [TARGET]);
      expect(again.addresses).toEqual([REAL]);
      expect(upstream.count(TARGET)).toBe(1);
      const rejected = s.stats().upstreamRejected;
      expect(rejected.source).toBeGreaterThanOrEqual(sameAddressOtherHost ? 2 : 1);
      expect(rejected.id).toBeGreaterThanOrEqual(1);
      expect(rejected.question).toBeGreaterThanOrEqual(5);
    });

    it('FI-01 attack: source ports and IDs are not predictable — queries leave from many ports, sockets are replaced by new ports, IDs vary, names are asked in random case', async () => {
      const upstream = await startStubUpstream({ synthesize: true });
      upstreams.push(upstream);
      const names = Array.from({ length: 60 }, (_, i) => `port-check-${i}.example`);

      // Defaults: a pool of 16 sockets, one picked at random per query.
      const s = await start({ upstreams: [upstream.spec] });
      const answered = await dig(s.port, names.slice(0, 30));
      expect(answered.raw.match(/status: NOERROR/g)).toHaveLength(30);
      const ports = new Set(upstream.queries.map((q) => q.port));
      expect(ports.size).toBeGreaterThanOrEqual(5);
      expect(ports.has(s.port)).toBe(false);

      // A small pool whose sockets are replaced after 5 queries: more ports than the pool holds.
      const rotating = await start({ upstreams: [upstream.spec], upstreamSockets: 4, upstreamSocketUses: 5 });
      const before = upstream.queries.length;
      await dig(rotating.port, names.slice(30));
      const seen = upstream.queries.slice(before);
      expect(seen).toHaveLength(30);
      expect(new Set(seen.map((q) => q.port)).size).toBeGreaterThan(4);
      expect(rotating.stats().upstreamSourcePorts.length).toBeLessThanOrEqual(4 + 4);

      // IDs: 60 queries, (almost) all different; names: letters in random case, never all as the client wrote them.
      const all = upstream.queries.filter((q) => q.name.startsWith('port-check-'));
      expect(all).toHaveLength(60);
      expect(new Set(all.map((q) => q.id)).size).toBeGreaterThanOrEqual(57);
      const mixed = all.filter((q) => q.asked !== q.name);
      expect(mixed.length).toBeGreaterThanOrEqual(58);
      // The client sees the name as it asked.
      expect(answered.raw).toContain('port-check-0.example.');
    });

    it('FI-01 a truncated answer is asked again over TCP with the same random-case question, and accepted only when it echoes it', async () => {
      const upstream = await startStubUpstream({ synthesize: true, truncateUdp: true });
      upstreams.push(upstream);
      const s = await start({ upstreams: [upstream.spec] });
      const answer = await dig(s.port, ['tcp-retry-check.example']);
      expect(answer.status).toBe('NOERROR');
      expect(answer.addresses).toHaveLength(1);
      const [udp, tcp] = upstream.queries.filter((q) => q.name === 'tcp-retry-check.example');
      expect(udp!.tcp).toBe(false);
      expect(tcp!.tcp).toBe(true);
      expect(tcp!.asked).toBe(udp!.asked);
      expect(tcp!.id).toBe(udp!.id);
    });
  });
}
