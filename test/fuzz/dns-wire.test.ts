import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/filtering/engine/snapshot.js';
import { StaticFilterPoint } from '../../src/filtering/point.js';
import { startDnsServer, type DnsServerHandle } from '../../src/filtering/dns/server.js';
import {
  bareAnswer,
  blockAnswer,
  CLASS_IN,
  DROP,
  encodeQuestion,
  inspectAnswer,
  parseQuery,
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  readName,
  renderAnswer,
  skipName,
  syntheticSoaRdata,
  type Query,
} from '../../src/filtering/dns/wire.js';
import { startStubUpstream, type StubUpstream } from '../helpers/dns-upstream.js';
import { fuzz, fuzzTimeoutMs } from '../helpers/fuzz.js';

/**
 * Fuzzing the DNS wire parser (issue 10, "Done when"): src/filtering/dns/wire.ts reads every query
 * the resolver receives and every upstream answer it caches. Random bytes, mutated valid queries,
 * compression-pointer loops, truncated labels and huge counts go to parseQuery, skipName, readName
 * and inspectAnswer through a buffer that throws on any read outside it and counts reads: they must
 * never throw (they return DROP, an rcode or null), never read outside the message, and do work
 * bounded by its length (no loop). Valid messages round-trip: the question read is the one written,
 * and answers written from it decode with dns-packet. Then the real resolver over UDP and TCP: hostile
 * packets never crash it, every answer it sends is a well-formed DNS response, and a good query is
 * answered after each case. Each property runs for the fuzz budget (test/helpers/fuzz.ts).
 */

const run = promisify(execFile);

// ---- a buffer that refuses to be read outside itself ----------------------------------------------

class OutOfBounds extends Error {}

const INDEX = /^(-?\d+(\.\d+)?(e[+-]?\d+)?|NaN|-?Infinity|undefined|null)$/;

/** `bytes` as a Buffer whose element reads are counted and throw OutOfBounds outside [0, length). */
function guarded(bytes: Uint8Array): { buf: Buffer; reads: () => number } {
  const target = Buffer.from(bytes);
  let reads = 0;
  const buf = new Proxy(target, {
    get(t, key) {
      if (typeof key === 'string' && INDEX.test(key)) {
        reads++;
        const i = Number(key);
        if (!Number.isInteger(i) || i < 0 || i >= t.length) throw new OutOfBounds(`read at [${key}] of a ${t.length}-byte message`);
        return t[i];
      }
      const value = Reflect.get(t, key, t) as unknown;
      // Buffer's own methods (subarray, readUInt32BE, toString) run on the real buffer: Node bounds-checks them (and throws RangeError, which fails the property).
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
  return { buf, reads: () => reads };
}

const decodes = (msg: Buffer) => {
  try {
    dnsPacket.decode(msg);
    return true;
  } catch {
    return false;
  }
};

const freshQuery = (): Query => ({ id: 0, flags: 0, name: '', qtype: 0, qclass: 0, questionEnd: 12, edns: false, udpSize: 512, ednsVersion: 0, dnssecOk: false });

// ---- generators -------------------------------------------------------------------------------------

const u16 = fc.integer({ min: 0, max: 0xffff });
/** counts: mostly small, often huge */
const count = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(8, 9, 255, 256, 0x7fff, 0xffff) }, { weight: 1, arbitrary: u16 });
const ldhLabel = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/).map((s) => Buffer.from(s, 'latin1'));
const anyLabel = fc.uint8Array({ minLength: 1, maxLength: 63 }).map((a) => Buffer.from(a));
const label = fc.oneof({ weight: 3, arbitrary: ldhLabel }, { weight: 1, arbitrary: anyLabel }, { weight: 1, arbitrary: fc.constantFrom(Buffer.from('.'), Buffer.from('\\'), Buffer.from([0]), Buffer.from('A.b'), Buffer.alloc(63, 0x61)) });
/** labels whose wire form (with the root) fits in 255 bytes */
const labels = fc.array(label, { maxLength: 8 }).map((ls) => {
  const out: Buffer[] = [];
  let size = 1;
  for (const l of ls) {
    if (size + l.length + 1 > 255) break;
    out.push(l);
    size += l.length + 1;
  }
  return out;
});

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

