import net, { type LookupFunction, type Socket } from 'node:net';

/**
 * Connections to origins, kept alive and reused, speaking just enough HTTP/1.1 to forward one
 * request at a time: write the request head (and body), read the response head, then the body by
 * its framing (Content-Length, chunked, or until close). Node's http.request did the same with far
 * more machinery per request (a ClientRequest, an IncomingMessage, agent bookkeeping, streams);
 * this is the proxy's hot path, and doing it by hand forwards about 1.5 times as many requests per
 * CPU-second (docs/benchmarks.md). One write to the origin and one to the client per request.
 */

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

export interface ResponseHead {
  status: number;
  reason: string;
  /** name, value, name, value … as the origin sent them (like IncomingMessage.rawHeaders) */
  rawHeaders: string[];
  /** lower-cased values of the headers the proxy acts on */
  contentType: string | undefined;
  contentDisposition: string | undefined;
  connection: string | undefined;
}

export interface ForwardHandlers {
  /** the response head arrived; return false to abandon the response (the connection is dropped) */
  onHead(head: ResponseHead): boolean;
  /** a piece of the (de-chunked) body; return false to pause until `resume` is called */
  onBody(chunk: Buffer, resume: () => void): boolean;
  onEnd(): void;
  /** failed before the response ended; `beforeHead` when nothing was passed on yet */
  onError(error: NodeJS.ErrnoException, beforeHead: boolean, retryable: boolean): void;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

type BodyMode = 'none' | 'length' | 'chunked' | 'close';

/** One origin connection; reused for request after request while the origin keeps it open. */
export class UpstreamConnection {
  readonly socket: Socket;
  /** has answered a request before (an origin may close such a connection just as we reuse it) */
  reused = false;
  private idle = false;
  private handlers: ForwardHandlers | null = null;
  private headBuf: Buffer | null = null;
  private headDone = false;
  private mode: BodyMode = 'none';
  private remaining = 0;
  private chunk = new ChunkedDecoder();
  private reusable = true;
  private headRequest = false;
  private gotBytes = false;
  private finished = false;

  constructor(
    readonly key: string,
    socket: Socket,
    private readonly pool: UpstreamPool,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.onClose(new UpstreamError('the origin closed the connection', 'ECONNRESET')));
    socket.on('close', () => this.onClose(new UpstreamError('the origin closed the connection', 'ECONNRESET')));
    socket.on('error', (e: NodeJS.ErrnoException) => this.onClose(e));
    socket.on('timeout', () => {
      if (this.idle) socket.destroy();
      else socket.destroy(new UpstreamError('the origin stopped sending', 'ETIMEDOUT'));
    });
  }

  /** Sends a request head; the body (if any) follows with writeBody/endBody. */
  start(head: string, isHead: boolean, handlers: ForwardHandlers): void {
    this.idle = false;
    this.handlers = handlers;
    this.headBuf = null;
    this.headDone = false;
    this.mode = 'none';
    this.remaining = 0;
    this.reusable = true;
    this.headRequest = isHead;
    this.gotBytes = false;
    this.finished = false;
    this.socket.write(head, 'latin1');
  }

