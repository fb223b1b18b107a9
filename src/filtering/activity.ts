import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import type { ActivityRecord } from './point.js';

/**
 * The activity log (MO-01): every decision the enforcement points make, with what the DfE filtering
 * standard asks for — device name or id, address, the person where known, date and time, the host
 * or URL or search term — and the action, category, rule and policy. `record()` only appends to a
 * buffer; `ActivityWriter` writes it in multi-row inserts every second or every 500 records, so the
 * hot path never waits on the database. Rows are a log of what the filter did, not changes people
 * made, so they are not audit events; their retention (the profile's `activityRetentionDays`) is:
 * each daily purge writes one audit event with the count.
 */

// 14 columns a row. SQLite allows 32,766 bound values per statement, PostgreSQL 65,535: stay well below both.
const ROWS_PER_INSERT = 1000;

export class ActivityWriter {
  private buffer: ActivityRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** records dropped because the database could not keep up (shown on the lists page) */
  dropped = 0;
  written = 0;
  /** told of each batch once it is written (the alert rules, issue 11); must only queue, never wait */
  readonly observers: Array<(batch: readonly ActivityRecord[]) => void> = [];

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly onError: (error: unknown) => void,
    private readonly options: { everyMs: number; batch: number; maxBuffered: number } = { everyMs: 1000, batch: 500, maxBuffered: 100_000 },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.everyMs);
    this.timer.unref();
  }

  add(record: ActivityRecord): void {
    if (this.buffer.length >= this.options.maxBuffered) {
      this.dropped++;
      return;
    }
    this.buffer.push(record);
    if (this.buffer.length >= this.options.batch && !this.flushing) void this.flush();
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Writes what is buffered (after any write under way); one write at a time. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = (async () => {
      try {
        for (let i = 0; i < batch.length; i += ROWS_PER_INSERT) {
          const rows = batch.slice(i, i + ROWS_PER_INSERT).map((r) => ({
            at: new Date(r.at).toISOString(),
            point: r.point,
            client_ip: r.clientIp.slice(0, 64),
            device_id: r.deviceId,
            device_name: r.deviceName,
            person_id: r.personId,
            username: r.username,
            host: r.host.slice(0, 300),
            url: r.url ? r.url.slice(0, 2000) : null,
            search_term: r.searchTerm ? r.searchTerm.slice(0, 500) : null,
            action: r.action,
            category: r.category,
            rule: r.rule,
            policy: r.policy,
          }));
          await this.db.insertInto('filter_activity').values(rows).execute();
          this.written += rows.length;
        }
        for (const observe of this.observers) {
          try {
            observe(batch);
          } catch (error) {
            this.onError(error);
          }
        }
      } catch (error) {
        // Keep the records for the next attempt, within the buffer's limit.
        this.buffer = [...batch, ...this.buffer].slice(0, this.options.maxBuffered);
        this.onError(error);
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
  }
}

export const activityQuerySchema = z
  .object({
    person: z.string().trim().max(100).optional(),
    device: z.string().trim().max(100).optional(),
    ip: z.string().trim().max(64).optional(),
    host: z.string().trim().max(300).optional(),
    action: z.enum(['allow', 'block', 'rewrite']).optional(),
    from: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
    to: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
    /** only rows newer than this id (live view polling) */
    after: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(200),
  })
  .strict();

/** A recorded decision as stored: its row id, the time as ISO text, point and action as the column holds them. */
export type ActivityRow = Omit<ActivityRecord, 'at' | 'point' | 'action'> & { id: number; at: string; point: string; action: string };

/** Newest first, filtered by person, device, address, host, action and time. */
export async function queryActivity(db: Kysely<Schema>, query: z.infer<typeof activityQuerySchema>): Promise<ActivityRow[]> {
  let q = db.selectFrom('filter_activity').selectAll();
  if (query.person) q = q.where('username', '=', query.person.toLowerCase());
  if (query.device) q = q.where('device_name', '=', query.device);
  if (query.ip) q = q.where('client_ip', '=', query.ip);
  if (query.host) q = q.where((eb) => eb.or([eb('host', '=', query.host!.toLowerCase()), eb('host', 'like', `%.${query.host!.toLowerCase().replace(/[%_]/g, '')}`)]));
  if (query.action) q = q.where('action', '=', query.action);
  if (query.from) q = q.where('at', '>=', new Date(query.from).toISOString());
  if (query.to) q = q.where('at', '<', new Date(query.to).toISOString());
  if (query.after !== undefined) q = q.where('id', '>', query.after);
  const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
  return rows.map((r) => ({ id: Number(r.id), at: r.at, point: r.point, clientIp: r.client_ip, deviceId: r.device_id, deviceName: r.device_name, personId: r.person_id, username: r.username, host: r.host, url: r.url, searchTerm: r.search_term, action: r.action, category: r.category, rule: r.rule, policy: r.policy }));
}

/** Deletes activity older than the profile's retention; one audit event with the count. */
export async function purgeActivity(rt: Runtime): Promise<number> {
  const days = rt.profile.filtering.activityRetentionDays;
  const before = new Date(rt.clock.now().getTime() - days * 86_400_000).toISOString();
  let deleted = 0;
  await rt.trail.transaction({ id: null, name: 'system', role: null }, async (ctx) => {
    const result = await ctx.db.deleteFrom('filter_activity').where('at', '<', before).executeTakeFirst();
    deleted = Number(result.numDeletedRows);
    if (deleted > 0) await ctx.audit.record({ action: 'filtering.activity_purged', target: 'filter_activity', severity: 'info', details: { deleted, before, retentionDays: days } });
  });
  return deleted;
}
