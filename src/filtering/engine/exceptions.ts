import { normaliseHost } from './lists.js';
import type { Verdict } from './snapshot.js';

/**
 * Filter exceptions compiled for the hot path (FI-07, FI-08, FI-12, IN-06): who is quarantined, and
 * which people, devices or addresses have a site, a category or all filtering opened, until when.
 * Built aside from the active exceptions (groups already expanded to their members) and swapped in
 * whole by the service when one is made, decided, released or expires; `apply` reads it without
 * I/O and, when nothing applies, without allocation.
 *
 * Precedence: illegal content and the resolver fallback names are never opened by anything (not an
 * allowance, not filter-off, not quarantine's remediation sites) > quarantine (everything blocked
 * but the remediation sites) > filter-off > a site or category allowance > the snapshot's verdict.
 */

export type ExceptionKind = 'allow' | 'lesson' | 'filter-off' | 'quarantine';

export interface ExceptionInput {
  id: string;
  kind: ExceptionKind;
  /** everyone, or the people, devices and addresses it is for (a group expanded to its members) */
  everyone: boolean;
  personIds: string[];
  deviceIds: string[];
  addresses: string[];
  /** domain or category (allow, lesson); null for filter-off and quarantine */
  targetKind: 'domain' | 'category' | null;
  target: string | null;
  /** epoch ms; null: until released (quarantine) */
  startsAt: number;
  endsAt: number | null;
  /** for the verdict's reason: "Allowed: …" */
  label: string;
}

export interface ExceptionSubject {
  personId: string | null;
  deviceId: string | null;
}

/** Verdict rules an exception may turn into "allow": what the school chose, never what the law or the resolver needs. */
const OPENABLE = new Set(['category', 'schedule', 'default', 'school-block']);
/** What quarantine never lets through, even to a remediation site. */
const NEVER = new Set(['illegal', 'fallback', 'dns-over-tls']);

interface Entry {
  input: ExceptionInput;
  verdict: Verdict;
}

interface Holder {
  off: Entry[];
  domains: Map<string, Entry[]>;
  categories: Map<string, Entry[]>;
}

export class ExceptionOverlay {
  readonly size: number;
  /** the earliest end or start after which this overlay is out of date (epoch ms), or Infinity */
  readonly nextChange: number;
  private readonly quarantinedIps = new Map<string, Entry>();
  private readonly quarantinedDevices = new Map<string, Entry>();
  private readonly holders = new Map<string, Holder>();
  private readonly remediation = new Set<string>();
  private readonly hasAllows: boolean;

  constructor(inputs: ExceptionInput[], remediationSites: string[], now: number) {
    let next = Infinity;
    for (const site of remediationSites) {
      const host = normaliseHost(site);
      if (host) this.remediation.add(host);
    }
    let allows = 0;
    for (const e of inputs) {
      if (e.endsAt !== null && e.endsAt <= now) continue;
      if (e.endsAt !== null) next = Math.min(next, e.endsAt);
      if (e.startsAt > now) next = Math.min(next, e.startsAt);
      if (e.kind === 'quarantine') {
        const entry = { input: e, verdict: quarantineVerdict(e) };
        for (const ip of e.addresses) this.quarantinedIps.set(ip, entry);
        for (const d of e.deviceIds) this.quarantinedDevices.set(d, entry);
        continue;
      }
      if (e.kind !== 'filter-off' && (!e.target || !e.targetKind)) continue;
      allows++;
      const entry: Entry = { input: e, verdict: allowVerdict(e) };
      const keys = [...(e.everyone ? ['*'] : []), ...e.personIds.map((p) => `p:${p}`), ...e.deviceIds.map((d) => `d:${d}`), ...e.addresses.map((a) => `i:${a}`)];
      for (const key of keys) {
        let h = this.holders.get(key);
        if (!h) this.holders.set(key, (h = { off: [], domains: new Map(), categories: new Map() }));
        if (e.kind === 'filter-off') h.off.push(entry);
        else if (e.targetKind === 'domain') {
          const host = normaliseHost(e.target!) ?? e.target!;
          h.domains.set(host, [...(h.domains.get(host) ?? []), entry]);
        } else h.categories.set(e.target!, [...(h.categories.get(e.target!) ?? []), entry]);
      }
    }
    this.hasAllows = allows > 0;
    this.size = inputs.length;
    this.nextChange = next;
  }

