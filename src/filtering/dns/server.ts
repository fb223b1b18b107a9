import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { clientKey, DEFAULT_FILTER_CLIENT_NETWORKS, everyInterfaceWarning, TrustedNetworks } from '../../core/networks.js';
import type { FilterSnapshot, Verdict } from '../engine/snapshot.js';
import { activityRecord, withExceptions, type ClientIdentity, type FilterPoint } from '../point.js';
import { AnswerCache } from './cache.js';
import { BatchedUdpSocket, nativeUdpBinding, nativeUdpUnavailable } from './native-udp.js';
import { Forwarder, parseUpstream, type RejectedAnswers, type Upstream } from './upstream.js';
import {
  CLASS_CH,
  CLASS_IN,
  CLASSIC_UDP_SIZE,
  DROP,
  FLAG_AD,
  FLAG_CD,
  FLAG_TC,
  RCODE_BADVERS,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_AAAA,
  TYPE_AXFR,
  TYPE_IXFR,
  TYPE_TXT,
  answerFlags,
  bareAnswer,
  blockAnswer,
  encodeQuestion,
  parseQuery,
  renderAnswer,
  syntheticSoaRdata,
  type AnswerShape,
  type Query,
} from './wire.js';

/**
 * The protective DNS resolver (issue 5, point 5): UDP and TCP on one port, EDNS(0), a policy
 * decision for every query through a FilterPoint, blocked names answered NXDOMAIN or with the
 * block page's address, SafeSearch as a CNAME to the search engine's safe name, everything else
 * forwarded to the upstreams (with failover) and cached for as long as its TTLs allow.
 *
 * The unit is `startDnsServer(point, options)`: `gatehouse dns` runs it in several worker processes
 * from files; `serve` can run it with the database-backed FilterPoint.
 */

export type BlockAnswerMode = 'nxdomain' | 'address';

/** What a device outside the client networks gets: an answer REFUSED (as unbound's default), or nothing. */
export type OutsideClientsMode = 'refuse' | 'drop';

/** Why a query or connection was turned away before any policy decision (finding 9 of issue 10). */
export type DnsRefusal = 'client_network' | 'rate_limit' | 'tcp_connections';

/** REFUSED answers one outside address (or IPv6 /64) gets a second at most: more are dropped, so the resolver is no reflector. */
export const OUTSIDE_ANSWERS_PER_SECOND = 10;

/** A refusal is logged at most once a minute per address and reason. */
const LOG_EVERY_MS = 60_000;

