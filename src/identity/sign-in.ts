import type { Selectable } from 'kysely';
import { permissionsOf, roleLabels, type Permission, type Role } from '../core/authz.js';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { hashToken, newSecretToken } from '../core/ids.js';
import { groupOf } from '../core/profile.js';
import { usernameHashOf } from '../core/keyed-hash.js';
import type { AccountTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { acceptAupVersion, currentAup, hasAccepted, type AupVersion } from './aup.js';
import { applyPassword, preparePassword } from './password-change.js';
import { checkPassword, type RuleResult } from './password-rules.js';
import { mfaRequired, passwordExpiresAt, settingsFor } from './policy.js';
import { csrfTokenFor, startSession } from './sessions.js';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { notifyContact } from './notify.js';
import { checkPasskeyAssertion, type RelyingParty } from './passkeys.js';
import { checkTotp, newRecoveryCodes, newTotpSecret, recoveryCodeHash, totpQrSvg, totpUri } from './totp.js';
import { checkAccountTotp, openEnrolmentSecret, sealAccountTotp, sealEnrolmentSecret } from './totp-secret.js';
import { checkPasswordCounted, confirmFailure, lockedNow, releaseAttempt, reserveAttempt, resetAttempts } from './lockout.js';

/**
 * Signing in, step by step: username and password, then — as the profile and the account require —
 * the second factor, the Acceptable Use Policy (AC-06), a forced password change (PW-08, PW-06),
 * MFA enrolment (AC-07, AC-14), and only then a session. Between steps the browser holds a
 * short-lived sign-in token (its own __Host- cookie); the steps still to do are worked out afresh
 * from the account each time, so nothing can be skipped by replaying an earlier answer.
 *
 * The second factor comes straight after the password when the account has one, so someone who
 * has only the password cannot go on to accept policies or change it.
 */

type Account = Selectable<AccountTable>;

export const SIGN_IN_MINUTES = 10;
const MFA_FAILURES_ALLOWED = 5;

export type Step =
  | { step: 'mfa'; methods: Array<'totp' | 'recovery_code' | 'passkey'> }
  | { step: 'aup'; aup: AupVersion }
  | { step: 'change_password'; reason: 'temporary' | 'expired' | 'required'; rules: RuleResult[] }
  | { step: 'mfa_enrol'; secret: string; uri: string; qrSvg: string; reason: 'administrator' | 'profile' | 'offsite' };

export interface SignedInAccount {
  accountId: string;
  username: string;
  displayName: string;
  role: Role;
  roleLabel: string;
  permissions: Permission[];
  isBreakGlass: boolean;
  expiresAt: string;
  mfaEnrolled: boolean;
  passwordExpiresAt: string | null;
}

export type Outcome =
  | { status: 'pending'; token: string; csrfToken: string; step: Step; banner: string | null; username: string }
  | {
      status: 'signed_in';
      token: string;
      csrfToken: string;
      account: SignedInAccount;
      banner: string | null;
      /** PW-06: shown when the password expires within the profile's reminder period. */
      passwordReminder: string | null;
      /** Shown once, right after MFA enrolment. */
      recoveryCodes?: string[];
    };

export interface Client {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

const signInFailed = () =>
  new GatehouseError('sign_in_failed', 401, 'That username and password do not match. Check them and try again.');

const attemptEnded = () =>
  new GatehouseError('sign_in_expired', 401, 'This sign-in has timed out or was cancelled. Please sign in again.');

const actorOf = (a: Pick<Account, 'id' | 'username' | 'role'>): Actor => ({ id: a.id, name: a.username, role: a.role as Role });

/** AC-05: a guest's access ends at the time set at reception. */
function accessEnded(rt: Runtime, account: Account): boolean {
  return account.access_ends_at !== null && account.access_ends_at <= rt.clock.now().toISOString();
}

async function loadAccount(rt: Runtime, id: string): Promise<Account> {
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirst();
  // A lock (by guesses made here or anywhere else) ends every sign-in under way for the account.
  if (!account || account.status !== 'active' || accessEnded(rt, account) || lockedNow(rt, account)) throw attemptEnded();
  return account;
}

/**
 * A failed password or second factor, audited either way. `counted`: the attempt was counted by its
 * reservation (lockout.ts) before it was checked; here the account locks on reaching the threshold.
 * `via` says which door it came through (sign_in, second_factor, proxy, reauthentication, ...).
 */
export async function recordFailure(
  rt: Runtime,
  account: Account | undefined,
  username: string,
  reason: string,
  client: Client,
  options: { counted?: boolean; via?: string; action?: string; severity?: 'notice' | 'warning' } = {},
): Promise<{ locked: boolean }> {
  rt.throttle.recordFailure(client.ip);
  const meta = { ip: client.ip, requestId: client.requestId };
  const via = options.via ?? 'sign_in';
  const action = options.action ?? 'session.sign_in_failed';
  if (!account) {
    await rt.trail.transaction({ id: null, name: 'anonymous', role: null }, (ctx) =>
      // A username that matches no account is kept only as a keyed hash: people type their password there.
      ctx.audit.record({ action, severity: 'notice', details: { usernameHash: usernameHashOf(rt.keyedHash, username), reason, ip: client.ip, ...(via !== 'sign_in' ? { via } : {}) } }), meta);
    return { locked: false };
  }
  return rt.trail.transaction(actorOf(account), async (ctx) => {
    const counted = options.counted ? await confirmFailure(ctx, rt, account, client.ip, via) : undefined;
    await ctx.audit.record({
      action,
      target: `account:${account.id}`,
      severity: account.is_break_glass || account.role === 'administrator' ? 'high' : (options.severity ?? 'notice'),
      details: { username: account.username, reason, ...(counted ? { failures: counted.failures } : {}), ip: client.ip, ...(via !== 'sign_in' ? { via } : {}) },
    });
    return { locked: counted?.locked ?? false };
  }, meta);
}

/** Why a reserved attempt was refused: the account is locked, or its allowance is all under way. */
export async function refusedReason(rt: Runtime, accountId: string): Promise<string> {
  const row = await rt.db.kysely.selectFrom('account').select(['locked_at', 'role']).where('id', '=', accountId).executeTakeFirst();
  return row && lockedNow(rt, row) ? 'account_locked' : 'attempts_in_progress';
}

/** Step one: the password. Unknown, disabled and locked accounts cost and answer the same. */
export async function startSignIn(rt: Runtime, input: { username: string; password: string }, client: Client): Promise<Outcome> {
  const wait = rt.throttle.retryAfter(client.ip);
  if (wait > 0) {
    throw new GatehouseError('too_many_attempts', 429, `Too many failed sign-ins from this network. Try again in ${Math.ceil(wait / 60)} minute${wait > 60 ? 's' : ''}.`, { retryAfterSeconds: wait });
  }
  const username = input.username.trim().toLowerCase().slice(0, 64);
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirst();
  const usable = account && account.status === 'active' && !accessEnded(rt, account) && account.password_hash;
  // PW-07: the attempt is counted (reserved) before the password is hashed; beyond the threshold it
  // is refused without the password being compared, at the same cost as an unknown username.
  const meta = { ip: client.ip, requestId: client.requestId };
  const result = usable ? await checkPasswordCounted(rt, account, input.password, meta) : (await rt.hasher.verifyNothing(input.password), 'unusable' as const);

  if (!account) {
    await recordFailure(rt, undefined, username, 'unknown_username', client);
    throw signInFailed();
  }
  if (result !== 'ok') {
    const reason =
      result === 'wrong' ? 'wrong_password'
      : result === 'refused' ? await refusedReason(rt, account.id)
      : account.status !== 'active' ? `account_${account.status}` : accessEnded(rt, account) ? 'access_ended' : 'no_password';
    await recordFailure(rt, account, username, reason, client, { counted: result === 'wrong' });
    throw signInFailed();
  }
  if (account.must_change_password && account.temporary_expires_at && account.temporary_expires_at <= rt.clock.now().toISOString()) {
    await recordFailure(rt, account, username, 'temporary_password_expired', client);
    throw signInFailed();
  }

  const rehash = rt.hasher.needsRehash(account.password_hash!) ? await rt.hasher.hash(input.password) : undefined;
  const token = newSecretToken();
  const now = rt.clock.now();
  const attempt: Attempt = {
    id: hashToken(token),
    account_id: account.id,
    expires_at: new Date(now.getTime() + SIGN_IN_MINUTES * 60_000).toISOString(),
    offsite: rt.trustedNetworks.contains(client.ip) ? 0 : 1,
    mfa_verified: 0,
    mfa_failures: 0,
    challenge: null,
    pending_totp_secret: null,
  };
  // Most sign-ins need no further step: then one transaction does everything (the hot path of
  // the morning rush). Otherwise the attempt is stored and the browser is sent to the next step.
  const step = await nextStep(rt, account, attempt, false);
  const session = await rt.trail.transaction(actorOf(account), async (ctx) => {
    // The failure count is not reset here: only a complete sign-in does that (openSession), so a
    // right password followed by wrong codes keeps counting towards the lock (finding 3).
    if (rehash) await ctx.db.updateTable('account').set({ password_hash: rehash }).where('id', '=', account.id).execute();
    if (!step) return openSession(ctx, rt, account, attempt, client, false);
    await ctx.db
      .insertInto('sign_in_attempt')
      .values({
        ...attempt,
        created_at: now.toISOString(),
        ip: client.ip,
        user_agent: client.userAgent?.slice(0, 300) ?? null,
        pending_totp_secret: step.step === 'mfa_enrol' ? sealEnrolmentSecret(rt, attempt, step.secret) : null,
      })
      .execute();
    return undefined;
  }, { ip: client.ip, requestId: client.requestId });
  const banner = settingsFor(rt.profile, account.role as Role).banner;
  if (step) return { status: 'pending', token, csrfToken: csrfTokenFor(token), step, banner, username: account.username };
  return signedIn(rt, account, session!, client, banner);
}

interface Attempt {
  id: string;
  account_id: string;
  expires_at: string;
  offsite: number;
  mfa_verified: number;
  mfa_failures: number;
  challenge: string | null;
  pending_totp_secret: string | null;
}

export async function loadAttempt(rt: Runtime, token: string | undefined | null): Promise<Attempt> {
  if (!token || token.length > 100) throw attemptEnded();
  const attempt = await rt.db.kysely.selectFrom('sign_in_attempt').selectAll().where('id', '=', hashToken(token)).executeTakeFirst();
  if (!attempt || attempt.expires_at <= rt.clock.now().toISOString()) throw attemptEnded();
  return attempt;
}

async function hasPasskey(rt: Runtime, accountId: string): Promise<boolean> {
  return (await rt.db.kysely.selectFrom('passkey').select('id').where('account_id', '=', accountId).limit(1).executeTakeFirst()) !== undefined;
}

/** What the account still needs before it gets a session, in order; null when nothing. */
async function nextStep(rt: Runtime, account: Account, attempt: Attempt, persisted = true): Promise<Step | null> {
  const role = account.role as Role;
  const settings = settingsFor(rt.profile, role);
  const passkey = await hasPasskey(rt, account.id);
  const enrolled = account.totp_enrolled_at !== null || passkey;
  if (enrolled && !attempt.mfa_verified) {
    const methods: Array<'totp' | 'recovery_code' | 'passkey'> = [];
    if (account.totp_enrolled_at) methods.push('totp');
    if (passkey) methods.push('passkey');
    methods.push('recovery_code');
    return { step: 'mfa', methods };
  }
  if (settings.aup.required) {
    const aup = await currentAup(rt.db.kysely, groupOf(role));
    if (aup && !(await hasAccepted(rt.db.kysely, account.id, aup.id))) return { step: 'aup', aup };
  }
  const expiresAt = passwordExpiresAt(rt.profile, role, account.password_set_at, account.password_expiry_exempt === 1);
  if (account.must_change_password || (expiresAt && expiresAt <= rt.clock.now().toISOString())) {
    const reason = account.must_change_password ? (account.temporary_expires_at ? 'temporary' : 'required') : 'expired';
    return { step: 'change_password', reason, rules: checkPassword(settings, '', {}) };
  }
  if (!enrolled && mfaRequired(rt.profile, role, attempt.offsite === 1)) {
    let secret = await openEnrolmentSecret(rt, attempt, account.username);
    if (!secret) {
      secret = newTotpSecret();
      if (persisted) await rt.db.kysely.updateTable('sign_in_attempt').set({ pending_totp_secret: sealEnrolmentSecret(rt, attempt, secret) }).where('id', '=', attempt.id).execute();
    }
    const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
    const uri = totpUri(secret, `Gatehouse${school ? ` (${school.name})` : ''}`, account.username);
    const reason = role === 'administrator' ? 'administrator' : settings.mfa.always ? 'profile' : 'offsite';
    return { step: 'mfa_enrol', secret, uri, qrSvg: await totpQrSvg(uri), reason };
  }
  return null;
}

function describeAccount(rt: Runtime, account: Account, expiresAt: string): SignedInAccount {
  const role = account.role as Role;
  return {
    accountId: account.id,
    username: account.username,
    displayName: account.display_name,
    role,
    roleLabel: roleLabels[role],
    permissions: permissionsOf(role),
    isBreakGlass: account.is_break_glass === 1,
    expiresAt,
    mfaEnrolled: account.totp_enrolled_at !== null,
    passwordExpiresAt: passwordExpiresAt(rt.profile, role, account.password_set_at, account.password_expiry_exempt === 1),
  };
}

export async function accountView(rt: Runtime, accountId: string, expiresAt: string): Promise<SignedInAccount> {
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', accountId).executeTakeFirstOrThrow();
  return describeAccount(rt, account, expiresAt);
}

function reminderFor(rt: Runtime, account: SignedInAccount): string | null {
  if (!account.passwordExpiresAt) return null;
  const days = Math.ceil((Date.parse(account.passwordExpiresAt) - rt.clock.now().getTime()) / 86_400_000);
  const remind = settingsFor(rt.profile, account.role).passwords.remindDaysBefore;
  if (days > remind) return null;
  return `Your password expires ${days <= 1 ? 'tomorrow' : `in ${days} days`} (${account.passwordExpiresAt.slice(0, 10)}). Change it now from My account.`;
}

/** Starts the session and records the sign-in, inside the caller's transaction. */
async function openSession(ctx: Ctx, rt: Runtime, account: Account, attempt: Attempt, client: Client, stored = true) {
  if (stored) await ctx.db.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
  // Every factor passed: the failure count starts again (PW-07).
  await resetAttempts(ctx, account.id);
  const started = await startSession(ctx, account.id, account.role as Role, rt.profile, client);
  await ctx.audit.record({
    action: 'session.signed_in',
    target: `account:${account.id}`,
    // AC-08: every use of the break-glass account stands out in the trail.
    severity: account.is_break_glass ? 'high' : 'info',
    details: {
      username: account.username,
      ip: client.ip,
      offsite: attempt.offsite === 1,
      secondFactor: attempt.mfa_verified === 1,
      breakGlass: account.is_break_glass === 1,
    },
  });
  return started;
}

function signedIn(rt: Runtime, account: Account, session: { token: string; expiresAt: string }, client: Client, banner: string | null, extra: { recoveryCodes?: string[] } = {}): Outcome {
  if (account.is_break_glass) void notifyBreakGlassUse(rt, account, client);
  const view = describeAccount(rt, account, session.expiresAt);
  return {
    status: 'signed_in',
    token: session.token,
    csrfToken: csrfTokenFor(session.token),
    account: view,
    banner,
    passwordReminder: reminderFor(rt, view),
    ...(extra.recoveryCodes ? { recoveryCodes: extra.recoveryCodes } : {}),
  };
}

/** Works out the next step, or finishes with a session. */
async function advance(rt: Runtime, token: string, client: Client, extra: { recoveryCodes?: string[] } = {}): Promise<Outcome> {
  const attempt = await loadAttempt(rt, token);
  const account = await loadAccount(rt, attempt.account_id);
  const banner = settingsFor(rt.profile, account.role as Role).banner;
  const step = await nextStep(rt, account, attempt);
  if (step) return { status: 'pending', token, csrfToken: csrfTokenFor(token), step, banner, username: account.username };
  const session = await rt.trail.transaction(actorOf(account), (ctx) => openSession(ctx, rt, account, attempt, client), { ip: client.ip, requestId: client.requestId });
  return signedIn(rt, account, session, client, banner, extra);
}

/** AC-08: the named headteacher hears at once whenever the master account is used. */
function notifyBreakGlassUse(rt: Runtime, account: Account, client: Client): Promise<void> {
  return notifyContact(rt, 'headteacher', {
    about: 'break_glass_sign_in',
    target: `account:${account.id}`,
    compose: (name, school) => ({
      subject: `Gatehouse: the master (break-glass) account was used at ${school}`,
      text:
        `Dear ${name},\n\nThe master (break-glass) administrator account "${account.username}" signed in to Gatehouse at ` +
        `${rt.clock.now().toISOString()} from ${client.ip ?? 'an unknown address'}.\n\nThis account is for recovering or revoking access only. ` +
        `If you did not expect this, contact your IT provider and check the audit trail now.\n\n— Gatehouse`,
    }),
  });
}

export async function currentStep(rt: Runtime, token: string | undefined, client: Client): Promise<Outcome> {
  await loadAttempt(rt, token);
  return advance(rt, token!, client);
}

/** The second factor: a TOTP code (each accepted once) or an unused recovery code. */
export async function submitSecondFactor(
  rt: Runtime,
  token: string | undefined,
  input: { code?: string; recoveryCode?: string; passkey?: { rp: RelyingParty; response: AuthenticationResponseJSON } },
  client: Client,
): Promise<Outcome> {
  const attempt = await loadAttempt(rt, token);
  const account = await loadAccount(rt, attempt.account_id);
  const meta = { ip: client.ip, requestId: client.requestId };
  // Both counts are taken before the code is looked at, each by one conditional update, so codes
  // sent in parallel cannot all be checked: this sign-in's own allowance, then the account's lockout.
  const slot = await rt.db.kysely
    .updateTable('sign_in_attempt')
    .set((eb) => ({ mfa_failures: eb('mfa_failures', '+', 1) }))
    .where('id', '=', attempt.id)
    .where('mfa_failures', '<', MFA_FAILURES_ALLOWED)
    .executeTakeFirst();
  if (Number(slot.numUpdatedRows ?? 0) !== 1) {
    await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
    throw new GatehouseError('sign_in_expired', 401, 'Too many wrong codes. Please sign in again.');
  }
  if (!(await reserveAttempt(rt, account, meta))) {
    await recordFailure(rt, account, account.username, await refusedReason(rt, account.id), client, { via: 'second_factor' });
    await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
    throw attemptEnded();
  }
  let ok = false;
  let method = 'totp';
  try {
    if (input.code && account.totp_secret) {
      const step = await checkAccountTotp(rt, account, input.code.replace(/\s/g, ''));
      if (step !== null) {
        ok = true;
        await rt.db.kysely.updateTable('account').set({ totp_last_step: step }).where('id', '=', account.id).execute();
      }
    } else if (input.passkey) {
      method = 'passkey';
      ok = await checkPasskeyAssertion(rt, attempt, input.passkey.rp, input.passkey.response);
    } else if (input.recoveryCode) {
      method = 'recovery_code';
      const used = await rt.db.kysely
        .updateTable('recovery_code')
        .set({ used_at: rt.clock.now().toISOString() })
        .where('account_id', '=', account.id)
        .where('code_hash', '=', recoveryCodeHash(rt.keyedHash, account.id, input.recoveryCode))
        .where('used_at', 'is', null)
        .executeTakeFirst();
      ok = Number(used.numUpdatedRows ?? 0) === 1;
    }
  } catch (error) {
    await recordFailure(rt, account, account.username, 'wrong_second_factor', client, { counted: true, via: 'second_factor' });
    throw error;
  }
  if (!ok) {
    const { locked } = await recordFailure(rt, account, account.username, 'wrong_second_factor', client, { counted: true, via: 'second_factor' });
    const row = await rt.db.kysely.selectFrom('sign_in_attempt').select('mfa_failures').where('id', '=', attempt.id).executeTakeFirst();
    if (locked || !row || row.mfa_failures >= MFA_FAILURES_ALLOWED) {
      await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
      throw new GatehouseError('sign_in_expired', 401, 'Too many wrong codes. Please sign in again.');
    }
    throw new GatehouseError(
      'wrong_code',
      400,
      method === 'passkey' ? 'That passkey was not accepted. Try again, or use a code.' : 'That code is not right, or has already been used. Check your authenticator app and try again.',
    );
  }
  await releaseAttempt(rt, account.id);
  await rt.trail.transaction(actorOf(account), async (ctx) => {
    await ctx.db.updateTable('sign_in_attempt').set({ mfa_verified: 1 }).where('id', '=', attempt.id).execute();
    if (method === 'recovery_code') {
      const left = await ctx.db.selectFrom('recovery_code').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', account.id).where('used_at', 'is', null).executeTakeFirstOrThrow();
      await ctx.audit.record({ action: 'mfa.recovery_code_used', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, remaining: Number(left.n) } });
    }
  }, { ip: client.ip, requestId: client.requestId });
  return advance(rt, token!, client);
}

export async function acceptAupAtSignIn(rt: Runtime, token: string | undefined, versionId: string, client: Client): Promise<Outcome> {
  const attempt = await loadAttempt(rt, token);
  const account = await loadAccount(rt, attempt.account_id);
  const step = await nextStep(rt, account, attempt);
  if (step?.step !== 'aup') throw new GatehouseError('wrong_step', 409, 'This step is not due now.');
  await rt.trail.transaction(actorOf(account), (ctx) => acceptAupVersion(ctx, account.id, account.username, versionId), { ip: client.ip, requestId: client.requestId });
  return advance(rt, token!, client);
}

/** PW-08 and PW-06: a temporary, expired or compromised password is replaced before going on. */
export async function changePasswordAtSignIn(rt: Runtime, token: string | undefined, input: { currentPassword: string; newPassword: string }, client: Client): Promise<Outcome> {
  const attempt = await loadAttempt(rt, token);
  const account = await loadAccount(rt, attempt.account_id);
  const step = await nextStep(rt, account, attempt);
  if (step?.step !== 'change_password') throw new GatehouseError('wrong_step', 409, 'This step is not due now.');
  // The current password is checked again here: counted like any other guess (finding 11).
  const result = await checkPasswordCounted(rt, account, input.currentPassword, { ip: client.ip, requestId: client.requestId });
  if (result !== 'ok') {
    const reason = result === 'wrong' ? 'wrong_current_password' : await refusedReason(rt, account.id);
    const { locked } = await recordFailure(rt, account, account.username, reason, client, { counted: result === 'wrong', via: 'password_change_at_sign_in' });
    if (locked || result === 'refused') {
      await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
      throw attemptEnded();
    }
    throw new GatehouseError('wrong_current_password', 400, 'The current password is not right.');
  }
  const prepared = await preparePassword({ db: rt.db.kysely, hasher: rt.hasher, profile: rt.profile, clock: rt.clock }, account, input.newPassword, input.currentPassword);
  await rt.trail.transaction(actorOf(account), (ctx) => applyPassword(ctx, account, rt.profile, prepared, { kind: 'changed', keepSignInId: attempt.id, reason: `at_sign_in_${step.reason}` }), {
    ip: client.ip,
    requestId: client.requestId,
  });
  return advance(rt, token!, client);
}

/** MFA enrolment during sign-in: the code from the app proves the secret was stored; recovery codes are shown once. */
export async function confirmEnrolmentAtSignIn(rt: Runtime, token: string | undefined, code: string, client: Client): Promise<Outcome> {
  const attempt = await loadAttempt(rt, token);
  const account = await loadAccount(rt, attempt.account_id);
  if (!attempt.pending_totp_secret) throw new GatehouseError('wrong_step', 409, 'This step is not due now.');
  const secret = (await openEnrolmentSecret(rt, attempt, account.username))!;
  const step = await checkTotp(secret, code.replace(/\s/g, ''), rt.clock, null);
  if (step === null) throw new GatehouseError('wrong_code', 400, 'That code is not right. Check that the app shows the code for Gatehouse, and try the newest one.');
  const codes = newRecoveryCodes();
  await rt.trail.transaction(actorOf(account), async (ctx) => {
    await storeTotp(ctx, account.id, sealAccountTotp(rt, account.id, secret), step, codes.map((c) => recoveryCodeHash(rt.keyedHash, account.id, c)));
    await ctx.db.updateTable('sign_in_attempt').set({ mfa_verified: 1, pending_totp_secret: null }).where('id', '=', attempt.id).execute();
    await ctx.audit.record({ action: 'mfa.enrolled', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, method: 'totp', recoveryCodeCount: codes.length, duringSignIn: true } });
  }, { ip: client.ip, requestId: client.requestId });
  return advance(rt, token!, client, { recoveryCodes: codes });
}

