import type { Database } from '../db/database.js';
import { usernameHashOf, type KeyedHasher } from '../core/keyed-hash.js';
import { parseBody } from './chain.js';

/**
 * "Was username X tried?" The trail keeps a username that matched no account only as its keyed
 * hash (`usernameHash`, HMAC-SHA-256 under hmac.key): people type their password into the
 * username box, and the trail can never be edited. An administrator on the server computes the
 * same hash and finds the events that carry it. A copy of the database without the key cannot.
 */
export interface UsernameLookupMatch {
  seq: number;
  at: string;
  action: string;
  reason: string | null;
  ip: string | null;
}

export async function lookUpUsername(db: Database, keyedHash: KeyedHasher, typed: string): Promise<{ usernameHash: string; matches: UsernameLookupMatch[] }> {
  const usernameHash = usernameHashOf(keyedHash, typed);
  // Hex only, so the pattern needs no escaping; canonical JSON writes it exactly like this.
  const rows = await db.kysely.selectFrom('audit_event').select(['seq', 'body']).where('body', 'like', `%"usernameHash":"${usernameHash}"%`).orderBy('seq').execute();
  const matches = rows.map((r) => {
    const event = parseBody(r.body) as { at: string; action: string; details?: { reason?: unknown; ip?: unknown } };
    return {
      seq: Number(r.seq),
      at: event.at,
      action: event.action,
      reason: typeof event.details?.reason === 'string' ? event.details.reason : null,
      ip: typeof event.details?.ip === 'string' ? event.details.ip : null,
    };
  });
  return { usernameHash, matches };
}
