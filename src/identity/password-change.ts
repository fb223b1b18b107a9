import type { Kysely, Selectable } from 'kysely';
import type { Role } from '../core/authz.js';
import type { Clock } from '../core/clock.js';
import type { Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Profile } from '../core/profile.js';
import type { AccountTable, Schema } from '../db/schema.js';
import { acceptable, checkPassword, earnsExemption, type RuleResult } from './password-rules.js';
import type { PasswordHasher } from './passwords.js';
import { settingsFor, temporaryPasswordExpiresAt } from './policy.js';
import { endAccountAccess } from './sessions.js';

/** The account columns a password change reads. */
export type PasswordOwner = Pick<Selectable<AccountTable>, 'id' | 'username' | 'display_name' | 'email' | 'role' | 'password_hash'> &
  Partial<Pick<Selectable<AccountTable>, 'given_name' | 'family_name' | 'external_id'>>;

export interface PreparedPassword {
  hash: string;
  exempt: boolean;
}

export function contextFor(account: PasswordOwner, current: string | null = null) {
  // PW-03: the names and other details the directory records about the person.
  const names = [account.display_name, account.given_name, account.family_name].filter((n): n is string => Boolean(n));
  const personal = [account.email, account.external_id].filter((n): n is string => Boolean(n));
  return { username: account.username, names, personal, current };
}

export class PasswordRejected extends GatehouseError {
  constructor(readonly rules: RuleResult[]) {
    const failing = rules.filter((r) => !r.ok && !r.advisory);
    super(
      'password_rejected',
      400,
      `That password does not meet the school's rules: ${failing.map((r) => `${r.label.toLowerCase()}${r.detail ? ` (${r.detail})` : ''}`).join('; ')}.`,
      { rules },
    );
  }
}

/**
 * Checks a new password against the profile (PW-01..04, PW-10) and the person's history (PW-05),
 * and hashes it. Runs outside any transaction: it verifies against several argon2id hashes.
 */
export async function preparePassword(
  deps: { db: Kysely<Schema>; hasher: PasswordHasher; profile: Profile; clock: Clock },
  account: PasswordOwner,
  password: string,
  current: string | null = null,
): Promise<PreparedPassword> {
  const settings = settingsFor(deps.profile, account.role as Role);
  const rules = checkPassword(settings, password, contextFor(account, current));
  if (!acceptable(rules)) throw new PasswordRejected(rules);

  // Never the current password again, and none of those the profile's reuse rule covers.
  const candidates: string[] = account.password_hash ? [account.password_hash] : [];
  const { last, withinDays } = settings.passwords.reuse;
  if (last > 0 || withinDays > 0) {
    const history = await deps.db
      .selectFrom('password_history')
      .select(['password_hash', 'set_at'])
      .where('account_id', '=', account.id)
      .orderBy('set_at', 'desc')
      .execute();
    const since = new Date(deps.clock.now().getTime() - withinDays * 86_400_000).toISOString();
    // The current password counts as one of the last N.
    history.forEach((h, i) => {
      if (i < last - 1 || h.set_at >= since) candidates.push(h.password_hash);
    });
  }
  for (const hash of candidates) {
    if (await deps.hasher.verify(hash, password)) {
      const reuse: RuleResult = {
        id: 'reuse',
        requirement: 'PW-05',
        label: last || withinDays ? `Not one of your last ${last} passwords, nor one used in the last ${withinDays} days` : 'Not your current password',
        ok: false,
        detail: 'you have used this password before',
      };
      throw new PasswordRejected([...rules, reuse]);
    }
  }
  return { hash: await deps.hasher.hash(password), exempt: earnsExemption(settings, password) };
}

export type PasswordChangeKind = 'changed' | 'temporary_issued' | 'set_at_setup';

/**
 * Stores a prepared password: the old hash goes to the history (trimmed to what the reuse rule
 * needs), a temporary one must be changed at next sign-in and stops working after the profile's
 * limit, and the person's other sessions end and other sign-ins in progress are dropped (they may
 * have been someone else's; the one making the change, at sign-in, goes on). A temporary
 * password is issued by someone else (see temporary-password.ts#issueTemporaryPassword): every
 * session ends and every sign-in in progress is dropped, so none started with the old password
 * can finish. Returns when a temporary password stops working unused.
 */
export async function applyPassword(
  ctx: Ctx,
  account: PasswordOwner,
  profile: Profile,
  prepared: PreparedPassword,
  options: { kind: PasswordChangeKind; keepSessionId?: string | null; keepSignInId?: string | null; reason?: string },
): Promise<{ temporaryExpiresAt: string | null }> {
  const now = ctx.clock.now();
  const settings = settingsFor(profile, account.role as Role);
  const temporary = options.kind === 'temporary_issued';
  const temporaryExpiresAt = temporary ? temporaryPasswordExpiresAt(profile, account.role as Role, now) : null;
  if (account.password_hash) {
    await ctx.db.insertInto('password_history').values({ id: newId(), account_id: account.id, password_hash: account.password_hash, set_at: now.toISOString() }).execute();
    const keep = Math.max(settings.passwords.reuse.last, 1);
    const since = new Date(now.getTime() - settings.passwords.reuse.withinDays * 86_400_000).toISOString();
    const old = await ctx.db.selectFrom('password_history').select(['id', 'set_at']).where('account_id', '=', account.id).orderBy('set_at', 'desc').execute();
    const drop = old.filter((h, i) => i >= keep && h.set_at < since).map((h) => h.id);
    if (drop.length) await ctx.db.deleteFrom('password_history').where('id', 'in', drop).execute();
  }
  await ctx.db
    .updateTable('account')
    .set({
      password_hash: prepared.hash,
      password_set_at: now.toISOString(),
      password_expiry_exempt: prepared.exempt ? 1 : 0,
      must_change_password: temporary ? 1 : 0,
      temporary_expires_at: temporaryExpiresAt,
      failed_attempts: 0,
      locked_at: null,
      updated_at: now.toISOString(),
    })
    .where('id', '=', account.id)
    .execute();
  let ended: { sessionsEnded: number; signInsDropped: number };
  if (temporary) ended = await endAccountAccess(ctx, account.id, 'password_changed');
  else {
    let sessions = ctx.db.updateTable('session').set({ ended_at: now.toISOString(), end_reason: 'password_changed' }).where('account_id', '=', account.id).where('ended_at', 'is', null);
    if (options.keepSessionId) sessions = sessions.where('id', '!=', options.keepSessionId);
    // A sign-in started elsewhere with the old password, waiting at a step, must not finish either.
    let signIns = ctx.db.deleteFrom('sign_in_attempt').where('account_id', '=', account.id);
    if (options.keepSignInId) signIns = signIns.where('id', '!=', options.keepSignInId);
    ended = { sessionsEnded: Number((await sessions.executeTakeFirst()).numUpdatedRows ?? 0), signInsDropped: Number((await signIns.executeTakeFirst()).numDeletedRows ?? 0) };
  }
  await ctx.audit.record({
    action: temporary ? 'account.temporary_password_issued' : 'account.password_changed',
    target: `account:${account.id}`,
    severity: temporary ? 'notice' : 'info',
    details: {
      username: account.username,
      ...(temporary ? { expiresInHours: settings.passwords.temporaryExpiresHours } : { expiryExempt: prepared.exempt }),
      ...ended,
      ...(options.reason ? { reason: options.reason } : {}),
    },
  });
  return { temporaryExpiresAt };
}
