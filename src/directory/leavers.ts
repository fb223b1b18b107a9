import type { Selectable } from 'kysely';
import { protectGuestPool } from '../identity/service.js';
import { endAccountAccess } from '../identity/sessions.js';
import { z } from 'zod';
import type { Actor, Ctx } from '../core/context.js';
import { GatehouseError, conflict, notFound, validationFailed } from '../core/errors.js';
import { localDate } from '../core/local-time.js';
import type { DueProvider } from '../dashboard/due.js';
import type { AccountTable, LeaverChecklistTable } from '../db/schema.js';
import { flagSecretsHeldBy } from '../registers/shared-secrets.js';
import { registeredEquipment } from '../registers/equipment.js';
import type { Runtime } from '../runtime.js';
import { allDone, parseItems, recordCompleted, type LeaverItem } from './leaver-checklist.js';

/**
 * Leavers (AC-13, PW-12): one action closes the person's account and their administrator account,
 * ends every session, flags every shared secret they knew for rotation, and starts the checklist
 * of what is still to do (secrets to change, equipment to collect). The checklist completes when
 * every item is done.
 */

type Account = Selectable<AccountTable>;
type Meta = { ip: string | null; requestId: string | null };
const noMeta: Meta = { ip: null, requestId: null };

export const startLeaverSchema = z.object({
  /** The day they left (the school's calendar); today when not given. */
  leftOn: z.iso.date('must be a date like 2026-07-22').optional(),
  note: z.string().trim().max(2000, 'must be at most 2000 characters').nullable().optional(),
});

export const tickSchema = z.object({ done: z.boolean({ error: 'must be true or false' }) });

export interface LeaverSummary {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  leftOn: string;
  startedAt: string;
  startedBy: string;
  note: string | null;
  completedAt: string | null;
  items: LeaverItem[];
  done: number;
  total: number;
}

// --- Extension point: items from other registers ------------------------------------------------

/** The person leaving, as item providers see them. */
export interface Leaver {
  id: string;
  username: string;
  displayName: string;
}

/**
 * What else a leaver must hand back: each provider adds checklist items inside the leaver's
 * transaction. When the equipment register exists, its provider replaces `equipmentOnLoan` with one
 * linked item per loan (`how: 'linked'`, `ref: 'equipment_loan:<id>'`, `href` to the loan) and
 * calls `completeLinkedItems(ctx, ref, …)` when a return is recorded, as the shared-secrets register
 * does for rotations; the checklist then completes by itself.
 */
export type LeaverItemProvider = (ctx: Ctx, leaver: Leaver) => Promise<LeaverItem[]>;

/** Until Gatehouse has an equipment register: one item a person ticks once everything is back. */
export const equipmentOnLoan: LeaverItemProvider = async () => [
  {
    id: 'equipment',
    kind: 'equipment_returned',
    label: 'Equipment on loan returned',
    how: 'manual',
    done: false,
    doneAt: null,
    doneBy: null,
    detail: 'Gatehouse has no equipment register yet: check the school’s own loan records (laptop, tablet, keys, fob, ID badge) and tick this when everything is back.',
  },
];

// equipment registers (issue 12): one linked item per registered item issued or lent to the leaver;
// the manual item stays for what the register does not hold (keys, fobs, badges).
export const leaverItemProviders: LeaverItemProvider[] = [equipmentOnLoan, registeredEquipment];

// --- Reading ----------------------------------------------------------------------------------

function summarise(row: Selectable<LeaverChecklistTable>, account: Pick<Account, 'username' | 'display_name' | 'role'>): LeaverSummary {
  const items = parseItems(row.items);
  return {
    accountId: row.account_id,
    username: account.username,
    displayName: account.display_name,
    role: account.role,
    leftOn: row.left_on,
    startedAt: row.started_at,
    startedBy: row.started_by,
    note: row.note,
    completedAt: row.completed_at,
    items,
    done: items.filter((i) => i.done).length,
    total: items.length,
  };
}

const selectChecklists = (rt: Runtime) =>
  rt.db.kysely
    .selectFrom('leaver_checklist as l')
    .innerJoin('account as a', 'a.id', 'l.account_id')
    .selectAll('l')
    .select(['a.username', 'a.display_name', 'a.role']);

/** Open checklists (oldest first) and the most recently completed ones. */
export async function listLeavers(rt: Runtime, options: { completedLimit?: number } = {}): Promise<{ open: LeaverSummary[]; completed: LeaverSummary[] }> {
  const open = await selectChecklists(rt).where('l.completed_at', 'is', null).orderBy('l.started_at').execute();
  const completed = await selectChecklists(rt).where('l.completed_at', 'is not', null).orderBy('l.completed_at', 'desc').limit(options.completedLimit ?? 100).execute();
  return { open: open.map((r) => summarise(r, r)), completed: completed.map((r) => summarise(r, r)) };
}

