import { chmodSync, constants, copyFileSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { SealedValueError, readKeyFile, sealedFor, secretBox, secretKeyPath, writeNewKeyFile, type SecretBox } from '../core/secret-box.js';
import type { Runtime } from '../runtime.js';

/**
 * `gatehouse secret-key rotate`: every sealed value (the accounts' TOTP secrets and the pending
 * enrolment secrets of sign-ins under way) re-sealed under a new secret.key in one transaction,
 * audited with counts and key ids (never values). The old key is kept beside the new one as
 * `secret.key.old-<date>` (0600) until the operator deletes it; the server never reads it.
 *
 * The files change in an order that survives a crash at any point:
 *   1. the new key is written to `secret.key.new`;   2. the old key is copied to `.old-<date>`;
 *   3. the database is re-sealed (one transaction);  4. `.new` is renamed over `secret.key`.
 * Run again after a crash between 3 and 4, it sees the database already under the `.new` key and
 * only finishes step 4; after a crash before 3 it starts afresh.
 */
export interface RotationReport {
  oldKeyId: string;
  newKeyId: string;
  totpSecrets: number;
  pendingEnrolments: number;
  /** Values that did not open under the old key either (already refused at sign-in): left as they were. */
  unreadable: number;
  oldKeyFile: string;
  keyFile: string;
  resumed: boolean;
}

export interface KeyUsage {
  keyId: string;
  keyFile: string;
  /** How many sealed values name each key id (the current one, and any other). */
  sealedUnder: Record<string, number>;
}

function keyIdOfSealed(value: string): string {
  return /^v2:([0-9a-f]{12}):/.exec(value)?.[1] ?? (value.startsWith('v1:') ? 'v1 (unbound)' : 'unknown');
}

/** Which keys the stored values were sealed under: on several nodes, each should show its key holding them all. */
export async function secretKeyUsage(rt: Runtime): Promise<KeyUsage> {
  const sealedUnder: Record<string, number> = {};
  const accounts = await rt.db.kysely.selectFrom('account').select('totp_secret').where('totp_secret', 'is not', null).execute();
  const attempts = await rt.db.kysely.selectFrom('sign_in_attempt').select('pending_totp_secret').where('pending_totp_secret', 'is not', null).execute();
  const sessions = await rt.db.kysely.selectFrom('session').select('pending_totp_secret').where('pending_totp_secret', 'is not', null).execute();
  for (const v of [...accounts.map((a) => a.totp_secret!), ...attempts.map((a) => a.pending_totp_secret!), ...sessions.map((s) => s.pending_totp_secret!)]) {
    const id = keyIdOfSealed(v);
    sealedUnder[id] = (sealedUnder[id] ?? 0) + 1;
  }
  return { keyId: rt.secrets.keyId, keyFile: secretKeyPath(rt.config.dataDir, rt.config.secretKeyFile), sealedUnder };
}

async function reseal(ctx: Ctx, from: SecretBox, to: SecretBox): Promise<{ totpSecrets: number; pendingEnrolments: number; unreadable: number }> {
  const out = { totpSecrets: 0, pendingEnrolments: 0, unreadable: 0 };
  const accounts = await ctx.db.selectFrom('account').select(['id', 'totp_secret']).where('totp_secret', 'is not', null).execute();
  for (const a of accounts) {
    const binding = sealedFor.accountTotp(a.id);
    let plain: string;
    try {
      plain = from.open(a.totp_secret!, binding);
    } catch (error) {
      if (!(error instanceof SealedValueError)) throw error;
      out.unreadable++;
      continue;
    }
    // Compare-and-set: a row changed under us is not overwritten with its old secret.
    const done = await ctx.db.updateTable('account').set({ totp_secret: to.seal(plain, binding) }).where('id', '=', a.id).where('totp_secret', '=', a.totp_secret).executeTakeFirst();
    if (Number(done.numUpdatedRows ?? 0) !== 1) throw new GatehouseError('rotation_conflict', 409, 'An authenticator secret changed while the key was being rotated: stop every Gatehouse server on this database and run the rotation again.');
    out.totpSecrets++;
  }
  // An enrolment under way (ten minutes at most) is re-sealed; one that cannot be opened starts again.
  const resealPending = async (sealed: string, binding: string, save: (resealed: string) => Promise<unknown>, drop: () => Promise<unknown>) => {
    try {
      await save(to.seal(from.open(sealed, binding), binding));
      out.pendingEnrolments++;
    } catch (error) {
      if (!(error instanceof SealedValueError)) throw error;
      await drop();
      out.unreadable++;
    }
  };
  const attempts = await ctx.db.selectFrom('sign_in_attempt').select(['id', 'account_id', 'pending_totp_secret']).where('pending_totp_secret', 'is not', null).execute();
  for (const attempt of attempts) {
    await resealPending(
      attempt.pending_totp_secret!,
      sealedFor.enrolment(attempt.id, attempt.account_id),
      (resealed) => ctx.db.updateTable('sign_in_attempt').set({ pending_totp_secret: resealed }).where('id', '=', attempt.id).execute(),
      () => ctx.db.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute(),
    );
  }
  // Enrolments under way from My account (the secret kept by the server until the first code): the same.
  const sessions = await ctx.db.selectFrom('session').select(['id', 'account_id', 'pending_totp_secret']).where('pending_totp_secret', 'is not', null).execute();
  for (const session of sessions) {
    await resealPending(
      session.pending_totp_secret!,
      sealedFor.sessionEnrolment(session.id, session.account_id),
      (resealed) => ctx.db.updateTable('session').set({ pending_totp_secret: resealed }).where('id', '=', session.id).execute(),
      () => ctx.db.updateTable('session').set({ pending_totp_secret: null, pending_totp_expires_at: null }).where('id', '=', session.id).execute(),
    );
  }
  return out;
}

const stamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');

export async function rotateSecretKey(rt: Runtime, actor: Actor, options: { whileRunning: boolean }): Promise<RotationReport> {
  const keyFile = secretKeyPath(rt.config.dataDir, rt.config.secretKeyFile);
  const newFile = `${keyFile}.new`;
  const oldBox = rt.secrets;
  let resumed = false;
  let newBox: SecretBox | undefined;
  if (existsSync(newFile)) {
    // An earlier rotation stopped part-way. If the database is already under the new key, finish it.
    const candidate = secretBox(readKeyFile(newFile));
    const usage = await secretKeyUsage(rt);
    if ((usage.sealedUnder[candidate.keyId] ?? 0) > 0) {
      newBox = candidate;
      resumed = true;
    } else {
      rmSync(newFile);
    }
  }
  newBox ??= secretBox(writeNewKeyFile(newFile));

  const now = rt.clock.now();
  let oldKeyFile = `${keyFile}.old-${stamp(now)}`;
  if (resumed) {
    // The interrupted run kept the old key already: name the newest copy.
    const prefix = `${path.basename(keyFile)}.old-`;
    const kept = readdirSync(path.dirname(keyFile)).filter((f) => f.startsWith(prefix)).sort();
    oldKeyFile = kept.length ? path.join(path.dirname(keyFile), kept.at(-1)!) : '(none found)';
  } else {
    for (let n = 2; existsSync(oldKeyFile); n++) oldKeyFile = `${keyFile}.old-${stamp(now)}-${n}`;
    copyFileSync(keyFile, oldKeyFile, constants.COPYFILE_EXCL);
    chmodSync(oldKeyFile, 0o600);
  }

  const counts = resumed
    ? { totpSecrets: 0, pendingEnrolments: 0, unreadable: 0 }
    : await rt.trail.transaction(actor, async (ctx) => {
        const result = await reseal(ctx, oldBox, newBox!);
        await ctx.audit.record({
          action: 'platform.secret_key_rotated',
          target: 'secret_key',
          severity: 'high',
          details: { oldKeyId: oldBox.keyId, newKeyId: newBox!.keyId, ...result, whileRunning: options.whileRunning },
        });
        return result;
      });

  renameSync(newFile, keyFile);
  chmodSync(keyFile, 0o600);
  return { oldKeyId: oldBox.keyId, newKeyId: newBox.keyId, ...counts, oldKeyFile, keyFile, resumed };
}
