import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

/**
 * A tiny upstream DNS server for tests and benchmarks (UDP and TCP on one port), built on
 * dns-packet: fixed records by name, names that do not exist (with an SOA for negative caching),
 * addresses made up for any other name (`synthesize`), or no answer at all (`silent`), SERVFAIL
 * (`servfail`), or truncated UDP answers so the asker must retry over TCP (`truncateUdp`).
 */

export interface StubRecord {
  type: string;
  data: unknown;
  ttl?: number;
}

export interface StubUpstreamOptions {
  records?: Record<string, StubRecord[]>;
  /** TTL of records without their own, and of synthesized ones */
  ttl?: number;
  /** names answered NXDOMAIN with an SOA whose minimum is `negativeTtl` */
  nxdomain?: string[];
  negativeTtl?: number;
  /** answer any other name with an address made from its hash (else NXDOMAIN) */
  synthesize?: boolean;
  silent?: boolean;
  servfail?: boolean;
  /** every UDP answer truncated (so the asker must retry over TCP) */
  truncateUdp?: boolean;
  /** address to listen on (127.0.0.1) */
  host?: string;
  /** UDP answers are sent this long after the query arrives, ms (a window for forged answers in attack tests) */
  delayMs?: number;
  /** told of every UDP query as it arrives, with the stub's own socket (attack tests forge answers from it) */
  onUdpQuery?: (msg: Buffer, rinfo: dgram.RemoteInfo, socket: dgram.Socket) => void;
}

export interface StubUpstream {
  address: string;
  port: number;
  spec: string;
  /** every question received: "name TYPE" (lower case), with the transport, the name as asked (its case), the ID and the asker's port */
  queries: Array<{ name: string; type: string; tcp: boolean; asked?: string; id?: number; port?: number }>;
  count(name: string, type?: string): number;
  close(): Promise<void>;
}

function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export async function startStubUpstream(options: StubUpstreamOptions = {}): Promise<StubUpstream> {
  const host = options.host ?? '127.0.0.1';
  const ttl = options.ttl ?? 300;
  const records = new Map(Object.entries(options.records ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const nx = new Set((options.nxdomain ?? []).map((n) => n.toLowerCase()));
  const queries: StubUpstream['queries'] = [];
  const isNx = (name: string) => [...nx].some((n) => name === n || name.endsWith(`.${n}`));

  function answer(query: dnsPacket.Packet, tcp: boolean, port?: number): Buffer | null {
    const q = query.questions?.[0];
    if (!q) return null;
    const name = q.name.toLowerCase();
    queries.push({ name, type: q.type, tcp, asked: q.name, id: query.id, port });
    if (options.silent) return null;
    const opt = (query.additionals ?? []).some((a) => a.type === 'OPT');
    const base = {
      id: query.id,
      type: 'response' as const,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [q],
      additionals: opt ? [{ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer] : [],
    };
    // dns-packet takes the rcode in the low four bits of `flags`.
    if (options.servfail) return dnsPacket.encode({ ...base, flags: base.flags | 2 } as dnsPacket.Packet);
    const soa = {
      name: 'example',
      type: 'SOA',
      ttl: 3600,
      data: { mname: 'ns.example', rname: 'hostmaster.example', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: options.negativeTtl ?? 60 },
    } as dnsPacket.Answer;
    let answers: dnsPacket.Answer[] = [];
    let rcode = 0;
    const fixed = records.get(name);
    if (fixed) {
      answers = fixed.filter((r) => r.type === q.type || r.type === 'CNAME').map((r) => ({ name: q.name, type: r.type, class: 'IN', ttl: r.ttl ?? ttl, data: r.data }) as dnsPacket.Answer);
    } else if (!isNx(name) && options.synthesize) {
      const h = hashName(name);
      if (q.type === 'A') answers = [{ name: q.name, type: 'A', ttl, data: `10.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}` } as dnsPacket.Answer];
      if (q.type === 'AAAA') answers = [{ name: q.name, type: 'AAAA', ttl, data: `fd00::${(h >>> 16).toString(16)}:${(h & 0xffff).toString(16)}` } as dnsPacket.Answer];
    } else rcode = 3;
    const packet = { ...base, flags: base.flags | rcode, answers, authorities: answers.length === 0 ? [soa] : [] } as dnsPacket.Packet;
    const encoded = dnsPacket.encode(packet);
    // Over UDP an answer larger than the asker's EDNS size (512 without EDNS) is truncated.
    const limit = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    if (!tcp && (options.truncateUdp || encoded.length > Math.max(512, limit?.udpPayloadSize ?? 512))) {
      return dnsPacket.encode({ ...base, flags: base.flags | dnsPacket.TRUNCATED_RESPONSE } as dnsPacket.Packet);
    }
    return encoded;
  }

  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    options.onUdpQuery?.(msg, rinfo, udp);
    const reply = answer(query, false, rinfo.port);
    if (!reply) return;
    if (options.delayMs) setTimeout(() => udp.send(reply, rinfo.port, rinfo.address), options.delayMs);
    else udp.send(reply, rinfo.port, rinfo.address);
  };
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const msg = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        try {
          const reply = answer(dnsPacket.decode(msg), true);
          if (reply) {
            const framed = Buffer.alloc(reply.length + 2);
            framed.writeUInt16BE(reply.length);
            reply.copy(framed, 2);
            socket.write(framed);
          }
        } catch {
          socket.destroy();
        }
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  // UDP and TCP on the same free port: the free UDP port may be taken for TCP, so try again.
  let udp!: dgram.Socket;
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    udp.on('message', onUdp(udp));
    await new Promise<void>((resolve) => udp.bind(0, host, resolve));
    port = udp.address().port;
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    if (listening) break;
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (attempt > 10) throw new Error('no free port for the stub upstream');
  }
  try {
    udp.setRecvBufferSize(4 * 1024 * 1024); // a burst of cache misses must not be dropped here
  } catch {
    // capped by net.core.rmem_max
  }
  return {
    address: host,
    port,
    spec: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    queries,
    count: (name, type) => queries.filter((q) => q.name === name.toLowerCase() && (type === undefined || q.type === type)).length,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}
