import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { csvField } from '../core/csv.js';
import { validationFailed } from '../core/errors.js';

/**
 * CSV in and out for every register (issue 12: equipment, software and licences, removable media,
 * risks). Import: the whole file is read and every row checked before anything is stored; one bad
 * cell and nothing is imported, with every error listed by line and column. Export: RFC 4180, with
 * a leading = + - @ tab or CR neutralised so a spreadsheet never runs a cell as a formula.
 */

/** An import larger than this is refused unread (a register or an inventory export is far smaller). */
export const CSV_MAX_BYTES = 2 * 1024 * 1024;
export const CSV_MAX_ROWS = 20_000;

/** The body of every import route: the file's text. Bigger than the limit is refused before it is parsed. */
export const csvImportBody = z.object({ csv: z.string().min(1, 'attach the CSV file').max(CSV_MAX_BYTES, `the file must be at most ${CSV_MAX_BYTES / 1024 / 1024} MB`) }).strict();
/** The HTTP body limit for an import: the file JSON-escaped (at worst about twice its size), no more. */
export const CSV_BODY_LIMIT = CSV_MAX_BYTES * 2 + 4096;

export interface CsvError {
  line: number;
  column: string | null;
  message: string;
}

export function csvCell(value: string | number | null | undefined): string {
  return csvField(value === null || value === undefined ? null : String(value));
}

export function toCsv(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  return `\uFEFF${[header.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\r\n')}\r\n`;
}

/** Header names compared loosely: "Device name", "device_name" and "DeviceName" are one column. */
export const columnKey = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * Reads CSV text into records keyed by `columnKey` of the header. Throws a validation error naming
 * the problem when the file is too big, cannot be read, or lacks a required column.
 */
export function readRows(text: string, required: string[]): Array<{ line: number; cells: Map<string, string> }> {
  if (Buffer.byteLength(text, 'utf8') > CSV_MAX_BYTES) throw validationFailed(`The file is larger than ${CSV_MAX_BYTES / 1024 / 1024} MB; nothing was imported.`);
  if (text.includes('\0')) throw validationFailed('The file holds a NUL character: it is not a CSV file. Nothing was imported.');
  // A file in another encoding (Windows-1252, UTF-16) reaches us with U+FFFD where its bytes were not UTF-8.
  if (text.includes('\uFFFD')) throw validationFailed('The file is not UTF-8 text (a spreadsheet saved as “CSV” in a Windows or UTF-16 encoding?): save it as “CSV UTF-8” and import it again. Nothing was imported.', { errors: [{ line: 1 + (text.slice(0, text.indexOf('\uFFFD')).match(/\n/g)?.length ?? 0), column: null, message: 'not UTF-8' }] });
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text.replace(/\r\n?/g, '\n'), { bom: true, info: true, skip_empty_lines: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    throw validationFailed(`The file cannot be read as CSV (${(error as Error).message.replace(/\s+at line.*$/s, '')}); nothing was imported.`);
  }
  if (records.length === 0) throw validationFailed('The file is empty; nothing was imported.');
  if (records.length - 1 > CSV_MAX_ROWS) throw validationFailed(`The file has more than ${CSV_MAX_ROWS} rows; nothing was imported.`);
  const header = records[0]!.record.map((h) => columnKey(h));
  const missing = required.filter((r) => !header.includes(columnKey(r)));
  if (missing.length) throw validationFailed(`The file has no ${missing.map((m) => `“${m}”`).join(', ')} column; nothing was imported.`, { errors: missing.map((m) => ({ line: 1, column: m, message: 'column missing' })) });
  return records.slice(1).map((r) => ({ line: r.info.lines, cells: new Map(header.map((h, i) => [h, (r.record[i] ?? '').trim()])) }));
}

export function importErrors(errors: CsvError[]): never {
  const first = errors.slice(0, 5).map((e) => `line ${e.line}${e.column ? `, ${e.column}` : ''}: ${e.message}`).join('; ');
  throw validationFailed(`${errors.length} problem${errors.length === 1 ? '' : 's'} in the file (${first}${errors.length > 5 ? '; …' : ''}); nothing was imported.`, { errors: errors.slice(0, 200) });
}

/** A cell our own export neutralised ('=…) reads back as it was stored, so an export imports back unchanged. */
const fromExport = (cell: string) => (/^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell);

/** A number cell: undefined when empty, else the number (NaN for text, which the schema refuses). */
export const numberCell = (cell: string): number | undefined => (cell ? Number(cell) : undefined);

/** A yes/no cell: true, false, undefined when empty (the schema's default), else the text (which the schema refuses). */
export function yesNo(cell: string): boolean | string | undefined {
  const v = cell.toLowerCase();
  if (!v) return undefined;
  if (['yes', 'y', 'true', '1'].includes(v)) return true;
  if (['no', 'n', 'false', '0'].includes(v)) return false;
  return cell;
}

/**
 * How one register reads its CSV: the columns it needs, how a row's cells become the input of the
 * register's own zod schema (the one its form and API use), and what makes a row a duplicate.
 */
export interface CsvImportSpec<T> {
  /** Columns the header must have, named as the docs and the console name them. */
  required: readonly string[];
  /** The column each schema field (or nested path, `licence.seats`) is read from, so an error names the column a person sees. */
  columns: Readonly<Record<string, string>>;
  schema: z.ZodType<T>;
  /** The schema's input from a row; `cell` answers a column's trimmed text ('' when empty or absent). */
  input: (cell: (column: string) => string) => unknown;
  /** A row's key: the same key twice in the file, or `taken` (already registered), is an error. */
  key?: { column: string; of: (row: T) => string; taken: (key: string, row: T) => string | null };
  /** Checks that need more than the row (a holder who must exist): problems by column. */
  check?: (row: T) => Array<{ column: string; message: string }>;
}

/**
 * Every row of `text` checked against `spec`; the rows when all pass. Any problem in any row and
 * it throws one validation error listing each by line and column, so the caller stores nothing.
 * The caller writes the rows and its audit event in one transaction.
 */
export function checkCsv<T>(text: string, spec: CsvImportSpec<T>): Array<{ line: number; row: T }> {
  const rows = readRows(text, [...spec.required]);
  if (rows.length === 0) throw validationFailed('The file has a header but no rows; nothing was imported.');
  const errors: CsvError[] = [];
  const valid: Array<{ line: number; row: T }> = [];
  const seen = new Map<string, number>();
  for (const { line, cells } of rows) {
    const parsed = spec.schema.safeParse(spec.input((column) => fromExport(cells.get(columnKey(column)) ?? '')));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = String(issue.path[0] ?? '');
        errors.push({ line, column: spec.columns[issue.path.map(String).join('.')] ?? spec.columns[field] ?? (field || null), message: issue.message });
      }
      continue;
    }
    const row = parsed.data;
    if (spec.key) {
      const key = spec.key.of(row);
      const first = seen.get(key);
      if (first !== undefined) errors.push({ line, column: spec.key.column, message: `the same as line ${first}` });
      else {
        seen.set(key, line);
        const taken = spec.key.taken(key, row);
        if (taken) errors.push({ line, column: spec.key.column, message: taken });
      }
    }
    for (const problem of spec.check?.(row) ?? []) errors.push({ line, ...problem });
    valid.push({ line, row });
  }
  if (errors.length) importErrors(errors);
  return valid;
}