export interface DnsServerOptions {
  /** address to listen on (UDP and TCP); '::' listens on IPv6 and IPv4 */
  host?: string;
  /** port for UDP and TCP; 0 picks a free one (the same for both) */
  port?: number;
  /** upstream resolvers, tried in order: "9.9.9.9", "192.0.2.53:5353", "[2620:fe::fe]:53" */
  upstreams: Array<string | Upstream>;
  /** how blocked names are answered: NXDOMAIN (default) or the block page's address */
  blockAnswer?: BlockAnswerMode;
  /** the block page's addresses, for blockAnswer "address" (A and AAAA; other types get NODATA) */
  blockPage?: { ipv4?: string | null; ipv6?: string | null };
  /** TTL of the answers Gatehouse makes (blocks, SafeSearch CNAMEs), seconds: short, so a policy change shows soon */
  blockTtl?: number;
  /** UDP payload size we advertise and send at most (EDNS(0)); 1232 avoids IP fragmentation */
  ednsUdpSize?: number;
  cacheEntries?: number;
  /** caps on how long answers are cached, seconds */
  cacheMaxTtl?: number;
  cacheMaxNegativeTtl?: number;
  /** how long to wait for an upstream before trying the next, ms */
  upstreamTimeoutMs?: number;
  /** how long an upstream that timed out is passed over, ms */
  upstreamDownForMs?: number;
  /** UDP sockets (random source ports) queries to upstreams leave from, one picked at random per query (16) */
  upstreamSockets?: number;
  /** an upstream socket is replaced by one on a new port after this many queries (1000) */
  upstreamSocketUses?: number;
  /** questions in flight to one upstream at most, per worker; more wait in order (256) */
  upstreamMaxInFlight?: number;
  /** 0x20: randomise the case of names asked upstream and require it echoed (default true; off only for an upstream that does not echo case) */
  upstreamCaseRandomisation?: boolean;
  /** a TCP connection with no query for this long is closed, ms */
  tcpIdleTimeoutMs?: number;
  maxTcpConnections?: number;
  /** TCP connections one client (an IPv4 address, an IPv6 /64) may hold open at once; more are closed at accept (64) */
  maxTcpConnectionsPerClient?: number;
  /** the socket receive buffer asked for (bursts of queries wait here), bytes */
  udpReceiveBuffer?: number;
  /** false in cluster workers: the port is shared with the other workers */
  exclusive?: boolean;
  /**
   * How UDP is read and written: "batched" (recvmmsg/sendmmsg through native/udp; in cluster workers
   * each binds its own socket with SO_REUSEPORT), "dgram" (node:dgram), or "auto" (default):
   * batched when the compiled module loads, dgram otherwise.
   */
  udpTransport?: 'auto' | 'batched' | 'dgram';
  /**
   * Networks whose devices are answered, in CIDR form (default DEFAULT_FILTER_CLIENT_NETWORKS:
   * loopback and the private ranges). Anyone else is turned away before the query is read further
   * (see `outsideClients`), counted in stats().refused.client_network and logged once a minute.
   */
  clientNetworks?: string[];
  /**
   * What a device outside the client networks gets over UDP: "refuse" (default, as unbound's
   * access-control does for networks it is not told about) answers REFUSED, no larger than the
   * query and at most OUTSIDE_ANSWERS_PER_SECOND a second per address; "drop" sends nothing. A TCP
   * connection from outside is closed at once either way, unread.
   */
  outsideClients?: OutsideClientsMode;
  /** queries a second one client (an IPv4 address, an IPv6 /64) may ask; more are dropped and counted. 0 (default): no limit */
  clientRateLimit?: number;
  /** told of refusals (once a minute per address) and of a listening address open to every interface */
  logger?: { warn(fields: object, message: string): void };
  /** the answer to `dig CH TXT id.server` (which worker answered) */
  serverId?: string;
  /** time for decisions (schedules), records and the cache; Date.now by default */
  now?: () => number;
  /** told about socket errors that do not stop the server */
  onError?: (error: Error) => void;
}

export interface DnsStats {
  queries: number;
  blocked: number;
  rewritten: number;
  cacheHits: number;
  forwarded: number;
  servfail: number;
  malformed: number;
  dropped: number;
  truncated: number;
  tcpConnections: number;
  /** queries and TCP connections turned away: from outside the client networks, or past a client's rate */
  refused: Record<DnsRefusal, number>;
}

export interface DnsServerHandle {
  address: string;
  port: number;
  /** which UDP transport answers: "batched" or "dgram" */
  udpTransport: 'batched' | 'dgram';
  stats(): DnsStats & { cacheEntries: number; upstreams: ReturnType<Forwarder['status']>; upstreamRejected: RejectedAnswers; upstreamSourcePorts: number[] };
  /** forgets cached answers (tests; after changing upstreams) */
  clearCache(): void;
  close(): Promise<void>;
}

const CHAOS_NAMES = new Set(['id.server', 'hostname.bind']);

export interface TcpClient {
  socket: net.Socket;
  ip: string;
  open: boolean;
  inFlight: number;
}

/** What the transport needs from the resolver: one function per received message, and its state. */
export interface Resolver {
  /** answers one message (UDP when `tcp` is null); never throws */
  handle(msg: Buffer, ip: string, port: number, tcp: TcpClient | null): void;
  stats: DnsStats;
  cache: AnswerCache;
  forwarder: Forwarder;
  /** whether a client address is in the client networks (TCP asks at accept time) */
  admits(ip: string): boolean;
  /** counts (and logs, once a minute) a TCP connection turned away for its address, or for one too many from it */
  turnAway(ip: string, reason?: 'client_network' | 'tcp_connections'): void;
  clientNetworks: string[];
}

/**
 * The resolver without its sockets: parse, identify, decide, record, answer. `sendUdp` writes a
 * UDP answer; TCP answers go to the client's socket. Separate so the hot path can be measured alone.
 */
