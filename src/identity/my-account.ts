import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import type { Runtime } from '../runtime.js';
import { applyPassword, preparePassword } from './password-change.js';
import { mfaRequired } from './policy.js';
import type { SessionAccount } from './sessions.js';
import { recordFailure, refusedReason, storeTotp } from './sign-in.js';
import { checkPasswordCounted, releaseAttempt } from './lockout.js';
import { checkTotp, newRecoveryCodes, newTotpSecret, recoveryCodeHash, totpQrSvg, totpUri } from './totp.js';
import { checkAccountTotp, openSessionEnrolment, sealAccountTotp, sealSessionEnrolment } from './totp-secret.js';

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

/**
 * A wrong password (or code) typed inside a session counts towards the account's lockout like one at
 * the sign-in page (finding 11: a stolen session must not guess the owner's password for ever); when
 * the account locks, the session doing the guessing ends.
 */
async function failedInSession(rt: Runtime, s: SessionAccount, a: Awaited<ReturnType<typeof account>>, result: 'wrong' | 'refused', via: string, m: Meta): Promise<never> {
  const reason = result === 'wrong' ? 'wrong_password' : await refusedReason(rt, a.id);
  const client = { ip: m.ip, requestId: m.requestId, userAgent: null };
  const action = via === 'reauthentication' ? 'session.reauthentication_failed' : 'account.password_change_failed';
  const { locked } = await recordFailure(rt, a, a.username, reason, client, { counted: result === 'wrong', via, action, severity: 'warning' });
  if (locked || reason === 'account_locked') {
    await rt.trail.transaction(actorOf(s), async (ctx) => {
      await ctx.db.updateTable('session').set({ ended_at: ctx.clock.now().toISOString(), end_reason: 'account_locked' }).where('id', '=', s.sessionId).where('ended_at', 'is', null).execute();
      await ctx.audit.record({ action: 'session.ended_account_locked', target: `account:${s.accountId}`, severity: 'warning', details: { username: s.username, via } });
    }, m);
    throw new GatehouseError('account_locked', 401, 'Too many wrong passwords: this account is locked and you have been signed out. Ask the school’s IT administrator to unlock it.');
  }
  throw new GatehouseError(via === 'reauthentication' ? 'reauthentication_failed' : 'wrong_current_password', 400, via === 'reauthentication' ? (a.totp_secret ? 'The password or the code is not right.' : 'The password is not right.') : 'The current password is not right.');
}

export async function changeOwnPassword(rt: Runtime, s: SessionAccount, input: { currentPassword: string; newPassword: string }, m: Meta): Promise<void> {
  const a = await account(rt, s.accountId);
  const result = await checkPasswordCounted(rt, a, input.currentPassword, m);
  if (result !== 'ok') await failedInSession(rt, s, a, result, 'password_change', m);
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
  // Counted before checking, and kept counted until the code (when there is one) is right too.
  const result = await checkPasswordCounted(rt, a, input.password, m, { keep: true });
  let ok = result === 'ok';
  let step: number | null = null;
  if (ok && a.totp_secret) {
    step = await checkAccountTotp(rt, a, (input.code ?? '').replace(/\s/g, ''));
    ok = step !== null;
  }
  if (!ok) await failedInSession(rt, s, a, result === 'refused' ? 'refused' : 'wrong', 'reauthentication', m);
  await releaseAttempt(rt, a.id);
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    await ctx.db.updateTable('session').set({ reauthenticated_at: ctx.clock.now().toISOString() }).where('id', '=', s.sessionId).execute();
    if (step !== null) await ctx.db.updateTable('account').set({ totp_last_step: step }).where('id', '=', s.accountId).execute();
    await ctx.audit.record({ action: 'session.reauthenticated', target: `account:${s.accountId}`, severity: 'info', details: { username: s.username } });
  }, m);
}

/** What needs a recent re-authentication: changing how one signs in, and high-impact administration (issue 10, finding 12). */
export type ReauthPurpose = 'sign_in_methods' | 'privileged_role' | 'audit_export' | 'list_source';

const reauthReasons: Record<ReauthPurpose, string> = {
  sign_in_methods: 'before changing how you sign in',
  privileged_role: 'before giving anyone a privileged role',
  audit_export: 'before exporting the audit trail',
  list_source: 'before setting where a filtering list comes from',
};

/**
 * The session must have proved its owner is still there (password, and a code with MFA) in the
 * last REAUTH_MINUTES: a stolen session cookie alone does not do what this guards.
 */
