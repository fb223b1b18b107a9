import { csvField } from '../core/csv.js';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import { can } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { badRequest, conflict, forbidden, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { renderPdf, pdfFilename } from '../core/pdf.js';
import { schedulePeriodic } from '../core/periodic.js';
import type { DueItem } from '../dashboard/due.js';
import type { ChangeRequestTable } from '../db/schema.js';
import { createIdentityToken, deleteDevice, deviceSchema, newIdentityTokenSchema, restoreIdentityToken, revokeIdentityToken, saveDevice } from '../filtering/identify.js';
import {
  addListEntries, changeListSource, checkLocation, confirmHeldUpdate, createListSource, deleteListSource, entriesSchema, hostFromInput, loadSource, newSourceSchema, originsOf, removeListEntry, sourceChangeSchema,
  type SourceFormat, type SourceKind,
} from '../filtering/lists-service.js';
import { createGroupPolicy, deletePolicy, getPolicy, policySettingsSchema, savePolicy, type PolicySettings } from '../filtering/policies.js';
import { filterServiceFor } from '../filtering/service.js';
import { noStepUp } from '../identity/my-account.js';
import type { Runtime } from '../runtime.js';

/**
 * Change control for filtering (FI-06, AU-03, MO-06). A change to a policy (its settings, a group's
 * own policy, putting one back), a list source (adding, changing its location, schedule or state,
 * confirming a held update, removing), a list's entries, a device or an identity-API token is a request: it takes effect only when a second responsible person approves it. The
 * approver must hold a role named in the profile's `governance.changeApprovers` (and the
 * `changes.approve` permission) and is never the requester. An emergency change (any change that only
 * tightens filtering: see `isTightening`) takes effect at once and stays awaiting approval until
 * approved or rolled back (which restores the before-state), escalated to the approvers after
 * `emergencyEscalateAfterHours`.
 *
 * Ordering (the filtering services open their own transactions, so the change cannot share ours):
 * 1. in one transaction the request is claimed (`pending` → `applying`, a conditional update, so two
 *    approvers at once apply it once) after the stale check, and the approval is audited;
 * 2. the filtering service applies the change in its own transaction, audited by it as the approver;
 * 3. in one transaction the request becomes `applied` (audited). If step 2 fails, the request goes
 *    back to `pending` and the failure is audited.
 */

type Meta = { ip: string | null; requestId: string | null };
type Row = Selectable<ChangeRequestTable>;

const id = z.string().min(1).max(200);
const uuid = z.uuid('must be an id');

export const changePayloadSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('policy.save'), policyId: id, settings: policySettingsSchema }).strict(),
  z.object({ kind: z.literal('list.entries_add'), listId: uuid, entries: entriesSchema }).strict(),
  z.object({ kind: z.literal('list.entry_remove'), listId: uuid, host: z.string().trim().min(1).max(300) }).strict(),
  z.object({ kind: z.literal('list.source_remove'), listId: uuid }).strict(),
  z.object({ kind: z.literal('device.save'), deviceId: uuid.nullable(), device: deviceSchema }).strict(),
  z.object({ kind: z.literal('device.remove'), deviceId: uuid }).strict(),
  z.object({ kind: z.literal('policy.create'), groupId: uuid, copyOf: id.optional() }).strict(),
  z.object({ kind: z.literal('policy.remove'), policyId: id }).strict(),
  z.object({ kind: z.literal('list.source_add'), source: newSourceSchema }).strict(),
  z.object({ kind: z.literal('list.source_change'), listId: uuid, source: sourceChangeSchema }).strict(),
  z.object({ kind: z.literal('list.held_confirm'), listId: uuid }).strict(),
  z.object({ kind: z.literal('identity_token.create'), token: newIdentityTokenSchema }).strict(),
  z.object({ kind: z.literal('identity_token.revoke'), tokenId: uuid }).strict(),
], { error: `say which change: ${changeKinds().join(', ')}` });
/** Every kind of change, for the message above and the docs. */
function changeKinds(): string[] {
  return ['policy.save', 'policy.create', 'policy.remove', 'list.entries_add', 'list.entry_remove', 'list.source_add', 'list.source_change', 'list.held_confirm', 'list.source_remove', 'device.save', 'device.remove', 'identity_token.create', 'identity_token.revoke'];
}
export type ChangePayload = z.infer<typeof changePayloadSchema>;

export const newChangeSchema = z
  .object({
    change: changePayloadSchema,
    reason: z.string().trim().min(3, 'say why this change is needed').max(2000, 'must be at most 2000 characters'),
    emergency: z.boolean().default(false),
  })
  .strict();

export const decisionSchema = z.object({ reason: z.string().trim().min(3, 'say why').max(2000, 'must be at most 2000 characters') }).strict();
export const approveSchema = z.object({ note: z.string().trim().max(2000).optional() }).strict();

export const changeStates = ['pending', 'applying', 'applied', 'refused', 'withdrawn', 'applied_pending_approval', 'approved', 'rolled_back'] as const;
export type ChangeState = (typeof changeStates)[number];
export const stateLabels: Record<ChangeState, string> = {
  pending: 'Awaiting approval',
  applying: 'Being applied',
  applied: 'Approved and applied',
  refused: 'Refused',
  withdrawn: 'Withdrawn',
  applied_pending_approval: 'Emergency: in effect, awaiting approval',
  approved: 'Emergency: approved',
  rolled_back: 'Emergency: rolled back',
};

