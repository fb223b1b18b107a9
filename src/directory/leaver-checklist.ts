import type { Ctx } from '../core/context.js';

/**
 * The items of a leaver checklist (AC-13) and how they are ticked. Kept apart from the leaver action
 * itself so that the registers that hold a leaver's items (the shared-secrets register today, the
 * equipment register later) can tick them without importing the leaver module: they call
 * `completeLinkedItems` with the record they just settled.
 */
export interface LeaverItem {
  /** stable within one checklist: "account", "sessions", "administrator-account", "secret-<id>", "equipment" */
  id: string;
  /** account_closed, sessions_ended, administrator_account_closed, shared_secret, equipment_returned */
  kind: string;
  label: string;
  /**
   * automatic: done by the leaver action itself; linked: done when another record says so (a
   * rotation recorded, a loan returned); manual: a person ticks it.
   */
  how: 'automatic' | 'linked' | 'manual';
  done: boolean;
  /** done because there was nothing to do (e.g. no administrator account) */
  notApplicable?: boolean;
  doneAt: string | null;
  doneBy: string | null;
  detail?: string | null;
  /** for linked items, the record that settles it: "shared_secret:<id>", later "equipment_loan:<id>" */
  ref?: string | null;
  /** where in the console to act on it */
  href?: string | null;
}

export function parseItems(text: string): LeaverItem[] {
  return JSON.parse(text) as LeaverItem[];
}

export const allDone = (items: LeaverItem[]) => items.every((i) => i.done);

/**
 * Marks done every open checklist item that waits on `ref` (e.g. "shared_secret:<id>"), and completes
 * the checklists that have nothing left. Runs in the caller's transaction; records `leaver.completed`
 * for each checklist it completes. Returns the leavers whose checklists it touched.
 */
export async function completeLinkedItems(ctx: Ctx, ref: string, detail: string): Promise<Array<{ accountId: string; completed: boolean }>> {
  // Open checklists are few (people leave a handful at a time), so they are read whole.
  const open = await ctx.db.selectFrom('leaver_checklist').select(['account_id', 'items']).where('completed_at', 'is', null).execute();
  const touched: Array<{ accountId: string; completed: boolean }> = [];
  const now = ctx.clock.now().toISOString();
  for (const row of open) {
    const items = parseItems(row.items);
    let changed = false;
    for (const item of items) {
      if (item.ref === ref && !item.done) {
        Object.assign(item, { done: true, doneAt: now, doneBy: ctx.actor.name, detail });
        changed = true;
      }
    }
    if (!changed) continue;
    const completed = allDone(items);
    await ctx.db
      .updateTable('leaver_checklist')
      .set({ items: JSON.stringify(items), ...(completed ? { completed_at: now } : {}) })
      .where('account_id', '=', row.account_id)
      .execute();
    if (completed) await recordCompleted(ctx, row.account_id, items);
    touched.push({ accountId: row.account_id, completed });
  }
  return touched;
}

export async function recordCompleted(ctx: Ctx, accountId: string, items: LeaverItem[]): Promise<void> {
  await ctx.audit.record({
    action: 'leaver.completed',
    target: `account:${accountId}`,
    severity: 'notice',
    details: { items: items.map((i) => ({ id: i.id, label: i.label, doneBy: i.doneBy, notApplicable: i.notApplicable === true })) },
  });
}
