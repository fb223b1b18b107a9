import type { Selectable } from 'kysely';
import { isPrivilegedRole, isRole, type Role } from '../core/authz.js';
import type { Actor, AuditEventInput, Ctx } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { AccountTable } from '../db/schema.js';
import { endAccountAccess } from '../identity/sessions.js';
import type { Runtime } from '../runtime.js';
import type { GroupKind, MemberRole } from './groups.js';
import type { BadRow, ImportData, ImportSource, PersonRow } from './import-sources.js';

/**
 * Imports (AC-12): a plan first (what would be created, updated, disabled, left unchanged, and every
 * bad row), then the plan applied in a few large transactions, each person audited (AU-02).
 * People are matched by (source, external id), then by username: a manual account with the same
 * username is adopted. Administrator and master accounts are never touched; leavers and disabled
 * people are reported, never silently re-activated. Imported people get no password: they are
 * issued temporary passwords in Gatehouse (AC-09).
 */

type Account = Pick<
  Selectable<AccountTable>,
  'id' | 'username' | 'display_name' | 'given_name' | 'family_name' | 'email' | 'role' | 'status' | 'source' | 'external_id' | 'is_break_glass' | 'left_at' | 'linked_account_id'
>;

/** Roles an import may leave as they are when the file just says "staff". */
const specificStaffRoles = new Set<string>(['senior_leader', 'dsl', 'dpo', 'office', 'governor']);

const sourceLabels: Record<string, string> = { manual: 'Gatehouse itself', csv: 'CSV imports', sds: 'School Data Sync imports', scim: 'SCIM provisioning', 'guest-pool': 'the guest pool' };

/** Field-level changes: personal details show only that they changed, never their values (the trail keeps them forever). */
export type FieldChanges = Partial<Record<'username' | 'givenName' | 'familyName' | 'displayName' | 'email' | 'role' | 'status' | 'externalId' | 'source', { from: string | null; to: string | null }>>;

export interface PlannedGroup {
  id: string;
  key: string;
  name: string;
  kind: GroupKind;
  externalId: string | null;
}

export interface PlannedCreate {
  id: string;
  file: string;
  line: number;
  username: string;
  displayName: string;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  role: Role;
  status: 'active' | 'disabled';
  externalId: string | null;
  groups: Array<{ groupId: string; name: string; role: MemberRole }>;
}

export interface PlannedUpdate {
  accountId: string;
  file: string;
  line: number;
  username: string;
  displayName: string;
  changes: FieldChanges;
  /** `was`: the person is in the group already, with another role */
  groupsAdded: Array<{ groupId: string; name: string; role: MemberRole; was?: MemberRole }>;
  groupsRemoved: Array<{ groupId: string; name: string }>;
  /** rights or status changed: sessions end */
  endSessions: boolean;
}

export interface PlannedDisable {
  accountId: string;
  username: string;
  displayName: string;
}

export interface PlannedHold {
  accountId: string;
  file: string;
  line: number;
  username: string;
  displayName: string;
  status: string;
  reason: string;
}

export interface ImportPlan {
  source: ImportSource;
  files: string[];
  disableMissing: boolean;
  rows: number;
  created: PlannedCreate[];
  updated: PlannedUpdate[];
  unchanged: Array<{ accountId: string; username: string }>;
  disabled: PlannedDisable[];
  held: PlannedHold[];
  groups: { created: PlannedGroup[]; renamed: Array<{ id: string; name: string; from: string }> };
  bad: BadRow[];
  notes: string[];
}

export interface ImportCounts {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  disabled: number;
  held: number;
  bad: number;
  groupsCreated: number;
  groupsRenamed: number;
  membershipsAdded: number;
  membershipsRemoved: number;
}

export function countsOf(plan: ImportPlan): ImportCounts {
  return {
    rows: plan.rows,
    created: plan.created.length,
    updated: plan.updated.length,
    unchanged: plan.unchanged.length,
    disabled: plan.disabled.length,
    held: plan.held.length,
    bad: plan.bad.length,
    groupsCreated: plan.groups.created.length,
    groupsRenamed: plan.groups.renamed.length,
    membershipsAdded: plan.created.reduce((n, c) => n + c.groups.length, 0) + plan.updated.reduce((n, u) => n + u.groupsAdded.length, 0),
    membershipsRemoved: plan.updated.reduce((n, u) => n + u.groupsRemoved.length, 0),
  };
}

