import { randomInt } from 'node:crypto';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { Selectable } from 'kysely';
import type { Role } from '../core/authz.js';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import type { GroupSettings } from '../core/profile.js';
import type { AccountTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { applyPassword, contextFor, type PasswordOwner } from './password-change.js';
import { acceptable, checkPassword, type PasswordContext } from './password-rules.js';
import { settingsFor } from './policy.js';
import { protectGuestPool } from './service.js';

let words: string[] | undefined;

/**
 * AC-09: a system-generated temporary password that is easy to read out and type — three words
 * from the EFF long list and two digits, e.g. "Maple-Tiger-Quartz-47" (about 45 bits, and it
 * expires) — drawn with a CSPRNG, and regenerated until it meets the profile's rules.
 */
function generateTemporaryPassword(settings: GroupSettings, context: PasswordContext): string {
  words ??= ((dictionary as Record<string, string[]>)['diceware-common'] ?? []).filter((w) => /^[a-z]{4,8}$/.test(w));
  for (let attempt = 0; attempt < 100; attempt++) {
    const parts = Array.from({ length: 3 }, () => {
      const w = words![randomInt(words!.length)]!;
      return w[0]!.toUpperCase() + w.slice(1);
    });
    let candidate = `${parts.join('-')}-${randomInt(10, 100)}`;
    while ([...candidate].length < settings.passwords.minLength) candidate += randomInt(10).toString();
    if (acceptable(checkPassword(settings, candidate, context))) return candidate;
  }
  throw new Error('could not generate a temporary password that meets the profile');
}

/**
 * A system-generated password for a person of `role` (AC-09) and its hash: generated for their
 * profile group, so it meets its rules and avoids their name (`context`), and hashed before any
 * transaction (argon2id takes a while, and SQLite's one connection must not wait on it). How every
 * password Gatehouse makes up starts: a new account's first, issueTemporaryPassword's, and the
 * guest desk's slip. Only the hash is kept; the password is shown once.
 */
export async function newTemporaryPassword(rt: Pick<Runtime, 'profile' | 'hasher'>, role: Role, context: PasswordContext): Promise<{ temporaryPassword: string; hash: string }> {
  const temporaryPassword = generateTemporaryPassword(settingsFor(rt.profile, role), context);
  return { temporaryPassword, hash: await rt.hasher.hash(temporaryPassword) };
}

type Meta = { ip: string | null; requestId: string | null };

/** The account columns issuing a temporary password reads. */
export type TemporaryPasswordHolder = PasswordOwner & Pick<Selectable<AccountTable>, 'status' | 'source'>;

/** What to say when a guest-desk account is asked for a password anywhere but at the desk. */
export const ALLOCATE_AT_GUEST_DESK = 'allocate it to a visitor there, which gives it a password until the visit ends.';

/**
 * AC-09 / AC-10 / PW-08: a new temporary password for an existing account, the one way each route
 * issues one (the accounts page, a pupil's reset by their teacher, an approved staff reset,
 * `gatehouse accounts recover`), each route having checked who may ask. Generated for the person's
 * profile group and hashed before the transaction; then, in one transaction, stored (to be changed
 * at the next sign-in, stopping unused after the profile's limit, any lock cleared), every session
 * ended and every sign-in in progress dropped, and audited without the password. `alsoIn` does the
 * route's own part (its request's state, its own audit event) in the same transaction. Guest-desk
 * accounts get passwords only at the guest desk, and an account that is not active gets none.
 */
export async function issueTemporaryPassword(
  rt: Runtime,
  actor: Actor,
  account: TemporaryPasswordHolder,
  options: { reason?: string; meta: Meta; alsoIn?: (ctx: Ctx) => Promise<unknown> },
): Promise<{ temporaryPassword: string; expiresAt: string }> {
  protectGuestPool(account, ALLOCATE_AT_GUEST_DESK);
  if (account.status !== 'active') throw new GatehouseError('account_inactive', 409, `${account.display_name}’s account is ${account.status}; it cannot be given a password.`);
  const { temporaryPassword, hash } = await newTemporaryPassword(rt, account.role as Role, contextFor(account));
  const prepared = { hash, exempt: false };
  const expiresAt = await rt.trail.transaction(actor, async (ctx) => {
    const { temporaryExpiresAt } = await applyPassword(ctx, account, rt.profile, prepared, { kind: 'temporary_issued', ...(options.reason ? { reason: options.reason } : {}) });
    await options.alsoIn?.(ctx);
    return temporaryExpiresAt!;
  }, options.meta);
  return { temporaryPassword, expiresAt };
}
