import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { systemActor } from '../core/context.js';
import { GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import type { BackupJobTable, ContinuityPlanTable } from '../db/schema.js';
import { importErrors, readRows, type CsvError } from './csv.js';
import { csvField } from '../core/csv.js';
import { alertEngineFor } from '../monitoring/alerts.js';
import type { Runtime } from '../runtime.js';

/**
 * The backups register (BK-01..05, DP-03): each backup job with what it holds, where the copies are
 * (on site, off site, offline, cloud), whether they are encrypted and how often it runs; a check-in
 * URL per job (healthchecks-style, `curl -fsS URL` after each run) so a missed or failed run alerts
 * the IT lead; test restores (at least yearly) and the continuity and disaster recovery plan.
 * Only the SHA-256 of a check-in token is stored; the token is shown once, when issued or rotated.
 */

type Meta = { ip: string | null; requestId: string | null };
const DAY = 86_400_000;
const YEAR = 365 * DAY;

export const locations = ['on_site', 'off_site', 'offline', 'cloud'] as const;
const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);

export const jobSchema = z
  .object({
    name: text('a name for the job', 200),
    what: text('what is backed up', 2000),
    location: z.enum(locations, { error: `must be one of ${locations.join(', ')}` }),
    encrypted: z.boolean({ error: 'say whether the copies are encrypted' }),
    intervalMinutes: z.number({ error: 'must be a number of minutes' }).int().min(5, 'at least 5 minutes').max(60 * 24 * 31, 'at most 31 days'),
    graceMinutes: z.number({ error: 'must be a number of minutes' }).int().min(1, 'at least 1 minute').max(60 * 24 * 7, 'at most 7 days'),
  })
  .strict();

export const restoreTestSchema = z
  .object({
    jobId: z.uuid('must be a backup job id').nullable().default(null),
    testedAt: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
    result: z.enum(['pass', 'partial', 'fail'], { error: 'must be pass, partial or fail' }),
    notes: text('what was restored and how it went', 4000),
  })
  .strict();

export const planSchema = z
  .object({
    title: text('the plan’s title', 200),
    documentLink: z.url({ message: 'must be a link to the plan (https://…)', protocol: /^https?$/ }).max(2000).nullable().default(null),
    ransomwareResponse: text('the response to ransomware (who does what, in which order)', 8000),
    contacts: text('who to call (IT provider, insurer, Action Fraud, the DPO…), one a line', 4000),
    nextReviewAt: z.iso.date({ message: 'must be a date like 2027-09-01' }),
    changeNote: z.string().trim().max(1000, 'must be at most 1000 characters').nullable().default(null),
  })
  .strict();

export interface BackupJob {
  id: string;
  name: string;
  what: string;
  location: string;
  encrypted: boolean;
  intervalMinutes: number;
  graceMinutes: number;
  lastCheckinAt: string | null;
  lastStatus: string | null;
  lastSuccessAt: string | null;
  /** when the next check-in is due at the latest (interval + grace after the last success) */
  dueBy: string;
  state: 'ok' | 'missed' | 'failing' | 'waiting';
  system: string | null;
  checkinPath: string;
}

const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest();

function dueByOf(r: Pick<BackupJobTable, 'last_success_at' | 'created_at' | 'interval_minutes' | 'grace_minutes'>): Date {
  return new Date(Date.parse(r.last_success_at ?? r.created_at) + (r.interval_minutes + r.grace_minutes) * 60_000);
}

function summarise(r: Selectable<BackupJobTable>, now: Date): BackupJob {
  const dueBy = dueByOf(r);
  const state: BackupJob['state'] = r.last_status === 'fail' ? 'failing' : dueBy.getTime() < now.getTime() ? 'missed' : r.last_success_at ? 'ok' : 'waiting';
  return {
    id: r.id,
    name: r.name,
    what: r.what,
    location: r.location,
    encrypted: r.encrypted === 1,
    intervalMinutes: r.interval_minutes,
    graceMinutes: r.grace_minutes,
    lastCheckinAt: r.last_checkin_at,
    lastStatus: r.last_status,
    lastSuccessAt: r.last_success_at,
    dueBy: dueBy.toISOString(),
    state,
    system: r.system,
    checkinPath: `/api/backups/checkin/${r.id}/<token>`,
  };
}

