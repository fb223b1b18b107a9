import { domainToASCII } from 'node:url';
import { RE2JS } from 're2js';
import { DomainTable, FNV_OFFSET, H2_SEED, hashRange, step1, step2 } from './domain-table.js';
import { normaliseHost } from './lists.js';

/**
 * The filter's decision engine: lists and per-group policies compiled into one in-memory snapshot
 * that `decide()` reads without locks, I/O or allocation (FI-01..05, FI-09, FI-10). A new snapshot
 * is compiled aside and swapped in whole; readers holding the old one finish with it.
 *
 * Precedence, highest first: illegal-content lists (blocked for everyone, never unblockable) and the
 * built-in fallback names (the DoH canary, iCloud Private Relay) > the school's block lists > the
 * school's allow lists > blocked categories (always, or by schedule) > the policy's default.
 */

export type CategoryKind = 'category' | 'illegal' | 'allow' | 'block';

export interface CategoryInput {
  id: string;
  name: string;
  description: string;
  kind: CategoryKind;
  domains: Iterable<string>;
  /** host + path prefixes, e.g. "example.com/games/" */
  urls?: Iterable<string>;
  /** linear-time patterns (RE2 syntax) matched against "host/path" */
  expressions?: string[];
}

export interface ScheduleInput {
  /** categories blocked while the window is open */
  categories: string[];
  /** 1 = Monday … 7 = Sunday */
  days: number[];
  from: string;
  to: string;
  label?: string;
}

export type SafeSearchMode = 'off' | 'on';
export type YoutubeMode = 'off' | 'moderate' | 'strict';

export interface PolicyInput {
  id: string;
  name: string;
  blockedCategories: string[];
  schedules: ScheduleInput[];
  /** lists of kind "allow" / "block" this policy uses (the school's own, or the group's) */
  allowLists: string[];
  blockLists: string[];
  safeSearch: { search: SafeSearchMode; youtube: YoutubeMode };
  defaultAction: 'allow' | 'block';
  /** AS-08: may download executables and installers */
  downloadsAllowed: boolean;
}

export interface SnapshotInput {
  categories: CategoryInput[];
  policies: PolicyInput[];
  timeZone: string;
}

export type Action = 'allow' | 'block' | 'rewrite';

export interface Verdict {
  action: Action;
  /** what decided, for people: "Blocked: Games (school hours) for Pupils" */
  reason: string;
  /** the category (or list) that decided, or null for the default / safe search */
  category: string | null;
  categoryName: string | null;
  /** illegal | fallback | school-block | school-allow | category | schedule | safe-search | default */
  rule: string;
  policy: string;
  /** rewrite: the name to answer with (safe search) */
  target: string | null;
  /** may a person ask for this to be unblocked? (never for illegal content or fallback names) */
  unblockable: boolean;
}

// Ranks: higher wins.
const R_NONE = 0;
const R_CATEGORY = 1;
const R_ALLOW = 2;
const R_BLOCK = 3;
const R_ALWAYS = 4;

/** Names every device must fail to resolve, so it falls back to the school's resolver (FI-10). */
export const FALLBACK_NAMES = ['use-application-dns.net', 'mask.icloud.com', 'mask-h2.icloud.com'];

/** SafeSearch the standard way: the search engines' own names answered for their hosts (FI-09). */
const GOOGLE_TLDS = ['com', 'co.uk', 'ie', 'fr', 'de', 'es', 'it', 'nl', 'be', 'pt', 'pl', 'se', 'no', 'dk', 'fi', 'at', 'ch', 'ca', 'com.au', 'co.nz', 'co.in', 'co.za', 'com.br', 'com.mx', 'ru', 'co.jp', 'com.tr', 'gr', 'cz', 'hu', 'ro', 'sk', 'com.ar', 'cl', 'com.sg', 'com.hk', 'co.kr', 'com.pk', 'lu', 'is'];
export function safeSearchHosts(): Array<{ host: string; engine: 'search' | 'youtube'; target: string | { moderate: string; strict: string } }> {
  const out: Array<{ host: string; engine: 'search' | 'youtube'; target: string | { moderate: string; strict: string } }> = [];
  for (const tld of GOOGLE_TLDS) for (const prefix of ['', 'www.']) out.push({ host: `${prefix}google.${tld}`, engine: 'search', target: 'forcesafesearch.google.com' });
  for (const host of ['bing.com', 'www.bing.com']) out.push({ host, engine: 'search', target: 'strict.bing.com' });
  for (const host of ['duckduckgo.com', 'www.duckduckgo.com', 'start.duckduckgo.com', 'html.duckduckgo.com', 'lite.duckduckgo.com']) out.push({ host, engine: 'search', target: 'safe.duckduckgo.com' });
  for (const host of ['www.youtube.com', 'm.youtube.com', 'youtube.com', 'youtubei.googleapis.com', 'youtube.googleapis.com', 'www.youtube-nocookie.com']) {
    out.push({ host, engine: 'youtube', target: { moderate: 'restrictmoderate.youtube.com', strict: 'restrict.youtube.com' } });
  }
  return out;
}