/** `codeHashes`: the recovery codes as `recoveryCodeHash` stores them (keyed, salted with the account id). */
export async function storeTotp(ctx: Ctx, accountId: string, sealedSecret: string, step: number, codeHashes: string[]): Promise<void> {
  const now = ctx.clock.now().toISOString();
  await ctx.db.updateTable('account').set({ totp_secret: sealedSecret, totp_last_step: step, totp_enrolled_at: now }).where('id', '=', accountId).execute();
  await ctx.db.deleteFrom('recovery_code').where('account_id', '=', accountId).execute();
  await ctx.db.insertInto('recovery_code').values(codeHashes.map((h) => ({ account_id: accountId, code_hash: h, created_at: now, used_at: null }))).execute();
}

export async function cancelSignIn(rt: Runtime, token: string | undefined): Promise<void> {
  if (!token) return;
  await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', hashToken(token)).execute();
}

/**
 * The web proxy's sign-in (FI-01/FI-02, finding 4 of issue 10): the same counted, throttled, audited
 * password check as the sign-in page. Basic authentication has no further steps, so an account that
 * still has one to do at the console — a temporary, expired or must-change password, an Acceptable
 * Use Policy to accept — is refused here (audited, not counted: the password was right), as are
 * administrators (no second factor over Basic authentication). A right password resets the failure
 * count only for an account with no second factor: with one, the proxy is not a complete sign-in,
 * and resetting would let "right password, wrong codes" go on for ever (finding 3).
 */
