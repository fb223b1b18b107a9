import type { Logger } from 'pino';
import type { AuditTrail } from '../audit/trail.js';
import type { Database } from '../db/database.js';
import { systemActor } from '../core/context.js';
import type { KeyedHasher } from '../core/keyed-hash.js';
import { sealedFor, type SecretBox } from '../core/secret-box.js';
import { rekeyedRecoveryCodeHash } from './totp.js';

/**
 * The one-time upgrade of secrets stored before issue 10 (migration 0006 leaves a
 * `maintenance_task` row 'secrets-v2'; a migration cannot do it, as it needs the key files):
 *
 * - TOTP secrets sealed as `v1:` (no associated data) are re-sealed as `v2:` bound to their row;
 *   from then on `v1:` values are refused, so one copied into another row later does not open.
 * - recovery-code hashes stored as plain SHA-256 become HMAC-SHA-256 under hmac.key with the
 *   account id as salt. The new hash is computed over the old one, so the codes themselves are not
 *   needed and every code people hold keeps working.
 *
 * One transaction, audited with counts (never values). Taking the task row first makes the work
 * happen once even when several nodes start together on one PostgreSQL database.
 */
export const SECRETS_UPGRADE_TASK = 'secrets-v2';

export interface SecretsUpgradeReport {
  totpSecretsResealed: number;
  enrolmentsResealed: number;
  recoveryCodesRekeyed: number;
  unreadable: number;
}

export async function upgradeStoredSecrets(db: Database, trail: AuditTrail, secrets: SecretBox, keyedHash: KeyedHasher, logger: Logger): Promise<SecretsUpgradeReport | null> {
  // Almost always done already: a plain read, so a start takes no write lock for nothing.
  const pending = await db.kysely.selectFrom('maintenance_task').select('name').where('name', '=', SECRETS_UPGRADE_TASK).executeTakeFirst();
  if (!pending) return null;
  const report = await trail.transaction(systemActor('upgrade'), async (ctx) => {
    const claimed = await ctx.db.deleteFrom('maintenance_task').where('name', '=', SECRETS_UPGRADE_TASK).executeTakeFirst();
    if (Number(claimed.numDeletedRows ?? 0) !== 1) return null;
    const out: SecretsUpgradeReport = { totpSecretsResealed: 0, enrolmentsResealed: 0, recoveryCodesRekeyed: 0, unreadable: 0 };

    const accounts = await ctx.db.selectFrom('account').select(['id', 'username', 'totp_secret']).where('totp_secret', 'like', 'v1:%').execute();
    for (const a of accounts) {
      let plain: string;
      try {
        plain = secrets.openLegacy(a.totp_secret!);
      } catch {
        // Sealed under another key: leave it; sign-in will refuse it and say why.
        out.unreadable++;
        logger.error({ accountId: a.id, username: a.username }, 'upgrade: a stored authenticator secret does not open with the current secret.key; left as it is');
        continue;
      }
      await ctx.db.updateTable('account').set({ totp_secret: secrets.seal(plain, sealedFor.accountTotp(a.id)) }).where('id', '=', a.id).execute();
      out.totpSecretsResealed++;
    }

    const attempts = await ctx.db.selectFrom('sign_in_attempt').select(['id', 'account_id', 'pending_totp_secret']).where('pending_totp_secret', 'like', 'v1:%').execute();
    for (const attempt of attempts) {
      try {
        const plain = secrets.openLegacy(attempt.pending_totp_secret!);
        await ctx.db.updateTable('sign_in_attempt').set({ pending_totp_secret: secrets.seal(plain, sealedFor.enrolment(attempt.id, attempt.account_id)) }).where('id', '=', attempt.id).execute();
        out.enrolmentsResealed++;
      } catch {
        // A sign-in under way (ten minutes at most): it starts again.
        await ctx.db.deleteFrom('sign_in_attempt').where('id', '=', attempt.id).execute();
        out.unreadable++;
      }
    }

    const codes = await ctx.db.selectFrom('recovery_code').select(['account_id', 'code_hash']).where('code_hash', 'not like', 'h1:%').execute();
    for (const c of codes) {
      await ctx.db
        .updateTable('recovery_code')
        .set({ code_hash: rekeyedRecoveryCodeHash(keyedHash, c.account_id, c.code_hash) })
        .where('account_id', '=', c.account_id)
        .where('code_hash', '=', c.code_hash)
        .execute();
      out.recoveryCodesRekeyed++;
    }

    // A new database has nothing to upgrade: no event for it.
    if (Object.values(out).some((n) => n > 0)) await ctx.audit.record({ action: 'platform.secrets_upgraded', target: 'database', severity: 'notice', details: { ...out } });
    return out;
  });
  if (report && Object.values(report).some((n) => n > 0)) logger.info({ upgrade: report }, 'stored secrets upgraded: TOTP secrets bound to their accounts, recovery codes keyed');
  return report;
}
