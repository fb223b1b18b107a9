import type { Writable } from 'node:stream';
import type { Database } from '../db/database.js';

export interface ExportOptions {
  since?: string | undefined;
  until?: string | undefined;
  /** Only events after this sequence number (for a witness checking the events since its last). */
  afterSeq?: number | undefined;
}

/**
 * Writes events (oldest first) as JSON lines: each is the event's canonical JSON with its hash
 * added as a last key, so a recipient holding a checkpoint can check that the extract is a
 * faithful piece of the chain (see docs/audit.md).
 */
export async function exportJsonl(db: Database, out: Writable, options: ExportOptions = {}): Promise<number> {
  let count = 0;
  let after = options.afterSeq ?? 0;
  for (;;) {
    let query = db.kysely.selectFrom('audit_event').select(['seq', 'body', 'hash']).where('seq', '>', after).orderBy('seq').limit(5000);
    if (options.since) query = query.where('at', '>=', options.since);
    if (options.until) query = query.where('at', '<', options.until);
    const page = await query.execute();
    if (page.length === 0) break;
    let chunk = '';
    for (const row of page) {
      // The body as written (the hashed bytes), with its hash appended: a recipient can check
      // each line by hashing everything before ',"hash"'.
      chunk += `${row.body.slice(0, -1)},"hash":${JSON.stringify(row.hash)}}\n`;
    }
    count += page.length;
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
    after = Number(page[page.length - 1]!.seq);
  }
  return count;
}
