import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { GatehouseError, conflict, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem } from '../dashboard/due.js';
import type { SoftwareTitleTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { checkCsv, importErrors, numberCell, readRows, toCsv, yesNo, type CsvError } from './csv.js';

/**
 * Software and licences (AS-06, AS-07), device health (AS-11, AS-12, AS-13) and removable media
 * (AS-10). A title is approved by the headteacher (a senior leader) and checked for GDPR by the DPO
 * before use; both decisions are recorded with who made them. Licences bought (seats, expiry) are
 * reconciled against the installations counted in the last inventory export (e.g. Intune's device
 * and discovered-apps CSV): more installations than seats is flagged. The same export gives each
 * device's anti-virus and patch state; stale signatures and critical updates pending beyond the
 * profile's limit (Cyber Essentials: 14 days) are flagged.
 */

type Meta = { ip: string | null; requestId: string | null };
const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);

export const titleSchema = z
  .object({
    name: text('the title (as the inventory names it)', 200),
    publisher: z.string().trim().max(200).nullable().optional().transform((v) => v || null),
    purpose: text('what it is used for', 1000),
  })
  .strict();

export const decisionSchema = z
  .object({
    decision: z.enum(['approved', 'refused'], { error: 'must be approved or refused' }),
    note: z.string().trim().max(2000, 'must be at most 2000 characters').default(''),
  })
  .strict();

export const licenceSchema = z
  .object({
    seats: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'at least 1 seat').max(1_000_000),
    boughtOn: z.iso.date('must be a date like 2026-07-22'),
    expiresOn: z.iso.date('must be a date like 2027-07-22').nullable().optional().transform((v) => v ?? null),
    reference: text('the order or licence reference', 200),
  })
  .strict()
  .refine((l) => !l.expiresOn || l.expiresOn > l.boughtOn, { message: 'must be after the purchase date', path: ['expiresOn'] });

export const mediaSchema = z
  .object({
    label: text('the drive’s label or serial', 100),
    encrypted: z.literal(true, { error: 'only school-issued encrypted drives are issued (AS-10)' }),
    holder: text('who it is issued to', 200),
    issuedOn: z.iso.date('must be a date like 2026-07-22'),
  })
  .strict();

export interface TitleSummary {
  id: string;
  name: string;
  publisher: string | null;
  purpose: string;
  requestedBy: string;
  createdAt: string;
  head: { decision: string | null; by: string | null; at: string | null; note: string | null };
  dpo: { decision: string | null; by: string | null; at: string | null; note: string | null };
  /** approved: both said yes; refused: either said no; pending otherwise */
  status: 'approved' | 'refused' | 'pending';
  seats: number;
  installations: number;
  overUsed: boolean;
  licences: Array<{ id: string; seats: number; boughtOn: string; expiresOn: string | null; reference: string; expired: boolean }>;
}

const statusOf = (r: Selectable<SoftwareTitleTable>): TitleSummary['status'] =>
  r.head_decision === 'refused' || r.dpo_decision === 'refused' ? 'refused' : r.head_decision === 'approved' && r.dpo_decision === 'approved' ? 'approved' : 'pending';

/** Installations per title, from the last inventory: a title counts once per device. */
async function installationCounts(rt: Runtime): Promise<{ counts: Map<string, number>; names: Map<string, string> }> {
  const counts = new Map<string, number>();
  const names = new Map<string, string>();
  for (const d of await rt.db.kysely.selectFrom('inventory_device').select('apps').execute()) {
    const apps = JSON.parse(d.apps) as string[];
    for (const app of apps) if (!names.has(app.toLowerCase())) names.set(app.toLowerCase(), app);
    for (const app of new Set(apps.map((a) => a.toLowerCase()))) counts.set(app, (counts.get(app) ?? 0) + 1);
  }
  return { counts, names };
}

