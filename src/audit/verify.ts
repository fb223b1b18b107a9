import os from 'node:os';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Database } from '../db/database.js';
import { GENESIS } from './chain.js';
import { noteSignatureValid, originOf, parseNote, type ParsedNote } from './checkpoints.js';
import { verifyRange, type RangeResult, type RangeTask } from './verify-range.js';

export type ProblemKind =
  | 'missing_events'
  | 'broken_link'
  | 'changed_event'
  | 'truncated'
  | 'checkpoint_mismatch'
  | 'bad_signature'
  | 'unknown_key'
  | 'untrusted_key'
  | 'foreign_checkpoint';

export interface VerifyProblem {
  /** The first sequence number this problem makes untrustworthy. */
  seq: number;
  kind: ProblemKind;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  headSeq: number;
  headHash: string;
  checkpoints: { checked: number; lastSeq: number | null; external: number };
  keys: string[];
  /** The first broken sequence number, or null when the trail is intact. */
  firstBrokenSeq: number | null;
  problems: VerifyProblem[];
  seconds: number;
}

export interface VerifyOptions {
  /** Checkpoint notes kept elsewhere (from the checkpoint log file), checked against the chain. */
  externalNotes?: string[];
  /** If given, checkpoints must be signed by one of these key ids. */
  trustedKeys?: string[];
  /** Stop listing after this many problems (the first is always found). */
  maxProblems?: number;
  onProgress?: (eventsChecked: number) => void;
  /** Processes for large trails; default: one per core. 1 checks in this process. */
  workers?: number;
  /** Use workers from this many events on (default 50,000). */
  parallelFrom?: number;
}

/** Below this many events starting processes costs more than it saves. */
const PARALLEL_FROM = 50_000;

const workerFile = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './verify-worker.ts' : './verify-worker.js', import.meta.url));

function runWorker(task: RangeTask, onRows: (n: number) => void): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    // From source (tests, benchmarks) the worker is TypeScript too, loaded through tsx.
    const child = fork(workerFile, [], { execArgv: workerFile.endsWith('.ts') ? ['--import', 'tsx'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: RangeResult | undefined;
    let failure: string | undefined;
    child.on('message', (message: { progress?: number; result?: RangeResult; error?: string }) => {
      if (message.progress) onRows(message.progress);
      if (message.result) result = message.result;
      if (message.error) failure = message.error;
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`verification process failed (${failure ?? `exit code ${code}`})`))));
    child.send(task);
  });
}

/** Splits seq low..high into stretches, one per worker, and checks them side by side. */
async function checkStretches(
  db: Database,
  low: number,
  high: number,
  checkpointSeqs: number[],
  maxProblems: number,
  options: VerifyOptions,
): Promise<RangeResult[]> {
  if (high < low) return [];
  let done = 0;
  const progress = (n: number) => {
    done += n;
    options.onProgress?.(done);
  };
  const base = { dialect: db.dialect, url: db.url, checkpointSeqs, maxProblems };
  const workers = Math.max(1, Math.min(options.workers ?? os.availableParallelism(), 16));
  if (workers === 1 || high - low + 1 < (options.parallelFrom ?? PARALLEL_FROM)) {
    return [await verifyRange({ ...base, from: low, to: high }, progress)];
  }
  const span = Math.ceil((high - low + 1) / workers);
  const tasks: RangeTask[] = [];
  for (let from = low; from <= high; from += span) {
    const to = Math.min(high, from + span - 1);
    tasks.push({ ...base, from, to, checkpointSeqs: checkpointSeqs.filter((s) => s >= from && s <= to) });
  }
  return Promise.all(tasks.map((task) => runWorker(task, progress)));
}

/**
 * Checks every link of the chain and every checkpoint. Each event must have the next sequence
 * number, name the previous event's hash as `prev`, and hash to its stored hash; each checkpoint
 * must carry a valid signature by a registered key and match the chain at its size. The first
 * broken sequence number is reported; the rest of the trail is still read so that later problems
 * are listed too.
 */
