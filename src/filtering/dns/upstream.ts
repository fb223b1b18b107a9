import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { BatchedUdpSocket, nativeUdpBinding, nativeUdpUnavailable } from './native-udp.js';
import {
  FLAG_CD,
  FLAG_QR,
  FLAG_RD,
  FLAG_TC,
  OPT_LENGTH,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  inspectAnswer,
  writeHeader,
  writeOpt,
  type AnswerShape,
} from './wire.js';

/**
 * Forwarding to the configured upstream resolvers with failover: each query goes to the first
 * upstream that is not marked down; a timeout marks that upstream down for a while and the query
 * moves on to the next, as does a SERVFAIL or REFUSED answer. Identical questions in flight share
 * one upstream query. A truncated UDP answer is asked again over TCP.
 *
 * Against forged answers (cache poisoning, issue 10 finding 10), an off-path attacker has to guess
 * everything a query is sent with:
 * - the source port: queries leave from a pool of UDP sockets, each bound to a port the kernel
 *   picks at random from the ephemeral range, one chosen at random for every query; a socket is
 *   replaced by a fresh one (a new port) after `socketUses` queries or `socketLifetimeMs`;
 * - the ID: 16 random bits from the operating system's CSPRNG, never one in flight on that socket;
 * - the case of the question name (0x20, draft-vixie-dnsext-dns0x20): each letter upper or lower
 *   case at random, and the answer must echo it exactly.
 * An answer is accepted only on the socket the query left from, from the upstream address and port
 * it was sent to, with its ID and its question byte for byte (name in the case sent, type, class),
 * and only if it decodes whole. Everything else is dropped and counted (`rejected`).
 *
 * Timeouts run on the real clock (they are about the network, not the school's day).
 */

export interface Upstream {
  host: string;
  port: number;
  /** how it was written in the settings, for messages */
  label: string;
}

/** "9.9.9.9", "9.9.9.9:53", "[2620:fe::fe]:53", "2620:fe::fe" → an upstream; throws with a readable message. */
export function parseUpstream(spec: string): Upstream {
  const text = spec.trim();
  let host = text;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (isIPv4(text.split(':')[0]!) && text.includes(':')) {
    const [h, p] = text.split(':');
    host = h!;
    port = Number(p);
  }
  if (!isIPv4(host) && !isIPv6(host)) throw new Error(`upstream "${spec}" is not an IP address (write 9.9.9.9, 9.9.9.9:53 or [2620:fe::fe]:53)`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`upstream "${spec}" has a port outside 1–65535`);
  return { host, port, label: text };
}

export interface ForwarderOptions {
  /** how long to wait for one upstream before trying the next, ms */
  timeoutMs: number;
  /** how long an upstream that timed out is passed over, ms */
  downForMs: number;
  /** the UDP payload size we advertise to upstreams */
  ednsUdpSize: number;
  /** a question unanswered this long is sent to the same upstream once more (a new port, ID and case) before its timeout, ms (default a quarter of the timeout) */
  resendAfterMs?: number;
  /** UDP sockets (source ports) per address family that queries leave from, chosen at random per query (default 16) */
  poolSize?: number;
  /** a socket is replaced by a new one (a new source port) after this many queries (default 1000) */
  socketUses?: number;
  /** … or after this long, ms (default 60 s) */
  socketLifetimeMs?: number;
  /** 0x20: ask with the name's letters in random case and require the answer to echo it (default true) */
  randomiseCase?: boolean;
  /**
   * Queries in flight to one upstream at most (default 256); more wait their turn in order. A burst
   * larger than the upstream's socket buffer would otherwise be dropped there and cost each dropped
   * query a timeout.
   */
  maxInFlight?: number;
  /** "batched": the upstream sockets read with recvmmsg (native/udp); "dgram": node:dgram; default: batched when it loads */
  transport?: 'batched' | 'dgram';
}

/** The outcome of a forwarded question: an answer to cache and pass on, or an rcode (SERVFAIL). */
export type ForwardCallback = (shape: AnswerShape | null, rcode: number) => void;