export async function listJobs(rt: Runtime): Promise<BackupJob[]> {
  const now = rt.clock.now();
  return (await rt.db.kysely.selectFrom('backup_job').selectAll().where('retired_at', 'is', null).orderBy('name').execute()).map((r) => summarise(r, now));
}

export async function getJob(rt: Runtime, id: string): Promise<BackupJob> {
  const row = await rt.db.kysely.selectFrom('backup_job').selectAll().where('id', '=', id).where('retired_at', 'is', null).executeTakeFirst();
  if (!row) throw notFound('There is no such backup job.');
  return summarise(row, rt.clock.now());
}

function checkinUrl(rt: Runtime, id: string, token: string): string {
  const base = (rt.config.publicUrl ?? '').replace(/\/$/, '');
  return `${base}/api/backups/checkin/${id}/${token}`;
}

/** BK-01, BK-04: a job with its schedule, location and encryption; the check-in token is shown once. */
export async function createJob(rt: Runtime, actor: Actor, input: z.infer<typeof jobSchema>, meta: Meta, system: string | null = null): Promise<{ job: BackupJob; token: string; checkinUrl: string }> {
  const id = newId();
  const token = randomBytes(32).toString('base64url');
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    const clash = await ctx.db.selectFrom('backup_job').select('id').where('name', '=', input.name).executeTakeFirst();
    if (clash) throw new GatehouseError('conflict', 409, `There is already a backup job called ${input.name}.`);
    await ctx.db.insertInto('backup_job').values({
      id, name: input.name, what: input.what, location: input.location, encrypted: input.encrypted ? 1 : 0,
      interval_minutes: input.intervalMinutes, grace_minutes: input.graceMinutes,
      token_hash: hashToken(token).toString('hex'), token_issued_at: now,
      last_checkin_at: null, last_status: null, last_success_at: null, alerted_at: null, system,
      created_at: now, updated_at: now, retired_at: null,
    }).execute();
    await ctx.audit.record({ action: 'backup.job_created', target: `backup_job:${id}`, details: { name: input.name, location: input.location, encrypted: input.encrypted, intervalMinutes: input.intervalMinutes, graceMinutes: input.graceMinutes } });
  }, meta);
  return { job: await getJob(rt, id), token, checkinUrl: checkinUrl(rt, id, token) };
}

/** A new check-in token; the old one stops working at once (audited). */
const refuseBuiltIn = async (rt: Runtime, id: string) => {
  const row = await rt.db.kysely.selectFrom('backup_job').select('system').where('id', '=', id).executeTakeFirst();
  if (row?.system) throw new GatehouseError('conflict', 409, 'This is Gatehouse’s own backup job: it reports in from inside the server, set up by GATEHOUSE_BACKUP_DIR (docs/backup.md).');
};

