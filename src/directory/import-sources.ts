import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { roles, type Role } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import { usernameSchema } from '../identity/service.js';
import type { GroupKind, MemberRole } from './groups.js';

/**
 * The files schools actually have, read into one shape (ImportData) that `imports.ts` plans and
 * applies: (a) any CSV with a column mapping, e.g. an export from the MIS; (b) Microsoft School Data
 * Sync CSV v2.1 (users.csv, roles.csv, classes.csv, enrollments.csv). Every bad row is reported with
 * its file, line and reason; good rows are unaffected. A password column, where a file has one
 * (SDS users.csv does), is never read.
 */

export type ImportSource = 'csv' | 'sds';

/** One file may hold a large school several times over; anything bigger is a mistake. */
export const MAX_IMPORT_FILE_BYTES = 20 * 1024 * 1024;

export interface BadRow {
  file: string;
  /** 1-based line in the file where the row starts. */
  line: number;
  reason: string;
}

export interface PersonRow {
  file: string;
  line: number;
  username: string;
  externalId: string | null;
  /** undefined: the file does not say (the existing value stays); null: the file says "none". */
  givenName?: string | null;
  familyName?: string | null;
  displayName?: string;
  email?: string | null;
  role: Role;
  /** undefined: the file has no status column. */
  status?: 'active' | 'disabled';
  /** The groups the file puts this person in (by GroupRow.key); undefined: the file does not manage groups. */
  groups?: Array<{ key: string; role: MemberRole }>;
}

export interface GroupRow {
  /** csv: "<kind>:<lower-case name>"; sds: "sds:<sourcedId>" */
  key: string;
  name: string;
  kind: GroupKind;
  externalId: string | null;
  file: string;
  line: number;
}

export interface ImportData {
  source: ImportSource;
  files: string[];
  /** each file's column headers */
  headers: Record<string, string[]>;
  /** data rows read, across all files */
  rows: number;
  people: PersonRow[];
  groups: GroupRow[];
  bad: BadRow[];
  /** Usernames and external ids named by bad rows: a person whose row was refused is never disabled as "missing". */
  refused: { usernames: string[]; externalIds: string[] };
  /** Things worth saying that are not errors (files not needed, columns ignored). */
  notes: string[];
}

// --- CSV reading --------------------------------------------------------------------------------

export interface CsvTable {
  file: string;
  headers: string[];
  rows: Array<{ line: number; cells: string[] }>;
  bad: BadRow[];
}

const fileError = (message: string) => new GatehouseError('import_file_invalid', 400, message);

export function checkFileSize(file: string, bytes: number): void {
  if (bytes > MAX_IMPORT_FILE_BYTES) {
    throw new GatehouseError(
      'import_file_too_large',
      413,
      `${file} is ${(bytes / 1024 / 1024).toFixed(1)} MB; an import file may be at most ${MAX_IMPORT_FILE_BYTES / 1024 / 1024} MB. Split it, or check that it is the right file.`,
    );
  }
}

/** C0 control characters other than tab, and DEL: never kept in a name, username, e-mail, id or group. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** The reason a kept cell is refused, if it holds a control character. */
function controlIn(cells: Array<[label: string, value: string | null | undefined]>): string | undefined {
  for (const [label, value] of cells) {
    if (value && CONTROL_CHARACTER.test(value)) {
      const what = value.includes('\u0000') ? 'a NUL character' : /[\r\n]/.test(value) ? 'a line break' : 'a control character';
      return `the ${label} holds ${what}, which Gatehouse does not keep: correct the cell`;
    }
  }
  return undefined;
}

/**
 * Reads CSV text: a UTF-8 BOM, CRLF, LF or CR line ends (mixed in one file too), quoted fields with
 * commas or line breaks, and blank lines all work. The first non-blank row is the header. A row that
 * cannot be read (a broken quote, the wrong number of cells, a NUL character) is reported with its
 * line number, and the rest are read.
 */
