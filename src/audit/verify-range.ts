import BetterSqlite3 from 'better-sqlite3';
import { sqlitePathOf } from '../db/sqlite-path.js';
import { prevOffset, sha256Hex } from './chain.js';

/**
 * Checks one stretch of the trail, seq from..to, on a connection of its own. Used directly for
 * small trails and from worker threads for large ones: each event's hash depends only on its own
 * row (which names its predecessor's hash), so stretches are checked in parallel and stitched
 * together by comparing each stretch's first `prev` with the previous stretch's last hash.
 */
export interface RangeTask {
  dialect: 'sqlite' | 'postgres';
  url: string;
  from: number;
  to: number;
  /** Sequence numbers that carry a checkpoint: their stored hashes are reported back. */
  checkpointSeqs: number[];
  maxProblems: number;
}

export interface RangeProblem {
  seq: number;
  kind: 'missing_events' | 'broken_link' | 'changed_event';
  message: string;
}

export interface RangeResult {
  count: number;
  firstSeq: number | null;
  firstPrev: string | null;
  firstHash: string | null;
  lastSeq: number | null;
  lastHash: string | null;
  problems: RangeProblem[];
  checkpointHashes: Array<[number, string]>;
}

type Row = [number, string, string];

const COLUMNS = 'seq, body, hash';
const PAGE = 20_000;

/**
 * Calls `visit` for each event of the stretch, in order. SQLite rows are handled as they are read,
 * never buffered: holding pages of bodies makes them outlive the young generation and triples the
 * garbage collector's work.
 */
async function forEachEvent(
  task: Pick<RangeTask, 'dialect' | 'url' | 'from' | 'to'>,
  visit: (seq: number, body: string, hash: string) => void,
  onProgress?: (rows: number) => void,
): Promise<void> {
  if (task.dialect === 'sqlite') {
    const handle = new BetterSqlite3(sqlitePathOf(task.url), { readonly: true, fileMustExist: true });
    try {
      handle.pragma('busy_timeout = 10000');
      // Read through a memory map rather than a read() call per page: a sequential scan of the
      // whole table is what this connection is for.
      handle.pragma('mmap_size = 1073741824');
      const stmt = handle.prepare(`SELECT ${COLUMNS} FROM audit_event WHERE seq BETWEEN ? AND ? ORDER BY seq`).raw(true);
      let n = 0;
      for (const row of stmt.iterate(task.from, task.to) as IterableIterator<Row>) {
        visit(row[0], row[1], row[2]);
        if (++n === PAGE) {
          onProgress?.(n);
          n = 0;
        }
      }
      if (n > 0) onProgress?.(n);
    } finally {
      handle.close();
    }
    return;
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: task.url, application_name: 'gatehouse-verify' });
  await client.connect();
  try {
    let after = task.from - 1;
    for (;;) {
      const result = await client.query<Row>({
        text: `SELECT ${COLUMNS} FROM audit_event WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${PAGE}`,
        values: [after, task.to],
        rowMode: 'array',
      });
      for (const row of result.rows) visit(Number(row[0]), row[1], row[2]);
      if (result.rows.length > 0) onProgress?.(result.rows.length);
      if (result.rows.length < PAGE) return;
      after = Number(result.rows[result.rows.length - 1]![0]);
    }
  } finally {
    await client.end();
  }
}

export async function verifyRange(task: RangeTask, onProgress?: (rows: number) => void): Promise<RangeResult> {
  const result: RangeResult = { count: 0, firstSeq: null, firstPrev: null, firstHash: null, lastSeq: null, lastHash: null, problems: [], checkpointHashes: [] };
  const add = (p: RangeProblem) => {
    if (result.problems.length < task.maxProblems) result.problems.push(p);
  };
  const checkpoints = new Set(task.checkpointSeqs);
  let expected = task.from;
  let prev: string | null = null;
  await forEachEvent(
    task,
    (seq, body, hash) => {
      const prevAt = prevOffset(body, seq);
      if (sha256Hex(body) !== hash) {
        add({ seq, kind: 'changed_event', message: `event ${seq} has been changed since it was written (its contents do not match its hash)` });
      } else if (prevAt < 0) {
        add({ seq, kind: 'broken_link', message: `event ${seq} is out of place: its signed contents carry another sequence number` });
      }
      if (prev === null) {
        // The stretch's first link is checked by whoever stitches the stretches together.
        result.firstSeq = seq;
        result.firstPrev = prevAt < 0 ? null : body.substr(prevAt, 64);
        result.firstHash = hash;
      } else if (seq !== expected) {
        add({ seq: expected, kind: 'missing_events', message: `events ${expected}${seq - 1 > expected ? `–${seq - 1}` : ''} are missing` });
      } else if (prevAt >= 0 && !body.startsWith(prev, prevAt)) {
        add({ seq, kind: 'broken_link', message: `event ${seq} does not follow event ${seq - 1} (its prev hash differs): events were removed, inserted or reordered` });
      }
      if (checkpoints.has(seq)) result.checkpointHashes.push([seq, hash]);
      prev = hash;
      expected = seq + 1;
      result.count++;
    },
    onProgress,
  );
  result.lastSeq = prev === null ? null : expected - 1;
  result.lastHash = prev;
  return result;
}
