import { randomInt, timingSafeEqual } from 'node:crypto';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { hashToken, newId, newSecretToken } from '../core/ids.js';
import { normaliseUsername, usernameHashOf } from '../core/keyed-hash.js';
import type { SelfServiceFactor } from '../core/profile.js';
import type { AccountTable, ResetRequestTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { applyPassword, preparePassword } from './password-change.js';
import { settingsFor } from './policy.js';
import { AddressThrottle } from './throttle.js';
import { recoveryCodeHash } from './totp.js';
import { checkAccountTotp } from './totp-secret.js';

/**
 * Self-service password reset (AC-11), which must reach only the genuine person (AC-10):
 *
 * 1. username and a code from the person's authenticator app or one of their recovery codes;
 * 2. where the profile asks for it (`resets.selfServiceFactors`: staff always), a single-use code
 *    e-mailed to the address on file, as a link — two factors of different kinds, so a stolen phone
 *    or a read recovery code alone takes over nobody; the mail also tells the person at once;
 * 3. the new password, under the person's rules; every session ends and a lock clears.
 *
 * The browser that gave the first code holds the attempt in an HttpOnly cookie; the e-mailed code
 * is stored only as a keyed hash bound to that attempt, works once, for 15 minutes, five wrong tries
 * at most. A link from another attempt, used or expired, is refused.
 *
 * Never self-service, whatever the profile says: administrators, the master (break-glass) account,
 * any account linked to an administrator account (the administrator account itself, and the
 * everyday account it belongs to). They get exactly the answer a wrong code gets, so the page tells
 * nobody who is an administrator; their resets go through a second person.
 */
type Account = Selectable<AccountTable>;
type ResetRequest = Selectable<ResetRequestTable>;
type Meta = { ip: string | null; requestId: string | null };

/** To choose the new password once every factor is in. */
const SELF_SERVICE_MINUTES = 10;
/** The e-mailed link works this long (mail can be slow), and this many wrong codes end the attempt. */
export const EMAIL_CODE_MINUTES = 15;
const EMAIL_CODE_TRIES = 5;
const CODE_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

export const RESET_COOKIE = '__Host-gatehouse-reset';

export class ResetThrottles {
  /** wrong codes per username: a guessed username cannot be used to try a million codes */
  readonly perAccount: AddressThrottle;
  readonly perAddress: AddressThrottle;
  constructor(now: () => number) {
    this.perAccount = new AddressThrottle(5, 15 * 60_000, now);
    this.perAddress = new AddressThrottle(20, 15 * 60_000, now);
  }
}
const throttles = new WeakMap<Runtime, ResetThrottles>();
function throttlesOf(rt: Runtime): ResetThrottles {
  let t = throttles.get(rt);
  if (!t) throttles.set(rt, (t = new ResetThrottles(() => rt.clock.now().getTime())));
  return t;
}

const SELF_SERVICE_ACTOR: Actor = { id: null, name: 'self-service reset', role: null };

export const selfStartSchema = z.object({
  username: z.string().trim().min(1, 'is required').max(64),
  code: z.string().trim().min(1, 'is required').max(40),
});
export const selfEmailSchema = z.object({ code: z.string().trim().min(1, 'is required').max(40) });
export const selfFinishSchema = z.object({ newPassword: z.string().min(1, 'is required').max(1024) });

export interface SelfServiceState {
  /** What the browser does next: wait for the e-mailed link, or choose the new password. */
  next: 'email' | 'new_password';
  username: string;
  expiresAt: string;
  /** Where the link went, partly hidden (j•••@school.example). */
  emailedTo: string | null;
}

const tooManyCodes = (wait: number) => new GatehouseError('too_many_attempts', 429, `Too many wrong codes. Try again in ${Math.ceil(wait / 60)} minutes, or ask the IT team.`, { retryAfterSeconds: wait });
const selfFailed = () =>
  new GatehouseError('reset_not_verified', 400, 'That username and code do not match an account that can reset its own password. If you cannot reset it yourself, ask the IT team (staff) or your teacher (pupils).');
const resetEnded = () => new GatehouseError('reset_expired', 410, 'This reset has expired or was already used. Start again with a new code.');
const linkRefused = () =>
  new GatehouseError('reset_link_invalid', 400, 'That is not the code we e-mailed for this reset, or it was already used. Open the newest e-mail in the browser where you entered your first code, or start again.');

/**
 * Why this account may not reset its own password, or null when it may. The reason goes to the
 * trail only; the person is told what a wrong code is told.
 */
export async function selfServiceRefusal(rt: Runtime, account: Account): Promise<string | null> {
  if (account.status !== 'active') return `account_${account.status}`;
  if (account.access_ends_at !== null && account.access_ends_at <= rt.clock.now().toISOString()) return 'access_ended';
  if (account.is_break_glass) return 'break_glass';
  if (account.role === 'administrator') return 'administrator';
  if (account.linked_account_id !== null) return 'linked_account';
  const linkedAdministrator = await rt.db.kysely.selectFrom('account').select('id').where('linked_account_id', '=', account.id).limit(1).executeTakeFirst();
  if (linkedAdministrator) return 'has_linked_administrator_account';
  const resets = settingsFor(rt.profile, account.role as Role).resets;
  if (!resets.selfService) return 'not_allowed_for_group';
  // Without somewhere to send the link, a reset that needs it cannot finish: refused before any
  // code is checked, so no recovery code is used up and the answer says nothing about the account.
  if (resets.selfServiceFactors.includes('email') && !account.email) return 'no_email_on_file';
  if (resets.selfServiceFactors.includes('email') && !rt.mailer.configured) return 'no_mail_server';
  return null;
}

const factorsOf = (rt: Runtime, account: Account): SelfServiceFactor[] => settingsFor(rt.profile, account.role as Role).resets.selfServiceFactors;

function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return at <= 0 ? '•••' : `${email[0]}•••${email.slice(at)}`;
}