export function readCsv(file: string, rawText: string): CsvTable {
  checkFileSize(file, Buffer.byteLength(rawText, 'utf8'));
  // One line end: csv-parse takes the first it meets as the only one, so a file with CRLF and then
  // LF merged rows, and a CR-only file numbered every row line 1 (both found by fuzzing). Every
  // CRLF, LF and lone CR is one line, as in an editor, so line numbers are unchanged.
  const text = rawText.replace(/\r\n?/g, '\n');
  const bad: BadRow[] = [];
  const skipped: Array<{ bytes: number; code: string; message: string }> = [];
  const records = parse(text, {
    bom: true,
    info: true,
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (error: { bytes?: number; code?: string; message?: string } | undefined) => {
      if (error) skipped.push({ bytes: error.bytes ?? 0, code: error.code ?? '', message: error.message ?? '' });
    },
  }) as unknown as Array<{ record: string[]; info: { bytes: number } }>;
  // Line numbers from byte offsets: csv-parse's own line count drifts after a CRLF inside quotes.
  const lineAt = lineIndex(text);
  const ends = records.map((r) => r.info.bytes);
  for (const skip of skipped) {
    const start = ends.filter((e) => e <= skip.bytes).reduce((m, e) => Math.max(m, e), 0);
    const reason =
      skip.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'cannot be read as CSV: a quoted field is never closed, so this row and the rest of the file were not read'
        : `cannot be read as CSV (${skip.message.replace(/ at line \d+.*$/, '')})`;
    bad.push({ file, line: lineAt(start), reason });
  }
  let headers: string[] | undefined;
  const rows: CsvTable['rows'] = [];
  let previousEnd = 0;
  for (const { record, info } of records) {
    const line = lineAt(previousEnd);
    previousEnd = info.bytes;
    const cells = record.map((c) => c.trim());
    if (cells.every((c) => c === '')) continue;
    const nul = cells.some((c) => c.includes('\u0000'));
    if (!headers) {
      if (nul) throw fileError(`${file} is not CSV text in UTF-8: its first row holds NUL characters (a UTF-16 "Unicode text" file, or a spreadsheet's own format). Save it as "CSV UTF-8" and try again.`);
      headers = cells;
      continue;
    }
    if (nul) {
      bad.push({ file, line, reason: 'holds a NUL character (part of a binary or UTF-16 file?): the row was not read' });
      continue;
    }
    if (cells.length !== headers.length) {
      // Trailing empty cells (a spreadsheet's habit) are harmless; anything else shifts the columns.
      const trimmed = cells.length > headers.length && cells.slice(headers.length).every((c) => c === '');
      if (!trimmed) {
        bad.push({ file, line, reason: `has ${cells.length} cells where the header has ${headers.length} columns (a missing or extra comma?)` });
        continue;
      }
    }
    rows.push({ line, cells });
  }
  if (!headers) throw fileError(`${file} is empty: it needs a header row naming its columns, then one row per person.`);
  const seen = new Set<string>();
  for (const h of headers) {
    if (h === '') continue;
    if (seen.has(h.toLowerCase())) throw fileError(`${file} has two columns called "${h}"; give each column its own name.`);
    seen.add(h.toLowerCase());
  }
  bad.sort((a, b) => a.line - b.line);
  return { file, headers, rows, bad };
}

