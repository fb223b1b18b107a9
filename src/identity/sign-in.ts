import type { Selectable } from 'kysely';
import { permissionsOf, roleLabels, type Permission, type Role } from '../core/authz.js';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { hashToken, newSecretToken } from '../core/ids.js';
import { groupOf } from '../core/profile.js';
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

function lockedNow(rt: Runtime, account: Account): boolean {
  if (!account.locked_at) return false;
  const minutes = settingsFor(rt.profile, account.role as Role).lockout.autoUnlockMinutes;
  return !(minutes && rt.clock.now().getTime() - Date.parse(account.locked_at) >= minutes * 60_000);
}

/** AC-05: a guest's access ends at the time set at reception. */
function accessEnded(rt: Runtime, account: Account): boolean {
  return account.access_ends_at !== null && account.access_ends_at <= rt.clock.now().toISOString();
}

async function loadAccount(rt: Runtime, id: string): Promise<Account> {
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirst();
  if (!account || account.status !== 'active' || accessEnded(rt, account)) throw attemptEnded();
  return account;
}

/** A failed password or second factor: counts towards lockout (PW-07), audited either way. */
async function recordFailure(rt: Runtime, account: Account | undefined, username: string, reason: string, client: Client): Promise<void> {
  rt.throttle.recordFailure(client.ip);
  const meta = { ip: client.ip, requestId: client.requestId };
  if (!account) {
    await rt.trail.transaction({ id: null, name: 'anonymous', role: null }, (ctx) =>
      ctx.audit.record({ action: 'session.sign_in_failed', severity: 'notice', details: { username, reason, ip: client.ip } }), meta);
    return;
  }
  await rt.trail.transaction(actorOf(account), async (ctx) => {
    const countable = reason === 'wrong_password' || reason === 'wrong_second_factor';
    let failures = account.failed_attempts;
    if (countable) {
      await ctx.db.updateTable('account').set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) })).where('id', '=', account.id).execute();
      const row = await ctx.db.selectFrom('account').select(['failed_attempts', 'locked_at']).where('id', '=', account.id).executeTakeFirstOrThrow();
      failures = row.failed_attempts;
      const threshold = settingsFor(rt.profile, account.role as Role).lockout.after;
      if (threshold !== null && failures >= threshold && !row.locked_at) {
        await ctx.db.updateTable('account').set({ locked_at: ctx.clock.now().toISOString() }).where('id', '=', account.id).execute();
        await ctx.audit.record({
          action: 'account.locked',
          target: `account:${account.id}`,
          severity: account.is_break_glass || account.role === 'administrator' ? 'high' : 'warning',
          details: { username: account.username, failures, threshold, ip: client.ip },
        });
      }
    }
    await ctx.audit.record({
      action: 'session.sign_in_failed',
      target: `account:${account.id}`,
      severity: account.is_break_glass || account.role === 'administrator' ? 'high' : 'notice',
      details: { username: account.username, reason, ...(countable ? { failures } : {}), ip: client.ip },
    });
  }, meta);
}