export const logQuerySchema = z
  .object({
    state: z.enum(changeStates).optional(),
    mine: z.enum(['true', 'false']).optional(),
    from: z.iso.date({ message: 'must be a date like 2026-09-01' }).optional(),
    to: z.iso.date({ message: 'must be a date like 2026-09-01' }).optional(),
  })
  .strict();

export interface ChangeSummary {
  id: string;
  kind: string;
  target: string;
  summary: string;
  change: ChangePayload;
  before: unknown;
  reason: string;
  emergency: boolean;
  state: ChangeState;
  stateLabel: string;
  requestedBy: string;
  requestedById: string;
  requestedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  appliedAt: string | null;
  escalatedAt: string | null;
  /** An approved identity-API token's secret: in the approval's answer only, shown once, never stored. */
  secret?: string;
}

function toSummary(row: Row): ChangeSummary {
  const state = row.state as ChangeState;
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    summary: row.summary,
    change: JSON.parse(row.payload) as ChangePayload,
    before: JSON.parse(row.before_state) as unknown,
    reason: row.reason,
    emergency: row.emergency === 1,
    state,
    stateLabel: stateLabels[state] ?? state,
    requestedBy: row.requested_by_name,
    requestedById: row.requested_by,
    requestedAt: row.requested_at,
    decidedBy: row.decided_by_name,
    decidedAt: row.decided_at,
    decisionReason: row.decision_reason,
    appliedAt: row.applied_at,
    escalatedAt: row.escalated_at,
  };
}

