import type { Kysely } from 'kysely';
import { z } from 'zod';
import { can, isRole, permissions, roleLabels, roles, type Permission, type Role } from '../core/authz.js';
import type { Ctx } from '../core/context.js';
import { conflict, notFound, validationFailed } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Schema } from '../db/schema.js';

/**
 * The access-rights matrix (AC-01): who can do what, in Gatehouse itself and in the school systems
 * the school lists. The Gatehouse half is read from `core/authz` (the table every route is checked
 * against), so it cannot drift from what the code enforces; the school-systems half is recorded here
 * by the school (system × role or directory group → none/read/edit/admin).
 */

// --- Gatehouse itself ---------------------------------------------------------------------------

/** Column headings for a matrix that must fit a laptop screen; the full label goes beside them. */
export const roleShortLabels: Record<Role, string> = {
  administrator: 'IT admin',
  senior_leader: 'Senior leader',
  dsl: 'DSL',
  dpo: 'DPO',
  governor: 'Governor',
  office: 'Office',
  staff: 'Staff',
  pupil: 'Pupil',
  guest: 'Guest',
};

/** Headings for the permission areas (the part before the dot); an area not named here shows as itself. */
const areaLabels: Record<string, string> = {
  school: 'School record',
  audit: 'Audit trail',
  system: 'Server',
  accounts: 'Accounts',
  aup: 'Acceptable Use Policy',
  profile: 'Policy profile',
  directory: 'Directory',
  access: 'Access rights',
  guests: 'Guests',
  resets: 'Password resets',
  leavers: 'Leavers',
  secrets: 'Shared secrets',
};

export interface GatehouseMatrix {
  roles: Array<{ role: Role; label: string; shortLabel: string }>;
  permissions: Array<{ permission: Permission; area: string; description: string; roles: Role[] }>;
}

export function gatehouseMatrix(): GatehouseMatrix {
  return {
    roles: roles.map((role) => ({ role, label: roleLabels[role], shortLabel: roleShortLabels[role] })),
    permissions: (Object.keys(permissions) as Permission[]).map((permission) => {
      const area = permission.split('.')[0]!;
      return { permission, area: areaLabels[area] ?? area, description: permissions[permission], roles: roles.filter((role) => can(role, permission)) };
    }),
  };
}

// --- Object-level rules (AC-03) -----------------------------------------------------------------

/**
 * The rules that a role alone does not express: which records a person may reach. They are
 * enforced where the records are (named in `enforcedBy`); this is the one list the matrix, the
 * console, the CLI and the review snapshot show, so keep it in step when a rule changes.
 */
export interface ObjectRule {
  id: string;
  requirement: string;
  rule: string;
  enforcedBy: string;
}

export const objectRules: ObjectRule[] = [
  {
    id: 'own-pupils-reset',
    requirement: 'AC-03, AC-10',
    rule: 'Staff may reset pupils’ passwords only for pupils in classes they teach (recorded as the class’s teacher in the directory). IT administrators may reset any pupil’s password.',
    enforcedBy: 'password resets (the directory’s class teachers)',
  },
  {
    id: 'staff-reset-second-person',
    requirement: 'AC-11',
    rule: 'A staff member’s password is reset only after a second authorised person, not the one who asked, approves the request.',
    enforcedBy: 'password resets (approval step)',
  },
  {
    id: 'own-account-only',
    requirement: 'AC-03',
    rule: 'Everyone sees and changes only their own account under My account: their password, sessions, authenticator app and passkeys. Pupils and guests reach no one else’s records.',
    enforcedBy: 'My account (the signed-in person only)',
  },
  {
    id: 'not-oneself',
    requirement: 'AC-03',
    rule: 'No one can disable, delete or change the role of their own account.',
    enforcedBy: 'accounts administration',
  },
  {
    id: 'break-glass',
    requirement: 'AC-08',
    rule: 'The master (break-glass) account cannot be disabled, deleted, demoted or given a temporary password by any administrator.',
    enforcedBy: 'accounts administration',
  },
  {
    id: 'separate-admin-account',
    requirement: 'AC-07',
    rule: 'IT administrator rights are held only on a separate administrator account, linked to the person’s everyday account, and always need a second factor.',
    enforcedBy: 'accounts administration and sign-in',
  },
  {
    id: 'review-by-senior-leader',
    requirement: 'AC-02',
    rule: 'The annual access review is signed off by a senior leader, not by the IT administrators whose rights it reviews.',
    enforcedBy: 'access review (permission access.review)',
  },
];

