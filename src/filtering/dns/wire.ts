/**
 * The DNS wire format on the resolver's hot path: reading a query's question and EDNS(0) record,
 * and writing the answers Gatehouse makes itself (blocks, errors, cached answers), without
 * decoding whole messages into objects. dns-packet (a full codec) checks upstream answers once,
 * when they enter the cache, and builds the rare answers (SafeSearch); everything a query needs on
 * a cache hit or a block is a few byte copies here.
 *
 * Every read is bounds-checked: a malformed packet ends in a FORMERR or is dropped, never an
 * exception, a loop or a large allocation (names are at most 255 bytes; questions never follow
 * compression pointers, which is where loops would come from).
 */

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const TYPE_TXT = 16;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const CLASS_IN = 1;
export const CLASS_CH = 3;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** EDNS extended rcode 16 (upper bits 1 in the OPT TTL, lower bits 0 in the header) */
export const RCODE_BADVERS = 16;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_AD = 0x0020;
export const FLAG_CD = 0x0010;
/** the DNSSEC OK bit in the OPT record's TTL field (its low 16 bits) */
export const EDNS_DO = 0x8000;

/** Without EDNS(0), UDP answers are at most 512 bytes (RFC 1035). */
export const CLASSIC_UDP_SIZE = 512;

/** What the hot path needs from a query. One object per query; the name is one string. */
export interface Query {
  id: number;
  /** the header's flags word as sent */
  flags: number;
  /** lower case, labels joined by dots, no trailing dot ('' for the root); a dot or backslash inside a label is escaped with a backslash, a byte below 32 written as a backslash and the byte + 64 */
  name: string;
  qtype: number;
  qclass: number;
  /** offset just past the question: bytes [12, questionEnd) are the question as the client sent it */
  questionEnd: number;
  edns: boolean;
  /** the client's advertised UDP payload size (512 without EDNS) */
  udpSize: number;
  ednsVersion: number;
  dnssecOk: boolean;
}

/** parseQuery's outcome: a query, or drop it (not a query at all), or answer this rcode. */
export const DROP = -1;

const nameScratch = Buffer.alloc(4 * 256);
// Buffer#latin1Slice (what toString('latin1') ends in) without toString's dispatch on the encoding.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (start: number, end: number) => string }).latin1Slice;
const latin1 = latin1Slice ? (buf: Buffer, end: number) => latin1Slice.call(buf, 0, end) : (buf: Buffer, end: number) => buf.toString('latin1', 0, end);

/**
 * Reads a query. Returns 0 with `out` filled, DROP for anything that is not a DNS query (too short,
 * or a response: answering responses is how reflection loops start), or an rcode to answer with:
 * FORMERR for a malformed query, NOTIMP for opcodes other than QUERY. When an rcode is returned,
 * `out.id`/`out.flags` are valid and `out.questionEnd` is 12 unless the question was readable.
 */
