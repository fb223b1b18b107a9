import { isIP, isIPv4 } from 'node:net';
import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import { apiTokenNameSchema, apiTokens, summariseApiToken, type ApiTokenSummary } from '../core/api-tokens.js';
import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import { badRequest, conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { localTimeOnSameDay, startOfLocalDay } from '../core/local-time.js';
import type { FilterDeviceTable, Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import type { ClientIdentity, IdentifiedBy } from './point.js';
import { listPolicies, policyForPerson, UNKNOWN_POLICY } from './policies.js';
import { ipv4ToNumber, ipv6ToBigInt } from './standalone.js';
import { bumpGeneration } from './state.js';

/**
 * Who is at a network address (FI-01, FI-02, FI-05). Three sources, in this order:
 *  1. a current mapping of the address to a person (or a device): a sign-in at the captive page
 *     (/connect), a post to the identity API (RADIUS accounting, a device agent), or proxy
 *     authentication — the newest mapping wins;
 *  2. a registered device whose address or network contains it (the most specific network first);
 *  3. nobody: the unknown-device policy.
 * A device registered by MAC address is found when the identity API posts the address with the MAC
 * (from DHCP or RADIUS): Gatehouse cannot see MAC addresses behind a router itself.
 *
 * `IdentityIndex` holds all of it in memory (Maps and a short list of networks), rebuilt on change;
 * the hot path never touches the database.
 */

type Meta = { ip: string | null; requestId: string | null };

/** "::ffff:10.0.0.1" (an IPv4 client on a dual-stack socket) → "10.0.0.1". */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip.toLowerCase();
}

const MAC = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;
export const normaliseMac = (mac: string) => mac.toLowerCase().replace(/-/g, ':');

function checkAddress(address: string): string {
  const [ip, bits, extra] = address.trim().split('/');
  if (extra !== undefined || !ip || !isIP(ip)) throw badRequest(`“${address}” is not an IP address or a network like 10.1.2.0/24.`);
  if (bits === undefined) return plainIp(ip);
  const max = isIPv4(ip) ? 32 : 128;
  const n = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || n < 1 || n > max) throw badRequest(`“${address}”: the network size after / must be between 1 and ${max}.`);
  return `${plainIp(ip)}/${n}`;
}

// --- Devices --------------------------------------------------------------------------------------

export const deviceSchema = z
  .object({
    name: z.string().trim().min(1, 'is required').max(100),
    address: z.string().trim().max(60).nullable().optional(),
    mac: z
      .string()
      .trim()
      .regex(MAC, 'must be a MAC address like 00:11:22:aa:bb:cc')
      .nullable()
      .optional(),
    policyId: z.string().min(1, 'is required').max(100),
    note: z.string().trim().max(300).nullable().optional(),
  })
  .strict();

export interface DeviceSummary {
  id: string;
  name: string;
  address: string | null;
  mac: string | null;
  policyId: string;
  note: string | null;
  createdAt: string;
  updatedAt: string;
}

const device = (r: Selectable<FilterDeviceTable>): DeviceSummary => ({ id: r.id, name: r.name, address: r.address, mac: r.mac, policyId: r.policy_id, note: r.note, createdAt: r.created_at, updatedAt: r.updated_at });

export async function listDevices(db: Kysely<Schema>): Promise<DeviceSummary[]> {
  return (await db.selectFrom('filter_device').selectAll().orderBy('name').execute()).map(device);
}

async function checkDevice(rt: Runtime, input: z.infer<typeof deviceSchema>): Promise<{ address: string | null; mac: string | null }> {
  const address = input.address ? checkAddress(input.address) : null;
  const mac = input.mac ? normaliseMac(input.mac) : null;
  if (!address && !mac) throw badRequest('Give the device’s IP address (or network) or its MAC address.');
  const policies = await listPolicies(rt);
  if (!policies.some((p) => p.id === input.policyId)) throw badRequest('Choose one of the filtering policies for the device.');
  return { address, mac };
}

