import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/core/errors.js';
import { parseFilter, type Condition } from '../../src/directory/scim.js';
import { dialects } from '../helpers/databases.js';
import { fuzz, fuzzTimeoutMs } from '../helpers/fuzz.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Fuzzing the SCIM filter parser (issue 10, "Done when"): whatever a SCIM client sends as
 * `filter=`, the parser either reads it or refuses it with 400 invalidFilter, never anything else,
 * and a filter it reads means what it says (round trip from generated filters). Through the HTTP
 * API on both databases, a filter's values reach the query too: the answer is 200 or 400
 * invalidFilter, never a 500. Each property runs for the fuzz budget (test/helpers/fuzz.ts).
 */

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const RESERVED = new Set(['and', 'or', 'not', 'eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr']);

/** True when parsed, false when refused as invalidFilter; anything else fails the property. */
function parseOrRefuse(text: string): Condition[] | false {
  try {
    return parseFilter(text);
  } catch (error) {
    if (error instanceof GatehouseError && error.status === 400 && error.details?.scimType === 'invalidFilter' && error.message.length > 0) return false;
    throw error;
  }
}

// --- Generators ---------------------------------------------------------------------------------

const ws = fc.constantFrom(' ', '  ', '\t', '\n', ' \r\n ');
const mixed = (word: string) => fc.mixedCase(fc.constant(word));
const attrName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_$-]{0,12}$/).filter((n) => !RESERVED.has(n.toLowerCase()));
const subName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_$]{0,8}$/).filter((n) => !RESERVED.has(n.toLowerCase()));
/** Any text a client might compare with: every code point, and often the awkward ones (NUL, controls, quotes, lone surrogates). */
const awkward = fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\n', '\r', '"', '\\', '\ud800', '\udfff', '\u2028', '\ufeff', 'é', '🙂', 'a', ' ');
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 16 }), fc.string({ unit: awkward, maxLength: 8 }));

/** A value as written in a filter, and what it reads as. */
const value: fc.Arbitrary<{ text: string; value: string | boolean | null }> = fc.oneof(
  { weight: 4, arbitrary: anyText.map((v) => ({ text: JSON.stringify(v), value: v })) },
  mixed('true').map((text) => ({ text, value: true })),
  mixed('false').map((text) => ({ text, value: false })),
  mixed('null').map((text) => ({ text, value: null })),
  fc.integer().map((n) => ({ text: String(n), value: String(n) })),
  fc.tuple(fc.integer({ min: -999, max: 999 }), fc.nat(999)).map(([a, b]) => ({ text: `${a}.${b}`, value: `${a}.${b}` })),
);

/** An attribute with an optional schema URN (in any case), and the path the parser gives it. */
const attribute = fc.tuple(fc.constantFrom('', `${USER}:`, `${GROUP}:`, `${ENTERPRISE}:`), attrName, fc.boolean()).map(([urn, name, upper]) => {
  const written = `${upper ? urn.toUpperCase() : urn}${name}`;
  return { text: written, path: `${urn === `${ENTERPRISE}:` ? 'enterprise:' : ''}${name.toLowerCase()}` };
});

/** One condition in each form the parser reads, with what it must read as. */
const condition: fc.Arbitrary<{ text: (ws: string) => string; expected: Condition; bare: boolean }> = fc.oneof(
  // attr eq "value"
  fc.tuple(attribute, mixed('eq'), value).map(([a, op, v]) => ({ text: (w: string) => `${a.text}${w}${op}${w}${v.text}`, expected: { path: a.path, value: v.value }, bare: false })),
  // attr[sub eq "v"].leaf eq "value"
  fc.tuple(attribute, subName, value, subName, value).map(([a, sub, where, leaf, v]) => ({
    text: (w: string) => `${a.text}[${sub}${w}eq${w}${where.text}].${leaf}${w}eq${w}${v.text}`,
    expected: { path: `${a.path}.${leaf.toLowerCase()}`, where: { attr: sub.toLowerCase(), value: where.value }, value: v.value },
    bare: false,
  })),
  // attr[sub eq "v"]: the bracket is the comparison
  fc.tuple(attribute, subName, value).map(([a, sub, v]) => ({ text: (w: string) => `${a.text}[${sub}${w}EQ${w}${v.text}]`, expected: { path: `${a.path}.${sub.toLowerCase()}`, value: v.value }, bare: true })),
);

