import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import type { Selectable } from 'kysely';
import { RE2JS } from 're2js';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { badRequest, conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import type { FilterListSourceTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { isBlockCategory, parseList, parseUrlList, readUt1Folder, type ListFormat } from './engine/lists.js';
import type { CategoryInput, CategoryKind } from './engine/snapshot.js';
import { bumpGeneration } from './state.js';
import { hostFromInput } from './site-input.js';
import type { StepUp } from '../identity/my-account.js';
import { checkUrlTarget, checkUt1Tree, confineLocal, describeBytes, downloadList, listOrigins, ListSourceError, parseListUrl, readConfined, type ListOrigins } from './list-origin.js';
import { extractTar, TarError } from './tar.js';

/** What counts as a site (src/filtering/site-input.ts, shared with the console), for this module's callers. */
export { hostFromInput };

/**
 * List sources (FI-03, FI-04): where each list comes from (a URL, a folder or file, or entries typed
 * in the console), fetched on its schedule, parsed and checked, stored as normalised files under
 * `<data dir>/filtering/lists/<source>/<version>/` and swapped in by renaming a pointer file, so a
 * reader never sees half a list. An update that shrinks a list by more than half is held until an
 * administrator confirms it (a truncated download must not silently unblock a category). A list of
 * kind `illegal` (IWF/CTIRU from a provider) is blocked for everyone: the engine ranks it above
 * every policy, and nothing here lets it be disabled, removed or allowed.
 */

export const sourceFormats = ['ut1', 'domains', 'hosts', 'adblock'] as const;
export type SourceFormat = (typeof sourceFormats)[number];
export const sourceKinds = ['category', 'illegal', 'allow', 'block'] as const;
export type SourceKind = (typeof sourceKinds)[number];

export const formatLabels: Record<SourceFormat, string> = {
  ut1: 'UT1 archive (categories in folders)',
  domains: 'Plain list of domains',
  hosts: 'Hosts file',
  adblock: 'Adblock (||domain^ lines)',
};
export const kindLabels: Record<SourceKind, string> = {
  category: 'Categories (blocked per policy)',
  illegal: 'Illegal content (blocked for everyone)',
  allow: 'School allow list',
  block: 'School block list',
};

type Meta = { ip: string | null; requestId: string | null };
type Source = Selectable<FilterListSourceTable>;

/**
 * What one fetch may cost (docs/filtering.md). Past any of them the fetch fails with the limit named
 * and the list in use stays.
 */
export interface FetchLimits {
  timeoutMs: number;
  /** bytes downloaded (the archive or file as sent) */
  maxDownloadBytes: number;
  /** bytes after gunzip (a whole archive, every entry), or read from a UT1 folder on this server */
  maxUnpackedBytes: number;
  /** one file: an archive entry, a list file on this server, a plain list after gunzip */
  maxFileBytes: number;
  /** entries in a tar archive (files, folders, links) */
  maxArchiveEntries: number;
  /** names, web addresses and expressions in one list (all its categories) */
  maxListEntries: number;
}
export const defaultLimits: FetchLimits = {
  timeoutMs: 120_000,
  maxDownloadBytes: 256 * 1_048_576,
  maxUnpackedBytes: 2048 * 1_048_576,
  maxFileBytes: 512 * 1_048_576,
  maxArchiveEntries: 10_000,
  maxListEntries: 10_000_000,
};

const location = z
  .string()
  .trim()
  .min(1)
  .max(2000)
  .refine((v) => /^https?:\/\//i.test(v) || path.isAbsolute(v), 'must be an http:// or https:// address, or the full path of a folder or file on this server');

export const newSourceSchema = z
  .object({
    name: z.string().trim().min(1, 'is required').max(100, 'must be at most 100 characters'),
    format: z.enum(sourceFormats, { error: `must be one of ${sourceFormats.join(', ')}` }),
    location: location.nullable(),
    kind: z.enum(sourceKinds, { error: `must be one of ${sourceKinds.join(', ')}` }),
    description: z.string().trim().max(1000).nullable().optional(),
    scheduleHours: z.number().int('must be a whole number of hours').min(1, 'must be at least 1 hour').max(24 * 31, 'must be at most 744 hours (a month)').default(24),
  })
  .strict();
export const sourceChangeSchema = z
  .object({
    name: newSourceSchema.shape.name.optional(),
    location: location.nullable().optional(),
    description: newSourceSchema.shape.description,
    scheduleHours: z.number().int().min(1).max(24 * 31).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export interface SourceSummary {
  id: string;
  name: string;
  slug: string;
  format: SourceFormat;
  location: string | null;
  kind: SourceKind;
  description: string | null;
  scheduleHours: number;
  enabled: boolean;
  editable: boolean;
  lastFetchedAt: string | null;
  lastResult: string | null;
  lastError: string | null;
  currentAt: string | null;
  entries: number;
  bytes: number;
  categoryCount: number;
  stale: boolean;
  held: { at: string; entries: number } | null;
}

export function summariseSource(row: Source, now: Date, staleAfterSchedules: number): SourceSummary {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    format: row.format as SourceFormat,
    location: row.location,
    kind: row.kind as SourceKind,
    description: row.description,
    scheduleHours: row.schedule_hours,
    enabled: row.enabled === 1,
    editable: row.location === null,
    lastFetchedAt: row.last_fetched_at,
    lastResult: row.last_result,
    lastError: row.last_error,
    currentAt: row.current_at,
    entries: row.entries,
    bytes: row.bytes,
    categoryCount: row.category_count,
    stale: isStale(row, now, staleAfterSchedules),
    held: row.held_at ? { at: row.held_at, entries: row.held_entries ?? 0 } : null,
  };
}

/** A fetched list older than N of its schedules (or never fetched a day after it was added). */
export function isStale(row: Pick<Source, 'location' | 'enabled' | 'current_at' | 'created_at' | 'schedule_hours'>, now: Date, staleAfterSchedules: number): boolean {
  if (row.location === null || row.enabled !== 1) return false;
  const since = Date.parse(row.current_at ?? row.created_at);
  return now.getTime() - since > staleAfterSchedules * row.schedule_hours * 3_600_000;
}

export async function listSources(rt: Runtime): Promise<SourceSummary[]> {
  const rows = await rt.db.kysely.selectFrom('filter_list_source').selectAll().orderBy('name').execute();
  const now = rt.clock.now();
  return rows.map((r) => summariseSource(r, now, rt.profile.filtering.staleAfterSchedules));
}

export async function loadSource(rt: Runtime, id: string): Promise<Source> {
  const row = await rt.db.kysely.selectFrom('filter_list_source').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such list.');
  return row;
}

function slugOf(name: string): string {
  const s = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return s || 'list';
}

/**
 * Where a list may come from, checked when it is saved (and again at every fetch, by readSource):
 * an http(s) address whose name resolves to addresses lists may be fetched from, or a file or folder
 * inside the list folder (src/filtering/list-origin.ts).
 */
export async function checkLocation(origins: ListOrigins, format: SourceFormat, loc: string | null, kind: SourceKind): Promise<void> {
  if (loc === null) {
    if (format === 'ut1') throw badRequest('A UT1 list needs a location: the address of blacklists.tar.gz or a folder holding the UT1 categories.');
    if (kind === 'illegal') throw badRequest('An illegal-content list comes from its provider: give the address or file it supplies.');
    return;
  }
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(loc)) {
      const url = parseListUrl(loc);
      if (format === 'ut1' && !/\.(tar\.gz|tgz)$/i.test(url.pathname)) throw badRequest('A UT1 list from the web must be the archive (an address ending in .tar.gz), e.g. the UT1 blacklists.tar.gz.');
      try {
        await checkUrlTarget(url, origins);
      } catch (error) {
        // A name that does not resolve now is not refused: the fetch that follows reports it.
        if (!(error instanceof ListSourceError && error.unresolved)) throw error;
      }
      return;
    }
    const { directory } = confineLocal(loc, origins.folder);
    if (format === 'ut1' && !directory) throw badRequest('A UT1 list on this server must be the folder that holds the category folders (adult/, games/, …).');
    if (format !== 'ut1' && directory) throw badRequest(`${loc} is a folder: give the list file itself.`);
  } catch (error) {
    if (error instanceof ListSourceError) throw badRequest(`${capitalise(error.message)}.`);
    throw error;
  }
}

const capitalise = (text: string) => `${text[0]!.toUpperCase()}${text.slice(1)}`;

/** The places lists may come from, as the runtime is configured (the list folder, the networks allowed). */
export function originsOf(rt: Runtime): ListOrigins {
  try {
    return listOrigins(rt.config);
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

/**
 * Where a list comes from decides what the filter blocks and what the server fetches: setting it
 * needs a recent re-authentication (issue 10, finding 12), asked before the location is even
 * looked at, so a stolen session cannot use the check to probe the server's files or network.
 */
export async function createListSource(rt: Runtime, actor: Actor, input: z.infer<typeof newSourceSchema>, meta: Meta, stepUp: StepUp): Promise<SourceSummary> {
  if (input.location !== null) await stepUp('list_source');
  await checkLocation(originsOf(rt), input.format, input.location, input.kind);
  if (input.location === null && input.format !== 'domains') throw badRequest('A list edited here is a plain list of domains: choose the format "domains".');
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    const clash = await ctx.db.selectFrom('filter_list_source').select('id').where('name', '=', input.name).executeTakeFirst();
    if (clash) throw conflict(`There is already a list called "${input.name}".`, 'list_exists');
    // A single list's slug is its category id: unique among lists and categories.
    const taken = new Set([
      ...(await ctx.db.selectFrom('filter_list_source').select('slug').execute()).map((r) => r.slug),
      ...(await ctx.db.selectFrom('filter_category').select('id').execute()).map((r) => r.id),
    ]);
    const base = slugOf(input.name);
    let slug = base;
    for (let n = 2; taken.has(slug); n++) slug = `${base}-${n}`;
    const now = ctx.clock.now().toISOString();
    await ctx.db
      .insertInto('filter_list_source')
      .values({ id, name: input.name, slug, format: input.format, location: input.location, kind: input.kind, description: input.description ?? null, schedule_hours: input.scheduleHours, created_at: now, updated_at: now, last_fetched_at: null, last_result: null, last_error: null, current_at: input.location === null ? now : null, held_at: null, held_entries: null, held_version: null })
      .execute();
    if (input.location === null) {
      await ctx.db.insertInto('filter_category').values({ id: slug, source_id: id, name: input.name, description: input.description ?? '', kind: input.kind, domains: 0, urls: 0, updated_at: now }).execute();
      await bumpGeneration(ctx.db, 'policy');
    }
    await ctx.audit.record({ action: 'filtering.list_added', target: `filter_list:${id}`, severity: input.kind === 'illegal' ? 'warning' : 'notice', details: { name: input.name, format: input.format, kind: input.kind, location: input.location, scheduleHours: input.scheduleHours } });
  }, meta);
  return summariseSource(await loadSource(rt, id), rt.clock.now(), rt.profile.filtering.staleAfterSchedules);
}

export async function changeListSource(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof sourceChangeSchema>, meta: Meta, stepUp: StepUp): Promise<SourceSummary> {
  const before = await loadSource(rt, id);
  if (input.location !== undefined && input.location !== before.location) await stepUp('list_source');
  if (before.kind === 'illegal' && input.enabled === false) throw badRequest('An illegal-content list cannot be switched off: it is blocked for everyone, always.');
  if (input.location !== undefined) {
    if ((input.location === null) !== (before.location === null)) throw badRequest('A list edited here cannot be given a location, nor a fetched list be made editable: add a new list instead.');
    await checkLocation(originsOf(rt), before.format as SourceFormat, input.location, before.kind as SourceKind);
  }
  await rt.trail.transaction(actor, async (ctx) => {
    const changes: Record<string, unknown> = {};
    if (input.name !== undefined && input.name !== before.name) {
      const clash = await ctx.db.selectFrom('filter_list_source').select('id').where('name', '=', input.name).where('id', '!=', id).executeTakeFirst();
      if (clash) throw conflict(`There is already a list called "${input.name}".`, 'list_exists');
      changes.name = input.name;
    }
    if (input.location !== undefined && input.location !== before.location) changes.location = input.location;
    if (input.description !== undefined && input.description !== before.description) changes.description = input.description;
    if (input.scheduleHours !== undefined && input.scheduleHours !== before.schedule_hours) changes.schedule_hours = input.scheduleHours;
    if (input.enabled !== undefined && (input.enabled ? 1 : 0) !== before.enabled) changes.enabled = input.enabled ? 1 : 0;
    if (Object.keys(changes).length === 0) return;
    await ctx.db.updateTable('filter_list_source').set({ ...changes, updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
    if (before.location === null && changes.name) await ctx.db.updateTable('filter_category').set({ name: changes.name as string }).where('source_id', '=', id).execute();
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action: 'filtering.list_changed', target: `filter_list:${id}`, severity: 'notice', details: { name: before.name, changed: changes } });
  }, meta);
  return summariseSource(await loadSource(rt, id), rt.clock.now(), rt.profile.filtering.staleAfterSchedules);
}

export async function deleteListSource(rt: Runtime, store: ListStore, actor: Actor, id: string, meta: Meta): Promise<void> {
  const before = await loadSource(rt, id);
  if (before.kind === 'illegal') throw badRequest('An illegal-content list cannot be removed: replace its location instead if the provider changed it.');
  await rt.trail.transaction(actor, async (ctx) => {
    const categories = (await ctx.db.selectFrom('filter_category').select('id').where('source_id', '=', id).execute()).map((c) => c.id);
    await ctx.db.deleteFrom('filter_list_source').where('id', '=', id).execute();
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action: 'filtering.list_removed', target: `filter_list:${id}`, severity: 'notice', details: { name: before.name, kind: before.kind, categories: categories.length } });
  }, meta);
  store.remove(id);
}

