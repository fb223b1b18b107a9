import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Actor } from '../core/context.js';
import { systemClock } from '../core/clock.js';
import { badRequest } from '../core/errors.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import { checkProxySignIn } from '../identity/sign-in.js';
import type { Runtime } from '../runtime.js';
import { ActivityWriter, purgeActivity } from './activity.js';
import { ExceptionOverlay } from './engine/exceptions.js';
import { loadExceptionOverlay } from './exceptions.js';
import { compileSnapshot, type Explanation, type FilterSnapshot } from './engine/snapshot.js';
import { IdentityIndex, loadIdentityInput, plainIp, recordProxyUser } from './identify.js';
import { defaultLimits, fetchSource, ListStore, loadCategories, type FetchLimits, type FetchOutcome } from './lists-service.js';
import type { ActivityRecord, ClientIdentity, FilterPoint } from './point.js';
import { listPolicies, toEngine, UNKNOWN_POLICY } from './policies.js';
import { readGenerations } from './state.js';

/**
 * The database-backed FilterPoint (FI-01..05, MO-01). It compiles the snapshot from the stored
 * lists, the policies and the profile's time zone, and swaps it in whole when anything it depends on
 * changes; it keeps who is at which address in memory; it buffers activity and writes it in batches.
 *
 * Compiling runs on the event loop: with the UT1 lists it takes about a second (more with a full
 * adult list), at start and after a change to lists or policies, never per request. Several nodes on
 * one PostgreSQL database each compile their own snapshot and poll the `filter_state` counters every
 * few seconds for changes made elsewhere; each fetches its lists to its own data folder.
 */

export interface FilterServiceOptions {
  /** how often to look for changes made by other nodes (ms) */
  pollMs?: number;
  /** how often to look for lists due for fetching (ms) */
  fetchCheckMs?: number;
  /** how often to reload who is where, even without a change (expiry, new people) (ms) */
  identityRefreshMs?: number;
  limits?: FetchLimits;
  activity?: { everyMs: number; batch: number; maxBuffered: number };
}

export class FilterService implements FilterPoint {
  readonly store: ListStore;
  private current: FilterSnapshot;
  private index: IdentityIndex;
  private readonly activity: ActivityWriter;
  private generations = { policy: -1, identity: -1 };
  private timers: Periodic[] = [];
  private work: Promise<unknown> = Promise.resolve();
  private started = false;
  private readonly lastAttempt = new Map<string, number>();
  private fetching: Promise<void> | undefined;
  private lastPurgeDay = '';
  /** names policies use that no list provides now, and lists not yet fetched on this node */
  warnings: string[] = [];
  readonly limits: FetchLimits;
  compiledAt: string | null = null;
  compileMs = 0;

  constructor(
    readonly rt: Runtime,
    private readonly options: FilterServiceOptions = {},
  ) {
    this.store = new ListStore(path.join(rt.config.dataDir, 'filtering', 'lists'));
    // The one folder lists on this server are read from (GATEHOUSE_LIST_FOLDER): there to be filled.
    try {
      mkdirSync(rt.config.listFolder, { recursive: true, mode: 0o750 });
    } catch (error) {
      rt.logger.warn({ folder: rt.config.listFolder, code: (error as NodeJS.ErrnoException).code }, 'filtering: the list folder cannot be created; lists on this server cannot be read until it exists');
    }
    this.limits = options.limits ?? defaultLimits;
    this.current = compileSnapshot({ categories: [], policies: [emptyPolicy()], timeZone: rt.profile.timeZone });
    this.index = new IdentityIndex({ mappings: [], devices: [], people: [], groupPolicies: new Map() }, (id) => this.current.policy(id));
    this.activity = new ActivityWriter(rt.db.kysely, (error) => rt.logger.error({ err: error }, 'filtering activity could not be written; kept for the next attempt'), options.activity);
  }

  // --- FilterPoint: the hot path ------------------------------------------------------------------

  snapshot(): FilterSnapshot {
    return this.current;
  }

  identify(ip: string, proxyUser?: string | null): ClientIdentity {
    return this.index.identify(ip, proxyUser, this.nowMs());
  }

  /** The runtime's clock without a Date per call when it is the system clock (the hot path). */
  private nowMs(): number {
    return this.rt.clock === systemClock ? Date.now() : this.rt.clock.now().getTime();
  }

