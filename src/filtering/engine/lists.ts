import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { domainToASCII } from 'node:url';

/**
 * Reading block and allow lists in the formats schools meet (FI-03, FI-04): the UT1 archive layout
 * (`<category>/domains`, `<category>/urls`, `<category>/expressions`, `global_usage`), plain domain
 * lists, hosts files, and adblock-style `||domain^` lines. Every name is normalised the way the
 * engine matches it: lower case, no trailing dot, IDN as punycode.
 */

export const listFormats = ['domains', 'hosts', 'adblock'] as const;
export type ListFormat = (typeof listFormats)[number];

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** A host as the engine keys it, or null when it is not a host name or IP address. */
export function normaliseHost(raw: string): string | null {
  let host = raw.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':')) {
    // IPv6 literal: keep as written, lower case (matched whole).
    return /^[0-9a-fA-F:.]+$/.test(host) ? host.toLowerCase() : null;
  }
  if (host.startsWith('*.')) host = host.slice(2);
  else if (host.startsWith('.')) host = host.slice(1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0 || host.length > 253) return null;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(host)) {
    const ascii = domainToASCII(host);
    if (!ascii) return null;
    host = ascii;
  }
  host = host.toLowerCase();
  if (IPV4.test(host)) return host;
  const labels = host.split('.');
  for (const label of labels) if (!LABEL.test(label)) return null;
  return host;
}

export interface ParsedList {
  domains: string[];
  /** host + path prefixes (UT1 `urls`) */
  urls: string[];
  /**
   * The numbers of the first lines that were neither comments nor usable. Only their numbers: a
   * list's text is never quoted back (a location pointing at a secret would show it).
   */
  rejected: number[];
  rejectedCount: number;
  /** lines that were neither empty nor comments */
  lines: number;
}

function push(out: ParsedList, line: number): void {
  out.rejectedCount++;
  if (out.rejected.length < 20 && out.rejected[out.rejected.length - 1] !== line) out.rejected.push(line);
}

/** Parses a list's text in one of the formats. */
export function parseList(text: string, format: ListFormat): ParsedList {
  const out: ParsedList = { domains: [], urls: [], rejected: [], rejectedCount: 0, lines: 0 };
  let start = 0;
  let lineNo = 0;
  const length = text.length;
  while (start <= length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = length;
    lineNo++;
    let line = text.slice(start, end);
    start = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith('!')) continue;
    out.lines++;
    let candidate: string | null = null;
    if (format === 'domains') {
      candidate = trimmed.split(/\s+#/)[0]!.trim();
    } else if (format === 'hosts') {
      const parts = trimmed.split('#')[0]!.trim().split(/\s+/);
      if (parts.length < 2) {
        push(out, lineNo);
        continue;
      }
      // Every name after the address; localhost entries are not blocks.
      for (const name of parts.slice(1)) {
        if (name === 'localhost' || name === 'localhost.localdomain' || name === 'broadcasthost' || name === 'local' || name.startsWith('ip6-')) continue;
        const host = normaliseHost(name);
        if (host) out.domains.push(host);
        else push(out, lineNo);
      }
      continue;
    } else {
      // adblock: only whole-domain network rules (`||example.com^`) mean something to a DNS or host filter.
      const m = /^\|\|([^/^$*|]+)\^?(\$.*)?$/.exec(trimmed);
      if (!m || (m[2] && !/^\$(important|all|doc|document)?$/.test(m[2]))) {
        if (!trimmed.startsWith('@@') && !trimmed.includes('##')) push(out, lineNo);
        continue;
      }
      candidate = m[1]!;
    }
    const host = normaliseHost(candidate);
    if (host) out.domains.push(host);
    else push(out, lineNo);
  }
  return out;
}

/** UT1 `urls` lines: "host/path" prefixes, the host normalised, the path kept as given. */
export function parseUrlList(text: string): { urls: string[]; rejectedCount: number } {
  const urls: string[] = [];
  let rejectedCount = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const slash = line.indexOf('/');
    const host = normaliseHost(slash === -1 ? line : line.slice(0, slash));
    if (!host) {
      rejectedCount++;
      continue;
    }
    urls.push(slash === -1 ? `${host}/` : `${host}${line.slice(slash)}`);
  }
  return { urls, rejectedCount };
}

export interface Ut1Category {
  /** folder name, e.g. "games" */
  id: string;
  name: string;
  description: string;
  /**
   * What UT1 says the list is for (its `usage` file, else `DEFAULT_TYPE` in global_usage): sites to
   * block (black), sites to allow (white: a whitelist such as liste_blanche), or either (both).
   */
  usage: 'black' | 'white' | 'both';
  /** the list whose exceptions this folder holds (`exceptions_liste_bu` → `liste_bu`), or null */
  exceptionsOf: string | null;
  domainsFile: string | null;
  urlsFile: string | null;
  expressionsFile: string | null;
  /** another category this one is a copy or link of (same files) */
  aliasOf: string | null;
}