interface CompiledCategory {
  id: string;
  name: string;
  description: string;
  kind: CategoryKind | 'fallback';
  domains: number;
  urls: number;
}

interface CompiledPolicy {
  input: PolicyInput;
  /** rank of each category id for this policy, without schedules */
  baseRank: Uint8Array;
  /** rank now (schedules applied), refreshed each minute */
  rank: Uint8Array;
  /** which schedule made a category blocked now (for the reason), or -1 */
  /** the policy's schedules with their categories as indexes and one verdict each, built at compile time */
  schedules: Array<{ days: number[]; from: string; to: string; categories: number[]; verdicts: Verdict[] }>;
  /** each category's verdict when no schedule is open */
  categoryVerdicts: Verdict[];
  /** interned verdicts: per category, per rank */
  verdicts: Verdict[][];
  allowDefault: Verdict;
  blockDefault: Verdict;
  safeVerdicts: Verdict[];
  downloadsAllowed: boolean;
}

export interface Explanation {
  verdict: Verdict;
  host: string;
  /** the listed name that matched (the host or a parent domain), or null */
  matched: string | null;
  /** every list the host (or a parent) is on, with whether it counted for this policy */
  matches: Array<{ name: string; category: string; categoryName: string; kind: string; effect: string }>;
}

export class FilterSnapshot {
  readonly categories: CompiledCategory[];
  private readonly table: DomainTable;
  /** tag-set index (table value - 1) -> category ids */
  private readonly tagSets: Uint16Array[];
  private readonly urlTable: DomainTable;
  private readonly urlPrefixes: Array<Array<{ prefix: string; category: number }>>;
  private readonly expressions: Array<{ category: number; pattern: RE2JS }>;
  private readonly safeTable: DomainTable;
  private readonly safeTargets: Array<{ engine: 'search' | 'youtube'; target: string | { moderate: string; strict: string } }>;
  private readonly policies: CompiledPolicy[];
  private readonly policyIndex = new Map<string, number>();
  private readonly timeZone: string;
  /** local weekday and time in the school's zone, made once (refresh runs each minute) */
  private readonly localTime: Intl.DateTimeFormat;
  private minuteEnd = 0;
  readonly compiledAt: number;
  readonly stats: { domains: number; urls: number; tableBytes: number; compileMs: number };

