import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { roles } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import {
  SCIM,
  createScimGroup,
  createUser,
  deleteScimGroup,
  deleteUser,
  getGroup,
  getUser,
  listGroups,
  listQuerySchema,
  listResponse,
  listUsers,
  patchSchema,
  patchScimGroup,
  patchUser,
  replaceScimGroup,
  replaceUser,
  resourceBodySchema,
  resourceTypes,
  schemaDefinitions,
  scimError,
  serviceProviderConfig,
  type Resource,
} from './scim.js';
import { createScimToken, listScimTokens, newScimTokenSchema, revokeScimToken, type ScimClient } from './scim-tokens.js';

const SCIM_JSON = 'application/scim+json; charset=utf-8';

const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  defaultRole: z.enum(roles),
  roles: z.array(z.enum(roles)),
  allowPrivileged: z.boolean(),
  adoptExisting: z.boolean(),
  source: z.string(),
  createdAt: z.string(),
  createdBy: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

/** SCIM resources are open-ended (extensions, attribute selection): checked by shape, not field by field. */
const resourceSchema = z.record(z.string(), z.unknown());
// No control characters (a NUL in a PostgreSQL query is a server error, found by fuzzing).
const idParams = z.object({ id: z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters') });
const selectQuery = listQuerySchema.pick({ attributes: true, excludedAttributes: true });

function scimErrorBody(status: number, detail: string, scimType?: string) {
  return { schemas: [SCIM.error], status: String(status), ...(scimType ? { scimType } : {}), detail };
}

/**
 * The SCIM base for `meta.location`, `$ref` and the Location header: from GATEHOUSE_PUBLIC_URL,
 * never from the request's Host header, which the client chooses (finding 12). Without a public
 * URL the links are relative (`/scim/v2/Users/<id>`), which RFC 7644 clients resolve against the
 * address they called.
 */
export function scimBaseUrl(publicUrl: string | undefined): string {
  return publicUrl ? `${new URL(publicUrl).origin}/scim/v2` : '/scim/v2';
}

const client = (request: FastifyRequest): ScimClient => request.scimClient!;

export function registerScimRoutes(app: App, rt: Runtime): void {
  // --- Tokens, managed by administrators from the console or the CLI -----------------------------
  const tags = ['scim'];
  app.get('/api/scim/tokens', { config: { access: 'directory.manage' }, schema: { summary: 'SCIM provisioning tokens (never the tokens themselves)', tags, response: { 200: z.object({ tokens: z.array(tokenSchema) }) } } }, async () => ({
    tokens: await listScimTokens(rt.db.kysely),
  }));

  app.post(
    '/api/scim/tokens',
    { config: { access: 'directory.manage' }, schema: { summary: 'Make a SCIM token for Entra ID or Google: shown once, stored only as its SHA-256', tags, body: newScimTokenSchema, response: { 201: z.object({ token: tokenSchema, secret: z.string() }) } } },
    async (request, reply) => reply.status(201).send(await createScimToken(rt, actorOf(request), request.body, metaOf(request))),
  );

  app.delete('/api/scim/tokens/:id', { config: { access: 'directory.manage' }, schema: { summary: 'Revoke a SCIM token: it stops working at once', tags, params: z.object({ id: z.uuid('must be a token id') }), response: { 200: tokenSchema } } }, async (request) =>
    revokeScimToken(rt, actorOf(request), request.params.id, metaOf(request)),
  );

  // --- SCIM 2.0 itself, for provisioning clients with a bearer token ----------------------------
  const base = scimBaseUrl(rt.config.publicUrl);
  app.register(
    async (plugin) => {
      const scope = plugin.withTypeProvider<ZodTypeProvider>();
      const json = scope.getDefaultJsonParser('error', 'error');
      scope.addContentTypeParser('application/scim+json', { parseAs: 'string' }, json);

      scope.addHook('onSend', async (_request, reply, payload) => {
        const type = String(reply.getHeader('content-type') ?? '');
        if (type === '' || type.startsWith('application/json')) reply.header('content-type', SCIM_JSON);
        return payload;
      });

      // Every error in the SCIM error schema (RFC 7644 §3.12), whatever raised it.
      scope.setErrorHandler((error, request, reply) => {
        if (hasZodFastifySchemaValidationErrors(error)) {
          const detail = error.validation.map((i) => `${error.validationContext ?? 'body'}${i.instancePath.replace(/\//g, '.')}: ${i.message}`).join('; ');
          return reply.status(400).send(scimErrorBody(400, detail, error.validationContext === 'querystring' ? 'invalidValue' : 'invalidSyntax'));
        }
        if (error instanceof GatehouseError) {
          const scimType = (error.details?.scimType as string | undefined) ?? (error.status === 409 ? 'uniqueness' : undefined);
          return reply.status(error.status).send(scimErrorBody(error.status, error.message, scimType));
        }
        // Two clients creating the same person at once: the database's unique index decides.
        const dbCode = (error as { code?: unknown }).code;
        if (dbCode === '23505' || dbCode === 'SQLITE_CONSTRAINT_UNIQUE') {
          return reply.status(409).send(scimErrorBody(409, 'That userName or externalId is already taken.', 'uniqueness'));
        }
        const clientError = error as { statusCode?: number; message?: string };
        if (clientError.statusCode && clientError.statusCode >= 400 && clientError.statusCode < 500) {
          return reply.status(clientError.statusCode).send(scimErrorBody(clientError.statusCode, clientError.message ?? 'Bad request.', clientError.statusCode === 400 ? 'invalidSyntax' : undefined));
        }
        request.log.error({ err: error }, 'unhandled error');
        return reply.status(500).send(scimErrorBody(500, `Something went wrong on the server. Reference: ${request.id}`));
      });

      scope.setNotFoundHandler((request, reply) => reply.status(404).send(scimErrorBody(404, `No such SCIM endpoint: ${request.method} ${request.url.split('?')[0]}`)));

      const config = { access: 'scim' as const };
      const t = ['scim 2.0'];
      const created = (reply: FastifyReply, resource: Resource) => reply.status(201).header('location', String((resource.meta as { location: string }).location)).send(resource);

      scope.get('/ServiceProviderConfig', { config, schema: { summary: 'What this SCIM service supports', tags: t, response: { 200: resourceSchema } } }, async () => serviceProviderConfig(base));

      scope.get('/ResourceTypes', { config, schema: { summary: 'The resource types: User and Group', tags: t, response: { 200: resourceSchema } } }, async () => {
        const types = resourceTypes(base);
        return listResponse(types, types.length, 1);
      });
      scope.get('/ResourceTypes/:id', { config, schema: { summary: 'One resource type', tags: t, params: idParams, response: { 200: resourceSchema } } }, async (request) => {
        const found = resourceTypes(base).find((r) => r.id === request.params.id);
        if (!found) throw scimError(404, undefined, `There is no resource type "${request.params.id}".`);
        return found;
      });

      scope.get('/Schemas', { config, schema: { summary: 'The schemas of User and Group, as Gatehouse keeps them', tags: t, response: { 200: resourceSchema } } }, async () => {
        const schemas = schemaDefinitions(base);
        return listResponse(schemas, schemas.length, 1);
      });
      scope.get('/Schemas/:id', { config, schema: { summary: 'One schema', tags: t, params: idParams, response: { 200: resourceSchema } } }, async (request) => {
        const found = schemaDefinitions(base).find((s) => s.id === request.params.id);
        if (!found) throw scimError(404, undefined, `There is no schema "${request.params.id}".`);
        return found;
      });

      // Users
      scope.get('/Users', { config, schema: { summary: 'Users, filtered (attr eq "value") and paged (startIndex, count)', tags: t, querystring: listQuerySchema, response: { 200: resourceSchema } } }, async (request) =>
        listUsers(rt.db.kysely, client(request), request.query, base),
      );
      scope.post('/Users', { config, schema: { summary: 'Create a user (no password: sign-in needs a temporary password or SSO)', tags: t, body: resourceBodySchema, response: { 201: resourceSchema } } }, async (request, reply) => {
        const id = await createUser(rt, client(request), request.body, metaOf(request));
        return created(reply, await getUser(rt.db.kysely, client(request), id, base));
      });
      scope.get('/Users/:id', { config, schema: { summary: 'One user', tags: t, params: idParams, querystring: selectQuery, response: { 200: resourceSchema } } }, async (request) =>
        getUser(rt.db.kysely, client(request), request.params.id, base, request.query),
      );
      scope.put('/Users/:id', { config, schema: { summary: 'Replace a user', tags: t, params: idParams, body: resourceBodySchema, response: { 200: resourceSchema } } }, async (request) => {
        await replaceUser(rt, client(request), request.params.id, request.body, metaOf(request));
        return getUser(rt.db.kysely, client(request), request.params.id, base);
      });
      scope.patch('/Users/:id', { config, schema: { summary: 'Change a user (PatchOp); active=false disables it and ends its sessions', tags: t, params: idParams, body: patchSchema, response: { 200: resourceSchema } } }, async (request) => {
        await patchUser(rt, client(request), request.params.id, request.body, metaOf(request));
        return getUser(rt.db.kysely, client(request), request.params.id, base);
      });
      scope.delete('/Users/:id', { config, schema: { summary: 'The person has left: the account is marked left and its sessions end', tags: t, params: idParams } }, async (request, reply) => {
        await deleteUser(rt, client(request), request.params.id, metaOf(request));
        return reply.status(204).send();
      });

      // Groups
      scope.get('/Groups', { config, schema: { summary: 'Groups, filtered and paged; excludedAttributes=members leaves members out', tags: t, querystring: listQuerySchema, response: { 200: resourceSchema } } }, async (request) =>
        listGroups(rt.db.kysely, client(request), request.query, base),
      );
      scope.post('/Groups', { config, schema: { summary: 'Create a group, with members if given', tags: t, body: resourceBodySchema, response: { 201: resourceSchema } } }, async (request, reply) => {
        const id = await createScimGroup(rt, client(request), request.body, metaOf(request));
        return created(reply, await getGroup(rt.db.kysely, client(request), id, base));
      });
      scope.get('/Groups/:id', { config, schema: { summary: 'One group', tags: t, params: idParams, querystring: selectQuery, response: { 200: resourceSchema } } }, async (request) =>
        getGroup(rt.db.kysely, client(request), request.params.id, base, request.query),
      );
      scope.put('/Groups/:id', { config, schema: { summary: 'Replace a group and its members', tags: t, params: idParams, body: resourceBodySchema, response: { 200: resourceSchema } } }, async (request) => {
        await replaceScimGroup(rt, client(request), request.params.id, request.body, metaOf(request));
        return getGroup(rt.db.kysely, client(request), request.params.id, base);
      });
      scope.patch('/Groups/:id', { config, schema: { summary: 'Change a group: rename, or Add/Remove members', tags: t, params: idParams, body: patchSchema } }, async (request, reply) => {
        await patchScimGroup(rt, client(request), request.params.id, request.body, metaOf(request));
        return reply.status(204).send();
      });
      scope.delete('/Groups/:id', { config, schema: { summary: 'Delete a group (its members stay)', tags: t, params: idParams } }, async (request, reply) => {
        await deleteScimGroup(rt, client(request), request.params.id, metaOf(request));
        return reply.status(204).send();
      });
    },
    { prefix: '/scim/v2' },
  );
}
