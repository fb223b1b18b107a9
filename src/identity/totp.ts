import { createHash, randomInt } from 'node:crypto';
import { generate, generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import type { Clock } from '../core/clock.js';
import type { KeyedHasher } from '../core/keyed-hash.js';

/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps — what every authenticator app speaks). A code
 * is accepted once: the time step it matched is stored and later codes must be newer.
 */
export const newTotpSecret = (): string => generateSecret({ length: 20 });

export function totpUri(secret: string, issuer: string, label: string): string {
  return generateURI({ issuer, label, secret });
}

export async function totpQrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
}

/** Returns the matched time step, or null. One step of clock drift either way is tolerated. */
export async function checkTotp(secret: string, code: string, clock: Clock, afterTimeStep: number | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  try {
    const epoch = Math.floor(clock.now().getTime() / 1000);
    const result = await verify({
      secret,
      token: code,
      epoch,
      epochTolerance: 30,
      ...(afterTimeStep !== null ? { afterTimeStep } : {}),
    });
    if (!result.valid) return null;
    return (result as { timeStep?: number }).timeStep ?? Math.floor(epoch / 30) + result.delta;
  } catch {
    return null;
  }
}

/** For tests and the benchmark: the code an authenticator app would show now. */
export const totpNow = (secret: string, clock: Clock): Promise<string> => generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });

/**
 * Recovery codes: ten of "xxxx-xxxx" from an alphabet without look-alikes (~40 bits each). Stored
 * as HMAC-SHA-256 under the server's keyed-hash key (hmac.key, outside the database) with the
 * account's id as a per-account salt: a copy of the database alone cannot test a guess, and the
 * same code on two accounts is stored differently. The message is the code's SHA-256 (the form
 * stored before issue 10), so old hashes were re-keyed at start without knowing the codes.
 */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
export function newRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () => {
    const chars = Array.from({ length: 8 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4)}`;
  });
}

export const recoveryCodeDigest = (code: string): string =>
  createHash('sha256').update(code.trim().toLowerCase().replace(/[^a-z0-9]/g, '')).digest('hex');

/** The stored form of a recovery code's digest (new codes, and old unsalted hashes being re-keyed). */
export const rekeyedRecoveryCodeHash = (hasher: KeyedHasher, accountId: string, digest: string): string => `h1:${hasher.hash('recovery-code', `${accountId}\0${digest}`)}`;

export const recoveryCodeHash = (hasher: KeyedHasher, accountId: string, code: string): string => rekeyedRecoveryCodeHash(hasher, accountId, recoveryCodeDigest(code));