export async function rotateToken(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<{ job: BackupJob; token: string; checkinUrl: string }> {
  await refuseBuiltIn(rt, id);
  const token = randomBytes(32).toString('base64url');
  await rt.trail.transaction(actor, async (ctx) => {
    const r = await ctx.db.updateTable('backup_job').set({ token_hash: hashToken(token).toString('hex'), token_issued_at: rt.clock.now().toISOString(), updated_at: rt.clock.now().toISOString() }).where('id', '=', id).where('retired_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw notFound('There is no such backup job.');
    await ctx.audit.record({ action: 'backup.token_rotated', target: `backup_job:${id}`, severity: 'notice' });
  }, meta);
  return { job: await getJob(rt, id), token, checkinUrl: checkinUrl(rt, id, token) };
}

export async function retireJob(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<void> {
  await refuseBuiltIn(rt, id);
  await rt.trail.transaction(actor, async (ctx) => {
    const r = await ctx.db.updateTable('backup_job').set({ retired_at: rt.clock.now().toISOString() }).where('id', '=', id).where('retired_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw notFound('There is no such backup job.');
    await ctx.audit.record({ action: 'backup.job_retired', target: `backup_job:${id}`, severity: 'notice' });
  }, meta);
}

const refused = () => new GatehouseError('not_found', 404, 'There is no such check-in.');

/**
 * BK-02: a run reports in. The token is compared in constant time with the stored hash; an unknown
 * job and a wrong (or rotated) token answer the same 404, so the URL reveals nothing.
 */
export async function checkIn(rt: Runtime, id: string, token: string, status: 'ok' | 'fail', ip: string | null): Promise<{ status: 'ok' | 'fail'; at: string }> {
  if (!z.uuid().safeParse(id).success || token.length > 200) throw refused();
  const row = await rt.db.kysely.selectFrom('backup_job').select(['id', 'name', 'token_hash']).where('id', '=', id).where('retired_at', 'is', null).executeTakeFirst();
  const presented = hashToken(token);
  const stored = Buffer.from(row?.token_hash ?? '0'.repeat(64), 'hex');
  if (!row || !timingSafeEqual(presented, stored)) {
    if (row) await rt.trail.transaction(systemActor('backup-checkin'), (ctx) => ctx.audit.record({ action: 'backup.checkin_refused', target: `backup_job:${id}`, severity: 'warning', details: { reason: 'wrong or rotated token' } }), { ip, requestId: null });
    throw refused();
  }
  const at = rt.clock.now().toISOString();
  await rt.trail.transaction(systemActor('backup-checkin'), async (ctx) => {
    // Conditional on the token still being current, so a rotation between read and write wins.
    const r = await ctx.db.updateTable('backup_job')
      .set(status === 'ok' ? { last_checkin_at: at, last_status: 'ok', last_success_at: at, alerted_at: null } : { last_checkin_at: at, last_status: 'fail' })
      .where('id', '=', id).where('token_hash', '=', row.token_hash).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw refused();
    await ctx.db.insertInto('backup_checkin').values({ id: newId(), job_id: id, at, status, ip }).execute();
    await ctx.audit.record({ action: status === 'ok' ? 'backup.checked_in' : 'backup.run_failed', target: `backup_job:${id}`, severity: status === 'ok' ? 'info' : 'warning', details: { name: row.name } });
  }, { ip, requestId: null });
  if (status === 'fail') await alertJobs(rt);
  return { status, at };
}

/**
 * DP-03: a run of a built-in job (Gatehouse's own backup) reports in from inside the server, with no
 * token: the same record, audit and alerting as a check-in over HTTP.
 */
export async function recordBuiltInRun(rt: Runtime, id: string, status: 'ok' | 'fail', details: Record<string, unknown>): Promise<void> {
  const at = rt.clock.now().toISOString();
  await rt.trail.transaction(systemActor('backup-scheduler'), async (ctx) => {
    const r = await ctx.db.updateTable('backup_job')
      .set(status === 'ok' ? { last_checkin_at: at, last_status: 'ok', last_success_at: at, alerted_at: null } : { last_checkin_at: at, last_status: 'fail' })
      .where('id', '=', id).where('system', 'is not', null).where('retired_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw notFound('There is no such built-in backup job.');
    await ctx.db.insertInto('backup_checkin').values({ id: newId(), job_id: id, at, status, ip: null }).execute();
    await ctx.audit.record({ action: status === 'ok' ? 'backup.checked_in' : 'backup.run_failed', target: `backup_job:${id}`, severity: status === 'ok' ? 'info' : 'warning', details });
  });
  if (status === 'fail') await alertJobs(rt);
}

async function itLeadEmails(rt: Runtime): Promise<string[]> {
  const contact = await rt.db.kysely.selectFrom('school_contact').select('email').where('role', '=', 'it_provider').executeTakeFirst();
  if (contact?.email) return [contact.email];
  const admins = await rt.db.kysely.selectFrom('account').select('email').where('role', '=', 'administrator').where('status', '=', 'active').where('email', 'is not', null).execute();
  return admins.map((a) => a.email!).filter(Boolean);
}

/**
 * BK-02: jobs whose run is missed (no success within interval + grace) or failed are alerted once
 * (until the next success): a conditional UPDATE claims the alert in its own short transaction, the
 * e-mail goes out after it commits, and the outcome is audited in another; no transaction is held
 * across the mail.
 */
export async function alertJobs(rt: Runtime): Promise<{ alerted: number }> {
  const now = rt.clock.now();
  const rows = await rt.db.kysely.selectFrom('backup_job').selectAll().where('retired_at', 'is', null).where('alerted_at', 'is', null).execute();
  const due = rows.filter((r) => r.last_status === 'fail' || dueByOf(r).getTime() < now.getTime());
  let alerted = 0;
  for (const r of due) {
    const claimed = await rt.trail.transaction(systemActor('backup-monitor'), async (ctx) => {
      const u = await ctx.db.updateTable('backup_job').set({ alerted_at: now.toISOString() }).where('id', '=', r.id).where('alerted_at', 'is', null).executeTakeFirst();
      if (Number(u.numUpdatedRows) !== 1) return false;
      await ctx.audit.record({ action: 'backup.missed', target: `backup_job:${r.id}`, severity: 'warning', details: { name: r.name, failed: r.last_status === 'fail', lastSuccessAt: r.last_success_at } });
      return true;
    });
    if (!claimed) continue;
    alerted++;
    const failed = r.last_status === 'fail';
    // Also an alert in the alerts engine (security kind): on the Alerts page, e-mailed and sent to the
    // webhooks the profile names, acknowledged and closed like any other. One per missed or failed run:
    // the claim above holds until the next success, and the key names the run.
    try {
      await alertEngineFor(rt).raise([{
        kind: 'security',
        rule: failed ? 'backup_failed' : 'backup_missed',
        severity: failed ? 'high' : 'medium',
        dedupeKey: `backup|${r.id}|${failed ? `fail:${r.last_checkin_at}` : `missed:${dueByOf(r).toISOString()}`}`,
        at: now.toISOString(),
        personId: null,
        username: null,
        device: `backup job “${r.name}”`,
        clientIp: null,
        what: failed ? `backup “${r.name}” reported a failure` : `backup “${r.name}” has not checked in on time`,
        why: failed
          ? `the run reported a failure at ${r.last_checkin_at} (BK-02); last success ${r.last_success_at ?? 'never'}`
          : `no successful check-in since ${r.last_success_at ?? 'it was added'}; expected every ${r.interval_minutes} minutes with ${r.grace_minutes} minutes' grace (BK-02)`,
      }]);
    } catch (error) {
      rt.logger.error({ err: error, job: r.id }, 'backup monitor: the alert could not be raised');
    }
    const to = await itLeadEmails(rt);
    for (const address of to) {
      const result = await rt.mailer.send({
        to: address,
        subject: failed ? `Backup failed: ${r.name}` : `Backup missed: ${r.name}`,
        text: `${failed ? 'The backup job reported a failure' : 'The backup job has not checked in on time'}: ${r.name} (${r.what}).\n\n` +
          `Last successful run: ${r.last_success_at ?? 'never'}. Expected every ${r.interval_minutes} minutes, with ${r.grace_minutes} minutes' grace.\n\n` +
          `Check the job and its storage, then see Backups in Gatehouse (BK-02).\n\n— Gatehouse`,
      });
      await rt.trail.transaction(systemActor('backup-monitor'), (ctx) => ctx.audit.record({ action: result.sent ? 'backup.alert_sent' : 'backup.alert_failed', target: `backup_job:${r.id}`, severity: result.sent ? 'info' : 'warning', details: { to: address, ...(result.sent ? {} : { error: result.error ?? 'not sent' }) } }));
    }
  }
  return { alerted };
}

/** Every five minutes in `serve`. */
export function scheduleBackupMonitor(rt: Runtime, everyMs = 300_000): Periodic {
  return schedulePeriodic(rt.logger, 'backup monitor', async () => {
    const r = await alertJobs(rt);
    if (r.alerted) rt.logger.warn({ alerted: r.alerted }, 'backup jobs missed or failed');
  }, { everyMs, firstAfterMs: 30_000 });
}

async function who(rt: Runtime, actor: Actor): Promise<{ id: string; name: string }> {
  if (!actor.id) throw new GatehouseError('forbidden', 403, 'A record is made by a named person.');
  const a = await rt.db.kysely.selectFrom('account').select('display_name').where('id', '=', actor.id).executeTakeFirst();
  return { id: actor.id, name: a?.display_name ?? actor.name };
}

/** BK-03: a test restore, with its result. */
export async function recordRestoreTest(rt: Runtime, actor: Actor, input: z.infer<typeof restoreTestSchema>, meta: Meta) {
  const person = await who(rt, actor);
  const now = rt.clock.now();
  const at = input.testedAt ? new Date(input.testedAt) : now;
  if (at.getTime() > now.getTime() + 5 * 60_000) throw new GatehouseError('validation_failed', 400, 'A test restore cannot be recorded in the future.');
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    if (input.jobId && !(await ctx.db.selectFrom('backup_job').select('id').where('id', '=', input.jobId).executeTakeFirst())) throw notFound('There is no such backup job.');
    await ctx.db.insertInto('backup_restore_test').values({ id, job_id: input.jobId, tested_at: at.toISOString(), result: input.result, tested_by: person.id, tested_by_name: person.name, notes: input.notes }).execute();
    await ctx.audit.record({ action: 'backup.restore_tested', target: `backup_restore_test:${id}`, severity: input.result === 'pass' ? 'info' : 'notice', details: { jobId: input.jobId, result: input.result, testedAt: at.toISOString() } });
  }, meta);
  return { id, jobId: input.jobId, testedAt: at.toISOString(), result: input.result, testedBy: person.name, notes: input.notes };
}

export async function listRestoreTests(rt: Runtime) {
  return (await rt.db.kysely.selectFrom('backup_restore_test').selectAll().orderBy('tested_at', 'desc').limit(500).execute()).map((r) => ({ id: r.id, jobId: r.job_id, testedAt: r.tested_at, result: r.result, testedBy: r.tested_by_name, notes: r.notes }));
}

/** The last passed test restore, and when the next is due (a year later). */
export async function lastRestoreTest(rt: Runtime): Promise<{ testedAt: string; dueAt: string } | null> {
  const r = await rt.db.kysely.selectFrom('backup_restore_test').select('tested_at').where('result', '=', 'pass').orderBy('tested_at', 'desc').limit(1).executeTakeFirst();
  return r ? { testedAt: r.tested_at, dueAt: new Date(Date.parse(r.tested_at) + YEAR).toISOString() } : null;
}

/**
 * BK-05: a new version of the continuity and disaster recovery plan (the latest is current; every
 * earlier version is kept as its history). Recorded by a named person, audited with what changed.
 */
export async function recordPlan(rt: Runtime, actor: Actor, input: z.infer<typeof planSchema>, meta: Meta) {
  const person = await who(rt, actor);
  const now = rt.clock.now();
  const next = new Date(`${input.nextReviewAt}T00:00:00.000Z`);
  if (next.getTime() <= now.getTime()) throw new GatehouseError('validation_failed', 400, 'The next review must be in the future.', { field: 'nextReviewAt' });
  if (next.getTime() > now.getTime() + 2 * YEAR) throw new GatehouseError('validation_failed', 400, 'Review the plan at least every two years.', { field: 'nextReviewAt' });
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    const previous = await ctx.db.selectFrom('continuity_plan').selectAll().orderBy('reviewed_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    await ctx.db.insertInto('continuity_plan').values({
      id, title: input.title, document_link: input.documentLink ?? '', ransomware_response: input.ransomwareResponse, contacts: input.contacts,
      reviewed_at: now.toISOString(), next_review_at: next.toISOString(), recorded_by_name: person.name, recorded_by: person.id, change_note: input.changeNote || null,
    }).execute();
    const changed = previous
      ? (['title', 'document_link', 'ransomware_response', 'contacts', 'next_review_at'] as const).filter((k) => String(previous[k] ?? '') !== String({ title: input.title, document_link: input.documentLink ?? '', ransomware_response: input.ransomwareResponse, contacts: input.contacts, next_review_at: next.toISOString() }[k]))
      : ['created'];
    await ctx.audit.record({ action: 'backup.plan_reviewed', target: `continuity_plan:${id}`, details: { title: input.title, nextReviewAt: next.toISOString(), changed, changeNote: input.changeNote || null, previous: previous?.id ?? null } });
  }, meta);
  return currentPlan(rt);
}

