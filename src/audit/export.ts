import type { Writable } from 'node:stream';
import type { Database } from '../db/database.js';

export interface ExportOptions {
  since?: string | undefined;
  until?: string | undefined;
}

/** The exported shape of one event: every field, with details as an object, plus the hashes. */
export interface ExportedEvent {
  seq: number;
  at: string;
  actor: string;
  actorId: string | null;
  action: string;
  target: string | null;
  severity: string;
  details: unknown;
  prev: string;
  hash: string;
}

/**
 * Writes events (oldest first) as JSON lines. Each line carries its hashes, so a recipient holding
 * a checkpoint can check that the extract is a faithful piece of the chain.
 */
export async function exportJsonl(db: Database, out: Writable, options: ExportOptions = {}): Promise<number> {
  let count = 0;
  let after = 0;
  for (;;) {
    let query = db.kysely.selectFrom('audit_event').selectAll().where('seq', '>', after).orderBy('seq').limit(5000);
    if (options.since) query = query.where('at', '>=', options.since);
    if (options.until) query = query.where('at', '<', options.until);
    const page = await query.execute();
    if (page.length === 0) break;
    let chunk = '';
    for (const row of page) {
      const event: ExportedEvent = {
        seq: Number(row.seq),
        at: row.at,
        actor: row.actor,
        actorId: row.actor_id,
        action: row.action,
        target: row.target,
        severity: row.severity,
        details: JSON.parse(row.details),
        prev: row.prev_hash,
        hash: row.hash,
      };
      chunk += `${JSON.stringify(event)}\n`;
    }
    count += page.length;
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
    after = Number(page[page.length - 1]!.seq);
  }
  return count;
}
