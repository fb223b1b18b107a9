import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * The data folder and the database files are the school's personal data and second factors: owner
 * only, whatever the umask of whoever started Gatehouse. Files are created with their mode set
 * explicitly (umask can only narrow a mode given to open(), and SQLite otherwise uses 0644), and
 * existing ones that are more open are tightened at start, with a warning naming them.
 */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

export interface Tightened {
  path: string;
  from: string;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/** chmod when group or others have any access; returns what was changed (or could not be). */
function tighten(file: string, mode: number, out: Tightened[]): void {
  let current: number;
  try {
    current = statSync(file).mode;
  } catch {
    return;
  }
  if ((current & 0o077) === 0) return;
  try {
    chmodSync(file, mode);
    out.push({ path: file, from: octal(current) });
  } catch (error) {
    out.push({ path: file, from: `${octal(current)} (could not change it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
  }
}

/** Creates the folder (and missing parents) owner-only, or tightens it if it exists. */
export function ensurePrivateDir(dir: string, out: Tightened[] = []): Tightened[] {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    chmodSync(dir, PRIVATE_DIR);
    return out;
  }
  tighten(dir, PRIVATE_DIR, out);
  return out;
}

/** Creates an empty file 0600 if there is none (so SQLite, which keeps an existing file's mode, and
 * its WAL and shared-memory files, which copy it, are private), or tightens an existing one. */
export function ensurePrivateFile(file: string, out: Tightened[] = []): Tightened[] {
  if (!existsSync(file)) {
    closeSync(openSync(file, 'a', PRIVATE_FILE));
    chmodSync(file, PRIVATE_FILE);
    return out;
  }
  tighten(file, PRIVATE_FILE, out);
  return out;
}

/** A SQLite database and its companions: the file itself, -wal, -shm and a rollback -journal. */
export function securePrivateSqliteFiles(file: string, out: Tightened[] = []): Tightened[] {
  ensurePrivateFile(file, out);
  for (const suffix of ['-wal', '-shm', '-journal']) tighten(`${file}${suffix}`, PRIVATE_FILE, out);
  return out;
}
