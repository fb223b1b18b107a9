import { z } from 'zod';
import type { Role } from '../core/authz.js';
import type { Ctx } from '../core/context.js';
import { GatehouseError, conflict } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { endSession, type SessionAccount } from './sessions.js';

export const usernameSchema = z
  .string()
  .trim()
  .toLowerCase()
  .min(2, 'must be at least 2 characters')
  .max(64, 'must be at most 64 characters')
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'may use letters, digits, dots, dashes and underscores, starting with a letter or digit');

export interface NewAccount {
  username: string;
  displayName: string;
  email: string | null;
  role: Role;
  passwordHash: string | null;
  isBreakGlass?: boolean;
  /** A temporary password (AC-09): must be changed at first sign-in, stops working unused at this time. */
  temporaryExpiresAt?: string | null;
  /** AC-07: an administrator account belongs to this everyday account. */
  linkedAccountId?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  /** The id in the system the person came from (SCIM externalId, SDS sourcedId). */
  externalId?: string | null;
  /** manual, csv, sds, scim, guest-pool (GUEST_POOL_SOURCE) */
  source?: string;
  status?: 'active' | 'disabled';
}

/**
 * The guest desk's pool (AC-05): accounts Gatehouse keeps for visitors, not people from the
 * directory. Only the guest desk allocates them and ends their visits.
 */
export const GUEST_POOL_SOURCE = 'guest-pool';

/** Refuses to change a guest-pool account anywhere but at the guest desk; `instead` says what to do there. */
export function protectGuestPool(account: { source: string; username: string }, instead: string): void {
  if (account.source === GUEST_POOL_SOURCE) throw new GatehouseError('guest_pool_account', 409, `${account.username} belongs to the guest desk: ${instead}`);
}

/** Creates an account; the caller has checked the password and hashed it. */
export async function createAccount(ctx: Ctx, input: NewAccount): Promise<string> {
  const existing = await ctx.db.selectFrom('account').select('id').where('username', '=', input.username).executeTakeFirst();
  if (existing) throw conflict(`The username "${input.username}" is already taken.`, 'username_taken');
  const id = newId();
  const now = ctx.clock.now().toISOString();
  await ctx.db
    .insertInto('account')
    .values({
      id,
      username: input.username,
      display_name: input.displayName,
      email: input.email,
      role: input.role,
      password_hash: input.passwordHash,
      status: input.status ?? 'active',
      given_name: input.givenName ?? null,
      family_name: input.familyName ?? null,
      external_id: input.externalId ?? null,
      source: input.source ?? 'manual',
      is_break_glass: input.isBreakGlass ? 1 : 0,
      created_at: now,
      updated_at: now,
      linked_account_id: input.linkedAccountId ?? null,
      password_set_at: input.passwordHash ? now : null,
      must_change_password: input.temporaryExpiresAt ? 1 : 0,
      temporary_expires_at: input.temporaryExpiresAt ?? null,
    })
    .execute();
  await ctx.audit.record({
    action: 'account.created',
    target: `account:${id}`,
    severity: input.isBreakGlass || input.role === 'administrator' ? 'notice' : 'info',
    details: {
      username: input.username,
      role: input.role,
      breakGlass: input.isBreakGlass === true,
      mustChangeAtFirstSignIn: Boolean(input.temporaryExpiresAt),
      ...(input.source && input.source !== 'manual' ? { source: input.source } : {}),
      ...(input.externalId ? { externalId: input.externalId } : {}),
      ...(input.status === 'disabled' ? { status: 'disabled' } : {}),
      ...(input.linkedAccountId ? { linkedAccountId: input.linkedAccountId } : {}),
    },
  });
  return id;
}

export async function signOut(ctx: Ctx, session: SessionAccount): Promise<void> {
  await endSession(ctx, session.sessionId, 'signed_out');
  await ctx.audit.record({
    action: 'session.signed_out',
    target: `account:${session.accountId}`,
    details: { username: session.username },
  });
}