interface Pending {
  key: string;
  /** the question in wire format, lower case */
  question: Buffer;
  cd: boolean;
  dnssecOk: boolean;
  callbacks: ForwardCallback[];
  /** upstream indexes already tried */
  tried: number[];
  /** every query sent for it (one per upstream tried), all still accepted until it is done */
  sent: Sent[];
  deadline: number;
  done: boolean;
  /** waiting for room at this upstream (-1: not waiting) */
  queuedFor: number;
  /** a query that timed out at the last upstream left is sent there once more */
  retried: boolean;
  /** when to send the current upstream the question again (0: not again) */
  resendAt: number;
}

/** One query on the wire: what its answer must match. */
interface Sent {
  pending: Pending;
  upstream: number;
  socket: PoolSocket;
  id: number;
  /** the question as sent: the name in its randomised case, type, class */
  question: Buffer;
  /** counted in its upstream's in-flight queries */
  counted: boolean;
}

/** One source port: a bound UDP socket and the queries in flight on it, by ID. */
interface PoolSocket {
  family: 4 | 6;
  port: number;
  send(message: Buffer, port: number, host: string): void;
  close(): void;
  inFlight: Map<number, Sent>;
  uses: number;
  retireAt: number;
  retired: boolean;
  closed: boolean;
}

interface UpstreamState {
  upstream: Upstream;
  family: 4 | 6;
  downUntil: number;
  answered: number;
  failures: number;
  inFlight: number;
  /** queries waiting for room (maxInFlight), in order */
  waiting: Pending[];
  waitingAt: number;
}

export interface UpstreamStatus {
  label: string;
  healthy: boolean;
  answered: number;
  failures: number;
}

/** Answers dropped because they did not match a query in flight, by reason. */
export interface RejectedAnswers {
  /** not a well-formed DNS response */
  malformed: number;
  /** no query in flight with that ID on the socket it reached */
  id: number;
  /** not from the address and port the query was sent to */
  source: number;
  /** the question differs from the one sent (name, its case, type or class) */
  question: number;
}

export class Forwarder {
  private readonly states: UpstreamState[];
  private readonly pools = new Map<4 | 6, Array<PoolSocket | undefined>>();
  /** sockets replaced in the pool, open until their last query is done */
  private readonly retiring = new Set<PoolSocket>();
  private readonly inFlight = new Map<string, Pending>();
  private readonly sweep: NodeJS.Timeout;
  private readonly tcpQueries = new Set<net.Socket>();
  private readonly poolSize: number;
  private readonly socketUses: number;
  private readonly socketLifetimeMs: number;
  private readonly randomiseCase: boolean;
  private readonly maxInFlight: number;
  private readonly resendAfterMs: number;
  private readonly batched: boolean;
  private random = Buffer.alloc(4096);
  private randomAt = this.random.length;
  private closed = false;
  readonly rejected: RejectedAnswers = { malformed: 0, id: 0, source: 0, question: 0 };
  /** sockets opened so far (the pool and its replacements) */
  socketsOpened = 0;