// --- The school's own lists: entries typed in the console ---------------------------------------

export const entriesSchema = z
  .object({
    hosts: z
      .array(z.string().trim().min(1, 'must not be empty').max(300, 'must be at most 300 characters'))
      .min(1, 'give at least one site')
      .max(1000, 'give at most 1000 sites at a time')
      .superRefine((hosts, ctx) => {
        const bad = hosts.filter((h) => hostFromInput(h) === null);
        if (bad.length > 0) ctx.addIssue({ code: 'custom', message: notSites(bad), input: bad.slice(0, 20) });
      }),
    note: z.string().trim().max(300).nullable().optional(),
  })
  .strict();

export interface ListEntry {
  host: string;
  note: string | null;
  addedAt: string;
  addedBy: string;
}

export async function listEntries(rt: Runtime, sourceId: string): Promise<ListEntry[]> {
  await loadSource(rt, sourceId);
  const rows = await rt.db.kysely.selectFrom('filter_list_entry').selectAll().where('source_id', '=', sourceId).orderBy('host').execute();
  return rows.map((r) => ({ host: r.host, note: r.note, addedAt: r.added_at, addedBy: r.added_by }));
}

/** Why `hostFromInput` refused entries, for the person who typed them (names the first few). */
export function notSites(bad: string[]): string {
  return `${bad.length === 1 ? 'This is not a web address, domain name or IP address' : 'These are not web addresses, domain names or IP addresses'}: ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}. A domain name has at least two parts, like bbc.co.uk.`;
}