export type ImportProgress = (phase: 'planning' | 'committing', done: number, total: number) => void;

/** Works out what an import would do, reading the directory once; changes nothing. */
export async function planImport(
  rt: Pick<Runtime, 'db'>,
  source: ImportSource,
  data: ImportData,
  options: { disableMissing: boolean },
  onProgress?: ImportProgress,
): Promise<ImportPlan> {
  if (data.source !== source) throw new Error(`planImport: data from ${data.source}, asked for ${source}`);
  const db = rt.db.kysely;
  const accounts: Account[] = await db
    .selectFrom('account')
    .select(['id', 'username', 'display_name', 'given_name', 'family_name', 'email', 'role', 'status', 'source', 'external_id', 'is_break_glass', 'left_at', 'linked_account_id'])
    .execute();
  const groups = await db.selectFrom('directory_group').select(['id', 'name', 'kind', 'source', 'external_id']).execute();
  const memberships = await db.selectFrom('group_member').select(['group_id', 'account_id', 'member_role']).execute();

  const byExternal = new Map<string, Account>();
  const byUsername = new Map<string, Account>();
  for (const a of accounts) {
    byUsername.set(a.username, a);
    if (a.source === source && a.external_id) byExternal.set(a.external_id, a);
  }
  const groupName = new Map(groups.map((g) => [g.id, g.name]));
  const sameSourceGroups = new Set(groups.filter((g) => g.source === source).map((g) => g.id));
  const membershipsOf = new Map<string, Map<string, string>>();
  for (const m of memberships) {
    let mine = membershipsOf.get(m.account_id);
    if (!mine) membershipsOf.set(m.account_id, (mine = new Map()));
    mine.set(m.group_id, m.member_role);
  }

  // Groups: SDS classes by their sourcedId; CSV groups by kind and name, whoever made them.
  const groupIdOf = new Map<string, string>();
  const plannedGroups: PlannedGroup[] = [];
  const renamed: ImportPlan['groups']['renamed'] = [];
  const byExternalGroup = new Map(groups.filter((g) => g.source === source && g.external_id).map((g) => [g.external_id!, g]));
  const byNameGroup = new Map<string, (typeof groups)[number]>();
  for (const g of groups) {
    const key = `${g.kind}:${g.name.toLowerCase()}`;
    const seen = byNameGroup.get(key);
    // Prefer a group this source made, then the oldest.
    if (!seen || (seen.source !== source && g.source === source)) byNameGroup.set(key, g);
  }
  for (const g of data.groups) {
    const existing = g.externalId ? byExternalGroup.get(g.externalId) : byNameGroup.get(g.key);
    if (existing) {
      groupIdOf.set(g.key, existing.id);
      if (g.externalId && existing.name !== g.name) renamed.push({ id: existing.id, name: g.name, from: existing.name });
    } else {
      const id = newId();
      groupIdOf.set(g.key, id);
      groupName.set(id, g.name);
      sameSourceGroups.add(id);
      plannedGroups.push({ id, key: g.key, name: g.name, kind: g.kind, externalId: g.externalId });
    }
  }

  const plan: ImportPlan = {
    source,
    files: data.files,
    disableMissing: options.disableMissing,
    rows: data.rows,
    created: [],
    updated: [],
    unchanged: [],
    disabled: [],
    held: [],
    groups: { created: plannedGroups, renamed },
    bad: [...data.bad],
    notes: [...data.notes],
  };
  const claimed = new Map<string, number>();
  const refusedUsernames = new Set(data.refused.usernames);
  const refusedExternal = new Set(data.refused.externalIds);
  const refuse = (row: PersonRow, reason: string) => {
    plan.bad.push({ file: row.file, line: row.line, reason });
    refusedUsernames.add(row.username);
    if (row.externalId) refusedExternal.add(row.externalId);
  };
  const desiredGroups = (row: PersonRow) => new Map((row.groups ?? []).map((g) => [groupIdOf.get(g.key)!, g.role] as const));

  let done = 0;
  for (const row of data.people) {
    if (++done % 1000 === 0) onProgress?.('planning', done, data.people.length);
    let account = row.externalId ? byExternal.get(row.externalId) : undefined;
    if (!account) {
      const same = byUsername.get(row.username);
      if (same) {
        if (same.source === source && same.external_id && row.externalId && same.external_id !== row.externalId) {
          refuse(row, `the username "${row.username}" belongs to another person from ${sourceLabels[source]} (id "${same.external_id}", not "${row.externalId}")`);
          continue;
        }
        if (same.source !== source && same.source !== 'manual') {
          refuse(row, `the username "${row.username}" belongs to an account managed by ${sourceLabels[same.source] ?? same.source}; an import does not take it over`);
          continue;
        }
        account = same;
      }
    }
    if (!account) {
      const groupsOf = [...desiredGroups(row)].map(([groupId, role]) => ({ groupId, name: groupName.get(groupId)!, role }));
      plan.created.push({
        id: newId(),
        file: row.file,
        line: row.line,
        username: row.username,
        displayName: row.displayName ?? row.username,
        givenName: row.givenName ?? null,
        familyName: row.familyName ?? null,
        email: row.email ?? null,
        role: row.role,
        status: row.status ?? 'active',
        externalId: row.externalId,
        groups: groupsOf,
      });
      continue;
    }
    if (account.is_break_glass || account.role === 'administrator') {
      refuse(row, `"${account.username}" is ${account.is_break_glass ? 'the master (break-glass) account' : 'an administrator account'}: imports never change it`);
      continue;
    }
    const earlier = claimed.get(account.id);
    if (earlier !== undefined) {
      refuse(row, `matches the same person ("${account.username}") as line ${earlier}`);
      continue;
    }
    claimed.set(account.id, row.line);
    if (account.status === 'left') {
      plan.held.push({ accountId: account.id, file: row.file, line: row.line, username: account.username, displayName: account.display_name, status: account.status, reason: `left the school${account.left_at ? ` on ${account.left_at.slice(0, 10)}` : ''}; the import does not bring leavers back: if they have returned, re-activate them from Accounts` });
      continue;
    }
    if (account.status === 'disabled' && row.status === undefined) {
      plan.held.push({ accountId: account.id, file: row.file, line: row.line, username: account.username, displayName: account.display_name, status: account.status, reason: 'is disabled in Gatehouse and stays disabled; enable them from Accounts if they should have access' });
      continue;
    }

    const changes: FieldChanges = {};
    const change = (field: keyof FieldChanges, from: string | null, to: string | null | undefined) => {
      if (to !== undefined && (from ?? null) !== (to ?? null)) changes[field] = { from: from ?? null, to: to ?? null };
    };
    if (row.username !== account.username) {
      const holder = byUsername.get(row.username);
      if (holder && holder.id !== account.id) {
        refuse(row, `would rename "${account.username}" to "${row.username}", which another account already has`);
        continue;
      }
      change('username', account.username, row.username);
    }
    change('givenName', account.given_name, row.givenName);
    change('familyName', account.family_name, row.familyName);
    change('displayName', account.display_name, row.displayName);
    change('email', account.email, row.email);
    // "staff" in a file does not demote a senior leader, DSL or DPO recorded in Gatehouse.
    const role = row.role === 'staff' && specificStaffRoles.has(account.role) ? account.role : row.role;
    change('role', account.role, role);
    change('status', account.status, row.status);
    change('source', account.source, source);
    if (row.externalId) change('externalId', account.external_id, row.externalId);

    const groupsAdded: PlannedUpdate['groupsAdded'] = [];
    const groupsRemoved: PlannedUpdate['groupsRemoved'] = [];
    if (row.groups) {
      const desired = desiredGroups(row);
      const current = membershipsOf.get(account.id) ?? new Map<string, string>();
      for (const [groupId, memberRole] of desired) {
        const was = current.get(groupId) as MemberRole | undefined;
        if (was !== memberRole) groupsAdded.push({ groupId, name: groupName.get(groupId)!, role: memberRole, ...(was ? { was } : {}) });
      }
      for (const groupId of current.keys()) {
        if (sameSourceGroups.has(groupId) && !desired.has(groupId)) groupsRemoved.push({ groupId, name: groupName.get(groupId)! });
      }
    }
    if (Object.keys(changes).length === 0 && groupsAdded.length === 0 && groupsRemoved.length === 0) {
      plan.unchanged.push({ accountId: account.id, username: account.username });
      continue;
    }
    // The old username stays taken until this commit: a later row wanting it is refused, not raced.
    byUsername.set(row.username, account);
    plan.updated.push({
      accountId: account.id,
      file: row.file,
      line: row.line,
      username: row.username,
      displayName: row.displayName ?? account.display_name,
      changes,
      groupsAdded,
      groupsRemoved,
      endSessions: changes.role !== undefined || changes.status?.to === 'disabled',
    });
  }

  if (options.disableMissing) {
    for (const a of accounts) {
      if (a.source !== source || a.status !== 'active' || claimed.has(a.id) || a.is_break_glass || a.role === 'administrator') continue;
      // A person whose row was refused is not "missing": a typo must not lock a pupil out.
      if (refusedUsernames.has(a.username) || (a.external_id && refusedExternal.has(a.external_id))) continue;
      plan.disabled.push({ accountId: a.id, username: a.username, displayName: a.display_name });
    }
    // Their separate administrator accounts are out of an import's reach (AC-07): say so.
    const adminOf = new Map(accounts.filter((a) => a.role === 'administrator' && a.linked_account_id && a.status === 'active').map((a) => [a.linked_account_id!, a.username]));
    for (const d of plan.disabled) {
      const admin = adminOf.get(d.accountId);
      if (admin) plan.notes.push(`${d.displayName} (${d.username}) also has the administrator account "${admin}", which an import does not change: close it with the leaver checklist.`);
    }
    if (plan.disabled.length > 0 && data.people.length === 0) {
      throw new GatehouseError('import_empty', 400, `Nobody in the file could be imported, so --disable-missing would disable all ${plan.disabled.length} people from ${sourceLabels[source]}. Check the file and its column mapping.`);
    }
  }
  plan.bad.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  onProgress?.('planning', data.people.length, data.people.length);
  return plan;
}

