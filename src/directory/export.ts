import { roleLabels, type Role } from '../core/authz.js';
import { csvField } from '../core/csv.js';
import type { Actor } from '../core/context.js';
import { listAccounts, type listQuerySchema } from '../identity/accounts.js';
import type { Runtime } from '../runtime.js';
import type { z } from 'zod';
import { membershipsOf } from './groups.js';


export const EXPORT_COLUMNS = ['username', 'display_name', 'given_name', 'family_name', 'email', 'role', 'status', 'groups', 'teaches', 'administrator_account', 'linked_to', 'external_id', 'source', 'created_at', 'left_at'];

/** AC-12: the directory (filtered as the list is) as CSV with a BOM for Excel; the export is audited. */
export async function exportDirectoryCsv(rt: Runtime, actor: Actor, query: Omit<Partial<z.infer<typeof listQuerySchema>>, 'limit' | 'offset'>, m: { ip: string | null; requestId: string | null }): Promise<string> {
  const { accounts } = await listAccounts(rt, { ...query, limit: 100_000, offset: 0 });
  const groups = await membershipsOf(rt.db.kysely, accounts.map((a) => a.id));
  const usernames = new Map(accounts.map((a) => [a.id, a.username]));
  const admins = await rt.db.kysely.selectFrom('account').select(['username', 'linked_account_id']).where('role', '=', 'administrator').where('linked_account_id', 'is not', null).execute();
  const adminOf = new Map(admins.map((a) => [a.linked_account_id!, a.username]));
  const lines = [EXPORT_COLUMNS.join(',')];
  for (const a of accounts) {
    const mine = groups.get(a.id) ?? [];
    lines.push(
      [
        a.username, a.displayName, a.givenName, a.familyName, a.email, roleLabels[a.role as Role] ?? a.role, a.status,
        mine.filter((g) => g.role === 'member').map((g) => g.name).join('; '),
        mine.filter((g) => g.role === 'teacher').map((g) => g.name).join('; '),
        adminOf.get(a.id) ?? '', a.linkedAccountId ? (usernames.get(a.linkedAccountId) ?? a.linkedAccountId) : '',
        a.externalId, a.source, a.createdAt, a.leftAt,
      ].map(csvField).join(','),
    );
  }
  await rt.trail.transaction(actor, (ctx) =>
    ctx.audit.record({ action: 'directory.exported', target: 'directory', severity: 'notice', details: { rows: accounts.length, filters: query } }), m);
  return `\uFEFF${lines.join('\r\n')}\r\n`;
}