export function parseQuery(msg: Buffer, out: Query): number {
  const length = msg.length;
  if (length < 12) return DROP;
  const flags = get16(msg, 2);
  out.id = get16(msg, 0);
  out.flags = flags;
  out.questionEnd = 12;
  out.edns = false;
  out.udpSize = CLASSIC_UDP_SIZE;
  out.ednsVersion = 0;
  out.dnssecOk = false;
  out.name = '';
  out.qtype = 0;
  out.qclass = 0;
  if ((flags & FLAG_QR) !== 0) return DROP;
  if (((flags >>> 11) & 0xf) !== 0) return RCODE_NOTIMP;
  const qdcount = get16(msg, 4);
  const ancount = get16(msg, 6);
  const nscount = get16(msg, 8);
  const arcount = get16(msg, 10);
  if (qdcount !== 1 || ancount !== 0 || nscount !== 0 || arcount > 8) return RCODE_FORMERR;

  // The question name: labels copied lower-cased into the scratch buffer, joined by dots.
  let offset = 12;
  let written = 0;
  let wireLength = 0;
  for (;;) {
    if (offset >= length) return RCODE_FORMERR;
    const labelLength = msg[offset++]!;
    if (labelLength === 0) break;
    // No compression pointers (or the reserved 0x40/0x80 label types) in a query's question.
    if (labelLength > 63) return RCODE_FORMERR;
    wireLength += labelLength + 1;
    if (wireLength > 254 || offset + labelLength > length) return RCODE_FORMERR;
    if (written > 0) nameScratch[written++] = 46;
    for (let i = 0; i < labelLength; i++) {
      let c = msg[offset + i]!;
      if (c >= 65 && c <= 90) c |= 32;
      else if (c === 46 || c === 92) nameScratch[written++] = 92;
      else if (c < 32) {
        // Control bytes are written \@, \A…: names never hold a byte below 32 (cache keys rely on it).
        nameScratch[written++] = 92;
        c += 64;
      }
      nameScratch[written++] = c;
    }
    offset += labelLength;
  }
  if (offset + 4 > length) return RCODE_FORMERR;
  out.qtype = get16(msg, offset);
  out.qclass = get16(msg, offset + 2);
  offset += 4;
  out.questionEnd = offset;
  out.name = written === 0 ? '' : latin1(nameScratch, written);

  // The additional section: at most one OPT record (EDNS(0), RFC 6891); others (e.g. a TSIG) are skipped.
  for (let r = 0; r < arcount; r++) {
    const nameEnd = skipName(msg, offset);
    if (nameEnd < 0 || nameEnd + 10 > length) return RCODE_FORMERR;
    const type = get16(msg, nameEnd);
    const rdLength = get16(msg, nameEnd + 8);
    if (nameEnd + 10 + rdLength > length) return RCODE_FORMERR;
    if (type === TYPE_OPT) {
      if (out.edns || nameEnd !== offset + 1 || msg[offset] !== 0) return RCODE_FORMERR;
      out.edns = true;
      const size = get16(msg, nameEnd + 2);
      out.udpSize = size < CLASSIC_UDP_SIZE ? CLASSIC_UDP_SIZE : size;
      out.ednsVersion = msg[nameEnd + 5]!;
      out.dnssecOk = (get16(msg, nameEnd + 6) & EDNS_DO) !== 0;
    }
    offset = nameEnd + 10 + rdLength;
  }
  return 0;
}

/**
 * The offset just past a (possibly compressed) name starting at `offset`, or -1 if it runs past
 * the end or is malformed. Does not follow pointers (a pointer ends the name), so it cannot loop.
 */
export function skipName(msg: Buffer, offset: number): number {
  const length = msg.length;
  let total = 0;
  for (;;) {
    if (offset >= length) return -1;
    const b = msg[offset]!;
    if (b === 0) return offset + 1;
    if ((b & 0xc0) === 0xc0) return offset + 2 <= length ? offset + 2 : -1;
    if (b > 63) return -1;
    total += b + 1;
    if (total > 255) return -1;
    offset += b + 1;
  }
}

/**
 * Reads a (possibly compressed) name as lower-case dotted text, following at most 64 pointers and
 * only backwards, so a compression loop ends in null rather than a hang.
 *
 * The name must be where a name can be (found by fuzzing, issue 10): its own labels end before `end`
 * (the end of the record data holding it), a pointer never leads into the 12-byte header, and a name
 * reached through a pointer ends before that pointer (an earlier name, RFC 1035 4.1.4). Otherwise
 * the bytes read could reach past the record into the upstream's OPT record or header, which the
 * answer devices get does not carry: the name checked against the policy would not be the name a
 * device reads.
 */
export function readName(msg: Buffer, offset: number, end = msg.length): string | null {
  const parts: string[] = [];
  let jumps = 0;
  let total = 0;
  let limit = offset;
  let bound = end < msg.length ? end : msg.length;
  for (;;) {
    if (offset >= bound) return null;
    const b = msg[offset]!;
    if (b === 0) break;
    if ((b & 0xc0) === 0xc0) {
      if (offset + 1 >= bound || ++jumps > 64) return null;
      const target = ((b & 0x3f) << 8) | msg[offset + 1]!;
      if (target >= limit || target < 12) return null;
      bound = offset;
      limit = target;
      offset = target;
      continue;
    }
    if (b > 63 || offset + 1 + b > bound) return null;
    total += b + 1;
    if (total > 255) return null;
    parts.push(msg.toString('latin1', offset + 1, offset + 1 + b).toLowerCase());
    offset += b + 1;
  }
  return parts.join('.');
}