/** What the target looks like now: kept with the request, compared at approval (stale) and used for rollback. */
async function currentState(rt: Runtime, change: ChangePayload): Promise<{ target: string; summary: string; state: unknown }> {
  const db = rt.db.kysely;
  switch (change.kind) {
    case 'policy.save': {
      const p = await getPolicy(rt, change.policyId);
      const { updatedAt: _u, edited: _e, ...settings } = p;
      return { target: `filter_policy:${p.id}`, summary: `Change the filtering policy “${p.name}”`, state: settings };
    }
    case 'list.entries_add':
    case 'list.entry_remove':
    case 'list.source_remove': {
      const source = await db.selectFrom('filter_list_source').select(['id', 'name', 'kind', 'location', 'enabled', 'schedule_hours']).where('id', '=', change.listId).executeTakeFirst();
      if (!source) throw notFound('There is no such list.');
      const hosts = (await db.selectFrom('filter_list_entry').select('host').where('source_id', '=', change.listId).orderBy('host').execute()).map((r) => r.host);
      const state = { source, hosts: source.location === null ? hosts : null };
      if (change.kind === 'list.entries_add') {
        if (source.location !== null) throw badRequest(`“${source.name}” is fetched from ${source.location}; only the school’s own lists are edited here.`);
        const adding = change.entries.hosts.map((h) => hostFromInput(h) ?? h);
        return { target: `filter_list:${source.id}`, summary: `Add ${adding.slice(0, 5).join(', ')}${adding.length > 5 ? ` and ${adding.length - 5} more` : ''} to the ${source.kind} list “${source.name}”`, state };
      }
      if (change.kind === 'list.entry_remove') {
        if (!hosts.includes(change.host)) throw notFound(`${change.host} is not on “${source.name}”.`);
        return { target: `filter_list:${source.id}`, summary: `Remove ${change.host} from the ${source.kind} list “${source.name}”`, state };
      }
      if (source.kind === 'illegal') throw badRequest('An illegal-content list is never removed.');
      return { target: `filter_list:${source.id}`, summary: `Remove the list “${source.name}” (${source.kind})`, state };
    }
    case 'device.save': {
      const row = change.deviceId ? await db.selectFrom('filter_device').selectAll().where('id', '=', change.deviceId).executeTakeFirst() : null;
      if (change.deviceId && !row) throw notFound('There is no such device.');
      return { target: change.deviceId ? `filter_device:${change.deviceId}` : 'filter_device:new', summary: change.deviceId ? `Change the device “${row!.name}”` : `Register the device “${change.device.name}”`, state: row ? { ...row } : null };
    }
    case 'device.remove': {
      const row = await db.selectFrom('filter_device').selectAll().where('id', '=', change.deviceId).executeTakeFirst();
      if (!row) throw notFound('There is no such device.');
      return { target: `filter_device:${row.id}`, summary: `Remove the device “${row.name}”`, state: { ...row } };
    }
    case 'policy.create': {
      const group = await db.selectFrom('directory_group').select(['id', 'name']).where('id', '=', change.groupId).executeTakeFirst();
      if (!group) throw notFound('There is no such group in the directory.');
      if (await db.selectFrom('filter_policy').select('id').where('id', '=', `group:${group.id}`).executeTakeFirst()) throw conflict(`${group.name} already has a filtering policy.`, 'policy_exists');
      const from = await getPolicy(rt, change.copyOf ?? 'role:pupils');
      const { updatedAt: _u, edited: _e, ...copied } = from;
      return { target: `filter_policy:group:${group.id}`, summary: `Give the group “${group.name}” a filtering policy of its own (a copy of “${from.name}”)`, state: { group, copyOf: copied } };
    }
    case 'policy.remove': {
      const p = await getPolicy(rt, change.policyId);
      if (!p.edited) throw badRequest(`“${p.name}” is already the profile’s policy: there is nothing to put back.`);
      if (p.kind === 'group') {
        const devices = await db.selectFrom('filter_device').select('name').where('policy_id', '=', p.id).execute();
        if (devices.length > 0) throw conflict(`Devices use this policy (${devices.slice(0, 3).map((d) => d.name).join(', ')}): give them another first.`, 'policy_in_use');
      }
      const { updatedAt: _u, edited: _e, ...settings } = p;
      return { target: `filter_policy:${p.id}`, summary: p.kind === 'group' ? `Remove the filtering policy of the group “${p.name}” (its members go back to their role’s policy)` : `Put the policy “${p.name}” back to the school profile’s settings`, state: settings };
    }
    case 'list.source_add': {
      const input = change.source;
      await checkLocation(originsOf(rt), input.format as SourceFormat, input.location, input.kind as SourceKind);
      if (input.location === null && input.format !== 'domains') throw badRequest('A list edited here is a plain list of domains: choose the format "domains".');
      if (await db.selectFrom('filter_list_source').select('id').where('name', '=', input.name).executeTakeFirst()) throw conflict(`There is already a list called "${input.name}".`, 'list_exists');
      return { target: 'filter_list:new', summary: `Add the ${input.kind} list “${input.name}” (${input.location === null ? 'edited here' : `${input.format} from ${input.location}, every ${input.scheduleHours} hours`})`, state: null };
    }
    case 'list.source_change': {
      const source = await loadSource(rt, change.listId);
      const input = change.source;
      if (source.kind === 'illegal' && input.enabled === false) throw badRequest('An illegal-content list cannot be switched off: it is blocked for everyone, always.');
      if (input.location !== undefined && input.location !== source.location) {
        if ((input.location === null) !== (source.location === null)) throw badRequest('A list edited here cannot be given a location, nor a fetched list be made editable: add a new list instead.');
        await checkLocation(originsOf(rt), source.format as SourceFormat, input.location, source.kind as SourceKind);
      }
      if (input.name !== undefined && input.name !== source.name && (await db.selectFrom('filter_list_source').select('id').where('name', '=', input.name).where('id', '!=', source.id).executeTakeFirst())) throw conflict(`There is already a list called "${input.name}".`, 'list_exists');
      const words: string[] = [];
      if (input.enabled !== undefined && (input.enabled ? 1 : 0) !== source.enabled) words.push(input.enabled ? 'switch it on' : 'switch it off');
      if (input.location !== undefined && input.location !== source.location) words.push(`fetch it from ${input.location} (was ${source.location})`);
      if (input.scheduleHours !== undefined && input.scheduleHours !== source.schedule_hours) words.push(`fetch it every ${input.scheduleHours} hours (was ${source.schedule_hours})`);
      if (input.name !== undefined && input.name !== source.name) words.push(`rename it “${input.name}”`);
      if (input.description !== undefined && input.description !== source.description) words.push('change its description');
      if (words.length === 0) throw badRequest('This changes nothing about the list.');
      const state = { id: source.id, name: source.name, kind: source.kind, format: source.format, location: source.location, enabled: source.enabled, schedule_hours: source.schedule_hours, description: source.description };
      return { target: `filter_list:${source.id}`, summary: `Change the ${source.kind} list “${source.name}”: ${words.join('; ')}`, state };
    }
    case 'list.held_confirm': {
      const source = await loadSource(rt, change.listId);
      if (!source.held_at) throw conflict(`“${source.name}” has no update waiting.`, 'nothing_held');
      const state = { id: source.id, name: source.name, kind: source.kind, entries: source.entries, held_at: source.held_at, held_entries: source.held_entries, held_version: source.held_version };
      return { target: `filter_list:${source.id}`, summary: `Use the held update of the ${source.kind} list “${source.name}”: ${source.held_entries ?? 0} entries instead of ${source.entries}`, state };
    }
    case 'identity_token.create': {
      if (await db.selectFrom('filter_identity_token').select('id').where('name', '=', change.token.name).where('revoked_at', 'is', null).executeTakeFirst()) throw conflict(`A token called “${change.token.name}” is already in use; revoke it first or choose another name.`, 'identity_token_exists');
      return { target: 'filter_identity_token:new', summary: `Make an identity-API token “${change.token.name}” (it may say who is at which address)`, state: null };
    }
    case 'identity_token.revoke': {
      const row = await db.selectFrom('filter_identity_token').select(['id', 'name', 'created_at', 'revoked_at']).where('id', '=', change.tokenId).executeTakeFirst();
      if (!row) throw notFound('There is no such token.');
      if (row.revoked_at) throw conflict(`The token “${row.name}” is already revoked.`, 'token_revoked');
      return { target: `filter_identity_token:${row.id}`, summary: `Revoke the identity-API token “${row.name}”`, state: { ...row } };
    }
  }
}

const youtubeStrictness = { off: 0, moderate: 1, strict: 2 } as const;
const contains = (outer: 'all' | string[], inner: 'all' | string[]) => outer === 'all' || (inner !== 'all' && inner.every((x) => outer.includes(x)));
const settingsOf = (p: PolicySettings & Record<string, unknown>): PolicySettings => ({
  blockedCategories: p.blockedCategories, schedules: p.schedules, allowLists: p.allowLists, blockLists: p.blockLists, safeSearch: p.safeSearch, youtube: p.youtube, downloadsAllowed: p.downloadsAllowed, defaultAction: p.defaultAction, priority: p.priority,
});

/**
 * A policy change that only blocks more: every category still blocked, every schedule kept, no allow
 * list added, no block list dropped, SafeSearch, YouTube, downloads and the default no looser, and the
 * priority unchanged (it decides which policy a person in two groups gets).
 */
