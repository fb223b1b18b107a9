import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The Ed25519 key that signs audit checkpoints. Created at first start in the data folder, owner
 * read/write only (0600). Its public half is registered in the database (audit_key) so that any
 * node, or a restored copy, can verify old checkpoints after the key changes.
 */
export const SIGNING_KEY_FILE = 'audit-signing-key.pem';

export interface AuditSigner {
  keyId: string;
  publicKeyPem: string;
  sign(message: string): string;
}

export function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function signingKeyPath(dataDir: string): string {
  return path.join(dataDir, SIGNING_KEY_FILE);
}

/** Loads the signing key, creating it if there is none. Refuses a key file others can read. */
export function loadOrCreateSigner(dataDir: string): { signer: AuditSigner; created: boolean } {
  const file = signingKeyPath(dataDir);
  let created = false;
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    created = true;
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `${file} can be read by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`,
    );
  }
  return { signer: signerFromPem(readFileSync(file, 'utf8')), created };
}

/** Reads the existing key without creating one (for `audit key` on a box that has never started). */
export function loadSigner(dataDir: string): AuditSigner | undefined {
  const file = signingKeyPath(dataDir);
  if (!existsSync(file)) return undefined;
  return signerFromPem(readFileSync(file, 'utf8'));
}

export function signerFromPem(pem: string): AuditSigner {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: (message) => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64'),
  };
}

/** Parsed public keys by PEM: a verification reads thousands of notes signed by one or two keys. */
const parsedKeys = new Map<string, KeyObject>();

function publicKeyOf(pem: string): KeyObject {
  let key = parsedKeys.get(pem);
  if (!key) {
    key = createPublicKey(pem);
    if (parsedKeys.size > 100) parsedKeys.clear();
    parsedKeys.set(pem, key);
  }
  return key;
}

export function verifySignature(publicKeyPem: string, message: string, signatureBase64: string): boolean {
  try {
    return verify(null, Buffer.from(message, 'utf8'), publicKeyOf(publicKeyPem), Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}