  writeBody(chunk: Buffer | string, onDrain: () => void): boolean {
    const ok = this.socket.write(chunk);
    if (!ok) this.socket.once('drain', onDrain);
    return ok;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** The client went away mid-response: this connection's state is unknown, drop it. */
  abandon(): void {
    this.handlers = null;
    this.socket.destroy();
  }

  private onData(data: Buffer): void {
    const h = this.handlers;
    if (!h) {
      // Bytes while idle (or after abandoning): nothing can be trusted on this connection.
      this.socket.destroy();
      return;
    }
    this.gotBytes = true;
    let body = data;
    if (!this.headDone) {
      const buf = this.headBuf === null ? data : Buffer.concat([this.headBuf, data]);
      const end = buf.indexOf(CRLFCRLF);
      if (end === -1) {
        if (buf.length > MAX_HEAD) return this.fail(new UpstreamError('the origin sent a response head that is too large', 'EHEADTOOLARGE'));
        this.headBuf = buf;
        return;
      }
      this.headBuf = null;
      let head: (ResponseHead & { contentLength: number; chunked: boolean; close: boolean; http10: boolean }) | null;
      try {
        head = parseResponseHead(buf.toString('latin1', 0, end));
      } catch (error) {
        return this.fail(error as UpstreamError);
      }
      body = buf.subarray(end + 4);
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        // Interim (100 Continue, 103 Early Hints): skip it and read on.
        if (body.length > 0) this.onData(body);
        return;
      }
      this.headDone = true;
      // After 101 the connection speaks another protocol: never reuse it.
      this.reusable = !head.close && !head.http10 && head.status !== 101;
      if (this.headRequest || head.status === 204 || head.status === 304 || head.status === 101) this.mode = 'none';
      else if (head.chunked) {
        this.mode = 'chunked';
        this.chunk.reset();
      } else if (head.contentLength >= 0) {
        this.mode = 'length';
        this.remaining = head.contentLength;
      } else {
        this.mode = 'close';
        this.reusable = false;
      }
      if (!h.onHead(head)) {
        this.abandon();
        return;
      }
      if (this.handlers !== h) return;
      if (this.mode === 'none' || (this.mode === 'length' && this.remaining === 0)) {
        if (body.length > 0) this.reusable = false;
        return this.finish();
      }
      if (body.length === 0) return;
    }
    this.onBodyBytes(body);
  }

  private onBodyBytes(data: Buffer): void {
    const h = this.handlers!;
    const resume = () => this.socket.resume();
    if (this.mode === 'length') {
      if (data.length > this.remaining) {
        // More than announced: pass on what was promised, never trust the rest.
        data = data.subarray(0, this.remaining);
        this.reusable = false;
      }
      this.remaining -= data.length;
      if (!h.onBody(data, resume)) this.socket.pause();
      if (this.remaining === 0) this.finish();
      return;
    }
    if (this.mode === 'close') {
      if (!h.onBody(data, resume)) this.socket.pause();
      return;
    }
    // chunked
    let paused = false;
    const done = this.chunk.push(data, (piece) => {
      if (!h.onBody(piece, resume)) paused = true;
    });
    if (this.chunk.error) return this.fail(new UpstreamError('the origin sent a malformed chunked body', 'EBADCHUNK'));
    if (paused) this.socket.pause();
    if (done) {
      if (this.chunk.leftover > 0) this.reusable = false;
      this.finish();
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const h = this.handlers!;
    this.handlers = null;
    h.onEnd();
    if (this.reusable && !this.socket.destroyed) {
      this.reused = true;
      this.pool.release(this);
    } else this.socket.destroy();
  }

  private fail(error: UpstreamError): void {
    const h = this.handlers;
    this.handlers = null;
    this.socket.destroy();
    h?.onError(error, !this.headDone, false);
  }

  private onClose(error: NodeJS.ErrnoException): void {
    this.pool.forget(this);
    const h = this.handlers;
    if (!h) return;
    this.handlers = null;
    if (this.headDone && this.mode === 'close') {
      // Close-delimited body: the close is the end.
      this.finished = true;
      h.onEnd();
      return;
    }
    // A reused connection that closed before answering anything: the origin had just let it go.
    h.onError(error, !this.headDone, this.reused && !this.gotBytes);
  }

  markIdle(idleMs: number): void {
    this.idle = true;
    this.socket.setTimeout(idleMs);
  }

  markBusy(timeoutMs: number): void {
    this.socket.setTimeout(timeoutMs);
  }
}

export interface UpstreamPoolOptions {
  lookup?: LookupFunction | undefined;
  /** opens a connection to an origin (the proxy's destination guard); default net.connect with `lookup` */
  connect?: ((options: { host: string; port: number; noDelay: boolean }) => Socket) | undefined;
  /** idle connections kept per origin (default 64) */
  maxIdlePerOrigin?: number;
  /** an idle connection is closed after this (default 30 s) */
  idleMs?: number;
  /** a connection in use with no bytes for this long fails (default 60 s) */
  activeTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly all = new Set<UpstreamConnection>();
  private readonly maxIdle: number;
  private readonly idleMs: number;
  private readonly activeMs: number;
  private readonly connectMs: number;
  opened = 0;

