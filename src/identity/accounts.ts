import type { Selectable } from 'kysely';
import { z } from 'zod';
import { isPrivilegedRole, isRole, roles, type Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError, conflict, forbidden, notFound } from '../core/errors.js';
import type { AccountTable } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { endAccountAccess } from './sessions.js';
import { passwordExpiresAt, temporaryPasswordExpiresAt } from './policy.js';
import { createAccount, protectGuestPool, usernameSchema } from './service.js';
import { notifyContact } from './notify.js';
import { ALLOCATE_AT_GUEST_DESK, issueTemporaryPassword, newTemporaryPassword } from './temporary-password.js';
import { needsApproval } from './resets.js';
import type { StepUp } from './my-account.js';

/**
 * What administrators do to accounts: create them with a temporary password (AC-09), give a person
 * a separate administrator account (AC-07), unlock (PW-07), issue a new temporary password,
 * disable, delete, change role, and mark a password compromised (PW-11). The master (break-glass)
 * account made at setup is out of reach of all of these (AC-08).
 */
type Account = Selectable<AccountTable>;

export interface AccountSummary {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  role: Role;
  status: string;
  isBreakGlass: boolean;
  linkedAccountId: string | null;
  locked: boolean;
  lockedAt: string | null;
  failedAttempts: number;
  mfaEnrolled: boolean;
  mustChangePassword: boolean;
  temporaryExpiresAt: string | null;
  passwordExpiresAt: string | null;
  createdAt: string;
  givenName: string | null;
  familyName: string | null;
  externalId: string | null;
  source: string;
  leftAt: string | null;
  accessEndsAt: string | null;
}

export function summarise(rt: Runtime, a: Account): AccountSummary {
  const role = a.role as Role;
  return {
    id: a.id,
    username: a.username,
    displayName: a.display_name,
    email: a.email,
    role,
    status: a.status,
    isBreakGlass: a.is_break_glass === 1,
    linkedAccountId: a.linked_account_id,
    locked: a.locked_at !== null,
    lockedAt: a.locked_at,
    failedAttempts: a.failed_attempts,
    mfaEnrolled: a.totp_enrolled_at !== null,
    mustChangePassword: a.must_change_password === 1,
    temporaryExpiresAt: a.temporary_expires_at,
    passwordExpiresAt: passwordExpiresAt(rt.profile, role, a.password_set_at, a.password_expiry_exempt === 1),
    createdAt: a.created_at,
    givenName: a.given_name,
    familyName: a.family_name,
    externalId: a.external_id,
    source: a.source,
    leftAt: a.left_at,
    accessEndsAt: a.access_ends_at,
  };
}

export const listQuerySchema = z.object({
  status: z.enum(['active', 'disabled', 'left', 'locked'], { error: 'must be active, disabled, left or locked' }).optional(),
  role: z.enum(roles, { error: `must be one of ${roles.join(', ')}` }).optional(),
  group: z.uuid('must be a group id').optional(),
  q: z.string().trim().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(500),
  offset: z.coerce.number().int().min(0).default(0),
});

/** AC-12: the directory, searched and filtered; `total` counts every match, `accounts` is one page. */
export async function listAccounts(rt: Runtime, query: Partial<z.infer<typeof listQuerySchema>>): Promise<{ accounts: AccountSummary[]; total: number }> {
  let q = rt.db.kysely.selectFrom('account');
  if (query.status === 'locked') q = q.where('locked_at', 'is not', null);
  else if (query.status) q = q.where('status', '=', query.status);
  if (query.role) q = q.where('role', '=', query.role);
  if (query.group) { const group = query.group; q = q.where('id', 'in', (eb) => eb.selectFrom('group_member').select('account_id').where('group_id', '=', group)); }
  if (query.q) {
    const like = `%${query.q.toLowerCase().replace(/[%_\\]/g, '')}%`;
    q = q.where((eb) => eb.or([eb('username', 'like', like), eb(eb.fn('lower', ['display_name']), 'like', like), eb(eb.fn('lower', ['email']), 'like', like), eb('external_id', '=', query.q!)]));
  }
  const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = await q.selectAll().orderBy('display_name').orderBy('username').limit(query.limit ?? 500).offset(query.offset ?? 0).execute();
  return { accounts: rows.map((a) => summarise(rt, a)), total: Number(total.n) };
}