const nameWire = (ls: Buffer[]) => Buffer.concat([...ls.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);

interface ValidQuery {
  id: number;
  flags: number;
  labels: Buffer[];
  qtype: number;
  qclass: number;
  edns: { udpSize: number; version: number; dnssecOk: boolean } | null;
  /** an extra record in the additional section (a TSIG-like one, skipped by the parser) */
  extra: Buffer | null;
}

const validQuery: fc.Arbitrary<ValidQuery> = fc.record({
  id: u16,
  flags: fc.subarray([0x0100, 0x0020, 0x0010, 0x0200, 0x0400, 0x0080, 0x0040]).map((fs) => fs.reduce((a, b) => a | b, 0)),
  labels,
  qtype: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(1, 28, 5, 16, 15, 6, 65, 255, 252, 251) }, { weight: 1, arbitrary: u16 }),
  qclass: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(3, 254, 255) }, { weight: 1, arbitrary: u16 }),
  edns: fc.option(fc.record({ udpSize: u16, version: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), dnssecOk: fc.boolean() })),
  // (never type 41: an OPT record in the additional section is EDNS, which `edns` generates on purpose)
  extra: fc.option(fc.tuple(labels, u16.filter((t) => t !== 41), fc.uint8Array({ maxLength: 40 })).map(([ls, type, rdata]) => Buffer.concat([nameWire(ls), Buffer.from([type >> 8, type & 0xff, 0, 255, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff]), Buffer.from(rdata)])), { freq: 4 }),
});

