import os from 'node:os';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Database } from '../db/database.js';
import { GENESIS } from './chain.js';
import { createPublicKey } from 'node:crypto';
import { noteSignatureValid, originOf, parseNote, type ParsedNote } from './checkpoints.js';
import type { WrittenHead } from './fingerprint.js';
import { keyIdOf } from './signing.js';
import { checkCosignature, type WitnessVerifier } from './witness.js';
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
  | 'foreign_checkpoint'
  /** a checkpoint or fingerprint kept outside the server disagrees with the trail */
  | 'rewritten'
  /** a witness's cosignature on a checkpoint does not verify */
  | 'bad_cosignature'
  /** a checkpoint in a witness's log carries no cosignature by that witness */
  | 'not_cosigned'
  /** a witness key was given, and no checkpoint cosigned by it */
  | 'witness_missing'
  /** a checkpoint log contradicts itself (two trails, or fewer events later) */
  | 'log_inconsistent'
  /** a key on record is not the key its id names */
  | 'key_mismatch';

export interface VerifyProblem {
  /** The first sequence number this problem makes untrustworthy. */
  seq: number;
  kind: ProblemKind;
  message: string;
}

/** What was compared from outside the server (checkpoint logs, witness logs, fingerprints). */
export interface ExternalReport {
  /** where external checkpoints came from (file names), in the order given */
  sources: string[];
  /** external checkpoint notes read */
  checkpoints: number;
  /** of those, how many matched the trail at their size */
  agreeing: number;
  fingerprints: number;
  fingerprintsAgreeing: number;
  /** the newest event an agreeing external checkpoint or fingerprint covers */
  lastSeq: number | null;
  witnesses: Array<{ name: string; keyId: string; cosigned: number; lastSeq: number | null; lastCosignedAt: string | null }>;
  /** one sentence: "3 external checkpoints from 2 files and 1 fingerprint agree" */
  summary: string;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  headSeq: number;
  headHash: string;
  checkpoints: { checked: number; lastSeq: number | null; external: number };
  external: ExternalReport;
  keys: string[];
  /** The first broken sequence number, or null when the trail is intact. */
  firstBrokenSeq: number | null;
  problems: VerifyProblem[];
  seconds: number;
}

/** Checkpoint notes kept outside the server, and where they came from. */
export interface ExternalSource {
  /** for messages: a file name, "an e-mail" */
  name: string;
  notes: string[];
}

