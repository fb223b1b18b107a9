import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import net from 'node:net';
import dnsPacket from 'dns-packet';
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
 * one upstream query. An answer is accepted only from the address and port it was sent to, with
 * the ID and the question it was sent with, and only if dns-packet can decode it whole. A truncated
 * UDP answer is asked again over TCP.
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
  ids: number[];
  deadline: number;
  done: boolean;
}

interface UpstreamState {
  upstream: Upstream;
  family: 4 | 6;
  downUntil: number;
  answered: number;
  failures: number;
}

export interface UpstreamStatus {
  label: string;
  healthy: boolean;
  answered: number;
  failures: number;
}

export class Forwarder {
  private readonly states: UpstreamState[];
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  private readonly byId = new Map<number, { pending: Pending; upstream: number }>();
  private readonly inFlight = new Map<string, Pending>();
  private readonly sweep: NodeJS.Timeout;
  private readonly tcpQueries = new Set<net.Socket>();
  private random = Buffer.alloc(4096);
  private randomAt = this.random.length;
  private closed = false;

  constructor(
    upstreams: Upstream[],
    private readonly options: ForwarderOptions,
  ) {
    if (upstreams.length === 0) throw new Error('at least one upstream resolver is needed');
    this.states = upstreams.map((upstream) => ({ upstream, family: isIPv6(upstream.host) ? 6 : 4, downUntil: 0, answered: 0, failures: 0 }));
    this.sweep = setInterval(() => this.expire(), Math.max(10, Math.min(100, options.timeoutMs / 4)));
    this.sweep.unref();
  }

  status(): UpstreamStatus[] {
    const now = Date.now();
    return this.states.map((s) => ({ label: s.upstream.label, healthy: s.downUntil <= now, answered: s.answered, failures: s.failures }));
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** Asks the upstreams; `callback` runs once with the answer's shape or a failure rcode. */
  resolve(key: string, question: Buffer, cd: boolean, dnssecOk: boolean, callback: ForwardCallback): void {
    const existing = this.inFlight.get(key);
    if (existing) {
      existing.callbacks.push(callback);
      return;
    }
    const pending: Pending = { key, question, cd, dnssecOk, callbacks: [callback], tried: [], ids: [], deadline: 0, done: false };
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
    const id = this.newId();
    pending.ids.push(id);
    this.byId.set(id, { pending, upstream: index });
    pending.deadline = Date.now() + this.options.timeoutMs;
    const state = this.states[index]!;
    const message = this.queryMessage(id, pending);
    this.socket(state.family).send(message, state.upstream.port, state.upstream.host, (error) => {
      if (error && !pending.done) this.failed(pending, index, true);
    });
  }

  private queryMessage(id: number, pending: Pending): Buffer {
    const out = Buffer.allocUnsafe(12 + pending.question.length + OPT_LENGTH);
    writeHeader(out, id, FLAG_RD | (pending.cd ? FLAG_CD : 0), 1, 0, 0, 1);
    pending.question.copy(out, 12);
    writeOpt(out, 12 + pending.question.length, this.options.ednsUdpSize, 0, pending.dnssecOk);
    return out;
  }

  private newId(): number {
    for (;;) {
      if (this.randomAt + 2 > this.random.length) {
        randomFillSync(this.random);
        this.randomAt = 0;
      }
      const id = this.random.readUInt16BE(this.randomAt);
      this.randomAt += 2;
      if (!this.byId.has(id)) return id;
      if (this.byId.size >= 60_000) return id; // never spin: a collision only costs a dropped late answer
    }
  }

  private socket(family: 4 | 6): dgram.Socket {
    let socket = this.sockets.get(family);
    if (socket) return socket;
    socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    // exclusive: in a cluster worker a non-exclusive bind would share the port with the other
    // workers, and answers would reach the wrong process.
    socket.bind({ port: 0, exclusive: true });
    socket.on('message', (msg, rinfo) => this.onAnswer(msg, rinfo.address, rinfo.port, false));
    socket.on('error', () => {
      // A send error is reported to its callback; nothing else is expected here.
    });
    socket.unref();
    this.sockets.set(family, socket);
    return socket;
  }

  private onAnswer(msg: Buffer, address: string, port: number, overTcp: boolean, expectedId?: number): void {
    if (msg.length < 12 || (msg[2]! & 0x80) === 0) return;
    const id = (msg[0]! << 8) | msg[1]!;
    if (expectedId !== undefined && id !== expectedId) return;
    const sent = this.byId.get(id);
    if (!sent || sent.pending.done) return;
    const state = this.states[sent.upstream]!;
    if (state.upstream.port !== port || !sameAddress(state.upstream.host, address)) return;
    const pending = sent.pending;
    // The question must be the one we asked (the upstream echoes it as sent: lower case).
    const questionEnd = 12 + pending.question.length;
    if (((msg[4]! << 8) | msg[5]!) !== 1 || msg.length < questionEnd || !sameQuestion(msg, pending.question)) return;
    const flags = (msg[2]! << 8) | msg[3]!;
    if ((flags & FLAG_QR) === 0) return;
    if ((flags & FLAG_TC) !== 0 && !overTcp) {
      this.askOverTcp(pending, sent.upstream, id);
      return;
    }
    const rcode = flags & 0xf;
    if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED || rcode === RCODE_NOTIMP || rcode === RCODE_FORMERR) {
      this.failed(pending, sent.upstream, false);
      return;
    }
    try {
      dnsPacket.decode(msg);
    } catch {
      return; // not a well-formed answer: ignore it and keep waiting (it may be forged)
    }
    const shape = inspectAnswer(msg, questionEnd);
    if (!shape) return;
    state.downUntil = 0;
    state.answered++;
    this.finish(pending, shape, shape.rcode);
  }

  /** This upstream did not answer usefully: on a timeout pass it over for a while; try the next. */
  private failed(pending: Pending, upstream: number, markDown: boolean): void {
    const state = this.states[upstream]!;
    state.failures++;
    if (markDown) state.downUntil = Date.now() + this.options.downForMs;
    this.attempt(pending);
  }

  private askOverTcp(pending: Pending, upstream: number, id: number): void {
    const state = this.states[upstream]!;
    pending.deadline = Date.now() + this.options.timeoutMs;
    const query = this.queryMessage(id, pending);
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
          this.onAnswer(received.subarray(2, length + 2), state.upstream.host, state.upstream.port, true, id);
        }
      }
      if (received.length > 65_537) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.tcpQueries.delete(socket);
      if (!pending.done && pending.tried[pending.tried.length - 1] === upstream) this.failed(pending, upstream, false);
    });
  }

  private finish(pending: Pending, shape: AnswerShape | null, rcode: number): void {
    if (pending.done) return;
    pending.done = true;
    for (const id of pending.ids) this.byId.delete(id);
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
    if (this.inFlight.size === 0) return;
    const now = Date.now();
    for (const pending of [...this.inFlight.values()]) {
      if (!pending.done && pending.deadline <= now) this.failed(pending, pending.tried[pending.tried.length - 1]!, true);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweep);
    for (const pending of [...this.inFlight.values()]) this.finish(pending, null, RCODE_SERVFAIL);
    for (const socket of this.sockets.values()) socket.close();
    for (const socket of this.tcpQueries) socket.destroy();
    this.sockets.clear();
  }
}

function sameQuestion(msg: Buffer, question: Buffer): boolean {
  const nameLength = question.length - 4;
  for (let i = 0; i < question.length; i++) {
    let c = msg[12 + i]!;
    if (i < nameLength && c >= 65 && c <= 90) c |= 32;
    if (c !== question[i]) return false;
  }
  return true;
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