export async function addListEntries(rt: Runtime, actor: Actor, sourceId: string, input: z.infer<typeof entriesSchema>, meta: Meta): Promise<ListEntry[]> {
  const source = await loadSource(rt, sourceId);
  if (source.location !== null) throw badRequest(`“${source.name}” is fetched from ${source.location}; only the school’s own lists are edited here.`);
  const hosts: string[] = [];
  const bad: string[] = [];
  for (const raw of input.hosts) {
    const host = hostFromInput(raw);
    if (host) hosts.push(host);
    else bad.push(raw);
  }
  if (bad.length > 0) throw badRequest(notSites(bad), { invalid: bad.slice(0, 20) });
  await rt.trail.transaction(actor, async (ctx) => {
    const existing = new Set((await ctx.db.selectFrom('filter_list_entry').select('host').where('source_id', '=', sourceId).execute()).map((r) => r.host));
    const fresh = [...new Set(hosts)].filter((h) => !existing.has(h));
    if (fresh.length === 0) return;
    const now = ctx.clock.now().toISOString();
    await ctx.db.insertInto('filter_list_entry').values(fresh.map((host) => ({ source_id: sourceId, host, note: input.note ?? null, added_at: now, added_by: actor.name }))).execute();
    await refreshEditableCounts(ctx.db, sourceId, now);
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action: 'filtering.list_entries_added', target: `filter_list:${sourceId}`, severity: 'notice', details: { list: source.name, kind: source.kind, hosts: fresh.slice(0, 50), count: fresh.length, note: input.note ?? null } });
  }, meta);
  return listEntries(rt, sourceId);
}

