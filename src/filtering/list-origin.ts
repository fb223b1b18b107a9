import { constants, closeSync, createWriteStream, fstatSync, openSync, readSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { METADATA_NAMES, parseListAllowList, refusedAddress, type AllowList } from '../core/address-ranges.js';
import type { Config } from '../core/config.js';

/**
 * Where a list may come from (FI-04; issue 10, finding 1). A list's location is typed by an
 * administrator, so the server must not become a way to read its own files or reach its own
 * network:
 *
 * - A file or folder is read only inside the one configured list folder (GATEHOUSE_LIST_FOLDER):
 *   the path is resolved (realpath) and checked to be inside the folder's own real path each time it
 *   is read, not only when saved, so a symbolic link or `..` leading out is refused; only regular
 *   files and folders are read (a device or a pipe would leak or hang), opened without following a
 *   last symbolic link and checked again on the open descriptor.
 * - An address is fetched over http or https only. The name is resolved here, every address it
 *   gives is checked (this machine, link-local and metadata, private networks, multicast are
 *   refused unless GATEHOUSE_LIST_ALLOWED_NETWORKS lists them), and the connection is made to the
 *   address that was checked (a `lookup` for the request that answers only that address), so the
 *   name cannot be re-pointed between the check and the connection. Redirects are followed by hand,
 *   at most five, each checked the same way.
 *
 * Errors say what was refused and why, never what a file or an answer contained.
 */

/** A list could not be read or fetched; its message is safe to show, log and audit (it never quotes content). */
export class ListSourceError extends Error {
  constructor(
    message: string,
    /** the name did not resolve (at save time this is not a refusal: the fetch reports it) */
    readonly unresolved = false,
  ) {
    super(message);
  }
}

export interface Resolved {
  address: string;
  family: 4 | 6;
}
/** How host names are resolved: the system's resolver (getaddrinfo, so /etc/hosts too), every address. */
export type Resolve = (host: string) => Promise<Resolved[]>;
export const systemResolve: Resolve = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export interface ListOrigins {
  /** the configured list folder, as written (absolute) */
  folder: string;
  allow: AllowList;
  resolve: Resolve;
}

export function listOrigins(config: Pick<Config, 'listFolder' | 'listAllowedNetworks'>, resolve: Resolve = systemResolve): ListOrigins {
  const { allow, problem } = parseListAllowList(config.listAllowedNetworks);
  if (problem) throw new ListSourceError(`GATEHOUSE_LIST_ALLOWED_NETWORKS: ${problem}`);
  return { folder: path.resolve(config.listFolder), allow, resolve };
}

export const MAX_REDIRECTS = 5;
const ALLOW_HINT = 'lists are fetched only from public addresses, or from networks and hosts listed in GATEHOUSE_LIST_ALLOWED_NETWORKS';

// --- Files and folders on this server ---------------------------------------------------------------

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : `${parent}${path.sep}`);

/** The list folder's real path (it must exist). */
export function realFolder(folder: string): string {
  try {
    return realpathSync(folder);
  } catch {
    throw new ListSourceError(`the list folder ${folder} does not exist on this server (GATEHOUSE_LIST_FOLDER); create it and put the lists there`);
  }
}

/**
 * The real path of a location inside the list folder, after checking that it is written inside the
 * folder (no `..`), that it resolves inside it (no symbolic link out), and that it is a regular file
 * or a folder. Throws a ListSourceError saying which rule it broke.
 */
export function confineLocal(location: string, folder: string): { real: string; folder: string; directory: boolean } {
  const outside = `${location} is outside the list folder ${folder}: lists on this server are read only from that folder (GATEHOUSE_LIST_FOLDER)`;
  if (!path.isAbsolute(location)) throw new ListSourceError(`${location} is not a full path: give the full path of a file or folder inside ${folder}`);
  if (location.includes('\0') || location.split(/[\\/]/).some((part) => part === '..')) throw new ListSourceError(`${location} contains “..”: give the path inside the list folder ${folder} without it`);
  const root = realFolder(folder);
  const written = path.resolve(location);
  if (!inside(written, path.resolve(folder)) && !inside(written, root)) throw new ListSourceError(outside);
  let real: string;
  try {
    real = realpathSync(written);
  } catch {
    throw new ListSourceError(`there is no file or folder at ${location}`);
  }
  if (!inside(real, root)) throw new ListSourceError(`${location} leads outside the list folder ${folder} (a symbolic link): lists on this server are read only from that folder`);
  const stat = statSync(real);
  if (!stat.isFile() && !stat.isDirectory()) throw new ListSourceError(`${location} is not a regular file or folder (a device, pipe or socket): it is not read`);
  return { real, folder: root, directory: stat.isDirectory() };
}