export async function requireRecentReauth(rt: Runtime, s: SessionAccount, purpose: ReauthPurpose = 'sign_in_methods'): Promise<void> {
  const row = await rt.db.kysely.selectFrom('session').select('reauthenticated_at').where('id', '=', s.sessionId).executeTakeFirst();
  const since = new Date(rt.clock.now().getTime() - REAUTH_MINUTES * 60_000).toISOString();
  if (!row?.reauthenticated_at || row.reauthenticated_at < since) {
    throw new GatehouseError('reauthentication_required', 403, `Confirm it is you: enter your password (and a code, if you use MFA) ${reauthReasons[purpose]}.`, { purpose });
  }
}

/**
 * How a service asks for the step-up before a high-impact change: a route passes `stepUpFor` its
 * session; the command line, run by whoever holds the server, passes `noStepUp`. A service calls it
 * after its own checks (so a refused change is refused for its reason) and before it writes.
 */
export type StepUp = (purpose: ReauthPurpose) => Promise<void>;
export const stepUpFor = (rt: Runtime, s: SessionAccount | null | undefined): StepUp => async (purpose) => {
  if (!s) throw new GatehouseError('reauthentication_required', 403, 'Sign in and confirm it is you first.', { purpose });
  await requireRecentReauth(rt, s, purpose);
};
export const noStepUp: StepUp = async () => undefined;

/** An enrolment from My account waits this long for its first code. */
export const ENROLMENT_MINUTES = 10;

/**
 * A new secret, made here and kept here (sealed to this session and account) until the first code
 * confirms it: the browser is shown it to put in the app, but never sends it back, so whoever holds
 * the session cannot make Gatehouse accept a secret of their own choosing (issue 10, finding 11).
 */
export async function startTotpEnrolment(rt: Runtime, s: SessionAccount): Promise<{ secret: string; uri: string; qrSvg: string }> {
  await requireRecentReauth(rt, s);
  const secret = newTotpSecret();
  const expiresAt = new Date(rt.clock.now().getTime() + ENROLMENT_MINUTES * 60_000).toISOString();
  await rt.db.kysely
    .updateTable('session')
    .set({ pending_totp_secret: sealSessionEnrolment(rt, { id: s.sessionId, account_id: s.accountId }, secret), pending_totp_expires_at: expiresAt })
    .where('id', '=', s.sessionId)
    .execute();
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  const uri = totpUri(secret, `Gatehouse${school ? ` (${school.name})` : ''}`, s.username);
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

/** The person's app shows codes for the secret this session was given; one of them confirms it. Only the code comes from the browser. */
export async function confirmTotpEnrolment(rt: Runtime, s: SessionAccount, input: { code: string }, m: Meta): Promise<string[]> {
  await requireRecentReauth(rt, s);
  const pending = await rt.db.kysely.selectFrom('session').select(['id', 'account_id', 'pending_totp_secret', 'pending_totp_expires_at']).where('id', '=', s.sessionId).executeTakeFirst();
  const live = pending?.pending_totp_secret && pending.account_id === s.accountId && pending.pending_totp_expires_at && pending.pending_totp_expires_at > rt.clock.now().toISOString();
  const secret = live ? await openSessionEnrolment(rt, pending, s.username) : undefined;
  if (!secret) throw new GatehouseError('no_enrolment', 409, 'There is no authenticator set-up under way here, or it took too long. Start again.');
  const step = await checkTotp(secret, input.code.replace(/\s/g, ''), rt.clock, null);
  if (step === null) throw new GatehouseError('wrong_code', 400, 'That code is not right. Check that the app shows the code for Gatehouse, and try the newest one.');
  const codes = newRecoveryCodes();
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    // Used once: the pending secret goes as the account's secret is stored (compare-and-set, so two confirmations cannot both enrol).
    const taken = await ctx.db
      .updateTable('session')
      .set({ pending_totp_secret: null, pending_totp_expires_at: null })
      .where('id', '=', s.sessionId)
      .where('pending_totp_secret', '=', pending!.pending_totp_secret)
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows ?? 0) !== 1) throw new GatehouseError('no_enrolment', 409, 'There is no authenticator set-up under way here, or it took too long. Start again.');
    const before = await ctx.db.selectFrom('account').select('totp_enrolled_at').where('id', '=', s.accountId).executeTakeFirstOrThrow();
    await storeTotp(ctx, s.accountId, sealAccountTotp(rt, s.accountId, secret), step, codes.map((c) => recoveryCodeHash(rt.keyedHash, s.accountId, c)));
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
    await ctx.db.insertInto('recovery_code').values(codes.map((c) => ({ account_id: s.accountId, code_hash: recoveryCodeHash(rt.keyedHash, s.accountId, c), created_at: now, used_at: null }))).execute();
    await ctx.audit.record({ action: 'mfa.recovery_codes_replaced', target: `account:${s.accountId}`, severity: 'notice', details: { username: s.username, count: codes.length } });
  }, m);
  return codes;
}
