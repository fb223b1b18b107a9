import { appendFileSync, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseList, parseUrlList, type ListFormat } from './engine/lists.js';
import { compileSnapshot, type CategoryInput, type CategoryKind, type FilterSnapshot, type PolicyInput, type ScheduleInput } from './engine/snapshot.js';
import { ut1Categories } from './engine/ut1.js';
import type { ActivityRecord, ClientIdentity, FilterPoint } from './point.js';

/**
 * Filtering without the Gatehouse server: a snapshot compiled from files (a UT1 folder and a policy
 * file) and a FilterPoint that identifies clients from the same file (addresses and CIDR ranges,
 * proxy user names). Used by `gatehouse squid-helper` (which Squid starts several times and which
 * must therefore start fast), `gatehouse proxy` and `gatehouse dns`: nothing here imports the
 * database, the HTTP server or zod.
 *
 * The policy file (YAML or JSON; paths inside it are relative to it):
 *
 *   timeZone: Europe/London          # schedules are in school local time
 *   unknownPolicy: unknown           # for clients not listed below
 *   ut1: /var/lib/gatehouse/ut1      # optional UT1 folder (--ut1 wins)
 *   lists:                           # the school's own lists (and any extra categories)
 *     - { id: school-allow, name: School allow list, kind: allow, domains: [bbc.co.uk] }
 *     - { id: school-block, name: School block list, kind: block, file: block.txt, format: domains }
 *   policies:                        # as in the profile's filtering.policies, keyed by id
 *     pupils: { name: Pupils, blockedCategories: [adult, games], safeSearch: "on", youtube: strict }
 *   clients:                         # first the most specific range that holds the address
 *     - { address: 10.1.0.0/16, policy: pupils, name: Pupil Wi-Fi }
 *   users:                           # proxy user names (Squid's %un) -> policy
 *     jsmith: staff
 *
 * Without `policies`, the shipped profile's starting policies are used (pupils, staff, guests,
 * administrators, unknown). A policy that names no allow or block lists uses all of the file's lists
 * of that kind; SafeSearch is on (YouTube moderate) unless a policy says otherwise. A category that
 * no list provides is left out with a warning. These shapes are read too: `policies` as a list of
 * `{ id, … }`, `safeSearch: { search, youtube }`, and `clients: { 10.1.0.0/16: pupils }`.
 * `gatehouse dns --policies` reads the same file with this loader, so the rules are the same for
 * the resolver, the proxy and Squid.
 */

export interface StandaloneOptions {
  ut1?: string | null;
  policyFile?: string | null;
  unknownPolicy?: string | null;
  /** where warnings go (a category no list provides, …); standard error in the CLI */
  warn?: (message: string) => void;
}

export interface Standalone {
  snapshot: FilterSnapshot;
  point: StandaloneFilterPoint;
  policies: string[];
  unknownPolicy: string;
  /** categories and lists compiled in */
  categories: number;
  domains: number;
  loadMs: number;
  /** the policy file's time zone (schedules; times shown to people) */
  timeZone: string;
}

/** A problem in the policy file or the options, in words for the person who wrote it. */
export class StandaloneError extends Error {}

const KINDS: CategoryKind[] = ['category', 'illegal', 'allow', 'block'];
const FORMATS: ListFormat[] = ['domains', 'hosts', 'adblock'];
const CLOCK = /^([01]\d|2[0-3]):[0-5]\d$/;
const PROFILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'profiles', 'ncsc.yaml');
const NAMES: Record<string, string> = { pupils: 'Pupils', staff: 'Staff', guests: 'Guests', administrators: 'Administrators', unknown: 'Unknown devices' };

type Obj = Record<string, unknown>;

async function readStructured(file: string): Promise<unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new StandaloneError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    if (/\.json$/i.test(file)) return JSON.parse(text);
    // YAML only when needed: the parser costs start-up time.
    const { parse } = await import('yaml');
    return parse(text);
  } catch (error) {
    throw new StandaloneError(`${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`);
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new StandaloneError(`${where} must be a list of names`);
  return v as string[];
}