function encodeQuery(q: ValidQuery): Buffer {
  const parts = [header(q.id, q.flags, 1, 0, 0, (q.edns ? 1 : 0) + (q.extra ? 1 : 0)), nameWire(q.labels), Buffer.from([q.qtype >> 8, q.qtype & 0xff, q.qclass >> 8, q.qclass & 0xff])];
  if (q.extra) parts.push(q.extra);
  if (q.edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(q.edns.udpSize, 3);
    opt[6] = q.edns.version;
    opt.writeUInt16BE(q.edns.dnssecOk ? 0x8000 : 0, 7);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** The name parseQuery should read: lower case, dots between labels, `.` and `\` escaped, control bytes as \@, \A, … */
function expectedName(ls: Buffer[]): string {
  return ls
    .map((l) =>
      [...l]
        .map((c) => {
          if (c >= 65 && c <= 90) return String.fromCharCode(c | 32);
          if (c === 46 || c === 92) return `\\${String.fromCharCode(c)}`;
          if (c < 32) return `\\${String.fromCharCode(c + 64)}`;
          return String.fromCharCode(c);
        })
        .join(''),
    )
    .join('.');
}

/** A piece of a hostile name: labels, pointers (to anywhere, to themselves, forwards), reserved label types, lengths past the end. */
const namePiece = fc.oneof(
  { weight: 4, arbitrary: label.map((l) => Buffer.concat([Buffer.from([l.length]), l])) },
  { weight: 2, arbitrary: u16.map((o) => Buffer.from([0xc0 | ((o >> 8) & 0x3f), o & 0xff])) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xc0, 12]), Buffer.from([0xc0, 14]), Buffer.from([0xc0]), Buffer.from([0x40, 1]), Buffer.from([0x80, 1]), Buffer.from([64]), Buffer.from([63, 97]), Buffer.from([0]), Buffer.from([0xff, 0xff])) },
);

const hostileStructured = fc
  .tuple(u16, fc.oneof(fc.constant(0x0100), u16), count, count, count, count, fc.array(namePiece, { maxLength: 40 }), fc.uint8Array({ maxLength: 40 }))
  .map(([id, flags, qd, an, ns, ar, pieces, tail]) => Buffer.concat([header(id, flags, qd, an, ns, ar), ...pieces, Buffer.from(tail)]));

/** Byte-level mutations: flips, inserts, cuts, a 16-bit count or length overwritten, truncation. */
function mutate(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.constantFrom('flip', 'insert', 'cut', 'set16', 'truncate'), fc.integer({ min: 0, max: 0xffff })), { minLength: 1, maxLength: 6 })).map(([b, ops]) => {
    let m = Buffer.from(b);
    for (const [at, op, value] of ops) {
      const i = m.length === 0 ? 0 : at % m.length;
      if (op === 'flip' && m.length > 0) m[i] = value & 0xff;
      else if (op === 'insert') m = Buffer.concat([m.subarray(0, i), Buffer.from([value & 0xff]), m.subarray(i)]);
      else if (op === 'cut') m = Buffer.concat([m.subarray(0, i), m.subarray(i + 1)]);
      else if (op === 'set16' && m.length >= 2) m.writeUInt16BE(value, value % 3 === 0 && m.length >= 12 ? 4 + (at % 4) * 2 : Math.min(i, m.length - 2));
      else if (op === 'truncate') m = m.subarray(0, i);
    }
    return m;
  });
}

/** An upstream-style response for a question, built by dns-packet: records of several types, an SOA, an OPT. */
const ldhName = fc.array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const ttl = fc.oneof(fc.integer({ min: 0, max: 86_400 }), fc.constantFrom(0, 1, 0x7fffffff));
const record = fc.oneof(
  fc.record({ type: fc.constant('A' as const), ttl, data: fc.ipV4() }),
  fc.record({ type: fc.constant('AAAA' as const), ttl, data: fc.constantFrom('2001:db8::1', '::1', 'fe80::1:2') }),
  fc.record({ type: fc.constant('CNAME' as const), ttl, data: ldhName }),
  fc.record({ type: fc.constant('TXT' as const), ttl, data: fc.string({ maxLength: 60 }) }),
  fc.record({ type: fc.constant('MX' as const), ttl, data: fc.record({ preference: u16, exchange: ldhName }) }),
);

/** Upstream-style answers (CNAME chains, SOA, OPT), mutated, and with compression pointers planted in names and CNAME data. */
const hostileResponse = fc
  .tuple(ldhName, fc.array(record, { maxLength: 5 }), fc.boolean(), fc.array(fc.tuple(fc.nat(), u16), { maxLength: 3 }))
  .map(([qname, records, soa, pointers]) => {
    const m = Buffer.from(
      dnsPacket.encode({
        id: 9,
        type: 'response',
        flags: dnsPacket.RECURSION_AVAILABLE,
        questions: [{ name: qname, type: 'A' }],
        answers: records.map((r) => ({ name: qname, ...r }) as dnsPacket.Answer),
        authorities: soa ? [{ name: qname, type: 'SOA', ttl: 60, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 5 } }] : [],
        additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer],
      }),
    );
    for (const [at, target] of pointers) if (m.length > 14) m.writeUInt16BE(0xc000 | (target % m.length), 12 + (at % (m.length - 13)));
    return m;
  });

const hostile = fc.oneof(
  { weight: 2, arbitrary: hostileResponse },
  { weight: 2, arbitrary: mutate(hostileResponse) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
  { weight: 3, arbitrary: validQuery.map(encodeQuery) },
  { weight: 4, arbitrary: mutate(validQuery.map(encodeQuery)) },
  { weight: 4, arbitrary: hostileStructured },
);

// ---- the parser on its own --------------------------------------------------------------------------

describe('fuzzing the DNS wire parser', () => {
  it(
    'FI-01 parseQuery, skipName, readName and inspectAnswer never throw, never read outside the message and do work bounded by its length, whatever the bytes',
    async () => {
      await fuzz(
        'dns-wire-parse',
        fc.property(hostile, fc.nat(), fc.nat(), (bytes, a, b) => {
          const length = bytes.length;
          const { buf, reads } = guarded(bytes);
          const query = freshQuery();
          const status = parseQuery(buf, query);
          expect([DROP, 0, RCODE_FORMERR, RCODE_NOTIMP]).toContain(status);
          // The question is read once, the additional section skipped once: linear.
          expect(reads()).toBeLessThanOrEqual(2 * length + 16);
          if (status !== DROP) {
            expect(query.questionEnd).toBeGreaterThanOrEqual(12);
            expect(query.questionEnd).toBeLessThanOrEqual(length);
            // An answer to it (FORMERR, NOTIMP, REFUSED or a block) is a well-formed DNS response.
            const bare = bareAnswer(buf, query, status === 0 ? RCODE_NOERROR : status, 1232);
            expect(bare.readUInt16BE(0)).toBe(query.id);
            expect(() => dnsPacket.decode(bare)).not.toThrow();
          }
          if (status === 0) {
            expect(query.name).not.toMatch(/[\x00-\x1f]/);
            expect(query.name.length).toBeLessThanOrEqual(4 * 255);
            expect(query.udpSize).toBeGreaterThanOrEqual(512);
            const block = blockAnswer(buf, query, RCODE_NXDOMAIN, 10, syntheticSoaRdata(10), null, 1232);
            expect(() => dnsPacket.decode(block)).not.toThrow();
          }
          // Any offset into the message, as a name in a record.
          const at = length === 0 ? 0 : a % (length + 2);
          const before = reads();
          const end = skipName(buf, at);
          expect(end === -1 || (end > at && end <= length)).toBe(true);
          const name = readName(buf, at);
          if (name !== null) expect(name.length).toBeLessThanOrEqual(255);
          // at most 64 pointers, each back to a fresh part, 255 name bytes: bounded whatever the loops
          expect(reads() - before).toBeLessThanOrEqual(2 * 300 + 2 * 65);
          // The records after a question ending anywhere, as if this were an upstream's answer.
          const questionEnd = Math.min(length, 12 + (b % Math.max(1, length - 11)));
          const before2 = reads();
          const shape = inspectAnswer(buf, questionEnd);
          if (shape !== null) {
            expect(shape.body.length).toBeLessThanOrEqual(length);
            for (const o of shape.ttlOffsets) expect(o + 4).toBeLessThanOrEqual(shape.body.length);
          }
          // records are read in order; only CNAME targets follow pointers (each bounded as above)
          expect(reads() - before2).toBeLessThanOrEqual(4 * length + 64 + (shape?.cnames.length ?? 0) * 800);
          // And where the question really ends, as the forwarder calls it on an upstream's answer.
          const qnameEnd = skipName(buf, 12);
          if (qnameEnd > 0 && qnameEnd + 4 <= length) {
            const before3 = reads();
            const real = inspectAnswer(buf, qnameEnd + 4);
            if (real !== null) {
              expect(real.body.length).toBeLessThanOrEqual(length);
              expect(real.an + real.ns + real.ar).toBeLessThanOrEqual(length);
              for (const o of real.ttlOffsets) expect(o + 4).toBeLessThanOrEqual(real.body.length);
              // A cached shape renders into an answer that reads back as the same shape. (dns-packet
              // is no oracle here: it reads some records' data by its own length, not RDLENGTH.)
              const asked = Buffer.concat([header(1, 0x0100, 1, 0, 0, 0), buf.subarray(12, qnameEnd + 4)]);
              const q = freshQuery();
              if (parseQuery(asked, q) === 0) {
                const rendered = renderAnswer(asked, q, real, 0, 65_535, 1232);
                const again = inspectAnswer(rendered, q.questionEnd);
                expect(again).not.toBeNull();
                expect({ ...again!, authenticated: real.authenticated }).toEqual(real);
              }
            }
            expect(reads() - before3).toBeLessThanOrEqual(4 * length + 64 + (real?.cnames.length ?? 0) * 800);
          }
        }),
      );
    },
    fuzzTimeoutMs(),
  );

  it(
    'FI-01 a valid query round-trips: the question read is the one written, and the answers written for it (bare, block, cached) decode to the same question and records',
    async () => {
      await fuzz(
        'dns-wire-roundtrip',
        fc.property(validQuery, fc.array(record, { maxLength: 6 }), fc.boolean(), (q, records, soa) => {
          const msg = encodeQuery(q);
          const { buf } = guarded(msg);
          const query = freshQuery();
          const status = parseQuery(buf, query);
          expect(status).toBe(0);
          const questionEnd = 12 + nameWire(q.labels).length + 4;
          expect(query).toEqual({
            id: q.id,
            flags: q.flags,
            name: expectedName(q.labels),
            qtype: q.qtype,
            qclass: q.qclass,
            questionEnd,
            edns: q.edns !== null,
            udpSize: q.edns ? Math.max(512, q.edns.udpSize) : 512,
            ednsVersion: q.edns?.version ?? 0,
            dnssecOk: q.edns?.dnssecOk ?? false,
          });
          // Names of letters, digits and hyphens are written back exactly as asked, in lower case.
          if (q.qclass === CLASS_IN && q.labels.every((l) => /^[A-Za-z0-9-]+$/.test(l.toString('latin1')))) {
            // (the name folded to lower case, never the type and class after it)
            const lower = Buffer.concat([Buffer.from(msg.subarray(12, questionEnd - 4).toString('latin1').toLowerCase(), 'latin1'), msg.subarray(questionEnd - 4, questionEnd)]);
            expect(encodeQuestion(query.name, q.qtype)).toEqual(lower);
          }
          // The bare answer carries the question byte for byte.
          const bare = bareAnswer(buf, query, RCODE_NOERROR, 1232);
          expect(bare.subarray(12, questionEnd)).toEqual(msg.subarray(12, questionEnd));
          expect(bare.readUInt16BE(4)).toBe(1);
          // An upstream's answer to the question (dns-packet's encoding), cached and rendered for this query.
          if (!q.labels.every((l) => /^[A-Za-z0-9-]+$/.test(l.toString('latin1')))) return;
          const qname = q.labels.map((l) => l.toString('latin1')).join('.') || '.';
          const upstream = dnsPacket.encode({
            id: 7,
            type: 'response',
            flags: dnsPacket.RECURSION_AVAILABLE,
            questions: [{ name: qname, type: 'A', class: 'IN' }],
            answers: records.map((r) => ({ name: qname, ...r }) as dnsPacket.Answer),
            authorities: soa ? [{ name: qname, type: 'SOA', ttl: 300, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 } }] : [],
            additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer],
          });
          const upstreamQuestionEnd = 12 + nameWire(q.labels).length + 4;
          const shape = inspectAnswer(guarded(upstream).buf, upstreamQuestionEnd);
          expect(shape).not.toBeNull();
          expect(shape!.an).toBe(records.length);
          expect(shape!.ar).toBe(0);
          if (records.length > 0) expect(shape!.cacheTtl).toBe(Math.min(...records.map((r) => r.ttl)));
          expect(shape!.cnames).toEqual(records.filter((r) => r.type === 'CNAME').map((r) => r.data));
          const rendered = renderAnswer(buf, query, shape!, 0, 65_535, 1232);
          const decoded = dnsPacket.decode(rendered);
          const original = dnsPacket.decode(upstream);
          expect(decoded.id).toBe(q.id);
          expect(decoded.answers).toEqual(original.answers);
          expect(decoded.authorities).toEqual(original.authorities);
          expect((decoded.additionals ?? []).length).toBe(q.edns ? 1 : 0);
        }),
      );
    },
    fuzzTimeoutMs(),
  );

  describe('regressions found by fuzzing', () => {
    it('FI-01 compression loops (a pointer to itself, two pointing at each other, a label then a pointer back to it), pointers and labels past the end, and reserved label types end in null or -1, never a hang or a read outside', () => {
      const cases: Array<[number[], number]> = [
        [[0xc0, 0], 0],
        [[0, 0, 0xc0, 2], 2],
        [[0xc0, 2, 0xc0, 0], 2],
        [[3, 97, 97, 97, 0xc0, 0], 0],
        [[0xc0], 0],
        [[63, 97], 0],
        [[0x40, 1, 0], 0],
        [[0x80, 1, 0], 0],
        [[1, 97, 0xc0, 9], 0],
      ];
      for (const [bytes, at] of cases) {
        const { buf, reads } = guarded(Uint8Array.from(bytes));
        expect(readName(buf, at), `${bytes} at ${at}`).toBeNull();
        const end = skipName(buf, at);
        expect(end === -1 || end <= bytes.length, `${bytes} at ${at}`).toBe(true);
        expect(reads()).toBeLessThan(200);
      }
    });

    /** An upstream's answer to x.example A: one CNAME whose RDATA is `rdata` (RDLENGTH as given), then an OPT record. */
    function cnameAnswer(rdata: number[], rdLength = rdata.length): { msg: Buffer; questionEnd: number } {
      const question = Buffer.concat([nameWire([Buffer.from('x'), Buffer.from('example')]), Buffer.from([0, 1, 0, 1])]);
      const owner = Buffer.from([0xc0, 12]);
      const fixed = Buffer.from([0, 5, 0, 1, 0, 0, 0, 60, rdLength >> 8, rdLength & 0xff]);
      const opt = Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
      return { msg: Buffer.concat([header(9, 0x8180, 1, 1, 0, 1), question, owner, fixed, Buffer.from(rdata), opt]), questionEnd: 12 + question.length };
    }

    it('FI-01 found by fuzzing: a CNAME target whose labels run past its RDATA (ended by the upstream’s OPT record, which devices never get) is refused, so the name checked against the policy is the name devices read', () => {
      // "tracker" with no end of its own: before, the OPT record's root byte ended it and the answer was cached.
      const unterminated = cnameAnswer([7, ...Buffer.from('tracker')]);
      expect(inspectAnswer(guarded(unterminated.msg).buf, unterminated.questionEnd)).toBeNull();
      const whole = cnameAnswer([7, ...Buffer.from('tracker'), 7, ...Buffer.from('example'), 0]);
      expect(inspectAnswer(guarded(whole.msg).buf, whole.questionEnd)).toMatchObject({ an: 1, ar: 0, cnames: ['tracker.example'] });
      // Compressed against the question (an earlier name) is fine.
      const compressed = cnameAnswer([3, ...Buffer.from('cdn'), 0xc0, 12]);
      expect(inspectAnswer(guarded(compressed.msg).buf, compressed.questionEnd)).toMatchObject({ cnames: ['cdn.x.example'] });
      // Rendered for a device and read back, the answer gives the same target.
      const q = freshQuery();
      const asked = Buffer.concat([header(1, 0x0100, 1, 0, 0, 0), compressed.msg.subarray(12, compressed.questionEnd)]);
      expect(parseQuery(asked, q)).toBe(0);
      const rendered = renderAnswer(asked, q, inspectAnswer(compressed.msg, compressed.questionEnd)!, 0, 512, 1232);
      expect(inspectAnswer(rendered, q.questionEnd)!.cnames).toEqual(['cdn.x.example']);
    });

    it('FI-01 found by fuzzing: a compression pointer into the 12-byte header, and a name reached through a pointer that runs on past that pointer, are refused (the header and the bytes after differ in the answer devices get)', () => {
      // A CNAME pointing at the header's counts (read as the root, or as labels made of our counts).
      const intoHeader = cnameAnswer([0xc0, 4]);
      expect(inspectAnswer(guarded(intoHeader.msg).buf, intoHeader.questionEnd)).toBeNull();
      expect(readName(Buffer.concat([header(0, 0, 1, 0, 0, 0), Buffer.from([0xc0, 5])]), 12)).toBeNull();
      // 12: a label of 3 bytes that swallows the pointer at 14 which points back to it.
      const overlapping = Buffer.concat([header(0, 0, 0, 0, 0, 0), Buffer.from([3, 97, 0xc0, 12, 0])]);
      expect(readName(guarded(overlapping).buf, 14)).toBeNull();
      // An ordinary pointer back to an earlier name is read.
      const earlier = Buffer.concat([header(0, 0, 0, 0, 0, 0), Buffer.from([1, 97, 0, 1, 98, 0xc0, 12])]);
      expect(readName(guarded(earlier).buf, 15)).toBe('b.a');
    });
  });
});

// ---- through the real resolver ----------------------------------------------------------------------

describe('fuzzing the DNS resolver over UDP and TCP', () => {
  let upstream: StubUpstream;
  let server: DnsServerHandle;
  const errors: Error[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let client: dgram.Socket;
  const malformedAnswers: string[] = [];
  const waiting = new Map<number, () => void>();

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    upstream = await startStubUpstream({ synthesize: true });
    const snapshot = compileSnapshot({
      timeZone: 'Europe/London',
      categories: [{ id: 'games', name: 'Games', description: '', kind: 'category', domains: ['games.example'] }],
      policies: [{ id: 'pupils', name: 'Pupils', blockedCategories: ['games'], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'on', youtube: 'strict' }, defaultAction: 'allow', downloadsAllowed: false }],
    });
    server = await startDnsServer(new StaticFilterPoint(snapshot, { unknownPolicy: 'pupils' }), { host: '127.0.0.1', port: 0, upstreams: [upstream.spec], upstreamTimeoutMs: 300, onError: (e) => errors.push(e) });
    client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    // Every datagram the resolver sends back must be a DNS response that dns-packet can read.
    client.on('message', (answer) => {
      try {
        const decoded = dnsPacket.decode(answer);
        if (decoded.type !== 'response') malformedAnswers.push(`not a response: ${answer.toString('hex')}`);
      } catch (error) {
        malformedAnswers.push(`${(error as Error).message}: ${answer.toString('hex')}`);
      }
      if (answer.length >= 2) waiting.get(answer.readUInt16BE(0))?.();
    });
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    client?.close();
    await server?.close();
    await upstream?.close();
  });

  let probeId = 0;
  /** A good query; resolves true when answered within the time. */
  function probe(): Promise<boolean> {
    const id = 0xf000 | (probeId++ & 0xfff);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(false);
      }, 3000);
      waiting.set(id, () => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(true);
      });
      client.send(dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'www.games.example', type: 'A' }] }), server.port, '127.0.0.1');
    });
  }

  function overTcp(packets: Buffer[], garbage: Buffer | null): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect(server.port, '127.0.0.1');
      let got = Buffer.alloc(0);
      socket.on('data', (d) => {
        got = Buffer.concat([got, d]);
        // Each framed answer must be a DNS response too.
        while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
          const answer = got.subarray(2, 2 + got.readUInt16BE(0));
          got = got.subarray(2 + answer.length);
          try {
            dnsPacket.decode(answer);
          } catch (error) {
            malformedAnswers.push(`tcp ${(error as Error).message}: ${answer.toString('hex')}`);
          }
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.on('connect', () => {
        for (const p of packets) {
          const framed = Buffer.alloc(p.length + 2);
          framed.writeUInt16BE(p.length & 0xffff);
          p.copy(framed, 2);
          socket.write(framed);
        }
        if (garbage) socket.write(garbage);
        setTimeout(() => socket.destroy(), 50);
      });
    });
  }

  it(
    'FI-01 the real resolver, fed hostile packets over UDP and TCP, never crashes, sends only well-formed DNS responses, and answers a good query after every case',
    async () => {
      await fuzz(
        'dns-wire-server',
        fc.asyncProperty(fc.array(hostile, { minLength: 1, maxLength: 8 }), fc.boolean(), fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))), async (packets, tcp, garbage) => {
          for (const p of packets) client.send(p, server.port, '127.0.0.1');
          if (tcp) await overTcp(packets, garbage);
          if (!(await probe())) throw new Error(`the resolver stopped answering after ${packets.map((p) => p.toString('hex')).join(' ')}`);
          if (malformedAnswers.length > 0) throw new Error(`a malformed answer: ${malformedAnswers[0]} after ${packets.map((p) => p.toString('hex')).join(' ')}`);
          if (errors.length > 0) throw new Error(`the resolver reported ${errors[0]!.stack} after ${packets.map((p) => p.toString('hex')).join(' ')}`);
        }),
      );
      const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(server.port), '+tries=1', '+time=3', 'after-fuzz.example']);
      expect(stdout).toContain('status: NOERROR');
      const stats = server.stats();
      if (process.env.GATEHOUSE_FUZZ_REPORT) console.log(`fuzz: dns-wire-server stats ${JSON.stringify({ queries: stats.queries, malformed: stats.malformed, dropped: stats.dropped, forwarded: stats.forwarded, blocked: stats.blocked, tcp: stats.tcpConnections })}`);
      // Not vacuous: queries were read and decided, and malformed ones answered FORMERR.
      expect(stats.queries).toBeGreaterThan(0);
      expect(stats.malformed).toBeGreaterThan(0);
      expect(unhandled).toEqual([]);
      expect(errors).toEqual([]);
      expect(malformedAnswers).toEqual([]);
    },
    fuzzTimeoutMs() + 20_000,
  );
});