export async function loadAccount(rt: Runtime, id: string): Promise<Account> {
  const account = await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirst();
  if (!account) throw notFound('There is no such account.');
  return account;
}

export async function getAccount(rt: Runtime, id: string): Promise<AccountSummary> {
  return summarise(rt, await loadAccount(rt, id));
}

function protectBreakGlass(account: Account, what: string): void {
  if (account.is_break_glass) {
    throw new GatehouseError('break_glass_protected', 403, `The master (break-glass) account cannot be ${what} by any administrator (AC-08).`);
  }
}

const meta = (m: { ip: string | null; requestId: string | null }) => m;

export const newAccountSchema = z.object({
  username: usernameSchema,
  displayName: z.string().trim().min(1, 'is required').max(200),
  email: z.email('must be an e-mail address').nullable().optional(),
  role: z.enum(roles.filter((r) => r !== 'administrator') as [Role, ...Role[]], {
    error: 'must be a role other than administrator: administrator rights go on a separate administrator account',
  }),
});

/** AC-09: a new account with a system-generated temporary password, shown once to whoever made it. */
export async function createPersonAccount(
  rt: Runtime,
  actor: Actor,
  input: z.infer<typeof newAccountSchema>,
  m: { ip: string | null; requestId: string | null },
  stepUp: StepUp,
): Promise<{ account: AccountSummary; temporaryPassword: string }> {
  // A new account with a privileged role is a grant of that role (issue 10, finding 12).
  if (isPrivilegedRole(input.role)) await stepUp('privileged_role');
  const { temporaryPassword, hash } = await newTemporaryPassword(rt, input.role, { username: input.username, names: [input.displayName], personal: input.email ? [input.email] : [] });
  const id = await rt.trail.transaction(actor, (ctx) =>
    createAccount(ctx, {
      username: input.username,
      displayName: input.displayName,
      email: input.email ?? null,
      role: input.role,
      passwordHash: hash,
      temporaryExpiresAt: temporaryPasswordExpiresAt(rt.profile, input.role, ctx.clock.now()),
    }), meta(m));
  return { account: await getAccount(rt, id), temporaryPassword };
}

/** AC-07: administrator rights only on a separate account, linked to the person's everyday one. */
export async function createAdministratorAccount(rt: Runtime, actor: Actor, everydayId: string, m: { ip: string | null; requestId: string | null }, stepUp: StepUp) {
  const everyday = await loadAccount(rt, everydayId);
  if (everyday.role === 'administrator') throw new GatehouseError('already_administrator', 409, 'That is already an administrator account; link administrator accounts to everyday accounts.');
  if (everyday.status !== 'active') throw new GatehouseError('account_inactive', 409, 'The everyday account is not active.');
  protectGuestPool(everyday, ALLOCATE_AT_GUEST_DESK);
  const existing = await rt.db.kysely.selectFrom('account').select('username').where('linked_account_id', '=', everyday.id).where('role', '=', 'administrator').executeTakeFirst();
  if (existing) throw conflict(`${everyday.display_name} already has the administrator account "${existing.username}".`, 'administrator_exists');
  await stepUp('privileged_role');
  const username = `${everyday.username}.admin`.slice(0, 64);
  const { temporaryPassword, hash } = await newTemporaryPassword(rt, 'administrator', { username, names: [everyday.display_name], personal: everyday.email ? [everyday.email] : [] });
  const id = await rt.trail.transaction(actor, (ctx) =>
    createAccount(ctx, {
      username,
      displayName: `${everyday.display_name} (administrator)`,
      email: everyday.email,
      role: 'administrator',
      passwordHash: hash,
      temporaryExpiresAt: temporaryPasswordExpiresAt(rt.profile, 'administrator', ctx.clock.now()),
      linkedAccountId: everyday.id,
    }), meta(m));
  return { account: await getAccount(rt, id), temporaryPassword };
}

