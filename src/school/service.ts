import { z } from 'zod';
import type { Ctx, ReadCtx } from '../core/context.js';
import { conflict, notFound } from '../core/errors.js';
import { createAccount, usernameSchema } from '../identity/service.js';

/** GV-04: the roles the policies ask a school to name. */
export const contactRoles = {
  headteacher: 'Headteacher',
  senior_leader: 'Senior leader responsible for online safety',
  dsl: 'Designated safeguarding lead (DSL)',
  dpo: 'Data protection officer (DPO)',
  governor: 'Responsible governor',
  it_provider: 'IT provider / network manager',
} as const;
export type ContactRole = keyof typeof contactRoles;
export const contactRoleSchema = z.enum(Object.keys(contactRoles) as [ContactRole, ...ContactRole[]], {
  error: `must be one of ${Object.keys(contactRoles).join(', ')}`,
});

export const schoolNameSchema = z.string().trim().min(2, 'must be at least 2 characters').max(200, 'must be at most 200 characters');
/** The DfE Unique Reference Number: six digits (seven for some newer establishments). */
export const urnSchema = z.string().trim().regex(/^\d{6,7}$/, 'must be the 6 or 7 digit DfE URN').nullable();

export const setupInputSchema = z.object({
  token: z.string().min(1).max(200),
  school: z.object({ name: schoolNameSchema, urn: urnSchema.optional() }),
  administrator: z.object({
    username: usernameSchema,
    displayName: z.string().trim().min(1, 'is required').max(200),
    email: z.email('must be an e-mail address').nullable().optional(),
    // Checked against the profile's rules for administrators when the request arrives.
    password: z.string().min(1, 'is required').max(1024, 'must be at most 1024 characters'),
  }),
});
export type SetupInput = z.infer<typeof setupInputSchema>;

export interface School {
  name: string;
  urn: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Contact {
  role: ContactRole;
  label: string;
  name: string;
  email: string | null;
  updatedAt: string;
}

export async function getSchool(ctx: Pick<ReadCtx, 'db'>): Promise<School | undefined> {
  const row = await ctx.db.selectFrom('school').selectAll().where('id', '=', 1).executeTakeFirst();
  return row ? { name: row.name, urn: row.urn, createdAt: row.created_at, updatedAt: row.updated_at } : undefined;
}

/**
 * First run: the school and its master (break-glass) administrator, in one transaction. The
 * school row has a fixed id, so of two racing setups exactly one commits.
 */
export async function completeSetup(
  ctx: Ctx,
  input: Omit<SetupInput, 'token' | 'administrator'> & {
    administrator: Omit<SetupInput['administrator'], 'password'> & { passwordHash: string };
  },
): Promise<{ accountId: string }> {
  if (await getSchool(ctx)) throw conflict('Gatehouse has already been set up.', 'setup_done');
  const now = ctx.clock.now().toISOString();
  await ctx.db
    .insertInto('school')
    .values({ id: 1, name: input.school.name, urn: input.school.urn ?? null, created_at: now, updated_at: now })
    .execute();
  await ctx.audit.record({
    action: 'school.created',
    target: 'school',
    severity: 'notice',
    details: { name: input.school.name, urn: input.school.urn ?? null },
  });
  const accountId = await createAccount(ctx, {
    username: input.administrator.username,
    displayName: input.administrator.displayName,
    email: input.administrator.email ?? null,
    role: 'administrator',
    passwordHash: input.administrator.passwordHash,
    isBreakGlass: true,
  });
  await ctx.audit.record({ action: 'setup.completed', target: 'school', severity: 'notice', details: { administrator: input.administrator.username } });
  return { accountId };
}

export const schoolUpdateSchema = z
  .object({ name: schoolNameSchema.optional(), urn: urnSchema.optional() })
  .refine((v) => v.name !== undefined || v.urn !== undefined, 'give at least one of name, urn');

export async function updateSchool(ctx: Ctx, input: z.infer<typeof schoolUpdateSchema>): Promise<School> {
  const before = await getSchool(ctx);
  if (!before) throw notFound('Gatehouse has not been set up yet.');
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  if (input.name !== undefined && input.name !== before.name) changes.name = { from: before.name, to: input.name };
  if (input.urn !== undefined && input.urn !== before.urn) changes.urn = { from: before.urn, to: input.urn };
  if (Object.keys(changes).length === 0) return before;
  const now = ctx.clock.now().toISOString();
  await ctx.db
    .updateTable('school')
    .set({ ...(input.name !== undefined ? { name: input.name } : {}), ...(input.urn !== undefined ? { urn: input.urn } : {}), updated_at: now })
    .where('id', '=', 1)
    .execute();
  await ctx.audit.record({ action: 'school.updated', target: 'school', details: { changes } });
  return (await getSchool(ctx))!;
}

export async function listContacts(ctx: Pick<ReadCtx, 'db'>): Promise<Contact[]> {
  const rows = await ctx.db.selectFrom('school_contact').selectAll().execute();
  const byRole = new Map(rows.map((r) => [r.role, r]));
  return (Object.keys(contactRoles) as ContactRole[]).flatMap((role) => {
    const row = byRole.get(role);
    return row ? [{ role, label: contactRoles[role], name: row.name, email: row.email, updatedAt: row.updated_at }] : [];
  });
}

export const contactInputSchema = z.object({
  name: z.string().trim().min(1, 'is required').max(200, 'must be at most 200 characters'),
  email: z.email('must be an e-mail address').nullable(),
});

export async function setContact(ctx: Ctx, role: ContactRole, input: z.infer<typeof contactInputSchema>): Promise<{ contact: Contact; seq: number }> {
  const before = await ctx.db.selectFrom('school_contact').selectAll().where('role', '=', role).executeTakeFirst();
  const now = ctx.clock.now().toISOString();
  if (before) {
    await ctx.db.updateTable('school_contact').set({ name: input.name, email: input.email, updated_at: now }).where('role', '=', role).execute();
  } else {
    await ctx.db.insertInto('school_contact').values({ role, name: input.name, email: input.email, updated_at: now }).execute();
  }
  const seq = await ctx.audit.record({
    action: 'school.contact_set',
    target: `school_contact:${role}`,
    details: { role, name: input.name, email: input.email, previous: before ? { name: before.name, email: before.email } : null },
  });
  return { contact: { role, label: contactRoles[role], name: input.name, email: input.email, updatedAt: now }, seq };
}

export async function removeContact(ctx: Ctx, role: ContactRole): Promise<void> {
  const before = await ctx.db.selectFrom('school_contact').selectAll().where('role', '=', role).executeTakeFirst();
  if (!before) throw notFound(`No ${contactRoles[role]} is recorded.`);
  await ctx.db.deleteFrom('school_contact').where('role', '=', role).execute();
  await ctx.audit.record({ action: 'school.contact_removed', target: `school_contact:${role}`, details: { role, previous: { name: before.name, email: before.email } } });
}