const newEmailCode = (): string => Array.from({ length: 10 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
const normaliseEmailCode = (code: string): string => code.trim().toLowerCase().replace(/[^a-z0-9]/g, '');
/** The stored form: a keyed hash bound to this attempt, so a code means nothing for any other. */
const emailCodeHash = (rt: Runtime, requestId: string, code: string): string => rt.keyedHash.hash('reset-code', `${requestId}\0${normaliseEmailCode(code)}`);

async function recordFailure(rt: Runtime, account: Account | undefined, username: string, reason: string, m: Meta, extra: Record<string, unknown> = {}): Promise<void> {
  await rt.trail.transaction(SELF_SERVICE_ACTOR, (ctx) =>
    ctx.audit.record({
      action: 'password_reset.self_failed',
      target: account ? `account:${account.id}` : null,
      severity: account && (account.role === 'administrator' || account.is_break_glass) ? 'high' : 'warning',
      // A username that matches no account is kept only as a keyed hash: people type passwords there.
      details: { ...(account ? { username: account.username } : { usernameHash: usernameHashOf(rt.keyedHash, username) }), reason, ...extra },
    }), m);
}

/**
 * Step one: username and a code from the authenticator app or a recovery code. Unknown usernames,
 * accounts that may not self-serve and wrong codes get the same answer. With the code right, either
 * the link is e-mailed (next: email) or the new password is due (next: new_password).
 */
export async function startSelfServiceReset(rt: Runtime, input: z.infer<typeof selfStartSchema>, m: Meta): Promise<{ token: string; state: SelfServiceState }> {
  const t = throttlesOf(rt);
  const username = normaliseUsername(input.username);
  // Each attempt is counted against the address and the username before any code is checked (and
  // given back if the code is right): codes sent in parallel cannot all pass the limit of five.
  let wait = t.perAddress.reserve(m.ip);
  if (wait === 0) {
    wait = t.perAccount.reserve(username);
    if (wait > 0) t.perAddress.release(m.ip);
  }
  if (wait > 0) throw tooManyCodes(wait);
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirst();
  const refusal = account ? await selfServiceRefusal(rt, account) : 'unknown_username';
  const nowIso = rt.clock.now().toISOString();
  let method: 'totp' | 'recovery_code' | null = null;
  // Only an account that may reset is checked at all: a refused one's codes are not even tried (or used up).
  if (account && refusal === null) {
    const code = input.code.replace(/[\s]/g, '');
    if (/^\d{6}$/.test(code) && account.totp_secret) {
      const step = await checkAccountTotp(rt, account, code);
      if (step !== null) {
        await rt.db.kysely.updateTable('account').set({ totp_last_step: step }).where('id', '=', account.id).execute();
        method = 'totp';
      }
    } else {
      const used = await rt.db.kysely
        .updateTable('recovery_code')
        .set({ used_at: nowIso })
        .where('account_id', '=', account.id)
        .where('code_hash', '=', recoveryCodeHash(rt.keyedHash, account.id, input.code.trim()))
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(used.numUpdatedRows ?? 0) === 1) method = 'recovery_code';
    }
  } else {
    // The same database round trip as a recovery-code check, on no row: the time an answer takes
    // does not tell an account that may reset from one that may not, or from no account.
    await rt.db.kysely.updateTable('recovery_code').set({ used_at: nowIso }).where('account_id', '=', newId()).where('code_hash', '=', recoveryCodeHash(rt.keyedHash, '', input.code.trim())).where('used_at', 'is', null).execute();
  }
  if (!account || refusal !== null || !method) {
    // Already counted by the reservations above.
    await recordFailure(rt, account, username, refusal ?? 'wrong_code', m);
    throw selfFailed();
  }
  t.perAddress.release(m.ip);
  t.perAccount.release(username);

  const needsEmail = factorsOf(rt, account).includes('email');

  const token = newSecretToken();
  const id = newId();
  const emailCode = needsEmail ? newEmailCode() : null;
  const now = rt.clock.now();
  const expiresAt = new Date(now.getTime() + (needsEmail ? EMAIL_CODE_MINUTES : SELF_SERVICE_MINUTES) * 60_000).toISOString();
  await rt.trail.transaction(SELF_SERVICE_ACTOR, async (ctx) => {
    // One reset at a time per person: an older unfinished one (and its link) stops working.
    await ctx.db.updateTable('reset_request').set({ status: 'expired', email_code_hash: null }).where('account_id', '=', account.id).where('kind', '=', 'self_service').where('status', 'in', ['verified', 'awaiting_email']).execute();
    await ctx.db.insertInto('reset_request').values({
      id, account_id: account.id, kind: 'self_service', status: needsEmail ? 'awaiting_email' : 'verified', requested_by: account.id, reason: null,
      created_at: nowIso, expires_at: expiresAt, decided_by: null, decided_at: null, decision_note: null, issued_by: null, issued_at: null,
      verified_how: method, token_hash: hashToken(token),
      email_code_hash: emailCode ? emailCodeHash(rt, id, emailCode) : null, email_sent_at: null, email_expires_at: emailCode ? expiresAt : null, email_verified_at: null,
    }).execute();
    await ctx.audit.record({ action: 'password_reset.self_verified', target: `account:${account.id}`, severity: 'notice', details: { username, method, next: needsEmail ? 'email' : 'new_password' } });
  }, m);

  if (emailCode) {
    const sent = await sendResetMail(rt, account, emailCode, now);
    await rt.trail.transaction(SELF_SERVICE_ACTOR, async (ctx) => {
      if (sent.sent) await ctx.db.updateTable('reset_request').set({ email_sent_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
      else await ctx.db.updateTable('reset_request').set({ status: 'expired', email_code_hash: null }).where('id', '=', id).execute();
      await ctx.audit.record({
        action: sent.sent ? 'password_reset.link_sent' : 'password_reset.self_failed',
        target: `account:${account.id}`,
        severity: sent.sent ? 'info' : 'warning',
        details: sent.sent ? { username, to: account.email } : { username, reason: 'mail_failed', error: sent.error ?? null },
      });
    }, m);
    if (!sent.sent) throw new GatehouseError('reset_mail_failed', 503, 'Your code is right, but the e-mail with the link to finish could not be sent. Try again in a few minutes, or ask the IT team.');
  }
  return { token, state: { next: emailCode ? 'email' : 'new_password', username, expiresAt, emailedTo: emailCode ? maskEmail(account.email!) : null } };
}

async function sendResetMail(rt: Runtime, account: Account, code: string, at: Date): Promise<{ sent: boolean; error?: string }> {
  const school = (await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst())?.name ?? 'your school';
  const shown = `${code.slice(0, 5)}-${code.slice(5)}`;
  const link = rt.config.publicUrl ? `${rt.config.publicUrl.replace(/\/$/, '')}/reset#code=${code}` : null;
  return rt.mailer.send({
    to: account.email!,
    subject: `Gatehouse: finish resetting your password at ${school}`,
    text:
      `Dear ${account.display_name},\n\n` +
      `Someone — we hope you — asked to reset your Gatehouse password at ${school} at ${at.toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
      `with a code from your authenticator app or a recovery code.\n\n` +
      (link ? `To go on, open this link in the same browser, within ${EMAIL_CODE_MINUTES} minutes:\n\n  ${link}\n\nor type this code on the page that is waiting for it:\n\n  ${shown}\n\n` : `To go on, type this code on the page that is waiting for it, within ${EMAIL_CODE_MINUTES} minutes:\n\n  ${shown}\n\n`) +
      `It works once. If you did not ask for this, do not use it, and tell the IT team straight away: someone has a code from your authenticator app or one of your recovery codes.\n\n— Gatehouse`,
  });
}

async function loadAttempt(rt: Runtime, token: string | undefined): Promise<ResetRequest> {
  if (!token || token.length > 100) throw resetEnded();
  const request = await rt.db.kysely.selectFrom('reset_request').selectAll().where('token_hash', '=', hashToken(token)).where('kind', '=', 'self_service').executeTakeFirst();
  if (!request || (request.status !== 'verified' && request.status !== 'awaiting_email') || request.expires_at <= rt.clock.now().toISOString()) throw resetEnded();
  return request;
}

async function stateOf(rt: Runtime, request: ResetRequest): Promise<SelfServiceState> {
  const account = await rt.db.kysely.selectFrom('account').select(['username', 'email']).where('id', '=', request.account_id).executeTakeFirstOrThrow();
  return {
    next: request.status === 'awaiting_email' ? 'email' : 'new_password',
    username: account.username,
    expiresAt: request.expires_at,
    emailedTo: request.status === 'awaiting_email' && account.email ? maskEmail(account.email) : null,
  };
}

/** Where the reset held by this browser stands (for the page the e-mailed link opens). */
export async function currentSelfServiceReset(rt: Runtime, token: string | undefined): Promise<SelfServiceState> {
  return stateOf(rt, await loadAttempt(rt, token));
}

/** Step two: the code from the e-mail (the link fills it in). Once; this attempt's only; not late. */
export async function confirmResetEmail(rt: Runtime, token: string | undefined, input: z.infer<typeof selfEmailSchema>, m: Meta): Promise<SelfServiceState> {
  const t = throttlesOf(rt);
  const wait = t.perAddress.reserve(m.ip);
  if (wait > 0) throw tooManyCodes(wait);
  let request: ResetRequest;
  try {
    request = await loadAttempt(rt, token);
  } catch (error) {
    t.perAddress.release(m.ip);
    throw error;
  }
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', request.account_id).executeTakeFirstOrThrow();
  const nowIso = rt.clock.now().toISOString();
  const live = request.status === 'awaiting_email' && request.email_code_hash !== null && request.email_expires_at !== null && request.email_expires_at > nowIso;
  // The try is counted in the database before the code is compared, by one conditional update: of
  // codes sent together for one attempt, at most five are ever compared (the rest find it ended).
  const reserved = live
    ? Number((await rt.db.kysely.updateTable('reset_request').set((eb) => ({ email_failures: eb('email_failures', '+', 1) })).where('id', '=', request.id).where('status', '=', 'awaiting_email').where('email_failures', '<', EMAIL_CODE_TRIES).executeTakeFirst()).numUpdatedRows ?? 0) === 1
    : false;
  const matches = reserved && timingSafeEqual(Buffer.from(emailCodeHash(rt, request.id, input.code), 'hex'), Buffer.from(request.email_code_hash!, 'hex'));
  if (!matches) {
    await rt.trail.transaction(SELF_SERVICE_ACTOR, async (ctx) => {
      const now = await ctx.db.selectFrom('reset_request').select('email_failures').where('id', '=', request.id).executeTakeFirstOrThrow();
      const ended = now.email_failures >= EMAIL_CODE_TRIES || !live;
      if (ended) await ctx.db.updateTable('reset_request').set({ status: 'expired', email_code_hash: null }).where('id', '=', request.id).where('status', '=', 'awaiting_email').execute();
      const reason = request.status === 'verified' ? 'email_code_already_used' : reserved ? 'wrong_email_code' : 'attempt_ended';
      await ctx.audit.record({ action: 'password_reset.self_failed', target: `account:${account.id}`, severity: 'warning', details: { username: account.username, reason, failures: now.email_failures, ended } });
    }, m);
    if (live && !reserved) throw resetEnded();
    throw linkRefused();
  }
  t.perAddress.release(m.ip);
  const expiresAt = new Date(rt.clock.now().getTime() + SELF_SERVICE_MINUTES * 60_000).toISOString();
  await rt.trail.transaction(SELF_SERVICE_ACTOR, async (ctx) => {
    // Single use, even against two clicks at once: only the update that finds the code still there wins.
    const claimed = await ctx.db
      .updateTable('reset_request')
      .set({ status: 'verified', email_code_hash: null, email_verified_at: nowIso, expires_at: expiresAt, verified_how: `${request.verified_how}+email` })
      .where('id', '=', request.id)
      .where('status', '=', 'awaiting_email')
      .where('email_code_hash', '=', request.email_code_hash)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows ?? 0) !== 1) throw linkRefused();
    await ctx.audit.record({ action: 'password_reset.email_confirmed', target: `account:${account.id}`, severity: 'notice', details: { username: account.username } });
  }, m);
  return stateOf(rt, { ...request, status: 'verified', expires_at: expiresAt });
}

/** Step three: the new password, checked against the person's rules; every session ends; a lock clears. */
export async function finishSelfServiceReset(rt: Runtime, token: string | undefined, input: z.infer<typeof selfFinishSchema>, m: Meta): Promise<void> {
  const request = await loadAttempt(rt, token);
  if (request.status !== 'verified') throw new GatehouseError('reset_email_pending', 409, 'First open the link we e-mailed you (or type its code): the new password comes after that.');
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', request.account_id).executeTakeFirstOrThrow();
  // Asked again: the person may have become an administrator, or left, since the first step.
  const refusal = await selfServiceRefusal(rt, account);
  if (refusal !== null) {
    await recordFailure(rt, account, account.username, refusal, m, { step: 'finish' });
    throw resetEnded();
  }
  const missing = factorsOf(rt, account).includes('email') && request.email_verified_at === null;
  if (missing) throw new GatehouseError('reset_email_pending', 409, 'First open the link we e-mailed you (or type its code): the new password comes after that.');
  const prepared = await preparePassword({ db: rt.db.kysely, hasher: rt.hasher, profile: rt.profile, clock: rt.clock }, account, input.newPassword);
  await rt.trail.transaction({ id: account.id, name: account.username, role: account.role as Role }, async (ctx) => {
    const claimed = await ctx.db.updateTable('reset_request').set({ status: 'completed', issued_at: ctx.clock.now().toISOString(), token_hash: null }).where('id', '=', request.id).where('status', '=', 'verified').executeTakeFirst();
    if (Number(claimed.numUpdatedRows ?? 0) !== 1) throw resetEnded();
    await applyPassword(ctx, account, rt.profile, prepared, { kind: 'changed', reason: 'self_service_reset' });
    await ctx.audit.record({ action: 'password_reset.self_completed', target: `account:${account.id}`, severity: 'notice', details: { username: account.username, wasLocked: account.locked_at !== null, method: request.verified_how } });
  }, m);
}