export async function listTitles(rt: Runtime): Promise<{ titles: TitleSummary[]; unlicensed: Array<{ name: string; installations: number }> }> {
  const rows = await rt.db.kysely.selectFrom('software_title').selectAll().orderBy('match_key').execute();
  const licences = await rt.db.kysely.selectFrom('software_licence').selectAll().orderBy('bought_on').execute();
  const { counts, names } = await installationCounts(rt);
  const day = rt.clock.now().toISOString().slice(0, 10);
  const titles = rows.map((r): TitleSummary => {
    const own = licences.filter((l) => l.title_id === r.id).map((l) => ({ id: l.id, seats: l.seats, boughtOn: l.bought_on, expiresOn: l.expires_on, reference: l.reference, expired: !!l.expires_on && l.expires_on < day }));
    const seats = own.filter((l) => !l.expired).reduce((n, l) => n + l.seats, 0);
    const installations = counts.get(r.match_key) ?? 0;
    return {
      id: r.id,
      name: r.name,
      publisher: r.publisher,
      purpose: r.purpose,
      requestedBy: r.requested_by,
      createdAt: r.created_at,
      head: { decision: r.head_decision, by: r.head_by, at: r.head_at, note: r.head_note },
      dpo: { decision: r.dpo_decision, by: r.dpo_by, at: r.dpo_at, note: r.dpo_note },
      status: statusOf(r),
      seats,
      installations,
      overUsed: installations > seats,
      licences: own,
    };
  });
  const known = new Set(rows.map((r) => r.match_key));
  const unlicensed = [...counts].filter(([k]) => !known.has(k)).map(([key, installations]) => ({ name: names.get(key) ?? key, installations })).sort((a, b) => b.installations - a.installations);
  return { titles, unlicensed };
}

async function titleById(rt: Runtime, id: string): Promise<TitleSummary> {
  const found = (await listTitles(rt)).titles.find((t) => t.id === id);
  if (!found) throw notFound('There is no such title.');
  return found;
}

export async function addTitle(rt: Runtime, actor: Actor, input: z.output<typeof titleSchema>, m: Meta): Promise<TitleSummary> {
  const id = newId();
  const key = input.name.toLowerCase();
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      if (await ctx.db.selectFrom('software_title').select('id').where('match_key', '=', key).executeTakeFirst()) throw conflict(`${input.name} is already in the register.`, 'title_taken');
      await ctx.db.insertInto('software_title').values({ id, name: input.name, match_key: key, publisher: input.publisher, purpose: input.purpose, requested_by: ctx.actor.name, created_at: ctx.clock.now().toISOString(), head_decision: null, head_by: null, head_at: null, head_note: null, dpo_decision: null, dpo_by: null, dpo_at: null, dpo_note: null }).execute();
      await ctx.audit.record({ action: 'software.title_added', target: `software_title:${id}`, severity: 'info', details: { name: input.name, publisher: input.publisher, purpose: input.purpose } });
    }, m);
  } catch (error) {
    if (/unique|duplicate/i.test(String((error as Error).message))) throw conflict(`${input.name} is already in the register.`, 'title_taken');
    throw error;
  }
  return titleById(rt, id);
}

/**
 * AS-07: the headteacher's approval (`head`) or the DPO's GDPR check (`dpo`). The person who asked
 * for the title cannot decide on it; a decision once made is final (a new request is a new title).
 */
export async function decideTitle(rt: Runtime, actor: Actor, id: string, who: 'head' | 'dpo', input: z.output<typeof decisionSchema>, m: Meta): Promise<TitleSummary> {
  if (input.decision === 'refused' && !input.note) throw validationFailed('Say why it is refused.', { fields: { note: 'say why' } });
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('software_title').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such title.');
    if (row.requested_by === ctx.actor.name) throw new GatehouseError('self_approval', 403, 'The person who added a title cannot approve it.');
    const column = who === 'head' ? 'head_decision' : 'dpo_decision';
    const now = ctx.clock.now().toISOString();
    const values = who === 'head' ? { head_decision: input.decision, head_by: ctx.actor.name, head_at: now, head_note: input.note || null } : { dpo_decision: input.decision, dpo_by: ctx.actor.name, dpo_at: now, dpo_note: input.note || null };
    const updated = await ctx.db.updateTable('software_title').set(values).where('id', '=', id).where(column, 'is', null).executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) throw conflict(who === 'head' ? 'The headteacher has already decided on this title.' : 'The DPO has already recorded the GDPR check for this title.', 'already_decided');
    await ctx.audit.record({ action: who === 'head' ? 'software.head_decided' : 'software.gdpr_checked', target: `software_title:${id}`, severity: input.decision === 'refused' ? 'notice' : 'info', details: { name: row.name, decision: input.decision, note: input.note } });
  }, m);
  return titleById(rt, id);
}