  constructor(
    upstreams: Upstream[],
    private readonly options: ForwarderOptions,
  ) {
    if (upstreams.length === 0) throw new Error('at least one upstream resolver is needed');
    this.states = upstreams.map((upstream) => ({ upstream, family: isIPv6(upstream.host) ? 6 : 4, downUntil: 0, answered: 0, failures: 0, inFlight: 0, waiting: [], waitingAt: 0 }));
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 256);
    this.resendAfterMs = Math.max(1, options.resendAfterMs ?? Math.floor(options.timeoutMs / 4));
    this.poolSize = Math.max(1, Math.min(options.poolSize ?? 16, 1024));
    this.socketUses = Math.max(1, options.socketUses ?? 1000);
    this.socketLifetimeMs = Math.max(1, options.socketLifetimeMs ?? 60_000);
    this.randomiseCase = options.randomiseCase ?? true;
    if (options.transport === 'batched' && nativeUdpBinding() === null) throw new Error(`batched UDP was asked for but ${nativeUdpUnavailable()}`);
    this.batched = options.transport !== 'dgram' && nativeUdpBinding() !== null;
    this.sweep = setInterval(() => this.expire(), Math.max(10, Math.min(100, options.timeoutMs / 4, this.resendAfterMs / 2)));
    this.sweep.unref();
  }

  status(): UpstreamStatus[] {
    const now = Date.now();
    return this.states.map((s) => ({ label: s.upstream.label, healthy: s.downUntil <= now, answered: s.answered, failures: s.failures }));
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** The source ports in use now (the pool and sockets being retired): for tests and status. */
  sourcePorts(): number[] {
    const ports: number[] = [];
    for (const pool of this.pools.values()) for (const s of pool) if (s) ports.push(s.port);
    for (const s of this.retiring) ports.push(s.port);
    return ports;
  }

  /** Asks the upstreams; `callback` runs once with the answer's shape or a failure rcode. */
  resolve(key: string, question: Buffer, cd: boolean, dnssecOk: boolean, callback: ForwardCallback): void {
    const existing = this.inFlight.get(key);
    if (existing) {
      existing.callbacks.push(callback);
      return;
    }
    const pending: Pending = { key, question, cd, dnssecOk, callbacks: [callback], tried: [], sent: [], deadline: 0, done: false, queuedFor: -1, retried: false, resendAt: 0 };
    this.inFlight.set(key, pending);
    this.attempt(pending);
  }

  /** The next upstream to try for this query: healthy ones first, in the configured order. */
  private next(pending: Pending): number {
    const now = Date.now();
    let fallback = -1;
    for (let i = 0; i < this.states.length; i++) {
      if (pending.tried.includes(i)) continue;
      if (this.states[i]!.downUntil <= now) return i;
      if (fallback === -1 || this.states[i]!.downUntil < this.states[fallback]!.downUntil) fallback = i;
    }
    return fallback;
  }

  private attempt(pending: Pending): void {
    if (this.closed) return this.finish(pending, null, RCODE_SERVFAIL);
    const index = this.next(pending);
    if (index === -1) return this.finish(pending, null, RCODE_SERVFAIL);
    pending.tried.push(index);
    const state = this.states[index]!;
    pending.deadline = Date.now() + this.options.timeoutMs;
    if (state.inFlight >= this.maxInFlight) {
      // No room: wait in order (the deadline runs while waiting, so a stuck upstream still fails over).
      pending.queuedFor = index;
      state.waiting.push(pending);
      return;
    }
    this.send(pending, index);
  }

  private send(pending: Pending, index: number, again = false): void {
    const state = this.states[index]!;
    pending.queuedFor = -1;
    let socket: PoolSocket;
    try {
      socket = this.pick(state.family);
    } catch {
      return this.failed(pending, index, false);
    }
    const id = this.newId(socket);
    const sent: Sent = { pending, upstream: index, socket, id, question: this.randomiseCase ? this.caseRandomised(pending.question) : pending.question, counted: true };
    state.inFlight++;
    socket.inFlight.set(id, sent);
    pending.sent.push(sent);
    const now = Date.now();
    if (!again) pending.deadline = now + this.options.timeoutMs;
    // UDP may be lost on the way (or dropped by a busy upstream): one resend well before the timeout.
    pending.resendAt = again ? 0 : now + this.resendAfterMs;
    socket.send(this.queryMessage(sent), state.upstream.port, state.upstream.host);
  }

  private queryMessage(sent: Sent): Buffer {
    const { pending, question } = sent;
    const out = Buffer.allocUnsafe(12 + question.length + OPT_LENGTH);
    writeHeader(out, sent.id, FLAG_RD | (pending.cd ? FLAG_CD : 0), 1, 0, 0, 1);
    question.copy(out, 12);
    writeOpt(out, 12 + question.length, this.options.ednsUdpSize, 0, pending.dnssecOk);
    return out;
  }

  private randomByte(): number {
    if (this.randomAt >= this.random.length) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    return this.random[this.randomAt++]!;
  }

  /** The question with each letter of the name in upper or lower case at random (0x20). */
  private caseRandomised(question: Buffer): Buffer {
    const out = Buffer.from(question);
    const nameLength = out.length - 4;
    let bits = 0;
    let left = 0;
    for (let i = 0; i < nameLength; i++) {
      const c = out[i]!;
      // Label lengths are below 64, so never taken for letters.
      if (c < 97 || c > 122) continue;
      if (left === 0) {
        bits = this.randomByte();
        left = 8;
      }
      if (bits & 1) out[i] = c & 0xdf;
      bits >>>= 1;
      left--;
    }
    return out;
  }

  /** 16 random bits from the CSPRNG, not in flight on this socket. */
  private newId(socket: PoolSocket): number {
    for (;;) {
      const id = (this.randomByte() << 8) | this.randomByte();
      if (!socket.inFlight.has(id)) return id;
    }
  }

  /** A socket from the pool, at random; one used enough (or long enough) is replaced first. */
  private pick(family: 4 | 6): PoolSocket {
    let pool = this.pools.get(family);
    if (!pool) {
      pool = [];
      this.pools.set(family, pool);
    }
    const slot = this.poolSize === 1 ? 0 : ((this.randomByte() << 8) | this.randomByte()) % this.poolSize;
    let socket = pool[slot];
    if (socket === undefined || socket.closed || socket.uses >= this.socketUses || Date.now() >= socket.retireAt || socket.inFlight.size >= 32_768) {
      if (socket !== undefined) this.retire(socket);
      socket = this.open(family);
      pool[slot] = socket;
    }
    socket.uses++;
    return socket;
  }

  private retire(socket: PoolSocket): void {
    socket.retired = true;
    if (socket.inFlight.size === 0) this.closeSocket(socket);
    else this.retiring.add(socket);
  }

  private closeSocket(socket: PoolSocket): void {
    if (socket.closed) return;
    socket.closed = true;
    this.retiring.delete(socket);
    try {
      socket.close();
    } catch {
      // already gone
    }
  }

  private open(family: 4 | 6): PoolSocket {
    this.socketsOpened++;
    const host = family === 6 ? '::' : '0.0.0.0';
    const base = { family, inFlight: new Map<number, Sent>(), uses: 0, retireAt: Date.now() + this.socketLifetimeMs, retired: false, closed: false };
    if (this.batched) {
      // Port 0: the kernel picks the port at random from the ephemeral range (Linux's UDP autobind).
      let me!: PoolSocket;
      const udp = new BatchedUdpSocket({ host, port: 0, reusePort: false, receiveBuffer: 1024 * 1024, batch: 32, slot: 4096 }, (msg, address, port) => this.onAnswer(me, msg, address, port), () => this.rejected.malformed++);
      me = { ...base, port: udp.port, send: (message, port, ip) => udp.send(message, ip, port), close: () => udp.close() };
      return me;
    }
    const udp = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: literalLookup });
    // exclusive: in a cluster worker a non-exclusive bind would share the port with the other
    // workers, and answers would reach the wrong process. Sends wait for the bind.
    udp.bind({ port: 0, exclusive: true });
    const me: PoolSocket = {
      ...base,
      port: 0,
      send: (message, port, ip) => udp.send(message, port, ip),
      close: () => udp.close(),
    };
    udp.on('listening', () => (me.port = udp.address().port));
    udp.on('message', (msg, rinfo) => this.onAnswer(me, msg, rinfo.address, rinfo.port));
    udp.on('error', () => {
      // A send error costs that query a timeout (then the next upstream); nothing else is expected.
    });
    udp.unref();
    return me;
  }

  /** A datagram on one of our sockets: accepted only if it answers a query in flight there, exactly. */
  private onAnswer(socket: PoolSocket, msg: Buffer, address: string, port: number): void {
    if (msg.length < 12 || (msg[2]! & 0x80) === 0) {
      this.rejected.malformed++;
      return;
    }
    const id = (msg[0]! << 8) | msg[1]!;
    const sent = socket.inFlight.get(id);
    if (sent === undefined || sent.pending.done) {
      this.rejected.id++;
      return;
    }
    const state = this.states[sent.upstream]!;
    if (state.upstream.port !== port || !sameAddress(state.upstream.host, address)) {
      this.rejected.source++;
      return;
    }
    this.accept(sent, msg, false);
  }

  /** An answer from the right place with the right ID: checked against the question, then used. */
  private accept(sent: Sent, msg: Buffer, overTcp: boolean): void {
    const pending = sent.pending;
    const questionEnd = 12 + sent.question.length;
    if (((msg[4]! << 8) | msg[5]!) !== 1 || msg.length < questionEnd || msg.compare(sent.question, 0, sent.question.length, 12, questionEnd) !== 0) {
      this.rejected.question++;
      return;
    }
    const flags = (msg[2]! << 8) | msg[3]!;
    if ((flags & FLAG_TC) !== 0 && !overTcp) {
      this.askOverTcp(sent);
      return;
    }
    const rcode = flags & 0xf;
    if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED || rcode === RCODE_NOTIMP || rcode === RCODE_FORMERR) {
      this.forget(sent);
      this.release(sent);
      this.failed(pending, sent.upstream, false);
      return;
    }
    try {
      dnsPacket.decode(msg);
    } catch {
      this.rejected.malformed++;
      return; // not a well-formed answer: ignore it and keep waiting (it may be forged)
    }
    // The records' owner names may echo the randomised case: cached and passed on in lower case.
    if (this.randomiseCase) foldOwnerNames(msg, questionEnd);
    const shape = inspectAnswer(msg, questionEnd);
    if (!shape) {
      this.rejected.malformed++;
      return;
    }
    const state = this.states[sent.upstream]!;
    state.downUntil = 0;
    state.answered++;
    this.finish(pending, shape, shape.rcode);
  }

  /** This upstream did not answer usefully: on a timeout pass it over for a while; try the next. */
  private failed(pending: Pending, upstream: number, markDown: boolean): void {
    const state = this.states[upstream]!;
    state.failures++;
    if (markDown) {
      state.downUntil = Date.now() + this.options.downForMs;
      // The last upstream left timed out: one more try there (a new port, ID and case) before SERVFAIL.
      if (!pending.retried && pending.tried.length >= this.states.length) {
        pending.retried = true;
        pending.tried = pending.tried.filter((i) => i !== upstream);
      }
    }
    this.attempt(pending);
  }

  /** A query's upstream is no longer waited on (answered, failed, timed out): room for the next in line. */
  private release(sent: Sent): void {
    if (!sent.counted) return;
    sent.counted = false;
    const state = this.states[sent.upstream]!;
    state.inFlight--;
    while (state.inFlight < this.maxInFlight && state.waitingAt < state.waiting.length) {
      const next = state.waiting[state.waitingAt]!;
      state.waiting[state.waitingAt++] = undefined as unknown as Pending;
      if (next.done || next.queuedFor !== sent.upstream) continue;
      this.send(next, sent.upstream);
    }
    if (state.waitingAt > 1024 && state.waitingAt * 2 > state.waiting.length) {
      state.waiting = state.waiting.slice(state.waitingAt);
      state.waitingAt = 0;
    } else if (state.waitingAt === state.waiting.length) {
      state.waiting.length = 0;
      state.waitingAt = 0;
    }
  }

  private askOverTcp(sent: Sent): void {
    const { pending, upstream } = sent;
    const state = this.states[upstream]!;
    pending.deadline = Date.now() + this.options.timeoutMs;
    pending.resendAt = 0;
    const query = this.queryMessage(sent);
    const framed = Buffer.allocUnsafe(query.length + 2);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    const socket = net.connect({ host: state.upstream.host, port: state.upstream.port });
    this.tcpQueries.add(socket);
    let received = Buffer.alloc(0);
    socket.setTimeout(this.options.timeoutMs, () => socket.destroy());
    socket.on('connect', () => socket.write(framed));
    socket.on('data', (chunk) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length >= 2) {
        const length = received.readUInt16BE(0);
        if (received.length >= length + 2) {
          socket.destroy();
          const msg = received.subarray(2, length + 2);
          if (msg.length < 12 || (msg[2]! & 0x80) === 0) this.rejected.malformed++;
          else if (((msg[0]! << 8) | msg[1]!) !== sent.id) this.rejected.id++;
          else if (!pending.done) this.accept(sent, msg, true);
        }
      }
      if (received.length > 65_537) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.tcpQueries.delete(socket);
      if (!pending.done && pending.tried[pending.tried.length - 1] === upstream) {
        this.release(sent);
        this.failed(pending, upstream, false);
      }
    });
  }

  /** A query no longer awaited: its ID is free again on its socket, which closes if it was retired and idle. */
  private forget(sent: Sent): void {
    const socket = sent.socket;
    if (socket.inFlight.get(sent.id) === sent) socket.inFlight.delete(sent.id);
    if (socket.retired && socket.inFlight.size === 0) this.closeSocket(socket);
  }

  private finish(pending: Pending, shape: AnswerShape | null, rcode: number): void {
    if (pending.done) return;
    pending.done = true;
    pending.queuedFor = -1;
    for (const sent of pending.sent) {
      this.forget(sent);
      this.release(sent);
    }
    this.inFlight.delete(pending.key);
    for (const callback of pending.callbacks) {
      try {
        callback(shape, rcode);
      } catch {
        // One waiting client's failure must not stop the others being answered.
      }
    }
  }

  private expire(): void {
    const now = Date.now();
    if (this.inFlight.size > 0) {
      for (const pending of [...this.inFlight.values()]) {
        if (pending.done) continue;
        const current = pending.tried[pending.tried.length - 1]!;
        if (pending.deadline > now) {
          if (pending.resendAt !== 0 && pending.resendAt <= now && pending.queuedFor === -1) this.send(pending, current, true);
          continue;
        }
        // A query still waiting for room was not sent: that upstream is busy, not down.
        const waited = pending.queuedFor !== -1;
        pending.queuedFor = -1;
        pending.resendAt = 0;
        for (const sent of pending.sent) if (sent.upstream === current) this.release(sent);
        this.failed(pending, current, !waited);
      }
    }
    // An idle socket past its lifetime is replaced on its next use; one nobody uses is closed here.
    for (const pool of this.pools.values()) {
      for (let i = 0; i < pool.length; i++) {
        const socket = pool[i];
        if (socket && now >= socket.retireAt && socket.inFlight.size === 0) {
          this.closeSocket(socket);
          pool[i] = undefined;
        }
      }
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweep);
    for (const pending of [...this.inFlight.values()]) this.finish(pending, null, RCODE_SERVFAIL);
    for (const pool of this.pools.values()) for (const socket of pool) if (socket) this.closeSocket(socket);
    for (const socket of [...this.retiring]) this.closeSocket(socket);
    for (const socket of this.tcpQueries) socket.destroy();
    this.pools.clear();
  }
}

