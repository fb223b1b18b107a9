// A separate process that appends audit events, as another node or a CLI command would.
// Usage: audit-writer.ts DATABASE_URL COUNT LABEL [BATCH]
import { AuditTrail } from '../../src/audit/trail.js';
import { systemClock } from '../../src/core/clock.js';
import { openDatabase } from '../../src/db/database.js';

const [url, countText, label, batchText] = process.argv.slice(2);
const count = Number(countText);
const batch = Number(batchText ?? 1);
const db = await openDatabase({ databaseUrl: url!, busyTimeoutMs: 30_000 });
const trail = new AuditTrail(db, systemClock, undefined, { checkpointEvery: 1e9, checkpointMinutes: 60 });
for (let i = 0; i < count; i += batch) {
  await trail.transaction({ id: null, name: label!, role: null }, async (ctx) => {
    for (let j = i; j < Math.min(count, i + batch); j++) {
      await ctx.audit.record({ action: 'test.written', target: `writer:${label}`, details: { writer: label, n: j } });
    }
  });
}
await db.close();
process.stdout.write('done\n');