/** A name in wire format (labels), lower case; null if a label is empty or too long. */
export function encodeName(name: string): Buffer | null {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const labels = trimmed.toLowerCase().split('.');
  const out = Buffer.alloc(trimmed.length + 2);
  let o = 0;
  for (const label of labels) {
    if (label.length === 0 || label.length > 63) return null;
    out[o++] = label.length;
    o += out.write(label, o, 'latin1');
  }
  out[o++] = 0;
  return o > 255 ? null : out.subarray(0, o);
}

/** A question section (name, type, class IN) in wire format. */
export function encodeQuestion(name: string, qtype: number): Buffer | null {
  const wire = encodeName(name);
  if (!wire) return null;
  const out = Buffer.alloc(wire.length + 4);
  wire.copy(out, 0);
  out.writeUInt16BE(qtype, wire.length);
  out.writeUInt16BE(CLASS_IN, wire.length + 2);
  return out;
}

/** Copies small byte ranges without Buffer#copy's call overhead (questions and records are short). */
export function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): void {
  if (end - start > 96) {
    to.set(from.subarray(start, end), at);
    return;
  }
  for (let i = start; i < end; i++) to[at++] = from[i]!;
}

function get16(buf: Uint8Array, offset: number): number {
  return (buf[offset]! << 8) | buf[offset + 1]!;
}

function put16(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 8;
  buf[offset + 1] = value & 0xff;
}

function put32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/** Bytes of our OPT record in an answer. */
export const OPT_LENGTH = 11;

/** Writes an OPT record (root name, our UDP size, extended rcode, DO echoed) at `offset`. */
export function writeOpt(buf: Buffer, offset: number, udpSize: number, extendedRcode: number, dnssecOk: boolean): number {
  buf[offset] = 0;
  put16(buf, offset + 1, TYPE_OPT);
  put16(buf, offset + 3, udpSize);
  buf[offset + 5] = extendedRcode >>> 4;
  buf[offset + 6] = 0; // version 0
  put16(buf, offset + 7, dnssecOk ? EDNS_DO : 0);
  put16(buf, offset + 9, 0);
  return offset + OPT_LENGTH;
}

/**
 * The flags of an answer to `query`: QR, the client's RD and CD, RA (we recurse), and the rcode's
 * low four bits. Opcode is always QUERY here.
 */
export function answerFlags(queryFlags: number, rcode: number, extra = 0): number {
  return FLAG_QR | (queryFlags & (FLAG_RD | FLAG_CD)) | FLAG_RA | extra | (rcode & 0xf);
}

export function writeHeader(buf: Buffer, id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
  put16(buf, 0, id);
  put16(buf, 2, flags);
  put16(buf, 4, qd);
  put16(buf, 6, an);
  put16(buf, 8, ns);
  put16(buf, 10, ar);
}

/**
 * An answer with no records of our own: the header, the client's question (when it was readable)
 * and an OPT record if the client sent one. Used for errors, NODATA without SOA and truncation.
 */
export function bareAnswer(msg: Buffer, query: Query, rcode: number, ourUdpSize: number, extra = 0): Buffer {
  const questionLength = query.questionEnd - 12;
  const edns = query.edns;
  const out = Buffer.allocUnsafe(12 + questionLength + (edns ? OPT_LENGTH : 0));
  writeHeader(out, query.id, answerFlags(query.flags, rcode, extra), questionLength > 0 ? 1 : 0, 0, 0, edns ? 1 : 0);
  copyBytes(msg, 12, query.questionEnd, out, 12);
  if (edns) writeOpt(out, 12 + questionLength, ourUdpSize, rcode, query.dnssecOk);
  return out;
}