  record(activity: ActivityRecord): void {
    this.activity.add(activity);
  }

  // --- Filter exceptions (issue 11): compiled aside, swapped whole, re-read at the next expiry -----
  private overlay: ExceptionOverlay = ExceptionOverlay.empty();
  private overlayTimer: NodeJS.Timeout | undefined;

  exceptions(): ExceptionOverlay {
    return this.overlay;
  }

  /** Re-reads the active exceptions and swaps them in; arms a timer for the next start or end. */
  async reloadExceptions(): Promise<void> {
    const next = await loadExceptionOverlay(this.rt);
    this.overlay = next;
    if (this.overlayTimer) clearTimeout(this.overlayTimer);
    this.overlayTimer = undefined;
    if (Number.isFinite(next.nextChange)) {
      const wait = Math.min(Math.max(next.nextChange - this.rt.clock.now().getTime(), 0) + 50, 2_147_000_000);
      this.overlayTimer = setTimeout(() => void this.reloadExceptions().catch((error: unknown) => this.rt.logger.error({ err: error }, 'filtering: exceptions could not be reloaded')), wait);
      this.overlayTimer.unref();
    }
  }

  /** Another module (the alert rules) is told of each written batch of activity, off the hot path. */
  onActivityWritten(observer: (batch: readonly ActivityRecord[]) => void): void {
    if (!this.activity.observers.includes(observer)) this.activity.observers.push(observer);
  }

  // --- Life cycle -------------------------------------------------------------------------------------

