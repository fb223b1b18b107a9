import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Batched UDP for the resolver (native/udp/udp_batch.c): the socket is read with recvmmsg(2) into
 * buffers shared with JavaScript, the resolver is called for each datagram of a batch, and the
 * answers it gives while the batch is handled go out together with one sendmmsg(2). Answers that
 * come later (after an upstream replied) are sent one by one. Optional: without the compiled module
 * (not Linux, no C compiler at install) the resolver uses node:dgram and says so.
 */

interface Binding {
  open(host: string, port: number, reusePort: boolean, receiveBuffer: number, recv: Buffer, meta: Buffer, send: Buffer, sendMeta: Buffer, slot: number, batch: number): [unknown, number];
  start(handle: unknown, onBatch: (count: number) => void): void;
  flush(handle: unknown, count: number): number;
  sendTo(handle: unknown, answer: Buffer, ip: string, port: number): boolean;
  /** absent from a module built before it: then each later message is sent alone */
  sendMany?(handle: unknown, buffer: Buffer, meta: Buffer, count: number): number;
  close(handle: unknown): void;
}

const META_SIZE = 24;
const SEND_META_SIZE = 4;
const LATER_META_SIZE = 24;
const MODULE_PATH = fileURLToPath(new URL('../../../native/udp/build/Release/gatehouse_udp.node', import.meta.url));

let binding: Binding | null | undefined;
let loadError: string | null = null;

/** The compiled module, or null (and why, from `nativeUdpUnavailable`). GATEHOUSE_DNS_NATIVE=0 turns it off. */
export function nativeUdpBinding(): Binding | null {
  if (binding !== undefined) return binding;
  if (process.platform !== 'linux') {
    loadError = 'batched UDP needs Linux (recvmmsg/sendmmsg)';
    return (binding = null);
  }
  if (process.env.GATEHOUSE_DNS_NATIVE === '0') {
    loadError = 'turned off by GATEHOUSE_DNS_NATIVE=0';
    return (binding = null);
  }
  try {
    binding = createRequire(import.meta.url)(MODULE_PATH) as Binding;
  } catch (error) {
    loadError = `${MODULE_PATH} did not load (${(error as Error).message.split('\n')[0]}); run npm run build`;
    binding = null;
  }
  return binding;
}

export function nativeUdpUnavailable(): string | null {
  nativeUdpBinding();
  return loadError;
}

export interface BatchedUdpOptions {
  host: string;
  port: number;
  /** SO_REUSEPORT: each worker process binds its own socket and the kernel spreads datagrams over them */
  reusePort: boolean;
  receiveBuffer: number;
  /** datagrams read per system call */
  batch?: number;
  /** bytes per datagram slot; longer datagrams are dropped (a DNS query is a few hundred bytes) */
  slot?: number;
}

export class BatchedUdpSocket {
  readonly port: number;
  private readonly binding: Binding;
  private readonly handle: unknown;
  private readonly recv: Buffer;
  private readonly meta: Buffer;
  private readonly sendBuf: Buffer;
  private readonly sendMeta: Buffer;
  private readonly slot: number;
  private readonly batch: number;
  private readonly v4Names = new Map<number, string>();
  private current = -1;
  private currentIp = '';
  private currentPort = 0;
  private pending = 0;
  private closed = false;
  /** messages sent outside a batch (answers after an upstream replied, queries to upstreams), gathered for one sendmmsg */
  private readonly laterBuf: Buffer;
  private readonly laterMeta: Buffer;
  private later = 0;
  private laterScheduled = false;
  private readonly v4Bytes = new Map<string, number>();
  private readonly flushLater = () => {
    this.laterScheduled = false;
    const count = this.later;
    this.later = 0;
    if (count > 0 && !this.closed) this.binding.sendMany!(this.handle, this.laterBuf, this.laterMeta, count);
  };