/** The SOA record Gatehouse puts in the authority section of the negative answers it makes (RFC 2308). */
export function syntheticSoaRdata(ttl: number): Buffer {
  const mname = encodeName('gatehouse.invalid')!;
  const rname = encodeName('hostmaster.gatehouse.invalid')!;
  const out = Buffer.alloc(mname.length + rname.length + 20);
  mname.copy(out, 0);
  rname.copy(out, mname.length);
  let o = mname.length + rname.length;
  out.writeUInt32BE(1, o); // serial
  out.writeUInt32BE(3600, o + 4); // refresh
  out.writeUInt32BE(600, o + 8); // retry
  out.writeUInt32BE(86400, o + 12); // expire
  out.writeUInt32BE(ttl, o + 16); // minimum: the negative-caching TTL
  o += 20;
  return out;
}

/**
 * A block answer: NXDOMAIN or NODATA with our SOA (so resolvers and stubs cache the "no" for `ttl`
 * seconds, RFC 2308), or one A/AAAA record pointing at the block page. The owner of each record is
 * a pointer to the question name (offset 12).
 */
export function blockAnswer(msg: Buffer, query: Query, rcode: number, ttl: number, soaRdata: Buffer, address: Buffer | null, ourUdpSize: number): Buffer {
  const questionLength = query.questionEnd - 12;
  const edns = query.edns;
  const recordLength = address ? 12 + address.length : 12 + soaRdata.length;
  const out = Buffer.allocUnsafe(12 + questionLength + recordLength + (edns ? OPT_LENGTH : 0));
  writeHeader(out, query.id, answerFlags(query.flags, rcode, FLAG_AA), 1, address ? 1 : 0, address ? 0 : 1, edns ? 1 : 0);
  copyBytes(msg, 12, query.questionEnd, out, 12);
  let o = 12 + questionLength;
  out[o] = 0xc0;
  out[o + 1] = 12;
  put16(out, o + 2, address ? (address.length === 4 ? TYPE_A : TYPE_AAAA) : TYPE_SOA);
  put16(out, o + 4, CLASS_IN);
  put32(out, o + 6, ttl);
  const rdata = address ?? soaRdata;
  put16(out, o + 10, rdata.length);
  copyBytes(rdata, 0, rdata.length, out, o + 12);
  o += 12 + rdata.length;
  if (edns) writeOpt(out, o, ourUdpSize, 0, query.dnssecOk);
  return out;
}

/** What the cache keeps of an upstream answer (see inspectAnswer). */
export interface AnswerShape {
  rcode: number;
  /** AD from the upstream (passed on only to clients that asked for DNSSEC) */
  authenticated: boolean;
  /** answer, authority, additional counts without the upstream's OPT record */
  an: number;
  ns: number;
  ar: number;
  /** the records after the question, without the upstream's OPT record */
  body: Buffer;
  /** offsets in `body` of every record's TTL field, and the TTLs as received */
  ttlOffsets: Uint16Array;
  ttls: Uint32Array;
  /** how long the answer may be cached: min of answer TTLs; for a negative answer min(SOA TTL, SOA minimum); -1 = do not cache */
  cacheTtl: number;
  /** CNAME targets in the answer section (checked against the policy like the name asked) */
  cnames: string[];
}

/**
 * Reads an upstream answer whose question has already been matched, ending at `questionEnd`.
 * Returns null if the records are malformed.
 */