export async function saveDevice(rt: Runtime, actor: Actor, id: string | null, input: z.infer<typeof deviceSchema>, meta: Meta): Promise<DeviceSummary> {
  const { address, mac } = await checkDevice(rt, input);
  const deviceId = id ?? newId();
  await rt.trail.transaction(actor, async (ctx) => {
    const clash = await ctx.db.selectFrom('filter_device').select('id').where('name', '=', input.name).where('id', '!=', deviceId).executeTakeFirst();
    if (clash) throw conflict(`There is already a device called “${input.name}”.`, 'device_exists');
    const now = ctx.clock.now().toISOString();
    const values = { name: input.name, address, mac, policy_id: input.policyId, note: input.note ?? null, updated_at: now };
    if (id) {
      const result = await ctx.db.updateTable('filter_device').set(values).where('id', '=', id).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw notFound('There is no such device.');
    } else {
      await ctx.db.insertInto('filter_device').values({ id: deviceId, ...values, created_at: now }).execute();
    }
    await bumpGeneration(ctx.db, 'identity');
    await ctx.audit.record({ action: id ? 'filtering.device_changed' : 'filtering.device_added', target: `filter_device:${deviceId}`, severity: 'notice', details: { name: input.name, address, mac, policy: input.policyId } });
  }, meta);
  return device(await rt.db.kysely.selectFrom('filter_device').selectAll().where('id', '=', deviceId).executeTakeFirstOrThrow());
}

export async function deleteDevice(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<void> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('filter_device').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such device.');
    await ctx.db.deleteFrom('filter_device').where('id', '=', id).execute();
    await bumpGeneration(ctx.db, 'identity');
    await ctx.audit.record({ action: 'filtering.device_removed', target: `filter_device:${id}`, severity: 'notice', details: { name: row.name, address: row.address, mac: row.mac } });
  }, meta);
}

// --- Mappings: captive sign-in, the identity API, proxy authentication ------------------------------

export interface MappingSummary {
  id: string;
  ip: string;
  personId: string | null;
  username: string | null;
  deviceId: string | null;
  deviceName: string | null;
  mac: string | null;
  via: string;
  reportedBy: string;
  startedAt: string;
  expiresAt: string;
}

/** Mappings not ended nor expired at `now`, newest first, with their person and device joined (m, a, d). */
function currentMappingRows(db: Kysely<Schema>, now: Date) {
  return db
    .selectFrom('filter_identity as m')
    .leftJoin('account as a', 'a.id', 'm.account_id')
    .leftJoin('filter_device as d', 'd.id', 'm.device_id')
    .where('m.ended_at', 'is', null)
    .where('m.expires_at', '>', now.toISOString())
    .orderBy('m.started_at', 'desc');
}

/** The current mappings as summaries; `narrow` picks some of them in the query (one id, one address). */
async function mappingSummaries(db: Kysely<Schema>, now: Date, narrow: (q: ReturnType<typeof currentMappingRows>) => ReturnType<typeof currentMappingRows> = (q) => q): Promise<MappingSummary[]> {
  const rows = await narrow(currentMappingRows(db, now))
    .select(['m.id', 'm.ip', 'm.account_id', 'a.username', 'm.device_id', 'd.name as device_name', 'm.mac', 'm.via', 'm.reported_by', 'm.started_at', 'm.expires_at'])
    .execute();
  return rows.map((r) => ({ id: r.id, ip: r.ip, personId: r.account_id, username: r.username ?? null, deviceId: r.device_id, deviceName: r.device_name ?? null, mac: r.mac, via: r.via, reportedBy: r.reported_by, startedAt: r.started_at, expiresAt: r.expires_at }));
}

export async function currentMappings(db: Kysely<Schema>, now: Date): Promise<MappingSummary[]> {
  return mappingSummaries(db, now);
}

/** The end of the school day for a captive sign-in: the profile's time today, or midnight once past it. */
export function captiveExpiry(now: Date, rt: Pick<Runtime, 'profile'>): Date {
  const until = localTimeOnSameDay(now, rt.profile.filtering.captiveUntil, rt.profile.timeZone);
  if (until > now) return until;
  return startOfLocalDay(new Date(startOfLocalDay(now, rt.profile.timeZone).getTime() + 36 * 3_600_000), rt.profile.timeZone);
}