  /** Compiles what is stored (fetching lists this node has never fetched), then keeps it current. */
  async start(options: { timers?: boolean; fetch?: boolean } = {}): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refresh(true);
    // Lists this node has never fetched (a new node, a new list) are fetched in the background: a
    // large archive must not hold up the server's start; the old snapshot serves meanwhile.
    if (options.fetch ?? true) void this.fetchDue().catch((error: unknown) => this.rt.logger.error({ err: error }, 'filtering: fetching lists failed'));
    if (options.timers ?? true) {
      this.activity.start();
      // The first run of each is one period after start: the start itself has just compiled and fetched.
      const every = (name: string, everyMs: number, job: () => Promise<void>) => this.timers.push(schedulePeriodic(this.rt.logger, `filtering: ${name}`, job, { everyMs, firstAfterMs: everyMs }));
      every('looking for changes', this.options.pollMs ?? 5000, () => this.refresh(false));
      every('reloading who is where', this.options.identityRefreshMs ?? 30_000, () => this.serial(() => this.reloadIdentities()));
      every('fetching lists', this.options.fetchCheckMs ?? 60_000, () => this.fetchDue());
      every('purging activity', 3_600_000, () => this.purgeDaily());
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.timers.map((t) => t.stop()));
    this.timers = [];
    await this.fetching;
    await this.work.catch(() => undefined);
    await this.activity.stop();
    if (this.overlayTimer) clearTimeout(this.overlayTimer);
    this.started = false;
  }

  /** Ensures a first compile (routes use the service before or without `serve` starting it). */
  async ready(): Promise<void> {
    if (this.generations.policy < 0) await this.refresh(true);
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.work.then(job, job);
    this.work = next.catch(() => undefined);
    return next;
  }

  /** Recompiles and reloads when the counters moved (or always, when forced). */
  async refresh(force = false): Promise<void> {
    await this.serial(async () => {
      const seen = await readGenerations(this.rt.db.kysely);
      if (force || seen.policy !== this.generations.policy) {
        await this.recompile();
        this.generations = seen;
      } else if (seen.identity !== this.generations.identity) {
        await this.reloadIdentities();
        this.generations = seen;
      }
    });
  }

  /** After a change on this node: pick it up now rather than at the next poll. */
  changed(): Promise<void> {
    return this.refresh(false);
  }

  private async recompile(): Promise<void> {
    const started = performance.now();
    const { categories, missing } = await loadCategories(this.rt, this.store);
    const policies = await listPolicies(this.rt);
    const { policies: input, warnings } = toEngine(policies, categories.map((c) => ({ id: c.id, kind: c.kind })));
    if (!input.some((p) => p.id === UNKNOWN_POLICY)) input.push(emptyPolicy());
    let next: FilterSnapshot;
    try {
      next = compileSnapshot({ categories, policies: input, timeZone: this.rt.profile.timeZone });
    } catch (error) {
      // A list with a bad pattern must not stop filtering: keep the snapshot in use.
      this.rt.logger.error({ err: error }, 'filtering: the new lists or policies could not be compiled; the previous ones stay in use');
      this.warnings = [`The lists or policies could not be compiled: ${(error as Error).message}`];
      return;
    }
    const identities = await loadIdentityInput(this.rt.db.kysely, this.rt.clock.now());
    const index = new IdentityIndex(identities, (id) => next.policy(id));
    // The swap: both in the same tick, so a caller never pairs a new snapshot with old indexes.
    this.current = next;
    this.index = index;
    await this.reloadExceptions().catch((error: unknown) => this.rt.logger.error({ err: error }, 'filtering: exceptions could not be loaded'));
    this.compileMs = Math.round(performance.now() - started);
    this.compiledAt = this.rt.clock.now().toISOString();
    const names = missing.length > 0 ? await this.rt.db.kysely.selectFrom('filter_list_source').select('name').where('id', 'in', missing).execute() : [];
    this.warnings = [...warnings, ...names.map((n) => `The list “${n.name}” has not been fetched on this server yet.`)];
    this.rt.logger.info({ filtering: { categories: categories.length, policies: input.length, domains: next.stats.domains, ms: this.compileMs } }, 'filtering snapshot compiled');
  }

  private async reloadIdentities(): Promise<void> {
    const snapshot = this.current;
    const identities = await loadIdentityInput(this.rt.db.kysely, this.rt.clock.now());
    const index = new IdentityIndex(identities, (id) => snapshot.policy(id));
    if (this.current === snapshot) this.index = index;
    // Exceptions name groups and registered devices, so who-is-where changing changes them too.
    await this.reloadExceptions().catch((error: unknown) => this.rt.logger.error({ err: error }, 'filtering: exceptions could not be reloaded'));
  }

  // --- Lists --------------------------------------------------------------------------------------

  /** Fetches every enabled list due on this node (its own copy older than its schedule), one at a time. */
  async fetchDue(): Promise<void> {
    if (this.fetching) return this.fetching;
    this.fetching = (async () => {
      const sources = await this.rt.db.kysely.selectFrom('filter_list_source').select(['id', 'schedule_hours', 'name']).where('enabled', '=', 1).where('location', 'is not', null).execute();
      const now = this.rt.clock.now().getTime();
      let updated = false;
      for (const s of sources) {
        const manifest = this.store.manifest(s.id);
        const have = manifest ? Date.parse(manifest.fetchedAt) : 0;
        const tried = this.lastAttempt.get(s.id) ?? 0;
        const period = s.schedule_hours * 3_600_000;
        if (now - have < period || now - tried < Math.min(period, 3_600_000)) continue;
        this.lastAttempt.set(s.id, now);
        const outcome = await fetchSource(this.rt, this.store, s.id, this.limits);
        if (outcome.status === 'failed') this.rt.logger.warn({ list: s.name, error: outcome.error }, 'filtering: a list could not be updated; the one in use stays');
        if (outcome.status === 'updated') updated = true;
      }
      if (updated) await this.refresh(false);
    })().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  /** "Update now" from the console. */
  async fetchNow(sourceId: string, actor: Actor): Promise<FetchOutcome> {
    this.lastAttempt.set(sourceId, this.rt.clock.now().getTime());
    const outcome = await fetchSource(this.rt, this.store, sourceId, this.limits, actor);
    await this.refresh(false);
    return outcome;
  }

  // --- Activity -------------------------------------------------------------------------------------

  flushActivity(): Promise<void> {
    return this.activity.flush();
  }

  get activityStats(): { pending: number; written: number; dropped: number } {
    return { pending: this.activity.pending, written: this.activity.written, dropped: this.activity.dropped };
  }

  private async purgeDaily(): Promise<void> {
    const day = this.rt.clock.now().toISOString().slice(0, 10);
    if (day === this.lastPurgeDay) return;
    this.lastPurgeDay = day;
    const deleted = await purgeActivity(this.rt);
    if (deleted > 0) this.rt.logger.info({ deleted }, 'filtering activity past its retention deleted');
  }

  // --- For people: test a URL, the block page ----------------------------------------------------------

  /** Which policy a person, an address or a named policy means, for "test a URL". */
  policyFor(target: { policyId?: string | undefined; personId?: string | undefined; ip?: string | undefined }): { policyId: string; identity: ClientIdentity | null } {
    if (target.policyId) {
      if (!this.current.hasPolicy(target.policyId)) throw badRequest('There is no such filtering policy.');
      return { policyId: target.policyId, identity: null };
    }
    if (target.personId) {
      const id = this.index.personPolicy(target.personId);
      if (!id) throw badRequest('That person is not an active account.');
      return { policyId: id, identity: null };
    }
    if (target.ip) {
      const identity = this.identify(plainIp(target.ip));
      return { policyId: identity.policyId, identity };
    }
    return { policyId: UNKNOWN_POLICY, identity: null };
  }

  explain(url: string, policyId: string, at: Date): Explanation & { url: string; policyId: string } {
    const { host, path } = splitUrl(url);
    const snapshot = this.current;
    return { ...snapshot.explain(host, snapshot.policy(policyId), at.getTime(), path), url, policyId };
  }

  /**
   * Proxy authentication (FI-01): a Gatehouse username and password, checked by the sign-in page's
   * own counted, throttled and audited path (`checkProxySignIn`: lockout, per-address throttle,
   * expiry, temporary passwords, AUP; administrators refused, as Basic authentication has no second
   * factor). The proxy keeps its own short cache of successes; a success remembers the person at
   * the address for DNS filtering too.
   */
  async checkProxyPassword(username: string, password: string, ip: string): Promise<boolean> {
    const outcome = await checkProxySignIn(this.rt, { username, password }, { ip: plainIp(ip), userAgent: null, requestId: null });
    if (outcome.ok) this.noteProxyUser(ip, outcome.username);
    return outcome.ok;
  }

  /** The person the proxy authenticated is remembered at the address (FI-01): at most once per 10 minutes. */
  private readonly proxySeen = new Map<string, number>();
  noteProxyUser(ip: string, username: string): void {
    const identity = this.index.identify(ip, username, this.nowMs());
    if (!identity.personId) return;
    const key = `${ip} ${username}`;
    const now = this.nowMs();
    if (now - (this.proxySeen.get(key) ?? 0) < 600_000) return;
    this.proxySeen.set(key, now);
    void recordProxyUser(this.rt, plainIp(ip), identity.personId, username, 60)
      .then(() => this.changed())
      .catch((error: unknown) => this.rt.logger.warn({ err: error }, 'filtering: could not record a proxy user'));
  }
}

