import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Secrets the server must read back (TOTP seeds) are stored encrypted with AES-256-GCM under a key
 * kept outside the database: a copy of the database alone does not give away anyone's second
 * factor. Several nodes sharing one PostgreSQL need the same key file (see docs/security-keys.md).
 *
 * Each sealed value is bound to where it belongs (AES-GCM associated data: the column and the row,
 * e.g. "account.totp_secret:<account id>"), so a value copied into another row — someone with
 * write access to the database pasting their own authenticator secret into an administrator's
 * account — no longer opens. The format names the key it was sealed under (its id, a hash prefix),
 * so a value sealed under another key is reported as such rather than as garbage.
 *
 *   v2:<key id>:<base64 of iv(12) | tag(16) | ciphertext>     AD = "gatehouse-sealed-v2\0<binding>"
 *
 * `v1:` values (before issue 10: no key id, no associated data) are opened only by the one-time
 * upgrade at start (`upgradeStoredSecrets`), which re-seals them bound to their row.
 */
export interface SecretBox {
  /** A short, public id of the key (hash prefix), written into every sealed value. */
  readonly keyId: string;
  seal(plain: string, binding: string): string;
  /** Throws SealedValueError when the value is not for this binding or not under this key. */
  open(sealed: string, binding: string): string;
  /** Only for the upgrade of values sealed before issue 10 (no binding). */
  openLegacy(sealed: string): string;
}

export const SECRET_KEY_FILE = 'secret.key';

/** What each sealed value is bound to: the column it lives in and the row that owns it. */
export const sealedFor = {
  accountTotp: (accountId: string): string => `account.totp_secret:${accountId}`,
  enrolment: (attemptId: string, accountId: string): string => `sign_in_attempt.pending_totp_secret:${attemptId}:${accountId}`,
  sessionEnrolment: (sessionId: string, accountId: string): string => `session.pending_totp_secret:${sessionId}:${accountId}`,
};

export class SealedValueError extends Error {
  constructor(
    readonly reason: 'other_key' | 'not_for_this_row' | 'legacy_format' | 'malformed',
    readonly sealedKeyId: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'SealedValueError';
  }
}

export const keyIdOf = (key: Buffer): string => createHash('sha256').update('gatehouse secret key id\0').update(key).digest('hex').slice(0, 12);

export function secretKeyPath(dataDir: string, file?: string): string {
  return file ? path.resolve(file) : path.join(dataDir, SECRET_KEY_FILE);
}

/** Reads a 256-bit key file (base64), refusing one other users can read. */
export function readKeyFile(file: string): Buffer {
  if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} can be read by other users; run: chmod 600 ${file}`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 256-bit key`);
  return key;
}

/** Writes a new random 256-bit key to a file that must not exist yet, owner read/write only. */
export function writeNewKeyFile(file: string): Buffer {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64'), { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}

export function loadOrCreateSecretBox(dataDir: string, file = path.join(dataDir, SECRET_KEY_FILE)): SecretBox {
  if (!existsSync(file)) writeNewKeyFile(file);
  return secretBox(readKeyFile(file));
}

const adFor = (binding: string) => Buffer.from(`gatehouse-sealed-v2\0${binding}`, 'utf8');

export function secretBox(key: Buffer): SecretBox {
  const keyId = keyIdOf(key);
  return {
    keyId,
    seal(plain, binding) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(adFor(binding));
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `v2:${keyId}:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`;
    },
    open(sealed, binding) {
      if (sealed.startsWith('v1:')) throw new SealedValueError('legacy_format', null, 'a value sealed before issue 10 (v1, not bound to its row) is not accepted; the upgrade at start re-seals them');
      const match = /^v2:([0-9a-f]{12}):([A-Za-z0-9+/=]+)$/.exec(sealed);
      if (!match) throw new SealedValueError('malformed', null, 'not a sealed value');
      if (match[1] !== keyId) throw new SealedValueError('other_key', match[1]!, `sealed under key ${match[1]}, not under the current key ${keyId}`);
      const raw = Buffer.from(match[2]!, 'base64');
      if (raw.length < 28) throw new SealedValueError('malformed', match[1]!, 'not a sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAAD(adFor(binding));
        decipher.setAuthTag(raw.subarray(12, 28));
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      } catch {
        throw new SealedValueError('not_for_this_row', match[1]!, 'the value does not open for this row: it was sealed for another row (copied?) or altered');
      }
    },
    openLegacy(sealed) {
      if (!sealed.startsWith('v1:')) throw new SealedValueError('malformed', null, 'not a v1 sealed value');
      const raw = Buffer.from(sealed.slice(3), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}