export interface VerifyOptions {
  /** Checkpoint notes kept elsewhere, from one unnamed source (see `sources`). */
  externalNotes?: string[];
  /** Checkpoint logs, witness logs, saved e-mails: every note in them is compared with the trail. */
  sources?: ExternalSource[];
  /** Witnesses whose cosignatures are checked on the notes from `sources`. */
  witnessKeys?: WitnessVerifier[];
  /** Fingerprints written down by governors ("SEQ:HEX"). */
  heads?: WrittenHead[];
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

/** A checkpoint as the verifier holds it: where it came from and what vouches for it. */
type Held = ParsedNote & {
  external: boolean;
  /** the file it came from ("the database" for stored ones) */
  source: string;
  /** signed by a key on record (and trusted, when trusted keys are given) */
  signedOk: boolean;
  /** valid cosignatures: witness name → time */
  cosignedBy: Map<string, string>;
  /** why this note cannot vouch for anything (altered witness log) */
  suspect: boolean;
};

/** A piece of outside evidence about the trail's hash at one size. */
interface Evidence {
  seq: number;
  matches: (hash: string) => boolean;
  /** may it bound the damage from below ("the trail still agrees up to here")? */
  trusted: boolean;
  describe: string;
  /** what it says the hash is, for messages */
  says: string;
  kind: 'checkpoint' | 'fingerprint';
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-GB')} ${n === 1 ? one : many}`;

function describeNote(cp: Held): string {
  const cosigners = [...cp.cosignedBy.keys()];
  return cosigners.length > 0
    ? `the checkpoint signed at ${cp.at} and cosigned by witness ${cosigners.join(', ')} in ${cp.source}`
    : `the checkpoint witnessed at ${cp.at} in ${cp.source}`;
}

/** How long two nodes' clocks may disagree before a smaller checkpoint "after" a larger one counts. */
const CLOCK_SKEW_MS = 1000;

/**
 * Checks every link of the chain and every checkpoint. Each event must have the next sequence
 * number, name the previous event's hash as `prev`, and hash to its stored hash; each checkpoint
 * must carry a valid signature by a registered key and match the chain at its size. The first
 * broken sequence number is reported; the rest of the trail is still read so that later problems
 * are listed too.
 *
 * Stored checkpoints only show damage done without the signing key. Checkpoints and fingerprints
 * kept outside the server (`sources`, `heads`) show a rewrite by whoever holds the database and the
 * key too: each is compared with the trail's event at its size, and a disagreement names the first
 * event after the last outside evidence that still agrees.
 */
export async function verifyTrail(db: Database, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const maxProblems = options.maxProblems ?? 50;
  const problems: VerifyProblem[] = [];
  const add = (p: VerifyProblem) => {
    if (problems.length < maxProblems) problems.push(p);
  };

  // Keys on record; a key whose public half does not hash to its id is not that key.
  const keys = new Map<string, string>();
  const noteProblems: VerifyProblem[] = [];
  for (const k of await db.kysely.selectFrom('audit_key').select(['key_id', 'public_key']).execute()) {
    let actual: string;
    try {
      actual = keyIdOf(createPublicKey(k.public_key));
    } catch {
      actual = 'unreadable';
    }
    if (actual === k.key_id) keys.set(k.key_id, k.public_key);
    else noteProblems.push({ seq: 1, kind: 'key_mismatch', message: `the key on record as ${k.key_id} is a different key (${actual}): the key table was altered, so checkpoints "signed" by ${k.key_id} prove nothing` });
  }
  const stored = await db.kysely.selectFrom('audit_checkpoint').selectAll().orderBy('seq').execute();

  // Every checkpoint we hold, from the database and from outside, parsed and signature-checked.
  const checkpoints: Held[] = [];
  const held = (note: ParsedNote, external: boolean, source: string): Held => ({ ...note, external, source, signedOk: false, cosignedBy: new Map(), suspect: false });
  for (const row of stored) {
    try {
      const note = parseNote(row.note);
      if (note.seq !== Number(row.seq) || note.hash !== row.hash || note.keyId !== row.key_id) {
        noteProblems.push({ seq: Number(row.seq), kind: 'checkpoint_mismatch', message: `checkpoint ${row.seq}: its columns differ from its signed note` });
      }
      checkpoints.push(held(note, false, 'the database'));
    } catch (error) {
      noteProblems.push({ seq: Number(row.seq), kind: 'bad_signature', message: `checkpoint ${row.seq}: ${(error as Error).message}` });
    }
  }
  const sources: ExternalSource[] = [...(options.sources ?? [])];
  if (options.externalNotes) sources.push({ name: 'the external checkpoint log', notes: options.externalNotes });
  const bySource = new Map<string, Held[]>();
  for (const source of sources) {
    const list = bySource.get(source.name) ?? [];
    for (const text of source.notes) {
      try {
        const cp = held(parseNote(text), true, source.name);
        checkpoints.push(cp);
        list.push(cp);
      } catch (error) {
        noteProblems.push({ seq: 1, kind: 'bad_signature', message: `a checkpoint in ${source.name}: ${(error as Error).message}` });
      }
    }
    bySource.set(source.name, list);
  }
  const externals = checkpoints.filter((c) => c.external);

  const trusted = options.trustedKeys ? new Set(options.trustedKeys) : undefined;
  const bySeq = new Map<number, Held[]>();
  for (const cp of checkpoints) {
    const where = cp.external ? `checkpoint ${cp.seq} in ${cp.source}` : `checkpoint ${cp.seq}`;
    const key = keys.get(cp.keyId);
    if (!key) {
      noteProblems.push({ seq: cp.seq, kind: 'unknown_key', message: `${where}: signed by key ${cp.keyId}, which is not registered` });
    } else if (!noteSignatureValid(cp, key)) {
      noteProblems.push({ seq: cp.seq, kind: 'bad_signature', message: `${where}: the signature does not verify` });
    } else if (trusted && !trusted.has(cp.keyId)) {
      noteProblems.push({ seq: cp.seq, kind: 'untrusted_key', message: `${where}: signed by key ${cp.keyId}, which is not among the trusted keys` });
    } else {
      cp.signedOk = true;
    }
    // A stored checkpoint counts only when it verifies; one kept outside is compared with the trail
    // whatever its signature, since what makes it evidence is where it was kept.
    if (!cp.signedOk && !cp.external) continue;
    const list = bySeq.get(cp.seq) ?? [];
    list.push(cp);
    bySeq.set(cp.seq, list);
  }

  // Witnesses: cosignatures on the notes from outside. A file in which a witness cosigned anything
  // is that witness's log, so every note in it must carry the witness's cosignature.
  const witnessReports: ExternalReport['witnesses'] = [];
  const suspects: Array<{ cp: Held; witness: string; state: 'invalid' | 'absent' }> = [];
  for (const witness of options.witnessKeys ?? []) {
    let cosigned = 0;
    let last: Held | undefined;
    for (const [source, list] of bySource) {
      const checks = list.map((cp) => checkCosignature(cp, witness));
      if (!checks.some((c) => c.state !== 'absent')) continue;
      checks.forEach((check, i) => {
        const cp = list[i]!;
        if (check.state === 'valid') {
          cp.cosignedBy.set(witness.name, check.time.toISOString());
          cosigned++;
          if (!last || cp.seq > last.seq) last = cp;
        } else {
          cp.suspect = true;
          suspects.push({ cp, witness: witness.name, state: check.state });
        }
      });
    }
    if (cosigned === 0) {
      noteProblems.push({
        seq: 1,
        kind: 'witness_missing',
        message: `no checkpoint in ${sources.length ? sources.map((s) => s.name).join(', ') : 'the files given'} is cosigned by witness ${witness.name} (key ${witness.keyId}): give that witness's own log with --checkpoints; if it was given, it has been replaced`,
      });
    }
    witnessReports.push({ name: witness.name, keyId: witness.keyId, cosigned, lastSeq: last?.seq ?? null, lastCosignedAt: last?.cosignedBy.get(witness.name) ?? null });
  }

  // Each log kept outside must agree with itself: one trail, and never fewer events later on.
  for (const [source, list] of bySource) {
    const first = list[0];
    const other = list.find((cp) => cp.origin !== first?.origin);
    if (first && other) {
      noteProblems.push({ seq: 1, kind: 'log_inconsistent', message: `${source} holds checkpoints of two trails (${first.origin}, then ${other.origin} at ${other.at}): the trail was replaced, or the log was altered` });
    }
    const byTime = [...list].sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.seq - b.seq);
    let largest: Held | undefined;
    for (const cp of byTime) {
      if (largest && cp.origin === largest.origin && cp.seq < largest.seq && Date.parse(cp.at) - Date.parse(largest.at) > CLOCK_SKEW_MS) {
        noteProblems.push({
          seq: cp.seq + 1,
          kind: 'log_inconsistent',
          message: `${source}: the checkpoint signed at ${cp.at} covers ${plural(cp.seq, 'event')}, fewer than the ${largest.seq} signed earlier at ${largest.at}: the trail was cut back between the two (events after ${cp.seq} were removed or rewritten)`,
        });
      }
      if (!largest || cp.seq > largest.seq) largest = cp;
    }
  }