// --- The school's systems -----------------------------------------------------------------------

export const accessLevels = ['none', 'read', 'edit', 'admin'] as const;
export type AccessLevel = (typeof accessLevels)[number];

export const accessLevelLabels: Record<AccessLevel, { label: string; description: string }> = {
  none: { label: 'No access', description: 'Recorded as having no access at all' },
  read: { label: 'Read', description: 'Can see information but not change it' },
  edit: { label: 'Edit', description: 'Can add and change information' },
  admin: { label: 'Admin', description: 'Can change settings and other people’s access' },
};

export const systemInputSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(100, 'must be at most 100 characters'),
  description: z.string().trim().max(500, 'must be at most 500 characters').nullable().optional(),
});

export const systemChangeSchema = systemInputSchema.partial().refine((v) => v.name !== undefined || v.description !== undefined, 'give a name or a description');

/** `role:<role>` or `group:<directory group id>`. */
export const subjectSchema = z
  .string()
  .trim()
  .max(100)
  .refine((s) => /^role:/.test(s) ? isRole(s.slice(5)) : /^group:[0-9a-f-]{36}$/i.test(s), `must be role:<role> (one of ${roles.join(', ')}) or group:<group id>`);

export const grantInputSchema = z.object({
  subject: subjectSchema,
  /** null clears the entry: nothing is recorded for that role or group in that system */
  level: z.enum(accessLevels, { error: `must be one of ${accessLevels.join(', ')}, or null to clear` }).nullable(),
  note: z.string().trim().max(300, 'must be at most 300 characters').nullable().optional(),
});

export interface SchoolSystem {
  id: string;
  name: string;
  description: string | null;
  createdAt: string;
  grants: Array<{ subject: string; level: AccessLevel; note: string | null; updatedAt: string }>;
}

export interface Subject {
  subject: string;
  kind: 'role' | 'group';
  name: string;
  /** for groups: year, class, department, other */
  groupKind?: string;
}

export async function listSystems(db: Kysely<Schema>): Promise<SchoolSystem[]> {
  const systems = await db.selectFrom('school_system').selectAll().orderBy('name').execute();
  const grants = await db.selectFrom('access_grant').selectAll().orderBy('subject').execute();
  return systems.map((s) => ({
    id: s.id,
    name: s.name,
    description: s.description,
    createdAt: s.created_at,
    grants: grants.filter((g) => g.system_id === s.id).map((g) => ({ subject: g.subject, level: g.level as AccessLevel, note: g.note, updatedAt: g.updated_at })),
  }));
}

/** Everyone a right can be given to: the roles, then the directory's groups. */
export async function listSubjects(db: Kysely<Schema>): Promise<Subject[]> {
  const groups = await db.selectFrom('directory_group').select(['id', 'name', 'kind']).orderBy('kind').orderBy('name').execute();
  return [
    ...roles.map((role): Subject => ({ subject: `role:${role}`, kind: 'role', name: roleLabels[role] })),
    ...groups.map((g): Subject => ({ subject: `group:${g.id}`, kind: 'group', name: g.name, groupKind: g.kind })),
  ];
}

export interface AccessMatrix {
  gatehouse: GatehouseMatrix;
  systems: SchoolSystem[];
  subjects: Subject[];
  levels: Array<{ level: AccessLevel; label: string; description: string }>;
  rules: ObjectRule[];
}

export async function accessMatrix(db: Kysely<Schema>): Promise<AccessMatrix> {
  return {
    gatehouse: gatehouseMatrix(),
    systems: await listSystems(db),
    subjects: await listSubjects(db),
    levels: accessLevels.map((level) => ({ level, ...accessLevelLabels[level] })),
    rules: objectRules.map((r) => ({ ...r })),
  };
}

async function loadSystem(ctx: Ctx, id: string) {
  const system = await ctx.db.selectFrom('school_system').selectAll().where('id', '=', id).executeTakeFirst();
  if (!system) throw notFound('There is no such school system.');
  return system;
}

