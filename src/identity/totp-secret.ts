import { systemActor } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { SealedValueError, sealedFor } from '../core/secret-box.js';
import type { Runtime } from '../runtime.js';
import { checkTotp } from './totp.js';

/**
 * Opening the sealed TOTP secrets, each bound to its row (src/core/secret-box.ts). A value that
 * does not open — copied from another account's row, altered, or sealed under another key — is a
 * refused second factor, never a crash, and never silently accepted: the log says what is wrong and
 * the trail records it (`mfa.secret_unreadable`, severity high: someone may have written to the
 * database).
 */
type AccountTotp = { id: string; username: string; totp_secret: string | null; totp_last_step: number | null };

async function reportUnreadable(rt: Runtime, accountId: string, username: string, what: 'account' | 'enrolment', error: SealedValueError): Promise<void> {
  const explanation =
    error.reason === 'other_key'
      ? `it was sealed under key ${error.sealedKeyId}, not under the current key ${rt.secrets.keyId} (a secret.key that was replaced or not copied to this node?)`
      : error.reason === 'not_for_this_row'
        ? 'it was sealed for another account or altered (a value copied between rows of the database?)'
        : error.reason === 'legacy_format'
          ? 'it is in the old unbound format, which is no longer accepted (was it written to the database after the upgrade?)'
          : 'it is not a sealed value';
  rt.logger.error(
    { accountId, username, reason: error.reason, sealedKeyId: error.sealedKeyId, currentKeyId: rt.secrets.keyId },
    `the stored authenticator ${what === 'account' ? 'secret' : 'enrolment secret'} of ${username} does not open: ${explanation}; the second factor is refused`,
  );
  await rt.trail
    .transaction(systemActor('secret-box'), (ctx) =>
      ctx.audit.record({
        action: 'mfa.secret_unreadable',
        target: `account:${accountId}`,
        severity: 'high',
        details: { username, what, reason: error.reason, sealedKeyId: error.sealedKeyId, currentKeyId: rt.secrets.keyId },
      }),
    )
    .catch((e: unknown) => rt.logger.error({ err: e }, 'could not record an unreadable sealed secret'));
}

/** The account's TOTP secret, or null (logged and audited) when the stored value does not open. */
export async function openAccountTotp(rt: Runtime, account: AccountTotp): Promise<string | null> {
  if (!account.totp_secret) return null;
  try {
    return rt.secrets.open(account.totp_secret, sealedFor.accountTotp(account.id));
  } catch (error) {
    if (!(error instanceof SealedValueError)) throw error;
    await reportUnreadable(rt, account.id, account.username, 'account', error);
    return null;
  }
}

/** Checks a code against the account's own authenticator; the matched time step, or null. */
export async function checkAccountTotp(rt: Runtime, account: AccountTotp, code: string): Promise<number | null> {
  const secret = await openAccountTotp(rt, account);
  return secret === null ? null : checkTotp(secret, code, rt.clock, account.totp_last_step);
}

export const sealAccountTotp = (rt: Runtime, accountId: string, secret: string): string => rt.secrets.seal(secret, sealedFor.accountTotp(accountId));

/** A sign-in attempt's pending enrolment secret, bound to the attempt and its account. */
export const sealEnrolmentSecret = (rt: Runtime, attempt: { id: string; account_id: string }, secret: string): string =>
  rt.secrets.seal(secret, sealedFor.enrolment(attempt.id, attempt.account_id));

export async function openEnrolmentSecret(rt: Runtime, attempt: { id: string; account_id: string; pending_totp_secret: string | null }, username: string): Promise<string | undefined> {
  if (!attempt.pending_totp_secret) return undefined;
  try {
    return rt.secrets.open(attempt.pending_totp_secret, sealedFor.enrolment(attempt.id, attempt.account_id));
  } catch (error) {
    if (!(error instanceof SealedValueError)) throw error;
    await reportUnreadable(rt, attempt.account_id, username, 'enrolment', error);
    throw new GatehouseError('sign_in_expired', 401, 'This sign-in cannot go on. Please sign in again.');
  }
}

/** An enrolment from My account: the secret the server made, sealed to the session and its account. */
export const sealSessionEnrolment = (rt: Runtime, session: { id: string; account_id: string }, secret: string): string =>
  rt.secrets.seal(secret, sealedFor.sessionEnrolment(session.id, session.account_id));

export async function openSessionEnrolment(rt: Runtime, session: { id: string; account_id: string; pending_totp_secret: string | null }, username: string): Promise<string | undefined> {
  if (!session.pending_totp_secret) return undefined;
  try {
    return rt.secrets.open(session.pending_totp_secret, sealedFor.sessionEnrolment(session.id, session.account_id));
  } catch (error) {
    if (!(error instanceof SealedValueError)) throw error;
    await reportUnreadable(rt, session.account_id, username, 'enrolment', error);
    return undefined;
  }
}