  constructor(private readonly options: UpstreamPoolOptions = {}) {
    this.maxIdle = options.maxIdlePerOrigin ?? 64;
    this.idleMs = options.idleMs ?? 30_000;
    this.activeMs = options.activeTimeoutMs ?? 60_000;
    this.connectMs = options.connectTimeoutMs ?? 10_000;
  }

  /** A connection to host:port, reused when one is idle; `ready` runs once it can be written to. */
  acquire(host: string, port: number, ready: (error: NodeJS.ErrnoException | null, conn: UpstreamConnection | null) => void, fresh = false): void {
    const key = `${host}:${port}`;
    if (!fresh) {
      const list = this.idle.get(key);
      while (list && list.length > 0) {
        const conn = list.pop()!;
        if (conn.socket.destroyed || !conn.socket.writable) {
          this.all.delete(conn);
          continue;
        }
        conn.markBusy(this.activeMs);
        conn.resume();
        return ready(null, conn);
      }
    }
    this.opened++;
    const socket = this.options.connect ? this.options.connect({ host, port, noDelay: true }) : net.connect({ host, port, noDelay: true, ...(this.options.lookup ? { lookup: this.options.lookup } : {}) });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connecting to ${key} took too long`), { code: 'ETIMEDOUT' })), this.connectMs);
    const onError = (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      ready(error, null);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const conn = new UpstreamConnection(key, socket, this);
      this.all.add(conn);
      conn.markBusy(this.activeMs);
      ready(null, conn);
    });
  }

  release(conn: UpstreamConnection): void {
    let list = this.idle.get(conn.key);
    if (!list) {
      list = [];
      this.idle.set(conn.key, list);
    }
    if (list.length >= this.maxIdle) {
      conn.socket.destroy();
      return;
    }
    conn.markIdle(this.idleMs);
    list.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const list = this.idle.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(conn.key);
  }

  destroy(): void {
    for (const conn of this.all) conn.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }
}

/** Status line and headers of a response head (without the final CRLFCRLF). */
export function parseResponseHead(text: string): ResponseHead & { contentLength: number; chunked: boolean; close: boolean; http10: boolean } {
  const firstEnd = text.indexOf('\r\n');
  const statusLine = firstEnd === -1 ? text : text.slice(0, firstEnd);
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new UpstreamError('the origin did not answer in HTTP/1.x', 'EBADRESPONSE');
  const http10 = m[1] === '0';
  const status = Number(m[2]);
  const rawHeaders: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let hasTransferEncoding = false;
  let connection: string | undefined;
  let contentType: string | undefined;
  let contentDisposition: string | undefined;
  let keepAlive10 = false;
  let pos = firstEnd === -1 ? text.length : firstEnd + 2;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    const line = text.slice(pos, end);
    pos = end + 2;
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) throw new UpstreamError('the origin folded a header line (obsolete, refused)', 'EBADRESPONSE');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UpstreamError('the origin sent a malformed header line', 'EBADRESPONSE');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UpstreamError('the origin sent a malformed header name', 'EBADRESPONSE');
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new UpstreamError('the origin sent a control character in a header', 'EBADRESPONSE');
    const lower = name.length <= 19 ? name.toLowerCase() : '';
    switch (lower) {
      case 'content-length': {
        if (!/^\d{1,15}$/.test(value)) throw new UpstreamError('the origin sent a malformed Content-Length', 'EBADRESPONSE');
        const n = Number(value);
        if (contentLength !== -1 && contentLength !== n) throw new UpstreamError('the origin sent two different Content-Lengths', 'EBADRESPONSE');
        contentLength = n;
        break;
      }
      case 'transfer-encoding':
        hasTransferEncoding = true;
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
        break;
      case 'connection':
        connection = connection === undefined ? value.toLowerCase() : `${connection}, ${value.toLowerCase()}`;
        break;
      case 'content-type':
        contentType = value;
        break;
      case 'content-disposition':
        contentDisposition = value;
        break;
      default:
        break;
    }
    rawHeaders.push(name, value);
  }
  // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); without chunked last, read to close.
  if (hasTransferEncoding) contentLength = -1;
  let close = false;
  if (connection !== undefined) {
    close = /(?:^|,)\s*close\s*(?:,|$)/.test(connection);
    keepAlive10 = /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(connection);
  }
  if (hasTransferEncoding && !chunked) close = true;
  return { status, reason: m[3] ?? '', rawHeaders, contentType, contentDisposition, connection, contentLength, chunked, close, http10: http10 && !keepAlive10 };
}

/**
 * A streaming decoder for chunked transfer coding: hands on the data and says where the message
 * ends (after the last chunk and any trailers), allocating nothing per chunk.
 */
export class ChunkedDecoder {
  // 0 size, 1 size-ext, 2 size LF, 3 data, 4 data CR, 5 data LF, 6 trailer line start, 7 trailer line, 8 trailer LF, 9 final LF
  private state = 0;
  private size = 0;
  private sizeDigits = 0;
  error = false;
  /** bytes after the end of the message in the last push (a pipelined response: not expected) */
  leftover = 0;

  reset(): void {
    this.state = 0;
    this.size = 0;
    this.sizeDigits = 0;
    this.error = false;
    this.leftover = 0;
  }

  /** Feeds bytes; calls `data` with body pieces; returns true when the message has ended. */
  push(buf: Buffer, data: (piece: Buffer) => void): boolean {
    let i = 0;
    const n = buf.length;
    while (i < n) {
      const c = buf[i]!;
      switch (this.state) {
        case 0: {
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v >= 0) {
            if (++this.sizeDigits > 12) return this.fail();
            this.size = this.size * 16 + v;
            i++;
          } else if (this.sizeDigits === 0) return this.fail();
          else if (c === 13) {
            this.state = 2;
            i++;
          } else if (c === 59 || c === 32 || c === 9) {
            this.state = 1;
            i++;
          } else return this.fail();
          break;
        }
        case 1:
          if (c === 13) this.state = 2;
          else if (c === 10) return this.fail();
          i++;
          break;
        case 2:
          if (c !== 10) return this.fail();
          i++;
          this.state = this.size === 0 ? 6 : 3;
          break;
        case 3: {
          const take = Math.min(this.size, n - i);
          data(buf.subarray(i, i + take));
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = 4;
          break;
        }
        case 4:
          if (c !== 13) return this.fail();
          this.state = 5;
          i++;
          break;
        case 5:
          if (c !== 10) return this.fail();
          this.state = 0;
          this.sizeDigits = 0;
          i++;
          break;
        case 6:
          // Start of a trailer line, or the final CRLF.
          if (c === 13) {
            this.state = 9;
            i++;
          } else {
            this.state = 7;
          }
          break;
        case 7:
          if (c === 13) this.state = 8;
          i++;
          break;
        case 8:
          if (c !== 10) return this.fail();
          this.state = 6;
          i++;
          break;
        case 9:
          if (c !== 10) return this.fail();
          i++;
          this.leftover = n - i;
          this.state = 10;
          return true;
        default:
          return true;
      }
    }
    return false;
  }

  private fail(): boolean {
    this.error = true;
    return false;
  }
}
