import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import type { Actor, Ctx } from '../core/context.js';
import { conflict, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { atLocalTime, localDate } from '../core/local-time.js';
import type { Profile } from '../core/profile.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import type { Schema, SharedSecretTable } from '../db/schema.js';
import { completeLinkedItems } from '../directory/leaver-checklist.js';
import type { Runtime } from '../runtime.js';
import { toCsv } from './csv.js';

/**
 * The shared-secrets register (PW-12): Wi-Fi keys, master passwords, alarm codes and the like that
 * several people know. It records what the secret is for, where it is kept, who knows it, how often
 * it is changed and when it is next due — never the secret itself: there is no field for it, and
 * text that looks like one is refused. A secret is flagged for rotation when one of its holders
 * leaves (AC-13); recording the rotation clears the flag and ticks the leaver's checklist.
 */

export const secretKinds = ['wifi', 'master_password', 'alarm_code', 'admin_console', 'other'] as const;
export type SecretKind = (typeof secretKinds)[number];
export const secretKindLabels: Record<SecretKind, string> = {
  wifi: 'Wi-Fi key',
  master_password: 'Master password',
  alarm_code: 'Alarm code',
  admin_console: 'Administration console',
  other: 'Other',
};

/** profile: whatever the profile's `sharedSecrets.rotation` says; termly; or every `rotationDays`. */
export const rotationChoices = ['profile', 'termly', 'days'] as const;
export type RotationChoice = (typeof rotationChoices)[number];

/** Secrets due within this many days show on the overview (and in `gatehouse secrets due`). */
export const DUE_SOON_DAYS = 14;

const DAY_MS = 86_400_000;

// --- Keeping the secret itself out ---------------------------------------------------------------

const labelled = /\b(password|passwd|pwd|passphrase|passcode|pin|psk|wpa2?|key|code|combination)\s*[:=]\s*(\S+)/i;

/**
 * Why this text looks like a secret someone pasted in, or null. Deliberately narrow, so ordinary
 * descriptions ("sealed envelope in the head's safe") pass: a labelled value ("code: 4821",
 * "key=Summer2026!") or one long random-looking word (letters of both cases and digits, 16 or more,
 * not an address or a file path).
 */
export function looksLikeASecret(text: string): string | null {
  const m = labelled.exec(text);
  if (m) {
    const value = m[2]!;
    if (/\d/.test(value) || value.length >= 12 || (value.length >= 8 && /[a-z]/.test(value) && /[A-Z]/.test(value))) {
      return `a labelled value, "${m[1]}${text.slice(m.index + m[1]!.length, m.index + m[0].length - value.length)}…"`;
    }
  }
  for (const word of text.split(/\s+/)) {
    if (word.length < 16 || /[/\\@]|:\/\/|^www\./i.test(word)) continue;
    if (/[a-z]/.test(word) && /[A-Z]/.test(word) && /\d/.test(word)) return 'a long random-looking word';
  }
  return null;
}

const NO_SECRETS = 'The register records where a secret is kept and who knows it, never the secret: remove it and describe where it is kept instead.';

function safeText(max: number) {
  return z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .superRefine((value, ctx) => {
      const why = looksLikeASecret(value);
      if (why) ctx.addIssue({ code: 'custom', message: `seems to hold the secret itself (${why}). ${NO_SECRETS}` });
    });
}

// Strict: a field the register does not have (say, "secret" or "password") is refused, not dropped quietly.
const strict = {
  error: (issue: { code?: string; keys?: string[] }) =>
    issue.code === 'unrecognized_keys' ? `has fields the register does not keep (${issue.keys?.join(', ')}); it never holds the secret itself` : undefined,
};

const baseSchema = z.strictObject({
  name: safeText(200).pipe(z.string().min(1, 'is required')),
  kind: z.enum(secretKinds, { error: `must be one of ${secretKinds.join(', ')}` }),
  location: safeText(500).pipe(z.string().min(1, 'is required: say where the secret is kept, e.g. "sealed envelope in the head’s safe"')),
  rotation: z.enum(rotationChoices, { error: 'must be profile (the school’s default), termly or days' }),
  rotationDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(3650, 'must be at most 3650 days').nullable(),
  notes: safeText(2000).nullable(),
}, strict);

const rotationRule = (v: { rotation?: RotationChoice | undefined; rotationDays?: number | null | undefined }, ctx: z.RefinementCtx) => {
  if (v.rotation === 'days' && !v.rotationDays) ctx.addIssue({ code: 'custom', path: ['rotationDays'], message: 'is required when the secret is changed every so many days' });
};

export const newSecretSchema = baseSchema
  .extend({
    rotation: baseSchema.shape.rotation.default('profile'),
    rotationDays: baseSchema.shape.rotationDays.optional(),
    notes: baseSchema.shape.notes.optional(),
    /** When it was last changed, if known; unknown means it is due now. */
    lastRotatedOn: z.iso.date('must be a date like 2026-09-01').nullable().optional(),
    holders: z.array(z.uuid('must be account ids')).max(500).optional(),
  })
  .superRefine(rotationRule);

export const secretChangeSchema = baseSchema.partial().superRefine(rotationRule);

export interface Holder {
  id: string;
  username: string;
  displayName: string;
  status: string;
}

export interface SharedSecretSummary {
  id: string;
  name: string;
  kind: SecretKind;
  kindLabel: string;
  location: string;
  rotation: RotationChoice;
  rotationDays: number | null;
  /** "Termly (school default)", "Every 30 days" */
  rotationLabel: string;
  lastRotatedAt: string | null;
  nextDueAt: string;
  overdue: boolean;
  /** due within DUE_SOON_DAYS (and not yet overdue) */
  dueSoon: boolean;
  flaggedAt: string | null;
  flagReason: string | null;
  notes: string | null;
  holders: Holder[];
  createdAt: string;
  updatedAt: string;
  retiredAt: string | null;
}

type SecretRow = Selectable<SharedSecretTable>;

// --- Due dates --------------------------------------------------------------------------------

/** The rotation that applies: the secret's own, or the profile's. */
export function effectiveRotation(profile: Profile, rotation: string, rotationDays: number | null): 'termly' | { days: number } {
  if (rotation === 'days' && rotationDays) return { days: rotationDays };
  if (rotation === 'termly') return 'termly';
  return profile.sharedSecrets.rotation;
}

/**
 * When a secret last changed at `rotatedAt` is next due, from the start of a day in the school's
 * time zone: the day N calendar days after the day it was changed, or the first day of the first
 * term that starts after it. When the profile lists no later term, it is due at once, so the missing
 * term dates get noticed.
 */
export function nextDueAfter(profile: Profile, rotation: 'termly' | { days: number }, rotatedAt: Date): Date {
  const day = localDate(rotatedAt, profile.timeZone);
  if (rotation !== 'termly') {
    // Calendar arithmetic on the date alone, so a clock change in between does not move the day.
    const target = new Date(Date.UTC(day.year, day.month - 1, day.day + rotation.days));
    return atLocalTime({ year: target.getUTCFullYear(), month: target.getUTCMonth() + 1, day: target.getUTCDate() }, '00:00', profile.timeZone);
  }
  const today = `${day.year}-${String(day.month).padStart(2, '0')}-${String(day.day).padStart(2, '0')}`;
  const next = profile.terms.find((t) => t.starts > today);
  if (!next) return rotatedAt;
  const [year, month, date] = next.starts.split('-').map(Number) as [number, number, number];
  return atLocalTime({ year, month, day: date }, '00:00', profile.timeZone);
}

/** What a secret's due date depends on. */
type DueInputs = Pick<SecretRow, 'rotation' | 'rotation_days' | 'last_rotated_at' | 'flagged_at' | 'created_at'>;

/**
 * PW-12: when the secret is next due, under the profile in force. A flagged secret (a holder left)
 * is due from the moment it was flagged, and one whose last change nobody knows from the moment it
 * was recorded; otherwise the rotation rule runs from its last change. Always derived, never read
 * from the row's `next_due_at`, so a school that edits its term dates or its rotation sees the new
 * dates at once in the register, the overview and the CLI.
 */
export function secretDueAt(profile: Profile, row: DueInputs): string {
  if (row.flagged_at) return row.flagged_at;
  if (!row.last_rotated_at) return row.created_at;
  return nextDueAfter(profile, effectiveRotation(profile, row.rotation, row.rotation_days), new Date(row.last_rotated_at)).toISOString();
}

function rotationLabel(profile: Profile, rotation: string, rotationDays: number | null): string {
  const rule = effectiveRotation(profile, rotation, rotationDays);
  const text = rule === 'termly' ? 'Termly' : `Every ${rule.days} day${rule.days === 1 ? '' : 's'}`;
  return rotation === 'profile' ? `${text} (school default)` : text;
}

/** What the console offers as "the school's default", and whether termly is possible at all. */
export function rotationDefaults(profile: Profile): { label: string; termsListed: boolean } {
  const rule = profile.sharedSecrets.rotation;
  return { label: rule === 'termly' ? 'Termly' : `Every ${rule.days} day${rule.days === 1 ? '' : 's'}`, termsListed: profile.terms.length > 0 };
}

function checkRotationPossible(profile: Profile, rotation: RotationChoice | undefined): void {
  if (rotation === 'termly' && profile.terms.length === 0) {
    throw validationFailed('The school’s profile lists no term dates, so a secret cannot be changed termly: add the terms to the profile, or choose a number of days.');
  }
}

// --- Reading ----------------------------------------------------------------------------------

async function holdersOf(db: Kysely<Schema>, secretIds: string[]): Promise<Map<string, Holder[]>> {
  const out = new Map<string, Holder[]>();
  if (secretIds.length === 0) return out;
  const rows = await db
    .selectFrom('shared_secret_holder as h')
    .innerJoin('account as a', 'a.id', 'h.account_id')
    .select(['h.secret_id', 'a.id', 'a.username', 'a.display_name', 'a.status'])
    .where('h.secret_id', 'in', secretIds)
    .orderBy('a.display_name')
    .execute();
  for (const r of rows) {
    const list = out.get(r.secret_id) ?? [];
    list.push({ id: r.id, username: r.username, displayName: r.display_name, status: r.status });
    out.set(r.secret_id, list);
  }
  return out;
}

function summarise(rt: Runtime, row: SecretRow, holders: Holder[]): SharedSecretSummary {
  const now = rt.clock.now().getTime();
  const nextDueAt = secretDueAt(rt.profile, row);
  const due = Date.parse(nextDueAt);
  const overdue = row.retired_at === null && due <= now;
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as SecretKind,
    kindLabel: secretKindLabels[row.kind as SecretKind] ?? row.kind,
    location: row.location,
    rotation: row.rotation as RotationChoice,
    rotationDays: row.rotation_days,
    rotationLabel: rotationLabel(rt.profile, row.rotation, row.rotation_days),
    lastRotatedAt: row.last_rotated_at,
    nextDueAt,
    overdue,
    dueSoon: row.retired_at === null && !overdue && due <= now + DUE_SOON_DAYS * DAY_MS,
    flaggedAt: row.flagged_at,
    flagReason: row.flag_reason,
    notes: row.notes,
    holders,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    retiredAt: row.retired_at,
  };
}