function policyTightens(before: PolicySettings, after: PolicySettings): boolean {
  const schedules = new Set(after.schedules.map((x) => JSON.stringify(x)));
  return (
    before.blockedCategories.every((c) => after.blockedCategories.includes(c)) &&
    before.schedules.every((x) => schedules.has(JSON.stringify(x))) &&
    contains(before.allowLists, after.allowLists) &&
    contains(after.blockLists, before.blockLists) &&
    !(before.safeSearch === 'on' && after.safeSearch === 'off') &&
    youtubeStrictness[after.youtube] >= youtubeStrictness[before.youtube] &&
    !(after.downloadsAllowed && !before.downloadsAllowed) &&
    !(before.defaultAction === 'block' && after.defaultAction === 'allow') &&
    (after.priority === undefined || after.priority === before.priority)
  );
}

/** A list-source change that only blocks more: switching on a list that blocks, or off an allow list (and its name or description). */
function sourceChangeTightens(before: { kind: string; enabled: number; name: string; description: string | null; location: string | null; schedule_hours: number }, input: z.infer<typeof sourceChangeSchema>): boolean {
  if (input.location !== undefined && input.location !== before.location) return false;
  if (input.scheduleHours !== undefined && input.scheduleHours !== before.schedule_hours) return false;
  if (input.enabled === undefined || (input.enabled ? 1 : 0) === before.enabled) return false;
  return input.enabled ? before.kind !== 'allow' : before.kind === 'allow';
}

/**
 * A change that only tightens filtering may be an emergency (FI-06): blocking sites now, taking sites
 * off an allow list, a policy that blocks more, adding or switching on a block list, switching off an
 * allow list, or revoking an identity-API token (whoever holds a leaked one can say who is at an address).
 */
export function isTightening(change: ChangePayload, before: unknown): boolean {
  switch (change.kind) {
    case 'list.entries_add':
      return (before as { source: { kind: string } }).source.kind === 'block';
    case 'list.entry_remove':
      return (before as { source: { kind: string } }).source.kind === 'allow';
    case 'policy.save':
      return policyTightens(before as PolicySettings, change.settings);
    case 'list.source_add':
      return change.source.kind === 'block';
    case 'list.source_change':
      return sourceChangeTightens(before as Parameters<typeof sourceChangeTightens>[0], change.source);
    case 'identity_token.revoke':
      return true;
    default:
      return false;
  }
}

/** Applies the change through the filtering services (each audits in its own transaction); a new token's secret comes back. */
async function apply(rt: Runtime, actor: Actor, change: ChangePayload, meta: Meta): Promise<{ secret?: string }> {
  let out: { secret?: string } = {};
  switch (change.kind) {
    case 'policy.save':
      await savePolicy(rt, actor, change.policyId, change.settings, meta);
      break;
    case 'list.entries_add':
      await addListEntries(rt, actor, change.listId, change.entries, meta);
      break;
    case 'list.entry_remove':
      await removeListEntry(rt, actor, change.listId, change.host, meta);
      break;
    case 'list.source_remove':
      await deleteListSource(rt, filterServiceFor(rt).store, actor, change.listId, meta);
      break;
    case 'device.save':
      await saveDevice(rt, actor, change.deviceId, change.device, meta);
      break;
    case 'device.remove':
      await deleteDevice(rt, actor, change.deviceId, meta);
      break;
    case 'policy.create':
      await createGroupPolicy(rt, actor, { groupId: change.groupId, copyOf: change.copyOf }, meta);
      break;
    case 'policy.remove':
      await deletePolicy(rt, actor, change.policyId, meta);
      break;
    case 'list.source_add': {
      // The requester confirmed it was them (the step-up) when asking; the approver's decision is the second check.
      const source = await createListSource(rt, actor, change.source, meta, noStepUp);
      if (source.location) await filterServiceFor(rt).fetchNow(source.id, actor);
      break;
    }
    case 'list.source_change':
      await changeListSource(rt, actor, change.listId, change.source, meta, noStepUp);
      break;
    case 'list.held_confirm':
      await confirmHeldUpdate(rt, filterServiceFor(rt).store, actor, change.listId, meta);
      break;
    case 'identity_token.create':
      out = { secret: (await createIdentityToken(rt, actor, change.token, meta)).secret };
      break;
    case 'identity_token.revoke':
      await revokeIdentityToken(rt, actor, change.tokenId, meta);
      break;
  }
  await filterServiceFor(rt).changed();
  return out;
}