/**
 * A file's bytes, read only when its real path is inside `root` and it is a regular file — checked
 * on the open descriptor (opened without following a last symbolic link, without blocking on a
 * pipe) — and no larger than `maxBytes`.
 */
export function readConfined(file: string, root: string, maxBytes: number, shown = path.basename(file)): Buffer {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    throw new ListSourceError(`${shown} is not there any more`);
  }
  if (!inside(real, root)) throw new ListSourceError(`${shown} leads outside the list folder (a symbolic link): it is not read`);
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw new ListSourceError(`${shown} cannot be opened (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ListSourceError(`${shown} is not a regular file (a device, pipe or socket): it is not read`);
    if (stat.size > maxBytes) throw new ListSourceError(`${shown} is ${describeBytes(stat.size)}, above the limit of ${describeBytes(maxBytes)} for a list file`);
    // One byte more than the size: a file that grows while it is read is noticed, not cut short.
    const out = Buffer.allocUnsafe(stat.size + 1);
    let length = 0;
    while (length < out.length) {
      const n = readSync(fd, out, length, out.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > stat.size) throw new ListSourceError(`${shown} changed while it was read: try again`);
    return out.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks every entry of a UT1 folder that could be read (the folder's own entries and those of each
 * category folder): each resolves inside `root` and is a regular file or a folder. A symbolic link
 * to nothing is left alone (nothing can be read through it).
 */
export function checkUt1Tree(folder: string, root: string): void {
  const check = (dir: string, depth: number) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const shown = path.relative(folder, full) || entry.name;
      let real: string;
      try {
        real = realpathSync(full);
      } catch {
        continue;
      }
      if (!inside(real, root)) throw new ListSourceError(`${shown} leads outside the list folder (a symbolic link): the list is not read`);
      const stat = statSync(real);
      if (stat.isDirectory()) {
        if (depth === 0) check(full, 1);
      } else if (!stat.isFile()) throw new ListSourceError(`${shown} is not a regular file or folder (a device, pipe or socket): the list is not read`);
    }
  };
  check(folder, 0);
}

// --- Addresses on the web ---------------------------------------------------------------------------

/** The http(s) URL, or why it is not one the server fetches. */
export function parseListUrl(location: string): URL {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new ListSourceError(`${location} is not a web address`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ListSourceError(`${url.protocol.replace(/:$/, '')}: addresses are not fetched: give an http:// or https:// address`);
  // A location is shown on the Lists page and kept in the audit trail, so a password in it would be
  // shown to every reader and never leave the permanent trail. Refused, without echoing the address.
  if (url.username || url.password) {
    throw new ListSourceError('a web address with a user name or password in it is not accepted, because the address is shown on the Lists page and kept in the audit trail: use a list server that needs no password (on the school network, allowed by GATEHOUSE_LIST_ALLOWED_NETWORKS)');
  }
  return url;
}

/**
 * Resolves the URL's host (an address is taken as it is) and checks every address it gives. Returns
 * the address to connect to. A name that gives any refused address is refused whole.
 */