const validFilter = fc.tuple(fc.array(condition, { minLength: 1, maxLength: 4 }), ws, fc.array(mixed('and'), { minLength: 4, maxLength: 4 })).map(([conditions, w, ands]) => ({
  text: conditions.map((c, i) => `${i > 0 ? `${w}${ands[i]}${w}` : ''}${c.text(w)}`).join(''),
  expected: conditions.map((c) => c.expected),
}));

/** Pieces of filters and of the characters that break them. */
const piece = fc.oneof(
  fc.constantFrom('eq', 'EQ', 'and', 'or', 'not', 'co', 'sw', 'pr', 'gt', 'true', 'false', 'null', 'userName', 'emails', 'members', 'value', '.value', '[', ']', '(', ')', '"', '\\', '\\"', '\\u', '\\u00', '\\ud800', '"x"', '""', ':', '.', '-1', '1.5', '1e5', '\u0000', '\u2028', ' ', '\t', '\n', `${USER}:userName`, 'urn:'),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const soup = fc.array(piece, { maxLength: 40 }).chain((pieces) => fc.array(fc.constantFrom('', ' ', '\n'), { minLength: pieces.length, maxLength: pieces.length }).map((gaps) => pieces.map((p, i) => `${p}${gaps[i]}`).join('')));

/** A valid filter with characters inserted, deleted or replaced. */
const mutated = fc
  .tuple(validFilter, fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom('"', '\\', '[', ']', '(', ')', ' ', '.', 'q', '\u0000', 'é', 'x')), { minLength: 1, maxLength: 6 }))
  .map(([f, edits]) => {
    let text = f.text;
    for (const [at, how, ch] of edits) {
      const i = text.length === 0 ? 0 : at % (text.length + (how === 'insert' ? 1 : 0));
      text = how === 'insert' ? `${text.slice(0, i)}${ch}${text.slice(i)}` : how === 'delete' ? `${text.slice(0, i)}${text.slice(i + 1)}` : `${text.slice(0, i)}${ch}${text.slice(i + 1)}`;
    }
    return text;
  });

const anyFilter = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), soup, mutated, validFilter.map((f) => f.text), fc.string({ minLength: 990, maxLength: 1100 }));

describe('fuzz: the SCIM filter parser', () => {
  it(
    'AC-12 any filter text is read or refused with 400 invalidFilter, never another error',
    async () => {
      await fuzz('scim-filter: parse or invalidFilter', fc.property(anyFilter, (text) => {
        parseOrRefuse(text);
      }));
    },
    fuzzTimeoutMs(),
  );

  it(
    'AC-12 a generated filter reads as what it says (round trip: conditions → text → conditions)',
    async () => {
      await fuzz('scim-filter: round trip', fc.property(validFilter, (f) => {
        const parsed = parseOrRefuse(f.text);
        const nul = (v: unknown) => typeof v === 'string' && v.includes('\u0000');
        // Too long, or a value with a NUL (which nothing Gatehouse keeps can hold): refused.
        if (f.text.length > 1000 || f.expected.some((c) => nul(c.value) || nul(c.where?.value))) {
          expect(parsed).toBe(false);
          return;
        }
        expect(parsed).toEqual(f.expected);
      }));
    },
    fuzzTimeoutMs(),
  );

  it('AC-12 regressions found by reading and fuzzing the parser', () => {
    // A bracket with a sub-attribute and no comparison once read as a comparison on a made-up path.
    expect(parseOrRefuse('emails[type eq "work"].value')).toBe(false);
    expect(parseOrRefuse('emails[type eq "work"].value and userName eq "x"')).toBe(false);
    expect(parseOrRefuse('members[value eq "abc"]')).toEqual([{ path: 'members.value', value: 'abc' }]);
    expect(parseOrRefuse('x'.repeat(1001))).toBe(false);
    expect(parseOrRefuse('userName eq "\\ud800"')).toEqual([{ path: 'username', value: '\ud800' }]);
  });
});