/** Soonest due first, then by name (in code: the due date is derived, and both dialects sort alike). */
function bySoonestDue(a: SharedSecretSummary, b: SharedSecretSummary): number {
  return a.nextDueAt.localeCompare(b.nextDueAt) || a.name.localeCompare(b.name, 'en-GB');
}

async function summariseAll(rt: Runtime, rows: SecretRow[]): Promise<SharedSecretSummary[]> {
  const holders = await holdersOf(rt.db.kysely, rows.map((r) => r.id));
  return rows.map((r) => summarise(rt, r, holders.get(r.id) ?? [])).sort(bySoonestDue);
}

export async function listSecrets(rt: Runtime, options: { includeRetired?: boolean } = {}): Promise<SharedSecretSummary[]> {
  let q = rt.db.kysely.selectFrom('shared_secret').selectAll();
  if (!options.includeRetired) q = q.where('retired_at', 'is', null);
  return summariseAll(rt, await q.execute());
}

async function load(db: Kysely<Schema>, id: string): Promise<SecretRow> {
  const row = await db.selectFrom('shared_secret').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('There is no such shared secret in the register.');
  return row;
}

export async function getSecret(rt: Runtime, id: string): Promise<SharedSecretSummary> {
  const row = await load(rt.db.kysely, id);
  return summarise(rt, row, (await holdersOf(rt.db.kysely, [id])).get(id) ?? []);
}

