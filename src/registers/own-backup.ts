import { randomBytes, createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { systemActor } from '../core/context.js';
import { ensurePrivateDir } from '../core/file-modes.js';
import { newId } from '../core/ids.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import { secretKeyPath } from '../core/secret-box.js';
import { writeBackup } from '../db/backup.js';
import { readBackupKey } from '../db/backup-crypto.js';
import type { Runtime } from '../runtime.js';
import { recordBuiltInRun } from './backups.js';

/**
 * DP-01, DP-03, BK-01, BK-02: `serve` backs up its own database on a schedule into
 * GATEHOUSE_BACKUP_DIR: one consistent snapshot (VACUUM INTO), 0600, encrypted with the backup key
 * when GATEHOUSE_BACKUP_KEY_FILE is set, the oldest beyond GATEHOUSE_BACKUP_KEEP deleted. Each run
 * is a check-in of the built-in "Gatehouse database" job in the backups register, so a failed run
 * alerts at once and a missed one (the server down, the timer stuck) alerts after interval + grace,
 * exactly as for the school's other backups.
 */

export const OWN_JOB_SYSTEM = 'gatehouse';
export const OWN_JOB_NAME = 'Gatehouse database';
const FILE_PATTERN = /^gatehouse-\d{8}T\d{6}Z(-\d+)?\.db(\.enc)?$/;

export interface OwnBackupSettings {
  dir: string;
  everyMinutes: number;
  keep: number;
  keyFile: string | undefined;
}

export function ownBackupSettings(rt: Runtime): OwnBackupSettings | null {
  const c = rt.config;
  if (!c.backupDir) return null;
  return { dir: path.resolve(c.backupDir), everyMinutes: c.backupEveryMinutes, keep: c.backupKeep, keyFile: c.backupKeyFile };
}

/** Grace before a missed run alerts: a quarter of the interval, between 15 minutes and a day. */
const graceFor = (everyMinutes: number) => Math.min(24 * 60, Math.max(15, Math.round(everyMinutes / 4)));

/** The built-in job, made (or brought up to date with the settings) in one audited transaction. */
export async function ensureOwnJob(rt: Runtime, settings: OwnBackupSettings): Promise<string> {
  const values = {
    what: `Gatehouse’s own database (accounts, filtering, registers, the audit trail), backed up by the server into ${settings.dir}`,
    encrypted: settings.keyFile ? 1 : 0,
    interval_minutes: settings.everyMinutes,
    grace_minutes: graceFor(settings.everyMinutes),
  };
  return rt.trail.transaction(systemActor('backup-scheduler'), async (ctx) => {
    const now = rt.clock.now().toISOString();
    const existing = await ctx.db.selectFrom('backup_job').selectAll().where('system', '=', OWN_JOB_SYSTEM).where('retired_at', 'is', null).executeTakeFirst();
    if (existing) {
      if (existing.what !== values.what || existing.encrypted !== values.encrypted || existing.interval_minutes !== values.interval_minutes || existing.grace_minutes !== values.grace_minutes) {
        await ctx.db.updateTable('backup_job').set({ ...values, updated_at: now }).where('id', '=', existing.id).execute();
        await ctx.audit.record({ action: 'backup.job_updated', target: `backup_job:${existing.id}`, details: { name: existing.name, encrypted: values.encrypted === 1, intervalMinutes: values.interval_minutes, graceMinutes: values.grace_minutes, dir: settings.dir } });
      }
      return existing.id;
    }
    // A job of the school's own may already carry the name: the built-in one then says so.
    const clash = await ctx.db.selectFrom('backup_job').select('id').where('name', '=', OWN_JOB_NAME).executeTakeFirst();
    const name = clash ? `${OWN_JOB_NAME} (built in)` : OWN_JOB_NAME;
    const id = newId();
    // No check-in URL: the server reports its own runs. The token column holds a hash of nothing anyone has.
    const unusable = createHash('sha256').update(randomBytes(32)).digest('hex');
    await ctx.db.insertInto('backup_job').values({
      id, name, location: 'on_site', ...values,
      token_hash: unusable, token_issued_at: now,
      last_checkin_at: null, last_status: null, last_success_at: null, alerted_at: null, system: OWN_JOB_SYSTEM,
      created_at: now, updated_at: now, retired_at: null,
    }).execute();
    await ctx.audit.record({ action: 'backup.job_created', target: `backup_job:${id}`, details: { name, location: 'on_site', encrypted: values.encrypted === 1, intervalMinutes: values.interval_minutes, graceMinutes: values.grace_minutes, builtIn: true } });
    return id;
  });
}

const stampOf = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** Deletes the oldest scheduled backups beyond `keep` (only files this scheduler names). */
export function pruneOwnBackups(dir: string, keep: number): string[] {
  const files = readdirSync(dir).filter((f) => FILE_PATTERN.test(f)).sort().reverse();
  const removed = files.slice(keep);
  for (const f of removed) rmSync(path.join(dir, f), { force: true });
  return removed;
}

export interface OwnBackupResult {
  status: 'ok' | 'fail';
  file: string | null;
  error: string | null;
  pruned: string[];
}

/** One scheduled run: back up, prune, and record the run as the built-in job's check-in (audited). */
export async function runOwnBackup(rt: Runtime, settings: OwnBackupSettings): Promise<OwnBackupResult> {
  const jobId = await ensureOwnJob(rt, settings);
  let result: OwnBackupResult;
  try {
    ensurePrivateDir(settings.dir);
    const key = settings.keyFile ? readBackupKey(settings.keyFile, secretKeyPath(rt.config.dataDir, rt.config.secretKeyFile)) : null;
    const base = `gatehouse-${stampOf(rt.clock.now())}`;
    const ext = key ? '.db.enc' : '.db';
    let file = path.join(settings.dir, `${base}${ext}`);
    for (let n = 2; existsSync(file); n++) file = path.join(settings.dir, `${base}-${n}${ext}`);
    const summary = await writeBackup(rt.config.databaseUrl, rt.config.dataDir, file, { overwrite: false, key });
    const pruned = pruneOwnBackups(settings.dir, settings.keep);
    await recordBuiltInRun(rt, jobId, 'ok', { name: OWN_JOB_NAME, file: summary.file, bytes: summary.bytes, sha256: summary.sha256, auditEvents: summary.auditEvents, encryptedWithKey: summary.encryptedWithKey ?? null, pruned: pruned.length });
    result = { status: 'ok', file: summary.file, error: null, pruned };
  } catch (error) {
    const message = (error as Error).message;
    rt.logger.error({ err: error, dir: settings.dir }, 'scheduled backup of the Gatehouse database failed');
    await recordBuiltInRun(rt, jobId, 'fail', { name: OWN_JOB_NAME, error: message.slice(0, 500) });
    result = { status: 'fail', file: null, error: message, pruned: [] };
  }
  return result;
}

/** At start, before listening: a missing, open or wrong backup key stops the start with its message, not a run hours later. */
export function checkOwnBackupKey(rt: Runtime): void {
  const settings = ownBackupSettings(rt);
  if (settings?.keyFile) readBackupKey(settings.keyFile, secretKeyPath(rt.config.dataDir, rt.config.secretKeyFile));
}

/**
 * In `serve` when GATEHOUSE_BACKUP_DIR is set: the first run when the last success is one interval
 * old (at least a few seconds after start, so a restart does not back up twice in a row), then every
 * interval.
 */
export async function scheduleOwnBackups(rt: Runtime, options: { minFirstAfterMs?: number } = {}): Promise<Periodic | null> {
  const settings = ownBackupSettings(rt);
  if (!settings) return null;
  if (!settings.keyFile) rt.logger.warn({ dir: settings.dir }, 'scheduled backups are written unencrypted: set GATEHOUSE_BACKUP_KEY_FILE to encrypt them (DP-01)');
  else checkOwnBackupKey(rt);
  const jobId = await ensureOwnJob(rt, settings);
  const job = await rt.db.kysely.selectFrom('backup_job').select('last_success_at').where('id', '=', jobId).executeTakeFirstOrThrow();
  const everyMs = settings.everyMinutes * 60_000;
  const sinceLast = job.last_success_at ? rt.clock.now().getTime() - Date.parse(job.last_success_at) : Infinity;
  const firstAfterMs = Math.max(options.minFirstAfterMs ?? 5_000, Math.min(everyMs, everyMs - sinceLast));
  rt.logger.info({ dir: settings.dir, everyMinutes: settings.everyMinutes, keep: settings.keep, encrypted: Boolean(settings.keyFile), firstInSeconds: Math.round(firstAfterMs / 1000) }, 'scheduled backups of the Gatehouse database');
  return schedulePeriodic(rt.logger, 'scheduled backup', async () => {
    const r = await runOwnBackup(rt, settings);
    if (r.status === 'ok') rt.logger.info({ file: r.file, pruned: r.pruned.length }, 'backed up the Gatehouse database');
  }, { everyMs, firstAfterMs });
}