/** The 1-based line of the first non-blank byte at or after a UTF-8 byte offset. */
function lineIndex(text: string): (offset: number) => number {
  const bytes = Buffer.from(text, 'utf8');
  const newlines: number[] = [];
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) newlines.push(i);
  return (offset) => {
    let o = offset;
    while (o < bytes.length && (bytes[o] === 10 || bytes[o] === 13)) o++;
    let lo = 0;
    let hi = newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (newlines[mid]! < o) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/** Finds a header by exact name, else ignoring case and spaces. */
function columnIndex(headers: string[], name: string): number {
  const exact = headers.indexOf(name);
  if (exact >= 0) return exact;
  const norm = normaliseHeader(name);
  return headers.findIndex((h) => normaliseHeader(h) === norm);
}

const normaliseHeader = (h: string) => h.toLowerCase().replace(/[^a-z0-9]/g, '');

// --- Generic CSV with a column mapping ------------------------------------------------------------

export const csvFields = ['username', 'givenName', 'familyName', 'displayName', 'email', 'role', 'externalId', 'groups', 'year', 'status'] as const;
export type CsvField = (typeof csvFields)[number];
export type ColumnMapping = Partial<Record<CsvField, string>>;

export const csvFieldLabels: Record<CsvField, string> = {
  username: 'Username (required)',
  givenName: 'First name',
  familyName: 'Last name',
  displayName: 'Display name',
  email: 'E-mail',
  role: 'Role',
  externalId: 'External id (UPN, admission number, MIS id)',
  groups: 'Groups (e.g. "7A;Year 7")',
  year: 'Year group',
  status: 'Status (active or disabled)',
};

/** Header spellings seen in MIS exports (SIMS, Arbor, Bromcom…), compared without case or punctuation. */
const guesses: Record<CsvField, string[]> = {
  username: ['username', 'user name', 'login', 'logon', 'logon name', 'user id', 'userid', 'account', 'account name', 'samaccountname'],
  givenName: ['first name', 'firstname', 'forename', 'preferred forename', 'legal forename', 'given name', 'givenname', 'first'],
  familyName: ['surname', 'last name', 'lastname', 'family name', 'familyname', 'preferred surname', 'legal surname', 'last'],
  displayName: ['display name', 'displayname', 'full name', 'fullname', 'name'],
  email: ['email', 'e-mail', 'email address', 'e-mail address', 'mail', 'primary email', 'school email'],
  role: ['role', 'user type', 'usertype', 'account type', 'type', 'person type'],
  externalId: ['upn', 'unique pupil number', 'admission number', 'admission no', 'adno', 'adm no', 'mis id', 'misid', 'external id', 'externalid', 'sourcedid', 'staff code', 'staff id', 'pupil id', 'student id', 'id'],
  groups: ['form', 'class', 'reg group', 'registration group', 'reg', 'tutor group', 'form group', 'groups', 'group', 'classes'],
  year: ['year', 'year group', 'yeargroup', 'nc year', 'curriculum year', 'year of study'],
  status: ['status', 'state', 'account status'],
};

/** A mapping guessed from the headers: each field takes the first header that looks like it. */
export function guessMapping(headers: string[]): ColumnMapping {
  const mapping: ColumnMapping = {};
  const used = new Set<string>();
  for (const field of csvFields) {
    const wanted = guesses[field].map(normaliseHeader);
    // Prefer the most specific spelling: the order in `guesses`, not the order of the columns.
    for (const w of wanted) {
      const header = headers.find((h) => h !== '' && !used.has(h) && normaliseHeader(h) === w);
      if (header) {
        mapping[field] = header;
        used.add(header);
        break;
      }
    }
  }
  return mapping;
}

/** Role words in files, to Gatehouse roles. Administrator rights never come from a file. */
const roleWords: Record<string, Role> = {
  pupil: 'pupil',
  pupils: 'pupil',
  student: 'pupil',
  students: 'pupil',
  learner: 'pupil',
  staff: 'staff',
  teacher: 'staff',
  teachers: 'staff',
  teachingassistant: 'staff',
  ta: 'staff',
  supportstaff: 'staff',
  support: 'staff',
  seniorleader: 'senior_leader',
  slt: 'senior_leader',
  headteacher: 'senior_leader',
  head: 'senior_leader',
  deputyhead: 'senior_leader',
  deputyheadteacher: 'senior_leader',
  principal: 'senior_leader',
  governor: 'governor',
  office: 'office',
  reception: 'office',
  dsl: 'dsl',
  dpo: 'dpo',
  guest: 'guest',
};
const refusedRoleWords = new Set(['administrator', 'admin', 'itadmin', 'itadministrator', 'superuser', 'root']);
const notGivenAccounts = new Set(['parent', 'parents', 'guardian', 'carer', 'contact', 'relative']);

export const importableRoles = roles.filter((r) => r !== 'administrator');

function roleFromWord(word: string): Role | 'refused' | 'parent' | undefined {
  const w = normaliseHeader(word);
  if (refusedRoleWords.has(w)) return 'refused';
  if (notGivenAccounts.has(w)) return 'parent';
  if ((importableRoles as readonly string[]).includes(word.trim().toLowerCase())) return word.trim().toLowerCase() as Role;
  return roleWords[w];
}

const ADMINISTRATOR_REFUSED =
  'the administrator role is refused: administrator rights go only on a separate administrator account, linked to the person’s everyday account in Gatehouse';

const emailSchema = z.email();

function checkUsername(value: string): { username?: string; reason?: string } {
  if (value === '') return { reason: 'missing username' };
  const parsed = usernameSchema.safeParse(value);
  if (!parsed.success) return { reason: `invalid username "${value}": it ${parsed.error.issues[0]?.message ?? 'is not valid'}` };
  return { username: parsed.data };
}

function checkEmail(value: string): { email?: string | null; reason?: string } {
  if (value === '') return { email: null };
  if (!emailSchema.safeParse(value).success || value.length > 254) return { reason: `invalid e-mail address "${value}"` };
  return { email: value.toLowerCase() };
}

const longText = (label: string, value: string, max: number) => (value.length > max ? `${label} is longer than ${max} characters` : undefined);

/** "Year 7", "Yr 7" and "Y7" name year groups; other group names take the chosen default kind. */
function groupKindOf(name: string, fallback: GroupKind): GroupKind {
  return /^(year|yr|y)\s*\d{1,2}\b/i.test(name) ? 'year' : fallback;
}

export interface GenericCsvOptions {
  mapping: ColumnMapping;
  /** The role of people whose row has no role (or when no column holds one). */
  defaultRole?: Role;
  /** The kind of groups named in the groups column (year groups are recognised by name). */
  groupKind?: GroupKind;
}

/** Checks a mapping against a file's headers; throws a message naming what is wrong. */
export function checkMapping(table: CsvTable, options: GenericCsvOptions): void {
  for (const [field, header] of Object.entries(options.mapping)) {
    if (!(csvFields as readonly string[]).includes(field)) throw fileError(`"${field}" is not something Gatehouse imports; use one of ${csvFields.join(', ')}.`);
    if (header && columnIndex(table.headers, header) < 0) {
      throw fileError(`${table.file} has no column "${header}" (for ${field}); its columns are: ${table.headers.filter(Boolean).join(', ')}.`);
    }
  }
  if (!options.mapping.username) {
    throw fileError(`Which column of ${table.file} holds the username? None of its columns (${table.headers.filter(Boolean).join(', ')}) looks like one: choose it (on the command line: --map username=<column>).`);
  }
  if (!options.mapping.role && !options.defaultRole) {
    throw fileError(`${table.file} has no role column: choose the role of the people in it (e.g. pupil or staff).`);
  }
  if (options.defaultRole === ('administrator' as Role)) throw fileError(`The default role cannot be administrator: ${ADMINISTRATOR_REFUSED}.`);
}

/** AC-12: people and their groups from any CSV, through a column mapping. */
export function readGenericCsv(table: CsvTable, options: GenericCsvOptions): ImportData {
  checkMapping(table, options);
  const at = Object.fromEntries(csvFields.map((f) => [f, options.mapping[f] ? columnIndex(table.headers, options.mapping[f]!) : -1])) as Record<CsvField, number>;
  const cell = (cells: string[], field: CsvField): string | undefined => (at[field] >= 0 ? (cells[at[field]] ?? '').trim() : undefined);
  const fallbackKind = options.groupKind ?? 'class';
  const bad: BadRow[] = [...table.bad];
  const people: PersonRow[] = [];
  const groups = new Map<string, GroupRow>();
  const usernames = new Map<string, number>();
  const externalIds = new Map<string, number>();
  const refused = { usernames: [] as string[], externalIds: [] as string[] };
  const managesGroups = at.groups >= 0 || at.year >= 0;

  for (const { line, cells } of table.rows) {
    const refuse = (reason: string) => {
      bad.push({ file: table.file, line, reason });
      const u = cell(cells, 'username');
      if (u) refused.usernames.push(u.toLowerCase());
      const x = cell(cells, 'externalId');
      if (x) refused.externalIds.push(x);
    };
    const control = controlIn(csvFields.filter((f) => at[f] >= 0).map((f) => [`${options.mapping[f]} column`, cell(cells, f)]));
    if (control) { refuse(control); continue; }
    const u = checkUsername(cell(cells, 'username') ?? '');
    if (u.reason) { refuse(u.reason); continue; }
    const username = u.username!;
    const externalId = cell(cells, 'externalId') || null;
    const e = cell(cells, 'email') !== undefined ? checkEmail(cell(cells, 'email')!) : { email: undefined };
    if (e.reason) { refuse(e.reason); continue; }
    const roleCell = cell(cells, 'role') ?? '';
    let role: Role | undefined = options.defaultRole;
    if (roleCell !== '') {
      const r = roleFromWord(roleCell);
      if (r === 'refused') { refuse(ADMINISTRATOR_REFUSED); continue; }
      if (r === 'parent') { refuse(`role "${roleCell}" refused: parents and guardians are not given Gatehouse accounts`); continue; }
      if (!r) { refuse(`unknown role "${roleCell}": use pupil (or student), staff (or teacher), senior leader, DSL, DPO, governor, office or guest`); continue; }
      role = r;
    }
    if (!role) { refuse('missing role (the row has none and no default role was chosen)'); continue; }
    let status: PersonRow['status'];
    const statusCell = cell(cells, 'status');
    if (statusCell !== undefined && statusCell !== '') {
      const s = normaliseHeader(statusCell);
      if (['active', 'enabled', 'current', 'yes', 'true'].includes(s)) status = 'active';
      else if (['disabled', 'inactive', 'suspended', 'no', 'false'].includes(s)) status = 'disabled';
      else { refuse(`unknown status "${statusCell}": use active or disabled (leavers are handled in Gatehouse, with the leaver checklist)`); continue; }
    }
    const givenName = cell(cells, 'givenName');
    const familyName = cell(cells, 'familyName');
    const displayCell = cell(cells, 'displayName');
    const tooLong = longText('the username', username, 64) ?? longText('the external id', externalId ?? '', 200) ?? longText('the first name', givenName ?? '', 100) ?? longText('the last name', familyName ?? '', 100) ?? longText('the display name', displayCell ?? '', 200);
    if (tooLong) { refuse(tooLong); continue; }
    const earlier = usernames.get(username);
    if (earlier !== undefined) { refuse(`duplicate in file: the username "${username}" is also on line ${earlier}`); continue; }
    if (externalId) {
      const earlierId = externalIds.get(externalId);
      if (earlierId !== undefined) { refuse(`duplicate in file: the external id "${externalId}" is also on line ${earlierId}`); continue; }
    }
    usernames.set(username, line);
    if (externalId) externalIds.set(externalId, line);

    const named = [givenName, familyName].filter((n) => n).join(' ');
    const displayName = displayCell || named || undefined;
    const person: PersonRow = {
      file: table.file,
      line,
      username,
      externalId,
      role,
      ...(givenName !== undefined ? { givenName: givenName || null } : {}),
      ...(familyName !== undefined ? { familyName: familyName || null } : {}),
      ...(displayName !== undefined ? { displayName } : {}),
      ...(e.email !== undefined ? { email: e.email } : {}),
      ...(status ? { status } : {}),
    };
    if (managesGroups) {
      const names: Array<{ name: string; kind: GroupKind }> = [];
      for (const name of (cell(cells, 'groups') ?? '').split(/[;|]/).map((g) => g.trim()).filter(Boolean)) names.push({ name, kind: groupKindOf(name, fallbackKind) });
      const year = cell(cells, 'year');
      if (year) names.push({ name: /^\d{1,2}$/.test(year) ? `Year ${year}` : year, kind: 'year' });
      const memberRole: MemberRole = role === 'pupil' || role === 'guest' ? 'member' : 'teacher';
      person.groups = [];
      for (const g of names) {
        if (g.name.length > 200) continue;
        const key = `${g.kind}:${g.name.toLowerCase()}`;
        if (!groups.has(key)) groups.set(key, { key, name: g.name, kind: g.kind, externalId: null, file: table.file, line });
        if (person.groups.some((x) => x.key === key)) continue;
        // Staff in a class teach it (AC-03 reads this); in a year group or department they are members.
        person.groups.push({ key, role: g.kind === 'class' ? memberRole : 'member' });
      }
    }
    people.push(person);
  }
  bad.sort((a, b) => a.line - b.line);
  const ignored = table.headers.filter((h) => h && !Object.values(options.mapping).includes(h));
  const notes = ignored.length ? [`Columns not imported: ${ignored.join(', ')}.`] : [];
  if (table.headers.some((h) => /pass(word)?|pwd/i.test(h))) notes.push('The file has a password column: it was not read. Imported people are given temporary passwords in Gatehouse.');
  return { source: 'csv', files: [table.file], headers: { [table.file]: table.headers }, rows: table.rows.length + table.bad.length, people, groups: [...groups.values()], bad, refused, notes };
}

// --- Microsoft School Data Sync CSV v2.1 ----------------------------------------------------------

/**
 * The SDS v2.1 files this import reads, and their columns (learn.microsoft.com, "SDS V2.1 CSV File
 * Format"). orgs.csv is required by SDS itself but Gatehouse serves one school, so it is not needed.
 */
export const sdsFiles = {
  'users.csv': { required: ['sourcedId', 'username'], optional: ['givenName', 'familyName', 'email'] },
  'roles.csv': { required: ['userSourcedId', 'orgSourcedId', 'role'], optional: ['isPrimary'] },
  'classes.csv': { required: ['sourcedId', 'title'], optional: ['orgSourcedId'] },
  'enrollments.csv': { required: ['classSourcedId', 'userSourcedId', 'role'], optional: [] },
} as const;
export type SdsFile = keyof typeof sdsFiles;

/**
 * SDS role values ("Default list of values": every value but student and other belongs to the
 * Staff role group). SDS administrator becomes staff: Gatehouse administrator rights go only on
 * separate linked accounts, made in Gatehouse.
 */
const sdsStaffRoles = [
  'principal', 'chair', 'professor', 'researcher', 'adjunct', 'affiliate', 'occupationalTherapist', 'physicalTherapist', 'speechTherapist',
  'visionTherapist', 'paraprofessional', 'specialServices', 'advisor', 'proctor', 'nurse', 'officeStaff', 'lecturer', 'itAdmin', 'administrator',
  'teacher', 'faculty', 'staff', 'teacherAssistant', 'aide', 'instructor', 'substitute', 'coach', 'districtAdministrator', 'siteAdministrator', 'systemAdministrator',
];
const sdsStaff = new Set(sdsStaffRoles.map((r) => r.toLowerCase()));
const sdsRefused: Record<string, string> = {
  guardian: 'parents and guardians are not given Gatehouse accounts',
  parent: 'parents and guardians are not given Gatehouse accounts',
  relative: 'parents and guardians are not given Gatehouse accounts',
  alumni: 'alumni are not given Gatehouse accounts',
};

function sdsRole(value: string): { role?: 'pupil' | 'staff'; reason?: string } {
  const v = value.trim().toLowerCase();
  if (v === 'student') return { role: 'pupil' };
  if (sdsStaff.has(v)) return { role: 'staff' };
  if (sdsRefused[v]) return { reason: `role "${value}" refused: ${sdsRefused[v]}` };
  return { reason: `unknown role "${value}" (SDS roles include student, teacher, aide, staff, administrator)` };
}

function table(file: string, t: CsvTable, required: readonly string[]): (cells: string[], column: string) => string {
  const missing = required.filter((c) => columnIndex(t.headers, c) < 0);
  if (missing.length) throw fileError(`${file} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} that SDS v2.1 requires (column headers: ${t.headers.join(', ')}).`);
  const index = new Map<string, number>();
  return (cells, column) => {
    if (!index.has(column)) index.set(column, columnIndex(t.headers, column));
    const i = index.get(column)!;
    return i >= 0 ? (cells[i] ?? '').trim() : '';
  };
}

/** Picks the four files out of what was given (names compared without case or folders). */
export function sdsFileSet(files: Record<string, string>): { found: Partial<Record<SdsFile, { name: string; text: string }>>; ignored: string[] } {
  const found: Partial<Record<SdsFile, { name: string; text: string }>> = {};
  const ignored: string[] = [];
  for (const [name, text] of Object.entries(files)) {
    const base = name.split(/[\\/]/).pop()!.toLowerCase() as SdsFile;
    if (base in sdsFiles) found[base] = { name: base, text };
    else ignored.push(name);
  }
  return { found, ignored };
}

/** AC-12: pupils, staff, classes and who teaches or is in each, from SDS v2.1 CSV files. */
export function readSds(files: Record<string, string>): ImportData {
  const { found, ignored } = sdsFileSet(files);
  if (!found['users.csv'] || !found['roles.csv']) {
    throw fileError(`School Data Sync v2.1 needs users.csv and roles.csv${Object.keys(files).length ? ` (given: ${Object.keys(files).join(', ')})` : ''}; classes.csv and enrollments.csv add classes.`);
  }
  if (Boolean(found['classes.csv']) !== Boolean(found['enrollments.csv'])) {
    throw fileError('Give classes.csv and enrollments.csv together (or neither, to import people only).');
  }
  const tables = Object.fromEntries(
    (Object.keys(sdsFiles) as SdsFile[]).filter((k) => found[k]).map((k) => [k, readCsv(found[k]!.name, found[k]!.text)]),
  ) as Partial<Record<SdsFile, CsvTable>>;
  const bad: BadRow[] = Object.values(tables).flatMap((t) => t!.bad);
  const refused = { usernames: [] as string[], externalIds: [] as string[] };
  const rows = Object.values(tables).reduce((n, t) => n + t!.rows.length + t!.bad.length, 0);

  // users.csv
  const users = tables['users.csv']!;
  const u = table('users.csv', users, sdsFiles['users.csv'].required);
  const candidates = new Map<string, { line: number; username: string; givenName: string | null; familyName: string | null; email: string | null | undefined }>();
  const badUsers = new Map<string, number>();
  const usernames = new Map<string, number>();
  const hasEmail = columnIndex(users.headers, 'email') >= 0;
  const hasGiven = columnIndex(users.headers, 'givenName') >= 0;
  const hasFamily = columnIndex(users.headers, 'familyName') >= 0;
  for (const { line, cells } of users.rows) {
    const id = u(cells, 'sourcedId');
    let username: string | undefined;
    const refuse = (reason: string) => {
      bad.push({ file: 'users.csv', line, reason });
      if (username) refused.usernames.push(username);
      if (id) {
        badUsers.set(id, line);
        refused.externalIds.push(id);
      }
    };
    if (!id) { refuse('missing sourcedId'); continue; }
    const control = controlIn([['sourcedId', id], ['username', u(cells, 'username')], ['givenName', u(cells, 'givenName')], ['familyName', u(cells, 'familyName')], ['email', u(cells, 'email')]]);
    if (control) { refuse(control); continue; }
    if (candidates.has(id) || badUsers.has(id)) { refuse(`duplicate in file: the sourcedId "${id}" is also on line ${candidates.get(id)?.line ?? badUsers.get(id)}`); continue; }
    // SDS usernames are usually sign-in names (jcraig@school.org): the part before the @ is the Gatehouse username.
    const raw = u(cells, 'username');
    const checked = checkUsername(raw.includes('@') ? raw.slice(0, raw.indexOf('@')) : raw);
    if (checked.reason) { refuse(raw.includes('@') ? `${checked.reason} (from the sign-in name "${raw}")` : checked.reason); continue; }
    username = checked.username!;
    const e = hasEmail ? checkEmail(u(cells, 'email')) : { email: undefined };
    if (e.reason) { refuse(e.reason); continue; }
    const givenName = u(cells, 'givenName') || null;
    const familyName = u(cells, 'familyName') || null;
    const tooLong = longText('the sourcedId', id, 200) ?? longText('givenName', givenName ?? '', 100) ?? longText('familyName', familyName ?? '', 100);
    if (tooLong) { refuse(tooLong); continue; }
    const earlier = usernames.get(username);
    if (earlier !== undefined) { refuse(`duplicate in file: the username "${username}" is also on line ${earlier}`); continue; }
    usernames.set(username, line);
    candidates.set(id, { line, username, givenName, familyName, email: e.email });
  }

  // roles.csv: one or more rows per user; the Gatehouse role is pupil or staff.
  const rolesT = tables['roles.csv']!;
  const r = table('roles.csv', rolesT, sdsFiles['roles.csv'].required);
  const userRoles = new Map<string, Array<{ role: 'pupil' | 'staff'; line: number; primary: boolean }>>();
  const roleRowsSeen = new Set<string>();
  for (const { line, cells } of rolesT.rows) {
    const id = r(cells, 'userSourcedId');
    if (!id) { bad.push({ file: 'roles.csv', line, reason: 'missing userSourcedId' }); continue; }
    const value = r(cells, 'role');
    if (!value) { bad.push({ file: 'roles.csv', line, reason: `missing role for user "${id}"` }); continue; }
    const mapped = sdsRole(value);
    if (!mapped.role) { bad.push({ file: 'roles.csv', line, reason: mapped.reason! }); continue; }
    if (!candidates.has(id)) {
      bad.push({ file: 'roles.csv', line, reason: badUsers.has(id) ? `user "${id}" was not imported (users.csv line ${badUsers.get(id)})` : `names user "${id}", who is not in users.csv` });
      continue;
    }
    const org = r(cells, 'orgSourcedId');
    const dedupe = `${id}\u0000${org}\u0000${value.toLowerCase()}`;
    if (roleRowsSeen.has(dedupe)) { bad.push({ file: 'roles.csv', line, reason: `duplicate in file: user "${id}" already has the role "${value}" at org "${org}"` }); continue; }
    roleRowsSeen.add(dedupe);
    const list = userRoles.get(id) ?? [];
    list.push({ role: mapped.role, line, primary: /^true$/i.test(r(cells, 'isPrimary')) });
    userRoles.set(id, list);
  }

  const people = new Map<string, PersonRow>();
  for (const [id, c] of candidates) {
    const refuse = (reason: string) => {
      bad.push({ file: 'users.csv', line: c.line, reason });
      badUsers.set(id, c.line);
      refused.externalIds.push(id);
      refused.usernames.push(c.username);
    };
    const list = userRoles.get(id);
    if (!list || list.length === 0) { refuse(`user "${id}" has no usable role in roles.csv`); continue; }
    const kinds = new Set(list.map((x) => x.role));
    if (kinds.size > 1) { refuse(`user "${id}" is both a student and staff in roles.csv (lines ${list.map((x) => x.line).join(', ')}); give one`); continue; }
    const role = list[0]!.role;
    const displayName = [c.givenName, c.familyName].filter(Boolean).join(' ') || undefined;
    people.set(id, {
      file: 'users.csv',
      line: c.line,
      username: c.username,
      externalId: id,
      role,
      ...(hasGiven ? { givenName: c.givenName } : {}),
      ...(hasFamily ? { familyName: c.familyName } : {}),
      ...(displayName ? { displayName } : {}),
      ...(c.email !== undefined ? { email: c.email } : {}),
    });
  }

  // classes.csv and enrollments.csv
  const groups: GroupRow[] = [];
  if (tables['classes.csv'] && tables['enrollments.csv']) {
    const classesT = tables['classes.csv'];
    const c = table('classes.csv', classesT, sdsFiles['classes.csv'].required);
    const classes = new Map<string, GroupRow>();
    const badClasses = new Map<string, number>();
    for (const { line, cells } of classesT.rows) {
      const id = c(cells, 'sourcedId');
      const title = c(cells, 'title');
      if (!id) { bad.push({ file: 'classes.csv', line, reason: 'missing sourcedId' }); continue; }
      const control = controlIn([['sourcedId', id], ['title', title]]);
      if (control) { bad.push({ file: 'classes.csv', line, reason: control }); badClasses.set(id, line); continue; }
      if (classes.has(id) || badClasses.has(id)) { bad.push({ file: 'classes.csv', line, reason: `duplicate in file: the class "${id}" is also on line ${classes.get(id)?.line ?? badClasses.get(id)}` }); badClasses.set(id, badClasses.get(id) ?? line); continue; }
      if (!title) { bad.push({ file: 'classes.csv', line, reason: `class "${id}" has no title` }); badClasses.set(id, line); continue; }
      if (title.length > 200 || id.length > 200) { bad.push({ file: 'classes.csv', line, reason: 'the title or sourcedId is longer than 200 characters' }); badClasses.set(id, line); continue; }
      const group: GroupRow = { key: `sds:${id}`, name: title, kind: 'class', externalId: id, file: 'classes.csv', line };
      classes.set(id, group);
      groups.push(group);
    }
    for (const p of people.values()) p.groups = [];
    const enrolT = tables['enrollments.csv'];
    const en = table('enrollments.csv', enrolT, sdsFiles['enrollments.csv'].required);
    const seen = new Map<string, number>();
    for (const { line, cells } of enrolT.rows) {
      const classId = en(cells, 'classSourcedId');
      const userId = en(cells, 'userSourcedId');
      const value = en(cells, 'role');
      const refuse = (reason: string) => bad.push({ file: 'enrollments.csv', line, reason });
      if (!classId || !userId) { refuse('missing classSourcedId or userSourcedId'); continue; }
      if (!classes.has(classId)) { refuse(badClasses.has(classId) ? `class "${classId}" was not imported (classes.csv line ${badClasses.get(classId)})` : `names class "${classId}", which is not in classes.csv`); continue; }
      const person = people.get(userId);
      if (!person) { refuse(badUsers.has(userId) ? `user "${userId}" was not imported (users.csv line ${badUsers.get(userId)})` : `names user "${userId}", who is not in users.csv`); continue; }
      const mapped = sdsRole(value);
      if (!mapped.role) { refuse(mapped.reason!); continue; }
      if (mapped.role === 'staff' && person.role === 'pupil') { refuse(`"${person.username}" is a student but is enrolled in class "${classId}" as "${value}": pupils never get a class's teacher role`); continue; }
      if (mapped.role === 'pupil' && person.role === 'staff') { refuse(`"${person.username}" is staff but is enrolled in class "${classId}" as a student`); continue; }
      const dedupe = `${classId}\u0000${userId}`;
      if (seen.has(dedupe)) { refuse(`duplicate in file: user "${userId}" is already enrolled in class "${classId}" on line ${seen.get(dedupe)}`); continue; }
      seen.set(dedupe, line);
      person.groups!.push({ key: `sds:${classId}`, role: mapped.role === 'staff' ? 'teacher' : 'member' });
    }
  }
  bad.sort((a, b) => (a.file === b.file ? a.line - b.line : fileOrder(a.file) - fileOrder(b.file)));
  const notes: string[] = [];
  if (ignored.length) notes.push(`Not read: ${ignored.join(', ')} (Gatehouse reads users.csv, roles.csv, classes.csv and enrollments.csv).`);
  if (columnIndex(users.headers, 'password') >= 0) notes.push('users.csv has a password column: it was not read. Imported people are given temporary passwords in Gatehouse.');
  return { source: 'sds', files: Object.keys(tables), headers: Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, t!.headers])), rows, people: [...people.values()], groups, bad, refused, notes };
}

const fileOrder = (file: string) => {
  const i = Object.keys(sdsFiles).indexOf(file);
  return i < 0 ? 99 : i;
};
