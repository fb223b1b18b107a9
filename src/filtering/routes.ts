import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { badRequest } from '../core/errors.js';
import { listGroups } from '../directory/groups.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { stepUpFor } from '../identity/my-account.js';
import { activityQuerySchema, queryActivity } from './activity.js';
import {
  connectAtCaptivePage,
  createIdentityToken,
  currentMappings,
  deleteDevice,
  deviceSchema,
  disconnectAtCaptivePage,
  identityPostSchema,
  ipAddressSchema,
  listDevices,
  listIdentityTokens,
  myConnection,
  newIdentityTokenSchema,
  plainIp,
  postIdentity,
  revokeIdentityToken,
  saveDevice,
} from './identify.js';
import {
  addListEntries,
  changeListSource,
  confirmHeldUpdate,
  createListSource,
  deleteListSource,
  entriesSchema,
  formatLabels,
  kindLabels,
  listEntries,
  loadSource,
  listSources,
  newSourceSchema,
  originsOf,
  rejectHeldUpdate,
  removeListEntry,
  sourceChangeSchema,
} from './lists-service.js';
import { createGroupPolicy, deletePolicy, getPolicy, listPolicies, policySettingsSchema, savePolicy, UNKNOWN_POLICY } from './policies.js';
import { blockPageWords, filterRequestSchema, listFilterRequests, submitFilterRequest } from './requests.js';
import { filterServiceFor, splitUrl, type FilterService } from './service.js';
// Issue 11: change control
import { changeRequestFor, statusOfChange } from '../governance/changes.js';

const idParams = z.object({ id: z.string().min(1).max(200) });
const uuidParams = z.object({ id: z.uuid('must be an id') });