export async function removeListEntry(rt: Runtime, actor: Actor, sourceId: string, host: string, meta: Meta): Promise<void> {
  const source = await loadSource(rt, sourceId);
  await rt.trail.transaction(actor, async (ctx) => {
    const result = await ctx.db.deleteFrom('filter_list_entry').where('source_id', '=', sourceId).where('host', '=', host).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw notFound(`${host} is not on “${source.name}”.`);
    await refreshEditableCounts(ctx.db, sourceId, ctx.clock.now().toISOString());
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action: 'filtering.list_entry_removed', target: `filter_list:${sourceId}`, severity: 'notice', details: { list: source.name, kind: source.kind, host } });
  }, meta);
}

async function refreshEditableCounts(db: Parameters<typeof bumpGeneration>[0], sourceId: string, now: string): Promise<void> {
  const { n } = await db.selectFrom('filter_list_entry').select((eb) => eb.fn.countAll<number>().as('n')).where('source_id', '=', sourceId).executeTakeFirstOrThrow();
  await db.updateTable('filter_list_source').set({ entries: Number(n), current_at: now, updated_at: now }).where('id', '=', sourceId).execute();
  await db.updateTable('filter_category').set({ domains: Number(n), updated_at: now }).where('source_id', '=', sourceId).execute();
}

// --- Files on disk ---------------------------------------------------------------------------------

export interface ManifestCategory {
  /** the UT1 folder name, or null for a single list */
  folder: string | null;
  name: string;
  description: string;
  domains: number;
  urls: number;
  expressions: number;
  file: string;
}
export interface Manifest {
  version: string;
  fetchedAt: string;
  entries: number;
  bytes: number;
  rejected: number;
  categories: ManifestCategory[];
}

export interface ParsedSource {
  categories: Array<{ folder: string | null; name: string; description: string; domains: string[]; urls: string[]; expressions: string[] }>;
  rejected: number;
  bytes: number;
}

/**
 * Each source's versions under `<root>/<source id>/`, and `current` naming the one in use. A version
 * is written in a `.partial` folder and renamed whole; `current` is replaced by rename, which is
 * atomic on one file system, so a reader sees the old list or the new one, never a mixture.
 */