/**
 * AC-09 / PW-08: an administrator gives a new temporary password (issueTemporaryPassword: sessions
 * and sign-ins in progress end, forced change at next sign-in).
 */
export async function issueAccountTemporaryPassword(rt: Runtime, actor: Actor, id: string, m: { ip: string | null; requestId: string | null }) {
  const account = await loadAccount(rt, id);
  protectBreakGlass(account, 'given a temporary password');
  protectGuestPool(account, ALLOCATE_AT_GUEST_DESK);
  if (account.id === actor.id) throw new GatehouseError('own_account', 409, 'Change your own password from My account.');
  // AC-10: a password that has been in use (not a new account's first one) is reset for staff only
  // through a request a second person approves.
  if (needsApproval(rt, account) && !(account.must_change_password === 1 && account.password_set_at === account.created_at)) {
    throw new GatehouseError('approval_required', 409, `Resetting ${account.display_name}’s password needs a second person’s approval: make a request under Password resets.`);
  }
  const { temporaryPassword } = await issueTemporaryPassword(rt, actor, account, { meta: meta(m) });
  return { account: await getAccount(rt, id), temporaryPassword };
}

export async function unlockAccount(rt: Runtime, actor: Actor, id: string, m: { ip: string | null; requestId: string | null }): Promise<AccountSummary> {
  const account = await loadAccount(rt, id);
  if (!account.locked_at && account.failed_attempts === 0) return summarise(rt, account);
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.updateTable('account').set({ locked_at: null, failed_attempts: 0, updated_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'account.unlocked', target: `account:${id}`, severity: 'notice', details: { username: account.username, by: 'administrator', wasLocked: account.locked_at !== null } });
  }, meta(m));
  return getAccount(rt, id);
}

export const accountChangeSchema = z
  .object({
    status: z.enum(['active', 'disabled']).optional(),
    role: z.string().refine((r) => isRole(r) && r !== 'administrator', 'must be a role other than administrator').optional(),
    displayName: z.string().trim().min(1, 'is required').max(200).optional(),
    givenName: z.string().trim().max(100).nullable().optional(),
    familyName: z.string().trim().max(100).nullable().optional(),
    email: z.email('must be an e-mail address').nullable().optional(),
  })
  .refine((v) => Object.values(v).some((x) => x !== undefined), 'give at least one of status, role, displayName, givenName, familyName, email');

export async function changeAccount(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof accountChangeSchema>, m: { ip: string | null; requestId: string | null }, stepUp: StepUp) {
  const account = await loadAccount(rt, id);
  if (input.status === 'disabled') protectBreakGlass(account, 'disabled');
  if (input.status !== undefined || input.role !== undefined) protectGuestPool(account, ALLOCATE_AT_GUEST_DESK);
  if (input.role !== undefined) protectBreakGlass(account, 'demoted');
  if (account.id === actor.id && (input.status !== undefined || input.role !== undefined)) throw forbidden('You cannot change your own account’s status or role.');
  if (account.status === 'left' && input.status) throw new GatehouseError('account_left', 409, 'This person has left; their record is kept as it was. Create a new account if they return.');
  if (input.role && account.role === 'administrator') {
    throw new GatehouseError('administrator_account', 409, 'An administrator account only holds administrator rights; disable or delete it instead.');
  }
  if (input.role && input.role !== account.role && isPrivilegedRole(input.role as Role)) await stepUp('privileged_role');
  await rt.trail.transaction(actor, async (ctx) => {
    const now = ctx.clock.now().toISOString();
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    if (input.status && input.status !== account.status) changes.status = { from: account.status, to: input.status };
    if (input.role && input.role !== account.role) changes.role = { from: account.role, to: input.role };
    const details: Record<string, string | null> = {};
    for (const [key, column] of [['displayName', 'display_name'], ['givenName', 'given_name'], ['familyName', 'family_name'], ['email', 'email']] as const) {
      const value = input[key];
      if (value !== undefined && value !== account[column]) {
        changes[key] = { from: account[column], to: value };
        details[column] = value;
      }
    }
    if (Object.keys(changes).length === 0) return;
    await ctx.db.updateTable('account').set({ ...(input.status ? { status: input.status } : {}), ...(input.role ? { role: input.role } : {}), ...details, updated_at: now }).where('id', '=', id).execute();
    if (!changes.status && !changes.role) {
      await ctx.audit.record({ action: 'account.details_changed', target: `account:${id}`, details: { username: account.username, changes } });
      return;
    }
    // A change of rights or a disabled account: its sessions end, and any sign-in in progress.
    await endAccountAccess(ctx, id, changes.status ? 'account_disabled' : 'privileges_changed');
    await ctx.audit.record({ action: 'account.changed', target: `account:${id}`, severity: 'notice', details: { username: account.username, changes } });
  }, meta(m));
  return getAccount(rt, id);
}