/** Secrets overdue, due within `withinDays`, or flagged (a holder left): what the overview shows. */
export async function dueSecrets(rt: Runtime, withinDays = DUE_SOON_DAYS): Promise<SharedSecretSummary[]> {
  const horizon = new Date(rt.clock.now().getTime() + withinDays * DAY_MS).toISOString();
  // The due date depends on the profile, so it is not a column to filter on; a register holds dozens of rows.
  const rows = (await rt.db.kysely.selectFrom('shared_secret').selectAll().where('retired_at', 'is', null).execute()).filter(
    (r) => r.flagged_at !== null || secretDueAt(rt.profile, r) <= horizon,
  );
  return summariseAll(rt, rows);
}

export const SECRET_COLUMNS = ['name', 'kind', 'location', 'holders', 'rotation', 'last_rotated_at', 'next_due_at', 'overdue', 'flagged_at', 'flag_reason', 'notes', 'retired_at'];

/**
 * PW-12: the register as CSV for the school's records or an auditor: what each secret is for, where
 * it is kept, who knows it and when it is due. Never a secret (there is none to export); audited.
 */
export async function exportSecretsCsv(rt: Runtime, actor: Actor, options: { includeRetired?: boolean }, m: Meta): Promise<string> {
  const secrets = await listSecrets(rt, options);
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'shared_secret.exported', target: 'shared_secret:*', severity: 'info', details: { rows: secrets.length, includeRetired: !!options.includeRetired } }), m);
  return toCsv(SECRET_COLUMNS, secrets.map((s) => [s.name, s.kindLabel, s.location, s.holders.map((h) => `${h.displayName} (${h.username})`).join('; '), s.rotationLabel, s.lastRotatedAt, s.nextDueAt, s.overdue ? 'yes' : 'no', s.flaggedAt, s.flagReason, s.notes, s.retiredAt]));
}

