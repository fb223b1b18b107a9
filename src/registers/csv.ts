import { parse } from 'csv-parse/sync';
import { csvField } from '../core/csv.js';
import { validationFailed } from '../core/errors.js';

/**
 * CSV in and out for the equipment registers (issue 12). Import: the whole file is read and every
 * row checked before anything is stored; one bad cell and nothing is imported, with every error
 * listed by line and column. Export: RFC 4180, with a leading = + - @ tab or CR neutralised so a
 * spreadsheet never runs a cell as a formula.
 */

/** An import larger than this is refused unread (a register or an inventory export is far smaller). */
export const CSV_MAX_BYTES = 2 * 1024 * 1024;
export const CSV_MAX_ROWS = 20_000;

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
