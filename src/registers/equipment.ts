import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError, conflict, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem } from '../dashboard/due.js';
import type { EquipmentItemTable, Schema } from '../db/schema.js';
import { completeLinkedItems, type LeaverItem } from '../directory/leaver-checklist.js';
import type { Leaver } from '../directory/leavers.js';
import type { Runtime } from '../runtime.js';
import { checkCsv, toCsv, yesNo } from './csv.js';
import type { Kysely, Transaction } from 'kysely';

/**
 * The equipment register (AS-01, AS-02, AS-05, AS-13) and disposals (AS-03, AS-04): every item with
 * its tag, serial, type, location and holder; off-site loans; the annual stock-take with the items
 * not found; when an item was last seen on the network (from the filtering's devices and
 * identification, where its MAC or address matches); and its disposal, which is refused until the
 * certificates are attached (WEEE and data destruction; PAT for a sale or gift). Every change is
 * audited in the same transaction.
 */

type Meta = { ip: string | null; requestId: string | null };
type Db = Kysely<Schema> | Transaction<Schema>;

const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);
const optionalText = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`).nullable().optional().transform((v) => v || null);
const mac = z
  .string()
  .trim()
  .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'must be a MAC address like 3c:22:fb:01:02:03')
  .transform((v) => v.toLowerCase().replace(/-/g, ':'));

export const itemSchema = z
  .object({
    tag: text('the asset tag', 60).regex(/^[A-Za-z0-9][A-Za-z0-9._\-/ ]*$/, 'letters, digits, spaces and . _ - / only'),
    serial: optionalText(100),
    type: text('the type (e.g. laptop, tablet, projector)', 60),
    description: text('what it is (make and model)', 200),
    location: text('where it is kept', 200),
    /** the username of the person it is issued to, if any */
    holder: z.string().trim().max(100).nullable().optional().transform((v) => v || null),
    mac: mac.nullable().optional().or(z.literal('').transform(() => null)).transform((v) => v ?? null),
    address: z.union([z.ipv4({ message: 'must be an IP address' }), z.ipv6({ message: 'must be an IP address' }), z.literal('')]).nullable().optional().transform((v) => v || null),
    /** AS-05: whether the device may hold personal data (assessed before repair or disposal) */
    personalData: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .strict();
export type ItemInput = z.input<typeof itemSchema>;

export const loanSchema = z
  .object({
    borrower: text('who takes it (a username)', 100),
    purpose: text('why it goes off site', 500),
    dueBack: z.iso.date('must be a date like 2026-07-22'),
  })
  .strict();

/** AS-05: before a third-party repair, the personal data on the device is assessed and protected. */
export const repairSchema = z
  .object({
    repairer: text('who repairs it (the company or person)', 200),
    fault: text('what is wrong', 500),
    dueBack: z.iso.date('must be a date like 2026-07-22'),
    dataAssessment: text('what personal data is on it and how it is protected (e.g. “drive removed and kept in the safe”, “no personal data: wiped”)', 1000),
  })
  .strict();

export const disposalMethods = ['waste', 'gift', 'sale'] as const;
export const certificateKinds = ['weee', 'data_destruction', 'pat'] as const;
export type CertificateKind = (typeof certificateKinds)[number];
export const certificateLabels: Record<CertificateKind, string> = { weee: 'WEEE transfer note', data_destruction: 'data-destruction certificate', pat: 'PAT certificate' };

export const disposalSchema = z
  .object({
    disposedOn: z.iso.date('must be a date like 2026-07-22'),
    licencesChecked: z.literal(true, { error: 'the software licences on it must be checked (and transferred or retired) first' }),
    personalData: text('whether personal data was on the media (e.g. “none”, “staff e-mail cache”)', 500),
    destruction: text('how the data was destroyed (overwritten, physically destroyed…)', 500),
    method: z.enum(disposalMethods, { error: 'must be waste, gift or sale' }),
    recipient: text('who received it (the authorised agency, or the person or organisation)', 200),
  })
  .strict();

/** Certificates: PDF, PNG or JPEG only, judged by their first bytes, never by their name. */
export const CERTIFICATE_MAX_BYTES = 5 * 1024 * 1024;
export const certificateSchema = z
  .object({
    kind: z.enum(certificateKinds, { error: 'must be weee, data_destruction or pat' }),
    filename: text('the file name', 200),
    /** the file, base64 */
    data: z.string().min(1, 'attach the file').max(Math.ceil((CERTIFICATE_MAX_BYTES * 4) / 3) + 8, `the file must be at most ${CERTIFICATE_MAX_BYTES / 1024 / 1024} MB`),
  })
  .strict();

export function sniffType(bytes: Buffer): 'application/pdf' | 'image/png' | 'image/jpeg' | null {
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

export interface Certificate {
  id: string;
  kind: CertificateKind;
  filename: string;
  contentType: string;
  bytes: number;
  sha256: string;
  uploadedAt: string;
  uploadedBy: string;
}

export interface Loan {
  id: string;
  kind: 'loan' | 'repair';
  dataAssessment: string | null;
  borrower: string;
  purpose: string;
  lentAt: string;
  dueBack: string;
  returnedAt: string | null;
  returnedTo: string | null;
  overdue: boolean;
}

export interface ItemSummary {
  id: string;
  tag: string;
  serial: string | null;
  type: string;
  description: string;
  location: string;
  holder: string | null;
  holderName: string | null;
  mac: string | null;
  address: string | null;
  personalData: boolean;
  status: 'in_use' | 'on_loan' | 'disposed';
  lastSeenAt: string | null;
  lastSeenBy: string | null;
  lastFoundAt: string | null;
  loan: Loan | null;
  createdAt: string;
  updatedAt: string;
}

export interface ItemDetail extends ItemSummary {
  loans: Loan[];
  certificates: Certificate[];
  disposal: null | { disposedOn: string; authorisedBy: string; licencesChecked: boolean; personalData: string; destruction: string; method: string; recipient: string; recordedAt: string };
}

const today = (rt: Runtime) => rt.clock.now().toISOString().slice(0, 10);

function loanOf(rt: Runtime, r: Selectable<Schema['equipment_loan']>): Loan {
  return { id: r.id, kind: r.kind as Loan['kind'], dataAssessment: r.data_assessment, borrower: r.borrower_name, purpose: r.purpose, lentAt: r.lent_at, dueBack: r.due_back, returnedAt: r.returned_at, returnedTo: r.returned_to, overdue: !r.returned_at && r.due_back < today(rt) };
}

/**
 * AS-13: when each item was last seen, from the filtering: an identification (captive portal, RADIUS,
 * agent) with its MAC or address, a registered filtering device with its MAC or address and that
 * device's activity, or the inventory's last check-in under its tag or serial.
 */
async function lastSeen(db: Db, items: Array<Selectable<EquipmentItemTable>>): Promise<Map<string, { at: string; by: string }>> {
  const seen = new Map<string, { at: string; by: string }>();
  const note = (id: string, at: string | null | undefined, by: string) => {
    if (!at) return;
    const prev = seen.get(id);
    if (!prev || prev.at < at) seen.set(id, { at, by });
  };
  const macs = [...new Set(items.map((i) => i.mac).filter((m): m is string => !!m))];
  const addresses = [...new Set(items.map((i) => i.address).filter((a): a is string => !!a))];
  const byMac = new Map<string, string>();
  const byIp = new Map<string, string>();
  if (macs.length) {
    for (const r of await db.selectFrom('filter_identity').select(['mac', (eb) => eb.fn.max('started_at').as('at')]).where('mac', 'in', macs).groupBy('mac').execute()) if (r.mac) byMac.set(r.mac.toLowerCase(), String(r.at));
  }
  if (addresses.length) {
    for (const r of await db.selectFrom('filter_identity').select(['ip', (eb) => eb.fn.max('started_at').as('at')]).where('ip', 'in', addresses).groupBy('ip').execute()) byIp.set(r.ip, String(r.at));
  }
  const devices = macs.length || addresses.length
    ? await db.selectFrom('filter_device').select(['id', 'mac', 'address']).where((eb) => eb.or([...(macs.length ? [eb('mac', 'in', macs)] : []), ...(addresses.length ? [eb('address', 'in', addresses)] : [])])).execute()
    : [];
  const activity = new Map<string, string>();
  if (devices.length) {
    for (const r of await db.selectFrom('filter_activity').select(['device_id', (eb) => eb.fn.max('at').as('at')]).where('device_id', 'in', devices.map((d) => d.id)).groupBy('device_id').execute()) if (r.device_id) activity.set(r.device_id, String(r.at));
  }
  const inventory = await db.selectFrom('inventory_device').select(['name', 'serial', 'last_check_in']).execute();
  const invByName = new Map(inventory.map((d) => [d.name.toLowerCase(), d.last_check_in]));
  const invBySerial = new Map(inventory.filter((d) => d.serial).map((d) => [d.serial!.toLowerCase(), d.last_check_in]));
  for (const item of items) {
    if (item.mac) note(item.id, byMac.get(item.mac), 'filtering identification (MAC)');
    if (item.address) note(item.id, byIp.get(item.address), 'filtering identification (address)');
    for (const d of devices) if ((item.mac && d.mac?.toLowerCase() === item.mac) || (item.address && d.address === item.address)) note(item.id, activity.get(d.id), 'filtering activity');
    note(item.id, invByName.get(item.tag.toLowerCase()), 'inventory check-in');
    if (item.serial) note(item.id, invBySerial.get(item.serial.toLowerCase()), 'inventory check-in');
  }
  return seen;
}

async function summariseAll(rt: Runtime, db: Db, rows: Array<Selectable<EquipmentItemTable>>): Promise<ItemSummary[]> {
  const seen = await lastSeen(db, rows);
  const ids = rows.map((r) => r.id);
  const loans = ids.length ? await db.selectFrom('equipment_loan').selectAll().where('item_id', 'in', ids).where('returned_at', 'is', null).execute() : [];
  const openLoan = new Map(loans.map((l) => [l.item_id, l]));
  const holders = [...new Set(rows.map((r) => r.holder_account_id).filter((h): h is string => !!h))];
  const names = new Map((holders.length ? await db.selectFrom('account').select(['id', 'username']).where('id', 'in', holders).execute() : []).map((a) => [a.id, a.username]));
  return rows.map((r) => {
    const loan = openLoan.get(r.id);
    return {
      id: r.id,
      tag: r.tag,
      serial: r.serial,
      type: r.type,
      description: r.description,
      location: r.location,
      holder: r.holder_account_id ? (names.get(r.holder_account_id) ?? null) : null,
      holderName: r.holder_name,
      mac: r.mac,
      address: r.address,
      personalData: !!r.personal_data,
      status: r.status as ItemSummary['status'],
      lastSeenAt: seen.get(r.id)?.at ?? null,
      lastSeenBy: seen.get(r.id)?.by ?? null,
      lastFoundAt: r.last_found_at,
      loan: loan ? loanOf(rt, loan) : null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  });
}

export async function listItems(rt: Runtime, query: { includeDisposed?: boolean } = {}): Promise<ItemSummary[]> {
  let q = rt.db.kysely.selectFrom('equipment_item').selectAll();
  if (!query.includeDisposed) q = q.where('status', '!=', 'disposed');
  return summariseAll(rt, rt.db.kysely, await q.orderBy('tag').execute());
}

export async function getItem(rt: Runtime, id: string): Promise<ItemDetail> {
  const row = await rt.db.kysely.selectFrom('equipment_item').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such item.');
  const [summary] = await summariseAll(rt, rt.db.kysely, [row]);
  const loans = await rt.db.kysely.selectFrom('equipment_loan').selectAll().where('item_id', '=', id).orderBy('lent_at', 'desc').execute();
  const certificates = await rt.db.kysely.selectFrom('equipment_certificate').selectAll().where('item_id', '=', id).orderBy('uploaded_at').execute();
  const disposal = await rt.db.kysely.selectFrom('equipment_disposal').selectAll().where('item_id', '=', id).executeTakeFirst();
  return {
    ...summary!,
    loans: loans.map((l) => loanOf(rt, l)),
    certificates: certificates.map((c) => ({ id: c.id, kind: c.kind as CertificateKind, filename: c.filename, contentType: c.content_type, bytes: c.bytes, sha256: c.sha256, uploadedAt: c.uploaded_at, uploadedBy: c.uploaded_by })),
    disposal: disposal
      ? { disposedOn: disposal.disposed_on, authorisedBy: disposal.authorised_by, licencesChecked: !!disposal.licences_checked, personalData: disposal.personal_data, destruction: disposal.destruction, method: disposal.method, recipient: disposal.recipient, recordedAt: disposal.recorded_at }
      : null,
  };
}

async function accountByUsername(db: Db, username: string): Promise<{ id: string; username: string; display_name: string }> {
  const a = await db.selectFrom('account').select(['id', 'username', 'display_name']).where('username', '=', username.toLowerCase()).executeTakeFirst();
  if (!a) throw validationFailed(`There is no person ${username}.`, { fields: { holder: 'no such person' } });
  return a;
}

async function loadItem(db: Db, id: string): Promise<Selectable<EquipmentItemTable>> {
  const row = await db.selectFrom('equipment_item').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such item.');
  return row;
}

const uniqueViolation = (error: unknown) => /unique|duplicate/i.test(String((error as Error)?.message ?? error));

async function insertItem(ctx: Ctx, input: z.output<typeof itemSchema>): Promise<string> {
  const holder = input.holder ? await accountByUsername(ctx.db, input.holder) : null;
  const now = ctx.clock.now().toISOString();
  const clash = await ctx.db.selectFrom('equipment_item').select('id').where('tag', '=', input.tag).executeTakeFirst();
  if (clash) throw conflict(`An item with the tag ${input.tag} is already registered.`, 'tag_taken');
  const id = newId();
  await ctx.db
    .insertInto('equipment_item')
    .values({ id, tag: input.tag, serial: input.serial, type: input.type, description: input.description, location: input.location, holder_account_id: holder?.id ?? null, holder_name: holder?.display_name ?? null, mac: input.mac, address: input.address, status: 'in_use', personal_data: input.personalData ? 1 : 0, last_found_at: null, disposed_at: null, created_at: now, updated_at: now })
    .execute();
  await ctx.audit.record({ action: 'equipment.registered', target: `equipment_item:${id}`, severity: 'info', details: { tag: input.tag, serial: input.serial, type: input.type, location: input.location, holder: holder?.username ?? null } });
  return id;
}

export async function registerItem(rt: Runtime, actor: Actor, input: z.output<typeof itemSchema>, m: Meta): Promise<ItemDetail> {
  let id: string;
  try {
    id = await rt.trail.transaction(actor, (ctx) => insertItem(ctx, input), m);
  } catch (error) {
    if (uniqueViolation(error)) throw conflict(`An item with the tag ${input.tag} is already registered.`, 'tag_taken');
    throw error;
  }
  return getItem(rt, id);
}

export async function updateItem(rt: Runtime, actor: Actor, id: string, input: z.output<typeof itemSchema>, m: Meta): Promise<ItemDetail> {
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      const row = await loadItem(ctx.db, id);
      if (row.status === 'disposed') throw conflict('A disposed item cannot be changed.', 'disposed');
      const holder = input.holder ? await accountByUsername(ctx.db, input.holder) : null;
      const next = { tag: input.tag, serial: input.serial, type: input.type, description: input.description, location: input.location, holder_account_id: holder?.id ?? null, holder_name: holder?.display_name ?? null, mac: input.mac, address: input.address, personal_data: input.personalData ? 1 : 0 };
      const changed = Object.fromEntries(Object.entries(next).filter(([k, v]) => (row as Record<string, unknown>)[k] !== v).map(([k, v]) => [k, { from: (row as Record<string, unknown>)[k], to: v }]));
      await ctx.db.updateTable('equipment_item').set({ ...next, updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
      await ctx.audit.record({ action: 'equipment.changed', target: `equipment_item:${id}`, severity: 'info', details: { tag: row.tag, changed } });
      // Handed back by a leaver: their checklist item for it is ticked.
      if (row.holder_account_id && row.holder_account_id !== next.holder_account_id) await completeLinkedItems(ctx, `equipment_item:${id}`, `Returned on ${ctx.clock.now().toISOString().slice(0, 10)}`);
    }, m);
  } catch (error) {
    if (uniqueViolation(error)) throw conflict(`An item with the tag ${input.tag} is already registered.`, 'tag_taken');
    throw error;
  }
  return getItem(rt, id);
}

/** AS-02: lent off site to a named person until a date. One open loan per item (a unique index). */
export async function lendItem(rt: Runtime, actor: Actor, id: string, input: z.output<typeof loanSchema>, m: Meta): Promise<ItemDetail> {
  if (input.dueBack < today(rt)) throw validationFailed('The return date is in the past.', { fields: { dueBack: 'must be today or later' } });
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      const row = await loadItem(ctx.db, id);
      if (row.status !== 'in_use') throw conflict(row.status === 'on_loan' ? `${row.tag} is already on loan.` : `${row.tag} has been disposed of.`, row.status === 'on_loan' ? 'on_loan' : 'disposed');
      const who = await accountByUsername(ctx.db, input.borrower);
      const loanId = newId();
      await ctx.db.insertInto('equipment_loan').values({ id: loanId, item_id: id, account_id: who.id, borrower_name: who.display_name, purpose: input.purpose, lent_at: ctx.clock.now().toISOString(), due_back: input.dueBack, returned_at: null, returned_to: null, kind: 'loan', data_assessment: null }).execute();
      const updated = await ctx.db.updateTable('equipment_item').set({ status: 'on_loan', updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).where('status', '=', 'in_use').executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) throw conflict(`${row.tag} is already on loan.`, 'on_loan');
      await ctx.audit.record({ action: 'equipment.lent', target: `equipment_item:${id}`, severity: 'info', details: { tag: row.tag, loan: loanId, borrower: who.username, purpose: input.purpose, dueBack: input.dueBack } });
    }, m);
  } catch (error) {
    if (uniqueViolation(error)) throw conflict('That item is already on loan.', 'on_loan');
    throw error;
  }
  return getItem(rt, id);
}

/** AS-05: sent to a third party for repair, with the personal-data assessment recorded first. */
export async function sendForRepair(rt: Runtime, actor: Actor, id: string, input: z.output<typeof repairSchema>, m: Meta): Promise<ItemDetail> {
  if (input.dueBack < today(rt)) throw validationFailed('The return date is in the past.', { fields: { dueBack: 'must be today or later' } });
  try {
    await rt.trail.transaction(actor, async (ctx) => {
      const row = await loadItem(ctx.db, id);
      if (row.status !== 'in_use') throw conflict(row.status === 'on_loan' ? `${row.tag} is already out.` : `${row.tag} has been disposed of.`, row.status === 'on_loan' ? 'on_loan' : 'disposed');
      const loanId = newId();
      await ctx.db.insertInto('equipment_loan').values({ id: loanId, item_id: id, account_id: null, borrower_name: input.repairer, purpose: `Repair: ${input.fault}`, lent_at: ctx.clock.now().toISOString(), due_back: input.dueBack, returned_at: null, returned_to: null, kind: 'repair', data_assessment: input.dataAssessment }).execute();
      const updated = await ctx.db.updateTable('equipment_item').set({ status: 'on_loan', updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).where('status', '=', 'in_use').executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) throw conflict(`${row.tag} is already out.`, 'on_loan');
      await ctx.audit.record({ action: 'equipment.sent_for_repair', target: `equipment_item:${id}`, severity: row.personal_data ? 'notice' : 'info', details: { tag: row.tag, loan: loanId, repairer: input.repairer, fault: input.fault, dueBack: input.dueBack, personalData: !!row.personal_data, dataAssessment: input.dataAssessment } });
    }, m);
  } catch (error) {
    if (uniqueViolation(error)) throw conflict('That item is already out.', 'on_loan');
    throw error;
  }
  return getItem(rt, id);
}

/**
 * The item is back: any open loan is closed and, with `fromHolder`, it is no longer issued to its
 * holder. A leaver's checklist items for the loan and for the item are ticked (AC-13).
 */
export async function returnItem(rt: Runtime, actor: Actor, id: string, input: { fromHolder: boolean; location?: string | undefined }, m: Meta): Promise<ItemDetail> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await loadItem(ctx.db, id);
    if (row.status === 'disposed') throw conflict(`${row.tag} has been disposed of.`, 'disposed');
    const now = ctx.clock.now().toISOString();
    const loan = await ctx.db.selectFrom('equipment_loan').selectAll().where('item_id', '=', id).where('returned_at', 'is', null).executeTakeFirst();
    if (!loan && !(input.fromHolder && row.holder_account_id)) throw conflict(`${row.tag} is neither on loan nor issued to anyone.`, 'not_out');
    if (loan) await ctx.db.updateTable('equipment_loan').set({ returned_at: now, returned_to: ctx.actor.name }).where('id', '=', loan.id).where('returned_at', 'is', null).execute();
    const clearHolder = input.fromHolder && row.holder_account_id;
    await ctx.db
      .updateTable('equipment_item')
      .set({ status: 'in_use', updated_at: now, ...(clearHolder ? { holder_account_id: null, holder_name: null } : {}), ...(input.location ? { location: input.location } : {}) })
      .where('id', '=', id)
      .execute();
    const touched = [
      ...(loan ? await completeLinkedItems(ctx, `equipment_loan:${loan.id}`, `Returned on ${now.slice(0, 10)}`) : []),
      ...(clearHolder ? await completeLinkedItems(ctx, `equipment_item:${id}`, `Returned on ${now.slice(0, 10)}`) : []),
    ];
    await ctx.audit.record({ action: 'equipment.returned', target: `equipment_item:${id}`, severity: 'info', details: { tag: row.tag, loan: loan?.id ?? null, fromHolder: clearHolder ? row.holder_name : null, leaverChecklists: [...new Set(touched.map((t) => t.accountId))] } });
  }, m);
  return getItem(rt, id);
}

// --- Stock-take (AS-01) ----------------------------------------------------------------------

export interface Stocktake {
  id: string;
  startedAt: string;
  startedBy: string;
  closedAt: string | null;
  found: number;
  total: number;
  missing: Array<{ id: string; tag: string; description: string; location: string }>;
  notYetFound: Array<{ id: string; tag: string; description: string; location: string }>;
}

export async function currentStocktake(rt: Runtime): Promise<{ open: Stocktake | null; last: Stocktake | null }> {
  const rows = await rt.db.kysely.selectFrom('equipment_stocktake').selectAll().orderBy('started_at', 'desc').limit(2).execute();
  const open = rows.find((r) => !r.closed_at);
  const last = rows.find((r) => r.closed_at);
  return { open: open ? await stocktakeOf(rt, open.id) : null, last: last ? await stocktakeOf(rt, last.id) : null };
}

async function stocktakeOf(rt: Runtime, id: string): Promise<Stocktake> {
  const row = await rt.db.kysely.selectFrom('equipment_stocktake').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such stock-take.');
  const found = new Set((await rt.db.kysely.selectFrom('equipment_stocktake_found').select('item_id').where('stocktake_id', '=', id).execute()).map((f) => f.item_id));
  const items = await rt.db.kysely.selectFrom('equipment_item').select(['id', 'tag', 'description', 'location']).where('status', '!=', 'disposed').orderBy('tag').execute();
  const missingIds = row.missing ? (JSON.parse(row.missing) as string[]) : [];
  const all = await rt.db.kysely.selectFrom('equipment_item').select(['id', 'tag', 'description', 'location']).execute();
  const byId = new Map(all.map((i) => [i.id, i]));
  return {
    id: row.id,
    startedAt: row.started_at,
    startedBy: row.started_by,
    closedAt: row.closed_at,
    found: found.size,
    total: row.closed_at ? found.size + missingIds.length : items.length,
    missing: missingIds.map((m) => byId.get(m)).filter((i): i is NonNullable<typeof i> => !!i),
    notYetFound: row.closed_at ? [] : items.filter((i) => !found.has(i.id)),
  };
}

export async function startStocktake(rt: Runtime, actor: Actor, m: Meta): Promise<Stocktake> {
  const id = await rt.trail.transaction(actor, async (ctx) => {
    const open = await ctx.db.selectFrom('equipment_stocktake').select('id').where('closed_at', 'is', null).executeTakeFirst();
    if (open) throw conflict('A stock-take is already under way.', 'stocktake_open');
    const id = newId();
    await ctx.db.insertInto('equipment_stocktake').values({ id, started_at: ctx.clock.now().toISOString(), started_by: ctx.actor.name, closed_at: null, missing: null }).execute();
    await ctx.audit.record({ action: 'equipment.stocktake_started', target: `equipment_stocktake:${id}`, severity: 'info', details: {} });
    return id;
  }, m);
  return stocktakeOf(rt, id);
}

/** Items found, by tag (scanned or typed). Unknown tags are reported back, not guessed. */
export async function markFound(rt: Runtime, actor: Actor, tags: string[], m: Meta): Promise<{ stocktake: Stocktake; unknown: string[] }> {
  const result = await rt.trail.transaction(actor, async (ctx) => {
    const open = await ctx.db.selectFrom('equipment_stocktake').select('id').where('closed_at', 'is', null).executeTakeFirst();
    if (!open) throw conflict('No stock-take is under way: start one first.', 'no_stocktake');
    const items = await ctx.db.selectFrom('equipment_item').select(['id', 'tag']).where('tag', 'in', tags).where('status', '!=', 'disposed').execute();
    const already = new Set((await ctx.db.selectFrom('equipment_stocktake_found').select('item_id').where('stocktake_id', '=', open.id).execute()).map((f) => f.item_id));
    const now = ctx.clock.now().toISOString();
    const fresh = items.filter((i) => !already.has(i.id));
    if (fresh.length) {
      await ctx.db.insertInto('equipment_stocktake_found').values(fresh.map((i) => ({ stocktake_id: open.id, item_id: i.id, found_at: now, found_by: ctx.actor.name }))).execute();
      await ctx.db.updateTable('equipment_item').set({ last_found_at: now }).where('id', 'in', fresh.map((i) => i.id)).execute();
      await ctx.audit.record({ action: 'equipment.stocktake_found', target: `equipment_stocktake:${open.id}`, severity: 'info', details: { tags: fresh.map((i) => i.tag) } });
    }
    const known = new Set(items.map((i) => i.tag));
    return { id: open.id, unknown: tags.filter((t) => !known.has(t)) };
  }, m);
  return { stocktake: await stocktakeOf(rt, result.id), unknown: result.unknown };
}

/** AS-01: closes the stock-take; every item in use that was not found is listed as missing. */
export async function closeStocktake(rt: Runtime, actor: Actor, m: Meta): Promise<Stocktake> {
  const id = await rt.trail.transaction(actor, async (ctx) => {
    const open = await ctx.db.selectFrom('equipment_stocktake').select('id').where('closed_at', 'is', null).executeTakeFirst();
    if (!open) throw conflict('No stock-take is under way.', 'no_stocktake');
    const found = new Set((await ctx.db.selectFrom('equipment_stocktake_found').select('item_id').where('stocktake_id', '=', open.id).execute()).map((f) => f.item_id));
    const items = await ctx.db.selectFrom('equipment_item').select(['id', 'tag']).where('status', '!=', 'disposed').execute();
    const missing = items.filter((i) => !found.has(i.id));
    await ctx.db.updateTable('equipment_stocktake').set({ closed_at: ctx.clock.now().toISOString(), missing: JSON.stringify(missing.map((i) => i.id)) }).where('id', '=', open.id).execute();
    await ctx.audit.record({ action: 'equipment.stocktake_closed', target: `equipment_stocktake:${open.id}`, severity: missing.length ? 'notice' : 'info', details: { found: found.size, missing: missing.map((i) => i.tag) } });
    return open.id;
  }, m);
  return stocktakeOf(rt, id);
}

// --- Certificates and disposal (AS-03, AS-04) -------------------------------------------------

const certificateDir = (rt: Runtime) => path.join(rt.config.dataDir, 'certificates');

export async function attachCertificate(rt: Runtime, actor: Actor, itemId: string, input: z.output<typeof certificateSchema>, m: Meta): Promise<ItemDetail> {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(input.data.replace(/\s/g, ''))) throw validationFailed('The file is not base64.', { fields: { data: 'must be base64' } });
  const bytes = Buffer.from(input.data, 'base64');
  if (bytes.length === 0) throw validationFailed('The file is empty.', { fields: { data: 'empty' } });
  if (bytes.length > CERTIFICATE_MAX_BYTES) throw validationFailed(`The file is larger than ${CERTIFICATE_MAX_BYTES / 1024 / 1024} MB.`, { fields: { data: 'too large' } });
  const type = sniffType(bytes);
  if (!type) throw validationFailed('A certificate must be a PDF, PNG or JPEG file; this file is none of them, whatever its name says.', { fields: { data: 'not a PDF, PNG or JPEG' } });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const filename = input.filename.replace(/[^\w.\- ]+/g, '_').slice(0, 200);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await loadItem(ctx.db, itemId);
    if (row.status === 'disposed') throw conflict(`${row.tag} has already been disposed of.`, 'disposed');
    const id = newId();
    // Stored by content hash in the data folder (mode 0600); the database holds the record.
    const dir = certificateDir(rt);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, sha256), bytes, { mode: 0o600 });
    await ctx.db.insertInto('equipment_certificate').values({ id, item_id: itemId, kind: input.kind, filename, content_type: type, bytes: bytes.length, sha256, uploaded_at: ctx.clock.now().toISOString(), uploaded_by: ctx.actor.name }).execute();
    await ctx.audit.record({ action: 'equipment.certificate_attached', target: `equipment_item:${itemId}`, severity: 'info', details: { tag: row.tag, certificate: id, kind: input.kind, filename, contentType: type, bytes: bytes.length, sha256 } });
  }, m);
  return getItem(rt, itemId);
}

export async function certificateFile(rt: Runtime, itemId: string, certificateId: string): Promise<{ bytes: Buffer; contentType: string; filename: string }> {
  const c = await rt.db.kysely.selectFrom('equipment_certificate').selectAll().where('id', '=', certificateId).where('item_id', '=', itemId).executeTakeFirst();
  if (!c) throw notFound('There is no such certificate.');
  const bytes = readFileSync(path.join(certificateDir(rt), c.sha256));
  if (createHash('sha256').update(bytes).digest('hex') !== c.sha256) throw new GatehouseError('integrity', 500, 'The stored certificate no longer matches its recorded SHA-256.');
  return { bytes, contentType: c.content_type, filename: c.filename };
}

/** Which certificates a disposal by this method needs (AS-03, AS-04). */
export function requiredCertificates(method: (typeof disposalMethods)[number]): CertificateKind[] {
  return method === 'waste' ? ['weee', 'data_destruction'] : ['weee', 'data_destruction', 'pat'];
}

/**
 * AS-03, AS-04: disposal, authorised by a senior leader (the record names them), refused until the
 * required certificates are attached and the licences checked. Final: the item leaves the register.
 */
export async function disposeItem(rt: Runtime, actor: Actor, id: string, input: z.output<typeof disposalSchema>, m: Meta): Promise<ItemDetail> {
  if (input.disposedOn > today(rt)) throw validationFailed('The disposal date is in the future.', { fields: { disposedOn: 'must be today or earlier' } });
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await loadItem(ctx.db, id);
    if (row.status === 'disposed') throw conflict(`${row.tag} has already been disposed of.`, 'disposed');
    if (row.status === 'on_loan') throw conflict(`${row.tag} is on loan: record its return first.`, 'on_loan');
    const have = new Set((await ctx.db.selectFrom('equipment_certificate').select('kind').where('item_id', '=', id).execute()).map((c) => c.kind));
    const lacking = requiredCertificates(input.method).filter((k) => !have.has(k));
    if (lacking.length) throw new GatehouseError('certificates_missing', 409, `Attach the ${lacking.map((k) => certificateLabels[k]).join(' and the ')} before recording the disposal.`, { missing: lacking });
    const who = ctx.actor.id ? await ctx.db.selectFrom('account').select('display_name').where('id', '=', ctx.actor.id).executeTakeFirst() : undefined;
    const now = ctx.clock.now().toISOString();
    await ctx.db.insertInto('equipment_disposal').values({ item_id: id, disposed_on: input.disposedOn, authorised_by: who?.display_name ?? ctx.actor.name, licences_checked: 1, personal_data: input.personalData, destruction: input.destruction, method: input.method, recipient: input.recipient, recorded_at: now, recorded_by: ctx.actor.name }).execute();
    const updated = await ctx.db.updateTable('equipment_item').set({ status: 'disposed', disposed_at: now, updated_at: now }).where('id', '=', id).where('status', '=', 'in_use').executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) throw conflict(`${row.tag} has already been disposed of.`, 'disposed');
    await ctx.audit.record({ action: 'equipment.disposed', target: `equipment_item:${id}`, severity: 'notice', details: { tag: row.tag, serial: row.serial, ...input, certificates: [...have] } });
  }, m).catch((error: unknown) => {
    if (uniqueViolation(error)) throw conflict('That item has already been disposed of.', 'disposed');
    throw error;
  });
  return getItem(rt, id);
}

// --- CSV ----------------------------------------------------------------------------------------

export const EQUIPMENT_COLUMNS = ['tag', 'serial', 'type', 'description', 'location', 'holder', 'mac', 'address', 'personal_data', 'status', 'on_loan_to', 'due_back', 'last_seen', 'last_found'];

export async function exportEquipmentCsv(rt: Runtime, actor: Actor, m: Meta): Promise<string> {
  const items = await listItems(rt, { includeDisposed: true });
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'equipment.exported', target: 'equipment_item:*', severity: 'info', details: { rows: items.length } }), m);
  return toCsv(EQUIPMENT_COLUMNS, items.map((i) => [i.tag, i.serial, i.type, i.description, i.location, i.holder, i.mac, i.address, i.personalData ? 'yes' : 'no', i.status, i.loan?.borrower, i.loan?.dueBack, i.lastSeenAt, i.lastFoundAt]));
}

export const DISPOSAL_COLUMNS = ['tag', 'serial', 'type', 'description', 'disposed_on', 'method', 'recipient', 'authorised_by', 'personal_data', 'destruction', 'licences_checked', 'certificates', 'recorded_at', 'recorded_by'];

/** AS-03, AS-04: every disposal with who authorised it and the certificates behind it (kind and SHA-256), as CSV; audited. */
export async function exportDisposalsCsv(rt: Runtime, actor: Actor, m: Meta): Promise<string> {
  const rows = await rt.db.kysely.selectFrom('equipment_disposal as d').innerJoin('equipment_item as i', 'i.id', 'd.item_id').select(['i.id', 'i.tag', 'i.serial', 'i.type', 'i.description', 'd.disposed_on', 'd.method', 'd.recipient', 'd.authorised_by', 'd.personal_data', 'd.destruction', 'd.licences_checked', 'd.recorded_at', 'd.recorded_by']).orderBy('d.disposed_on').orderBy('i.tag').execute();
  const certificates = rows.length ? await rt.db.kysely.selectFrom('equipment_certificate').select(['item_id', 'kind', 'sha256']).where('item_id', 'in', rows.map((r) => r.id)).orderBy('uploaded_at').execute() : [];
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'equipment.disposals_exported', target: 'equipment_disposal:*', severity: 'info', details: { rows: rows.length } }), m);
  return toCsv(DISPOSAL_COLUMNS, rows.map((r) => [r.tag, r.serial, r.type, r.description, r.disposed_on, r.method, r.recipient, r.authorised_by, r.personal_data, r.destruction, r.licences_checked ? 'yes' : 'no', certificates.filter((c) => c.item_id === r.id).map((c) => `${certificateLabels[c.kind as CertificateKind]} sha256:${c.sha256}`).join('; '), r.recorded_at, r.recorded_by]));
}

/** AS-01: items from CSV (tag, type, description, location; serial, holder, mac, address, personal_data). All or nothing. */
export async function importEquipmentCsv(rt: Runtime, actor: Actor, csv: string, m: Meta): Promise<{ imported: number }> {
  const usernames = new Set((await rt.db.kysely.selectFrom('account').select('username').execute()).map((a) => a.username));
  const existing = new Set((await rt.db.kysely.selectFrom('equipment_item').select('tag').execute()).map((i) => i.tag));
  const rows = checkCsv(csv, {
    required: ['tag', 'type', 'description', 'location'],
    columns: { tag: 'tag', serial: 'serial', type: 'type', description: 'description', location: 'location', holder: 'holder', mac: 'mac', address: 'address', personalData: 'personal_data' },
    schema: itemSchema,
    input: (cell) => ({ tag: cell('tag'), serial: cell('serial'), type: cell('type'), description: cell('description'), location: cell('location'), holder: cell('holder'), mac: cell('mac'), address: cell('address'), personalData: yesNo(cell('personal_data')) }),
    key: { column: 'tag', of: (item) => item.tag, taken: (tag) => (existing.has(tag) ? `${tag} is already registered` : null) },
    check: (item) => (item.holder && !usernames.has(item.holder.toLowerCase()) ? [{ column: 'holder', message: `there is no person ${item.holder}` }] : []),
  });
  await rt.trail.transaction(actor, async (ctx) => {
    for (const { row } of rows) await insertItem(ctx, row);
    await ctx.audit.record({ action: 'equipment.imported', target: 'equipment_item:*', severity: 'info', details: { rows: rows.length, tags: rows.map((r) => r.row.tag) } });
  }, m);
  return { imported: rows.length };
}

// --- Leavers (AC-13) and the overview -------------------------------------------------------

/** A leaver's checklist: one linked item per item issued to them and per open loan; ticked when it comes back. */
export async function registeredEquipment(ctx: Ctx, leaver: Leaver): Promise<LeaverItem[]> {
  const issued = await ctx.db.selectFrom('equipment_item').select(['id', 'tag', 'description']).where('holder_account_id', '=', leaver.id).where('status', '!=', 'disposed').execute();
  const loans = await ctx.db.selectFrom('equipment_loan as l').innerJoin('equipment_item as i', 'i.id', 'l.item_id').select(['l.id', 'i.tag', 'i.description', 'l.item_id']).where('l.account_id', '=', leaver.id).where('l.returned_at', 'is', null).execute();
  const item = (id: string, label: string, ref: string, itemId: string): LeaverItem => ({ id, kind: 'equipment_returned', label, how: 'linked', done: false, doneAt: null, doneBy: null, detail: 'Ticked when its return is recorded in the equipment register.', ref, href: `/equipment/${itemId}` });
  return [
    ...issued.map((i) => item(`equipment-item-${i.id}`, `Return ${i.tag} (${i.description})`, `equipment_item:${i.id}`, i.id)),
    ...loans.map((l) => item(`equipment-loan-${l.id}`, `Return ${l.tag} (${l.description}), on loan`, `equipment_loan:${l.id}`, l.item_id)),
  ];
}

export async function equipmentDue(rt: Runtime): Promise<DueItem[]> {
  const items: DueItem[] = [];
  const now = rt.clock.now();
  const day = now.toISOString().slice(0, 10);
  const loans = await rt.db.kysely.selectFrom('equipment_loan as l').innerJoin('equipment_item as i', 'i.id', 'l.item_id').select(['i.id', 'i.tag', 'l.borrower_name', 'l.due_back']).where('l.returned_at', 'is', null).where('l.due_back', '<', day).orderBy('l.due_back').limit(20).execute();
  for (const l of loans) items.push({ kind: 'equipment_loan_overdue', title: `${l.tag} lent to ${l.borrower_name} was due back on ${l.due_back}`, dueAt: `${l.due_back}T00:00:00.000Z`, overdue: true, href: `/equipment/${l.id}`, requirement: 'AS-02', permission: 'registers.read' });
  const count = await rt.db.kysely.selectFrom('equipment_item').select((eb) => eb.fn.countAll().as('n')).where('status', '!=', 'disposed').executeTakeFirst();
  if (Number(count?.n ?? 0) > 0) {
    const last = await rt.db.kysely.selectFrom('equipment_stocktake').select((eb) => eb.fn.max('closed_at').as('at')).executeTakeFirst();
    const lastAt = last?.at ? new Date(String(last.at)) : null;
    const due = lastAt ? new Date(lastAt) : now;
    if (lastAt) due.setUTCMonth(due.getUTCMonth() + rt.profile.registers.stockTakeEveryMonths);
    const soon = due.getTime() - now.getTime() < 30 * 86_400_000;
    if (!lastAt || soon) items.push({ kind: 'equipment_stocktake', title: lastAt ? `The equipment stock-take is due by ${due.toISOString().slice(0, 10)}` : 'No stock-take of the equipment has been recorded', detail: 'Every item accounted for at least yearly (P3 6.6).', dueAt: due.toISOString(), overdue: due.getTime() <= now.getTime(), href: '/equipment', requirement: 'AS-01', permission: 'registers.read' });
  }
  return items;
}