export async function addLicence(rt: Runtime, actor: Actor, titleId: string, input: z.output<typeof licenceSchema>, m: Meta): Promise<TitleSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('software_title').select(['id', 'name']).where('id', '=', titleId).executeTakeFirst();
    if (!row) throw notFound('There is no such title.');
    const id = newId();
    await ctx.db.insertInto('software_licence').values({ id, title_id: titleId, seats: input.seats, bought_on: input.boughtOn, expires_on: input.expiresOn, reference: input.reference, created_at: ctx.clock.now().toISOString() }).execute();
    await ctx.audit.record({ action: 'software.licence_added', target: `software_title:${titleId}`, severity: 'info', details: { name: row.name, licence: id, seats: input.seats, boughtOn: input.boughtOn, expiresOn: input.expiresOn, reference: input.reference } });
  }, m);
  return titleById(rt, titleId);
}

export async function exportSoftwareCsv(rt: Runtime, actor: Actor, m: Meta): Promise<string> {
  const { titles } = await listTitles(rt);
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'software.exported', target: 'software_title:*', severity: 'info', details: { rows: titles.length } }), m);
  return toCsv(['title', 'publisher', 'purpose', 'status', 'headteacher', 'dpo_gdpr_check', 'seats', 'installations', 'over_used', 'licences'], titles.map((t) => [t.name, t.publisher, t.purpose, t.status, t.head.decision ? `${t.head.decision} by ${t.head.by}` : '', t.dpo.decision ? `${t.dpo.decision} by ${t.dpo.by}` : '', t.seats, t.installations, t.overUsed ? 'yes' : 'no', t.licences.map((l) => `${l.seats}×${l.reference}${l.expiresOn ? ` to ${l.expiresOn}` : ''}`).join('; ')]));
}

/** One row of a software CSV: a title, with the licences bought for it if the licence columns are filled. */
const softwareRowSchema = z
  .object({
    name: titleSchema.shape.name,
    publisher: titleSchema.shape.publisher,
    purpose: z.string().trim().max(1000, 'must be at most 1000 characters'),
    licence: licenceSchema.optional(),
  })
  .strict();

export const SOFTWARE_IMPORT_COLUMNS = ['title', 'publisher', 'purpose', 'seats', 'bought_on', 'expires_on', 'reference'];

/**
 * AS-06, AS-07: titles and licences from CSV, one row per title (title, publisher, purpose; seats,
 * bought_on, expires_on, reference when licences were bought). A new title is added awaiting the
 * headteacher's approval and the DPO's GDPR check, as one added by hand: an import never approves.
 * A title already in the register needs a licence on its row (its seats are added). All or nothing;
 * one audit event, in the same transaction, lists every title and licence added.
 */
