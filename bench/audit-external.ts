// Verification with outside evidence: a trail of N events with a checkpoint every M, each appended to
// the off-box log and cosigned by a witness; `verifyTrail` alone, then with both logs and the witness key.
// Run: npm run build:server && node --import tsx bench/audit-external.ts [events] [every]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../dist/audit/trail.js';
import { verifyTrail, type VerifyReport } from '../dist/audit/verify.js';
import { splitNotes } from '../dist/audit/checkpoints.js';
import { loadOrCreateSigner } from '../dist/audit/signing.js';
import { createWitnessKey, witnessCheckpoint } from '../dist/audit/witness.js';
import { ManualClock } from '../dist/core/clock.js';
import { systemActor } from '../dist/core/context.js';
import { migrate, openDatabase } from '../dist/db/database.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-ext-'));
const db = await openDatabase({ databaseUrl: `sqlite:${path.join(dir, 'b.db')}` });
await migrate(db);
const clock = new ManualClock();
const { signer } = loadOrCreateSigner(dir);
const log = path.join(dir, 'cp.log');
const trail = new AuditTrail(db, clock, signer, { checkpointEvery: 1e12, checkpointMinutes: 1e6, checkpointLogFile: log });
await trail.start({ timer: false });
const EVENTS = Number(process.argv[2] ?? 200_000);
const EVERY = Number(process.argv[3] ?? 200);
const w = createWitnessKey(path.join(dir, 'w.key'), 'w.example');
const wlog = path.join(dir, 'w.log');
for (let i = 0; i < EVENTS; i += EVERY) {
  await trail.transaction(systemActor('b'), async (ctx) => {
    await (ctx.audit as unknown as { recordMany(e: unknown[]): Promise<number[]> }).recordMany(Array.from({ length: EVERY }, (_, j) => ({ action: 'filter.activity_logged', target: `d:${j}`, details: { i: i + j } })));
  });
  clock.advance(60_000);
  const cp = await trail.checkpointNow();
  witnessCheckpoint({ noteText: cp!.note, logFile: wlog, signer: w, serverKeys: [signer.publicKeyPem], clock });
}
const notes = splitNotes(readFileSync(log, 'utf8'));
const wnotes = splitNotes(readFileSync(wlog, 'utf8'));
/** Median of three runs, by the CPU time this process spent (wall time is at the mercy of the machine's load). */
async function median3(run: () => Promise<VerifyReport>): Promise<{ report: VerifyReport; cpu: number }> {
  const runs: Array<{ report: VerifyReport; cpu: number }> = [];
  for (let k = 0; k < 3; k++) {
    const before = process.cpuUsage();
    const report = await run();
    const used = process.cpuUsage(before);
    runs.push({ report, cpu: (used.user + used.system) / 1e6 });
  }
  return runs.sort((x, y) => x.cpu - y.cpu)[1]!;
}
const alone = await median3(() => verifyTrail(db, { workers: 1 }));
const withExternal = await median3(() => verifyTrail(db, { workers: 1, sources: [{ name: 'cp.log', notes }, { name: 'w.log', notes: wnotes }], witnessKeys: [w] }));
console.log(`${alone.report.events.toLocaleString('en-GB')} events, ${notes.length} checkpoints (each in the off-box log and cosigned in the witness log); one process, CPU seconds, median of 3`);
console.log(`verify alone:                   ${alone.cpu.toFixed(2)} s CPU (${alone.report.seconds.toFixed(2)} s wall)`);
console.log(`verify with ${notes.length + wnotes.length} outside notes: ${withExternal.cpu.toFixed(2)} s CPU (${withExternal.report.seconds.toFixed(2)} s wall; ${withExternal.report.ok ? 'OK' : 'BROKEN'}: ${withExternal.report.external.summary})`);
await db.close(); rmSync(dir, { recursive: true, force: true });