/** Puts back what an emergency change altered, from the state kept when it was asked for; returns what was undone, in words. */
async function restore(rt: Runtime, actor: Actor, change: ChangePayload, before: unknown, meta: Meta): Promise<Record<string, unknown>> {
  const db = rt.db.kysely;
  switch (change.kind) {
    case 'list.entries_add': {
      const had = new Set((before as { hosts: string[] }).hosts);
      const added = [...new Set(change.entries.hosts.map((h) => hostFromInput(h)).filter((h): h is string => h !== null))].filter((h) => !had.has(h));
      const present = new Set((await db.selectFrom('filter_list_entry').select('host').where('source_id', '=', change.listId).execute()).map((r) => r.host));
      for (const host of added) if (present.has(host)) await removeListEntry(rt, actor, change.listId, host, meta);
      return { removed: added };
    }
    case 'list.entry_remove': {
      const present = await db.selectFrom('filter_list_entry').select('host').where('source_id', '=', change.listId).where('host', '=', change.host).executeTakeFirst();
      if (!present) await addListEntries(rt, actor, change.listId, { hosts: [change.host], note: 'Put back: an emergency change was rolled back' }, meta);
      return { restored: [change.host] };
    }
    case 'policy.save':
      await savePolicy(rt, actor, change.policyId, settingsOf(before as PolicySettings & Record<string, unknown>), meta);
      return { restored: 'policy settings' };
    case 'list.source_add': {
      const added = await db.selectFrom('filter_list_source').select(['id', 'kind']).where('name', '=', change.source.name).executeTakeFirst();
      // Never an illegal-content list: an emergency may only add block lists, and those are never removed.
      if (added && added.kind === 'block') await deleteListSource(rt, filterServiceFor(rt).store, actor, added.id, meta);
      return { removed: change.source.name };
    }
    case 'list.source_change': {
      const was = before as { name: string; description: string | null; enabled: number; schedule_hours: number; location: string | null };
      const back: z.infer<typeof sourceChangeSchema> = {};
      if (change.source.name !== undefined) back.name = was.name;
      if (change.source.description !== undefined) back.description = was.description;
      if (change.source.enabled !== undefined) back.enabled = was.enabled === 1;
      if (change.source.scheduleHours !== undefined) back.scheduleHours = was.schedule_hours;
      if (change.source.location !== undefined) back.location = was.location;
      await changeListSource(rt, actor, change.listId, back, meta, noStepUp);
      return { restored: back };
    }
    case 'identity_token.revoke':
      await restoreIdentityToken(rt, actor, change.tokenId, meta);
      return { restored: 'token' };
    default:
      throw conflict('Only an emergency change can be rolled back.', 'change_not_emergency');
  }
}

/** The profile's approver roles plus the permission; never the requester. Enforced here, not in the console. */
function checkApprover(rt: Runtime, actor: Actor, row: Row | null, what: string): void {
  if (!actor.id || !actor.role || !can(actor.role, 'changes.approve')) throw forbidden(`You may not ${what} filtering changes.`);
  const approvers = rt.profile.governance.changeApprovers;
  if (!approvers.includes(actor.role)) throw forbidden(`Only ${approvers.join(', ').replace(/_/g, ' ')} may ${what} filtering changes (the school’s profile, governance.changeApprovers).`);
  if (row && row.requested_by === actor.id) throw forbidden(`You asked for this change: a second person must ${what} it.`);
}

async function load(rt: Runtime, changeId: string): Promise<Row> {
  const row = await rt.db.kysely.selectFrom('change_request').selectAll().where('id', '=', changeId).executeTakeFirst();
  if (!row) throw notFound('There is no such change request.');
  return row;
}

/** Moves a request from one state to another only if it is still in `from`; false when someone else got there first. */
async function moveState(db: Parameters<Parameters<Runtime['trail']['transaction']>[1]>[0]['db'], changeId: string, from: ChangeState[], values: Partial<ChangeRequestTable>): Promise<boolean> {
  const result = await db.updateTable('change_request').set(values).where('id', '=', changeId).where('state', 'in', from).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function getChange(rt: Runtime, changeId: string): Promise<ChangeSummary> {
  return toSummary(await load(rt, changeId));
}

/** FI-06: asks for a change. An emergency (tightening) change applies at once and stays awaiting approval. */
export async function requestChange(rt: Runtime, actor: Actor, input: z.infer<typeof newChangeSchema>, meta: Meta): Promise<ChangeSummary> {
  if (!actor.id) throw forbidden('A change is asked for by a person.');
  const change = input.change;
  const { target, summary, state } = await currentState(rt, change);
  if (input.emergency && !isTightening(change, state)) throw badRequest('Only blocking sites now (a change that only tightens filtering: blocking sites, a stricter policy, a block list on, an allow list off, a token revoked) may be an emergency change; this one waits for approval.');
  const changeId = newId();
  const now = rt.clock.now().toISOString();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('change_request').values({
      id: changeId, kind: change.kind, target, summary, payload: JSON.stringify(change), before_state: JSON.stringify(state), reason: input.reason,
      emergency: input.emergency ? 1 : 0, state: input.emergency ? 'applying' : 'pending', requested_by: actor.id!, requested_by_name: actor.name, requested_at: now,
      decided_by: null, decided_by_name: null, decided_at: null, decision_reason: null, applied_at: null, escalated_at: null,
    }).execute();
    await ctx.audit.record({ action: input.emergency ? 'change.emergency_requested' : 'change.requested', target: `change_request:${changeId}`, severity: 'notice', details: { kind: change.kind, target, summary, reason: input.reason } });
  }, meta);
  if (input.emergency) {
    try {
      await apply(rt, actor, change, meta);
    } catch (error) {
      await rt.trail.transaction(actor, async (ctx) => {
        await moveState(ctx.db, changeId, ['applying'], { state: 'withdrawn', decision_reason: 'could not be applied' });
        await ctx.audit.record({ action: 'change.apply_failed', target: `change_request:${changeId}`, severity: 'warning', details: { summary, error: error instanceof Error ? error.message : String(error) } });
      }, meta);
      throw error;
    }
    await rt.trail.transaction(actor, async (ctx) => {
      await moveState(ctx.db, changeId, ['applying'], { state: 'applied_pending_approval', applied_at: ctx.clock.now().toISOString() });
      await ctx.audit.record({ action: 'change.emergency_applied', target: `change_request:${changeId}`, severity: 'warning', details: { summary, awaiting: rt.profile.governance.changeApprovers } });
    }, meta);
  }
  return getChange(rt, changeId);
}