export class ListStore {
  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  private dir(sourceId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(sourceId)) throw new Error('bad source id');
    return path.join(this.root, sourceId);
  }

  current(sourceId: string): string | null {
    const file = path.join(this.dir(sourceId), 'current');
    if (!existsSync(file)) return null;
    const version = readFileSync(file, 'utf8').trim();
    return existsSync(path.join(this.dir(sourceId), version, 'manifest.json')) ? version : null;
  }

  manifest(sourceId: string, version = this.current(sourceId)): Manifest | null {
    if (!version) return null;
    const file = path.join(this.dir(sourceId), version, 'manifest.json');
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Manifest) : null;
  }

  has(sourceId: string, version: string | null): boolean {
    return version !== null && /^v[0-9a-z-]+$/.test(version) && existsSync(path.join(this.dir(sourceId), version, 'manifest.json'));
  }

  write(sourceId: string, parsed: ParsedSource, fetchedAt: Date): Manifest {
    const version = `v${fetchedAt.getTime().toString(36)}-${randomBytes(4).toString('hex')}`;
    const dir = this.dir(sourceId);
    const partial = path.join(dir, `${version}.partial`);
    mkdirSync(partial, { recursive: true });
    let entries = 0;
    const categories: ManifestCategory[] = parsed.categories.map((c, i) => {
      const file = String(i);
      writeFileSync(path.join(partial, `${file}.domains`), c.domains.join('\n'));
      if (c.urls.length > 0) writeFileSync(path.join(partial, `${file}.urls`), c.urls.join('\n'));
      if (c.expressions.length > 0) writeFileSync(path.join(partial, `${file}.expressions`), c.expressions.join('\n'));
      entries += c.domains.length + c.urls.length + c.expressions.length;
      return { folder: c.folder, name: c.name, description: c.description, domains: c.domains.length, urls: c.urls.length, expressions: c.expressions.length, file };
    });
    const manifest: Manifest = { version, fetchedAt: fetchedAt.toISOString(), entries, bytes: parsed.bytes, rejected: parsed.rejected, categories };
    writeFileSync(path.join(partial, 'manifest.json'), JSON.stringify(manifest));
    renameSync(partial, path.join(dir, version));
    return manifest;
  }

  /** Makes `version` the one in use and removes the others (except `keep`). */
  activate(sourceId: string, version: string, keep: string | null = null): void {
    const dir = this.dir(sourceId);
    const tmp = path.join(dir, `current.${randomBytes(4).toString('hex')}.tmp`);
    writeFileSync(tmp, version);
    renameSync(tmp, path.join(dir, 'current'));
    this.prune(sourceId, [version, keep]);
  }

  discard(sourceId: string, version: string): void {
    if (this.current(sourceId) === version) return;
    rmSync(path.join(this.dir(sourceId), version), { recursive: true, force: true });
  }

  remove(sourceId: string): void {
    rmSync(this.dir(sourceId), { recursive: true, force: true });
  }

  private prune(sourceId: string, keep: Array<string | null>): void {
    const dir = this.dir(sourceId);
    for (const entry of readdirSync(dir)) {
      if (entry === 'current' || keep.includes(entry)) continue;
      if (/^v[0-9a-z-]+(\.partial)?$/.test(entry) || entry.endsWith('.tmp') || entry === 'download') rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  /** The lists of the version in use, as engine input (ids assigned by the caller). */
  read(sourceId: string): Array<{ meta: ManifestCategory; domains: string[]; urls: string[]; expressions: string[] }> | null {
    const version = this.current(sourceId);
    const manifest = this.manifest(sourceId, version);
    if (!version || !manifest) return null;
    const base = path.join(this.dir(sourceId), version);
    const lines = (file: string, n: number) => (n > 0 && existsSync(path.join(base, file)) ? readFileSync(path.join(base, file), 'utf8').split('\n') : []);
    return manifest.categories.map((meta) => ({
      meta,
      domains: lines(`${meta.file}.domains`, meta.domains),
      urls: lines(`${meta.file}.urls`, meta.urls),
      expressions: lines(`${meta.file}.expressions`, meta.expressions),
    }));
  }

  /**
   * The first few names (or host/path prefixes) of one category of the version in use, read from the start of its file (a
   * guided filtering check needs a handful of real addresses to try, never the whole list).
   */
  entriesHead(sourceId: string, file: string, kind: 'domains' | 'urls', count: number, maxBytes = 65_536): string[] {
    const version = this.current(sourceId);
    if (!version || !/^[0-9]+$/.test(file) || count <= 0) return [];
    const target = path.join(this.dir(sourceId), version, `${file}.${kind}`);
    if (!existsSync(target)) return [];
    const fd = openSync(target, 'r');
    try {
      const buffer = Buffer.alloc(maxBytes);
      const read = readSync(fd, buffer, 0, maxBytes, 0);
      const lines = buffer.subarray(0, read).toString('utf8').split('\n');
      if (read === maxBytes) lines.pop(); // the last line may be cut short
      return lines.map((l) => l.trim()).filter(Boolean).slice(0, count);
    } finally {
      closeSync(fd);
    }
  }

  workFolder(sourceId: string): string {
    const dir = path.join(this.dir(sourceId), 'download');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}

// --- Fetching and parsing ---------------------------------------------------------------------------

/** Do these bytes start with gzip's magic number? */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The first two bytes of a file, without reading the rest (an archive may be hundreds of megabytes). */
function firstBytes(file: string): Buffer {
  const head = Buffer.alloc(2);
  const fd = openSync(file, 'r');
  try {
    return head.subarray(0, readSync(fd, head, 0, 2, 0));
  } finally {
    closeSync(fd);
  }
}

const gunzipAsync = promisify(gunzip);

/** A plain list's bytes, gunzipped when they are gzip, no larger than one file may be once unpacked. */
async function unpackPlain(raw: Buffer, limits: FetchLimits): Promise<Buffer> {
  if (!isGzip(raw)) return raw;
  const cap = Math.min(limits.maxFileBytes, limits.maxUnpackedBytes);
  try {
    return await gunzipAsync(raw, { maxOutputLength: cap });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) throw new ListSourceError(`the list unpacks to more than ${describeBytes(cap)}, the limit`);
    throw new ListSourceError('the gzip data is damaged');
  }
}

/** Counts what a list holds so far, and stops past the limit. */
function entryCounter(limits: FetchLimits) {
  let total = 0;
  return (n: number) => {
    total += n;
    if (total > limits.maxListEntries) throw new ListSourceError(`the list has more than ${limits.maxListEntries.toLocaleString('en-GB')} entries, the limit`);
  };
}

/**
 * A UT1 folder, read inside `root` (the list folder's real path, or the folder an archive was
 * unpacked into): every entry checked first (checkUt1Tree), every file read through readConfined.
 */
function parseUt1(folder: string, root: string, bytes: number, limits: FetchLimits): ParsedSource {
  // An archive holds one top folder (blacklists/); a folder source is the category folder itself.
  let top = folder;
  const entries = readdirSync(top, { withFileTypes: true });
  if (!existsSync(path.join(top, 'global_usage')) && entries.length === 1 && entries[0]!.isDirectory()) top = path.join(top, entries[0]!.name);
  checkUt1Tree(top, root);
  let read = 0;
  const text = (file: string) => {
    const data = readConfined(file, root, limits.maxFileBytes, path.relative(top, file));
    read += data.length;
    if (read > limits.maxUnpackedBytes) throw new ListSourceError(`the UT1 folder holds more than ${describeBytes(limits.maxUnpackedBytes)} of lists, the limit`);
    return data.toString('utf8');
  };
  // UT1's whitelists (liste_blanche…) and exception lists are not categories to block (docs/filtering.md).
  const categories = readUt1Folder(top, text).filter(isBlockCategory);
  if (categories.length === 0) throw new ListSourceError('no UT1 categories found (folders holding a domains or urls file)');
  const count = entryCounter(limits);
  let rejected = 0;
  let size = bytes;
  const out: ParsedSource['categories'] = [];
  for (const c of categories) {
    const domainsText = c.domainsFile ? text(c.domainsFile) : '';
    const urlsText = c.urlsFile ? text(c.urlsFile) : '';
    const expressionsText = c.expressionsFile ? text(c.expressionsFile) : '';
    if (bytes === 0) size += domainsText.length + urlsText.length + expressionsText.length;
    const parsed = parseList(domainsText, 'domains');
    const urls = parseUrlList(urlsText);
    // A pattern RE2 cannot compile is left out here (counted), so it never stops the snapshot compiling.
    const lines = expressionsText.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const expressions = lines.filter(validPattern);
    count(parsed.domains.length + urls.urls.length + expressions.length);
    rejected += parsed.rejectedCount + urls.rejectedCount + lines.length - expressions.length;
    out.push({ folder: c.id, name: c.name, description: c.description, domains: parsed.domains, urls: urls.urls, expressions });
  }
  return { categories: out, rejected, bytes: size };
}

function validPattern(pattern: string): boolean {
  try {
    RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
    return true;
  } catch {
    return false;
  }
}

/** What a line of each format should be, for messages. */
const formatWords: Record<ListFormat, string> = {
  domains: 'a domain name or an address',
  hosts: 'a hosts-file line (an address, then names)',
  adblock: 'a domain name, an address or an adblock rule',
};

/**
 * A plain list's text, parsed and checked. The errors give counts and line numbers only, never a
 * line's text: a location that points at a secret must not show it (issue 10, finding 1).
 */
export function parseText(text: string, source: Pick<Source, 'format' | 'name' | 'description'>, bytes: number, limits: Pick<FetchLimits, 'maxListEntries'> = defaultLimits): ParsedSource {
  const format = source.format as ListFormat;
  const parsed = parseList(text, format);
  const what = formatWords[format] ?? formatWords.domains;
  if (parsed.lines === 0) throw new ListSourceError('the list is empty (no lines other than comments)');
  const first = parsed.rejected[0];
  if (parsed.domains.length === 0) throw new ListSourceError(`${first ? `line ${first} is not ${what}; ` : ''}0 of ${parsed.lines.toLocaleString('en-GB')} line${parsed.lines === 1 ? ' was' : 's were'} usable`);
  if (parsed.rejectedCount > parsed.domains.length) throw new ListSourceError(`most entries are not ${what}: ${parsed.rejectedCount.toLocaleString('en-GB')} refused, ${parsed.domains.length.toLocaleString('en-GB')} usable, in ${parsed.lines.toLocaleString('en-GB')} lines${first ? ` (the first refused on line ${first})` : ''}`);
  const domains = [...new Set(parsed.domains)];
  entryCounter({ ...defaultLimits, ...limits })(domains.length);
  return { categories: [{ folder: null, name: source.name, description: source.description ?? '', domains, urls: [], expressions: [] }], rejected: parsed.rejectedCount, bytes };
}

/**
 * Reads a source from wherever it is into parsed lists (no database, no swap). The location is
 * checked here, at every fetch, whatever was checked when it was saved: an address is resolved,
 * checked and pinned at each hop; a path must still lead inside the list folder.
 */
export async function readSource(source: Source, store: ListStore, limits: FetchLimits, origins: ListOrigins): Promise<ParsedSource> {
  const loc = source.location;
  if (loc === null) throw new ListSourceError('a list edited in the console is not fetched');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(loc)) {
    const work = store.workFolder(source.id);
    try {
      const file = path.join(work, 'download');
      const bytes = await downloadList(loc, file, origins, limits);
      if (source.format === 'ut1') {
        if (!isGzip(firstBytes(file))) throw new ListSourceError('the address did not give a .tar.gz archive');
        const unpacked = path.join(work, 'unpacked');
        // The reader's own error (a limit passed) rather than the abort it causes upstream.
        let stopped: unknown;
        try {
          await pipeline(createReadStream(file), createGunzip(), async (stream: AsyncIterable<Buffer>) => {
            try {
              await extractTar(stream, unpacked, { maxBytes: limits.maxUnpackedBytes, maxEntries: limits.maxArchiveEntries, maxEntryBytes: limits.maxFileBytes, want: (name) => /(^|\/)(global_usage|domains|urls|expressions|usage)$/.test(name) });
            } catch (error) {
              stopped = error;
              throw error;
            }
          });
        } catch (error) {
          throw stopped ?? error;
        }
        return parseUt1(unpacked, realpathSync(unpacked), bytes, limits);
      }
      const raw = await unpackPlain(readConfined(file, realpathSync(work), limits.maxDownloadBytes, 'the download'), limits);
      return parseText(raw.toString('utf8'), source, bytes, limits);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const local = confineLocal(loc, origins.folder);
  if (source.format === 'ut1') {
    if (!local.directory) throw new ListSourceError(`${loc} is a file: a UT1 list on this server is the folder holding the category folders`);
    return parseUt1(local.real, local.folder, 0, limits);
  }
  if (local.directory) throw new ListSourceError(`${loc} is a folder: give the list file itself`);
  const raw = readConfined(local.real, local.folder, limits.maxFileBytes, loc);
  return parseText((await unpackPlain(raw, limits)).toString('utf8'), source, raw.length, limits);
}

/**
 * Why a fetch failed, in words safe to store, log and audit: the messages of this module's own
 * checks (which never quote content), else only the kind of error (a system error's code).
 */
export function fetchErrorMessage(error: unknown): string {
  if (error instanceof ListSourceError || error instanceof TarError) return error.message.slice(0, 500);
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) return 'the gzip data is damaged';
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return `the list could not be read (${e.code})`;
  return `the list could not be read (${e?.name ?? 'error'})`;
}

export type FetchOutcome =
  | { status: 'updated'; entries: number; previous: number }
  | { status: 'held'; entries: number; previous: number }
  | { status: 'failed'; error: string };

/**
 * Fetches one source, checks it, and swaps it in — or holds it back when it shrank by more than half
 * of what is in use, or records why it failed (the list in use stays). Audited either way.
 */
export async function fetchSource(rt: Runtime, store: ListStore, sourceId: string, limits: FetchLimits = defaultLimits, actor: Actor = { id: null, name: 'system', role: null }, origins?: ListOrigins): Promise<FetchOutcome> {
  const source = await loadSource(rt, sourceId);
  if (source.location === null) return { status: 'updated', entries: source.entries, previous: source.entries };
  let parsed: ParsedSource;
  try {
    parsed = await readSource(source, store, limits, origins ?? listOrigins(rt.config));
  } catch (error) {
    const message = fetchErrorMessage(error);
    await rt.trail.transaction(actor, async (ctx) => {
      const now = ctx.clock.now().toISOString();
      await ctx.db.updateTable('filter_list_source').set({ last_fetched_at: now, last_result: 'error', last_error: message }).where('id', '=', sourceId).execute();
      await ctx.audit.record({ action: 'filtering.list_update_failed', target: `filter_list:${sourceId}`, severity: source.kind === 'illegal' ? 'high' : 'warning', details: { name: source.name, error: message } });
    });
    return { status: 'failed', error: message };
  }
  const now = rt.clock.now();
  const manifest = store.write(sourceId, parsed, now);
  const previous = source.current_at ? source.entries : 0;
  const shrank = previous > 0 && manifest.entries < previous / 2;
  if (shrank) {
    const stale = source.held_version;
    await rt.trail.transaction(actor, async (ctx) => {
      await ctx.db
        .updateTable('filter_list_source')
        .set({ last_fetched_at: now.toISOString(), last_result: 'held', last_error: null, held_at: now.toISOString(), held_entries: manifest.entries, held_version: manifest.version })
        .where('id', '=', sourceId)
        .execute();
      await ctx.audit.record({ action: 'filtering.list_update_held', target: `filter_list:${sourceId}`, severity: 'warning', details: { name: source.name, entries: manifest.entries, inUse: previous } });
    });
    if (stale && stale !== manifest.version) store.discard(sourceId, stale);
    return { status: 'held', entries: manifest.entries, previous };
  }
  await swapIn(rt, store, source, manifest, actor, 'filtering.list_updated');
  return { status: 'updated', entries: manifest.entries, previous };
}

/** Puts a written version in use: files first (rename), then categories and counts in one transaction. */
async function swapIn(rt: Runtime, store: ListStore, source: Source, manifest: Manifest, actor: Actor, action: string, meta?: Meta): Promise<void> {
  const stale = source.held_version && source.held_version !== manifest.version ? source.held_version : null;
  store.activate(source.id, manifest.version);
  if (stale) store.discard(source.id, stale);
  await rt.trail.transaction(actor, async (ctx) => {
    const now = ctx.clock.now().toISOString();
    const others = new Set(
      [
        ...(await ctx.db.selectFrom('filter_category').select('id').where('source_id', '!=', source.id).execute()).map((r) => r.id),
        ...(await ctx.db.selectFrom('filter_list_source').select('slug').where('id', '!=', source.id).execute()).map((r) => r.slug),
      ],
    );
    await ctx.db.deleteFrom('filter_category').where('source_id', '=', source.id).execute();
    const rows = categoryIds(source, manifest.categories, others).map(({ id, meta: c }) => ({ id, source_id: source.id, name: c.name, description: c.description, kind: source.kind, domains: c.domains, urls: c.urls + c.expressions, updated_at: now }));
    for (let i = 0; i < rows.length; i += 200) await ctx.db.insertInto('filter_category').values(rows.slice(i, i + 200)).execute();
    await ctx.db
      .updateTable('filter_list_source')
      .set({ last_fetched_at: manifest.fetchedAt, last_result: 'ok', last_error: null, current_at: manifest.fetchedAt, entries: manifest.entries, bytes: manifest.bytes, category_count: manifest.categories.length, held_at: null, held_entries: null, held_version: null, updated_at: now })
      .where('id', '=', source.id)
      .execute();
    await bumpGeneration(ctx.db, 'policy');
    await ctx.audit.record({ action, target: `filter_list:${source.id}`, severity: action === 'filtering.list_updated' ? 'info' : 'notice', details: { name: source.name, entries: manifest.entries, categories: manifest.categories.length, previous: source.current_at ? source.entries : 0 } });
  }, meta);
}

/** Category ids: a single list's is its slug; a UT1 folder keeps its name unless another list has it. */
export function categoryIds(source: Pick<Source, 'slug'>, categories: ManifestCategory[], taken: Set<string>): Array<{ id: string; meta: ManifestCategory }> {
  return categories.map((meta) => ({ id: meta.folder === null ? source.slug : taken.has(meta.folder) ? `${source.slug}.${meta.folder}` : meta.folder, meta }));
}

/** An administrator accepts an update that was held for shrinking (audited). */
export async function confirmHeldUpdate(rt: Runtime, store: ListStore, actor: Actor, sourceId: string, meta: Meta): Promise<SourceSummary> {
  const source = await loadSource(rt, sourceId);
  if (!source.held_at) throw conflict(`“${source.name}” has no update waiting.`, 'nothing_held');
  const manifest = store.has(sourceId, source.held_version) ? store.manifest(sourceId, source.held_version) : null;
  if (manifest) {
    await swapIn(rt, store, source, manifest, actor, 'filtering.list_update_confirmed', meta);
  } else {
    // Held by another node: accept its size as the new baseline; each node's next fetch swaps it in.
    await rt.trail.transaction(actor, async (ctx) => {
      await ctx.db.updateTable('filter_list_source').set({ entries: source.held_entries ?? 0, held_at: null, held_entries: null, held_version: null, last_fetched_at: null }).where('id', '=', sourceId).execute();
      await ctx.audit.record({ action: 'filtering.list_update_confirmed', target: `filter_list:${sourceId}`, severity: 'notice', details: { name: source.name, entries: source.held_entries, previous: source.entries, fetchAgain: true } });
    }, meta);
  }
  return summariseSource(await loadSource(rt, sourceId), rt.clock.now(), rt.profile.filtering.staleAfterSchedules);
}

/** An administrator refuses a held update: the list in use stays (audited). */
export async function rejectHeldUpdate(rt: Runtime, store: ListStore, actor: Actor, sourceId: string, meta: Meta): Promise<SourceSummary> {
  const source = await loadSource(rt, sourceId);
  if (!source.held_at) throw conflict(`“${source.name}” has no update waiting.`, 'nothing_held');
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.updateTable('filter_list_source').set({ held_at: null, held_entries: null, held_version: null, last_result: 'refused' }).where('id', '=', sourceId).execute();
    await ctx.audit.record({ action: 'filtering.list_update_refused', target: `filter_list:${sourceId}`, severity: 'notice', details: { name: source.name, entries: source.held_entries, inUse: source.entries } });
  }, meta);
  if (source.held_version && store.has(sourceId, source.held_version)) store.discard(sourceId, source.held_version);
  return summariseSource(await loadSource(rt, sourceId), rt.clock.now(), rt.profile.filtering.staleAfterSchedules);
}