export async function importSoftwareCsv(rt: Runtime, actor: Actor, csv: string, m: Meta): Promise<{ titles: number; licences: number }> {
  const existing = new Map((await rt.db.kysely.selectFrom('software_title').select(['id', 'match_key']).execute()).map((t) => [t.match_key, t.id]));
  const references = new Set((await rt.db.kysely.selectFrom('software_licence').select(['title_id', 'reference']).execute()).map((l) => `${l.title_id}\n${l.reference.toLowerCase()}`));
  const rows = checkCsv(csv, {
    required: ['title', 'purpose'],
    columns: { name: 'title', publisher: 'publisher', purpose: 'purpose', licence: 'seats', 'licence.seats': 'seats', 'licence.boughtOn': 'bought_on', 'licence.expiresOn': 'expires_on', 'licence.reference': 'reference' },
    schema: softwareRowSchema,
    input: (cell) => ({
      name: cell('title'),
      publisher: cell('publisher'),
      purpose: cell('purpose'),
      licence: ['seats', 'bought_on', 'expires_on', 'reference'].some((c) => cell(c)) ? { seats: numberCell(cell('seats')), boughtOn: cell('bought_on'), expiresOn: cell('expires_on') || null, reference: cell('reference') } : undefined,
    }),
    key: {
      column: 'title',
      of: (row) => row.name.toLowerCase(),
      taken: (key, row) => {
        const id = existing.get(key);
        if (!id) return null;
        if (!row.licence) return `${row.name} is already in the register (fill seats, bought_on and reference to add licences to it)`;
        return references.has(`${id}\n${row.licence.reference.toLowerCase()}`) ? `licence ${row.licence.reference} is already recorded for ${row.name}` : null;
      },
    },
    check: (row) => (!existing.has(row.name.toLowerCase()) && !row.purpose ? [{ column: 'purpose', message: 'say what it is used for' }] : []),
  });
  let licences = 0;
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      const now = ctx.clock.now().toISOString();
      const added: Array<{ name: string; seats: number | null; reference: string | null }> = [];
      for (const { row } of rows) {
        const key = row.name.toLowerCase();
        let titleId = (await ctx.db.selectFrom('software_title').select('id').where('match_key', '=', key).executeTakeFirst())?.id;
        // Added by someone else since the file was checked: refuse rather than guess (nothing is stored).
        if (titleId && !existing.has(key)) throw conflict(`${row.name} changed while the file was imported; import it again.`, 'import_raced');
        if (!titleId) {
          titleId = newId();
          await ctx.db.insertInto('software_title').values({ id: titleId, name: row.name, match_key: key, publisher: row.publisher, purpose: row.purpose, requested_by: ctx.actor.name, created_at: now, head_decision: null, head_by: null, head_at: null, head_note: null, dpo_decision: null, dpo_by: null, dpo_at: null, dpo_note: null }).execute();
        }
        if (row.licence) {
          await ctx.db.insertInto('software_licence').values({ id: newId(), title_id: titleId, seats: row.licence.seats, bought_on: row.licence.boughtOn, expires_on: row.licence.expiresOn, reference: row.licence.reference, created_at: now }).execute();
          licences += 1;
        }
        added.push({ name: row.name, seats: row.licence?.seats ?? null, reference: row.licence?.reference ?? null });
      }
      await ctx.audit.record({ action: 'software.imported', target: 'software_title:*', severity: 'info', details: { rows: rows.length, titlesAdded: added.filter((a) => !existing.has(a.name.toLowerCase())).map((a) => a.name), licences: added.filter((a) => a.reference) } });
    }, m);
  } catch (error) {
    if (/unique|duplicate/i.test(String((error as Error).message))) throw conflict('A title in the file was added by someone else while it was imported; nothing was imported. Import it again.', 'import_raced');
    throw error;
  }
  return { titles: rows.filter((r) => !existing.has(r.row.name.toLowerCase())).length, licences };
}

// --- Inventory CSV: installations and device health (AS-06, AS-11, AS-12, AS-13) -------------------

const dateCell = (value: string | undefined): string | null | 'invalid' => {
  if (!value) return null;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  return Number.isNaN(t) ? 'invalid' : new Date(t).toISOString();
};

/**
 * An inventory export (Intune-style: "Device name", "Serial number", "OS", "Last check-in",
 * "Antivirus", "Antivirus updated", "Last patched", "Critical updates pending since", "Apps" with
 * titles separated by semicolons). Replaces the previous inventory whole; all or nothing.
 */