export function createResolver(point: FilterPoint, options: DnsServerOptions, sendUdp: (answer: Buffer, ip: string, port: number) => void): Resolver {
  const blockMode = options.blockAnswer ?? 'nxdomain';
  const blockTtl = options.blockTtl ?? 10;
  const ednsSize = Math.max(CLASSIC_UDP_SIZE, Math.min(options.ednsUdpSize ?? 1232, 4096));
  const now = options.now ?? Date.now;
  const serverId = options.serverId ?? 'gatehouse';
  const blockV4 = options.blockPage?.ipv4 ? addressBytes(options.blockPage.ipv4, 4) : null;
  const blockV6 = options.blockPage?.ipv6 ? addressBytes(options.blockPage.ipv6, 6) : null;
  if (blockMode === 'address' && !blockV4 && !blockV6) throw new Error('blocked names answered with the block page need its IPv4 or IPv6 address');
  const soa = syntheticSoaRdata(blockTtl);
  const upstreams = options.upstreams.map((u) => (typeof u === 'string' ? parseUpstream(u) : u));
  const forwarder = new Forwarder(upstreams, {
    timeoutMs: options.upstreamTimeoutMs ?? 1000,
    downForMs: options.upstreamDownForMs ?? 30_000,
    ednsUdpSize: ednsSize,
    poolSize: options.upstreamSockets,
    socketUses: options.upstreamSocketUses,
    randomiseCase: options.upstreamCaseRandomisation,
    maxInFlight: options.upstreamMaxInFlight,
    transport: options.udpTransport === 'dgram' ? 'dgram' : options.udpTransport === 'batched' ? 'batched' : undefined,
  });
  const cache = new AnswerCache({
    maxEntries: options.cacheEntries ?? 100_000,
    maxTtl: options.cacheMaxTtl ?? 86_400,
    maxNegativeTtl: options.cacheMaxNegativeTtl ?? 3_600,
  });
  const stats: DnsStats = { queries: 0, blocked: 0, rewritten: 0, cacheHits: 0, forwarded: 0, servfail: 0, malformed: 0, dropped: 0, truncated: 0, tcpConnections: 0, refused: { client_network: 0, rate_limit: 0, tcp_connections: 0 } };
  const report = (error: Error) => options.onError?.(error);

  // ---- who may ask (finding 9 of issue 10) -------------------------------------------------------
  const clientNetworks = options.clientNetworks ?? DEFAULT_FILTER_CLIENT_NETWORKS;
  const clients = new TrustedNetworks(clientNetworks);
  const outsideMode: OutsideClientsMode = options.outsideClients ?? 'refuse';
  // A BlockList check costs microseconds; the answer per address is remembered (bounded).
  const admitted = new Map<string, boolean>();
  function admits(ip: string): boolean {
    let ok = admitted.get(ip);
    if (ok === undefined) {
      ok = clients.contains(ip);
      if (admitted.size >= 10_000) admitted.clear();
      admitted.set(ip, ok);
    }
    return ok;
  }
  const outsideAnswers = new RateLimiter(OUTSIDE_ANSWERS_PER_SECOND, OUTSIDE_ANSWERS_PER_SECOND);
  const clientRate = options.clientRateLimit ?? 0;
  const perClient = clientRate > 0 ? new RateLimiter(clientRate, clientRate) : null;
  const lastLogged = new Map<string, number>();
  function refuse(reason: DnsRefusal, ip: string, what: string): void {
    stats.refused[reason]++;
    const logger = options.logger;
    if (!logger) return;
    const key = `${reason}|${ip}`;
    const at = now();
    const last = lastLogged.get(key);
    if (last !== undefined && at - last < LOG_EVERY_MS) return;
    if (lastLogged.size >= 10_000) {
      for (const [k, when] of lastLogged) if (at - when >= LOG_EVERY_MS) lastLogged.delete(k);
      if (lastLogged.size >= 10_000) lastLogged.clear();
    }
    lastLogged.set(key, at);
    logger.warn({ dns: { refused: reason, client: ip } }, `DNS resolver refused ${ip}: ${what} (counted in the resolver's refusals; logged at most once a minute per address)`);
  }
  const OUTSIDE = 'a device outside the networks the resolver serves (GATEHOUSE_FILTER_CLIENT_NETWORKS)';
  /** A query from outside the client networks: REFUSED (within its budget, never larger than the query) or nothing. */
  function outsider(msg: Buffer, ip: string, port: number, tcp: TcpClient | null): void {
    refuse('client_network', ip, OUTSIDE);
    if (tcp !== null) {
      tcp.socket.destroy();
      return;
    }
    if (outsideMode === 'drop' || !outsideAnswers.take(clientKey(ip), now())) return;
    const query: Query = { id: 0, flags: 0, name: '', qtype: 0, qclass: 0, questionEnd: 12, edns: false, udpSize: CLASSIC_UDP_SIZE, ednsVersion: 0, dnssecOk: false };
    // Only a well-formed query is answered: junk from outside gets nothing (not even FORMERR) to reflect.
    if (parseQuery(msg, query) !== 0) return;
    const answer = bareAnswer(msg, query, RCODE_REFUSED, ednsSize);
    if (answer.length <= msg.length) sendUdp(answer, ip, port);
  }

  // ---- replies -------------------------------------------------------------------------------
  function send(answer: Buffer, ip: string, port: number, tcp: TcpClient | null): void {
    if (tcp === null) {
      if ((answer[2]! & 0x02) !== 0) stats.truncated++;
      sendUdp(answer, ip, port);
      return;
    }
    if (!tcp.open) return;
    const framed = Buffer.allocUnsafe(answer.length + 2);
    framed.writeUInt16BE(answer.length, 0);
    answer.copy(framed, 2);
    tcp.socket.write(framed);
  }

  function maxSize(query: Query, tcp: TcpClient | null): number {
    if (tcp !== null) return 65_535;
    if (!query.edns) return CLASSIC_UDP_SIZE;
    return query.udpSize < ednsSize ? query.udpSize : ednsSize;
  }

  function record(ip: string, identity: ClientIdentity, name: string, verdict: Verdict, at: number): void {
    point.record(activityRecord('dns', at, ip, identity, verdict, { host: name }));
  }

  function block(msg: Buffer, query: Query, verdict: Verdict, ip: string, port: number, tcp: TcpClient | null): void {
    stats.blocked++;
    // The DoH canary and Private Relay names must not exist, whatever the block setting (FI-10).
    if (blockMode === 'nxdomain' || verdict.rule === 'fallback') {
      send(blockAnswer(msg, query, RCODE_NXDOMAIN, blockTtl, soa, null, ednsSize), ip, port, tcp);
      return;
    }
    const address = query.qtype === TYPE_A ? blockV4 : query.qtype === TYPE_AAAA ? blockV6 : null;
    send(blockAnswer(msg, query, RCODE_NOERROR, blockTtl, soa, address, ednsSize), ip, port, tcp);
  }

  // ---- cache keys --------------------------------------------------------------------------------
  // A plain A question is keyed by its name alone; any other by the name and a fixed four-character
  // suffix (NUL, type, CD/DO): names never hold a byte below 32, so keys are unambiguous.
  const suffixes = new Map<number, string>();
  function cacheKey(name: string, qtype: number, cd: boolean, dnssecOk: boolean): string {
    if (qtype === TYPE_A && !cd && !dnssecOk) return name;
    const code = (qtype << 2) | (cd ? 2 : 0) | (dnssecOk ? 1 : 0);
    let suffix = suffixes.get(code);
    if (suffix === undefined) {
      suffix = String.fromCharCode(0, qtype >>> 8, qtype & 0xff, code & 3);
      if (suffixes.size < 4096) suffixes.set(code, suffix);
    }
    return name + suffix;
  }

  function elapsedSeconds(storedAt: number, at: number): number {
    return at > storedAt ? Math.floor((at - storedAt) / 1000) : 0;
  }

  /** An allowed name: the cached answer, unless a CNAME in it leads to a name this client may not reach. */
  // The snapshot the query was decided with travels with it: the policy index in `identity` belongs
  // to it, and a recompile may swap in another while the upstream answers.
  function answerAllowed(msg: Buffer, query: Query, shape: AnswerShape, storedAt: number, at: number, identity: ClientIdentity, snapshot: FilterSnapshot, verdict: Verdict, ip: string, port: number, tcp: TcpClient | null): void {
    if (shape.cnames.length > 0) {
      for (const target of shape.cnames) {
        const byTarget = snapshot.decide(target, identity.policyIndex, at);
        if (byTarget.action === 'block') {
          record(ip, identity, query.name, byTarget, at);
          block(msg, query, byTarget, ip, port, tcp);
          return;
        }
      }
    }
    record(ip, identity, query.name, verdict, at);
    send(renderAnswer(msg, query, shape, elapsedSeconds(storedAt, at), maxSize(query, tcp), ednsSize), ip, port, tcp);
  }

  function fail(msg: Buffer, query: Query, rcode: number, ip: string, port: number, tcp: TcpClient | null): void {
    if (rcode === RCODE_SERVFAIL) stats.servfail++;
    send(bareAnswer(msg, query, rcode, ednsSize), ip, port, tcp);
  }

  function forward(msg: Buffer, query: Query, identity: ClientIdentity, snapshot: FilterSnapshot, verdict: Verdict, at: number, ip: string, port: number, tcp: TcpClient | null): void {
    const cd = (query.flags & FLAG_CD) !== 0;
    const key = cacheKey(query.name, query.qtype, cd, query.dnssecOk);
    const entry = cache.get(key, at);
    if (entry !== undefined) {
      stats.cacheHits++;
      answerAllowed(msg, query, entry.shape, entry.storedAt, at, identity, snapshot, verdict, ip, port, tcp);
      return;
    }
    stats.forwarded++;
    // The message is only lent to us (batched UDP reuses its memory): the answer, later, needs a copy.
    msg = Buffer.from(msg);
    // The question as we ask it upstream: the client's, names folded to lower case.
    const question = Buffer.from(msg.subarray(12, query.questionEnd));
    for (let i = 0; i < question.length - 4; i++) {
      const c = question[i]!;
      if (c >= 65 && c <= 90) question[i] = c | 32;
    }
    if (tcp) tcp.inFlight++;
    forwarder.resolve(key, question, cd, query.dnssecOk, (shape, rcode) => {
      if (tcp) tcp.inFlight--;
      const later = now();
      if (shape === null) {
        record(ip, identity, query.name, verdict, later);
        fail(msg, query, rcode, ip, port, tcp);
        return;
      }
      cache.set(key, shape, later);
      answerAllowed(msg, query, shape, later, later, identity, snapshot, verdict, ip, port, tcp);
    });
  }

  /** SafeSearch (FI-09): a CNAME to the engine's safe name plus that name's own records, as Google and Bing document. */
  function rewrite(msg: Buffer, query: Query, identity: ClientIdentity, verdict: Verdict, at: number, ip: string, port: number, tcp: TcpClient | null): void {
    stats.rewritten++;
    record(ip, identity, query.name, verdict, at);
    const target = verdict.target!;
    const cd = (query.flags & FLAG_CD) !== 0;
    const key = cacheKey(target, query.qtype, cd, query.dnssecOk);
    const targetQuestion = encodeQuestion(target, query.qtype);
    if (!targetQuestion) return fail(msg, query, RCODE_SERVFAIL, ip, port, tcp);
    const reply = (message: Buffer, shape: AnswerShape, storedAt: number, when: number) => {
      try {
        send(rewriteAnswer(message, query, target, targetQuestion, shape, elapsedSeconds(storedAt, when), maxSize(query, tcp)), ip, port, tcp);
      } catch (error) {
        report(error as Error);
        fail(message, query, RCODE_SERVFAIL, ip, port, tcp);
      }
    };
    const entry = cache.get(key, at);
    if (entry !== undefined) {
      stats.cacheHits++;
      return reply(msg, entry.shape, entry.storedAt, at);
    }
    stats.forwarded++;
    const kept = Buffer.from(msg);
    forwarder.resolve(key, targetQuestion, cd, query.dnssecOk, (shape, rcode) => {
      const later = now();
      if (shape === null) return fail(kept, query, rcode, ip, port, tcp);
      cache.set(key, shape, later);
      reply(kept, shape, later, later);
    });
  }

  function rewriteAnswer(msg: Buffer, query: Query, target: string, targetQuestion: Buffer, shape: AnswerShape, elapsed: number, limit: number): Buffer {
    // The target's answer as a whole message, decoded to records (names decompressed).
    const targetMessage = Buffer.alloc(12 + targetQuestion.length);
    targetQuestion.copy(targetMessage, 12);
    const targetQuery: Query = { id: 0, flags: 0, name: target, qtype: query.qtype, qclass: CLASS_IN, questionEnd: 12 + targetQuestion.length, edns: false, udpSize: 65_535, ednsVersion: 0, dnssecOk: false };
    const resolved = dnsPacket.decode(renderAnswer(targetMessage, targetQuery, shape, elapsed, 65_535, ednsSize));
    const asked = dnsPacket.decode(msg).questions![0]!;
    const ad = shape.authenticated && (query.dnssecOk || (query.flags & FLAG_AD) !== 0) ? FLAG_AD : 0;
    const packet: dnsPacket.Packet = {
      id: query.id,
      type: 'response',
      flags: answerFlags(query.flags, shape.rcode, ad) & 0x7fff,
      questions: [asked],
      answers: [{ name: asked.name, type: 'CNAME', class: 'IN', ttl: blockTtl, data: target } as dnsPacket.Answer, ...(resolved.answers ?? [])],
      authorities: resolved.authorities ?? [],
      additionals: [...(resolved.additionals ?? []), ...(query.edns ? [{ name: '.', type: 'OPT', udpPayloadSize: ednsSize, extendedRcode: 0, ednsVersion: 0, flags: query.dnssecOk ? 0x8000 : 0, options: [] } as unknown as dnsPacket.Answer] : [])],
    };
    const encoded = dnsPacket.encode(packet);
    if (encoded.length > limit) return bareAnswer(msg, query, shape.rcode, ednsSize, FLAG_TC | ad);
    return encoded;
  }

  function chaos(msg: Buffer, query: Query, ip: string, port: number, tcp: TcpClient | null): void {
    if (query.qtype !== TYPE_TXT || !CHAOS_NAMES.has(query.name)) return fail(msg, query, RCODE_REFUSED, ip, port, tcp);
    const asked = dnsPacket.decode(msg).questions![0]!;
    const packet: dnsPacket.Packet = {
      id: query.id,
      type: 'response',
      flags: answerFlags(query.flags, RCODE_NOERROR) & 0x7fff,
      questions: [asked],
      answers: [{ name: asked.name, type: 'TXT', class: 'CH', ttl: 0, data: serverId } as dnsPacket.Answer],
    };
    send(dnsPacket.encode(packet), ip, port, tcp);
  }

  // ---- one query ---------------------------------------------------------------------------------
  function handle(msg: Buffer, ip: string, port: number, tcp: TcpClient | null): void {
    if (!admits(ip)) return outsider(msg, ip, port, tcp);
    if (perClient !== null && !perClient.take(clientKey(ip), now())) return refuse('rate_limit', ip, `more than ${clientRate} queries a second (GATEHOUSE_DNS_CLIENT_RATE_LIMIT); the rest are dropped`);
    const query: Query = { id: 0, flags: 0, name: '', qtype: 0, qclass: 0, questionEnd: 12, edns: false, udpSize: CLASSIC_UDP_SIZE, ednsVersion: 0, dnssecOk: false };
    const status = parseQuery(msg, query);
    if (status !== 0) {
      if (status === DROP) stats.dropped++;
      else {
        stats.malformed++;
        send(bareAnswer(msg, query, status, ednsSize), ip, port, tcp);
      }
      return;
    }
    stats.queries++;
    if (query.edns && query.ednsVersion !== 0) return send(bareAnswer(msg, query, RCODE_BADVERS, ednsSize), ip, port, tcp);
    if (query.qclass !== CLASS_IN) {
      if (query.qclass === CLASS_CH) return chaos(msg, query, ip, port, tcp);
      return fail(msg, query, RCODE_REFUSED, ip, port, tcp);
    }
    if (query.qtype === TYPE_AXFR || query.qtype === TYPE_IXFR) return fail(msg, query, RCODE_REFUSED, ip, port, tcp);
    const at = now();
    const identity = point.identify(ip);
    const snapshot = point.snapshot();
    const verdict = withExceptions(point, snapshot.decide(query.name, identity.policyIndex, at), query.name, identity, ip, at);
    if (verdict.action === 'allow') return forward(msg, query, identity, snapshot, verdict, at, ip, port, tcp);
    if (verdict.action === 'block') {
      record(ip, identity, query.name, verdict, at);
      return block(msg, query, verdict, ip, port, tcp);
    }
    return rewrite(msg, query, identity, verdict, at, ip, port, tcp);
  }


  function safely(msg: Buffer, ip: string, port: number, tcp: TcpClient | null): void {
    try {
      handle(msg, ip, port, tcp);
    } catch (error) {
      // A bug must cost one query, never the resolver.
      stats.malformed++;
      report(error as Error);
    }
  }

  return { handle: safely, stats, cache, forwarder, admits, turnAway: (ip, reason = 'client_network') => refuse(reason, ip, reason === 'client_network' ? OUTSIDE : 'one TCP connection too many from this device (maxTcpConnectionsPerClient)'), clientNetworks };
}

