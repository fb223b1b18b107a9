import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Role } from '../core/authz.js';
import type { Clock } from '../core/clock.js';
import type { Ctx } from '../core/context.js';
import { hashToken, newSecretToken } from '../core/ids.js';
import { groupOf, type Profile } from '../core/profile.js';
import type { Schema } from '../db/schema.js';

export interface SessionAccount {
  sessionId: string;
  accountId: string;
  username: string;
  displayName: string;
  role: Role;
  isBreakGlass: boolean;
  createdAt: string;
  expiresAt: string;
}

/** The token goes to the browser; only its SHA-256 is stored, so a database leak yields no sessions. */
export async function startSession(
  ctx: Ctx,
  accountId: string,
  role: Role,
  profile: Profile,
  client: { ip: string | null; userAgent: string | null },
): Promise<{ token: string; sessionId: string; expiresAt: string }> {
  const token = newSecretToken();
  const now = ctx.clock.now();
  const expiresAt = new Date(now.getTime() + profile.groups[groupOf(role)].sessions.absoluteHours * 3_600_000).toISOString();
  const sessionId = hashToken(token);
  await ctx.db
    .insertInto('session')
    .values({
      id: sessionId,
      account_id: accountId,
      created_at: now.toISOString(),
      last_seen_at: now.toISOString(),
      expires_at: expiresAt,
      ip: client.ip,
      user_agent: client.userAgent?.slice(0, 300) ?? null,
      ended_at: null,
      end_reason: null,
    })
    .execute();
  return { token, sessionId, expiresAt };
}

/**
 * Resolves a session token to its account, or undefined when it is unknown, ended, expired, idle
 * too long, or its account is no longer active. Activity is written at most once a minute.
 */
export async function resolveSession(
  db: Kysely<Schema>,
  clock: Clock,
  profile: Profile,
  token: string,
): Promise<SessionAccount | undefined> {
  if (token.length < 20 || token.length > 100) return undefined;
  const id = hashToken(token);
  const row = await db
    .selectFrom('session')
    .innerJoin('account', 'account.id', 'session.account_id')
    .select([
      'session.id as sessionId',
      'session.created_at as createdAt',
      'session.last_seen_at as lastSeenAt',
      'session.expires_at as expiresAt',
      'session.ended_at as endedAt',
      'account.id as accountId',
      'account.username as username',
      'account.display_name as displayName',
      'account.role as role',
      'account.status as status',
      'account.is_break_glass as isBreakGlass',
      'account.access_ends_at as accessEndsAt',
    ])
    .where('session.id', '=', id)
    .executeTakeFirst();
  if (!row || row.endedAt || row.status !== 'active') return undefined;
  const now = clock.now();
  const nowIso = now.toISOString();
  if (row.expiresAt <= nowIso) return undefined;
  if (row.accessEndsAt && row.accessEndsAt <= nowIso) return undefined;
  const idleLimit = new Date(now.getTime() - profile.groups[groupOf(row.role as Role)].sessions.idleMinutes * 60_000).toISOString();
  if (row.lastSeenAt <= idleLimit) return undefined;
  if (now.getTime() - Date.parse(row.lastSeenAt) > 60_000) {
    await db.updateTable('session').set({ last_seen_at: nowIso }).where('id', '=', id).execute();
  }
  return {
    sessionId: row.sessionId,
    accountId: row.accountId,
    username: row.username,
    displayName: row.displayName,
    role: row.role as Role,
    isBreakGlass: row.isBreakGlass === 1,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
  };
}

/**
 * An account's access ends now (disabled, rights changed, compromised, left): every open session
 * ends with `reason`, and any sign-in in progress is dropped.
 */
export async function endAccountAccess(ctx: Ctx, accountIds: string | string[], reason: string): Promise<{ sessionsEnded: number; signInsDropped: number }> {
  const ids = typeof accountIds === 'string' ? [accountIds] : accountIds;
  if (ids.length === 0) return { sessionsEnded: 0, signInsDropped: 0 };
  const ended = await ctx.db.updateTable('session').set({ ended_at: ctx.clock.now().toISOString(), end_reason: reason }).where('account_id', 'in', ids).where('ended_at', 'is', null).executeTakeFirst();
  const dropped = await ctx.db.deleteFrom('sign_in_attempt').where('account_id', 'in', ids).executeTakeFirst();
  return { sessionsEnded: Number(ended.numUpdatedRows ?? 0), signInsDropped: Number(dropped.numDeletedRows ?? 0) };
}

export async function endSession(ctx: Ctx, sessionId: string, reason: string): Promise<void> {
  await ctx.db
    .updateTable('session')
    .set({ ended_at: ctx.clock.now().toISOString(), end_reason: reason })
    .where('id', '=', sessionId)
    .where('ended_at', 'is', null)
    .execute();
}

/**
 * The anti-CSRF token for a session: derived from the session token, so nothing more is stored and
 * a page on another site, which cannot read the cookie, cannot produce it.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`gatehouse-csrf\0${sessionToken}`).digest('base64url');
}