export interface ImportResult {
  importId: string;
  counts: ImportCounts;
}

/** People per transaction: large enough to be fast, small enough not to hold the write lock for long. */
const CHUNK = 1000;
/** Rows per INSERT: inside SQLite's and PostgreSQL's bound-parameter limits. */
const ROWS_PER_INSERT = 500;

function writeMany(ctx: Ctx, events: AuditEventInput[]): Promise<unknown> {
  const writer = ctx.audit as Ctx['audit'] & { recordMany?: (e: AuditEventInput[]) => Promise<number[]> };
  if (writer.recordMany) return writer.recordMany(events);
  return events.reduce<Promise<unknown>>((p, e) => p.then(() => ctx.audit.record(e)), Promise.resolve());
}

async function inChunks<T>(items: T[], size: number, work: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await work(items.slice(i, i + size));
}

const raced = (error: unknown) => /unique|duplicate key|foreign key/i.test((error as Error).message ?? '');

/**
 * Commits a plan. Groups first, then people a thousand at a time (multi-row inserts, one audit
 * batch per chunk), then the disabled, then one `import.committed` summary. A re-run of the same
 * file finds everything unchanged and records only the summary.
 */
/** Whether running the plan would give anyone a privileged role (a new account with one, or a role changed to one). */
export function grantsPrivilegedRole(plan: Pick<ImportPlan, 'created' | 'updated'>): boolean {
  return plan.created.some((c) => isPrivilegedRole(c.role)) || plan.updated.some((u) => u.changes.role?.to != null && isRole(u.changes.role.to) && isPrivilegedRole(u.changes.role.to));
}