export async function checkProxySignIn(rt: Runtime, input: { username: string; password: string }, client: Client): Promise<{ ok: true; username: string } | { ok: false; reason: string }> {
  const via = 'proxy';
  if (rt.throttle.retryAfter(client.ip) > 0) return { ok: false, reason: 'address_throttled' };
  const username = input.username.trim().toLowerCase().slice(0, 64);
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirst();
  const usable = account && account.status === 'active' && !accessEnded(rt, account) && account.password_hash && account.role !== 'administrator';
  const meta = { ip: client.ip, requestId: client.requestId };
  const result = usable ? await checkPasswordCounted(rt, account, input.password, meta) : (await rt.hasher.verifyNothing(input.password), 'unusable' as const);
  if (!account) {
    await recordFailure(rt, undefined, username, 'unknown_username', client, { via });
    return { ok: false, reason: 'unknown_username' };
  }
  if (result !== 'ok') {
    const reason =
      result === 'wrong' ? 'wrong_password'
      : result === 'refused' ? await refusedReason(rt, account.id)
      : account.status !== 'active' ? `account_${account.status}` : accessEnded(rt, account) ? 'access_ended' : account.role === 'administrator' ? 'administrator_not_on_proxy' : 'no_password';
    await recordFailure(rt, account, username, reason, client, { counted: result === 'wrong', via });
    return { ok: false, reason };
  }
  // The password was right: anything the console would still ask for keeps the proxy shut.
  const role = account.role as Role;
  const now = rt.clock.now().toISOString();
  const expiresAt = passwordExpiresAt(rt.profile, role, account.password_set_at, account.password_expiry_exempt === 1);
  let pending: string | null = null;
  if (account.must_change_password) pending = account.temporary_expires_at ? (account.temporary_expires_at <= now ? 'temporary_password_expired' : 'temporary_password') : 'password_change_required';
  else if (expiresAt && expiresAt <= now) pending = 'password_expired';
  else if (settingsFor(rt.profile, role).aup.required) {
    const aup = await currentAup(rt.db.kysely, groupOf(role));
    if (aup && !(await hasAccepted(rt.db.kysely, account.id, aup.id))) pending = 'aup_not_accepted';
  }
  if (pending) {
    await recordFailure(rt, account, username, pending, client, { via });
    return { ok: false, reason: pending };
  }
  if (account.totp_enrolled_at === null && !(await hasPasskey(rt, account.id))) {
    await rt.db.kysely.updateTable('account').set({ failed_attempts: 0 }).where('id', '=', account.id).where('failed_attempts', '!=', 0).where('locked_at', 'is', null).execute();
  }
  return { ok: true, username: account.username };
}
