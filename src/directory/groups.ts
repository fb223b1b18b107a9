import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Ctx } from '../core/context.js';
import { conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Schema } from '../db/schema.js';

/**
 * Groups of the directory (AC-12): year groups, classes, departments. A class's teachers are members
 * with the `teacher` role; that is what the object-level rule "a teacher resets passwords only for
 * pupils in their own classes" reads (AC-03).
 */
export const groupKinds = ['year', 'class', 'department', 'other'] as const;
export type GroupKind = (typeof groupKinds)[number];
export const memberRoles = ['member', 'teacher'] as const;
export type MemberRole = (typeof memberRoles)[number];

export const groupInputSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(200),
  kind: z.enum(groupKinds, { error: `must be one of ${groupKinds.join(', ')}` }),
});

export interface GroupSummary {
  id: string;
  name: string;
  kind: GroupKind;
  source: string;
  externalId: string | null;
  members: number;
  teachers: number;
}

export async function listGroups(db: Kysely<Schema>): Promise<GroupSummary[]> {
  const rows = await db
    .selectFrom('directory_group as g')
    .leftJoin('group_member as m', 'm.group_id', 'g.id')
    .select((eb) => [
      'g.id',
      'g.name',
      'g.kind',
      'g.source',
      'g.external_id',
      eb.fn.count<number>('m.account_id').filterWhere('m.member_role', '=', 'member').as('members'),
      eb.fn.count<number>('m.account_id').filterWhere('m.member_role', '=', 'teacher').as('teachers'),
    ])
    .groupBy(['g.id', 'g.name', 'g.kind', 'g.source', 'g.external_id'])
    .orderBy('g.kind')
    .orderBy('g.name')
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, kind: r.kind as GroupKind, source: r.source, externalId: r.external_id, members: Number(r.members), teachers: Number(r.teachers) }));
}

