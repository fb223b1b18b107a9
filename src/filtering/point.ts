import type { ExceptionOverlay } from './engine/exceptions.js';
import type { FilterSnapshot, Verdict } from './engine/snapshot.js';

/**
 * What an enforcement point (the DNS resolver, the proxy, the Squid helper) needs from the rest of
 * Gatehouse, and nothing more: the current compiled snapshot, who a client address is, and where
 * to send what it decided. The database-backed implementation (lists from their sources, policies
 * per group, identification from sign-ins, the API, proxy authentication and registered devices,
 * the activity log) lives in `filtering/service.ts`; tests and benchmarks use `StaticFilterPoint`.
 *
 * Hot-path rules: `snapshot()` and `identify()` return objects that already exist (no I/O, no
 * allocation); `record()` only appends to an in-memory buffer that is written in batches elsewhere.
 */

/** How a client was identified (FI-01, FI-02, FI-05). */
export type IdentifiedBy = 'captive' | 'api' | 'proxy-auth' | 'device' | 'unknown';

export interface ClientIdentity {
  /** the policy (per group) that applies: an id the snapshot knows */
  policyId: string;
  /** the index of that policy in the snapshot current when it was given (pass that snapshot along with it) */
  policyIndex: number;
  deviceId: string | null;
  deviceName: string | null;
  personId: string | null;
  username: string | null;
  via: IdentifiedBy;
}

/** One decision, as the DfE filtering standard asks it to be recorded (MO-01). */
export interface ActivityRecord {
  /** epoch milliseconds */
  at: number;
  /** dns | proxy | squid */
  point: 'dns' | 'proxy' | 'squid';
  clientIp: string;
  deviceId: string | null;
  deviceName: string | null;
  personId: string | null;
  username: string | null;
  host: string;
  /** the full URL where known (proxy over HTTP, Squid) */
  url: string | null;
  /** a search term, when the request was a search (q=, p=, query=) */
  searchTerm: string | null;
  action: Verdict['action'];
  category: string | null;
  rule: string;
  policy: string;
}

/** What a decision record says of the request, beyond who and when. */
export interface ActivityRequest {
  /** the name decided on */
  host: string;
  /** the full URL where known (proxy over HTTP, Squid) */
  url?: string | null;
  searchTerm?: string | null;
  /** the username the request itself gave (proxy sign-in, Squid's %un), kept when identification named no one */
  user?: string | null;
}

/**
 * The one way a decision becomes an ActivityRecord (MO-01), for every enforcement point: the client
 * and who identification says they are, the request, and the verdict (or a point's own refusal,
 * e.g. rule "port"). A verdict's category, rule and policy are recorded as they are.
 */
export function activityRecord(
  point: ActivityRecord['point'],
  at: number,
  clientIp: string,
  identity: ClientIdentity,
  verdict: Pick<Verdict, 'action' | 'category' | 'rule' | 'policy'>,
  request: ActivityRequest,
): ActivityRecord {
  return {
    at,
    point,
    clientIp,
    deviceId: identity.deviceId,
    deviceName: identity.deviceName,
    personId: identity.personId,
    username: identity.username ?? request.user ?? null,
    host: request.host,
    url: request.url ?? null,
    searchTerm: request.searchTerm ?? null,
    action: verdict.action,
    category: verdict.category,
    rule: verdict.rule,
    policy: verdict.policy,
  };
}

export interface FilterPoint {
  snapshot(): FilterSnapshot;
  /** who is at this address now; unknown clients get the profile's policy for unknown devices */
  identify(ip: string, proxyUser?: string | null): ClientIdentity;
  record(activity: ActivityRecord): void;
  /** filter exceptions (issue 11): allowances, filter-off, quarantine; swapped whole when they change */
  exceptions?(): ExceptionOverlay;
}

/** The snapshot's verdict with the point's filter exceptions applied (issue 11); the verdict itself when there are none. */
export function withExceptions(point: FilterPoint, verdict: Verdict, host: string, identity: ClientIdentity, ip: string, now: number): Verdict {
  const overlay = point.exceptions?.();
  return overlay && overlay.size > 0 ? overlay.apply(verdict, host, identity, ip, now) : verdict;
}

/** For tests and benchmarks: a fixed snapshot, addresses mapped to policies, activity kept in memory. */
export class StaticFilterPoint implements FilterPoint {
  readonly recorded: ActivityRecord[] = [];
  private readonly byIp = new Map<string, ClientIdentity>();
  private readonly unknown: ClientIdentity;
  private readonly byUser = new Map<string, ClientIdentity>();

  constructor(
    private current: FilterSnapshot,
    options: { unknownPolicy: string; clients?: Record<string, { policyId: string; username?: string; deviceName?: string }>; users?: Record<string, string>; keep?: boolean },
  ) {
    this.unknown = this.identity(options.unknownPolicy, 'unknown');
    for (const [ip, c] of Object.entries(options.clients ?? {})) {
      this.byIp.set(ip, { ...this.identity(c.policyId, c.username ? 'api' : 'device'), username: c.username ?? null, deviceName: c.deviceName ?? null });
    }
    for (const [user, policyId] of Object.entries(options.users ?? {})) this.byUser.set(user, { ...this.identity(policyId, 'proxy-auth'), username: user });
    this.keep = options.keep ?? true;
  }

  private readonly keep: boolean;

  private identity(policyId: string, via: IdentifiedBy): ClientIdentity {
    return { policyId, policyIndex: this.current.policy(policyId), deviceId: null, deviceName: null, personId: null, username: null, via };
  }

  snapshot(): FilterSnapshot {
    return this.current;
  }

  /** Swaps in a new snapshot (as the service does when lists or policies change). */
  replace(next: FilterSnapshot): void {
    this.current = next;
    for (const identity of [this.unknown, ...this.byIp.values(), ...this.byUser.values()]) identity.policyIndex = next.policy(identity.policyId);
  }

  identify(ip: string, proxyUser?: string | null): ClientIdentity {
    if (proxyUser) {
      const byUser = this.byUser.get(proxyUser);
      if (byUser) return byUser;
    }
    return this.byIp.get(ip) ?? this.unknown;
  }

  record(activity: ActivityRecord): void {
    if (this.keep) this.recorded.push(activity);
  }
}

/** DNS over TLS: a tunnel to this port would bypass the school's resolver (FI-10). */
export const DOT_PORT = 853;

/**
 * A CONNECT tunnel, as every enforcement point decides it (the proxy, the Squid helper): on the host
 * alone, since a tunnel has no path (URL lists and patterns are for requests whose path is seen),
 * and refused to port 853 (DNS over TLS) for everyone, whatever the host (FI-10). Allocates only
 * for port 853.
 */
export function decideConnect(snapshot: FilterSnapshot, host: string, port: number, policy: number, now: number): Verdict {
  const verdict = snapshot.decide(host, policy, now);
  if (port !== DOT_PORT) return verdict;
  return {
    action: 'block',
    reason: `Blocked: DNS over TLS (port ${DOT_PORT}) is not allowed; devices must use the school’s DNS resolver`,
    category: null,
    categoryName: null,
    rule: 'dns-over-tls',
    policy: verdict.policy,
    target: null,
    unblockable: false,
  };
}

/** A search term in a URL's query (Google q=, Bing q=, Yahoo p=, others query=/search=), for MO-01. */
export function searchTermOf(query: URLSearchParams): string | null {
  for (const key of ['q', 'p', 'query', 'search', 'search_query']) {
    const v = query.get(key);
    if (v) return v.slice(0, 500);
  }
  return null;
}