  static empty(): ExceptionOverlay {
    return new ExceptionOverlay([], [], 0);
  }

  isQuarantined(ip: string, deviceId: string | null): boolean {
    return this.quarantinedIps.has(ip) || (deviceId !== null && this.quarantinedDevices.has(deviceId));
  }

  /** The verdict for this client once exceptions are applied (the snapshot's verdict unchanged when none applies). */
  apply(verdict: Verdict, host: string, who: ExceptionSubject, ip: string, now: number): Verdict {
    if (this.quarantinedIps.size > 0 || this.quarantinedDevices.size > 0) {
      const q = this.quarantinedIps.get(ip) ?? (who.deviceId !== null ? this.quarantinedDevices.get(who.deviceId) : undefined);
      if (q && live(q.input, now)) {
        if (NEVER.has(verdict.rule)) return verdict;
        if (this.isRemediation(host)) return verdict.action === 'block' ? { ...q.verdict, action: 'allow', reason: 'Allowed: a remediation site, open to a quarantined device', rule: 'quarantine-remediation' } : verdict;
        return q.verdict;
      }
    }
    if (!this.hasAllows || verdict.action !== 'block' || !OPENABLE.has(verdict.rule)) return verdict;
    return (
      this.allowFor(this.holders.get('*'), verdict, host, now) ??
      (who.personId !== null ? this.allowFor(this.holders.get(`p:${who.personId}`), verdict, host, now) : null) ??
      (who.deviceId !== null ? this.allowFor(this.holders.get(`d:${who.deviceId}`), verdict, host, now) : null) ??
      this.allowFor(this.holders.get(`i:${ip}`), verdict, host, now) ??
      verdict
    );
  }

  private allowFor(h: Holder | undefined, verdict: Verdict, rawHost: string, now: number): Verdict | null {
    if (!h) return null;
    for (const e of h.off) if (live(e.input, now)) return e.verdict;
    if (verdict.category !== null) {
      const byCategory = h.categories.get(verdict.category);
      if (byCategory) for (const e of byCategory) if (live(e.input, now)) return e.verdict;
    }
    if (h.domains.size > 0) {
      let host = normaliseHost(rawHost);
      while (host) {
        const byDomain = h.domains.get(host);
        if (byDomain) for (const e of byDomain) if (live(e.input, now)) return e.verdict;
        const dot = host.indexOf('.');
        host = dot === -1 ? null : host.slice(dot + 1);
      }
    }
    return null;
  }

  private isRemediation(rawHost: string): boolean {
    let host = normaliseHost(rawHost);
    while (host) {
      if (this.remediation.has(host)) return true;
      const dot = host.indexOf('.');
      host = dot === -1 ? null : host.slice(dot + 1);
    }
    return false;
  }
}

function live(e: ExceptionInput, now: number): boolean {
  return e.startsAt <= now && (e.endsAt === null || now < e.endsAt);
}

function allowVerdict(e: ExceptionInput): Verdict {
  const rule = e.kind === 'filter-off' ? 'filter-off' : e.kind === 'lesson' ? 'lesson-allowance' : 'exception-allow';
  return { action: 'allow', reason: `Allowed: ${e.label}`, category: null, categoryName: null, rule, policy: 'exception', target: null, unblockable: false };
}

function quarantineVerdict(e: ExceptionInput): Verdict {
  return { action: 'block', reason: `Blocked: this device is quarantined (${e.label}); only the school’s remediation sites can be reached`, category: null, categoryName: null, rule: 'quarantine', policy: 'quarantine', target: null, unblockable: false };
}