export async function verifyTrail(db: Database, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const maxProblems = options.maxProblems ?? 50;
  const problems: VerifyProblem[] = [];
  const add = (p: VerifyProblem) => {
    if (problems.length < maxProblems) problems.push(p);
  };

  const keys = new Map(
    (await db.kysely.selectFrom('audit_key').select(['key_id', 'public_key']).execute()).map((k) => [k.key_id, k.public_key]),
  );
  const stored = await db.kysely.selectFrom('audit_checkpoint').selectAll().orderBy('seq').execute();

  // Every checkpoint we hold, from the database and from outside, parsed and signature-checked.
  const checkpoints: Array<ParsedNote & { external: boolean }> = [];
  const noteProblems: VerifyProblem[] = [];
  for (const row of stored) {
    try {
      const note = parseNote(row.note);
      if (note.seq !== Number(row.seq) || note.hash !== row.hash || note.keyId !== row.key_id) {
        noteProblems.push({ seq: Number(row.seq), kind: 'checkpoint_mismatch', message: `checkpoint ${row.seq}: its columns differ from its signed note` });
      }
      checkpoints.push({ ...note, external: false });
    } catch (error) {
      noteProblems.push({ seq: Number(row.seq), kind: 'bad_signature', message: `checkpoint ${row.seq}: ${(error as Error).message}` });
    }
  }
  let external = 0;
  for (const text of options.externalNotes ?? []) {
    try {
      checkpoints.push({ ...parseNote(text), external: true });
      external++;
    } catch (error) {
      noteProblems.push({ seq: 1, kind: 'bad_signature', message: `external checkpoint: ${(error as Error).message}` });
    }
  }
  const trusted = options.trustedKeys ? new Set(options.trustedKeys) : undefined;
  const bySeq = new Map<number, Array<ParsedNote & { external: boolean }>>();
  for (const cp of checkpoints) {
    const where = cp.external ? 'external checkpoint' : 'checkpoint';
    const key = keys.get(cp.keyId);
    if (!key) {
      noteProblems.push({ seq: cp.seq, kind: 'unknown_key', message: `${where} ${cp.seq}: signed by key ${cp.keyId}, which is not registered` });
      continue;
    }
    if (!noteSignatureValid(cp, key)) {
      noteProblems.push({ seq: cp.seq, kind: 'bad_signature', message: `${where} ${cp.seq}: the signature does not verify` });
      continue;
    }
    if (trusted && !trusted.has(cp.keyId)) {
      noteProblems.push({ seq: cp.seq, kind: 'untrusted_key', message: `${where} ${cp.seq}: signed by key ${cp.keyId}, which is not among the trusted keys` });
    }
    const list = bySeq.get(cp.seq) ?? [];
    list.push(cp);
    bySeq.set(cp.seq, list);
  }
  const checkpointSeqs = [...bySeq.keys()].sort((a, b) => a - b);

  // Read the extent once: events appended while we check are left for the next run.
  const extent = await db.kysely
    .selectFrom('audit_event')
    .select((eb) => [eb.fn.min('seq').as('low'), eb.fn.max('seq').as('high')])
    .executeTakeFirstOrThrow();
  const low = Math.min(1, Number(extent.low ?? 1));
  const high = Number(extent.high ?? 0);
  const stretches = await checkStretches(db, low, high, checkpointSeqs, maxProblems, options);

  let expected = 1;
  let prev = GENESIS;
  let firstHash: string | undefined;
  let count = 0;
  let lastCheckpointMatched = 0;
  const hashAt = new Map<number, string>();
  for (const stretch of stretches) {
    count += stretch.count;
    if (stretch.firstSeq === null) continue;
    if (stretch.firstSeq < 1) {
      add({ seq: 1, kind: 'broken_link', message: `an event carries sequence number ${stretch.firstSeq}; numbering starts at 1` });
    } else if (stretch.firstSeq !== expected) {
      add({ seq: expected, kind: 'missing_events', message: `events ${expected}${stretch.firstSeq - 1 > expected ? `–${stretch.firstSeq - 1}` : ''} are missing` });
    } else if (stretch.firstPrev !== prev) {
      add({ seq: expected, kind: 'broken_link', message: `event ${expected} does not follow event ${expected - 1} (its prev hash differs): events were removed, inserted or reordered` });
    }
    for (const p of stretch.problems) add(p);
    for (const [seq, hash] of stretch.checkpointHashes) hashAt.set(seq, hash);
    if (stretch.firstSeq === 1) firstHash = stretch.firstHash ?? undefined;
    prev = stretch.lastHash!;
    expected = stretch.lastSeq! + 1;
  }
  for (const seq of checkpointSeqs) {
    const stored = hashAt.get(seq);
    if (stored === undefined) continue;
    for (const cp of bySeq.get(seq)!) {
      if (cp.hash !== stored) {
        add({
          seq: lastCheckpointMatched + 1,
          kind: 'checkpoint_mismatch',
          message: `the chain was rewritten between events ${lastCheckpointMatched + 1} and ${seq}: the head hash signed in ${cp.external ? 'an external' : 'the'} checkpoint at ${seq} (${cp.at}) differs`,
        });
      } else if (seq > lastCheckpointMatched) {
        lastCheckpointMatched = seq;
      }
    }
  }
  const headSeq = expected - 1;

  const beyond = checkpointSeqs.filter((s) => s > headSeq);
  if (beyond.length > 0) {
    const cp = bySeq.get(beyond[beyond.length - 1]!)![0]!;
    add({
      seq: headSeq + 1,
      kind: 'truncated',
      message: `the trail ends at event ${headSeq}, but a ${cp.external ? 'external ' : ''}checkpoint signed at ${cp.at} covers ${cp.seq} events: events ${headSeq + 1}–${cp.seq} were cut off`,
    });
  }
  if (firstHash) {
    const origin = originOf(firstHash);
    for (const cp of checkpoints) {
      if (cp.origin !== origin) {
        add({ seq: 1, kind: 'foreign_checkpoint', message: `checkpoint ${cp.seq} names trail ${cp.origin}, but this trail is ${origin}: it belongs to another trail, or event 1 was replaced` });
      }
    }
  }
  for (const p of noteProblems) add(p);
  problems.sort((a, b) => a.seq - b.seq);

  return {
    ok: problems.length === 0,
    events: count,
    headSeq,
    headHash: prev,
    checkpoints: { checked: checkpoints.length, lastSeq: checkpointSeqs.at(-1) ?? null, external },
    keys: [...new Set(checkpoints.map((c) => c.keyId))],
    firstBrokenSeq: problems[0]?.seq ?? null,
    problems,
    seconds: (performance.now() - started) / 1000,
  };
}