export async function applyImport(
  rt: Pick<Runtime, 'trail'>,
  actor: Actor,
  plan: ImportPlan,
  meta: { ip?: string | null; requestId?: string | null } = {},
  onProgress?: ImportProgress,
): Promise<ImportResult> {
  const importId = newId();
  const counts = countsOf(plan);
  const via = { via: 'import', source: plan.source, importId };
  const total = plan.created.length + plan.updated.length + plan.disabled.length;
  let done = 0;
  const run = async (work: (ctx: Ctx) => Promise<void>) => {
    try {
      await rt.trail.transaction(actor, work, meta);
    } catch (error) {
      if (raced(error)) {
        throw new GatehouseError('import_conflict', 409, 'The directory changed while this import was being prepared (someone added or renamed an account or group). Run the import again: what was already imported is left as it is.');
      }
      throw error;
    }
  };

  if (plan.groups.created.length || plan.groups.renamed.length) {
    await run(async (ctx) => {
      const now = ctx.clock.now().toISOString();
      await inChunks(plan.groups.created, ROWS_PER_INSERT, (chunk) =>
        ctx.db.insertInto('directory_group').values(chunk.map((g) => ({ id: g.id, name: g.name, kind: g.kind, external_id: g.externalId, source: plan.source, created_at: now, updated_at: now }))).execute(),
      );
      for (const g of plan.groups.renamed) await ctx.db.updateTable('directory_group').set({ name: g.name, updated_at: now }).where('id', '=', g.id).execute();
      await writeMany(ctx, [
        ...plan.groups.created.map((g) => ({ action: 'group.created', target: `group:${g.id}`, details: { name: g.name, kind: g.kind, ...(g.externalId ? { externalId: g.externalId } : {}), ...via } })),
        ...plan.groups.renamed.map((g) => ({ action: 'group.changed', target: `group:${g.id}`, details: { name: g.name, changes: { name: { from: g.from, to: g.name } }, ...via } })),
      ]);
    });
  }

  const people: Array<{ create?: PlannedCreate; update?: PlannedUpdate }> = [...plan.created.map((create) => ({ create })), ...plan.updated.map((update) => ({ update }))];
  await inChunks(people, CHUNK, (chunk) =>
    run(async (ctx) => {
      const now = ctx.clock.now().toISOString();
      const creates = chunk.flatMap((p) => (p.create ? [p.create] : []));
      const updates = chunk.flatMap((p) => (p.update ? [p.update] : []));
      await inChunks(creates, ROWS_PER_INSERT, (rows) =>
        ctx.db
          .insertInto('account')
          .values(
            rows.map((c) => ({
              id: c.id,
              username: c.username,
              display_name: c.displayName,
              email: c.email,
              role: c.role,
              password_hash: null,
              status: c.status,
              given_name: c.givenName,
              family_name: c.familyName,
              external_id: c.externalId,
              source: plan.source,
              is_break_glass: 0,
              created_at: now,
              updated_at: now,
              linked_account_id: null,
              password_set_at: null,
              must_change_password: 0,
              temporary_expires_at: null,
            })),
          )
          .execute(),
      );
      for (const u of updates) {
        const set: Record<string, string | null> = {};
        const columns = { username: 'username', givenName: 'given_name', familyName: 'family_name', displayName: 'display_name', email: 'email', role: 'role', status: 'status', externalId: 'external_id', source: 'source' } as const;
        for (const [field, value] of Object.entries(u.changes)) set[columns[field as keyof typeof columns]] = value.to;
        if (Object.keys(set).length) await ctx.db.updateTable('account').set({ ...set, updated_at: now }).where('id', '=', u.accountId).execute();
      }
      // A changed role or a disabled account: sessions end and sign-ins in progress are dropped.
      await endAccountAccess(ctx, updates.filter((u) => u.endSessions).map((u) => u.accountId), 'privileges_changed');
      const removals = updates.flatMap((u) => u.groupsRemoved.map((g) => ({ groupId: g.groupId, accountId: u.accountId })));
      const adds = [
        ...creates.flatMap((c) => c.groups.map((g) => ({ group_id: g.groupId, account_id: c.id, member_role: g.role, added_at: now }))),
        ...updates.flatMap((u) => u.groupsAdded.map((g) => ({ group_id: g.groupId, account_id: u.accountId, member_role: g.role, added_at: now }))),
      ];
      // A changed role in a group is a remove and an add.
      const replaced = updates.flatMap((u) => u.groupsAdded.filter((g) => g.was).map((g) => ({ groupId: g.groupId, accountId: u.accountId })));
      for (const r of [...removals, ...replaced]) await ctx.db.deleteFrom('group_member').where('group_id', '=', r.groupId).where('account_id', '=', r.accountId).execute();
      await inChunks(adds, ROWS_PER_INSERT, (rows) => ctx.db.insertInto('group_member').values(rows).execute());
      await writeMany(ctx, [
        ...creates.map((c) => ({
          action: 'account.created',
          target: `account:${c.id}`,
          details: {
            username: c.username,
            role: c.role,
            breakGlass: false,
            mustChangeAtFirstSignIn: false,
            ...(c.externalId ? { externalId: c.externalId } : {}),
            ...(c.status === 'disabled' ? { status: 'disabled' } : {}),
            groups: c.groups.map((g) => (g.role === 'teacher' ? `${g.name} (teacher)` : g.name)),
            file: c.file,
            line: c.line,
            ...via,
          },
        })),
        ...updates.map((u) => ({
          action: 'account.changed',
          target: `account:${u.accountId}`,
          severity: u.changes.role || u.changes.status ? ('notice' as const) : ('info' as const),
          details: {
            username: u.username,
            changes: auditableChanges(u.changes),
            ...(u.groupsAdded.length ? { groupsAdded: u.groupsAdded.map((g) => (g.role === 'teacher' ? `${g.name} (teacher)` : g.name)) } : {}),
            ...(u.groupsRemoved.length ? { groupsRemoved: u.groupsRemoved.map((g) => g.name) } : {}),
            file: u.file,
            line: u.line,
            ...via,
          },
        })),
      ]);
      done += chunk.length;
      onProgress?.('committing', done, total);
    }),
  );

  await inChunks(plan.disabled, CHUNK, (chunk) =>
    run(async (ctx) => {
      const now = ctx.clock.now().toISOString();
      const ids = chunk.map((d) => d.accountId);
      for (let i = 0; i < ids.length; i += ROWS_PER_INSERT) {
        const some = ids.slice(i, i + ROWS_PER_INSERT);
        // Only what is still active from this source: a change since the plan is not overridden.
        await ctx.db.updateTable('account').set({ status: 'disabled', updated_at: now }).where('id', 'in', some).where('status', '=', 'active').execute();
        await endAccountAccess(ctx, some, 'account_disabled');
      }
      await writeMany(
        ctx,
        chunk.map((d) => ({
          action: 'account.changed',
          target: `account:${d.accountId}`,
          severity: 'notice' as const,
          details: { username: d.username, changes: { status: { from: 'active', to: 'disabled' } }, reason: 'no longer in the import file', ...via },
        })),
      );
      done += chunk.length;
      onProgress?.('committing', done, total);
    }),
  );

  await run(async (ctx) => {
    await ctx.audit.record({
      action: 'import.committed',
      target: 'directory',
      severity: 'notice',
      details: { importId, source: plan.source, files: plan.files, disableMissing: plan.disableMissing, by: actor.name, counts: { ...counts } },
    });
  });
  onProgress?.('committing', total, total);
  return { importId, counts };
}