export async function importInventoryCsv(rt: Runtime, actor: Actor, csv: string, m: Meta): Promise<{ devices: number; installations: number }> {
  const rows = readRows(csv, ['Device name', 'Apps']);
  const errors: CsvError[] = [];
  const devices: Array<{ name: string; serial: string | null; os: string | null; last_check_in: string | null; antivirus: string | null; av_updated_at: string | null; last_patched_at: string | null; critical_pending_since: string | null; apps: string }> = [];
  const names = new Set<string>();
  const now = rt.clock.now().getTime();
  for (const { line, cells } of rows) {
    const name = cells.get('devicename') ?? '';
    if (!name) errors.push({ line, column: 'Device name', message: 'empty' });
    else if (name.length > 200) errors.push({ line, column: 'Device name', message: 'longer than 200 characters' });
    else if (names.has(name.toLowerCase())) errors.push({ line, column: 'Device name', message: `${name} is in the file twice` });
    names.add(name.toLowerCase());
    const dates: Record<string, string | null> = {};
    for (const [key, column] of [['lastcheckin', 'Last check-in'], ['antivirusupdated', 'Antivirus updated'], ['lastpatched', 'Last patched'], ['criticalupdatespendingsince', 'Critical updates pending since']] as const) {
      const v = dateCell(cells.get(key));
      if (v === 'invalid') errors.push({ line, column, message: `“${cells.get(key)!.slice(0, 40)}” is not a date` });
      else if (v && Date.parse(v) > now + 86_400_000) errors.push({ line, column, message: 'is in the future' });
      else dates[key] = v;
    }
    const apps = (cells.get('apps') ?? '').split(';').map((a) => a.trim()).filter(Boolean);
    if (apps.some((a) => a.length > 200) || apps.length > 2000) errors.push({ line, column: 'Apps', message: 'too many titles or a title longer than 200 characters' });
    const short = (key: string) => (cells.get(key) || null)?.slice(0, 200) ?? null;
    devices.push({ name, serial: short('serialnumber'), os: short('os'), last_check_in: dates.lastcheckin ?? null, antivirus: short('antivirus'), av_updated_at: dates.antivirusupdated ?? null, last_patched_at: dates.lastpatched ?? null, critical_pending_since: dates.criticalupdatespendingsince ?? null, apps: JSON.stringify(apps) });
  }
  if (errors.length) importErrors(errors);
  const importedAt = rt.clock.now().toISOString();
  const installations = devices.reduce((n, d) => n + (JSON.parse(d.apps) as string[]).length, 0);
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.deleteFrom('inventory_device').execute();
    for (let i = 0; i < devices.length; i += 200) await ctx.db.insertInto('inventory_device').values(devices.slice(i, i + 200).map((d) => ({ ...d, imported_at: importedAt }))).execute();
    await ctx.audit.record({ action: 'inventory.imported', target: 'inventory_device:*', severity: 'info', details: { devices: devices.length, installations } });
  }, m);
  return { devices: devices.length, installations };
}

export interface DeviceHealth {
  name: string;
  serial: string | null;
  os: string | null;
  lastCheckIn: string | null;
  antivirus: string | null;
  avUpdatedAt: string | null;
  lastPatchedAt: string | null;
  criticalPendingSince: string | null;
  /** AS-11: no anti-virus, or signatures older than the profile's limit */
  avStale: boolean;
  /** AS-12: a critical update pending longer than the profile's limit (14 days) */
  patchOverdue: boolean;
  /** AS-13: not checked in for longer than the profile's limit */
  unseen: boolean;
  importedAt: string;
}

export async function deviceHealth(rt: Runtime): Promise<DeviceHealth[]> {
  const { antivirusStaleDays, criticalPatchDays, deviceUnseenDays } = rt.profile.registers;
  const now = rt.clock.now().getTime();
  const older = (at: string | null, days: number) => !at || now - Date.parse(at) > days * 86_400_000;
  return (await rt.db.kysely.selectFrom('inventory_device').selectAll().orderBy('name').execute()).map((d) => ({
    name: d.name,
    serial: d.serial,
    os: d.os,
    lastCheckIn: d.last_check_in,
    antivirus: d.antivirus,
    avUpdatedAt: d.av_updated_at,
    lastPatchedAt: d.last_patched_at,
    criticalPendingSince: d.critical_pending_since,
    avStale: !d.antivirus || older(d.av_updated_at, antivirusStaleDays),
    patchOverdue: !!d.critical_pending_since && older(d.critical_pending_since, criticalPatchDays),
    unseen: older(d.last_check_in, deviceUnseenDays),
    importedAt: d.imported_at,
  }));
}

export async function exportDevicesCsv(rt: Runtime, actor: Actor, m: Meta): Promise<string> {
  const devices = await deviceHealth(rt);
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'inventory.exported', target: 'inventory_device:*', severity: 'info', details: { rows: devices.length } }), m);
  return toCsv(['device', 'serial', 'os', 'last_check_in', 'antivirus', 'antivirus_updated', 'av_stale', 'last_patched', 'critical_pending_since', 'patch_overdue', 'unseen'], devices.map((d) => [d.name, d.serial, d.os, d.lastCheckIn, d.antivirus, d.avUpdatedAt, d.avStale ? 'yes' : 'no', d.lastPatchedAt, d.criticalPendingSince, d.patchOverdue ? 'yes' : 'no', d.unseen ? 'yes' : 'no']));
}