  constructor(input: SnapshotInput) {
    const started = performance.now();
    this.timeZone = input.timeZone;
    this.localTime = new Intl.DateTimeFormat('en-GB', { timeZone: input.timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    const categories: CompiledCategory[] = [];
    const catIndex = new Map<string, number>();
    const addCategory = (c: Omit<CompiledCategory, 'domains' | 'urls'>) => {
      if (catIndex.has(c.id)) throw new Error(`category ${c.id} is given twice`);
      catIndex.set(c.id, categories.length);
      categories.push({ ...c, domains: 0, urls: 0 });
      return categories.length - 1;
    };
    const fallback = addCategory({ id: 'fallback', name: 'Resolver fallback', description: 'Names that make devices use the school’s resolver: the Firefox DNS-over-HTTPS canary and iCloud Private Relay.', kind: 'fallback' });
    for (const c of input.categories) addCategory({ id: c.id, name: c.name, description: c.description, kind: c.kind });
    if (categories.length > 65_000) throw new Error('too many categories');

    // Tag sets: one per distinct set of categories a name is on (most names are on one).
    const tagSets: Uint16Array[] = [];
    const tagIndex = new Map<string, number>();
    const single: number[] = [];
    const tagOf = (ids: number[]): number => {
      if (ids.length === 1 && single[ids[0]!] !== undefined) return single[ids[0]!]!;
      const key = ids.join(',');
      let index = tagIndex.get(key);
      if (index === undefined) {
        index = tagSets.length + 1;
        tagSets.push(Uint16Array.from(ids));
        tagIndex.set(key, index);
        if (ids.length === 1) single[ids[0]!] = index;
      }
      return index;
    };
    const merge = (old: number, incoming: number): number => {
      if (old === incoming) return old;
      const ids = new Set<number>([...tagSets[old - 1]!, ...tagSets[incoming - 1]!]);
      return tagOf([...ids].sort((a, b) => a - b));
    };

    let expected = 1024;
    const materialised = input.categories.map((c) => (Array.isArray(c.domains) ? (c.domains as string[]) : [...c.domains]));
    for (const d of materialised) expected += d.length;
    const table = new DomainTable(expected);
    const insert = (host: string, category: number) => {
      const [h1, h2] = hashRange(host, 0, host.length);
      table.set(h1, h2, tagOf([category]), merge);
    };
    for (const name of FALLBACK_NAMES) insert(name, fallback);
    categories[fallback]!.domains = FALLBACK_NAMES.length;
    input.categories.forEach((c, i) => {
      const id = catIndex.get(c.id)!;
      let n = 0;
      for (const raw of materialised[i]!) {
        // Lists arrive normalised from the list loader; names given directly are normalised here.
        const host = isNormal(raw) ? raw : normaliseHost(raw);
        if (!host) continue;
        insert(host, id);
        n++;
      }
      categories[id]!.domains = n;
    });

    // URL prefixes: keyed by host, checked only when a path is known (proxy, Squid).
    const urlTable = new DomainTable(1024);
    const urlPrefixes: Array<Array<{ prefix: string; category: number }>> = [];
    input.categories.forEach((c) => {
      if (!c.urls) return;
      const id = catIndex.get(c.id)!;
      let n = 0;
      for (const url of c.urls) {
        const slash = url.indexOf('/');
        const host = normaliseHost(slash === -1 ? url : url.slice(0, slash));
        if (!host) continue;
        const prefix = slash === -1 ? '/' : url.slice(slash).toLowerCase();
        const [h1, h2] = hashRange(host, 0, host.length);
        let slot = urlTable.get(h1, h2);
        if (slot === 0) {
          urlPrefixes.push([]);
          slot = urlPrefixes.length;
          urlTable.set(h1, h2, slot, (a) => a);
        }
        urlPrefixes[slot - 1]!.push({ prefix, category: id });
        n++;
      }
      categories[id]!.urls = n;
    });
    const expressions: Array<{ category: number; pattern: RE2JS }> = [];
    for (const c of input.categories) {
      for (const [i, e] of (c.expressions ?? []).entries()) {
        try {
          expressions.push({ category: catIndex.get(c.id)!, pattern: RE2JS.compile(e, RE2JS.CASE_INSENSITIVE) });
        } catch {
          // By its number only: a list's text is never quoted back into logs or the console (issue 10, finding 1).
          throw new Error(`category ${c.id}: expression ${i + 1} is not valid RE2`);
        }
      }
    }

    const safeTable = new DomainTable(256);
    const safeTargets = safeSearchHosts().map(({ host, engine, target }, i) => {
      const [h1, h2] = hashRange(host, 0, host.length);
      safeTable.set(h1, h2, i + 1, (a) => a);
      return { engine, target };
    });

    this.categories = categories;
    this.table = table;
    this.tagSets = tagSets;
    this.urlTable = urlTable;
    this.urlPrefixes = urlPrefixes;
    this.expressions = expressions;
    this.safeTable = safeTable;
    this.safeTargets = safeTargets;

    this.policies = input.policies.map((p, pi) => {
      this.policyIndex.set(p.id, pi);
      const baseRank = new Uint8Array(categories.length);
      const known = (id: string, what: string) => {
        const i = catIndex.get(id);
        if (i === undefined) throw new Error(`policy ${p.name}: ${what} "${id}" is not a known category or list`);
        return i;
      };
      categories.forEach((c, i) => {
        if (c.kind === 'illegal' || c.kind === 'fallback') baseRank[i] = R_ALWAYS;
      });
      for (const id of p.blockedCategories) {
        const i = known(id, 'blocked category');
        if (baseRank[i] === R_NONE) baseRank[i] = R_CATEGORY;
      }
      for (const id of p.allowLists) {
        const i = known(id, 'allow list');
        if (baseRank[i]! < R_ALWAYS) baseRank[i] = R_ALLOW;
      }
      for (const id of p.blockLists) {
        const i = known(id, 'block list');
        if (baseRank[i]! < R_ALWAYS) baseRank[i] = R_BLOCK;
      }
      for (const s of p.schedules) for (const id of s.categories) known(id, 'scheduled category');
      const verdicts = categories.map((c, ci) => {
        const at: Verdict[] = [];
        at[R_CATEGORY] = verdict('block', `Blocked: ${c.name} for ${p.name}`, c, 'category', p);
        at[R_ALLOW] = verdict('allow', `Allowed: on the school’s allow list “${c.name}”`, c, 'school-allow', p);
        at[R_BLOCK] = verdict('block', `Blocked: on the school’s block list “${c.name}”`, c, 'school-block', p);
        at[R_ALWAYS] =
          c.kind === 'fallback'
            ? verdict('block', 'Answered “no such name” so the device keeps using the school’s resolver', c, 'fallback', p, false)
            : verdict('block', `Blocked for everyone: ${c.name} (illegal content; cannot be unblocked)`, c, 'illegal', p, false);
        void ci;
        return at;
      });
      const safeVerdicts = safeTargets.map((t) => {
        const target = typeof t.target === 'string' ? t.target : p.safeSearch.youtube === 'moderate' ? t.target.moderate : t.target.strict;
        return { action: 'rewrite' as const, reason: t.engine === 'youtube' ? `YouTube Restricted Mode (${p.safeSearch.youtube}) for ${p.name}` : `SafeSearch enforced for ${p.name}`, category: null, categoryName: null, rule: 'safe-search', policy: p.name, target, unblockable: false };
      });
      return {
        input: p,
        baseRank,
        rank: baseRank.slice(),
        schedules: p.schedules.map((sch) => {
          const label = sch.label ?? `${sch.from}–${sch.to}`;
          const indexes = sch.categories.map((id) => catIndex.get(id)!);
          return {
            days: sch.days,
            from: sch.from,
            to: sch.to,
            categories: indexes,
            verdicts: indexes.map((i) => ({ ...verdicts[i]![R_CATEGORY]!, rule: 'schedule', reason: `Blocked: ${categories[i]!.name} for ${p.name} (${label})` })),
          };
        }),
        categoryVerdicts: verdicts.map((v) => v[R_CATEGORY]!),
        verdicts,
        allowDefault: { action: 'allow' as const, reason: `Allowed: not on any list ${p.name} blocks`, category: null, categoryName: null, rule: 'default', policy: p.name, target: null, unblockable: false },
        blockDefault: { action: 'block' as const, reason: `Blocked: ${p.name} allows only listed sites`, category: null, categoryName: null, rule: 'default', policy: p.name, target: null, unblockable: true },
        safeVerdicts,
        downloadsAllowed: p.downloadsAllowed,
      };
    });
    this.compiledAt = Date.now();
    this.stats = { domains: table.size, urls: urlPrefixes.reduce((n, l) => n + l.length, 0), tableBytes: table.bytes + urlTable.bytes, compileMs: performance.now() - started };
  }

  policy(id: string): number {
    const i = this.policyIndex.get(id);
    if (i === undefined) throw new Error(`no policy ${id}`);
    return i;
  }

  hasPolicy(id: string): boolean {
    return this.policyIndex.has(id);
  }

  downloadsAllowed(policy: number): boolean {
    return this.policies[policy]!.downloadsAllowed;
  }

  /** Applies time schedules for the minute `now` falls in (once a minute; allocation only then). */
  private refresh(now: number): void {
    const minute = Math.floor(now / 60_000) * 60_000;
    this.minuteEnd = minute + 60_000;
    const parts = this.localTime.formatToParts(new Date(minute));
    const day = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(parts.find((p) => p.type === 'weekday')!.value) + 1;
    const hhmm = `${parts.find((p) => p.type === 'hour')!.value}:${parts.find((p) => p.type === 'minute')!.value}`;
    for (const p of this.policies) {
      p.rank.set(p.baseRank);
      p.categoryVerdicts.forEach((v, i) => (p.verdicts[i]![R_CATEGORY] = v));
      // The first open schedule that blocks a category names it in the reason.
      for (const s of p.schedules) {
        if (!s.days.includes(day) || hhmm < s.from || hhmm >= s.to) continue;
        s.categories.forEach((i, k) => {
          if (p.rank[i] !== R_NONE) return;
          p.rank[i] = R_CATEGORY;
          p.verdicts[i]![R_CATEGORY] = s.verdicts[k]!;
        });
      }
    }
  }

  /**
   * The hot path: host (as sent: any case, trailing dot, IDN) for a policy at a time. Returns an
   * interned verdict; allocates nothing for ASCII names.
   */
  decide(host: string, policy: number, now: number): Verdict {
    // A time outside the minute last applied (later, or earlier: "test a URL" at another time) re-applies schedules.
    if (now >= this.minuteEnd || now < this.minuteEnd - 60_000) this.refresh(now);
    const p = this.policies[policy]!;
    const end = nameEnd(host);
    let best = R_NONE;
    let bestCategory = -1;
    let h1 = FNV_OFFSET;
    let h2 = H2_SEED;
    const rank = p.rank;
    // An IP literal ([v6] or dotted v4, ending in a digit) matches whole; a name matches itself and
    // every parent domain: each suffix is probed as the backward pass reaches the dot before it.
    const literal = isIpLiteral(host, end);
    let packed = 0;
    for (let i = end - 1; i >= 0; i--) {
      let c = host.charCodeAt(i);
      if (c === 46) {
        if (!literal) {
          packed = this.probe(h1, h2, rank, packed);
          if (packed >>> 16 === R_ALWAYS) return p.verdicts[packed & 0xffff]![R_ALWAYS]!;
        }
      } else if (c > 127) return this.decide(asciiName(host, end), policy, now);
      else if (c >= 65 && c <= 90) c |= 32;
      h1 = Math.imul(h1 ^ c, 0x01000193);
      const x = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 = x ^ (x >>> 15);
    }
    if (end > 0) packed = this.probe(h1, h2, rank, packed);
    best = packed >>> 16;
    bestCategory = packed & 0xffff;
    if (best === R_ALWAYS) return p.verdicts[bestCategory]![R_ALWAYS]!;
    if (best !== R_NONE) {
      if (best === R_ALLOW) return this.safeSearch(p, h1, h2) ?? p.verdicts[bestCategory]![R_ALLOW]!;
      return p.verdicts[bestCategory]![best]!;
    }
    const safe = this.safeSearch(p, h1, h2);
    if (safe) return safe;
    return p.input.defaultAction === 'allow' ? p.allowDefault : p.blockDefault;
  }

  /** One suffix: the best (rank << 16 | category) so far, raised by this suffix's categories. */
  private probe(h1: number, h2: number, rank: Uint8Array, packed: number): number {
    const v = this.table.get(h1, h2);
    if (v === 0) return packed;
    const set = this.tagSets[v - 1]!;
    let best = packed >>> 16;
    for (let k = 0; k < set.length; k++) {
      const r = rank[set[k]!]!;
      if (r > best) {
        best = r;
        packed = (r << 16) | set[k]!;
      }
    }
    return packed;
  }

  private safeSearch(p: CompiledPolicy, h1: number, h2: number): Verdict | null {
    if (p.input.safeSearch.search === 'off' && p.input.safeSearch.youtube === 'off') return null;
    const s = this.safeTable.get(h1, h2);
    if (s === 0) return null;
    const engine = this.safeTargets[s - 1]!.engine;
    if (engine === 'search' ? p.input.safeSearch.search === 'off' : p.input.safeSearch.youtube === 'off') return null;
    return p.safeVerdicts[s - 1]!;
  }

  /**
   * A web request (proxy, Squid): the host decides first; a host that is allowed only by default is
   * then checked against URL prefix lists and patterns, on the name as `decide` reads it
   * (`tableName`: one trailing dot dropped, IDN as punycode, lower case; an IP literal whole).
   */
  decideUrl(host: string, path: string, policy: number, now: number): Verdict {
    const byHost = this.decide(host, policy, now);
    if (byHost.action === 'block' || byHost.rule !== 'default' || (this.urlPrefixes.length === 0 && this.expressions.length === 0)) return byHost;
    const p = this.policies[policy]!;
    const name = tableName(host);
    if (this.urlPrefixes.length > 0) {
      const byPrefix = this.urlPrefix(name, path.toLowerCase(), p);
      if (byPrefix !== null) return byPrefix;
    }
    if (this.expressions.length > 0) {
      const url = `${name}${path}`;
      for (const e of this.expressions) {
        const r = p.rank[e.category]!;
        if (r >= R_CATEGORY && r !== R_ALLOW && e.pattern.test(url)) return p.verdicts[e.category]![r]!;
      }
    }
    return byHost;
  }

  /**
   * The first URL prefix entry that blocks `lowerPath` under `name` (a `tableName`) or, unless it is
   * an IP literal, a parent domain of it, parents first (as `decide` reaches them); null when none.
   */
  private urlPrefix(name: string, lowerPath: string, p: CompiledPolicy): Verdict | null {
    const literal = isIpLiteral(name, name.length);
    let h1 = FNV_OFFSET;
    let h2 = H2_SEED;
    for (let i = name.length - 1; i >= 0; i--) {
      const c = name.charCodeAt(i);
      h1 = step1(h1, c);
      h2 = step2(h2, c);
      if (i === 0 || (!literal && name.charCodeAt(i - 1) === 46)) {
        const slot = this.urlTable.get(h1, h2);
        if (slot === 0) continue;
        for (const entry of this.urlPrefixes[slot - 1]!) {
          const r = p.rank[entry.category]!;
          if (r >= R_CATEGORY && r !== R_ALLOW && lowerPath.startsWith(entry.prefix)) return p.verdicts[entry.category]![r]!;
        }
      }
    }
    return null;
  }

  /** The slow path for people: the verdict and every list the host is on ("test a URL", block page). */
  explain(rawHost: string, policy: number, now: number, path?: string): Explanation {
    const verdict = path === undefined ? this.decide(rawHost, policy, now) : this.decideUrl(rawHost, path, policy, now);
    const host = normaliseHost(rawHost) ?? rawHost.toLowerCase();
    const p = this.policies[policy]!;
    const matches: Explanation['matches'] = [];
    let matched: string | null = null;
    const names: string[] = [];
    if (host.includes(':') || /\d$/.test(host)) names.push(host);
    else {
      const labels = host.split('.');
      for (let i = 0; i < labels.length; i++) names.push(labels.slice(i).join('.'));
    }
    for (const name of names) {
      const [h1, h2] = hashRange(name, 0, name.length);
      const v = this.table.get(h1, h2);
      if (v === 0) continue;
      for (const ci of this.tagSets[v - 1]!) {
        const c = this.categories[ci]!;
        const r = p.rank[ci]!;
        const effect = r === R_ALWAYS ? 'always blocked' : r === R_BLOCK ? 'blocked (school list)' : r === R_ALLOW ? 'allowed (school list)' : r === R_CATEGORY ? 'blocked for this policy' : 'not blocked for this policy';
        matches.push({ name, category: c.id, categoryName: c.name, kind: c.kind, effect });
        if (verdict.category === c.id && matched === null) matched = name;
      }
    }
    return { verdict, host, matched, matches };
  }
}

function verdict(action: Action, reason: string, c: { id: string; name: string }, rule: string, p: PolicyInput, unblockable = true): Verdict {
  return { action, reason, category: c.id, categoryName: c.name, rule, policy: p.name, target: null, unblockable: action === 'block' ? unblockable : false };
}

/**
 * How `decide` reads a host, in one place (its hot loop folds case and hashes as it goes):
 * - `nameEnd`: one trailing dot (a fully qualified name) is not part of the name;
 * - `isIpLiteral`: a dotted IPv4 address (ends in a digit) or a bracketed IPv6 one matches whole,
 *   never by "parent domain";
 * - `asciiName`: a name with non-ASCII characters (IDN) is matched in its punycode form, as lists
 *   hold it; one that is not a valid IDN matches nothing listed ("invalid");
 * - `tableName`: all of it, with ASCII lower case, as a string (decideUrl, for URL lists and patterns).
 */
function nameEnd(host: string): number {
  const end = host.length;
  return end > 0 && host.charCodeAt(end - 1) === 46 ? end - 1 : end;
}

function isIpLiteral(host: string, end: number): boolean {
  const last = end > 0 ? host.charCodeAt(end - 1) : 0;
  return (last >= 48 && last <= 57) || host.charCodeAt(0) === 91;
}

function asciiName(host: string, end: number): string {
  return domainToASCII(host.slice(0, end)) || 'invalid.';
}

function tableName(host: string): string {
  let end = nameEnd(host);
  let name = host;
  for (let i = 0; i < end; i++) {
    if (name.charCodeAt(i) > 127) {
      name = asciiName(host, end);
      end = nameEnd(name);
      break;
    }
  }
  return (end === name.length ? name : name.slice(0, end)).toLowerCase();
}

function isNormal(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 95)) return false;
  }
  return s.length > 0 && s.charCodeAt(s.length - 1) !== 46;
}

export function compileSnapshot(input: SnapshotInput): FilterSnapshot {
  return new FilterSnapshot(input);
}