/** Every enabled source's categories as engine input: fetched ones from disk, the school's own from the database. */
export async function loadCategories(rt: Runtime, store: ListStore): Promise<{ categories: CategoryInput[]; missing: string[] }> {
  const sources = await rt.db.kysely.selectFrom('filter_list_source').selectAll().where('enabled', '=', 1).orderBy('created_at').orderBy('id').execute();
  const categoryRows = await rt.db.kysely.selectFrom('filter_category').select(['id', 'source_id', 'name', 'description']).execute();
  const idsBySource = new Map<string, Set<string>>();
  for (const c of categoryRows) {
    if (!idsBySource.has(c.source_id)) idsBySource.set(c.source_id, new Set());
    idsBySource.get(c.source_id)!.add(c.id);
  }
  const categories: CategoryInput[] = [];
  const missing: string[] = [];
  const used = new Set<string>();
  for (const source of sources) {
    const kind = source.kind as CategoryKind;
    if (source.location === null) {
      const entries = await rt.db.kysely.selectFrom('filter_list_entry').select('host').where('source_id', '=', source.id).execute();
      categories.push({ id: source.slug, name: source.name, description: source.description ?? '', kind, domains: entries.map((e) => e.host) });
      used.add(source.slug);
      continue;
    }
    const lists = store.read(source.id);
    if (!lists) {
      missing.push(source.id);
      continue;
    }
    const others = new Set([...categoryRows.filter((c) => c.source_id !== source.id).map((c) => c.id), ...sources.filter((s) => s.id !== source.id).map((s) => s.slug)]);
    const ids = categoryIds(source, lists.map((l) => l.meta), others);
    lists.forEach((l, i) => {
      let id = ids[i]!.id;
      if (used.has(id)) id = `${source.slug}.${id}`;
      used.add(id);
      categories.push({ id, name: l.meta.name, description: l.meta.description, kind, domains: l.domains, urls: l.urls, expressions: l.expressions });
    });
  }
  return { categories, missing };
}