export async function loadGroup(db: Kysely<Schema>, id: string) {
  const group = await db.selectFrom('directory_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!group) throw notFound('There is no such group.');
  return group;
}

export async function createGroup(ctx: Ctx, input: z.infer<typeof groupInputSchema> & { externalId?: string | null; source?: string }): Promise<string> {
  const source = input.source ?? 'manual';
  if (input.externalId) {
    const clash = await ctx.db.selectFrom('directory_group').select('id').where('source', '=', source).where('external_id', '=', input.externalId).executeTakeFirst();
    if (clash) throw conflict(`A group with the id "${input.externalId}" already exists.`, 'group_exists');
  }
  const id = newId();
  const now = ctx.clock.now().toISOString();
  await ctx.db.insertInto('directory_group').values({ id, name: input.name, kind: input.kind, external_id: input.externalId ?? null, source, created_at: now, updated_at: now }).execute();
  await ctx.audit.record({ action: 'group.created', target: `group:${id}`, details: { name: input.name, kind: input.kind, source } });
  return id;
}

export async function updateGroup(ctx: Ctx, id: string, input: Partial<z.infer<typeof groupInputSchema>> & { externalId?: string | null }): Promise<void> {
  const group = await ctx.db.selectFrom('directory_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!group) throw notFound('There is no such group.');
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  if (input.name !== undefined && input.name !== group.name) changes.name = { from: group.name, to: input.name };
  if (input.kind !== undefined && input.kind !== group.kind) changes.kind = { from: group.kind, to: input.kind };
  if (input.externalId !== undefined && input.externalId !== group.external_id) {
    if (input.externalId) {
      const clash = await ctx.db.selectFrom('directory_group').select('id').where('source', '=', group.source).where('external_id', '=', input.externalId).where('id', '!=', id).executeTakeFirst();
      if (clash) throw conflict(`A group with the id "${input.externalId}" already exists.`, 'group_exists');
    }
    changes.externalId = { from: group.external_id, to: input.externalId };
  }
  if (Object.keys(changes).length === 0) return;
  await ctx.db
    .updateTable('directory_group')
    .set({ ...(input.name !== undefined ? { name: input.name } : {}), ...(input.kind !== undefined ? { kind: input.kind } : {}), ...(changes.externalId ? { external_id: input.externalId ?? null } : {}), updated_at: ctx.clock.now().toISOString() })
    .where('id', '=', id)
    .execute();
  await ctx.audit.record({ action: 'group.changed', target: `group:${id}`, details: { name: input.name ?? group.name, changes } });
}

export async function deleteGroup(ctx: Ctx, id: string): Promise<void> {
  const group = await ctx.db.selectFrom('directory_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!group) throw notFound('There is no such group.');
  const members = await ctx.db.selectFrom('group_member').select((eb) => eb.fn.countAll<number>().as('n')).where('group_id', '=', id).executeTakeFirstOrThrow();
  await ctx.db.deleteFrom('access_grant').where('subject', '=', `group:${id}`).execute();
  await ctx.db.deleteFrom('directory_group').where('id', '=', id).execute();
  await ctx.audit.record({ action: 'group.deleted', target: `group:${id}`, severity: 'notice', details: { name: group.name, kind: group.kind, members: Number(members.n) } });
}

/** Adds or changes one membership; returns whether anything changed. */
export async function setMembership(ctx: Ctx, groupId: string, accountId: string, role: MemberRole, audit = true): Promise<boolean> {
  const existing = await ctx.db.selectFrom('group_member').select('member_role').where('group_id', '=', groupId).where('account_id', '=', accountId).executeTakeFirst();
  if (existing?.member_role === role) return false;
  if (existing) await ctx.db.updateTable('group_member').set({ member_role: role }).where('group_id', '=', groupId).where('account_id', '=', accountId).execute();
  else await ctx.db.insertInto('group_member').values({ group_id: groupId, account_id: accountId, member_role: role, added_at: ctx.clock.now().toISOString() }).execute();
  if (audit) await ctx.audit.record({ action: 'group.member_added', target: `group:${groupId}`, details: { accountId, role, ...(existing ? { was: existing.member_role } : {}) } });
  return true;
}

export async function removeMembership(ctx: Ctx, groupId: string, accountId: string, audit = true): Promise<boolean> {
  const result = await ctx.db.deleteFrom('group_member').where('group_id', '=', groupId).where('account_id', '=', accountId).executeTakeFirst();
  const removed = Number(result.numDeletedRows ?? 0) > 0;
  if (removed && audit) await ctx.audit.record({ action: 'group.member_removed', target: `group:${groupId}`, details: { accountId } });
  return removed;
}

export interface Membership {
  groupId: string;
  name: string;
  kind: GroupKind;
  role: MemberRole;
}

/** The groups of many accounts at once (one query). */
export async function membershipsOf(db: Kysely<Schema>, accountIds: string[]): Promise<Map<string, Membership[]>> {
  const out = new Map<string, Membership[]>();
  for (let i = 0; i < accountIds.length; i += 500) {
    const chunk = accountIds.slice(i, i + 500);
    if (chunk.length === 0) break;
    const rows = await db
      .selectFrom('group_member as m')
      .innerJoin('directory_group as g', 'g.id', 'm.group_id')
      .select(['m.account_id', 'g.id', 'g.name', 'g.kind', 'm.member_role'])
      .where('m.account_id', 'in', chunk)
      .orderBy('g.kind')
      .orderBy('g.name')
      .execute();
    for (const r of rows) {
      const list = out.get(r.account_id) ?? [];
      list.push({ groupId: r.id, name: r.name, kind: r.kind as GroupKind, role: r.member_role as MemberRole });
      out.set(r.account_id, list);
    }
  }
  return out;
}

export interface GroupMember {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  status: string;
  memberRole: MemberRole;
}

export async function membersOf(db: Kysely<Schema>, groupId: string): Promise<GroupMember[]> {
  const rows = await db
    .selectFrom('group_member as m')
    .innerJoin('account as a', 'a.id', 'm.account_id')
    .select(['a.id', 'a.username', 'a.display_name', 'a.role', 'a.status', 'm.member_role'])
    .where('m.group_id', '=', groupId)
    .orderBy('m.member_role', 'desc')
    .orderBy('a.display_name')
    .execute();
  return rows.map((r) => ({ accountId: r.id, username: r.username, displayName: r.display_name, role: r.role, status: r.status, memberRole: r.member_role as MemberRole }));
}

/** AC-03, object level: does this person teach a class (or group) the pupil is a member of? */
export async function teaches(db: Kysely<Schema>, teacherId: string, pupilId: string): Promise<boolean> {
  const row = await db
    .selectFrom('group_member as t')
    .innerJoin('group_member as p', 'p.group_id', 't.group_id')
    .select('t.group_id')
    .where('t.account_id', '=', teacherId)
    .where('t.member_role', '=', 'teacher')
    .where('p.account_id', '=', pupilId)
    .where('p.member_role', '=', 'member')
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
