import os from 'node:os';
import type { Logger } from 'pino';
import { loadOrCreateSigner, loadSigner, type AuditSigner } from './audit/signing.js';
import { AuditTrail } from './audit/trail.js';
import type { Clock } from './core/clock.js';
import { systemClock } from './core/clock.js';
import type { Config } from './core/config.js';
import { loadProfile, type Profile } from './core/profile.js';
import { migrate, openDatabase, type Database } from './db/database.js';
import { PasswordHasher } from './identity/passwords.js';

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
  close(): Promise<void>;
}

export interface RuntimeOptions {
  logger: Logger;
  clock?: Clock;
  /** serve: create the signing key if missing and run the checkpoint timer. */
  signing: 'create' | 'load' | 'none';
  checkpointTimer?: boolean;
}

export async function openRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const profile = loadProfile(config.profile);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    sqliteSynchronous: config.sqliteSynchronous,
    postgresPoolSize: config.postgresPoolSize,
  });
  try {
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
