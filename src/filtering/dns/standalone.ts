import { appendFile, appendFileSync, readFileSync } from 'node:fs';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { listFormats, parseList } from '../engine/lists.js';
import { compileSnapshot, type CategoryInput, type FilterSnapshot, type PolicyInput } from '../engine/snapshot.js';
import { ut1Categories } from '../engine/ut1.js';
import type { ActivityRecord, ClientIdentity, FilterPoint } from '../point.js';

/**
 * The resolver without the database: lists from a UT1 folder and the school's own list files,
 * policies and client addresses from one YAML file (`gatehouse dns --policies FILE`). The same
 * `startDnsServer` runs here and, later, inside `serve` with the database-backed FilterPoint.
 */

const schedule = z.object({
  categories: z.array(z.string()),
  days: z.array(z.number().int().min(1).max(7)),
  from: z.string().regex(/^\d\d:\d\d$/, 'must be HH:MM'),
  to: z.string().regex(/^\d\d:\d\d$/, 'must be HH:MM'),
  label: z.string().optional(),
});

const policy = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  blockedCategories: z.array(z.string()).default([]),
  schedules: z.array(schedule).default([]),
  allowLists: z.array(z.string()).default([]),
  blockLists: z.array(z.string()).default([]),
  safeSearch: z.object({ search: z.enum(['off', 'on']).default('on'), youtube: z.enum(['off', 'moderate', 'strict']).default('moderate') }).default({ search: 'on', youtube: 'moderate' }),
  defaultAction: z.enum(['allow', 'block']).default('allow'),
  downloadsAllowed: z.boolean().default(false),
});

const list = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().default(''),
  kind: z.enum(['allow', 'block', 'illegal', 'category']),
  /** a file of names, relative to the policy file */
  file: z.string().optional(),
  format: z.enum(listFormats).default('domains'),
  domains: z.array(z.string()).default([]),
});

export const policyFileSchema = z.object({
  timeZone: z.string().default('Europe/London'),
  /** the policy for addresses not listed under `clients` (guests' phones are filtered too) */
  unknownPolicy: z.string().min(1),
  policies: z.array(policy).min(1, 'give at least one policy'),
  /** address or CIDR → policy id; the most specific prefix wins */
  clients: z.record(z.string(), z.string()).default({}),
  /** the school's own lists (and extra categories), beside the UT1 folder */
  lists: z.array(list).default([]),
});
export type PolicyFile = z.infer<typeof policyFileSchema>;

/** Reads and checks a policy file; errors name the file and the field. */
export function readPolicyFile(file: string): PolicyFile {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join('.') || 'the file'} ${issue.message}`);
  }
  const ids = new Set(parsed.data.policies.map((p) => p.id));
  if (!ids.has(parsed.data.unknownPolicy)) throw new Error(`${file}: unknownPolicy "${parsed.data.unknownPolicy}" is not one of the policies`);
  for (const [client, policyId] of Object.entries(parsed.data.clients)) {
    if (!ids.has(policyId)) throw new Error(`${file}: client ${client} is given policy "${policyId}", which is not one of the policies`);
    parseCidr(client, file);
  }
  return parsed.data;
}

/** Lists (UT1 folder + the file's own lists) and policies compiled into a snapshot. */
export function compilePolicyFile(config: PolicyFile, options: { file: string; ut1?: string | null }): FilterSnapshot {
  const categories: CategoryInput[] = options.ut1 ? ut1Categories(options.ut1).categories : [];
  const base = path.dirname(options.file);
  for (const l of config.lists) {
    const domains = [...l.domains];
    if (l.file) domains.push(...parseList(readFileSync(path.resolve(base, l.file), 'utf8'), l.format).domains);
    categories.push({ id: l.id, name: l.name, description: l.description, kind: l.kind, domains });
  }
  return compileSnapshot({ categories, policies: config.policies as PolicyInput[], timeZone: config.timeZone });
}

function parseCidr(text: string, file: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', bits] = text.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
  if (!family) throw new Error(`${file}: client "${text}" is not an IP address or CIDR range`);
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`${file}: client "${text}" has a prefix outside 0–${max}`);
  return { address, prefix, family };
}

/**
 * Clients by address or CIDR (the most specific range wins), unknown addresses to the unknown
 * policy; each address's identity is remembered so the hot path is one Map lookup. Activity is
 * counted, and written as JSON lines to a file once a second when one is given (MO-01).
 */
export class StandaloneFilterPoint implements FilterPoint {
  private ranges: Array<{ list: BlockList; prefix: number; identity: ClientIdentity }> = [];
  private unknown!: ClientIdentity;
  private seen = new Map<string, ClientIdentity>();
  private pending: string[] = [];
  private readonly flusher: NodeJS.Timeout | null;
  recorded = 0;
  blocked = 0;

  constructor(
    private current: FilterSnapshot,
    config: PolicyFile,
    file: string,
    private readonly activityLog: string | null = null,
  ) {
    this.replace(current, config, file);
    this.flusher = activityLog ? setInterval(() => this.flush(), 1000) : null;
    this.flusher?.unref();
  }

  /** Swaps in new lists and policies (after the files changed): whole, between two queries. */
  replace(snapshot: FilterSnapshot, config: PolicyFile, file: string): void {
    const identity = (policyId: string, via: ClientIdentity['via']): ClientIdentity => ({ policyId, policyIndex: snapshot.policy(policyId), deviceId: null, deviceName: null, personId: null, username: null, via });
    const unknown = identity(config.unknownPolicy, 'unknown');
    const ranges = Object.entries(config.clients)
      .map(([text, policyId]) => {
        const { address, prefix, family } = parseCidr(text, file);
        const list = new BlockList();
        list.addSubnet(address, prefix, family);
        return { list, prefix: prefix + (family === 'ipv6' ? 0 : 96), identity: { ...identity(policyId, 'device'), deviceName: text } };
      })
      .sort((a, b) => b.prefix - a.prefix);
    this.current = snapshot;
    this.unknown = unknown;
    this.ranges = ranges;
    this.seen = new Map();
  }

  snapshot(): FilterSnapshot {
    return this.current;
  }

  identify(ip: string): ClientIdentity {
    let identity = this.seen.get(ip);
    if (identity !== undefined) return identity;
    identity = this.unknown;
    const family = isIPv6(ip) ? 'ipv6' : 'ipv4';
    for (const range of this.ranges) {
      if (range.list.check(ip, family)) {
        identity = range.identity;
        break;
      }
    }
    if (this.seen.size >= 100_000) this.seen.clear();
    this.seen.set(ip, identity);
    return identity;
  }

  record(activity: ActivityRecord): void {
    this.recorded++;
    if (activity.action === 'block') this.blocked++;
    if (this.activityLog && this.pending.length < 100_000) this.pending.push(JSON.stringify(activity));
  }

  flush(): void {
    if (!this.activityLog || this.pending.length === 0) return;
    const lines = `${this.pending.join('\n')}\n`;
    this.pending = [];
    appendFile(this.activityLog, lines, () => {
      // A full disk must not stop name resolution; the counters still count.
    });
  }

  close(): void {
    if (this.flusher) clearInterval(this.flusher);
    if (!this.activityLog || this.pending.length === 0) return;
    try {
      appendFileSync(this.activityLog, `${this.pending.join('\n')}\n`);
    } catch {
      // as in flush()
    }
    this.pending = [];
  }
}
