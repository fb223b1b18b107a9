import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { badRequest, GatehouseError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { FilterRequestTable, Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import type { Verdict } from './engine/snapshot.js';
import { hostFromInput } from './lists-service.js';

/**
 * The block page's two actions (FI-13): "request access" (this site should be allowed for me) and
 * "report this page" (wrongly blocked, or it should be blocked). Anyone on the network may send one,
 * signed in or not; the person is taken from the session or from who is at the address. Stored for
 * the governance issue's review, audited. Illegal content can never be requested.
 */

export const filterRequestSchema = z
  .object({
    action: z.enum(['request', 'report'], { error: 'must be request or report' }),
    host: z.string().trim().min(1, 'is required').max(300),
    url: z.string().trim().max(2000).nullable().optional(),
    category: z.string().trim().max(200).nullable().optional(),
    reason: z.string().trim().min(3, 'say briefly why (at least a few words)').max(1000, 'must be at most 1000 characters'),
  })
  .strict();

/** Where a device signs in to the school network as its user (the captive page, FI-02). */
export const CAPTIVE_PAGE = '/connect';

export interface BlockPageWords {
  /** why, for the person in front of the page */
  message: string;
  /** when the unknown-device policy decided: that the device is not signed in, and where to sign in */
  device: { message: string; signInAt: string } | null;
}

/**
 * What the block page tells the person in front of it (FI-13), in words a pupil understands: the
 * category by its name, the school's list, or that this device is not signed in — never a policy's
 * name ("… for Unknown devices") or the engine's wording. The engine's `reason` is unchanged for
 * staff (Activity, "Test an address", the audit trail).
 */
export function blockPageWords(verdict: Pick<Verdict, 'action' | 'rule' | 'categoryName'>, context: { illegal: boolean; unknownDevice: boolean }): BlockPageWords {
  const category = verdict.categoryName ? `“${verdict.categoryName}”` : null;
  let message: string;
  if (verdict.action === 'rewrite') message = 'This site is open to you, with safe search switched on.';
  else if (verdict.action !== 'block') message = 'This site is not blocked for you now.';
  else if (context.illegal || verdict.rule === 'illegal') message = 'This site is on a list of illegal content, so it is blocked for everyone.';
  else if (verdict.rule === 'fallback') message = 'This address is blocked for everyone on the school network, so that devices use the school’s filtering.';
  else if (verdict.rule === 'school-block') message = 'The school has put this site on its list of blocked sites.';
  else if (verdict.rule === 'category' && category) message = `This site is blocked because it is in the category ${category}.`;
  else if (verdict.rule === 'schedule' && category) message = `This site is in the category ${category}, which is blocked at this time.`;
  else if (verdict.rule === 'default') message = 'Only sites the school has chosen can be used here, and this is not one of them.';
  else message = 'The school’s filtering blocks this site.';
  const helps = verdict.action === 'block' && !context.illegal && verdict.rule !== 'illegal' && verdict.rule !== 'fallback';
  return {
    message,
    device: context.unknownDevice && helps ? { message: 'This device isn’t signed in to the school network.', signInAt: CAPTIVE_PAGE } : null,
  };
}

export interface FilterRequestSummary {
  id: string;
  kind: string;
  host: string;
  url: string | null;
  category: string | null;
  reason: string;
  status: string;
  username: string | null;
  clientIp: string | null;
  deviceName: string | null;
  createdAt: string;
}

export interface Requester {
  accountId: string | null;
  username: string | null;
  deviceName: string | null;
  ip: string;
}

/** At most this many from one address an hour: the page is public. */
const PER_ADDRESS_PER_HOUR = 20;
const recent = new Map<string, number[]>();

export async function submitFilterRequest(rt: Runtime, input: z.infer<typeof filterRequestSchema>, who: Requester, blocked: { unblockable: boolean; category: string | null; kind: string | null }, requestId: string | null): Promise<FilterRequestSummary> {
  const host = hostFromInput(input.host);
  if (!host) throw badRequest('That is not a web address.');
  const now = rt.clock.now().getTime();
  const times = (recent.get(who.ip) ?? []).filter((t) => now - t < 3_600_000);
  if (times.length >= PER_ADDRESS_PER_HOUR) throw new GatehouseError('too_many_requests', 429, 'Too many requests from this device in the last hour. Please ask a member of staff.');
  if (input.action === 'request' && (blocked.kind === 'illegal' || blocked.kind === 'fallback')) {
    throw new GatehouseError('not_unblockable', 400, 'This site is blocked for everyone by law (illegal content) and cannot be unblocked. If you think it is wrongly listed, choose “Report this page”.');
  }
  times.push(now);
  recent.set(who.ip, times);
  if (recent.size > 10_000) for (const [ip, t] of recent) if (t.every((x) => now - x >= 3_600_000)) recent.delete(ip);
  const id = newId();
  const actor: Actor = who.accountId ? { id: who.accountId, name: who.username ?? 'unknown', role: null } : { id: null, name: `anonymous:${who.ip}`, role: null };
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db
      .insertInto('filter_request')
      .values({ id, kind: input.action, host, url: input.url ?? null, category: blocked.category ?? input.category ?? null, reason: input.reason, status: 'open', account_id: who.accountId, username: who.username, client_ip: who.ip, device_name: who.deviceName, created_at: ctx.clock.now().toISOString(), decided_at: null, decided_by: null, decision_note: null })
      .execute();
    await ctx.audit.record({ action: input.action === 'request' ? 'filtering.access_requested' : 'filtering.page_reported', target: `filter_request:${id}`, severity: 'notice', details: { host, category: blocked.category ?? input.category ?? null, username: who.username, ip: who.ip } });
  }, { ip: who.ip, requestId });
  return summarise(await rt.db.kysely.selectFrom('filter_request').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
}

const summarise = (r: Selectable<FilterRequestTable>): FilterRequestSummary => ({ id: r.id, kind: r.kind, host: r.host, url: r.url, category: r.category, reason: r.reason, status: r.status, username: r.username, clientIp: r.client_ip, deviceName: r.device_name, createdAt: r.created_at });

export async function listFilterRequests(db: Kysely<Schema>, query: { status?: string | undefined }): Promise<FilterRequestSummary[]> {
  let q = db.selectFrom('filter_request').selectAll();
  if (query.status) q = q.where('status', '=', query.status);
  return (await q.orderBy('created_at', 'desc').limit(500).execute()).map(summarise);
}
