import { sql, type Selectable } from 'kysely';
import type { Role } from '../core/authz.js';
import type { Ctx } from '../core/context.js';
import type { AccountTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { settingsFor } from './policy.js';

/**
 * The one counted, throttled path every password and second-factor check goes through (PW-07):
 * sign-in, its second factor and its forced password change, the web proxy's sign-in,
 * re-authentication and changing one's own password.
 *
 * Counting is pessimistic: an attempt is counted *before* the password is hashed or the code
 * checked, by one conditional row update (`failed_attempts + 1 WHERE failed_attempts < threshold
 * AND locked_at IS NULL`). The database serialises concurrent updates of one row (SQLite has one
 * writer; PostgreSQL re-checks the condition against the newest row version), so however many
 * guesses arrive together, from however many nodes, at most `threshold` are ever checked before
 * the account locks; the rest are refused without their password being looked at. A right answer
 * gives its reservation back; a wrong one keeps it and locks the account on reaching the
 * threshold. A process that dies mid-check leaves its attempt counted, the safe way round.
 *
 * The counter goes back to zero only when a sign-in is complete (every factor, a session opened),
 * an administrator unlocks, or the password is changed — never on a right password alone, so
 * "right password, wrong codes" cannot be repeated for ever (finding 3 of issue 10).
 */

type Account = Pick<Selectable<AccountTable>, 'id' | 'username' | 'role' | 'is_break_glass' | 'locked_at'>;

export function lockoutThreshold(rt: Runtime, role: string): number | null {
  return settingsFor(rt.profile, role as Role).lockout.after;
}

/** Locked now (a lock past the profile's automatic unlock time no longer counts). */
export function lockedNow(rt: Runtime, account: Pick<Account, 'locked_at' | 'role'>): boolean {
  if (!account.locked_at) return false;
  const minutes = settingsFor(rt.profile, account.role as Role).lockout.autoUnlockMinutes;
  return !(minutes && rt.clock.now().getTime() - Date.parse(account.locked_at) >= minutes * 60_000);
}

/**
 * Ends a lock that has passed the profile's automatic unlock time (with its count), audited; only
 * one of several concurrent callers does it.
 */
async function unlockIfDue(rt: Runtime, account: Account, meta: { ip: string | null; requestId: string | null }): Promise<void> {
  if (!account.locked_at || lockedNow(rt, account)) return;
  await rt.trail.transaction({ id: account.id, name: account.username, role: account.role as Role }, async (ctx) => {
    const done = await ctx.db.updateTable('account').set({ locked_at: null, failed_attempts: 0 }).where('id', '=', account.id).where('locked_at', '=', account.locked_at!).executeTakeFirst();
    if (Number(done.numUpdatedRows ?? 0) === 1) {
      await ctx.audit.record({ action: 'account.unlocked', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, by: 'automatic_after_minutes' } });
    }
  }, meta);
}

/**
 * Reserves one attempt for the account before anything is checked: true when this attempt may go
 * on (and is now counted), false when the account is locked or as many attempts as its threshold
 * allows are already counted or under way.
 */
export async function reserveAttempt(rt: Runtime, account: Account, meta: { ip: string | null; requestId: string | null }): Promise<boolean> {
  await unlockIfDue(rt, account, meta);
  const threshold = lockoutThreshold(rt, account.role);
  let q = rt.db.kysely
    .updateTable('account')
    .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) }))
    .where('id', '=', account.id)
    .where('locked_at', 'is', null);
  if (threshold !== null) q = q.where('failed_attempts', '<', threshold);
  const done = await q.executeTakeFirst();
  return Number(done.numUpdatedRows ?? 0) === 1;
}

/** A right answer: its reservation is given back (the count of earlier failures stays). */
export async function releaseAttempt(rt: Runtime, accountId: string): Promise<void> {
  await rt.db.kysely
    .updateTable('account')
    .set({ failed_attempts: sql<number>`CASE WHEN failed_attempts > 0 THEN failed_attempts - 1 ELSE 0 END` })
    .where('id', '=', accountId)
    .execute();
}

/** A complete sign-in: the count starts again. Inside the sign-in's transaction. */
export async function resetAttempts(ctx: Ctx, accountId: string): Promise<void> {
  await ctx.db.updateTable('account').set({ failed_attempts: 0 }).where('id', '=', accountId).where('failed_attempts', '!=', 0).execute();
}

/**
 * A wrong answer (already counted by its reservation): locks the account when the count has reached
 * the threshold, audited once, inside the caller's transaction. Returns the count and whether the
 * account is locked now.
 */
export async function confirmFailure(ctx: Ctx, rt: Runtime, account: Account, ip: string | null, via: string): Promise<{ failures: number; locked: boolean }> {
  const threshold = lockoutThreshold(rt, account.role);
  const row = await ctx.db.selectFrom('account').select(['failed_attempts', 'locked_at']).where('id', '=', account.id).executeTakeFirstOrThrow();
  if (threshold === null || row.failed_attempts < threshold) return { failures: row.failed_attempts, locked: row.locked_at !== null };
  if (row.locked_at) return { failures: row.failed_attempts, locked: true };
  const done = await ctx.db
    .updateTable('account')
    .set({ locked_at: ctx.clock.now().toISOString() })
    .where('id', '=', account.id)
    .where('locked_at', 'is', null)
    .executeTakeFirst();
  if (Number(done.numUpdatedRows ?? 0) === 1) {
    await ctx.audit.record({
      action: 'account.locked',
      target: `account:${account.id}`,
      severity: account.is_break_glass || account.role === 'administrator' ? 'high' : 'warning',
      details: { username: account.username, failures: row.failed_attempts, threshold, ip, via },
    });
  }
  return { failures: row.failed_attempts, locked: true };
}

export type CheckResult = 'ok' | 'wrong' | 'refused';

/**
 * The counted password check: reserve, then hash. A refused attempt still spends one argon2id
 * verification against a decoy, so a locked account costs and answers like an unknown one, but
 * its password is never compared. On 'ok' the reservation is already given back unless `keep` is
 * set (the caller then checks a second factor and releases or confirms itself).
 */
export async function checkPasswordCounted(
  rt: Runtime,
  account: Account & { password_hash: string | null },
  password: string,
  meta: { ip: string | null; requestId: string | null },
  options: { keep?: boolean } = {},
): Promise<CheckResult> {
  if (!account.password_hash || !(await reserveAttempt(rt, account, meta))) {
    await rt.hasher.verifyNothing(password);
    return 'refused';
  }
  let ok = false;
  try {
    ok = await rt.hasher.verify(account.password_hash, password);
  } catch (error) {
    // Not checked (the hasher is busy): not a failure of the person's.
    await releaseAttempt(rt, account.id);
    throw error;
  }
  if (ok && !options.keep) await releaseAttempt(rt, account.id);
  return ok ? 'ok' : 'wrong';
}