async function startMapping(rt: Runtime, actor: Actor, input: { ip: string; accountId: string | null; deviceId: string | null; mac: string | null; via: IdentifiedBy; reportedBy: string; expiresAt: Date }, meta: Meta, details: Record<string, unknown>): Promise<MappingSummary> {
  const ip = plainIp(input.ip);
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    const now = ctx.clock.now().toISOString();
    // One mapping per address: a new sign-in there replaces the old one.
    await ctx.db.updateTable('filter_identity').set({ ended_at: now }).where('ip', '=', ip).where('ended_at', 'is', null).execute();
    await ctx.db
      .insertInto('filter_identity')
      .values({ id, ip, account_id: input.accountId, device_id: input.deviceId, mac: input.mac, via: input.via, reported_by: input.reportedBy, started_at: now, expires_at: input.expiresAt.toISOString(), ended_at: null })
      .execute();
    await bumpGeneration(ctx.db, 'identity');
    await ctx.audit.record({ action: 'filtering.identity_started', target: `filter_identity:${id}`, severity: 'info', details: { ip, via: input.via, ...details, until: input.expiresAt.toISOString() } });
  }, meta);
  return (await mappingSummaries(rt.db.kysely, rt.clock.now(), (q) => q.where('m.id', '=', id)))[0]!;
}

async function endMappings(rt: Runtime, actor: Actor, ip: string, accountId: string | null, via: string, meta: Meta): Promise<number> {
  const address = plainIp(ip);
  let ended = 0;
  await rt.trail.transaction(actor, async (ctx) => {
    let q = ctx.db.updateTable('filter_identity').set({ ended_at: ctx.clock.now().toISOString() }).where('ip', '=', address).where('ended_at', 'is', null);
    if (accountId) q = q.where('account_id', '=', accountId);
    ended = Number((await q.executeTakeFirst()).numUpdatedRows);
    if (ended === 0) return;
    await bumpGeneration(ctx.db, 'identity');
    await ctx.audit.record({ action: 'filtering.identity_ended', target: `ip:${address}`, severity: 'info', details: { ip: address, via, ended } });
  }, meta);
  return ended;
}

/** FI-02: a person signed in at the captive page; their device's address is theirs until the end of the school day. */
export async function connectAtCaptivePage(rt: Runtime, actor: Actor, ip: string, meta: Meta): Promise<MappingSummary> {
  if (!actor.id) throw badRequest('Sign in first.');
  if (!isIP(plainIp(ip))) throw badRequest('Your device’s address could not be read.');
  return startMapping(rt, actor, { ip, accountId: actor.id, deviceId: null, mac: null, via: 'captive', reportedBy: `captive:${actor.name}`, expiresAt: captiveExpiry(rt.clock.now(), rt) }, meta, { username: actor.name });
}

export async function disconnectAtCaptivePage(rt: Runtime, actor: Actor, ip: string, meta: Meta): Promise<number> {
  return endMappings(rt, actor, ip, actor.id, 'captive', meta);
}

export async function myConnection(rt: Runtime, accountId: string, ip: string): Promise<MappingSummary | null> {
  const address = plainIp(ip);
  return (await mappingSummaries(rt.db.kysely, rt.clock.now(), (q) => q.where('m.ip', '=', address).where('m.account_id', '=', accountId)))[0] ?? null;
}

/** A device's address as an API caller gives it: IPv4 or IPv6 (an IPv4-mapped IPv6 one too). */
export const ipAddressSchema = z
  .string()
  .trim()
  .refine((v) => v.length <= 64 && isIP(plainIp(v)) !== 0, 'must be an IPv4 or IPv6 address, like 10.1.20.15 or 2001:db8::15');

export const identityPostSchema = z
  .object({
    ip: ipAddressSchema,
    event: z.enum(['start', 'stop']).default('start'),
    username: z.string().trim().min(1).max(64).optional(),
    personId: z.uuid('must be a person id').optional(),
    mac: z.string().trim().regex(MAC, 'must be a MAC address like 00:11:22:aa:bb:cc').optional(),
    minutes: z.number().int().min(1).max(7 * 24 * 60).default(12 * 60),
  })
  .strict();