function str(v: unknown, where: string, fallback?: string): string {
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new StandaloneError(`${where} is missing`);
  }
  if (typeof v !== 'string' || v.trim() === '') throw new StandaloneError(`${where} must be text`);
  return v.trim();
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], where: string, fallback: T): T {
  if (v === undefined || v === null) return fallback;
  // YAML 1.1 habits: on/off written unquoted arrive as booleans in some writers.
  const s = v === true ? 'on' : v === false ? 'off' : v;
  if (typeof s !== 'string' || !allowed.includes(s as T)) throw new StandaloneError(`${where} must be one of ${allowed.join(', ')}`);
  return s as T;
}

function knownKeys(o: Obj, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new StandaloneError(`${where}: unknown setting "${k}" (expected ${keys.join(', ')})`);
}

function listInput(raw: unknown, i: number, base: string): CategoryInput {
  const where = `lists[${i}]`;
  if (!isObj(raw)) throw new StandaloneError(`${where} must be a mapping with id, name and kind`);
  knownKeys(raw, ['id', 'name', 'description', 'kind', 'domains', 'urls', 'expressions', 'file', 'format'], where);
  const id = str(raw.id, `${where}.id`);
  const kind = oneOf(raw.kind, KINDS, `${where}.kind`, 'block');
  const domains = strings(raw.domains, `${where}.domains`);
  const urls = strings(raw.urls, `${where}.urls`);
  if (raw.file !== undefined) {
    const file = path.resolve(base, str(raw.file, `${where}.file`));
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new StandaloneError(`${where}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const parsed = parseList(text, oneOf(raw.format, FORMATS, `${where}.format`, 'domains'));
    domains.push(...parsed.domains);
  }
  return {
    id,
    name: str(raw.name, `${where}.name`, id),
    description: typeof raw.description === 'string' ? raw.description : '',
    kind,
    domains,
    urls: parseUrlList(urls.join('\n')).urls,
    expressions: strings(raw.expressions, `${where}.expressions`),
  };
}

function scheduleInput(raw: unknown, where: string): ScheduleInput {
  if (!isObj(raw)) throw new StandaloneError(`${where} must be a mapping with categories, days, from and to`);
  knownKeys(raw, ['categories', 'days', 'from', 'to', 'label'], where);
  const days = raw.days;
  if (!Array.isArray(days) || days.length === 0 || days.some((d) => !Number.isInteger(d) || d < 1 || d > 7)) throw new StandaloneError(`${where}.days must list days 1 (Monday) to 7 (Sunday)`);
  const from = str(raw.from, `${where}.from`);
  const to = str(raw.to, `${where}.to`);
  if (!CLOCK.test(from) || !CLOCK.test(to)) throw new StandaloneError(`${where}: from and to must be times like 08:30`);
  return { categories: strings(raw.categories, `${where}.categories`), days: days as number[], from, to, ...(raw.label !== undefined ? { label: str(raw.label, `${where}.label`) } : {}) };
}

function policyInput(id: string, raw: unknown, lists: CategoryInput[]): PolicyInput {
  const where = `policies.${id}`;
  if (!isObj(raw)) throw new StandaloneError(`${where} must be a mapping`);
  knownKeys(raw, ['name', 'blockedCategories', 'schedules', 'allowLists', 'blockLists', 'safeSearch', 'youtube', 'defaultAction', 'downloadsAllowed'], where);
  if (raw.downloadsAllowed !== undefined && typeof raw.downloadsAllowed !== 'boolean') throw new StandaloneError(`${where}.downloadsAllowed must be true or false`);
  const schedules = raw.schedules === undefined ? [] : Array.isArray(raw.schedules) ? raw.schedules.map((s, i) => scheduleInput(s, `${where}.schedules[${i}]`)) : null;
  if (!schedules) throw new StandaloneError(`${where}.schedules must be a list`);
  return {
    id,
    name: str(raw.name, `${where}.name`, NAMES[id] ?? id),
    blockedCategories: strings(raw.blockedCategories, `${where}.blockedCategories`),
    schedules,
    allowLists: raw.allowLists === undefined ? lists.filter((l) => l.kind === 'allow').map((l) => l.id) : strings(raw.allowLists, `${where}.allowLists`),
    blockLists: raw.blockLists === undefined ? lists.filter((l) => l.kind === 'block').map((l) => l.id) : strings(raw.blockLists, `${where}.blockLists`),
    // `safeSearch: "on"` with `youtube: strict` (as in the profile), or `safeSearch: { search, youtube }`.
    safeSearch: isObj(raw.safeSearch)
      ? { search: oneOf(raw.safeSearch.search, ['on', 'off'] as const, `${where}.safeSearch.search`, 'on'), youtube: oneOf(raw.safeSearch.youtube, ['off', 'moderate', 'strict'] as const, `${where}.safeSearch.youtube`, 'moderate') }
      : { search: oneOf(raw.safeSearch, ['on', 'off'] as const, `${where}.safeSearch`, 'on'), youtube: oneOf(raw.youtube, ['off', 'moderate', 'strict'] as const, `${where}.youtube`, 'moderate') },
    defaultAction: oneOf(raw.defaultAction, ['allow', 'block'] as const, `${where}.defaultAction`, 'allow'),
    downloadsAllowed: (raw.downloadsAllowed as boolean | undefined) ?? false,
  };
}

/** Reads the files and compiles the snapshot; throws StandaloneError with a readable message. */
export async function loadStandalone(options: StandaloneOptions): Promise<Standalone> {
  const started = performance.now();
  const warn = options.warn ?? (() => {});
  const file = options.policyFile ? path.resolve(options.policyFile) : null;
  const doc = file ? await readStructured(file) : {};
  if (!isObj(doc)) throw new StandaloneError(`${file}: expected a mapping with policies, lists, clients and users`);
  knownKeys(doc, ['timeZone', 'unknownPolicy', 'ut1', 'lists', 'policies', 'clients', 'users'], file ?? 'policy');
  const base = file ? path.dirname(file) : process.cwd();

  const timeZone = str(doc.timeZone, 'timeZone', 'Europe/London');
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
  } catch {
    throw new StandaloneError(`timeZone "${timeZone}" is not a time zone; use a name like Europe/London`);
  }

  const categories: CategoryInput[] = [];
  const ut1 = options.ut1 ? path.resolve(options.ut1) : doc.ut1 !== undefined ? path.resolve(base, str(doc.ut1, 'ut1')) : null;
  if (ut1) {
    if (!existsSync(ut1) || !statSync(ut1).isDirectory()) throw new StandaloneError(`the UT1 folder ${ut1} does not exist`);
    categories.push(...ut1Categories(ut1).categories);
  }
  if (doc.lists !== undefined && !Array.isArray(doc.lists)) throw new StandaloneError('lists must be a list');
  const lists = ((doc.lists as unknown[] | undefined) ?? []).map((l, i) => listInput(l, i, base));
  for (const list of lists) {
    const at = categories.findIndex((c) => c.id === list.id);
    if (at !== -1) throw new StandaloneError(`lists: "${list.id}" is also a UT1 category; give the list another id`);
  }
  categories.push(...lists);

  let rawPolicies: Obj;
  if (Array.isArray(doc.policies)) {
    // The list form (`- id: pupils …`, as `gatehouse dns --policies` files have it).
    rawPolicies = {};
    doc.policies.forEach((p, i) => {
      if (!isObj(p)) throw new StandaloneError(`policies[${i}] must be a mapping with an id`);
      const { id, ...rest } = p;
      const key = str(id, `policies[${i}].id`);
      if (key in rawPolicies) throw new StandaloneError(`policies: "${key}" is given twice`);
      rawPolicies[key] = rest;
    });
    if (Object.keys(rawPolicies).length === 0) throw new StandaloneError('policies must name at least one policy');
  } else if (doc.policies !== undefined) {
    if (!isObj(doc.policies) || Object.keys(doc.policies).length === 0) throw new StandaloneError('policies must map policy ids to their settings');
    rawPolicies = doc.policies;
  } else {
    const profile = await readStructured(PROFILE);
    const policies = isObj(profile) && isObj(profile.filtering) && isObj(profile.filtering.policies) ? profile.filtering.policies : null;
    if (!policies) throw new StandaloneError('the policy file sets no policies, and the shipped profile has none to start from');
    rawPolicies = policies;
  }
  const known = new Set(categories.map((c) => c.id));
  const leftOut = new Set<string>();
  const keep = (ids: string[]) =>
    ids.filter((id) => {
      if (known.has(id)) return true;
      leftOut.add(id);
      return false;
    });
  const policies = Object.entries(rawPolicies).map(([id, raw]) => {
    const p = policyInput(id, raw, lists);
    for (const l of [...p.allowLists, ...p.blockLists]) if (!lists.some((x) => x.id === l)) throw new StandaloneError(`policies.${id}: there is no list "${l}" in lists`);
    return { ...p, blockedCategories: keep(p.blockedCategories), schedules: p.schedules.map((s) => ({ ...s, categories: keep(s.categories) })).filter((s) => s.categories.length > 0) };
  });
  if (leftOut.size > 0) warn(`no list provides ${[...leftOut].sort().join(', ')}; left out of the policies`);

  const ids = policies.map((p) => p.id);
  const unknownPolicy = options.unknownPolicy ?? (doc.unknownPolicy !== undefined ? str(doc.unknownPolicy, 'unknownPolicy') : ids.includes('unknown') ? 'unknown' : ids[0]!);
  if (!ids.includes(unknownPolicy)) throw new StandaloneError(`the policy for unknown clients, "${unknownPolicy}", is not one of ${ids.join(', ')}`);

  const clients = parseClients(doc.clients, ids);
  const users = parseUsers(doc.users, ids);

  let snapshot: FilterSnapshot;
  try {
    snapshot = compileSnapshot({ timeZone, categories, policies });
  } catch (error) {
    throw new StandaloneError((error as Error).message);
  }
  const point = new StandaloneFilterPoint(snapshot, { unknownPolicy, clients, users });
  return { snapshot, point, policies: ids, unknownPolicy, categories: categories.length, domains: snapshot.stats.domains, loadMs: performance.now() - started, timeZone };
}

function parseClients(raw: unknown, ids: string[]): ClientRule[] {
  if (raw === undefined || raw === null) return [];
  // The short form: `clients: { 10.1.0.0/16: pupils }`.
  if (isObj(raw)) raw = Object.entries(raw).map(([address, policy]) => ({ address, policy }));
  if (!Array.isArray(raw)) throw new StandaloneError('clients must be a list of { address, policy, name }');
  return raw.map((c, i) => {
    const where = `clients[${i}]`;
    if (!isObj(c)) throw new StandaloneError(`${where} must be a mapping with address and policy`);
    knownKeys(c, ['address', 'policy', 'name'], where);
    const address = str(c.address, `${where}.address`);
    const policy = str(c.policy, `${where}.policy`);
    if (!ids.includes(policy)) throw new StandaloneError(`${where}: there is no policy "${policy}"`);
    const range = parseRange(address);
    if (!range) throw new StandaloneError(`${where}: "${address}" is not an IP address or CIDR range (10.1.0.0/16, 2001:db8::/32)`);
    return { ...range, policy, name: c.name === undefined ? null : str(c.name, `${where}.name`) };
  });
}

function parseUsers(raw: unknown, ids: string[]): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isObj(raw)) throw new StandaloneError('users must map proxy user names to policy ids');
  for (const [user, policy] of Object.entries(raw)) {
    if (typeof policy !== 'string' || !ids.includes(policy)) throw new StandaloneError(`users.${user}: there is no policy "${String(policy)}"`);
  }
  return raw as Record<string, string>;
}

// ----- addresses --------------------------------------------------------------------------------

export interface ClientRule {
  /** 4 or 6 */
  family: 4 | 6;
  /** the network as 32-bit (IPv4) or 128-bit (IPv6) number */
  network: bigint | number;
  prefix: number;
  policy: string;
  name: string | null;
}

/** Dotted IPv4 to an unsigned 32-bit number without allocating, or -1. */
export function ipv4ToNumber(s: string, from = 0): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** An IPv6 address (RFC 4291 text forms, optionally with a zone) as a bigint, or null. */
export function ipv6ToBigInt(raw: string): bigint | null {
  let s = raw;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (!s.includes(':')) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (text: string): number[] | null => {
    if (text === '') return [];
    const out: number[] = [];
    const parts = text.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = ipv4ToNumber(p);
        if (v4 < 0) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  let value = 0n;
  for (const g of [...head, ...new Array<number>(missing).fill(0), ...tail]) value = (value << 16n) | BigInt(g);
  return value;
}

function parseRange(text: string): Omit<ClientRule, 'policy' | 'name'> | null {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? null : text.slice(slash + 1);
  if (prefixText !== null && !/^\d{1,3}$/.test(prefixText)) return null;
  const v4 = ipv4ToNumber(addr);
  if (v4 >= 0) {
    const prefix = prefixText === null ? 32 : Number(prefixText);
    if (prefix > 32) return null;
    return { family: 4, network: prefix === 0 ? 0 : (v4 - (v4 % 2 ** (32 - prefix))), prefix };
  }
  const v6 = ipv6ToBigInt(addr);
  if (v6 === null) return null;
  const prefix = prefixText === null ? 128 : Number(prefixText);
  if (prefix > 128) return null;
  const hostBits = BigInt(128 - prefix);
  return { family: 6, network: (v6 >> hostBits) << hostBits, prefix };
}

const MAPPED = '::ffff:';

/**
 * Identification from the policy file: the most specific client range holding the address, a proxy
 * user name before that, unknown clients last. IPv4 lookups allocate nothing; IPv6 answers are
 * remembered per address (bounded).
 */
export class StandaloneFilterPoint implements FilterPoint {
  private current: FilterSnapshot;
  private unknown: ClientIdentity;
  private v4: Array<{ network: number; size: number; identity: ClientIdentity }> = [];
  private v6: Array<{ network: bigint; shift: bigint; identity: ClientIdentity }> = [];
  private v6Seen = new Map<string, ClientIdentity>();
  private users = new Map<string, ClientIdentity>();
  private identities: ClientIdentity[] = [];
  private sink: ((activity: ActivityRecord) => void) | null = null;

  constructor(snapshot: FilterSnapshot, options: { unknownPolicy: string; clients?: ClientRule[]; users?: Record<string, string> }) {
    this.current = snapshot;
    this.unknown = this.identity(options.unknownPolicy, 'unknown', null, null);
    const rules = [...(options.clients ?? [])].sort((a, b) => b.prefix - a.prefix);
    for (const r of rules) {
      const identity = this.identity(r.policy, 'device', r.name, null);
      if (r.family === 4) this.v4.push({ network: r.network as number, size: 2 ** (32 - r.prefix), identity });
      else this.v6.push({ network: r.network as bigint, shift: BigInt(128 - r.prefix), identity });
    }
    for (const [user, policy] of Object.entries(options.users ?? {})) this.users.set(user.toLowerCase(), this.identity(policy, 'proxy-auth', null, user));
  }

  private identity(policyId: string, via: ClientIdentity['via'], deviceName: string | null, username: string | null): ClientIdentity {
    const identity: ClientIdentity = { policyId, policyIndex: this.current.policy(policyId), deviceId: null, deviceName, personId: null, username, via };
    this.identities.push(identity);
    return identity;
  }

  snapshot(): FilterSnapshot {
    return this.current;
  }

  /** Swaps in a new snapshot compiled from the same policies (lists refreshed). */
  replace(next: FilterSnapshot): void {
    for (const identity of this.identities) identity.policyIndex = next.policy(identity.policyId);
    this.current = next;
  }

  /**
   * Takes everything from a point loaded afresh from the files (`gatehouse dns` on SIGHUP): its
   * lists, policies, clients, users and unknown policy, whole, between two requests. Where decisions
   * are recorded stays as it is.
   */
  adopt(next: StandaloneFilterPoint): void {
    this.current = next.current;
    this.unknown = next.unknown;
    this.v4 = next.v4;
    this.v6 = next.v6;
    this.v6Seen = new Map();
    this.users = next.users;
    this.identities = next.identities;
  }

  /** Where recorded decisions go (none by default). */
  onRecord(sink: ((activity: ActivityRecord) => void) | null): void {
    this.sink = sink;
  }

  identify(ip: string, proxyUser?: string | null): ClientIdentity {
    if (proxyUser && this.users.size > 0) {
      const byUser = this.users.get(proxyUser) ?? this.users.get(proxyUser.toLowerCase());
      if (byUser) return byUser;
    }
    let v4 = ipv4ToNumber(ip);
    if (v4 < 0 && ip.length > MAPPED.length && ip.charCodeAt(0) === 58 && ip.toLowerCase().startsWith(MAPPED)) v4 = ipv4ToNumber(ip, MAPPED.length);
    if (v4 >= 0) {
      for (const r of this.v4) if (v4 >= r.network && v4 < r.network + r.size) return r.identity;
      return this.unknown;
    }
    if (this.v6.length === 0) return this.unknown;
    const seen = this.v6Seen.get(ip);
    if (seen) return seen;
    const value = ipv6ToBigInt(ip);
    let found = this.unknown;
    if (value !== null) {
      for (const r of this.v6) {
        if (value >> r.shift === r.network >> r.shift) {
          found = r.identity;
          break;
        }
      }
    }
    if (this.v6Seen.size >= 10_000) this.v6Seen.clear();
    this.v6Seen.set(ip, found);
    return found;
  }

  record(activity: ActivityRecord): void {
    this.sink?.(activity);
  }
}

/**
 * Decisions as JSON lines appended to a file, in batches (once a second and at exit), off the path
 * that answers. For running without the server; with the server, the activity log takes them.
 */
export class JsonlActivityWriter {
  private buffer: string[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private readonly onError: (error: Error) => void = () => {},
  ) {
    this.timer = setInterval(() => this.flush(), 1000);
    this.timer.unref();
  }

  add(activity: ActivityRecord): void {
    this.buffer.push(JSON.stringify({ ...activity, at: new Date(activity.at).toISOString() }));
    if (this.buffer.length >= 1000) this.flush();
  }

  flush(): void {
    if (this.buffer.length === 0) return;
    const text = `${this.buffer.join('\n')}\n`;
    this.buffer = [];
    try {
      appendFileSync(this.file, text);
    } catch (error) {
      this.onError(error as Error);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

// ----- what `gatehouse proxy` and `gatehouse squid-helper` share ----------------------------------

/** The files both read, as their command-line options name them. */
export interface StandaloneFileOptions {
  ut1?: string | undefined;
  policy?: string | undefined;
  unknownPolicy?: string | undefined;
  activity?: string | undefined;
  check?: boolean | undefined;
}

/** The `parseArgs` options for StandaloneFileOptions (and --help). */
export const STANDALONE_ARGS = {
  ut1: { type: 'string' },
  policy: { type: 'string' },
  'unknown-policy': { type: 'string' },
  activity: { type: 'string' },
  check: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Reads the files the options name; warnings go to `say`. */
export function loadStandaloneFiles(options: StandaloneFileOptions, say: (message: string) => void): Promise<Standalone> {
  return loadStandalone({ ut1: options.ut1 ?? null, policyFile: options.policy ?? null, unknownPolicy: options.unknownPolicy ?? null, warn: (m) => say(`warning: ${m}`) });
}

/** What was loaded, in one line (start-up, --check, reloads). */
export function describeStandalone(s: Standalone): string {
  return `${s.policies.length} polic${s.policies.length === 1 ? 'y' : 'ies'} (${s.policies.join(', ')}; unknown clients: ${s.unknownPolicy}), ${s.categories} categories and lists, ${s.domains.toLocaleString('en-GB')} names, loaded in ${Math.round(s.loadMs)} ms`;
}

/** With --activity FILE, the point's decisions are appended to FILE; the writer to close at exit, or null. */
export function recordActivityTo(point: StandaloneFilterPoint, file: string | undefined, say: (message: string) => void): JsonlActivityWriter | null {
  if (!file) return null;
  const writer = new JsonlActivityWriter(file, (e) => say(`cannot write activity to ${file}: ${e.message}`));
  point.onRecord((a) => writer.add(a));
  return writer;
}

/**
 * SIGHUP reloads the files into `point` when they keep the same policies (the identities already
 * handed out stay valid); otherwise the reload is refused with `restart` as the way out. Returns
 * the function that stops listening.
 */
export function reloadOnSighup(load: () => Promise<Standalone>, point: StandaloneFilterPoint, say: (message: string) => void, restart: string): () => void {
  let reloading = false;
  const onHup = () => {
    if (reloading) return;
    reloading = true;
    load()
      .then(
        (next) => {
          try {
            point.replace(next.snapshot);
            say(`reloaded: ${describeStandalone(next)}`);
          } catch (error) {
            say(`reload refused (the policies changed: ${restart}): ${(error as Error).message}`);
          }
        },
        (error) => say(`reload failed, keeping what was loaded: ${(error as Error).message}`),
      )
      .finally(() => (reloading = false));
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}

/** Whether the module at `moduleUrl` (its import.meta.url) is the script node was started with. */
export function isEntryModule(moduleUrl: string): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(moduleUrl);
  } catch {
    return false;
  }
}
