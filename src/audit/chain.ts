import { hash as oneShotHash } from 'node:crypto';

/**
 * The hash chain. Each event is stored as its canonical JSON (RFC 8785: keys sorted, no
 * whitespace) — its `body` — and its hash is SHA-256 over exactly those bytes. The body names
 * the previous event's hash as `prev` (GENESIS for the first) and its own `seq`, so changing,
 * removing, inserting or reordering any event breaks a link; signed checkpoints pin the head so
 * that a rewritten chain or a cut tail shows too.
 *
 * Keys in sorted order are: action, actor, actorId, at, details, prev, seq, severity, target. The
 * verifier finds `prev` and `seq` as the last `"prev":"` in the body: inside details it could only
 * occur as a key (before the top-level one), and inside the strings after it quotes are escaped.
 */
export const GENESIS = '0'.repeat(64);

export interface ChainFields {
  seq: number;
  at: string;
  actor: string;
  actor_id: string | null;
  action: string;
  target: string | null;
  severity: string;
  /** canonical JSON text */
  details: string;
  prev_hash: string;
}

export function canonicalEvent(e: ChainFields): string {
  return (
    `{"action":${JSON.stringify(e.action)},"actor":${JSON.stringify(e.actor)},` +
    `"actorId":${e.actor_id === null ? 'null' : JSON.stringify(e.actor_id)},"at":${JSON.stringify(e.at)},` +
    `"details":${e.details},"prev":${JSON.stringify(e.prev_hash)},"seq":${e.seq},` +
    `"severity":${JSON.stringify(e.severity)},"target":${e.target === null ? 'null' : JSON.stringify(e.target)}}`
  );
}

export const sha256Hex = (text: string): string => oneShotHash('sha256', text, 'hex');

export const eventHash = (e: ChainFields): string => sha256Hex(canonicalEvent(e));

const PREV_KEY = '"prev":"';
const SEQ_KEY = '","seq":';

/**
 * Where the top-level `prev` hash starts in a body, or -1 when the body does not carry `seq`
 * right after it. Reads without parsing or allocating: this runs once per event in verification.
 */
export function prevOffset(body: string, seq: number): number {
  const at = body.lastIndexOf(PREV_KEY);
  if (at < 0) return -1;
  const start = at + PREV_KEY.length;
  let i = start + 64;
  if (!body.startsWith(SEQ_KEY, i)) return -1;
  i += SEQ_KEY.length;
  let n = 0;
  let digits = 0;
  for (let c = body.charCodeAt(i); c >= 48 && c <= 57; c = body.charCodeAt(++i)) {
    n = n * 10 + (c - 48);
    digits++;
  }
  return digits > 0 && n === seq && body.charCodeAt(i) === 44 /* , */ ? start : -1;
}

/** The parsed body, as the API and exports show it. */
export interface EventBody {
  action: string;
  actor: string;
  actorId: string | null;
  at: string;
  details: Record<string, unknown>;
  prev: string;
  seq: number;
  severity: string;
  target: string | null;
}

export const parseBody = (body: string): EventBody => JSON.parse(body) as EventBody;