/** FI-01: RADIUS accounting or a device agent says who (or which registered device) is at an address. */
export async function postIdentity(rt: Runtime, client: { id: string; name: string }, input: z.infer<typeof identityPostSchema>, meta: Meta): Promise<{ status: 'started' | 'stopped'; mapping: MappingSummary | null; ended: number }> {
  const actor: Actor = { id: null, name: `identity:${client.name}`, role: null };
  if (input.event === 'stop') return { status: 'stopped', mapping: null, ended: await endMappings(rt, actor, input.ip, null, 'api', meta) };
  let accountId: string | null = null;
  let username: string | null = null;
  if (input.username || input.personId) {
    let q = rt.db.kysely.selectFrom('account').select(['id', 'username', 'status']);
    q = input.personId ? q.where('id', '=', input.personId) : q.where('username', '=', input.username!.toLowerCase());
    const person = await q.executeTakeFirst();
    if (!person || person.status !== 'active') throw notFound(`No active person ${input.username ?? input.personId} in Gatehouse.`);
    accountId = person.id;
    username = person.username;
  }
  const mac = input.mac ? normaliseMac(input.mac) : null;
  let deviceId: string | null = null;
  let deviceName: string | null = null;
  if (mac) {
    const d = await rt.db.kysely.selectFrom('filter_device').select(['id', 'name']).where('mac', '=', mac).executeTakeFirst();
    if (d) {
      deviceId = d.id;
      deviceName = d.name;
    }
  }
  if (!accountId && !deviceId) throw badRequest(mac ? `No registered device has the MAC address ${mac}; give a username or register the device.` : 'Give a username, a person id or the MAC address of a registered device.');
  const expiresAt = new Date(rt.clock.now().getTime() + input.minutes * 60_000);
  const mapping = await startMapping(rt, actor, { ip: input.ip, accountId, deviceId, mac, via: 'api', reportedBy: client.name, expiresAt }, meta, { username, device: deviceName, mac });
  return { status: 'started', mapping, ended: 0 };
}

/** FI-01: a person the proxy authenticated; remembered for the address so DNS filtering follows them too. */
export async function recordProxyUser(rt: Runtime, ip: string, accountId: string, username: string, minutes: number): Promise<void> {
  await startMapping(rt, { id: accountId, name: username, role: null }, { ip, accountId, deviceId: null, mac: null, via: 'proxy-auth', reportedBy: 'proxy', expiresAt: new Date(rt.clock.now().getTime() + minutes * 60_000) }, { ip, requestId: null }, { username });
}

// --- Identity API tokens (core/api-tokens.ts, as SCIM's) ---------------------------------------------

export const IDENTITY_TOKEN_PREFIX = 'gfid_';
export const newIdentityTokenSchema = z.object({ name: apiTokenNameSchema }).strict();

export type IdentityTokenSummary = ApiTokenSummary;

const identityTokens = apiTokens({
  table: 'filter_identity_token',
  prefix: IDENTITY_TOKEN_PREFIX,
  noun: 'token',
  nameTakenCode: 'identity_token_exists',
  audit: { created: 'filtering.identity_token_created', revoked: 'filtering.identity_token_revoked' },
});

export async function listIdentityTokens(db: Kysely<Schema>): Promise<IdentityTokenSummary[]> {
  return (await identityTokens.list(db)).map(summariseApiToken);
}

export async function createIdentityToken(rt: Runtime, actor: Actor, input: z.infer<typeof newIdentityTokenSchema>, meta: Meta): Promise<{ token: IdentityTokenSummary; secret: string }> {
  const { row, secret } = await identityTokens.create(rt, actor, { name: input.name }, meta);
  return { token: summariseApiToken(row), secret };
}

export async function revokeIdentityToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<IdentityTokenSummary> {
  return summariseApiToken(await identityTokens.revoke(rt, actor, id, meta));
}

/**
 * Undoes an emergency revocation (issue 11: a rolled-back change restores what was before): the
 * token works again, unless another token in use has taken its name meanwhile.
 */
