import type { Database } from '../db/database.js';
import { GENESIS, canonicalEvent, sha256Hex, type ChainFields } from './chain.js';
import { noteSignatureValid, originOf, parseNote, type ParsedNote } from './checkpoints.js';

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
}

type Row = [number, string, string, string | null, string, string | null, string, string, string, string];

const COLUMNS = 'seq, at, actor, actor_id, action, target, severity, details, prev_hash, hash';
const PAGE = 20_000;

/** Reads the trail in order, page by page, as arrays (no per-row objects from the driver). */
async function* rows(db: Database): AsyncGenerator<Row[]> {
  if (db.sqlite) {
    // One statement, one read snapshot: a live server can keep appending while we read.
    const stmt = db.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_event ORDER BY seq`).raw(true);
    let page: Row[] = [];
    for (const row of stmt.iterate() as IterableIterator<Row>) {
      page.push(row);
      if (page.length === PAGE) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
    return;
  }
  const pool = db.pgPool!;
  let after = 0;
  for (;;) {
    const result = await pool.query<Row>({
      text: `SELECT ${COLUMNS} FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`,
      values: [after],
      rowMode: 'array',
    });
    if (result.rows.length === 0) return;
    for (const row of result.rows) row[0] = Number(row[0]);
    yield result.rows;
    after = result.rows[result.rows.length - 1]![0];
    if (result.rows.length < PAGE) return;
  }
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

  let expected = 1;
  let prev = GENESIS;
  let firstHash: string | undefined;
  let count = 0;
  let lastCheckpointMatched = 0;
  const fields: ChainFields = {
    seq: 0, at: '', actor: '', actor_id: null, action: '', target: null, severity: '', details: '', prev_hash: '',
  };
  for await (const page of rows(db)) {
    for (const row of page) {
      const seq = row[0];
      if (seq !== expected) {
        if (seq > expected) {
          add({ seq: expected, kind: 'missing_events', message: `events ${expected}${seq - 1 > expected ? `–${seq - 1}` : ''} are missing` });
        } else {
          add({ seq, kind: 'broken_link', message: `event ${seq} is out of order` });
        }
      }
      if (row[8] !== prev) {
        // Report only when the gap above has not already explained it.
        if (seq === expected) add({ seq, kind: 'broken_link', message: `event ${seq} does not follow event ${seq - 1} (its prev hash differs): events were removed, inserted or reordered` });
      }
      fields.seq = seq;
      fields.at = row[1];
      fields.actor = row[2];
      fields.actor_id = row[3];
      fields.action = row[4];
      fields.target = row[5];
      fields.severity = row[6];
      fields.details = row[7];
      fields.prev_hash = row[8];
      if (sha256Hex(canonicalEvent(fields)) !== row[9]) {
        add({ seq, kind: 'changed_event', message: `event ${seq} has been changed since it was written (its contents do not match its hash)` });
      }
      if (seq === 1) firstHash = row[9];
      const cps = bySeq.get(seq);
      if (cps) {
        for (const cp of cps) {
          if (cp.hash !== row[9]) {
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
      prev = row[9];
      expected = seq + 1;
      count++;
    }
    options.onProgress?.(count);
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
