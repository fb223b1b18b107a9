import { hash as oneShotHash } from 'node:crypto';

/**
 * The hash chain. Each event's hash is SHA-256 over the canonical JSON (RFC 8785: keys sorted, no
 * whitespace) of all its fields, including `prev`, the previous event's hash; the first event's
 * `prev` is GENESIS. Changing, removing, inserting or reordering any event changes every hash after
 * it; signed checkpoints pin the head so that a rewritten chain or a cut tail shows.
 *
 * `details` is stored as canonical JSON text and inlined as is, so verification rebuilds the exact
 * bytes with string concatenation rather than parsing and re-serialising (this is the hot loop of
 * `audit verify`).
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