const planOf = (r: Selectable<ContinuityPlanTable>) => ({
  id: r.id, title: r.title, documentLink: r.document_link || null, ransomwareResponse: r.ransomware_response, contacts: r.contacts,
  reviewedAt: r.reviewed_at, nextReviewAt: r.next_review_at, recordedBy: r.recorded_by_name, changeNote: r.change_note,
});

export async function currentPlan(rt: Runtime) {
  const r = await rt.db.kysely.selectFrom('continuity_plan').selectAll().orderBy('reviewed_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  return r ? planOf(r) : null;
}

/** BK-05: every version of the plan, newest first (who recorded it, when, what it said). */
export async function planHistory(rt: Runtime) {
  return (await rt.db.kysely.selectFrom('continuity_plan').selectAll().orderBy('reviewed_at', 'desc').orderBy('id', 'desc').limit(200).execute()).map(planOf);
}

/** The register as CSV (audited). */
export async function exportJobsCsv(rt: Runtime, actor: Actor, meta: Meta): Promise<string> {
  const jobs = await listJobs(rt);
  const cols = ['name', 'what', 'location', 'encrypted', 'interval_minutes', 'grace_minutes', 'state', 'last_success_at', 'last_checkin_at', 'last_status'];
  const lines = [cols.join(','), ...jobs.map((j) => [j.name, j.what, j.location, String(j.encrypted), String(j.intervalMinutes), String(j.graceMinutes), j.state, j.lastSuccessAt, j.lastCheckinAt, j.lastStatus].map(csvField).join(','))];
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'backup.register_exported', target: 'backup_job', details: { rows: jobs.length } }), meta);
  return `\uFEFF${lines.join('\r\n')}\r\n`;
}