/** UTF-8 percent-encoding that, unlike encodeURIComponent, takes any string (a lone surrogate too). */
const encode = (text: string) => [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

const userAttributes = ['userName', 'externalId', 'id', 'displayName', 'name.givenName', 'name.familyName', 'emails.value', 'emails[type eq "work"].value', 'emails[primary eq true].value', 'active', `${USER}:userName`];
const groupAttributes = ['displayName', 'externalId', 'id', 'members.value', 'members', 'members[value eq "x"]'];
const realFilter = (attributes: string[]) =>
  fc.array(fc.tuple(fc.constantFrom(...attributes), value), { minLength: 1, maxLength: 3 }).map((cs) => cs.map(([a, v]) => (a.endsWith(']') ? a : `${a} eq ${v.text}`)).join(' and '));

for (const dialect of await dialects()) {
  describe(`fuzz: SCIM filters through the API (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    let bearer: string;

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      const made = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Fuzz', roles: ['pupil'] } });
      bearer = made.json().secret as string;
      for (const userName of ['jbloggs', 'a.pupil']) {
        await t.app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/scim+json' }, payload: JSON.stringify({ schemas: [USER], userName, externalId: `x-${userName}` }) });
      }
    }, 60_000);
    afterAll(async () => {
      await t?.close();
    });

    it('AC-12 regression (found by this fuzz on PostgreSQL): a NUL in a filter value, a PATCH path, a member id, an id in the URL or a token name is a 400, not a server error', async () => {
      const scim = (method: 'GET' | 'PATCH' | 'POST', url: string, body?: unknown) =>
        t.app.inject({ method, url: `/scim/v2${url}`, headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/scim+json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });
      for (const f of ['displayName eq "\\u0000" and displayName eq ""', 'userName eq "a\\u0000b"', 'id eq "\\u0000"', `externalId eq "${'\u0000'}"`]) {
        const response = await scim('GET', `/Groups?filter=${encode(f)}`);
        expect({ f, status: response.statusCode, scimType: response.json().scimType }).toEqual({ f, status: 400, scimType: 'invalidFilter' });
        expect((await scim('GET', `/Users?filter=${encode(f)}`)).statusCode).toBe(400);
      }
      expect((await scim('GET', '/Users/%00abc')).statusCode).toBe(400);
      expect((await scim('GET', '/Groups/abc%00')).statusCode).toBe(400);
      const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Year 7' })).json();
      expect((await scim('PATCH', `/Groups/${group.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: [{ value: 'a\u0000' }] }] })).json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
      expect((await scim('PATCH', `/Groups/${group.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Remove', path: 'members[value eq "a\\u0000"]' }] })).json()).toMatchObject({ status: '400', scimType: 'invalidPath' });
      expect((await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Year\u00008' })).json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
      expect((await scim('POST', '/Users', { schemas: [USER], userName: 'nul.name', displayName: 'A\u0000B' })).json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
      const token = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Entra\u0000', roles: ['pupil'] } });
      expect(token.statusCode).toBe(400);
    });

    it(
      'AC-12 a filter on Users or Groups answers 200 or 400 invalidFilter, never a server error, whatever its values hold',
      async () => {
        const filterFor = fc.oneof(
          fc.tuple(fc.constant('/Users'), fc.oneof({ weight: 3, arbitrary: realFilter(userAttributes) }, anyFilter)),
          fc.tuple(fc.constant('/Groups'), fc.oneof({ weight: 3, arbitrary: realFilter(groupAttributes) }, anyFilter)),
        );
        await fuzz(
          `scim-filter: through the API on ${dialect}`,
          fc.asyncProperty(filterFor, async ([resource, text]) => {
            const response = await t.app.inject({ method: 'GET', url: `/scim/v2${resource}?filter=${encode(text)}`, headers: { authorization: `Bearer ${bearer}` } });
            if (response.statusCode === 200) {
              expect(response.json()).toMatchObject({ totalResults: expect.any(Number) });
              return;
            }
            expect({ status: response.statusCode, body: response.json() }, text).toMatchObject({ status: 400, body: { status: '400', scimType: 'invalidFilter' } });
          }),
        );
      },
      fuzzTimeoutMs() + 60_000,
    );
  });
}