export async function restoreIdentityToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<IdentityTokenSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('filter_identity_token').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such token.');
    if (!row.revoked_at) return;
    const clash = await ctx.db.selectFrom('filter_identity_token').select('id').where('name', '=', row.name).where('revoked_at', 'is', null).executeTakeFirst();
    if (clash) throw conflict(`Another token called “${row.name}” is in use now: revoke it first.`, 'identity_token_exists');
    await ctx.db.updateTable('filter_identity_token').set({ revoked_at: null }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'filtering.identity_token_restored', target: `filter_identity_token:${id}`, severity: 'notice', details: { name: row.name } });
  }, meta);
  const row = await rt.db.kysely.selectFrom('filter_identity_token').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return summariseApiToken(row);
}

/** The system a bearer token belongs to (looked up by SHA-256), or undefined. */
export async function authenticateIdentityToken(db: Kysely<Schema>, clock: Clock, secret: string): Promise<{ id: string; name: string } | undefined> {
  const row = await identityTokens.authenticate(db, clock, secret);
  return row ? { id: row.id, name: row.name } : undefined;
}

// --- The in-memory index ----------------------------------------------------------------------------

// Addresses become numbers as the policy file's client ranges do (standalone.ts).
interface Network {
  /** IPv4 as an unsigned 32-bit number, or null for IPv6 (compared by BigInt) */
  v4: number | null;
  v6: bigint | null;
  bits: number;
  identity: ClientIdentity;
}

export interface IdentitySnapshotInput {
  mappings: Array<{ ip: string; personId: string | null; username: string | null; role: Role | null; groupIds: string[]; deviceId: string | null; deviceName: string | null; devicePolicy: string | null; via: string; expiresAt: number }>;
  devices: Array<{ id: string; name: string; address: string | null; policyId: string }>;
  people: Array<{ id: string; username: string; role: Role; groupIds: string[] }>;
  groupPolicies: Map<string, { id: string; priority: number; name: string }>;
}

/**
 * Everything `identify()` needs, built aside and swapped in whole. Identities are made once here and
 * returned as they are; their policy index belongs to the snapshot they were built with.
 */
export class IdentityIndex {
  private readonly byIp = new Map<string, { identity: ClientIdentity; expiresAt: number }>();
  private readonly deviceByIp = new Map<string, ClientIdentity>();
  private readonly networks: Network[] = [];
  private readonly byUser = new Map<string, ClientIdentity>();
  private readonly cache = new Map<string, ClientIdentity>();
  readonly unknown: ClientIdentity;
  private readonly policyOfPerson = new Map<string, string>();

  constructor(input: IdentitySnapshotInput, indexOf: (policyId: string) => number) {
    const make = (policyId: string, via: IdentifiedBy, extra: Partial<ClientIdentity> = {}): ClientIdentity => {
      let index: number;
      try {
        index = indexOf(policyId);
      } catch {
        policyId = UNKNOWN_POLICY;
        index = indexOf(UNKNOWN_POLICY);
      }
      return { policyId, policyIndex: index, deviceId: null, deviceName: null, personId: null, username: null, via, ...extra };
    };
    this.unknown = make(UNKNOWN_POLICY, 'unknown');
    for (const p of input.people) {
      const policyId = policyForPerson(p.role, p.groupIds, input.groupPolicies);
      this.policyOfPerson.set(p.id, policyId);
      this.byUser.set(p.username, make(policyId, 'proxy-auth', { personId: p.id, username: p.username }));
    }
    for (const d of input.devices) {
      if (!d.address) continue;
      const identity = make(d.policyId, 'device', { deviceId: d.id, deviceName: d.name });
      const [ip, bits] = d.address.split('/') as [string, string | undefined];
      if (bits === undefined) {
        this.deviceByIp.set(ip, identity);
        continue;
      }
      const v4 = ipv4ToNumber(ip);
      const v6 = v4 < 0 ? ipv6ToBigInt(ip) : null;
      if (v4 >= 0) this.networks.push({ v4: maskV4(v4, Number(bits)), v6: null, bits: Number(bits), identity });
      else if (v6 !== null) this.networks.push({ v4: null, v6: maskV6(v6, Number(bits)), bits: Number(bits), identity });
    }
    this.networks.sort((a, b) => b.bits - a.bits);
    // Newest first in the input: the first mapping for an address wins.
    for (const m of input.mappings) {
      if (this.byIp.has(m.ip)) continue;
      const policyId = m.personId && m.role ? (this.policyOfPerson.get(m.personId) ?? policyForPerson(m.role, m.groupIds, input.groupPolicies)) : (m.devicePolicy ?? UNKNOWN_POLICY);
      this.byIp.set(m.ip, { identity: make(policyId, m.via as IdentifiedBy, { personId: m.personId, username: m.username, deviceId: m.deviceId, deviceName: m.deviceName }), expiresAt: m.expiresAt });
    }
  }

