import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import {
  addSecret,
  editSecret,
  exportSecretsCsv,
  getSecret,
  listSecrets,
  newSecretSchema,
  recordRotation,
  rotationDefaults,
  retireSecret,
  secretChangeSchema,
  setHolders,
} from './shared-secrets.js';

const holderSchema = z.object({ id: z.string(), username: z.string(), displayName: z.string(), status: z.string() });
export const secretSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  kindLabel: z.string(),
  location: z.string(),
  rotation: z.string(),
  rotationDays: z.number().nullable(),
  rotationLabel: z.string(),
  lastRotatedAt: z.string().nullable(),
  nextDueAt: z.string(),
  overdue: z.boolean(),
  dueSoon: z.boolean(),
  flaggedAt: z.string().nullable(),
  flagReason: z.string().nullable(),
  notes: z.string().nullable(),
  holders: z.array(holderSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
  retiredAt: z.string().nullable(),
});
const idParams = z.object({ id: z.uuid('must be a shared-secret id') });

/** PW-12: the shared-secrets register over HTTP. There is no field for a secret, here or anywhere. */
export function registerSharedSecretRoutes(app: App, rt: Runtime): void {
  const tags = ['shared secrets'];

  app.get(
    '/api/secrets',
    {
      config: { access: 'secrets.read' },
      schema: {
        summary: 'The shared-secrets register (PW-12): what each secret is for, where it is kept, who knows it and when it is next due to change — never the secret itself',
        tags,
        querystring: z.object({ includeRetired: z.enum(['true', 'false']).optional() }),
        response: { 200: z.object({ secrets: z.array(secretSchema), defaultRotation: z.object({ label: z.string(), termsListed: z.boolean() }), timeZone: z.string() }) },
      },
    },
    async (request) => ({ secrets: await listSecrets(rt, { includeRetired: request.query.includeRetired === 'true' }), defaultRotation: rotationDefaults(rt.profile), timeZone: rt.profile.timeZone }),
  );

  app.get(
    '/api/secrets/export.csv',
    { config: { access: 'secrets.read' }, schema: { summary: 'The shared-secrets register as CSV (PW-12): never the secrets themselves (audited)', tags, querystring: z.object({ includeRetired: z.enum(['true', 'false']).optional() }).strict() } },
    async (request, reply) =>
      reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="shared-secrets-${rt.clock.now().toISOString().slice(0, 10)}.csv"`)
        .header('cache-control', 'no-store')
        .send(await exportSecretsCsv(rt, actorOf(request), { includeRetired: request.query.includeRetired === 'true' }, metaOf(request))),
  );

  app.post('/api/secrets', { config: { access: 'secrets.manage' }, schema: { summary: 'Record a shared secret (its description, location, holders and rotation; not the secret)', tags, body: newSecretSchema, response: { 201: secretSchema } } }, async (request, reply) =>
    reply.status(201).send(await addSecret(rt, actorOf(request), request.body, metaOf(request))),
  );

  app.get('/api/secrets/:id', { config: { access: 'secrets.read' }, schema: { summary: 'One shared secret in the register', tags, params: idParams, response: { 200: secretSchema } } }, async (request) => getSecret(rt, request.params.id));

  app.patch('/api/secrets/:id', { config: { access: 'secrets.manage' }, schema: { summary: 'Change a secret’s name, kind, location, rotation or notes', tags, params: idParams, body: secretChangeSchema, response: { 200: secretSchema } } }, async (request) =>
    editSecret(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );

  app.put(
    '/api/secrets/:id/holders',
    { config: { access: 'secrets.manage' }, schema: { summary: 'Who knows the secret (replaces the list)', tags, params: idParams, body: z.object({ accountIds: z.array(z.uuid('must be account ids')).max(500) }), response: { 200: secretSchema } } },
    async (request) => setHolders(rt, actorOf(request), request.params.id, request.body.accountIds, metaOf(request)),
  );

  app.post('/api/secrets/:id/rotation', { config: { access: 'secrets.manage' }, schema: { summary: 'Record that the secret has been changed now: next due recomputed, any flag cleared, leaver checklists ticked', tags, params: idParams, response: { 200: secretSchema } } }, async (request) =>
    recordRotation(rt, actorOf(request), request.params.id, metaOf(request)),
  );

  app.post('/api/secrets/:id/retire', { config: { access: 'secrets.manage' }, schema: { summary: 'Retire a secret no longer in use (it leaves the register and the overview)', tags, params: idParams, response: { 200: secretSchema } } }, async (request) =>
    retireSecret(rt, actorOf(request), request.params.id, metaOf(request)),
  );
}