export async function getLeaver(rt: Runtime, accountId: string): Promise<LeaverSummary> {
  const row = await selectChecklists(rt).where('l.account_id', '=', accountId).executeTakeFirst();
  if (!row) throw notFound('There is no leaver checklist for that account.');
  return summarise(row, row);
}

// --- Starting a leaver ------------------------------------------------------------------------

const isoDay = (d: { year: number; month: number; day: number }) => `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;

/**
 * AC-13: in one transaction, the account is closed (status `left`), its sessions end and sign-ins
 * in progress are dropped, the person's administrator account is disabled likewise, every shared
 * secret either account knew is flagged for rotation (PW-12), and the checklist is recorded.
 */
export async function startLeaver(
  rt: Runtime,
  actor: Actor,
  accountId: string,
  input: z.infer<typeof startLeaverSchema>,
  m: Meta = noMeta,
  /** Checks run inside the leaver's transaction before anything changes (SCIM: the token's reach, no administrator account). */
  guard?: (ctx: Ctx, account: Account, administratorAccounts: Account[]) => Promise<void>,
): Promise<LeaverSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const account = await ctx.db.selectFrom('account').selectAll().where('id', '=', accountId).executeTakeFirst();
    if (!account) throw notFound('There is no such account.');
    if (account.is_break_glass) {
      throw new GatehouseError('break_glass_protected', 403, 'The master (break-glass) account cannot be made a leaver (AC-08): it belongs to the school, not to a person.');
    }
    // A guest-desk account is Gatehouse's own, not a person's: its visit ends at the guest desk (AC-05).
    protectGuestPool(account, 'end the visit there (Guest desk → Visits), which signs the visitor out and clears what they left on the account. A guest account is never a leaver.');
    if (account.role === 'guest') throw new GatehouseError('guest_account', 409, 'Guest accounts end with the visit; they are not leavers.');
    if (account.role === 'administrator' && account.linked_account_id) {
      const everyday = await ctx.db.selectFrom('account').select(['display_name', 'username']).where('id', '=', account.linked_account_id).executeTakeFirst();
      throw new GatehouseError(
        'administrator_account',
        409,
        `This is ${everyday?.display_name ?? 'a person'}’s administrator account. Start the leaver from their everyday account${everyday ? ` (${everyday.username})` : ''}: the administrator account is closed with it.`,
      );
    }
    const adminAccounts = await ctx.db
      .selectFrom('account')
      .selectAll()
      .where('linked_account_id', '=', accountId)
      .where('role', '=', 'administrator')
      .where('is_break_glass', '=', 0)
      .execute();
    await guard?.(ctx, account, adminAccounts);
    if (actor.id === accountId || adminAccounts.some((a) => a.id === actor.id)) {
      throw new GatehouseError('own_account', 409, 'You cannot make yourself a leaver: ask another administrator.');
    }
    const existing = await ctx.db.selectFrom('leaver_checklist').select(['started_at']).where('account_id', '=', accountId).executeTakeFirst();
    if (existing) throw conflict(`${account.display_name} is already a leaver (started ${existing.started_at.slice(0, 10)}); see their checklist.`, 'already_leaver');

    const now = ctx.clock.now();
    const nowIso = now.toISOString();
    const today = isoDay(localDate(now, rt.profile.timeZone));
    const leftOn = input.leftOn ?? today;
    if (leftOn > today) throw validationFailed('The leaving date cannot be in the future: start the leaver on or after their last day, as the account is closed at once.');

    // The account and its administrator account close; every session ends; sign-ins in progress go.
    const closing = [account, ...adminAccounts];
    const ids = closing.map((a) => a.id);
    await ctx.db.updateTable('account').set({ status: 'left', left_at: nowIso, updated_at: nowIso }).where('id', '=', accountId).execute();
    if (adminAccounts.length) await ctx.db.updateTable('account').set({ status: 'disabled', updated_at: nowIso }).where('id', 'in', adminAccounts.map((a) => a.id)).execute();
    const { sessionsEnded, signInsDropped } = await endAccountAccess(ctx, ids, 'account_left');

    const flagged = await flagSecretsHeldBy(ctx, ids, `holder ${account.display_name} left`);

    const done = (id: string, kind: string, label: string, detail: string, notApplicable = false): LeaverItem => ({ id, kind, label, how: 'automatic', done: true, notApplicable, doneAt: nowIso, doneBy: actor.name, detail });
    const items: LeaverItem[] = [
      done('account', 'account_closed', 'Account closed', `${account.username} can no longer sign in.`),
      done('sessions', 'sessions_ended', 'Sessions ended', sessionsEnded === 0 ? 'No session was open.' : `${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'} ended.`),
      adminAccounts.length
        ? done('administrator-account', 'administrator_account_closed', 'Administrator account closed', `${adminAccounts.map((a) => a.username).join(', ')} disabled.`)
        : done('administrator-account', 'administrator_account_closed', 'Administrator account closed', 'Not applicable: they had no administrator account.', true),
      ...flagged.map((s): LeaverItem => ({
        id: `secret-${s.id}`,
        kind: 'shared_secret',
        label: `Change “${s.name}”`,
        how: 'linked',
        done: false,
        doneAt: null,
        doneBy: null,
        detail: 'They knew it. Ticked when the change is recorded on the Shared secrets page.',
        ref: `shared_secret:${s.id}`,
        href: '/secrets',
      })),
    ];
    const leaver: Leaver = { id: account.id, username: account.username, displayName: account.display_name };
    for (const provider of leaverItemProviders) items.push(...(await provider(ctx, leaver)));
    const complete = allDone(items);
    await ctx.db
      .insertInto('leaver_checklist')
      .values({ account_id: accountId, left_on: leftOn, started_at: nowIso, started_by: actor.name, items: JSON.stringify(items), note: input.note || null, completed_at: complete ? nowIso : null })
      .execute();
    await ctx.audit.record({
      action: 'account.left',
      target: `account:${accountId}`,
      severity: 'notice',
      details: {
        username: account.username,
        role: account.role,
        leftOn,
        sessionsEnded,
        signInsDropped,
        administratorAccounts: adminAccounts.map((a) => a.username),
        flaggedForRotation: flagged.map((s) => ({ id: s.id, name: s.name })),
        checklist: items.map((i) => i.id),
      },
    });
    if (complete) await recordCompleted(ctx, accountId, items);
  }, m);
  return getLeaver(rt, accountId);
}

