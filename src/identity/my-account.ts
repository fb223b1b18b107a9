import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import type { Runtime } from '../runtime.js';
import { applyPassword, preparePassword } from './password-change.js';
import { mfaRequired } from './policy.js';
import type { SessionAccount } from './sessions.js';
import { storeTotp } from './sign-in.js';
import { checkTotp, newRecoveryCodes, newTotpSecret, recoveryCodeHash, totpQrSvg, totpUri } from './totp.js';

/**
 * What a signed-in person does to their own account: change their password, see and end their
 * sessions, manage their second factor (after proving themselves again), report their password
 * compromised.
 */
type Meta = { ip: string | null; requestId: string | null };

/** Re-authentication is good for this long before a second-factor change. */
export const REAUTH_MINUTES = 5;

const actorOf = (s: SessionAccount): Actor => ({ id: s.accountId, name: s.username, role: s.role });

async function account(rt: Runtime, id: string) {
  return rt.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

export async function changeOwnPassword(rt: Runtime, s: SessionAccount, input: { currentPassword: string; newPassword: string }, m: Meta): Promise<void> {
  const a = await account(rt, s.accountId);
  if (!a.password_hash || !(await rt.hasher.verify(a.password_hash, input.currentPassword))) {
    throw new GatehouseError('wrong_current_password', 400, 'The current password is not right.');
  }
  const prepared = await preparePassword({ db: rt.db.kysely, hasher: rt.hasher, profile: rt.profile, clock: rt.clock }, a, input.newPassword, input.currentPassword);
  // Every other session ends: if someone else was signed in as this person, they are out.
  await rt.trail.transaction(actorOf(s), (ctx) => applyPassword(ctx, a, rt.profile, prepared, { kind: 'changed', keepSessionId: s.sessionId, reason: 'self_service' }), m);
}

export interface SessionInfo {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

/** Sessions are named to their owner by a prefix of their stored id (itself a hash of the token). */
const handleOf = (id: string) => id.slice(0, 16);

export async function mySessions(rt: Runtime, s: SessionAccount): Promise<SessionInfo[]> {
  const now = rt.clock.now().toISOString();
  const rows = await rt.db.kysely
    .selectFrom('session')
    .selectAll()
    .where('account_id', '=', s.accountId)
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('last_seen_at', 'desc')
    .execute();
  return rows.map((r) => ({ id: handleOf(r.id), createdAt: r.created_at, lastSeenAt: r.last_seen_at, ip: r.ip, userAgent: r.user_agent, current: r.id === s.sessionId }));
}

export async function endMySessions(rt: Runtime, s: SessionAccount, which: 'others' | string, m: Meta): Promise<number> {
  return rt.trail.transaction(actorOf(s), async (ctx) => {
    let q = ctx.db.updateTable('session').set({ ended_at: ctx.clock.now().toISOString(), end_reason: 'signed_out_by_owner' }).where('account_id', '=', s.accountId).where('ended_at', 'is', null);
    q = which === 'others' ? q.where('id', '!=', s.sessionId) : q.where('id', 'like', `${which.replace(/[^0-9a-f]/g, '')}%`);
    const ended = Number((await q.executeTakeFirst()).numUpdatedRows ?? 0);
    if (which !== 'others' && ended === 0) throw new GatehouseError('not_found', 404, 'There is no such session of yours.');
    // "Sign out everywhere else" also stops a sign-in under way elsewhere (someone at the second-factor step).
    const signInsDropped = which === 'others' ? Number((await ctx.db.deleteFrom('sign_in_attempt').where('account_id', '=', s.accountId).executeTakeFirst()).numDeletedRows ?? 0) : 0;
    await ctx.audit.record({ action: 'session.ended_by_owner', target: `account:${s.accountId}`, details: { username: s.username, which: which === 'others' ? 'all_others' : 'one', ended, ...(which === 'others' ? { signInsDropped } : {}) } });
    return ended;
  }, m);
}

/** Proves the person is still at the keyboard: their password, and a code when they have MFA. */
export async function reauthenticate(rt: Runtime, s: SessionAccount, input: { password: string; code?: string }, m: Meta): Promise<void> {
  const a = await account(rt, s.accountId);
  let ok = Boolean(a.password_hash) && (await rt.hasher.verify(a.password_hash!, input.password));
  let step: number | null = null;
  if (ok && a.totp_secret) {
    step = await checkTotp(rt.secrets.open(a.totp_secret), (input.code ?? '').replace(/\s/g, ''), rt.clock, a.totp_last_step);
    ok = step !== null;
  }
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    if (ok) {
      await ctx.db.updateTable('session').set({ reauthenticated_at: ctx.clock.now().toISOString() }).where('id', '=', s.sessionId).execute();
      if (step !== null) await ctx.db.updateTable('account').set({ totp_last_step: step }).where('id', '=', s.accountId).execute();
    }
    await ctx.audit.record({ action: ok ? 'session.reauthenticated' : 'session.reauthentication_failed', target: `account:${s.accountId}`, severity: ok ? 'info' : 'warning', details: { username: s.username } });
  }, m);
  if (!ok) throw new GatehouseError('reauthentication_failed', 400, a.totp_secret ? 'The password or the code is not right.' : 'The password is not right.');
}