// --- Changes ----------------------------------------------------------------------------------

type Meta = { ip: string | null; requestId: string | null };
const noMeta: Meta = { ip: null, requestId: null };

/** Holders must be people in the directory who have not left (a leaver should not learn a secret). */
async function checkHolders(ctx: Ctx, accountIds: string[]): Promise<Array<{ id: string; username: string }>> {
  const unique = [...new Set(accountIds)];
  if (unique.length === 0) return [];
  const rows = await ctx.db.selectFrom('account').select(['id', 'username', 'display_name', 'status']).where('id', 'in', unique).execute();
  if (rows.length !== unique.length) throw validationFailed('One of the holders is not an account in the directory.');
  const gone = rows.find((r) => r.status === 'left');
  if (gone) throw validationFailed(`${gone.display_name} has left the school and cannot be recorded as knowing a secret.`);
  return rows.map((r) => ({ id: r.id, username: r.username }));
}

async function nameTaken(ctx: Ctx, name: string, except?: string): Promise<void> {
  let q = ctx.db.selectFrom('shared_secret').select('id').where('name', '=', name);
  if (except) q = q.where('id', '!=', except);
  if (await q.executeTakeFirst()) throw conflict(`The register already has a secret called "${name}".`, 'secret_exists');
}

export async function addSecret(rt: Runtime, actor: Actor, input: z.infer<typeof newSecretSchema>, m: Meta = noMeta): Promise<SharedSecretSummary> {
  checkRotationPossible(rt.profile, input.rotation);
  const id = await rt.trail.transaction(actor, async (ctx) => {
    await nameTaken(ctx, input.name);
    const holders = await checkHolders(ctx, input.holders ?? []);
    const now = ctx.clock.now();
    let lastRotatedAt: string | null = null;
    if (input.lastRotatedOn) {
      const [year, month, day] = input.lastRotatedOn.split('-').map(Number) as [number, number, number];
      const at = atLocalTime({ year, month, day }, '00:00', rt.profile.timeZone);
      if (at.getTime() > now.getTime()) throw validationFailed('The date it was last changed cannot be in the future.');
      lastRotatedAt = at.toISOString();
    }
    const rotationDays = input.rotation === 'days' ? input.rotationDays ?? null : null;
    // Not known when it last changed: it is due now.
    const nextDueAt = secretDueAt(rt.profile, { rotation: input.rotation, rotation_days: rotationDays, last_rotated_at: lastRotatedAt, flagged_at: null, created_at: now.toISOString() });
    const secretId = newId();
    await ctx.db
      .insertInto('shared_secret')
      .values({
        id: secretId,
        name: input.name,
        kind: input.kind,
        location: input.location,
        rotation: input.rotation,
        rotation_days: rotationDays,
        last_rotated_at: lastRotatedAt,
        next_due_at: nextDueAt,
        flagged_at: null,
        flag_reason: null,
        notes: input.notes || null,
        created_at: now.toISOString(),
        updated_at: now.toISOString(),
        retired_at: null,
      })
      .execute();
    if (holders.length) await ctx.db.insertInto('shared_secret_holder').values(holders.map((h) => ({ secret_id: secretId, account_id: h.id }))).execute();
    await ctx.audit.record({
      action: 'shared_secret.added',
      target: `shared_secret:${secretId}`,
      details: { name: input.name, kind: input.kind, location: input.location, rotation: input.rotation, rotationDays, lastRotatedAt, nextDueAt, holders: holders.map((h) => h.username) },
    });
    return secretId;
  }, m);
  return getSecret(rt, id);
}