/** FI-06: a second responsible person approves; a pending change is applied exactly once. */
export async function approveChange(rt: Runtime, actor: Actor, changeId: string, input: z.infer<typeof approveSchema>, meta: Meta): Promise<ChangeSummary> {
  const row = await load(rt, changeId);
  checkApprover(rt, actor, row, 'approve');
  const note = input.note ?? null;
  if (row.state === 'applied_pending_approval') {
    await rt.trail.transaction(actor, async (ctx) => {
      if (!(await moveState(ctx.db, changeId, ['applied_pending_approval'], { state: 'approved', decided_by: actor.id, decided_by_name: actor.name, decided_at: ctx.clock.now().toISOString(), decision_reason: note }))) throw conflict('Someone else has just decided this change.', 'change_decided');
      await ctx.audit.record({ action: 'change.emergency_approved', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, requestedBy: row.requested_by_name, note } });
    }, meta);
    return getChange(rt, changeId);
  }
  if (row.state !== 'pending') throw conflict(`This change is no longer awaiting approval (${stateLabels[row.state as ChangeState] ?? row.state}).`, 'change_decided');
  const change = JSON.parse(row.payload) as ChangePayload;
  const now = await currentState(rt, change).catch(() => null);
  if (!now || JSON.stringify(now.state) !== row.before_state) {
    throw conflict('What this change would alter has changed since it was asked for (someone else changed it). Refuse this request and ask again from what is in force now.', 'change_stale');
  }
  await rt.trail.transaction(actor, async (ctx) => {
    if (!(await moveState(ctx.db, changeId, ['pending'], { state: 'applying', decided_by: actor.id, decided_by_name: actor.name, decided_at: ctx.clock.now().toISOString(), decision_reason: note }))) throw conflict('Someone else has just decided this change.', 'change_decided');
    await ctx.audit.record({ action: 'change.approved', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, requestedBy: row.requested_by_name, note } });
  }, meta);
  let applied: { secret?: string };
  try {
    applied = await apply(rt, actor, change, meta);
  } catch (error) {
    await rt.trail.transaction(actor, async (ctx) => {
      await moveState(ctx.db, changeId, ['applying'], { state: 'pending', decided_by: null, decided_by_name: null, decided_at: null, decision_reason: null });
      await ctx.audit.record({ action: 'change.apply_failed', target: `change_request:${changeId}`, severity: 'warning', details: { summary: row.summary, error: error instanceof Error ? error.message : String(error) } });
    }, meta);
    throw error;
  }
  await rt.trail.transaction(actor, async (ctx) => {
    await moveState(ctx.db, changeId, ['applying'], { state: 'applied', applied_at: ctx.clock.now().toISOString() });
    await ctx.audit.record({ action: 'change.applied', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, target: row.target } });
  }, meta);
  return { ...(await getChange(rt, changeId)), ...(applied.secret ? { secret: applied.secret } : {}) };
}

/** An approver refuses a pending change, with the reason. */
export async function refuseChange(rt: Runtime, actor: Actor, changeId: string, input: z.infer<typeof decisionSchema>, meta: Meta): Promise<ChangeSummary> {
  const row = await load(rt, changeId);
  checkApprover(rt, actor, row, 'refuse');
  await rt.trail.transaction(actor, async (ctx) => {
    if (!(await moveState(ctx.db, changeId, ['pending'], { state: 'refused', decided_by: actor.id, decided_by_name: actor.name, decided_at: ctx.clock.now().toISOString(), decision_reason: input.reason }))) throw conflict('This change is no longer awaiting approval.', 'change_decided');
    await ctx.audit.record({ action: 'change.refused', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, requestedBy: row.requested_by_name, reason: input.reason } });
  }, meta);
  return getChange(rt, changeId);
}

/** The requester withdraws their own pending change. */
export async function withdrawChange(rt: Runtime, actor: Actor, changeId: string, meta: Meta): Promise<ChangeSummary> {
  const row = await load(rt, changeId);
  if (row.requested_by !== actor.id) throw forbidden('Only the person who asked for a change may withdraw it.');
  await rt.trail.transaction(actor, async (ctx) => {
    if (!(await moveState(ctx.db, changeId, ['pending'], { state: 'withdrawn', decided_at: ctx.clock.now().toISOString() }))) throw conflict('This change is no longer awaiting approval.', 'change_decided');
    await ctx.audit.record({ action: 'change.withdrawn', target: `change_request:${changeId}`, severity: 'info', details: { summary: row.summary } });
  }, meta);
  return getChange(rt, changeId);
}