/** Role, status, username, source and external id are recorded with their values; names and e-mail only as changed. */
function auditableChanges(changes: FieldChanges): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(changes)) {
    out[field] = ['givenName', 'familyName', 'displayName', 'email'].includes(field) ? 'changed' : value;
  }
  return out;
}

// --- What people see --------------------------------------------------------------------------

export interface PlanSummary {
  source: ImportSource;
  files: string[];
  disableMissing: boolean;
  counts: ImportCounts;
  created: Array<Pick<PlannedCreate, 'file' | 'line' | 'username' | 'displayName' | 'role' | 'status' | 'externalId'> & { groups: string[] }>;
  updated: Array<Pick<PlannedUpdate, 'file' | 'line' | 'username' | 'displayName' | 'changes'> & { groupsAdded: string[]; groupsRemoved: string[] }>;
  disabled: PlannedDisable[];
  held: PlannedHold[];
  unchanged: string[];
  groups: { created: Array<{ name: string; kind: string; externalId: string | null }>; renamed: Array<{ name: string; from: string }> };
  bad: BadRow[];
  notes: string[];
}

/** The plan for a person to read: counts, the first `sample` of each list, and every bad row. */
export function describePlan(plan: ImportPlan, sample = 20): PlanSummary {
  const first = <T>(list: T[]) => list.slice(0, sample);
  const label = (g: { name: string; role: MemberRole }) => (g.role === 'teacher' ? `${g.name} (teacher)` : g.name);
  return {
    source: plan.source,
    files: plan.files,
    disableMissing: plan.disableMissing,
    counts: countsOf(plan),
    created: first(plan.created).map((c) => ({ file: c.file, line: c.line, username: c.username, displayName: c.displayName, role: c.role, status: c.status, externalId: c.externalId, groups: c.groups.map(label) })),
    updated: first(plan.updated).map((u) => ({ file: u.file, line: u.line, username: u.username, displayName: u.displayName, changes: u.changes, groupsAdded: u.groupsAdded.map(label), groupsRemoved: u.groupsRemoved.map((g) => g.name) })),
    disabled: first(plan.disabled),
    held: first(plan.held),
    unchanged: first(plan.unchanged).map((u) => u.username),
    groups: { created: first(plan.groups.created).map((g) => ({ name: g.name, kind: g.kind, externalId: g.externalId })), renamed: first(plan.groups.renamed).map((g) => ({ name: g.name, from: g.from })) },
    bad: plan.bad,
    notes: plan.notes,
  };
}