// --- What needs attention ------------------------------------------------------------------------

export const filteringDue: DueProvider = async (rt) => {
  const rows = await rt.db.kysely.selectFrom('filter_list_source').selectAll().where('enabled', '=', 1).execute();
  const now = rt.clock.now();
  const items: DueItem[] = [];
  // FI-04: lists kept up to date and a stale one noticed; an illegal-content list out of date is FI-03's gap too.
  const base = { href: '/filtering/lists', requirement: 'FI-04', permission: 'filtering.read' as const };
  for (const row of rows) {
    if (row.held_at) {
      items.push({ ...base, kind: 'filter_list_held', title: `An update to the list “${row.name}” is held back: it shrank from ${row.entries.toLocaleString('en-GB')} to ${(row.held_entries ?? 0).toLocaleString('en-GB')} entries`, detail: 'A list that loses more than half its entries is not used until an administrator confirms the update is right.', dueAt: row.held_at, overdue: true });
    }
    if (isStale(row, now, rt.profile.filtering.staleAfterSchedules)) {
      const age = row.current_at ? `was last updated ${describeAge(now.getTime() - Date.parse(row.current_at))} ago` : 'has never been fetched';
      items.push({ ...base, requirement: row.kind === 'illegal' ? 'FI-03' : 'FI-04', kind: 'filter_list_stale', title: `The list “${row.name}” is out of date: it ${age}`, detail: `It should update every ${row.schedule_hours} hours.${row.last_error ? ` Last attempt: ${row.last_error}` : ''}`, dueAt: row.current_at, overdue: true });
    } else if (row.last_result === 'error' && !row.held_at) {
      items.push({ ...base, kind: 'filter_list_failed', title: `The last update of the list “${row.name}” failed`, detail: `${row.last_error ?? ''} The list in use stays until an update succeeds.`, dueAt: row.last_fetched_at, overdue: false });
    }
  }
  return items;
};

export function describeAge(ms: number): string {
  const hours = Math.floor(ms / 3_600_000);
  if (hours < 1) return `${Math.max(1, Math.floor(ms / 60_000))} minutes`;
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}