  const heads = options.heads ?? [];
  const checkpointSeqs = [...new Set([...bySeq.keys(), ...heads.map((h) => h.seq)])].sort((a, b) => a - b);

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
  const headSeq = expected - 1;

  // The server's own checkpoints: they show damage done without the signing key.
  let lastCheckpointMatched = 0;
  for (const seq of checkpointSeqs) {
    const storedHash = hashAt.get(seq);
    if (storedHash === undefined) continue;
    for (const cp of bySeq.get(seq) ?? []) {
      if (cp.external) continue;
      if (cp.hash !== storedHash) {
        add({
          seq: lastCheckpointMatched + 1,
          kind: 'checkpoint_mismatch',
          message: `the chain was rewritten between events ${lastCheckpointMatched + 1} and ${seq}: the head hash signed in the checkpoint at ${seq} (${cp.at}) differs`,
        });
      } else if (seq > lastCheckpointMatched) {
        lastCheckpointMatched = seq;
      }
    }
  }

  // Evidence from outside: checkpoint logs, witness logs, fingerprints. With witness keys given,
  // only what a witness cosigned (and fingerprints) may vouch that the trail agrees up to a point:
  // a plain log may have been rewritten along with the trail.
  const witnessed = (options.witnessKeys?.length ?? 0) > 0;
  const evidence: Evidence[] = [
    ...externals.map<Evidence>((cp) => ({
      seq: cp.seq,
      matches: (hash) => hash === cp.hash,
      trusted: !cp.suspect && (witnessed ? cp.cosignedBy.size > 0 : cp.signedOk),
      describe: describeNote(cp),
      says: `event ${cp.seq} has hash ${cp.hash.slice(0, 16)}…`,
      kind: 'checkpoint',
    })),
    ...heads.map<Evidence>((h) => ({
      seq: h.seq,
      matches: (hash) => hash.startsWith(h.prefix),
      trusted: true,
      describe: `the fingerprint written down as "${h.text}"`,
      says: `event ${h.seq}'s hash begins ${h.prefix.slice(0, 16)}…`,
      kind: 'fingerprint',
    })),
  ].sort((a, b) => a.seq - b.seq);
  const agreeing: Evidence[] = [];
  const disagreeing: Array<{ e: Evidence; actual: string }> = [];
  const beyond: Evidence[] = [];
  for (const e of evidence) {
    if (e.seq > headSeq) {
      beyond.push(e);
      continue;
    }
    const actual = hashAt.get(e.seq);
    if (actual === undefined) continue; // the event is missing: reported above
    if (e.matches(actual)) agreeing.push(e);
    else disagreeing.push({ e, actual });
  }
  const boundBelow = (seq: number): Evidence | undefined => {
    let best: Evidence | undefined;
    for (const a of agreeing) if (a.trusted && a.seq < seq && (!best || a.seq > best.seq)) best = a;
    return best;
  };
  for (const { e, actual } of disagreeing) {
    const bound = boundBelow(e.seq);
    add({
      seq: (bound?.seq ?? 0) + 1,
      kind: 'rewritten',
      message:
        `the trail was rewritten at or before event ${e.seq}` +
        `${bound ? ` (after event ${bound.seq}, where ${bound.describe} still agrees)` : ''}: ` +
        `${e.describe} says ${e.says}, but the trail's event ${e.seq} has ${actual.slice(0, 16)}…`,
    });
  }
  // A note in a witness log without the witness's valid cosignature was put there by someone else:
  // the trail may have been rewritten anywhere after the last point a witness still vouches for.
  for (const { cp, witness, state } of suspects) {
    const bound = boundBelow(cp.seq);
    const since = bound ? `after event ${bound.seq} (where ${bound.describe} still agrees)` : 'anywhere up to it';
    add(
      state === 'invalid'
        ? { seq: (bound?.seq ?? 0) + 1, kind: 'bad_cosignature', message: `checkpoint ${cp.seq} in ${cp.source}: the cosignature by witness ${witness} does not verify: the witness log was altered, and the trail may have been rewritten ${since}` }
        : { seq: (bound?.seq ?? 0) + 1, kind: 'not_cosigned', message: `checkpoint ${cp.seq} in ${cp.source} is not cosigned by witness ${witness}, unlike the rest of that witness log: it was added or altered, and the trail may have been rewritten ${since}` },
    );
  }
  // Cut off: the furthest outside evidence beyond the trail's end, else the furthest stored checkpoint.
  const storedBeyond = checkpointSeqs.filter((s) => s > headSeq && (bySeq.get(s) ?? []).some((c) => !c.external));
  // The furthest; of several at that size, preferably one a witness cosigned (or a fingerprint).
  const furthest = beyond.reduce<Evidence | undefined>((a, b) => (!a || b.seq > a.seq || (b.seq === a.seq && b.trusted && !a.trusted) ? b : a), undefined);
  if (furthest) {
    add({
      seq: headSeq + 1,
      kind: 'truncated',
      message: `the trail ends at event ${headSeq}, but ${furthest.describe} covers ${plural(furthest.seq, 'event')}: ${furthest.seq === headSeq + 1 ? `event ${furthest.seq} was` : `events ${headSeq + 1}–${furthest.seq} were`} cut off`,
    });
  } else if (storedBeyond.length > 0) {
    const cp = bySeq.get(storedBeyond.at(-1)!)!.find((c) => !c.external)!;
    add({
      seq: headSeq + 1,
      kind: 'truncated',
      message: `the trail ends at event ${headSeq}, but a checkpoint signed at ${cp.at} covers ${cp.seq} events: events ${headSeq + 1}–${cp.seq} were cut off`,
    });
  }
  if (firstHash) {
    const origin = originOf(firstHash);
    for (const cp of checkpoints) {
      if (cp.origin !== origin) {
        add({ seq: 1, kind: 'foreign_checkpoint', message: `checkpoint ${cp.seq}${cp.external ? ` in ${cp.source}` : ''} names trail ${cp.origin}, but this trail is ${origin}: it belongs to another trail, or event 1 was replaced` });
      }
    }
  }
  for (const p of noteProblems) add(p);
  problems.sort((a, b) => a.seq - b.seq);