export async function checkUrlTarget(url: URL, origins: ListOrigins): Promise<Resolved> {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const name = host.replace(/\.$/, '');
  if (METADATA_NAMES.has(name)) throw new ListSourceError(`${url.host} is a cloud metadata service: ${ALLOW_HINT}`);
  const literal = isIP(host);
  let addresses: Resolved[];
  if (literal) addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await origins.resolve(name);
    } catch (error) {
      throw new ListSourceError(`${url.hostname} cannot be found (${(error as NodeJS.ErrnoException).code ?? 'no answer'})`, true);
    }
    if (addresses.length === 0) throw new ListSourceError(`${url.hostname} cannot be found (no address)`, true);
  }
  for (const a of addresses) {
    const why = refusedAddress(a.address, literal ? null : name, origins.allow);
    if (why) throw new ListSourceError(literal ? `${url.host} is ${why}: ${ALLOW_HINT}` : `${url.hostname} resolves to ${a.address}, ${why}: ${ALLOW_HINT}`);
  }
  return addresses[0]!;
}

export interface DownloadLimits {
  timeoutMs: number;
  maxDownloadBytes: number;
}

/** "12 MB", or "800 KB" for the small limits tests use. */
export const describeBytes = (bytes: number) => (bytes >= 1_048_576 ? `${Math.round(bytes / 1_048_576).toLocaleString('en-GB')} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

function get(url: URL, target: Resolved, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(
      url,
      {
        method: 'GET',
        agent: false,
        signal,
        headers: { 'user-agent': 'Gatehouse list fetcher', accept: '*/*', 'accept-encoding': 'identity' },
        // Pinned: the connection goes to the address that was checked, whatever the name says now.
        lookup: ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
          if (options?.all) callback(null, [{ address: target.address, family: target.family }]);
          else callback(null, target.address, target.family);
        }) as never,
      },
      resolve,
    );
    request.on('error', reject);
    request.end();
  });
}

/**
 * Downloads an http(s) list to `file`: every hop's name resolved and checked and the connection
 * pinned to the checked address; redirects followed by hand (at most five, never from https to
 * http); the body capped at `maxDownloadBytes`. Returns the bytes written.
 */
export async function downloadList(location: string, file: string, origins: ListOrigins, limits: DownloadLimits): Promise<number> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let url = parseListUrl(location);
  for (let hop = 0; ; hop++) {
    const target = await checkUrlTarget(url, origins);
    let response: IncomingMessage;
    try {
      response = await get(url, target, signal);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new ListSourceError(signal.aborted ? `no answer from ${url.host} within ${Math.round(limits.timeoutMs / 1000)} s` : `cannot reach ${url.host} (${e.code ?? e.name})`);
    }
    const status = response.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      response.destroy();
      const next = response.headers.location;
      if (!next) throw new ListSourceError(`${url.host} answered ${status} (a redirect) without saying where to`);
      if (hop + 1 > MAX_REDIRECTS) throw new ListSourceError(`more than ${MAX_REDIRECTS} redirects, the limit: the list is not fetched`);
      let to: URL;
      try {
        to = new URL(next, url);
      } catch {
        throw new ListSourceError(`${url.host} redirected to something that is not a web address`);
      }
      if (to.protocol !== 'http:' && to.protocol !== 'https:') throw new ListSourceError(`${url.host} redirected to a ${to.protocol.replace(/:$/, '')}: address, which is not fetched`);
      if (url.protocol === 'https:' && to.protocol === 'http:') throw new ListSourceError(`${url.host} redirected from https to plain http, which is not followed`);
      url = to;
      continue;
    }
    if (status !== 200) {
      response.destroy();
      throw new ListSourceError(`${url.host} answered ${status}`);
    }
    const declared = Number(response.headers['content-length'] ?? '0');
    if (declared > limits.maxDownloadBytes) {
      response.destroy();
      throw new ListSourceError(`the file is ${describeBytes(declared)}, above the limit of ${describeBytes(limits.maxDownloadBytes)} for a download`);
    }
    let received = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (received > limits.maxDownloadBytes) done(new ListSourceError(`the download passed the limit of ${describeBytes(limits.maxDownloadBytes)}`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(response, cap, createWriteStream(file, { mode: 0o600 }), { signal });
    } catch (error) {
      if (error instanceof ListSourceError) throw error;
      throw new ListSourceError(signal.aborted ? `no answer from ${url.host} within ${Math.round(limits.timeoutMs / 1000)} s` : `the download from ${url.host} broke off (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return received;
  }
}
