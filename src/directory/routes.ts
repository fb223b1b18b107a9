import { z } from 'zod';
import { notFound } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import { listQuerySchema } from '../identity/accounts.js';
import { exportDirectoryCsv } from './export.js';
import type { Runtime } from '../runtime.js';
import { createGroup, deleteGroup, groupInputSchema, listGroups, loadGroup, memberRoles, membersOf, removeMembership, setMembership, updateGroup } from './groups.js';

const groupSchema = z.object({ id: z.string(), name: z.string(), kind: z.string(), source: z.string(), externalId: z.string().nullable(), members: z.number(), teachers: z.number() });
const groupParams = z.object({ id: z.uuid('must be a group id') });
const memberParams = z.object({ id: z.uuid('must be a group id'), accountId: z.uuid('must be an account id') });

export function registerDirectoryRoutes(app: App, rt: Runtime): void {
  const tags = ['directory'];

  app.get('/api/groups', { config: { access: 'directory.read' }, schema: { summary: 'Year groups, classes, departments and other groups, with member and teacher counts', tags, response: { 200: z.object({ groups: z.array(groupSchema) }) } } }, async () => ({
    groups: await listGroups(rt.db.kysely),
  }));

  app.post('/api/groups', { config: { access: 'directory.manage' }, schema: { summary: 'Create a group', tags, body: groupInputSchema, response: { 201: groupSchema } } }, async (request, reply) => {
    const id = await rt.trail.transaction(actorOf(request), (ctx) => createGroup(ctx, request.body), metaOf(request));
    return reply.status(201).send((await listGroups(rt.db.kysely)).find((g) => g.id === id)!);
  });

  app.patch('/api/groups/:id', { config: { access: 'directory.manage' }, schema: { summary: 'Rename a group or change its kind', tags, params: groupParams, body: groupInputSchema.partial(), response: { 200: groupSchema } } }, async (request) => {
    await rt.trail.transaction(actorOf(request), (ctx) => updateGroup(ctx, request.params.id, request.body), metaOf(request));
    const group = (await listGroups(rt.db.kysely)).find((g) => g.id === request.params.id);
    if (!group) throw notFound('There is no such group.');
    return group;
  });

  app.delete('/api/groups/:id', { config: { access: 'directory.manage' }, schema: { summary: 'Delete a group (its members stay; their membership ends)', tags, params: groupParams } }, async (request, reply) => {
    await rt.trail.transaction(actorOf(request), (ctx) => deleteGroup(ctx, request.params.id), metaOf(request));
    return reply.status(204).send();
  });

  app.get('/api/groups/:id/members', { config: { access: 'directory.read' }, schema: { summary: 'A group’s members and teachers', tags, params: groupParams, response: { 200: z.object({ group: groupSchema.pick({ id: true, name: true, kind: true }), members: z.array(z.object({ accountId: z.string(), username: z.string(), displayName: z.string(), role: z.string(), status: z.string(), memberRole: z.string() })) }) } } }, async (request) => {
    const group = await loadGroup(rt.db.kysely, request.params.id);
    return { group: { id: group.id, name: group.name, kind: group.kind }, members: await membersOf(rt.db.kysely, group.id) };
  });

  app.put('/api/groups/:id/members/:accountId', { config: { access: 'directory.manage' }, schema: { summary: 'Add a person to a group, as a member or (for a class) its teacher', tags, params: memberParams, body: z.object({ role: z.enum(memberRoles, { error: 'must be member or teacher' }) }) } }, async (request, reply) => {
    await loadGroup(rt.db.kysely, request.params.id);
    const account = await rt.db.kysely.selectFrom('account').select(['id', 'role', 'display_name']).where('id', '=', request.params.accountId).executeTakeFirst();
    if (!account) throw notFound('There is no such account.');
    await rt.trail.transaction(actorOf(request), (ctx) => setMembership(ctx, request.params.id, request.params.accountId, request.body.role), metaOf(request));
    return reply.status(204).send();
  });

  app.delete('/api/groups/:id/members/:accountId', { config: { access: 'directory.manage' }, schema: { summary: 'Take a person out of a group', tags, params: memberParams } }, async (request, reply) => {
    const removed = await rt.trail.transaction(actorOf(request), (ctx) => removeMembership(ctx, request.params.id, request.params.accountId), metaOf(request));
    if (!removed) throw notFound('That person is not in that group.');
    return reply.status(204).send();
  });

  app.get('/api/directory/export.csv', { config: { access: 'directory.read' }, schema: { summary: 'AC-12: the directory as CSV (the same filters as the list); the export is audited', tags, querystring: listQuerySchema.omit({ limit: true, offset: true }) } }, async (request, reply) => {
    const csv = await exportDirectoryCsv(rt, actorOf(request), request.query, metaOf(request));
    const day = rt.clock.now().toISOString().slice(0, 10);
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="gatehouse-directory-${day}.csv"`)
      .send(csv);
  });
}