const YES = ['yes', 'true', '1', 'y'];
const NO = ['no', 'false', '0', 'n'];

/**
 * BK-01, BK-04: backup jobs from CSV (the export's columns: name, what, location, encrypted,
 * interval_minutes, grace_minutes; others ignored). Every row is checked first; one bad cell and
 * nothing is imported, each problem named by line and column. Each new job's check-in URL is
 * answered once, as when a job is added by hand.
 */
export async function importJobsCsv(rt: Runtime, actor: Actor, csv: string, meta: Meta): Promise<{ imported: number; jobs: Array<{ job: BackupJob; token: string; checkinUrl: string }> }> {
  const rows = readRows(csv, ['name', 'what', 'location', 'encrypted', 'interval_minutes', 'grace_minutes']);
  const errors: CsvError[] = [];
  const valid: Array<z.infer<typeof jobSchema>> = [];
  const names = new Map<string, number>();
  const existing = new Set((await rt.db.kysely.selectFrom('backup_job').select('name').execute()).map((j) => j.name));
  const columnOf: Record<string, string> = { name: 'name', what: 'what', location: 'location', encrypted: 'encrypted', intervalMinutes: 'interval_minutes', graceMinutes: 'grace_minutes' };
  const whole = (v: string | undefined) => (v !== undefined && /^\d{1,7}$/.test(v) ? Number(v) : v === undefined || v === '' ? undefined : Number.NaN);
  for (const { line, cells } of rows) {
    const enc = (cells.get('encrypted') ?? '').toLowerCase();
    if (!YES.includes(enc) && !NO.includes(enc)) errors.push({ line, column: 'encrypted', message: 'must be yes or no' });
    const parsed = jobSchema.safeParse({
      name: cells.get('name'), what: cells.get('what'), location: (cells.get('location') ?? '').toLowerCase().replace(/[\s-]+/g, '_'),
      encrypted: YES.includes(enc), intervalMinutes: whole(cells.get('intervalminutes')), graceMinutes: whole(cells.get('graceminutes')),
    });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) errors.push({ line, column: columnOf[String(issue.path[0] ?? '')] ?? String(issue.path[0] ?? ''), message: issue.message });
      continue;
    }
    const first = names.get(parsed.data.name);
    if (first !== undefined) errors.push({ line, column: 'name', message: `${parsed.data.name} is in the file twice (also line ${first})` });
    else if (existing.has(parsed.data.name)) errors.push({ line, column: 'name', message: `there is already a backup job called ${parsed.data.name}` });
    names.set(parsed.data.name, first ?? line);
    valid.push(parsed.data);
  }
  if (rows.length === 0) errors.push({ line: 2, column: null, message: 'the file has a header but no jobs' });
  if (errors.length) importErrors(errors);
  const now = rt.clock.now().toISOString();
  const made: Array<{ id: string; token: string }> = [];
  await rt.trail.transaction(actor, async (ctx) => {
    for (const input of valid) {
      const id = newId();
      const token = randomBytes(32).toString('base64url');
      // Checked again inside the transaction: a job added meanwhile makes the whole import fail.
      if (await ctx.db.selectFrom('backup_job').select('id').where('name', '=', input.name).executeTakeFirst()) throw new GatehouseError('conflict', 409, `There is already a backup job called ${input.name}; nothing was imported.`);
      await ctx.db.insertInto('backup_job').values({
        id, name: input.name, what: input.what, location: input.location, encrypted: input.encrypted ? 1 : 0,
        interval_minutes: input.intervalMinutes, grace_minutes: input.graceMinutes,
        token_hash: hashToken(token).toString('hex'), token_issued_at: now,
        last_checkin_at: null, last_status: null, last_success_at: null, alerted_at: null, system: null,
        created_at: now, updated_at: now, retired_at: null,
      }).execute();
      made.push({ id, token });
    }
    await ctx.audit.record({ action: 'backup.jobs_imported', target: 'backup_job:*', details: { rows: valid.length, names: valid.map((v) => v.name).slice(0, 100) } });
  }, meta);
  const jobs = [];
  for (const m of made) jobs.push({ job: await getJob(rt, m.id), token: m.token, checkinUrl: checkinUrl(rt, m.id, m.token) });
  return { imported: made.length, jobs };
}