/** An approver undoes an emergency change: what it altered is put back as it was when it was asked for. */
export async function rollBackChange(rt: Runtime, actor: Actor, changeId: string, input: z.infer<typeof decisionSchema>, meta: Meta): Promise<ChangeSummary> {
  const row = await load(rt, changeId);
  checkApprover(rt, actor, null, 'roll back');
  if (row.emergency !== 1) throw conflict('Only an emergency change can be rolled back.', 'change_not_emergency');
  const change = JSON.parse(row.payload) as ChangePayload;
  const before = JSON.parse(row.before_state) as unknown;
  await rt.trail.transaction(actor, async (ctx) => {
    if (!(await moveState(ctx.db, changeId, ['applied_pending_approval'], { state: 'applying', decided_by: actor.id, decided_by_name: actor.name, decided_at: ctx.clock.now().toISOString(), decision_reason: input.reason }))) throw conflict('This change is not an emergency change awaiting approval.', 'change_decided');
    await ctx.audit.record({ action: 'change.rollback_started', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, reason: input.reason } });
  }, meta);
  let undone: Record<string, unknown>;
  try {
    undone = await restore(rt, actor, change, before, meta);
  } catch (error) {
    // Still in effect: back to awaiting approval (and escalation), the failure audited.
    await rt.trail.transaction(actor, async (ctx) => {
      await moveState(ctx.db, changeId, ['applying'], { state: 'applied_pending_approval', decided_by: null, decided_by_name: null, decided_at: null, decision_reason: null });
      await ctx.audit.record({ action: 'change.rollback_failed', target: `change_request:${changeId}`, severity: 'warning', details: { summary: row.summary, error: error instanceof Error ? error.message : String(error) } });
    }, meta);
    throw error;
  }
  await filterServiceFor(rt).changed();
  await rt.trail.transaction(actor, async (ctx) => {
    await moveState(ctx.db, changeId, ['applying'], { state: 'rolled_back' });
    await ctx.audit.record({ action: 'change.rolled_back', target: `change_request:${changeId}`, severity: 'notice', details: { summary: row.summary, ...undone } });
  }, meta);
  return getChange(rt, changeId);
}

/** The change-control log, newest first (MO-06). */
export async function listChanges(rt: Runtime, actor: Actor, query: z.infer<typeof logQuerySchema>): Promise<ChangeSummary[]> {
  let q = rt.db.kysely.selectFrom('change_request').selectAll().orderBy('requested_at', 'desc').orderBy('id').limit(1000);
  if (query.state) q = q.where('state', '=', query.state);
  if (query.mine === 'true') q = q.where('requested_by', '=', actor.id ?? '');
  if (query.from) q = q.where('requested_at', '>=', `${query.from}T00:00:00.000Z`);
  if (query.to) q = q.where('requested_at', '<=', `${query.to}T23:59:59.999Z`);
  return (await q.execute()).map(toSummary);
}

/** MO-06: the log as CSV or PDF, for governors, the local authority or the police; the export is audited. */
export async function exportChanges(rt: Runtime, actor: Actor, format: 'csv' | 'pdf', query: z.infer<typeof logQuerySchema>, meta: Meta): Promise<{ body: Buffer; filename: string; contentType: string }> {
  const changes = await listChanges(rt, actor, query);
  const now = rt.clock.now();
  const columns = ['Requested at', 'Requested by', 'Change', 'Reason', 'Emergency', 'State', 'Decided by', 'Decided at', 'Decision reason', 'Applied at'];
  const rows = changes.map((c) => [c.requestedAt, c.requestedBy, c.summary, c.reason, c.emergency ? 'yes' : 'no', c.stateLabel, c.decidedBy, c.decidedAt, c.decisionReason, c.appliedAt]);
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.audit.record({ action: 'change.log_exported', target: 'change_request', severity: 'notice', details: { format, count: changes.length, filter: query } });
  }, meta);
  if (format === 'csv') {
    const text = [columns, ...rows].map((r) => r.map((v) => csvField(v)).join(',')).join('\r\n') + '\r\n';
    return { body: Buffer.from(text, 'utf8'), filename: `change-control-log-${now.toISOString().slice(0, 10)}.csv`, contentType: 'text/csv; charset=utf-8' };
  }
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst().catch(() => undefined);
  const pdf = await renderPdf({
    title: 'Filtering change-control log',
    subtitle: school?.name ?? undefined,
    generatedBy: actor.name,
    generatedAt: now,
    sections: [{ heading: `${changes.length} change request${changes.length === 1 ? '' : 's'}`, paragraphs: [`Every change to filtering needs a second person among: ${rt.profile.governance.changeApprovers.join(', ').replace(/_/g, ' ')} (FI-06).`], table: { columns: ['Requested', 'By', 'Change', 'Reason', 'State', 'Decided by'], rows: changes.map((c) => [c.requestedAt.slice(0, 16).replace('T', ' '), c.requestedBy, c.summary, c.reason, c.stateLabel, c.decidedBy]), widths: [2, 1.5, 4, 3, 2, 1.5], empty: 'No change requests.' } }],
  });
  return { body: pdf, filename: pdfFilename('change-control-log', now), contentType: 'application/pdf' };
}

/** Emergency changes in effect longer than the profile allows without approval: e-mail the approvers once. */
export async function escalateEmergencies(rt: Runtime): Promise<number> {
  const hours = rt.profile.governance.emergencyEscalateAfterHours;
  const cutoff = new Date(rt.clock.now().getTime() - hours * 3_600_000).toISOString();
  const overdue = await rt.db.kysely.selectFrom('change_request').selectAll().where('state', '=', 'applied_pending_approval').where('escalated_at', 'is', null).where('applied_at', '<=', cutoff).execute();
  if (overdue.length === 0) return 0;
  const approvers = await rt.db.kysely.selectFrom('account').select(['id', 'username', 'email']).where('role', 'in', rt.profile.governance.changeApprovers).where('email', 'is not', null).execute();
  let escalated = 0;
  for (const row of overdue) {
    const claimed = await rt.trail.transaction({ id: null, name: 'system', role: null }, async (ctx) => {
      if (!(await moveState(ctx.db, row.id, ['applied_pending_approval'], { escalated_at: ctx.clock.now().toISOString() }))) return false;
      await ctx.audit.record({ action: 'change.escalated', target: `change_request:${row.id}`, severity: 'warning', details: { summary: row.summary, afterHours: hours, to: approvers.map((a) => a.username) } });
      return true;
    });
    if (!claimed) continue;
    escalated += 1;
    for (const a of approvers) {
      if (a.id === row.requested_by) continue;
      await rt.mailer.send({ to: a.email!, subject: `Emergency filtering change awaiting your approval: ${row.summary}`, text: `${row.requested_by_name} made an emergency filtering change at ${row.applied_at}:\n\n${row.summary}\n\nReason: ${row.reason}\n\nIt is in effect but nobody has approved or rolled it back in ${hours} hours. Please approve or roll it back in Gatehouse under Filtering → Changes.\n` });
    }
  }
  return escalated;
}

