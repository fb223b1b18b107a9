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

/** The `prev` hash and whether `seq` matches, read from a body without parsing it. */
export function linkOf(body: string, seq: number): { prev: string; seqMatches: boolean } | undefined {
  const at = body.lastIndexOf(PREV_KEY);
  if (at < 0) return undefined;
  const prev = body.substr(at + PREV_KEY.length, 64);
  return { prev, seqMatches: body.startsWith(`","seq":${seq},`, at + PREV_KEY.length + 64) };
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