/** Needs attention: missed or failed jobs, a test restore due, the plan's review. */
export const backupsDue: DueProvider = async (rt) => {
  const now = rt.clock.now();
  const items: DueItem[] = [];
  const base = { href: '/backups', permission: 'backups.read' as const };
  for (const j of await listJobs(rt)) {
    if (j.state === 'missed' || j.state === 'failing') {
      items.push({ ...base, kind: 'backup_missed', requirement: 'BK-02', title: j.state === 'failing' ? `Backup “${j.name}” reported a failure` : `Backup “${j.name}” has not checked in on time`, detail: `Last success: ${j.lastSuccessAt ?? 'never'}.`, dueAt: j.dueBy, overdue: true });
    }
  }
  const restore = await lastRestoreTest(rt);
  const restoreDue = restore ? Date.parse(restore.dueAt) : now.getTime();
  if (restoreDue - now.getTime() < 30 * DAY) items.push({ ...base, kind: 'backup_restore_test', requirement: 'BK-03', title: restore ? 'A test restore of the backups is due' : 'No test restore of the backups has been recorded', dueAt: restore?.dueAt ?? null, overdue: restoreDue <= now.getTime() });
  const plan = await currentPlan(rt);
  if (!plan || Date.parse(plan.nextReviewAt) - now.getTime() < 30 * DAY) items.push({ ...base, kind: 'continuity_plan', requirement: 'BK-05', title: plan ? 'The continuity and disaster recovery plan is due for review' : 'No continuity and disaster recovery plan (with the ransomware response) is recorded', dueAt: plan?.nextReviewAt ?? null, overdue: !plan || Date.parse(plan.nextReviewAt) <= now.getTime() });
  return items;
};