  const agreeingNotes = agreeing.filter((e) => e.kind === 'checkpoint').length;
  const agreeingHeads = agreeing.length - agreeingNotes;
  const external: ExternalReport = {
    sources: [...bySource.keys()],
    checkpoints: externals.length,
    agreeing: agreeingNotes,
    fingerprints: heads.length,
    fingerprintsAgreeing: agreeingHeads,
    lastSeq: agreeing.at(-1)?.seq ?? null,
    witnesses: witnessReports,
    summary: externalSummary(bySource.size, externals.length, agreeingNotes, heads.length, agreeingHeads),
  };

  return {
    ok: problems.length === 0,
    events: count,
    headSeq,
    headHash: prev,
    checkpoints: { checked: checkpoints.length, lastSeq: checkpointSeqs.filter((s) => bySeq.has(s)).at(-1) ?? null, external: externals.length },
    external,
    keys: [...new Set(checkpoints.map((c) => c.keyId))],
    firstBrokenSeq: problems[0]?.seq ?? null,
    problems,
    seconds: (performance.now() - started) / 1000,
  };
}

function externalSummary(files: number, notes: number, agreeingNotes: number, heads: number, agreeingHeads: number): string {
  if (notes === 0 && heads === 0) return 'no external checkpoint or fingerprint was given';
  const parts: string[] = [];
  if (notes > 0) parts.push(`${plural(notes, 'external checkpoint')} from ${plural(files, 'file')}`);
  if (heads > 0) parts.push(plural(heads, 'fingerprint'));
  const all = agreeingNotes === notes && agreeingHeads === heads;
  return `${parts.join(' and ')} ${all ? (notes + heads === 1 ? 'agrees' : 'agree') : `given; ${plural(agreeingNotes + agreeingHeads, 'agrees', 'agree')}`}`;
}