/** An apply or rollback takes seconds; one still `applying` after this was interrupted (the process stopped mid-way). */
const INTERRUPTED_AFTER_MS = 10 * 60_000;

/**
 * "Needs attention": changes waiting for a second person, emergency changes overdue for approval, and
 * changes whose applying was interrupted (the server stopped between the approval and the change
 * being marked applied): whether it is in force is for a person to check, so it is shown, never guessed.
 */
export async function changesDue(rt: Runtime): Promise<DueItem[]> {
  const rows = await rt.db.kysely.selectFrom('change_request').select(['id', 'summary', 'state', 'requested_at', 'decided_at', 'applied_at', 'requested_by_name', 'decided_by_name']).where('state', 'in', ['pending', 'applied_pending_approval', 'applying']).orderBy('requested_at').limit(20).execute();
  const hours = rt.profile.governance.emergencyEscalateAfterHours;
  const now = rt.clock.now().getTime();
  const common = { href: '/changes', requirement: 'FI-06', permission: 'changes.approve' as const };
  const items: DueItem[] = [];
  for (const r of rows) {
    if (r.state === 'applying') {
      // Seconds while it is being applied; still here after ten minutes, the server stopped mid-way.
      if (now - Date.parse(r.decided_at ?? r.requested_at) < INTERRUPTED_AFTER_MS) continue;
      const by = r.decided_by_name ? `Decided by ${r.decided_by_name}` : `Asked for by ${r.requested_by_name}`;
      items.push({ ...common, kind: 'change_interrupted', title: `A filtering change was interrupted while it was being applied: ${r.summary}`, detail: `${by} at ${r.decided_at ?? r.requested_at}; the server stopped before it was marked done. Check whether it is in force (Test an address, Lists, Policies) and ask for it again if it is not.`, dueAt: null, overdue: true });
      continue;
    }
    const emergency = r.state === 'applied_pending_approval';
    const dueAt = emergency ? new Date(Date.parse(r.applied_at ?? r.requested_at) + hours * 3_600_000).toISOString() : null;
    items.push({
      ...common,
      kind: emergency ? 'change_emergency' : 'change_pending',
      title: emergency ? `Emergency filtering change in effect, awaiting approval: ${r.summary}` : `A filtering change awaits a second person’s approval: ${r.summary}`,
      detail: `Asked for by ${r.requested_by_name}.`,
      dueAt,
      overdue: emergency && dueAt !== null && Date.parse(dueAt) <= now,
    });
  }
  return items;
}

/** Inside `serve`: emergency changes overdue for approval are escalated (checked every 15 minutes). */
export function scheduleChangeEscalation(rt: Runtime, everyMs = 15 * 60_000): import('../core/periodic.js').Periodic {
  return schedulePeriodic(rt.logger, 'change-control escalation', async () => {
    await escalateEmergencies(rt);
  }, { everyMs, firstAfterMs: 90_000 });
}

/**
 * For the filtering routes (issue 11): under `governance.changeControl: required` a mutation becomes a
 * change request (the caller answers 202 with it, or 200 when an emergency one is in effect at once);
 * under `off` it is null and the route applies at once. The reason comes from the `x-change-reason`
 * header and the emergency flag from `x-change-emergency: true` (the filtering routes' bodies are
 * unchanged, so the same body works under either setting).
 */
export async function changeRequestFor(rt: Runtime, actor: Actor, change: ChangePayload, headers: Record<string, string | string[] | undefined>, meta: Meta): Promise<ChangeSummary | null> {
  if (rt.profile.governance.changeControl !== 'required') return null;
  const header = (name: string) => {
    const v = headers[name];
    return (Array.isArray(v) ? v[0] : v)?.trim();
  };
  const given = header('x-change-reason')?.slice(0, 2000);
  const flag = header('x-change-emergency')?.toLowerCase();
  if (flag !== undefined && flag !== '' && !['true', 'false'].includes(flag)) throw badRequest('x-change-emergency: must be true or false', { field: 'x-change-emergency' });
  const emergency = flag === 'true';
  const parsed = newChangeSchema.parse({ change, reason: given && given.length >= 3 ? given : emergency ? 'Emergency change through the filtering pages (no reason given)' : 'Changed through the filtering pages (no reason given)', emergency });
  return requestChange(rt, actor, parsed, meta);
}

/** The status a filtering route answers with a change request: 202 while it waits, 200 when an emergency one is in effect. */
export const statusOfChange = (change: ChangeSummary): 200 | 202 => (change.state === 'pending' ? 202 : 200);