/** Why a guest-desk account is not deleted, and why leaving it is harmless. */
const KEPT_FOR_VISIT_HISTORY = 'its visits are recorded against it, so it cannot be deleted. While no visit is in progress it is disabled and has no password, so nobody can sign in to it.';

export async function deleteAccount(rt: Runtime, actor: Actor, id: string, m: { ip: string | null; requestId: string | null }): Promise<void> {
  const account = await loadAccount(rt, id);
  protectBreakGlass(account, 'deleted');
  // Deleting would take the account's visits (guest_allocation) with it: the guest desk's history.
  protectGuestPool(account, KEPT_FOR_VISIT_HISTORY);
  if (account.id === actor.id) throw forbidden('You cannot delete your own account.');
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.updateTable('account').set({ linked_account_id: null }).where('linked_account_id', '=', id).execute();
    await ctx.db.deleteFrom('account').where('id', '=', id).execute();
    await ctx.audit.record({ action: 'account.deleted', target: `account:${id}`, severity: 'notice', details: { username: account.username, role: account.role } });
  }, meta(m));
}

/**
 * PW-11: a password suspected compromised. Every session ends at once, the password must be
 * changed at the next sign-in, the DPO is e-mailed, and the trail records it at high severity.
 */
export async function reportCompromised(rt: Runtime, actor: Actor, id: string, m: { ip: string | null; requestId: string | null }): Promise<void> {
  const account = await loadAccount(rt, id);
  if (account.is_break_glass && actor.id !== account.id) protectBreakGlass(account, 'marked compromised');
  await rt.trail.transaction(actor, async (ctx) => {
    const now = ctx.clock.now().toISOString();
    await ctx.db.updateTable('account').set({ must_change_password: 1, temporary_expires_at: null, updated_at: now }).where('id', '=', id).execute();
    const { sessionsEnded } = await endAccountAccess(ctx, id, 'password_compromised');
    await ctx.audit.record({
      action: 'account.password_compromised',
      target: `account:${id}`,
      severity: 'high',
      details: { username: account.username, reportedBy: actor.id === id ? 'self' : actor.name, sessionsEnded },
    });
  }, meta(m));
  await notifyContact(rt, 'dpo', {
    about: 'password_compromised',
    target: `account:${id}`,
    compose: (name) => ({
      subject: `Gatehouse: a password has been reported compromised (${account.username})`,
      text:
        `Dear ${name},\n\nThe password of ${account.display_name} (${account.username}) was reported as possibly compromised by ` +
        `${actor.id === id ? 'its owner' : actor.name} at ${rt.clock.now().toISOString()}.\n\nAll of the account's sessions have been ended and the ` +
        `password must be changed at the next sign-in. Please consider whether personal data is at risk under the school's data-breach procedure.\n\n— Gatehouse`,
    }),
  });
}
