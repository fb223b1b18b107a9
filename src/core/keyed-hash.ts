import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readKeyFile, writeNewKeyFile } from './secret-box.js';

/**
 * One-way keyed hashes (HMAC-SHA-256) under a server key kept in the data folder, outside the
 * database: recovery codes (with the account's id as a per-account salt), the codes e-mailed for
 * self-service resets (bound to their attempt), and usernames that match no account (the audit trail keeps those only hashed: what people type into the username box is
 * sometimes their password). A copy of the database alone cannot test a guess against either.
 *
 * This key is not rotated with `secret.key`: the values it protects cannot be recomputed (the
 * recovery codes and typed usernames are not kept), so a new key would orphan every recovery code
 * and every "was this username tried?" lookup in the permanent trail. Guard it like secret.key;
 * nodes sharing one PostgreSQL need the same file (docs/security-keys.md).
 */
export interface KeyedHasher {
  /** Hex HMAC-SHA-256 of `value` for one purpose (the purpose is part of the message). */
  hash(purpose: 'recovery-code' | 'username' | 'reset-code', value: string): string;
}

export const HMAC_KEY_FILE = 'hmac.key';

export function hmacKeyPath(dataDir: string, file?: string): string {
  return file ? path.resolve(file) : path.join(dataDir, HMAC_KEY_FILE);
}

export function loadOrCreateKeyedHasher(file: string): KeyedHasher {
  if (!existsSync(file)) writeNewKeyFile(file);
  return keyedHasher(readKeyFile(file));
}

export function keyedHasher(key: Buffer): KeyedHasher {
  return {
    hash: (purpose, value) => createHmac('sha256', key).update(`gatehouse ${purpose}\0`).update(value, 'utf8').digest('hex'),
  };
}

/** How a typed username is normalised before it is looked up, hashed or compared. */
export const normaliseUsername = (typed: string): string => typed.trim().toLowerCase().slice(0, 64);

/** The trail's record of a username that matches no account: its keyed hash, never the text. */
export const usernameHashOf = (hasher: KeyedHasher, typed: string): string => `h1:${hasher.hash('username', normaliseUsername(typed))}`;