/** Step one: the password. Unknown, disabled and locked accounts cost and answer the same. */
export async function startSignIn(rt: Runtime, input: { username: string; password: string }, client: Client): Promise<Outcome> {
  const wait = rt.throttle.retryAfter(client.ip);
  if (wait > 0) {
    throw new GatehouseError('too_many_attempts', 429, `Too many failed sign-ins from this network. Try again in ${Math.ceil(wait / 60)} minute${wait > 60 ? 's' : ''}.`, { retryAfterSeconds: wait });
  }
  const username = input.username.trim().toLowerCase().slice(0, 64);
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirst();
  const usable = account && account.status === 'active' && !accessEnded(rt, account) && account.password_hash && !lockedNow(rt, account);
  const passwordOk = usable ? await rt.hasher.verify(account.password_hash!, input.password) : await rt.hasher.verifyNothing(input.password);

  if (!account) {
    await recordFailure(rt, undefined, username, 'unknown_username', client);
    throw signInFailed();
  }
  if (!usable || !passwordOk) {
    const reason = account.status !== 'active' ? `account_${account.status}` : accessEnded(rt, account) ? 'access_ended' : lockedNow(rt, account) ? 'account_locked' : !account.password_hash ? 'no_password' : 'wrong_password';
    await recordFailure(rt, account, username, reason, client);
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
    if (account.failed_attempts !== 0 || account.locked_at !== null || rehash) {
      await ctx.db
        .updateTable('account')
        .set({ failed_attempts: 0, locked_at: null, ...(rehash ? { password_hash: rehash } : {}) })
        .where('id', '=', account.id)
        .execute();
    }
    if (account.locked_at) {
      await ctx.audit.record({ action: 'account.unlocked', target: `account:${account.id}`, severity: 'notice', details: { username, by: 'automatic_after_minutes' } });
    }
    if (!step) return openSession(ctx, rt, account, attempt, client, false);
    await ctx.db
      .insertInto('sign_in_attempt')
      .values({
        ...attempt,
        created_at: now.toISOString(),
        ip: client.ip,
        user_agent: client.userAgent?.slice(0, 300) ?? null,
        pending_totp_secret: step.step === 'mfa_enrol' ? rt.secrets.seal(step.secret) : null,
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
    let secret = attempt.pending_totp_secret ? rt.secrets.open(attempt.pending_totp_secret) : undefined;
    if (!secret) {
      secret = newTotpSecret();
      if (persisted) await rt.db.kysely.updateTable('sign_in_attempt').set({ pending_totp_secret: rt.secrets.seal(secret) }).where('id', '=', attempt.id).execute();
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
  let ok = false;
  let method = 'totp';
  if (input.code && account.totp_secret) {
    const step = await checkTotp(rt.secrets.open(account.totp_secret), input.code.replace(/\s/g, ''), rt.clock, account.totp_last_step);
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
      .where('code_hash', '=', recoveryCodeHash(input.recoveryCode))
      .where('used_at', 'is', null)
      .executeTakeFirst();
    ok = Number(used.numUpdatedRows ?? 0) === 1;
  }
  if (!ok) {
    await recordFailure(rt, account, account.username, 'wrong_second_factor', client);
    const failures = attempt.mfa_failures + 1;
    if (failures >= MFA_FAILURES_ALLOWED) {
      await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
      throw new GatehouseError('sign_in_expired', 401, 'Too many wrong codes. Please sign in again.');
    }
    await rt.db.kysely.updateTable('sign_in_attempt').set({ mfa_failures: failures }).where('id', '=', attempt.id).execute();
    throw new GatehouseError(
      'wrong_code',
      400,
      method === 'passkey' ? 'That passkey was not accepted. Try again, or use a code.' : 'That code is not right, or has already been used. Check your authenticator app and try again.',
    );
  }
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
  if (!account.password_hash || !(await rt.hasher.verify(account.password_hash, input.currentPassword))) {
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
  const secret = rt.secrets.open(attempt.pending_totp_secret);
  const step = await checkTotp(secret, code.replace(/\s/g, ''), rt.clock, null);
  if (step === null) throw new GatehouseError('wrong_code', 400, 'That code is not right. Check that the app shows the code for Gatehouse, and try the newest one.');
  const codes = newRecoveryCodes();
  await rt.trail.transaction(actorOf(account), async (ctx) => {
    await storeTotp(ctx, account.id, rt.secrets.seal(secret), step, codes);
    await ctx.db.updateTable('sign_in_attempt').set({ mfa_verified: 1, pending_totp_secret: null }).where('id', '=', attempt.id).execute();
    await ctx.audit.record({ action: 'mfa.enrolled', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, method: 'totp', recoveryCodeCount: codes.length, duringSignIn: true } });
  }, { ip: client.ip, requestId: client.requestId });
  return advance(rt, token!, client, { recoveryCodes: codes });
}

export async function storeTotp(ctx: Ctx, accountId: string, sealedSecret: string, step: number, codes: string[]): Promise<void> {
  const now = ctx.clock.now().toISOString();
  await ctx.db.updateTable('account').set({ totp_secret: sealedSecret, totp_last_step: step, totp_enrolled_at: now }).where('id', '=', accountId).execute();
  await ctx.db.deleteFrom('recovery_code').where('account_id', '=', accountId).execute();
  await ctx.db.insertInto('recovery_code').values(codes.map((c) => ({ account_id: accountId, code_hash: recoveryCodeHash(c), created_at: now, used_at: null }))).execute();
}

export async function cancelSignIn(rt: Runtime, token: string | undefined): Promise<void> {
  if (!token) return;
  await rt.db.kysely.deleteFrom('sign_in_attempt').where('id', '=', hashToken(token)).execute();
}
