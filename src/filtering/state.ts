import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../db/schema.js';

/**
 * Two counters in one row tell every node what changed: `policy_generation` (lists, categories,
 * policies: recompile the snapshot) and `identity_generation` (devices, sign-ins, mappings:
 * reload who is where). A change bumps its counter in the same transaction; each node polls.
 */
export async function bumpGeneration(db: Transaction<Schema> | Kysely<Schema>, which: 'policy' | 'identity'): Promise<void> {
  const column = which === 'policy' ? 'policy_generation' : 'identity_generation';
  await db
    .updateTable('filter_state')
    .set((eb) => ({ [column]: eb(column, '+', 1) }) as { policy_generation: never })
    .where('id', '=', 1)
    .execute();
}

export async function readGenerations(db: Kysely<Schema>): Promise<{ policy: number; identity: number }> {
  const row = await db.selectFrom('filter_state').select(['policy_generation', 'identity_generation']).where('id', '=', 1).executeTakeFirst();
  return { policy: row?.policy_generation ?? 0, identity: row?.identity_generation ?? 0 };
}