// --- Removable media (AS-10) ---------------------------------------------------------------------

export async function listMedia(rt: Runtime) {
  return (await rt.db.kysely.selectFrom('removable_media').selectAll().orderBy('label').execute()).map((r) => ({ id: r.id, label: r.label, encrypted: !!r.encrypted, holder: r.holder_name, issuedOn: r.issued_on, returnedOn: r.returned_on }));
}

export async function issueMedia(rt: Runtime, actor: Actor, input: z.output<typeof mediaSchema>, m: Meta) {
  const id = newId();
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      if (await ctx.db.selectFrom('removable_media').select('id').where('label', '=', input.label).executeTakeFirst()) throw conflict(`${input.label} is already in the register.`, 'label_taken');
      await ctx.db.insertInto('removable_media').values({ id, label: input.label, encrypted: 1, holder_name: input.holder, issued_on: input.issuedOn, returned_on: null }).execute();
      await ctx.audit.record({ action: 'media.issued', target: `removable_media:${id}`, severity: 'info', details: { label: input.label, holder: input.holder, issuedOn: input.issuedOn } });
    }, m);
  } catch (error) {
    if (/unique|duplicate/i.test(String((error as Error).message))) throw conflict(`${input.label} is already in the register.`, 'label_taken');
    throw error;
  }
  return (await listMedia(rt)).find((x) => x.id === id)!;
}

export async function returnMedia(rt: Runtime, actor: Actor, id: string, m: Meta) {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('removable_media').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('There is no such drive.');
    if (row.returned_on) throw conflict(`${row.label} has already been returned.`, 'returned');
    const day = ctx.clock.now().toISOString().slice(0, 10);
    await ctx.db.updateTable('removable_media').set({ returned_on: day }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'media.returned', target: `removable_media:${id}`, severity: 'info', details: { label: row.label, holder: row.holder_name } });
  }, m);
  return (await listMedia(rt)).find((x) => x.id === id)!;
}

export const MEDIA_COLUMNS = ['label', 'encrypted', 'holder', 'issued_on', 'returned_on'];

const mediaRowSchema = mediaSchema.extend({ returnedOn: z.iso.date('must be a date like 2026-07-22').nullable() }).refine((r) => !r.returnedOn || r.returnedOn >= r.issuedOn, { message: 'must be on or after the issue date', path: ['returnedOn'] });

/**
 * AS-10: drives from CSV (label, encrypted, holder, issued_on; returned_on). Only encrypted drives
 * are issued, so a row whose encrypted column is not yes is refused like the form refuses it. A
 * label already in the register or twice in the file is refused. All or nothing, audited together.
 */
export async function importMediaCsv(rt: Runtime, actor: Actor, csv: string, m: Meta): Promise<{ drives: number }> {
  const labels = new Set((await rt.db.kysely.selectFrom('removable_media').select('label').execute()).map((r) => r.label.toLowerCase()));
  const day = rt.clock.now().toISOString().slice(0, 10);
  const rows = checkCsv(csv, {
    required: MEDIA_COLUMNS.slice(0, 4),
    columns: { label: 'label', encrypted: 'encrypted', holder: 'holder', issuedOn: 'issued_on', returnedOn: 'returned_on' },
    schema: mediaRowSchema,
    input: (cell) => ({ label: cell('label'), encrypted: yesNo(cell('encrypted')), holder: cell('holder'), issuedOn: cell('issued_on'), returnedOn: cell('returned_on') || null }),
    key: { column: 'label', of: (row) => row.label.toLowerCase(), taken: (key, row) => (labels.has(key) ? `${row.label} is already in the register` : null) },
    check: (row) => [...(row.issuedOn > day ? [{ column: 'issued_on', message: 'is in the future' }] : []), ...(row.returnedOn && row.returnedOn > day ? [{ column: 'returned_on', message: 'is in the future' }] : [])],
  });
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      for (const { row } of rows) await ctx.db.insertInto('removable_media').values({ id: newId(), label: row.label, encrypted: 1, holder_name: row.holder, issued_on: row.issuedOn, returned_on: row.returnedOn }).execute();
      await ctx.audit.record({ action: 'media.imported', target: 'removable_media:*', severity: 'info', details: { rows: rows.length, drives: rows.map(({ row }) => ({ label: row.label, holder: row.holder, issuedOn: row.issuedOn, returnedOn: row.returnedOn })) } });
    }, m);
  } catch (error) {
    if (/unique|duplicate/i.test(String((error as Error).message))) throw conflict('A drive in the file was issued by someone else while it was imported; nothing was imported. Import it again.', 'import_raced');
    throw error;
  }
  return { drives: rows.length };
}