  identify(rawIp: string, proxyUser: string | null | undefined, now: number): ClientIdentity {
    if (proxyUser) {
      const user = this.byUser.get(proxyUser) ?? this.byUser.get(proxyUser.toLowerCase());
      if (user) return user;
    }
    const ip = rawIp.charCodeAt(0) === 58 && rawIp.startsWith('::ffff:') ? rawIp.slice(7) : rawIp;
    const mapped = this.byIp.get(ip);
    if (mapped && mapped.expiresAt > now) return mapped.identity;
    const device = this.deviceByIp.get(ip);
    if (device) return device;
    if (this.networks.length === 0) return this.unknown;
    const cached = this.cache.get(ip);
    if (cached) return cached;
    let found = this.unknown;
    const v4 = ipv4ToNumber(ip);
    const v6 = v4 < 0 ? ipv6ToBigInt(ip) : null;
    if (v4 >= 0) {
      for (const net of this.networks) if (net.v4 !== null && maskV4(v4, net.bits) === net.v4) {
        found = net.identity;
        break;
      }
    } else if (v6 !== null) {
      for (const net of this.networks) if (net.v6 !== null && maskV6(v6, net.bits) === net.v6) {
        found = net.identity;
        break;
      }
    }
    if (this.cache.size > 65_536) this.cache.clear();
    this.cache.set(ip, found);
    return found;
  }

  /** The policy of a signed-in person (for "test a URL" and the block page). */
  personPolicy(personId: string): string | undefined {
    return this.policyOfPerson.get(personId);
  }
}

function maskV4(n: number, bits: number): number {
  return bits === 0 ? 0 : (n - (n % 2 ** (32 - bits)));
}
function maskV6(n: bigint, bits: number): bigint {
  const shift = BigInt(128 - bits);
  return (n >> shift) << shift;
}

/** Loads what the index needs: current mappings, devices, active people with their groups, group policies. */
export async function loadIdentityInput(db: Kysely<Schema>, now: Date): Promise<IdentitySnapshotInput> {
  const mappings = await currentMappingRows(db, now)
    .select(['m.ip', 'm.account_id', 'a.username', 'a.role', 'm.device_id', 'd.name as device_name', 'd.policy_id as device_policy', 'm.via', 'm.expires_at'])
    .execute();
  const devices = await db.selectFrom('filter_device').select(['id', 'name', 'address', 'policy_id']).execute();
  const people = await db.selectFrom('account').select(['id', 'username', 'role']).where('status', '=', 'active').execute();
  const members = await db.selectFrom('group_member').select(['group_id', 'account_id']).execute();
  const groupsOf = new Map<string, string[]>();
  for (const m of members) {
    if (!groupsOf.has(m.account_id)) groupsOf.set(m.account_id, []);
    groupsOf.get(m.account_id)!.push(m.group_id);
  }
  const groupPolicies = new Map(
    (await db.selectFrom('filter_policy').select(['id', 'group_id', 'priority', 'name']).where('group_id', 'is not', null).execute()).map((p) => [p.group_id!, { id: p.id, priority: p.priority, name: p.name }]),
  );
  return {
    mappings: mappings.map((m) => ({ ip: m.ip, personId: m.account_id, username: m.username ?? null, role: (m.role as Role | null) ?? null, groupIds: m.account_id ? groupsOf.get(m.account_id) ?? [] : [], deviceId: m.device_id, deviceName: m.device_name ?? null, devicePolicy: m.device_policy ?? null, via: m.via, expiresAt: Date.parse(m.expires_at) })),
    devices: devices.map((d) => ({ id: d.id, name: d.name, address: d.address, policyId: d.policy_id })),
    people: people.map((p) => ({ id: p.id, username: p.username, role: p.role as Role, groupIds: groupsOf.get(p.id) ?? [] })),
    groupPolicies,
  };
}