/**
 * Token buckets per key (an address, an IPv6 /64): `perSecond` refilled, `burst` at most. Bounded:
 * full buckets are forgotten first (they are the same as new ones), then all if still too many.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly refillMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {
    this.refillMs = (burst / perSecond) * 1000;
  }

  /** Takes one token for `key`; false when none is left. */
  take(key: string, at: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.prune(at);
      bucket = { tokens: this.burst, at };
      this.buckets.set(key, bucket);
    } else if (at > bucket.at) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((at - bucket.at) * this.perSecond) / 1000);
      bucket.at = at;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private prune(at: number): void {
    for (const [key, bucket] of this.buckets) if (at - bucket.at >= this.refillMs) this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}

export async function startDnsServer(point: FilterPoint, options: DnsServerOptions): Promise<DnsServerHandle> {
  const host = options.host ?? '127.0.0.1';
  const report = (error: Error) => options.onError?.(error);
  const exclusive = options.exclusive ?? true;
  const receiveBuffer = options.udpReceiveBuffer ?? 4 * 1024 * 1024;
  const wanted = options.udpTransport ?? 'auto';
  if (wanted === 'batched' && nativeUdpBinding() === null) throw new Error(`batched UDP was asked for but ${nativeUdpUnavailable()}`);
  // Cluster workers on port 0 would each get a port of their own with SO_REUSEPORT: share dgram's.
  const batched = wanted !== 'dgram' && nativeUdpBinding() !== null && (exclusive || (options.port ?? 0) !== 0);
  let udp: UdpTransport | null = null;
  const tcpClients = new Set<TcpClient>();
  const resolver = createResolver(point, options, (answer, ip, port) => udp?.send(answer, ip, port));
  const { stats, cache, forwarder } = resolver;
  const safely = resolver.handle;
  const onUdp = (msg: Buffer, ip: string, port: number) => safely(msg, ip, port, null);
  const openUdp = (port: number) =>
    batched ? openBatchedUdp(host, port, !exclusive, receiveBuffer, onUdp, () => stats.dropped++) : openDgramUdp(host, port, exclusive, receiveBuffer, onUdp, report);

  // ---- TCP (RFC 7766: several queries a connection, answers in any order, idle timeout) --------------
  const idleMs = options.tcpIdleTimeoutMs ?? 10_000;
  const perClientTcp = new Map<string, number>();
  const maxPerClientTcp = options.maxTcpConnectionsPerClient ?? 64;
  const tcpServer = net.createServer({ noDelay: true }, (socket) => {
    const ip = clientAddress(socket.remoteAddress ?? '');
    socket.on('error', () => socket.destroy());
    // A device outside the client networks: closed at once, nothing read (and no TCP slot held).
    if (!resolver.admits(ip)) {
      resolver.turnAway(ip);
      socket.destroy();
      return;
    }
    // One device cannot take every TCP slot (which truncated answers need): a cap per client.
    const key = clientKey(ip);
    const open = perClientTcp.get(key) ?? 0;
    if (open >= maxPerClientTcp) {
      resolver.turnAway(ip, 'tcp_connections');
      socket.destroy();
      return;
    }
    perClientTcp.set(key, open + 1);
    stats.tcpConnections++;
    const client: TcpClient = { socket, ip, open: true, inFlight: 0 };
    tcpClients.add(client);
    // Bytes of an unfinished message wait as received pieces, joined once the whole message is here
    // (joining each piece onto the rest made a 64 KiB message sent a byte at a time cost gigabytes of copying).
    let pieces: Buffer[] = [];
    let held = 0;
    let needed = 2;
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      pieces.push(chunk);
      held += chunk.length;
      if (held < needed) return;
      const data = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, held);
      pieces = [];
      held = 0;
      needed = 2;
      let offset = 0;
      while (data.length - offset >= 2) {
        const length = data.readUInt16BE(offset);
        if (length === 0) {
          socket.destroy();
          return;
        }
        if (data.length - offset - 2 < length) {
          needed = length + 2;
          break;
        }
        // Each message gets its own copy: answers may be written after more data has arrived.
        const msg = Buffer.from(data.subarray(offset + 2, offset + 2 + length));
        offset += 2 + length;
        safely(msg, client.ip, socket.remotePort ?? 0, client);
      }
      if (offset < data.length) {
        const rest = Buffer.from(data.subarray(offset));
        pieces.push(rest);
        held = rest.length;
      }
    });
    socket.on('close', () => {
      client.open = false;
      tcpClients.delete(client);
      const left = (perClientTcp.get(key) ?? 1) - 1;
      if (left <= 0) perClientTcp.delete(key);
      else perClientTcp.set(key, left);
    });
  });
  tcpServer.maxConnections = options.maxTcpConnections ?? 1000;

  // UDP first; TCP on the same port. With port 0 the free UDP port may be taken for TCP: try another.
  let port = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      udp = await openUdp(options.port ?? 0);
      port = udp.port;
      try {
        await listen((done) => tcpServer.listen({ port, host, exclusive }, done), tcpServer);
        break;
      } catch (error) {
        await udp.close();
        udp = null;
        if ((options.port ?? 0) !== 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw error;
      }
    }
  } catch (error) {
    forwarder.close();
    throw error;
  }
  tcpServer.on('error', report);
  const transport = udp;
  const warning = everyInterfaceWarning('the DNS resolver', host, resolver.clientNetworks);
  if (warning) options.logger?.warn({ dns: { host, clientNetworks: resolver.clientNetworks } }, warning);

  let closed: Promise<void> | null = null;
  return {
    address: host,
    port,
    udpTransport: batched ? 'batched' : 'dgram',
    stats: () => ({ ...stats, refused: { ...stats.refused }, cacheEntries: cache.size, upstreams: forwarder.status(), upstreamRejected: { ...forwarder.rejected }, upstreamSourcePorts: forwarder.sourcePorts() }),
    clearCache: () => cache.clear(),
    close() {
      closed ??= (async () => {
        forwarder.close();
        for (const client of tcpClients) client.socket.destroy();
        await Promise.all([transport.close(), new Promise<void>((resolve) => tcpServer.close(() => resolve()))]);
      })();
      return closed;
    },
  };
}