export async function exportMediaCsv(rt: Runtime, actor: Actor, m: Meta): Promise<string> {
  const media = await listMedia(rt);
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'media.exported', target: 'removable_media:*', severity: 'info', details: { rows: media.length } }), m);
  return toCsv(MEDIA_COLUMNS, media.map((d) => [d.label, d.encrypted ? 'yes' : 'no', d.holder, d.issuedOn, d.returnedOn]));
}

// --- Overview ------------------------------------------------------------------------------------

export async function softwareDue(rt: Runtime): Promise<DueItem[]> {
  const items: DueItem[] = [];
  const now = rt.clock.now();
  const warn = new Date(now.getTime() + rt.profile.registers.licenceExpiryWarnDays * 86_400_000).toISOString().slice(0, 10);
  const day = now.toISOString().slice(0, 10);
  const { titles } = await listTitles(rt);
  for (const t of titles) {
    if (t.overUsed) items.push({ kind: 'licence_over_used', title: `${t.name} is installed on ${t.installations} devices but ${t.seats} seat${t.seats === 1 ? ' is' : 's are'} licensed`, dueAt: null, overdue: true, href: '/software', requirement: 'AS-06', permission: 'registers.read' });
    for (const l of t.licences) if (l.expiresOn && l.expiresOn >= day && l.expiresOn <= warn) items.push({ kind: 'licence_expiring', title: `A licence for ${t.name} (${l.reference}) expires on ${l.expiresOn}`, dueAt: `${l.expiresOn}T00:00:00.000Z`, overdue: false, href: '/software', requirement: 'AS-06', permission: 'registers.read' });
    if (t.status === 'pending') items.push({ kind: 'software_approval', title: `${t.name} is waiting for ${!t.head.decision ? 'the headteacher’s approval' : ''}${!t.head.decision && !t.dpo.decision ? ' and ' : ''}${!t.dpo.decision ? 'the DPO’s GDPR check' : ''}`, dueAt: null, overdue: false, href: '/software', requirement: 'AS-07', permission: 'registers.read' });
  }
  const devices = await deviceHealth(rt);
  const overdue = devices.filter((d) => d.patchOverdue);
  if (overdue.length) items.push({ kind: 'patch_overdue', title: `${overdue.length} device${overdue.length === 1 ? ' has' : 's have'} critical updates pending for more than ${rt.profile.registers.criticalPatchDays} days`, detail: overdue.slice(0, 5).map((d) => d.name).join(', '), dueAt: null, overdue: true, href: '/devices-health', requirement: 'AS-12', permission: 'registers.read' });
  const stale = devices.filter((d) => d.avStale);
  if (stale.length) items.push({ kind: 'antivirus_stale', title: `${stale.length} device${stale.length === 1 ? ' has' : 's have'} no anti-virus or signatures older than ${rt.profile.registers.antivirusStaleDays} days`, detail: stale.slice(0, 5).map((d) => d.name).join(', '), dueAt: null, overdue: true, href: '/devices-health', requirement: 'AS-11', permission: 'registers.read' });
  const unseen = devices.filter((d) => d.unseen);
  if (unseen.length) items.push({ kind: 'device_unseen', title: `${unseen.length} device${unseen.length === 1 ? ' has' : 's have'} not checked in for more than ${rt.profile.registers.deviceUnseenDays} days: bring ${unseen.length === 1 ? 'it' : 'them'} in for updates`, detail: unseen.slice(0, 5).map((d) => d.name).join(', '), dueAt: null, overdue: false, href: '/devices-health', requirement: 'AS-13', permission: 'registers.read' });
  return items;
}