export function inspectAnswer(msg: Buffer, questionEnd: number): AnswerShape | null {
  const length = msg.length;
  if (length < 12) return null;
  const rcode = msg[3]! & 0xf;
  const an = get16(msg, 6);
  const ns = get16(msg, 8);
  const ar = get16(msg, 10);
  const total = an + ns + ar;
  const offsets: number[] = [];
  const ttls: number[] = [];
  const cnames: string[] = [];
  let minAnswerTtl = Number.MAX_SAFE_INTEGER;
  let negativeTtl = -1;
  let optStart = -1;
  let optEnd = -1;
  let offset = questionEnd;
  for (let r = 0; r < total; r++) {
    const start = offset;
    const nameEnd = skipName(msg, offset);
    if (nameEnd < 0 || nameEnd + 10 > length) return null;
    const type = get16(msg, nameEnd);
    const ttl = msg.readUInt32BE(nameEnd + 4);
    const rdLength = get16(msg, nameEnd + 8);
    const end = nameEnd + 10 + rdLength;
    if (end > length) return null;
    if (type === TYPE_OPT) {
      if (r < an + ns || optStart !== -1) return null;
      optStart = start;
      optEnd = end;
    } else {
      offsets.push(nameEnd + 4);
      ttls.push(ttl);
      if (r < an) {
        if (ttl < minAnswerTtl) minAnswerTtl = ttl;
        if (type === TYPE_CNAME) {
          const target = readName(msg, nameEnd + 10, end);
          if (target === null) return null;
          cnames.push(target);
        }
      } else if (r < an + ns && type === TYPE_SOA) {
        const mnameEnd = skipName(msg, nameEnd + 10);
        const rnameEnd = mnameEnd < 0 ? -1 : skipName(msg, mnameEnd);
        if (rnameEnd < 0 || rnameEnd + 20 > end) return null;
        const minimum = msg.readUInt32BE(rnameEnd + 16);
        negativeTtl = Math.min(ttl, minimum);
      }
    }
    offset = end;
  }
  // The shape outlives `msg` (a socket's buffer): body is always a copy of its own.
  let body: Buffer;
  let shift = 0;
  if (optStart === -1) body = Buffer.from(msg.subarray(questionEnd, offset));
  else {
    body = Buffer.concat([msg.subarray(questionEnd, optStart), msg.subarray(optEnd, offset)]);
    shift = optEnd - optStart;
  }
  const ttlOffsets = new Uint16Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i]!;
    ttlOffsets[i] = (o > optStart && optStart !== -1 ? o - shift : o) - questionEnd;
  }
  let cacheTtl = -1;
  if (rcode === RCODE_NOERROR && an > 0) cacheTtl = minAnswerTtl;
  else if ((rcode === RCODE_NXDOMAIN || (rcode === RCODE_NOERROR && an === 0)) && negativeTtl >= 0) cacheTtl = negativeTtl;
  return {
    rcode,
    authenticated: (msg[3]! & FLAG_AD) !== 0,
    an,
    ns,
    ar: ar - (optStart === -1 ? 0 : 1),
    body,
    ttlOffsets,
    ttls: Uint32Array.from(ttls),
    cacheTtl,
    cnames,
  };
}

/**
 * An answer from a cached shape for a client's query: header, the client's question as sent, the
 * records with their TTLs counted down by `elapsedSeconds`, our OPT record. Returns a truncated
 * answer (TC set, no records) when it would exceed `maxSize`, so the client retries over TCP.
 */
export function renderAnswer(msg: Buffer, query: Query, shape: AnswerShape, elapsedSeconds: number, maxSize: number, ourUdpSize: number): Buffer {
  const questionLength = query.questionEnd - 12;
  const edns = query.edns;
  const size = 12 + questionLength + shape.body.length + (edns ? OPT_LENGTH : 0);
  const ad = shape.authenticated && (query.dnssecOk || (query.flags & FLAG_AD) !== 0) ? FLAG_AD : 0;
  if (size > maxSize) return bareAnswer(msg, query, shape.rcode, ourUdpSize, FLAG_TC | ad);
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, query.id, answerFlags(query.flags, shape.rcode, ad), 1, shape.an, shape.ns, shape.ar + (edns ? 1 : 0));
  copyBytes(msg, 12, query.questionEnd, out, 12);
  const base = 12 + questionLength;
  const body = shape.body;
  out.set(body, base);
  if (elapsedSeconds > 0) {
    const offsets = shape.ttlOffsets;
    const ttls = shape.ttls;
    for (let i = 0; i < offsets.length; i++) {
      const left = ttls[i]! - elapsedSeconds;
      put32(out, base + offsets[i]!, left > 0 ? left : 0);
    }
  }
  if (edns) writeOpt(out, base + shape.body.length, ourUdpSize, shape.rcode, query.dnssecOk);
  return out;
}
