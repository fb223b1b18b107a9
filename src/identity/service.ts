import { z } from 'zod';
import type { AuditTrail } from '../audit/trail.js';
import type { Role } from '../core/authz.js';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError, conflict } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Profile } from '../core/profile.js';
import type { PasswordHasher } from './passwords.js';
import { csrfTokenFor, endSession, startSession, type SessionAccount } from './sessions.js';

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
      status: 'active',
      is_break_glass: input.isBreakGlass ? 1 : 0,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await ctx.audit.record({
    action: 'account.created',
    target: `account:${id}`,
    severity: input.isBreakGlass || input.role === 'administrator' ? 'notice' : 'info',
    details: { username: input.username, role: input.role, breakGlass: input.isBreakGlass === true },
  });
  return id;
}

export interface SignInResult {
  token: string;
  csrfToken: string;
  account: Pick<SessionAccount, 'accountId' | 'username' | 'displayName' | 'role' | 'isBreakGlass' | 'expiresAt'>;
}

export interface SignInClient {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

const signInFailed = () =>
  new GatehouseError('sign_in_failed', 401, 'That username and password do not match. Check them and try again.');

/**
 * Username and password to a session. Unknown usernames and disabled accounts cost the same
 * argon2id work and get the same answer as a wrong password. The hash is checked outside any
 * transaction: a transaction must never wait on 50 ms of hashing.
 */
export async function signIn(
  deps: { trail: AuditTrail; hasher: PasswordHasher; profile: Profile },
  input: { username: string; password: string },
  client: SignInClient,
): Promise<SignInResult> {
  const { trail, hasher, profile } = deps;
  const username = input.username.trim().toLowerCase().slice(0, 64);
  const account = await trail.database.kysely
    .selectFrom('account')
    .select(['id', 'username', 'display_name', 'role', 'status', 'password_hash', 'is_break_glass'])
    .where('username', '=', username)
    .executeTakeFirst();

  const usable = account && account.status === 'active' && account.password_hash;
  const passwordOk = usable
    ? await hasher.verify(account.password_hash!, input.password)
    : await hasher.verifyNothing(input.password);

  const meta = { ip: client.ip, requestId: client.requestId };
  if (!usable || !passwordOk) {
    await trail.transaction(
      account ? { id: account.id, name: account.username, role: account.role as Role } : { id: null, name: 'anonymous', role: null },
      (ctx) =>
        ctx.audit.record({
          action: 'session.sign_in_failed',
          target: account ? `account:${account.id}` : null,
          severity: account?.is_break_glass ? 'high' : 'notice',
          details: {
            username,
            reason: !account ? 'unknown_username' : account.status !== 'active' ? `account_${account.status}` : 'wrong_password',
            ip: client.ip,
          },
        }),
      meta,
    );
    throw signInFailed();
  }

  const rehash = hasher.needsRehash(account.password_hash!) ? await hasher.hash(input.password) : undefined;
  const actor: Actor = { id: account.id, name: account.username, role: account.role as Role };
  const session = await trail.transaction(
    actor,
    async (ctx) => {
      if (rehash) {
        await ctx.db.updateTable('account').set({ password_hash: rehash }).where('id', '=', account.id).execute();
      }
      const started = await startSession(ctx, account.id, account.role as Role, profile, client);
      await ctx.audit.record({
        action: 'session.signed_in',
        target: `account:${account.id}`,
        // AC-08: every use of the break-glass account stands out in the trail.
        severity: account.is_break_glass ? 'high' : 'info',
        details: { username: account.username, ip: client.ip, breakGlass: account.is_break_glass === 1, rehashed: rehash !== undefined },
      });
      return started;
    },
    meta,
  );
  return {
    token: session.token,
    csrfToken: csrfTokenFor(session.token),
    account: {
      accountId: account.id,
      username: account.username,
      displayName: account.display_name,
      role: account.role as Role,
      isBreakGlass: account.is_break_glass === 1,
      expiresAt: session.expiresAt,
    },
  };
}

export async function signOut(ctx: Ctx, session: SessionAccount): Promise<void> {
  await endSession(ctx, session.sessionId, 'signed_out');
  await ctx.audit.record({
    action: 'session.signed_out',
    target: `account:${session.accountId}`,
    details: { username: session.username },
  });
}