/** A bound UDP socket for the resolver, whichever way it reads and writes. */
interface UdpTransport {
  port: number;
  send(answer: Buffer, ip: string, port: number): void;
  close(): Promise<void>;
}

async function openBatchedUdp(host: string, port: number, reusePort: boolean, receiveBuffer: number, onMessage: (msg: Buffer, ip: string, port: number) => void, onDropped: () => void): Promise<UdpTransport> {
  const socket = new BatchedUdpSocket({ host, port, reusePort, receiveBuffer }, onMessage, onDropped);
  return {
    port: socket.port,
    send: (answer, ip, to) => socket.send(answer, ip, to),
    close: async () => socket.close(),
  };
}

async function openDgramUdp(host: string, port: number, exclusive: boolean, receiveBuffer: number, onMessage: (msg: Buffer, ip: string, port: number) => void, report: (error: Error) => void): Promise<UdpTransport> {
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', lookup: literalLookup });
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => onMessage(msg, clientAddress(rinfo.address), rinfo.port));
  await listen((done) => socket.bind({ port, address: host, exclusive }, done), socket);
  socket.on('error', report);
  try {
    socket.setRecvBufferSize(receiveBuffer);
  } catch {
    // The kernel's limit (net.core.rmem_max) applies; a smaller buffer only means earlier drops.
  }
  let closing: Promise<void> | null = null;
  return {
    port: socket.address().port,
    send: (answer, ip, to) => socket.send(answer, to, ip),
    close: () => (closing ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
  };
}

/**
 * Replies go to the address a query came from, always an IP literal: answering the "lookup" at once
 * saves dgram's dns.lookup and the tick it waits for on every answer.
 */
function literalLookup(address: string, family: unknown, callback: (error: Error | null, address: string, family: number) => void): void {
  void family;
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** Starts a bind/listen and settles when it is done or fails. */
function listen(start: (done: () => void) => void, emitter: dgram.Socket | net.Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    emitter.once('error', failed);
    start(() => {
      emitter.off('error', failed);
      resolve();
    });
  });
}

/** An IPv4 client seen on a dual-stack socket is written ::ffff:a.b.c.d; identification wants a.b.c.d. */
function clientAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function addressBytes(ip: string, family: 4 | 6): Buffer {
  if (family === 4) {
    if (!net.isIPv4(ip)) throw new Error(`block page address "${ip}" is not an IPv4 address`);
    return Buffer.from(ip.split('.').map(Number));
  }
  if (!net.isIPv6(ip) || ip.includes('.')) throw new Error(`block page address "${ip}" is not an IPv6 address in hexadecimal form`);
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...(ip.includes('::') ? Array(8 - h.length - t.length).fill('0') : []), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