export async function requireRecentReauth(rt: Runtime, s: SessionAccount): Promise<void> {
  const row = await rt.db.kysely.selectFrom('session').select('reauthenticated_at').where('id', '=', s.sessionId).executeTakeFirst();
  const since = new Date(rt.clock.now().getTime() - REAUTH_MINUTES * 60_000).toISOString();
  if (!row?.reauthenticated_at || row.reauthenticated_at < since) {
    throw new GatehouseError('reauthentication_required', 403, 'Confirm it is you: enter your password (and a code, if you use MFA) before changing how you sign in.');
  }
}

export async function startTotpEnrolment(rt: Runtime, s: SessionAccount): Promise<{ secret: string; uri: string; qrSvg: string }> {
  await requireRecentReauth(rt, s);
  const secret = newTotpSecret();
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  const uri = totpUri(secret, `Gatehouse${school ? ` (${school.name})` : ''}`, s.username);
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

/** The person's app shows codes for the secret they were given; one of them confirms it. */
export async function confirmTotpEnrolment(rt: Runtime, s: SessionAccount, input: { secret: string; code: string }, m: Meta): Promise<string[]> {
  await requireRecentReauth(rt, s);
  if (!/^[A-Z2-7]{32,}$/.test(input.secret)) throw new GatehouseError('bad_secret', 400, 'That is not the secret Gatehouse gave you. Start again.');
  const step = await checkTotp(input.secret, input.code.replace(/\s/g, ''), rt.clock, null);
  if (step === null) throw new GatehouseError('wrong_code', 400, 'That code is not right. Check that the app shows the code for Gatehouse, and try the newest one.');
  const codes = newRecoveryCodes();
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    const before = await ctx.db.selectFrom('account').select('totp_enrolled_at').where('id', '=', s.accountId).executeTakeFirstOrThrow();
    await storeTotp(ctx, s.accountId, rt.secrets.seal(input.secret), step, codes);
    await ctx.audit.record({ action: before.totp_enrolled_at ? 'mfa.replaced' : 'mfa.enrolled', target: `account:${s.accountId}`, severity: 'notice', details: { username: s.username, method: 'totp', recoveryCodeCount: codes.length } });
  }, m);
  return codes;
}

export async function removeTotp(rt: Runtime, s: SessionAccount, m: Meta): Promise<void> {
  await requireRecentReauth(rt, s);
  const passkeys = await rt.db.kysely.selectFrom('passkey').select('id').where('account_id', '=', s.accountId).execute();
  if (passkeys.length === 0 && mfaRequired(rt.profile, s.role as Role, false)) {
    throw new GatehouseError('mfa_required', 409, 'Your role must use MFA, so the authenticator app cannot be removed. Set up a new one instead.');
  }
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    await ctx.db.updateTable('account').set({ totp_secret: null, totp_last_step: null, totp_enrolled_at: null }).where('id', '=', s.accountId).execute();
    if (passkeys.length === 0) await ctx.db.deleteFrom('recovery_code').where('account_id', '=', s.accountId).execute();
    await ctx.audit.record({ action: 'mfa.removed', target: `account:${s.accountId}`, severity: 'warning', details: { username: s.username, method: 'totp' } });
  }, m);
}

export async function regenerateRecoveryCodes(rt: Runtime, s: SessionAccount, m: Meta): Promise<string[]> {
  await requireRecentReauth(rt, s);
  const a = await account(rt, s.accountId);
  if (!a.totp_enrolled_at) throw new GatehouseError('mfa_not_enrolled', 409, 'Set up an authenticator app first.');
  const codes = newRecoveryCodes();
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    const now = ctx.clock.now().toISOString();
    await ctx.db.deleteFrom('recovery_code').where('account_id', '=', s.accountId).execute();
    await ctx.db.insertInto('recovery_code').values(codes.map((c) => ({ account_id: s.accountId, code_hash: recoveryCodeHash(c), created_at: now, used_at: null }))).execute();
    await ctx.audit.record({ action: 'mfa.recovery_codes_replaced', target: `account:${s.accountId}`, severity: 'notice', details: { username: s.username, count: codes.length } });
  }, m);
  return codes;
}