async function nameTaken(ctx: Ctx, name: string, except?: string): Promise<boolean> {
  let q = ctx.db.selectFrom('school_system').select('id').where((eb) => eb(eb.fn('lower', ['name']), '=', name.toLowerCase()));
  if (except) q = q.where('id', '!=', except);
  return (await q.executeTakeFirst()) !== undefined;
}

export async function addSystem(ctx: Ctx, input: z.infer<typeof systemInputSchema>): Promise<string> {
  if (await nameTaken(ctx, input.name)) throw conflict(`The school system "${input.name}" is already listed.`, 'system_exists');
  const id = newId();
  await ctx.db.insertInto('school_system').values({ id, name: input.name, description: input.description || null, created_at: ctx.clock.now().toISOString() }).execute();
  await ctx.audit.record({ action: 'access.system_added', target: `school_system:${id}`, details: { name: input.name, description: input.description || null } });
  return id;
}

export async function changeSystem(ctx: Ctx, id: string, input: z.infer<typeof systemChangeSchema>): Promise<void> {
  const system = await loadSystem(ctx, id);
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  if (input.name !== undefined && input.name !== system.name) {
    if (await nameTaken(ctx, input.name, id)) throw conflict(`The school system "${input.name}" is already listed.`, 'system_exists');
    changes.name = { from: system.name, to: input.name };
  }
  const description = input.description === undefined ? undefined : input.description || null;
  if (description !== undefined && description !== system.description) changes.description = { from: system.description, to: description };
  if (Object.keys(changes).length === 0) return;
  await ctx.db
    .updateTable('school_system')
    .set({ ...(changes.name ? { name: input.name! } : {}), ...(changes.description ? { description: description ?? null } : {}) })
    .where('id', '=', id)
    .execute();
  await ctx.audit.record({ action: 'access.system_changed', target: `school_system:${id}`, details: { name: input.name ?? system.name, changes } });
}

export async function removeSystem(ctx: Ctx, id: string): Promise<void> {
  const system = await loadSystem(ctx, id);
  const grants = await ctx.db.deleteFrom('access_grant').where('system_id', '=', id).executeTakeFirst();
  await ctx.db.deleteFrom('school_system').where('id', '=', id).execute();
  await ctx.audit.record({ action: 'access.system_removed', target: `school_system:${id}`, severity: 'notice', details: { name: system.name, grantsRemoved: Number(grants.numDeletedRows ?? 0) } });
}

async function subjectName(ctx: Ctx, subject: string): Promise<string> {
  if (subject.startsWith('role:')) return roleLabels[subject.slice(5) as Role];
  const group = await ctx.db.selectFrom('directory_group').select('name').where('id', '=', subject.slice(6)).executeTakeFirst();
  if (!group) throw validationFailed('That group is not in the directory (it may have been removed). Choose a role or a group from the list.');
  return group.name;
}

/** Sets (or, with level null, clears) what one role or group may do in one system. */
export async function setGrant(ctx: Ctx, systemId: string, input: z.infer<typeof grantInputSchema>): Promise<void> {
  const system = await loadSystem(ctx, systemId);
  const who = await subjectName(ctx, input.subject);
  const existing = await ctx.db.selectFrom('access_grant').selectAll().where('system_id', '=', systemId).where('subject', '=', input.subject).executeTakeFirst();
  const from = existing ? { level: existing.level, note: existing.note } : null;
  // A level change without a note keeps the note already there; an explicit empty note removes it.
  const note = input.note === undefined ? (existing?.note ?? null) : input.note || null;
  const to = input.level === null ? null : { level: input.level, note };
  if (JSON.stringify(from) === JSON.stringify(to)) return;
  const now = ctx.clock.now().toISOString();
  if (to === null) {
    await ctx.db.deleteFrom('access_grant').where('system_id', '=', systemId).where('subject', '=', input.subject).execute();
  } else if (existing) {
    await ctx.db.updateTable('access_grant').set({ level: to.level, note: to.note, updated_at: now }).where('system_id', '=', systemId).where('subject', '=', input.subject).execute();
  } else {
    await ctx.db.insertInto('access_grant').values({ system_id: systemId, subject: input.subject, level: to.level, note: to.note, updated_at: now }).execute();
  }
  await ctx.audit.record({
    action: 'access.grant_changed',
    target: `school_system:${systemId}`,
    severity: 'notice',
    details: { system: system.name, subject: input.subject, subjectName: who, from, to },
  });
}