/** "https://Example.com/a?b" or "example.com/a" → host and path (with query). */
export function splitUrl(raw: string): { host: string; path: string | undefined } {
  const text = raw.trim();
  try {
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
    const u = new URL(scheme ? text : `http://${text}`);
    const hasPath = scheme ? /^[a-z][a-z0-9+.-]*:\/\/[^/]+\/./i.test(text) : text.includes('/');
    return { host: u.hostname.replace(/^\[|\]$/g, ''), path: hasPath ? `${u.pathname}${u.search}` : undefined };
  } catch {
    throw badRequest('That is not a web address.');
  }
}

function emptyPolicy() {
  return { id: UNKNOWN_POLICY, name: 'Unknown devices', blockedCategories: [], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off' as const, youtube: 'off' as const }, defaultAction: 'allow' as const, downloadsAllowed: false };
}

const services = new WeakMap<Runtime, FilterService>();

/** The one FilterService of a runtime: `serve` starts it; routes share it. */
export function filterServiceFor(rt: Runtime, options?: FilterServiceOptions): FilterService {
  let service = services.get(rt);
  if (!service) {
    service = new FilterService(rt, options);
    services.set(rt, service);
  }
  return service;
}

/** Is filtering set up in this database (any list source or edited policy)? */
export async function filteringConfigured(rt: Runtime): Promise<boolean> {
  const list = await rt.db.kysely.selectFrom('filter_list_source').select('id').limit(1).executeTakeFirst();
  const policy = await rt.db.kysely.selectFrom('filter_policy').select('id').limit(1).executeTakeFirst();
  return Boolean(list || policy);
}