export async function editSecret(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof secretChangeSchema>, m: Meta = noMeta): Promise<SharedSecretSummary> {
  checkRotationPossible(rt.profile, input.rotation);
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await load(ctx.db, id);
    if (row.retired_at) throw conflict('That secret has been retired; add it again if it is back in use.', 'secret_retired');
    if (input.name !== undefined) await nameTaken(ctx, input.name, id);
    const next = {
      name: input.name ?? row.name,
      kind: input.kind ?? row.kind,
      location: input.location ?? row.location,
      rotation: input.rotation ?? row.rotation,
      rotation_days: (input.rotation ?? row.rotation) === 'days' ? input.rotationDays ?? row.rotation_days : null,
      notes: input.notes === undefined ? row.notes : input.notes || null,
    };
    if (next.rotation === 'days' && !next.rotation_days) throw validationFailed('Give the number of days between changes.');
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    for (const key of ['name', 'kind', 'location', 'rotation', 'rotation_days'] as const) {
      if (next[key] !== row[key]) changes[key === 'rotation_days' ? 'rotationDays' : key] = { from: row[key], to: next[key] };
    }
    const notesChanged = next.notes !== row.notes;
    if (Object.keys(changes).length === 0 && !notesChanged) return;
    // A new rotation moves the due date, unless the secret waits on a rotation already (flagged or never recorded).
    const nextDueAt = secretDueAt(rt.profile, { ...row, ...next });
    await ctx.db.updateTable('shared_secret').set({ ...next, next_due_at: nextDueAt, updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
    await ctx.audit.record({
      action: 'shared_secret.changed',
      target: `shared_secret:${id}`,
      details: { name: next.name, changes, notesChanged, ...(nextDueAt !== secretDueAt(rt.profile, row) ? { nextDueAt } : {}) },
    });
  }, m);
  return getSecret(rt, id);
}

/** Who knows the secret: replaces the list of holders. */
export async function setHolders(rt: Runtime, actor: Actor, id: string, accountIds: string[], m: Meta = noMeta): Promise<SharedSecretSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await load(ctx.db, id);
    if (row.retired_at) throw conflict('That secret has been retired.', 'secret_retired');
    const current = await ctx.db
      .selectFrom('shared_secret_holder as h')
      .innerJoin('account as a', 'a.id', 'h.account_id')
      .select(['a.id', 'a.username', 'a.status'])
      .where('h.secret_id', '=', id)
      .execute();
    const currentIds = new Set(current.map((c) => c.id));
    const wanted = new Set(accountIds);
    const added = await checkHolders(ctx, accountIds.filter((a) => !currentIds.has(a)));
    const removed = current.filter((c) => !wanted.has(c.id));
    if (added.length === 0 && removed.length === 0) return;
    if (removed.length) await ctx.db.deleteFrom('shared_secret_holder').where('secret_id', '=', id).where('account_id', 'in', removed.map((r) => r.id)).execute();
    if (added.length) await ctx.db.insertInto('shared_secret_holder').values(added.map((a) => ({ secret_id: id, account_id: a.id }))).execute();
    await ctx.db.updateTable('shared_secret').set({ updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
    await ctx.audit.record({
      action: 'shared_secret.holders_changed',
      target: `shared_secret:${id}`,
      details: { name: row.name, added: added.map((a) => a.username), removed: removed.map((r) => r.username) },
    });
  }, m);
  return getSecret(rt, id);
}

/**
 * PW-12: the secret has been changed. It is next due after the rotation interval, any flag is
 * cleared, holders who have left are taken off (they do not know the new one), and the leaver
 * checklists waiting on it are ticked.
 */