/** Every filtering route: policies, lists, test a URL, devices, identity, activity, the block page. */
export function registerFilteringRoutes(app: App, rt: Runtime): void {
  const service = filterServiceFor(rt);
  // Activity still buffered is written before the database closes.
  app.addHook('onClose', async () => {
    await service.stop();
  });
  const tags = ['filtering'];
  const changed = async () => {
    await service.changed();
  };

  // --- Policies (FI-05) ----------------------------------------------------------------------------
  app.get('/api/filtering/policies', { config: { access: 'filtering.read' }, schema: { summary: 'Filtering policies per group, with every category the lists provide (names and descriptions) and the directory groups', tags } }, async () => {
    await service.ready();
    const categories = await rt.db.kysely.selectFrom('filter_category as c').innerJoin('filter_list_source as s', 's.id', 'c.source_id').select(['c.id', 'c.name', 'c.description', 'c.kind', 'c.domains', 'c.urls', 's.name as source']).execute();
    categories.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }));
    const groups = await listGroups(rt.db.kysely);
    return { policies: await listPolicies(rt), categories, groups: groups.map((g) => ({ id: g.id, name: g.name, kind: g.kind })), warnings: service.warnings };
  });

  app.put('/api/filtering/policies/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Change a policy: blocked categories, schedules, allow and block lists, SafeSearch, YouTube, downloads, default', tags, params: idParams, body: policySettingsSchema } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'policy.save', policyId: request.params.id, settings: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ ...(await getPolicy(rt, request.params.id)), changeRequest: pending });
    const policy = await savePolicy(rt, actorOf(request), request.params.id, request.body, metaOf(request));
    await changed();
    return policy;
  });

  app.post('/api/filtering/policies', { config: { access: 'filtering.manage' }, schema: { summary: 'A policy of its own for a directory group (a copy of a role group’s to start with)', tags, body: z.object({ groupId: z.uuid('choose a group'), copyOf: z.string().max(200).optional() }).strict() } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'policy.create', groupId: request.body.groupId, ...(request.body.copyOf ? { copyOf: request.body.copyOf } : {}) }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    const policy = await createGroupPolicy(rt, actorOf(request), request.body, metaOf(request));
    await changed();
    return reply.status(201).send(policy);
  });

  app.delete('/api/filtering/policies/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Remove a group’s policy, or put a role group’s back to the profile’s', tags, params: idParams } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'policy.remove', policyId: request.params.id }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    await deletePolicy(rt, actorOf(request), request.params.id, metaOf(request));
    await changed();
    return reply.status(204).send();
  });

  // --- Test a URL (FI-01, FI-05) ---------------------------------------------------------------------
  app.get(
    '/api/filtering/test',
    {
      config: { access: 'filtering.read' },
      schema: {
        summary: 'What the filter decides for a web address, for a policy, a person or an address, at a time; and why',
        tags,
        querystring: z
          .object({
            url: z.string().trim().min(1, 'give a web address').max(2000),
            policy: z.string().max(200).optional(),
            person: z.string().trim().max(100).optional(),
            ip: ipAddressSchema.optional(),
            at: z.iso.datetime({ offset: true, message: 'must be a date and time' }).optional(),
          })
          .strict(),
      },
    },
    async (request) => {
      await service.ready();
      const q = request.query;
      let personId: string | undefined;
      let personName: string | null = null;
      if (q.person) {
        const person = await rt.db.kysely.selectFrom('account').select(['id', 'username', 'display_name']).where((eb) => eb.or([eb('username', '=', q.person!.toLowerCase()), eb('id', '=', q.person!)])).executeTakeFirst();
        if (!person) throw badRequest(`There is no person ${q.person}.`);
        personId = person.id;
        personName = `${person.display_name} (${person.username})`;
      }
      const { policyId, identity } = service.policyFor({ policyId: q.policy, personId, ip: q.ip });
      const at = q.at ? new Date(q.at) : rt.clock.now();
      const explanation = service.explain(q.url, policyId, at);
      const policy = (await listPolicies(rt)).find((p) => p.id === policyId);
      return { ...explanation, at: at.toISOString(), policyName: policy?.name ?? policyId, person: personName, identifiedAs: identity ? { via: identity.via, username: identity.username, deviceName: identity.deviceName } : null };
    },
  );

  // --- Lists (FI-03, FI-04) ----------------------------------------------------------------------------
  app.get('/api/filtering/lists', { config: { access: 'filtering.read' }, schema: { summary: 'List sources with their age, size, last result and held updates; the snapshot in use', tags } }, async () => {
    await service.ready();
    const snapshot = service.snapshot();
    return {
      sources: await listSources(rt),
      formats: formatLabels,
      kinds: kindLabels,
      snapshot: { compiledAt: service.compiledAt, compileMs: service.compileMs, domains: snapshot.stats.domains, urls: snapshot.stats.urls, categories: snapshot.categories.length },
      activity: service.activityStats,
      warnings: service.warnings,
      // Where lists may come from, for the console's help (GATEHOUSE_LIST_FOLDER, GATEHOUSE_LIST_ALLOWED_NETWORKS).
      origins: { folder: rt.config.listFolder, allowedNetworks: originsOf(rt).allow.entries },
    };
  });

  app.post('/api/filtering/lists', { config: { access: 'filtering.manage' }, schema: { summary: 'Add a list source: a URL, a folder or file on this server (after a recent re-authentication), or a list edited here', tags, body: newSourceSchema } }, async (request, reply) => {
    // Where a list comes from needs the requester's recent re-authentication, asked first (issue 10, finding 12).
    if (request.body.location !== null) await stepUpFor(rt, request.auth)('list_source');
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.source_add', source: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending, ...((await listSources(rt)).find((s) => s.name === request.body.name) ?? {}) });
    const source = await createListSource(rt, actorOf(request), request.body, metaOf(request), stepUpFor(rt, request.auth));
    if (source.location) await service.fetchNow(source.id, actorOf(request));
    else await changed();
    return reply.status(201).send((await listSources(rt)).find((s) => s.id === source.id));
  });

  app.patch('/api/filtering/lists/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Change a list source (name, location, schedule, on or off); a new location needs a recent re-authentication', tags, params: uuidParams, body: sourceChangeSchema } }, async (request, reply) => {
    if (request.body.location !== undefined && request.body.location !== (await loadSource(rt, request.params.id)).location) await stepUpFor(rt, request.auth)('list_source');
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.source_change', listId: request.params.id, source: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ ...(await listSources(rt)).find((s) => s.id === request.params.id), changeRequest: pending });
    const source = await changeListSource(rt, actorOf(request), request.params.id, request.body, metaOf(request), stepUpFor(rt, request.auth));
    await changed();
    return source;
  });

  app.delete('/api/filtering/lists/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Remove a list source (never an illegal-content list)', tags, params: uuidParams } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.source_remove', listId: request.params.id }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    await deleteListSource(rt, service.store, actorOf(request), request.params.id, metaOf(request));
    await changed();
    return reply.status(204).send();
  });

  app.post('/api/filtering/lists/:id/fetch', { config: { access: 'filtering.manage' }, schema: { summary: 'Fetch a list now', tags, params: uuidParams } }, async (request) => {
    const outcome = await service.fetchNow(request.params.id, actorOf(request));
    return { outcome, source: (await listSources(rt)).find((s) => s.id === request.params.id) };
  });

  app.post('/api/filtering/lists/:id/confirm', { config: { access: 'filtering.manage' }, schema: { summary: 'Confirm a held update (it shrank the list by more than half): use it', tags, params: uuidParams } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.held_confirm', listId: request.params.id }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ ...(await listSources(rt)).find((s) => s.id === request.params.id), changeRequest: pending });
    const source = await confirmHeldUpdate(rt, service.store, actorOf(request), request.params.id, metaOf(request));
    await changed();
    return source;
  });

  app.post('/api/filtering/lists/:id/reject', { config: { access: 'filtering.manage' }, schema: { summary: 'Refuse a held update: the list in use stays', tags, params: uuidParams } }, async (request) => rejectHeldUpdate(rt, service.store, actorOf(request), request.params.id, metaOf(request)));

  app.get('/api/filtering/lists/:id/entries', { config: { access: 'filtering.read' }, schema: { summary: 'The entries of one of the school’s own lists', tags, params: uuidParams } }, async (request) => ({ entries: await listEntries(rt, request.params.id) }));

  app.post('/api/filtering/lists/:id/entries', { config: { access: 'filtering.manage' }, schema: { summary: 'Add sites to one of the school’s own allow or block lists', tags, params: uuidParams, body: entriesSchema } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.entries_add', listId: request.params.id, entries: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ entries: await listEntries(rt, request.params.id), changeRequest: pending });
    const entries = await addListEntries(rt, actorOf(request), request.params.id, request.body, metaOf(request));
    await changed();
    return { entries };
  });

  app.delete('/api/filtering/lists/:id/entries/:host', { config: { access: 'filtering.manage' }, schema: { summary: 'Remove a site from one of the school’s own lists', tags, params: z.object({ id: z.uuid('must be an id'), host: z.string().min(1).max(300) }) } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'list.entry_remove', listId: request.params.id, host: request.params.host }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    await removeListEntry(rt, actorOf(request), request.params.id, request.params.host, metaOf(request));
    await changed();
    return reply.status(204).send();
  });

  // --- Activity (MO-01) ----------------------------------------------------------------------------------
  app.get('/api/filtering/activity', { config: { access: 'activity.read' }, schema: { summary: 'Filtering activity, newest first: by person, device, address, site, action and time', tags, querystring: activityQuerySchema } }, async (request) => {
    await service.flushActivity();
    return { activity: await queryActivity(rt.db.kysely, request.query), retentionDays: rt.profile.filtering.activityRetentionDays };
  });

  app.get('/api/filtering/mappings', { config: { access: 'activity.read' }, schema: { summary: 'Who is at which address now (captive sign-ins, the identity API, proxy sign-ins)', tags } }, async () => ({ mappings: await currentMappings(rt.db.kysely, rt.clock.now()) }));

  // --- Devices (FI-01, FI-05) --------------------------------------------------------------------------------
  app.get('/api/filtering/devices', { config: { access: 'filtering.read' }, schema: { summary: 'Registered devices (by address, network or MAC) and their policies', tags } }, async () => ({ devices: await listDevices(rt.db.kysely) }));

  app.post('/api/filtering/devices', { config: { access: 'filtering.manage' }, schema: { summary: 'Register a device', tags, body: deviceSchema } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'device.save', deviceId: null, device: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    const device = await saveDevice(rt, actorOf(request), null, request.body, metaOf(request));
    await changed();
    return reply.status(201).send(device);
  });

  app.put('/api/filtering/devices/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Change a device', tags, params: uuidParams, body: deviceSchema } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'device.save', deviceId: request.params.id, device: request.body }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    const device = await saveDevice(rt, actorOf(request), request.params.id, request.body, metaOf(request));
    await changed();
    return device;
  });

  app.delete('/api/filtering/devices/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Remove a device', tags, params: uuidParams } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'device.remove', deviceId: request.params.id }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    await deleteDevice(rt, actorOf(request), request.params.id, metaOf(request));
    await changed();
    return reply.status(204).send();
  });

  // --- The identity API and its tokens (FI-01) -------------------------------------------------------------------
  app.get('/api/filtering/identity-tokens', { config: { access: 'filtering.manage' }, schema: { summary: 'Tokens for the identity API (never the tokens themselves)', tags } }, async () => ({ tokens: await listIdentityTokens(rt.db.kysely) }));

  app.post('/api/filtering/identity-tokens', { config: { access: 'filtering.manage' }, schema: { summary: 'Make an identity-API token for RADIUS accounting or a device agent: shown once', tags, body: newIdentityTokenSchema } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'identity_token.create', token: request.body }, request.headers, metaOf(request));
    // Made on approval; its secret is shown once, to the approver, who hands it over.
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    return reply.status(201).send(await createIdentityToken(rt, actorOf(request), request.body, metaOf(request)));
  });

  app.delete('/api/filtering/identity-tokens/:id', { config: { access: 'filtering.manage' }, schema: { summary: 'Revoke an identity-API token', tags, params: uuidParams } }, async (request, reply) => {
    const pending = await changeRequestFor(rt, actorOf(request), { kind: 'identity_token.revoke', tokenId: request.params.id }, request.headers, metaOf(request));
    if (pending) return reply.status(statusOfChange(pending)).send({ changeRequest: pending });
    return revokeIdentityToken(rt, actorOf(request), request.params.id, metaOf(request));
  });

  app.post('/api/filtering/identity', { config: { access: 'filter_agent' }, schema: { summary: 'RADIUS accounting or a device agent: who (or which registered device, by MAC) is at an address, from now (start) or no longer (stop)', tags, body: identityPostSchema } }, async (request) => {
    const result = await postIdentity(rt, request.filterAgent!, request.body, metaOf(request));
    await changed();
    return result;
  });

  // --- The captive page (FI-02) ---------------------------------------------------------------------------------
  app.get('/api/filtering/connect', { config: { access: 'authenticated' }, schema: { summary: 'Is this device connected as me? (the captive page)', tags } }, async (request) => ({ ip: plainIp(request.ip), connection: await myConnection(rt, request.auth!.accountId, request.ip) }));

  app.post('/api/filtering/connect', { config: { access: 'authenticated' }, schema: { summary: 'Connect this device as me until the end of the school day (the captive page)', tags } }, async (request) => {
    const connection = await connectAtCaptivePage(rt, actorOf(request), request.ip, metaOf(request));
    await changed();
    const policy = service.identify(plainIp(request.ip));
    return { ip: plainIp(request.ip), connection, policy: (await getPolicy(rt, policy.policyId).catch(() => null))?.name ?? policy.policyId };
  });

  app.delete('/api/filtering/connect', { config: { access: 'authenticated' }, schema: { summary: 'Disconnect this device from me (the captive page)', tags } }, async (request) => {
    const ended = await disconnectAtCaptivePage(rt, actorOf(request), request.ip, metaOf(request));
    await changed();
    return { ended };
  });

  // --- The block page (FI-13) ---------------------------------------------------------------------------------
  app.get(
    '/api/filtering/blocked',
    { config: { access: 'public' }, schema: { summary: 'Why a site is blocked for this device (the block page)', tags, querystring: z.object({ host: z.string().trim().min(1).max(300), url: z.string().max(2000).optional(), category: z.string().max(200).optional(), action: z.string().max(20).optional() }) } },
    async (request) => {
      await service.ready();
      const { verdict, kind, who, policyId } = blockedFor(service, request, request.query.host, request.query.url);
      const category = verdict.category ? await rt.db.kysely.selectFrom('filter_category').select(['name', 'description']).where('id', '=', verdict.category).executeTakeFirst() : undefined;
      // `reason` and `policy` are the engine's words, as staff see them; `message` and `device` are for the person at the page.
      const words = blockPageWords(verdict, { illegal: kind === 'illegal', unknownDevice: policyId === UNKNOWN_POLICY });
      return { host: request.query.host, action: verdict.action, reason: verdict.reason, ...words, category: verdict.category, categoryName: verdict.categoryName, categoryDescription: category?.description ?? null, unblockable: verdict.unblockable && kind !== 'illegal', illegal: kind === 'illegal', policy: verdict.policy, signedInAs: request.auth?.username ?? who.username };
    },
  );

  app.post('/api/filtering/requests', { config: { access: 'public' }, schema: { summary: 'From the block page: ask for a site to be unblocked, or report a page (stored for review)', tags, body: filterRequestSchema } }, async (request, reply) => {
    await service.ready();
    const { verdict, kind, who } = blockedFor(service, request, request.body.host, request.body.url ?? undefined);
    const saved = await submitFilterRequest(
      rt,
      request.body,
      { accountId: request.auth?.accountId ?? who.personId, username: request.auth?.username ?? who.username, deviceName: who.deviceName, ip: plainIp(request.ip) },
      { unblockable: verdict.unblockable, category: verdict.category, kind },
      request.id,
    );
    return reply.status(201).send({ id: saved.id, kind: saved.kind, status: saved.status });
  });

  app.get('/api/filtering/requests', { config: { access: 'filtering.read' }, schema: { summary: 'Requests and reports from the block page', tags, querystring: z.object({ status: z.enum(['open', 'approved', 'refused', 'closed']).optional() }) } }, async (request) => ({ requests: await listFilterRequests(rt.db.kysely, request.query) }));

}

/** The verdict for the device asking (its person, device or the unknown policy), and whether the host is on an illegal list. */
function blockedFor(service: FilterService, request: FastifyRequest, host: string, url: string | undefined) {
  const who = service.identify(plainIp(request.ip));
  // A signed-in person (the console's own session) is judged by their own policy.
  let policyId = who.policyId;
  if (request.auth) {
    try {
      policyId = service.policyFor({ personId: request.auth.accountId }).policyId;
    } catch {
      // not an active person in the index yet: the device's policy
    }
  }
  const target = url && url.length > 0 ? url : host;
  const { path } = splitUrl(target);
  const snapshot = service.snapshot();
  const explanation = snapshot.explain(splitUrl(host).host, snapshot.policy(policyId), service.rt.clock.now().getTime(), path);
  const illegal = explanation.matches.some((m) => m.kind === 'illegal');
  const kind = illegal ? 'illegal' : explanation.verdict.rule === 'fallback' ? 'fallback' : null;
  return { verdict: explanation.verdict, kind, who, policyId };
}