  /** `onDropped` is told of each datagram longer than a slot (dropped unread: no query is that long). */
  constructor(options: BatchedUdpOptions, onMessage: (msg: Buffer, ip: string, port: number) => void, onDropped: () => void) {
    const binding = nativeUdpBinding();
    if (binding === null) throw new Error(`batched UDP is not available: ${loadError}`);
    this.binding = binding;
    this.batch = options.batch ?? 64;
    this.slot = options.slot ?? 4096;
    this.recv = Buffer.alloc(this.slot * this.batch);
    this.meta = Buffer.alloc(META_SIZE * this.batch);
    this.sendBuf = Buffer.alloc(this.slot * this.batch);
    this.sendMeta = Buffer.alloc(SEND_META_SIZE * this.batch);
    this.laterBuf = Buffer.alloc(this.slot * this.batch);
    this.laterMeta = Buffer.alloc(LATER_META_SIZE * this.batch);
    const [handle, port] = binding.open(options.host, options.port, options.reusePort, options.receiveBuffer, this.recv, this.meta, this.sendBuf, this.sendMeta, this.slot, this.batch);
    this.handle = handle;
    this.port = port;
    const { recv, meta, slot } = this;
    binding.start(handle, (count: number) => {
      this.pending = 0;
      try {
        for (let i = 0; i < count; i++) {
          const m = i * META_SIZE;
          if (meta[m + 5] !== 0) {
            onDropped();
            continue;
          }
          const length = (meta[m]! << 8) | meta[m + 1]!;
          const port = (meta[m + 2]! << 8) | meta[m + 3]!;
          const ip = meta[m + 4] === 4 ? this.v4(m + 8) : v6Text(meta, m + 8);
          this.current = i;
          this.currentIp = ip;
          this.currentPort = port;
          onMessage(recv.subarray(i * slot, i * slot + length), ip, port);
        }
      } finally {
        this.current = -1;
        if (this.pending > 0 && !this.closed) binding.flush(handle, this.pending);
        this.pending = 0;
      }
    });
  }

  /**
   * Sends an answer: queued for the batch's sendmmsg when it answers the datagram being handled;
   * otherwise gathered with the other messages sent before the current callback returns (a
   * microtask sends them with one sendmmsg). The message passed to `onMessage` is only valid until it returns.
   */
  send(answer: Buffer, ip: string, port: number): void {
    if (this.closed) return;
    if (this.current >= 0 && port === this.currentPort && ip === this.currentIp && answer.length <= this.slot) {
      const n = this.pending++;
      answer.copy(this.sendBuf, n * this.slot);
      const m = n * SEND_META_SIZE;
      this.sendMeta[m] = answer.length >>> 8;
      this.sendMeta[m + 1] = answer.length & 0xff;
      this.sendMeta[m + 2] = this.current >>> 8;
      this.sendMeta[m + 3] = this.current & 0xff;
      return;
    }
    const v4 = answer.length <= this.slot && this.binding.sendMany !== undefined ? this.v4Address(ip) : -1;
    if (v4 < 0) {
      this.binding.sendTo(this.handle, answer, ip, port);
      return;
    }
    const n = this.later++;
    answer.copy(this.laterBuf, n * this.slot);
    const m = n * LATER_META_SIZE;
    const meta = this.laterMeta;
    meta[m] = answer.length >>> 8;
    meta[m + 1] = answer.length & 0xff;
    meta[m + 2] = 4;
    meta[m + 4] = port >>> 8;
    meta[m + 5] = port & 0xff;
    meta.writeUInt32BE(v4, m + 8);
    if (this.later === this.batch) this.flushLater();
    else if (!this.laterScheduled) {
      this.laterScheduled = true;
      queueMicrotask(this.flushLater);
    }
  }

  /** An IPv4 literal as a number, or -1 (IPv6 and anything else go out one by one). */
  private v4Address(ip: string): number {
    let n = this.v4Bytes.get(ip);
    if (n !== undefined) return n;
    const parts = ip.split('.');
    n = -1;
    if (parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) n = ((Number(parts[0]) << 24) | (Number(parts[1]) << 16) | (Number(parts[2]) << 8) | Number(parts[3])) >>> 0;
    if (this.v4Bytes.size >= 65_536) this.v4Bytes.clear();
    this.v4Bytes.set(ip, n);
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.binding.close(this.handle);
  }

  private v4(at: number): string {
    const meta = this.meta;
    const key = ((meta[at]! << 24) | (meta[at + 1]! << 16) | (meta[at + 2]! << 8) | meta[at + 3]!) >>> 0;
    let text = this.v4Names.get(key);
    if (text === undefined) {
      text = `${meta[at]}.${meta[at + 1]}.${meta[at + 2]}.${meta[at + 3]}`;
      if (this.v4Names.size >= 65_536) this.v4Names.clear();
      this.v4Names.set(key, text);
    }
    return text;
  }
}

/** An IPv6 address as the shortest text (RFC 5952), as node:dgram reports it. */
function v6Text(bytes: Buffer, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
