import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GatehouseError } from '../core/errors.js';
import { ensurePrivateFile } from '../core/file-modes.js';
import { readKeyFile } from '../core/secret-box.js';

/**
 * DP-01, DP-03: Gatehouse's own backups encrypted with AES-256-GCM under a key of their own (a
 * backup key file, never the server's secret.key: a stolen backup together with a stolen data
 * folder must not give both). The file:
 *
 *   "GHBACKUP" | version 0x01 | key id (12 ASCII hex) | iv (12) | ciphertext | tag (16)
 *
 * The 33-byte header is the associated data, so the version, the key id and the iv cannot be
 * changed without the tag failing. The key id is a hash prefix of the key (public, as in
 * secret-box), so a wrong key is named as such rather than reported as damage. Decryption streams
 * into an owner-only temporary file and only renames it into place after the tag checked: nothing
 * unauthenticated is ever used.
 */

const MAGIC = Buffer.from('GHBACKUP', 'ascii');
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 1 + 12 + 12;
const TAG_BYTES = 16;

export const backupKeyIdOf = (key: Buffer): string => createHash('sha256').update('gatehouse backup key id\0').update(key).digest('hex').slice(0, 12);

/** True when the file starts like an encrypted Gatehouse backup. */
export function isEncryptedBackup(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(MAGIC.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(MAGIC);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a backup key file (base64 of 32 random bytes, owner-only), refusing the server's own
 * secret.key (by path or by content) and a key another user can read.
 */
export function readBackupKey(file: string, secretKeyFile: string): Buffer {
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) throw new GatehouseError('backup_key_missing', 400, `There is no backup key at ${resolved}; make one with: gatehouse backup-key ${file}`);
  if (resolved === path.resolve(secretKeyFile)) throw new GatehouseError('backup_key_refused', 400, `${resolved} is the server's own secret.key: backups need a key of their own (gatehouse backup-key FILE), kept apart from the data folder.`);
  let key: Buffer;
  try {
    key = readKeyFile(resolved);
  } catch (error) {
    throw new GatehouseError('backup_key_unreadable', 400, `Backup key ${resolved}: ${(error as Error).message}`);
  }
  if (existsSync(secretKeyFile)) {
    const secret = Buffer.from(readFileSync(secretKeyFile, 'utf8').trim(), 'base64');
    if (secret.equals(key)) throw new GatehouseError('backup_key_refused', 400, `${resolved} holds the same key as the server's secret.key: backups need a key of their own (gatehouse backup-key FILE).`);
  }
  return key;
}

function fsyncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Encrypts `plainFile` into `target` (0600, written beside it and renamed into place). */
export async function encryptBackupFile(plainFile: string, target: string, key: Buffer): Promise<{ keyId: string }> {
  const keyId = backupKeyIdOf(key);
  const iv = randomBytes(12);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(keyId, 'ascii'), iv]);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header);
  const partial = `${target}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  ensurePrivateFile(partial);
  try {
    const out = createWriteStream(partial, { flags: 'r+' });
    out.write(header);
    await pipeline(createReadStream(plainFile), cipher, out, { end: false });
    await new Promise<void>((resolve, reject) => out.end(cipher.getAuthTag(), (error?: Error | null) => (error ? reject(error) : resolve())));
    fsyncFile(partial);
    renameSync(partial, target);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  return { keyId };
}

/**
 * Decrypts an encrypted backup into `target` (0600). A file that is not one, is cut short, was made
 * under another key or was altered is refused with a message that says which, and leaves nothing.
 */
export async function decryptBackupFile(file: string, target: string, key: Buffer): Promise<{ keyId: string }> {
  const size = statSync(file).size;
  if (!isEncryptedBackup(file)) throw new GatehouseError('backup_not_encrypted', 400, `${file} is not an encrypted Gatehouse backup.`);
  if (size < HEADER_BYTES + TAG_BYTES) throw new GatehouseError('backup_truncated', 400, `${file} is cut short (${size} bytes): it is not a whole encrypted backup. Nothing was restored.`);
  const header = Buffer.alloc(HEADER_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, HEADER_BYTES, 0);
    readSync(fd, tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    closeSync(fd);
  }
  if (header[MAGIC.length] !== VERSION) throw new GatehouseError('backup_unknown_version', 400, `${file} is an encrypted backup of a version this Gatehouse does not know (${header[MAGIC.length]}).`);
  const keyId = header.subarray(MAGIC.length + 1, MAGIC.length + 13).toString('ascii');
  const mine = backupKeyIdOf(key);
  if (keyId !== mine) throw new GatehouseError('backup_wrong_key', 400, `${file} was encrypted with backup key ${keyId}, not with the key given (${mine}): give the backup key it was made with. Nothing was restored.`);
  const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(MAGIC.length + 13));
  decipher.setAAD(header);
  decipher.setAuthTag(tag);
  const partial = `${target}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  ensurePrivateFile(partial);
  try {
    await pipeline(createReadStream(file, { start: HEADER_BYTES, end: size - TAG_BYTES - 1 }), decipher, createWriteStream(partial, { flags: 'r+' }));
  } catch (error) {
    rmSync(partial, { force: true });
    if (/authenticate|auth tag|Unsupported state/i.test((error as Error).message)) {
      throw new GatehouseError('backup_tampered', 400, `${file} does not authenticate under its key: it was altered or damaged (or cut short) after it was written. Nothing was restored.`);
    }
    throw error;
  }
  fsyncFile(partial);
  renameSync(partial, target);
  return { keyId };
}