/** Names and descriptions from UT1's `global_usage` (English where given). */
export function parseGlobalUsage(text: string): Map<string, { name: string; description: string; defaultType: string }> {
  const out = new Map<string, { name: string; description: string; defaultType: string }>();
  let current: { id: string; name: string; description: string; defaultType: string } | null = null;
  const flush = () => {
    if (current) out.set(current.id, { name: current.name, description: current.description, defaultType: current.defaultType });
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    const m = /^([A-Z_]+(?: [A-Z]{2})?)\s*:\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'NAME') {
      flush();
      current = { id: value.trim(), name: value.trim(), description: '', defaultType: 'black' };
    } else if (current && key === 'NAME EN') current.name = value.trim();
    else if (current && key === 'DESC EN') current.description = value.trim();
    else if (current && key === 'DEFAULT_TYPE') current.defaultType = value.trim();
  }
  flush();
  return out;
}

/**
 * The categories of a UT1 archive folder (symbolic links and identical copies noted as aliases).
 * `read` reads `global_usage` and `usage` files (the list service passes one confined to the list
 * folder); a symbolic link to nothing is skipped.
 */
export function readUt1Folder(folder: string, read: (file: string) => string = (file) => readFileSync(file, 'utf8')): Ut1Category[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${folder} is not a folder`);
  const usage = existsSync(path.join(folder, 'global_usage')) ? parseGlobalUsage(read(path.join(folder, 'global_usage'))) : new Map();
  const out: Ut1Category[] = [];
  const seenFiles = new Map<string, string>();
  for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(folder, entry.name);
    if (!(entry.isDirectory() || (entry.isSymbolicLink() && existsSync(dir) && statSync(dir).isDirectory()))) continue;
    const file = (name: string) => (existsSync(path.join(dir, name)) ? path.join(dir, name) : null);
    const domainsFile = file('domains');
    const urlsFile = file('urls');
    if (!domainsFile && !urlsFile) continue;
    const meta = usage.get(entry.name);
    const usageFile = file('usage');
    const declared = usageFile ? read(usageFile) : meta?.defaultType ?? 'black';
    const key = domainsFile ? `${statSync(domainsFile).size}:${statSync(domainsFile).mtimeMs}` : null;
    const aliasOf = entry.isSymbolicLink() ? path.basename(path.resolve(folder, readdirSync(folder).includes(entry.name) ? entry.name : '')) : key ? seenFiles.get(key) ?? null : null;
    if (key && !seenFiles.has(key)) seenFiles.set(key, entry.name);
    out.push({
      id: entry.name,
      name: readableCategoryName(entry.name, meta?.name),
      description: meta?.description ?? '',
      usage: usageOf(declared),
      exceptionsOf: null,
      domainsFile,
      urlsFile,
      expressionsFile: file('expressions'),
      aliasOf: aliasOf === entry.name ? null : aliasOf,
    });
  }
  const ids = new Set(out.map((c) => c.id));
  for (const c of out) {
    const of = /^exceptions?_(.+)$/.exec(c.id)?.[1];
    if (of && ids.has(of)) c.exceptionsOf = of;
  }
  return out;
}

/** The words of a `usage` file (or a DEFAULT_TYPE), comment lines left out. */
function usageOf(declared: string): Ut1Category['usage'] {
  const words = new Set(
    declared
      .split('\n')
      .filter((line) => !line.trim().startsWith('#'))
      .join(' ')
      .toLowerCase()
      .split(/\s+/),
  );
  if (words.has('white')) return words.has('black') ? 'both' : 'white';
  return 'black';
}

/**
 * Whether a UT1 folder is a category a policy may block: not one UT1 declares a whitelist only
 * (liste_blanche, child, liste_bu…), nor the exceptions to another list (exceptions_liste_bu).
 * Blocking those would block what UT1 collected to be allowed.
 */
export function isBlockCategory(c: Pick<Ut1Category, 'usage' | 'exceptionsOf'>): boolean {
  return c.usage !== 'white' && c.exceptionsOf === null;
}

/** "social_networks", "vpn", "Casino_sites": an id rather than a name ("Ads", "Audio/Video" are names). */
const IDENTIFIER = /^(?:[a-z0-9]+(?:[_-]+[a-z0-9]+)*|[A-Za-z0-9]+(?:[_-]+[A-Za-z0-9]+)+)$/;

/**
 * A category's name for people. global_usage names many categories only by their id ("ai",
 * "social_networks") or not at all: such a name is made readable from the id — separators become
 * spaces, the first word gets a capital, and a short word that reads as an abbreviation (the
 * whole name, or one with no vowel: "ai", "vpn", "dns") is written in capitals.
 */
export function readableCategoryName(id: string, given?: string | null): string {
  const name = given?.trim();
  if (name && !IDENTIFIER.test(name)) return name;
  const words = (name || id).split(/[_\s-]+/).filter(Boolean);
  if (words.length === 0) return id;
  return words
    .map((word, i) => {
      if (/^[a-z0-9]{1,3}$/i.test(word) && (words.length === 1 || !/[aeiouy]/i.test(word))) return word.toUpperCase();
      return i === 0 ? `${word[0]!.toUpperCase()}${word.slice(1)}` : word;
    })
    .join(' ');
}
