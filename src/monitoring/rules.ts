import type { ActivityRecord } from '../filtering/point.js';
import type { Profile } from '../core/profile.js';

/**
 * The alert rules (FI-11, MO-02, MO-03) over the activity stream: pure functions and a small
 * in-memory window, run on each written batch of activity (never on the DNS or proxy hot path).
 * What an alert carries is the minimum: who, device, what (host or search term), when, why.
 */

export type Severity = 'high' | 'medium' | 'low';
export type AlertKind = 'safeguarding' | 'security';
export type AlertRule = 'concern' | 'repeated' | 'circumvention' | 'search_term' | 'port_scan' | 'privileged_sign_in' | 'lockout' | 'backup_missed' | 'backup_failed';

export interface Candidate {
  kind: AlertKind;
  rule: AlertRule;
  severity: Severity;
  /** identical alerts (same rule, who and what) while one is open add to its count */
  dedupeKey: string;
  at: string;
  personId: string | null;
  username: string | null;
  device: string | null;
  clientIp: string | null;
  what: string;
  why: string;
}

const LEET: Record<string, string> = { '0': 'o', '1': 'i', '!': 'i', '|': 'i', '3': 'e', '4': 'a', '@': 'a', '5': 's', $: 's', '7': 't', '+': 't', '8': 'b', '9': 'g' };

/** Lower case, accents off (ó → o, ß → ss), leetspeak read as letters, runs of a letter folded, punctuation as spaces. */
export function normaliseText(text: string): string {
  const lower = text.toLowerCase().replace(/ß/g, 'ss').replace(/ł/g, 'l').normalize('NFKD').replace(/\p{M}/gu, '');
  // "!" and "|" at a word's ends are punctuation ("help!!"), inside it letters ("k!ll")
  let out = '';
  for (const token of lower.split(/\s+/)) {
    const word = token.replace(/^[!|.,?]+|[!|.,?]+$/g, '');
    for (const ch of word) out += LEET[ch] ?? ch;
    out += ' ';
  }
  return out
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .replace(/(\p{L})\1{2,}/gu, '$1$1')
    .trim();
}

/** Damerau-Levenshtein distance, stopping early above `max`. */
export function editDistance(a: string, b: string, max = 1): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    let rowMin = Infinity;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > max) return max + 1;
  }
  return d[a.length]![b.length]!;
}

const wordMatches = (word: string, want: string) => word === want || (want.length >= 5 && word.length >= 4 && editDistance(word, want, 1) <= 1);

export interface WatchTerm {
  term: string;
  words: string[];
  severity: Severity;
  theme: string;
}

export function compileWatchList(list: Profile['alerts']['watchList']): WatchTerm[] {
  return list.map((t) => ({ term: t.term, words: normaliseText(t.term).split(' ').filter(Boolean), severity: t.severity, theme: t.theme }));
}

/** The watch-list entry a search matches (its words in order, each exactly or one letter off for 5+ letters; also written together), or null. */
export function matchWatchList(search: string, terms: WatchTerm[]): WatchTerm | null {
  const words = normaliseText(search).split(' ').filter(Boolean);
  let best: WatchTerm | null = null;
  const rank = { high: 3, medium: 2, low: 1 } as const;
  for (const t of terms) {
    if (t.words.length === 0) continue;
    let found = false;
    for (let i = 0; !found && i + t.words.length <= words.length; i++) {
      found = t.words.every((w, k) => wordMatches(words[i + k]!, w));
    }
    // "killmyself", "self harm" as "selfharm", "sui cide": whole words run together or split
    const together = t.words.join('');
    for (let i = 0; !found && i < words.length; i++) {
      let run = '';
      for (let j = i; !found && j < words.length && run.length <= together.length; j++) {
        run += words[j];
        // one word may be one letter off; words run together must be exact
        if (j > i) found = run === together;
        else if (t.words.length > 1) found = wordMatches(run, together);
      }
    }
    if (found && (!best || rank[t.severity] > rank[best.severity])) best = t;
  }
  return best;
}

/** The list category's own name: "ut1.adult" → "adult". */
export const categoryName = (category: string) => (category.includes('.') ? category.slice(category.lastIndexOf('.') + 1) : category);

/** Evaluates one batch of activity; keeps the repeated-attempt and scan windows between batches. */
export class RuleEngine {
  private terms: WatchTerm[];
  private readonly blocks = new Map<string, number[]>();
  private readonly scans = new Map<string, { since: number; hosts: Set<string> }>();

  constructor(private alerts: Profile['alerts']) {
    this.terms = compileWatchList(alerts.watchList);
  }

  evaluate(batch: readonly ActivityRecord[]): Candidate[] {
    const out: Candidate[] = [];
    const a = this.alerts;
    for (const r of batch) {
      const at = new Date(r.at).toISOString();
      const who = { personId: r.personId, username: r.username, device: r.deviceName ?? r.deviceId, clientIp: r.clientIp };
      const subject = r.personId ?? `ip:${r.clientIp}`;
      const category = r.category ? categoryName(r.category) : null;
      if (r.searchTerm) {
        const hit = matchWatchList(r.searchTerm, this.terms);
        if (hit) {
          out.push({ kind: 'safeguarding', rule: 'search_term', severity: hit.severity, dedupeKey: `search_term|${subject}|${hit.term}`, at, ...who, what: `search: ${r.searchTerm.slice(0, 200)}`, why: `the search matches “${hit.term}” on the watch list (${hit.theme})` });
        }
      }
      if (r.action !== 'block') continue;
      if (category && a.circumventionCategories.includes(category)) {
        out.push({ kind: 'safeguarding', rule: 'circumvention', severity: a.circumventionSeverity, dedupeKey: `circumvention|${subject}|${r.host}`, at, ...who, what: r.host, why: `a blocked attempt to get round the filter (${category})` });
      } else if (category && a.concernCategories[category]) {
        out.push({ kind: 'safeguarding', rule: 'concern', severity: a.concernCategories[category]!, dedupeKey: `concern|${subject}|${r.host}`, at, ...who, what: r.host, why: `blocked: ${category} is a category of concern` });
      }
      // repeated attempts by one person or device
      const times = (this.blocks.get(subject) ?? []).filter((t) => t > r.at - a.repeated.withinMinutes * 60_000);
      times.push(r.at);
      if (times.length >= a.repeated.attempts) {
        out.push({ kind: 'safeguarding', rule: 'repeated', severity: a.repeated.severity, dedupeKey: `repeated|${subject}`, at, ...who, what: `${times.length} blocked requests, the last to ${r.host}`, why: `${a.repeated.attempts} or more blocked requests within ${a.repeated.withinMinutes} minutes` });
        times.length = 0;
      }
      this.blocks.set(subject, times);
      // port scans seen by the proxy: many distinct refused hosts or ports from one address within a minute
      if (r.rule === 'port') {
        const key = r.clientIp;
        let s = this.scans.get(key);
        if (!s || s.since < r.at - 60_000) s = { since: r.at, hosts: new Set() };
        s.hosts.add(r.url ? r.url.slice(0, 300) : r.host);
        this.scans.set(key, s);
        if (s.hosts.size >= a.portScanDistinct) {
          out.push({ kind: 'security', rule: 'port_scan', severity: 'high', dedupeKey: `port_scan|${key}`, at, ...who, what: `${s.hosts.size} distinct refused destinations in a minute`, why: 'looks like a port or host scan from this address' });
          this.scans.delete(key);
        }
      }
    }
    if (this.blocks.size > 50_000) this.blocks.clear();
    if (this.scans.size > 50_000) this.scans.clear();
    return out;
  }
}