/** A person ticks (or unticks) an item only they can check, such as the equipment returned. */
export async function tickItem(rt: Runtime, actor: Actor, accountId: string, itemId: string, done: boolean, m: Meta = noMeta): Promise<LeaverSummary> {
  await rt.trail.transaction(actor, async (ctx) => {
    const row = await ctx.db.selectFrom('leaver_checklist').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    if (!row) throw notFound('There is no leaver checklist for that account.');
    const items = parseItems(row.items);
    const item = items.find((i) => i.id === itemId);
    if (!item) throw notFound('That checklist has no such item.');
    if (item.how !== 'manual') {
      throw new GatehouseError(
        'item_not_manual',
        409,
        item.how === 'linked' ? `“${item.label}” is ticked when the change is recorded on the Shared secrets page.` : `“${item.label}” was done by Gatehouse when the leaver was started.`,
      );
    }
    if (item.done === done) return;
    const nowIso = ctx.clock.now().toISOString();
    Object.assign(item, done ? { done: true, doneAt: nowIso, doneBy: actor.name } : { done: false, doneAt: null, doneBy: null });
    const complete = allDone(items);
    await ctx.db
      .updateTable('leaver_checklist')
      .set({ items: JSON.stringify(items), completed_at: complete ? row.completed_at ?? nowIso : null })
      .where('account_id', '=', accountId)
      .execute();
    await ctx.audit.record({
      action: done ? 'leaver.item_ticked' : 'leaver.item_unticked',
      target: `account:${accountId}`,
      details: { item: item.id, label: item.label, ...(row.completed_at && !complete ? { reopened: true } : {}) },
    });
    if (complete && !row.completed_at) await recordCompleted(ctx, accountId, items);
  }, m);
  return getLeaver(rt, accountId);
}

// --- The overview -----------------------------------------------------------------------------

export const openLeavers: DueProvider = async (rt) => {
  const { open } = await listLeavers(rt, { completedLimit: 0 });
  return open.map((l) => {
    const waiting = l.items.filter((i) => !i.done).map((i) => i.label);
    return {
      kind: 'leaver',
      title: `Leaver checklist for ${l.displayName} is not complete`,
      detail: `Left on ${new Date(`${l.leftOn}T12:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' })}. Still to do: ${waiting.join('; ')}.`,
      dueAt: null,
      overdue: false,
      href: '/leavers',
      requirement: 'AC-13',
      permission: 'leavers.manage',
    };
  });
};
