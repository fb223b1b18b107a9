import { createHash } from 'node:crypto';
import os from 'node:os';
import { canonicalJson } from './core/canonical-json.js';
import { systemActor } from './core/context.js';
import { profileWarnings } from './core/profile-warnings.js';
import type { Logger } from 'pino';
import { loadOrCreateSigner, loadSigner, type AuditSigner } from './audit/signing.js';
import { AuditTrail } from './audit/trail.js';
import type { Clock } from './core/clock.js';
import { systemClock } from './core/clock.js';
import type { Config } from './core/config.js';
import { loadProfile, type Profile } from './core/profile.js';
import { migrate, openDatabase, type Database } from './db/database.js';
import { ensurePrivateDir } from './core/file-modes.js';
import { PasswordHasher } from './identity/passwords.js';
import { AddressThrottle } from './identity/throttle.js';
import { createMailer, type Mailer } from './core/mailer.js';
import { TrustedNetworks } from './core/networks.js';
import { loadOrCreateSecretBox, type SecretBox } from './core/secret-box.js';
import { hmacKeyPath, loadOrCreateKeyedHasher, type KeyedHasher } from './core/keyed-hash.js';
import { upgradeStoredSecrets } from './identity/secrets-upgrade.js';

/** Everything a running Gatehouse process holds, built once by `serve` or a CLI command. */
export interface Runtime {
  config: Config;
  db: Database;
  clock: Clock;
  logger: Logger;
  trail: AuditTrail;
  hasher: PasswordHasher;
  profile: Profile;
  signer: AuditSigner | undefined;
  secrets: SecretBox;
  /** HMAC-SHA-256 under hmac.key: recovery codes, unknown usernames in the trail. */
  keyedHash: KeyedHasher;
  mailer: Mailer;
  trustedNetworks: TrustedNetworks;
  throttle: AddressThrottle;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  logger: Logger;
  clock?: Clock;
  /** serve: create the signing key if missing and run the checkpoint timer. */
  signing: 'create' | 'load' | 'none';
  checkpointTimer?: boolean;
  /** serve: record the profile in force when it changed (read-only commands write nothing). */
  recordProfile?: boolean;
}

/**
 * The trail shows which policy was in force when: whenever the resolved profile differs from the
 * one last recorded, a `profile.activated` event names it with a digest of every setting.
 */
async function recordActiveProfile(trail: AuditTrail, profile: Profile, reference: string): Promise<void> {
  const digest = createHash('sha256').update(canonicalJson(profile)).digest('hex');
  await trail.transaction(systemActor(), async (ctx) => {
    const last = await ctx.db.selectFrom('audit_event').select('body').where('action', '=', 'profile.activated').orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (last && (JSON.parse(last.body) as { details: { digest?: string } }).details.digest === digest) return;
    await ctx.audit.record({
      action: 'profile.activated',
      target: 'profile',
      severity: 'notice',
      details: { name: profile.name, lineage: profile.lineage, reference, digest, warnings: profileWarnings(profile).map((w) => w.setting) },
    });
  });
}

export async function openRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const profile = loadProfile(config.profile);
  // Owner only, whatever the umask (the keys, the database and the setup link live here).
  const tightened = ensurePrivateDir(config.dataDir);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    sqliteSynchronous: config.sqliteSynchronous,
    postgresPoolSize: config.postgresPoolSize,
  });
  try {
    for (const t of [...tightened, ...db.tightened]) {
      logger.warn({ path: t.path, was: t.from }, `${t.path} could be read by other users of this machine (mode ${t.from}); it is now owner-only`);
    }
    const applied = await migrate(db);
    if (applied.length > 0) logger.info({ migrations: applied, database: db.location }, 'database migrated');

    let signer: AuditSigner | undefined;
    if (options.signing === 'create') {
      const loaded = loadOrCreateSigner(config.dataDir);
      signer = loaded.signer;
      if (loaded.created) logger.info({ keyId: signer.keyId }, 'created the audit signing key');
    } else if (options.signing === 'load') {
      signer = loadSigner(config.dataDir);
    }

    const trail = new AuditTrail(db, clock, signer, {
      checkpointEvery: config.auditCheckpointEvery,
      checkpointMinutes: config.auditCheckpointMinutes,
      checkpointLogFile: config.auditCheckpointLogFile,
      onCheckpoint: (cp) => logger.info({ auditCheckpoint: { seq: cp.seq, hash: cp.hash, keyId: cp.key_id, at: cp.at } }, 'audit checkpoint signed'),
      onError: (error) => logger.error({ err: error }, 'audit checkpoint failed'),
    });
    await trail.start({ timer: options.checkpointTimer ?? false });
    if (options.recordProfile) await recordActiveProfile(trail, profile, config.profile);

    const secrets = loadOrCreateSecretBox(config.dataDir, config.secretKeyFile);
    const keyedHash = loadOrCreateKeyedHasher(hmacKeyPath(config.dataDir, config.hmacKeyFile));
    // Once, after migration 0006: secrets stored before issue 10 are bound and keyed.
    await upgradeStoredSecrets(db, trail, secrets, keyedHash, logger);

    const hasher = new PasswordHasher(
      { memoryKiB: config.argon2MemoryKiB, iterations: config.argon2Iterations, parallelism: config.argon2Parallelism },
      Math.max(2, os.availableParallelism()),
    );

    return {
      config,
      db,
      clock,
      logger,
      trail,
      hasher,
      profile,
      signer,
      secrets,
      keyedHash,
      mailer: createMailer({ smtpUrl: config.smtpUrl, from: config.smtpFrom, logger }),
      trustedNetworks: new TrustedNetworks(profile.trustedNetworks),
      throttle: new AddressThrottle(config.signInFailuresPerAddress, 5 * 60_000, () => clock.now().getTime()),
      async close() {
        await trail.stop();
        await db.close();
      },
    };
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
}