export async function recordRotation(rt: Runtime, actor: Actor, id: string, m: Meta = noMeta): Promise<SharedSecretSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await load(ctx.db, id);
    if (row.retired_at) throw conflict('That secret has been retired.', 'secret_retired');
    const now = ctx.clock.now();
    const nextDue = secretDueAt(rt.profile, { ...row, last_rotated_at: now.toISOString(), flagged_at: null });
    await ctx.db
      .updateTable('shared_secret')
      .set({ last_rotated_at: now.toISOString(), next_due_at: nextDue, flagged_at: null, flag_reason: null, updated_at: now.toISOString() })
      .where('id', '=', id)
      .execute();
    const gone = await ctx.db
      .selectFrom('shared_secret_holder as h')
      .innerJoin('account as a', 'a.id', 'h.account_id')
      .select(['a.id', 'a.username'])
      .where('h.secret_id', '=', id)
      .where('a.status', '=', 'left')
      .execute();
    if (gone.length) await ctx.db.deleteFrom('shared_secret_holder').where('secret_id', '=', id).where('account_id', 'in', gone.map((g) => g.id)).execute();
    const checklists = await completeLinkedItems(ctx, `shared_secret:${id}`, `Changed on ${now.toISOString().slice(0, 10)}`);
    await ctx.audit.record({
      action: 'shared_secret.rotated',
      target: `shared_secret:${id}`,
      severity: row.flagged_at ? 'notice' : 'info',
      details: {
        name: row.name,
        previousRotationAt: row.last_rotated_at,
        nextDueAt: nextDue,
        ...(row.flagged_at ? { flagCleared: row.flag_reason } : {}),
        holdersRemoved: gone.map((g) => g.username),
        leaverChecklists: checklists.map((c) => c.accountId),
      },
    });
  }, m);
  return getSecret(rt, id);
}

/** No longer in use (the alarm replaced, the console decommissioned): off the register and the overview. */
export async function retireSecret(rt: Runtime, actor: Actor, id: string, m: Meta = noMeta): Promise<SharedSecretSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await load(ctx.db, id);
    if (row.retired_at) return;
    const now = ctx.clock.now().toISOString();
    const nextDueAt = secretDueAt(rt.profile, { ...row, flagged_at: null });
    await ctx.db.updateTable('shared_secret').set({ retired_at: now, flagged_at: null, flag_reason: null, next_due_at: nextDueAt, updated_at: now }).where('id', '=', id).execute();
    // A secret no longer in use need not be changed for a leaver either.
    const checklists = await completeLinkedItems(ctx, `shared_secret:${id}`, 'Retired: no longer in use');
    await ctx.audit.record({
      action: 'shared_secret.retired',
      target: `shared_secret:${id}`,
      severity: 'notice',
      details: { name: row.name, wasFlagged: row.flag_reason, leaverChecklists: checklists.map((c) => c.accountId) },
    });
  }, m);
  return getSecret(rt, id);
}

/**
 * AC-13 / PW-12: flags for rotation, now, every secret in use that these accounts know. Runs in the
 * leaver's transaction; the caller records the audit event naming them.
 */
export async function flagSecretsHeldBy(ctx: Ctx, accountIds: string[], reason: string): Promise<Array<{ id: string; name: string }>> {
  if (accountIds.length === 0) return [];
  const rows = await ctx.db
    .selectFrom('shared_secret as s')
    .select(['s.id', 's.name', 's.flag_reason'])
    .where('s.retired_at', 'is', null)
    .where('s.id', 'in', (eb) => eb.selectFrom('shared_secret_holder').select('secret_id').where('account_id', 'in', accountIds))
    .orderBy('s.name')
    .execute();
  const now = ctx.clock.now().toISOString();
  for (const row of rows) {
    // Flagged already (another leaver): both reasons stand until the rotation is recorded.
    const flagReason = row.flag_reason && !row.flag_reason.includes(reason) ? `${row.flag_reason}; ${reason}`.slice(0, 1000) : reason;
    // Due from now (secretDueAt says the same of a flagged secret).
    await ctx.db.updateTable('shared_secret').set({ flagged_at: now, flag_reason: flagReason, next_due_at: now, updated_at: now }).where('id', '=', row.id).execute();
  }
  return rows.map((r) => ({ id: r.id, name: r.name }));
}

// --- The overview -----------------------------------------------------------------------------

export const sharedSecretsDue: DueProvider = async (rt) => {
  const secrets = await dueSecrets(rt);
  return secrets.map((s): DueItem => ({
    kind: 'shared_secret',
    title: s.flagReason
      ? `${s.name} (${s.kindLabel.toLowerCase()}) must be changed: ${s.flagReason}`
      : `${s.name} (${s.kindLabel.toLowerCase()}) ${s.overdue ? 'is overdue for a change' : 'is due for a change'}`,
    detail: `Kept: ${s.location}. ${s.holders.length} ${s.holders.length === 1 ? 'person knows' : 'people know'} it. Record the change on the Shared secrets page once it is done.`,
    dueAt: s.nextDueAt,
    overdue: s.overdue,
    href: '/secrets',
    requirement: 'PW-12',
    permission: 'secrets.read',
  }));
};