/** Queries go to IP literals: answering dgram's "lookup" at once saves a dns.lookup per send. */
function literalLookup(address: string, family: unknown, callback: (error: Error | null, address: string, family: number) => void): void {
  void family;
  callback(null, address, address.includes(':') ? 6 : 4);
}

/**
 * Folds the letters of every record's owner name (the labels written out, not those reached by a
 * compression pointer, which point into the question or earlier names) to lower case, in place.
 * Record data is left alone. Stops quietly at anything malformed: inspectAnswer rejects it.
 */
function foldOwnerNames(msg: Buffer, offset: number): void {
  const records = ((msg[6]! << 8) | msg[7]!) + ((msg[8]! << 8) | msg[9]!) + ((msg[10]! << 8) | msg[11]!);
  const length = msg.length;
  for (let r = 0; r < records; r++) {
    for (;;) {
      if (offset >= length) return;
      const b = msg[offset]!;
      if (b === 0) {
        offset++;
        break;
      }
      if ((b & 0xc0) === 0xc0) {
        offset += 2;
        break;
      }
      if (b > 63 || offset + 1 + b > length) return;
      for (let i = offset + 1; i <= offset + b; i++) {
        const c = msg[i]!;
        if (c >= 65 && c <= 90) msg[i] = c | 32;
      }
      offset += b + 1;
    }
    if (offset + 10 > length) return;
    offset += 10 + ((msg[offset + 8]! << 8) | msg[offset + 9]!);
  }
}

function sameAddress(configured: string, seen: string): boolean {
  if (configured === seen) return true;
  // An IPv4 upstream reached from a dual-stack socket shows as ::ffff:a.b.c.d.
  if (seen.startsWith('::ffff:') && seen.slice(7) === configured) return true;
  return isIPv6(configured) && isIPv6(seen) && expand(configured) === expand(seen);
}

function expand(v6: string): string {
  const [head, tail = ''] = v6.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = Array(Math.max(0, 8 - h.length - t.length)).fill('0');
  return [...h, ...(v6.includes('::') ? zeros : []), ...t].map((p) => p.padStart(4, '0')).join(':');
}
