import { z } from 'zod';
import { GatehouseError, conflict } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import type { SetupGate } from './setup-gate.js';
import { PasswordRejected } from '../identity/password-change.js';
import { acceptable, checkPassword } from '../identity/password-rules.js';
import { settingsFor } from '../identity/policy.js';
import {
  completeSetup,
  contactInputSchema,
  contactRoleSchema,
  getSchool,
  listContacts,
  removeContact,
  schoolUpdateSchema,
  setContact,
  setupInputSchema,
  updateSchool,
} from './service.js';

const schoolSchema = z.object({ name: z.string(), urn: z.string().nullable(), createdAt: z.string(), updatedAt: z.string() });
const contactSchema = z.object({ role: z.string(), label: z.string(), name: z.string(), email: z.string().nullable(), updatedAt: z.string() });

export function registerSchoolRoutes(app: App, runtime: Runtime, gate: SetupGate): void {
  app.post(
    '/api/setup',
    {
      config: { access: 'public' },
      schema: {
        summary: 'First run: create the school and its master (break-glass) administrator with the one-time setup link',
        tags: ['setup'],
        body: setupInputSchema,
        response: { 201: z.object({ school: schoolSchema, administrator: z.object({ username: z.string() }) }) },
      },
    },
    async (request, reply) => {
      if (await getSchool({ db: runtime.db.kysely })) throw conflict('Gatehouse has already been set up. Sign in instead.', 'setup_done');
      if (!gate.matches(request.body.token)) {
        throw new GatehouseError('setup_link_invalid', 403, 'This setup link is not valid. Use the newest link printed when the server started.');
      }
      const { password, ...administrator } = request.body.administrator;
      const rules = checkPassword(settingsFor(runtime.profile, 'administrator'), password, {
        username: administrator.username,
        names: [administrator.displayName],
        personal: administrator.email ? [administrator.email] : [],
      });
      if (!acceptable(rules)) throw new PasswordRejected(rules);
      const passwordHash = await runtime.hasher.hash(password);
      await runtime.trail.transaction(
        { id: null, name: 'setup', role: null },
        (ctx) => completeSetup(ctx, { school: request.body.school, administrator: { ...administrator, passwordHash } }),
        metaOf(request),
      );
      gate.close();
      request.log.info({ administrator: administrator.username }, 'setup completed');
      return reply.status(201).send({ school: (await getSchool({ db: runtime.db.kysely }))!, administrator: { username: administrator.username } });
    },
  );

  app.get(
    '/api/school',
    { config: { access: 'school.read' }, schema: { summary: 'The school record', tags: ['school'], response: { 200: schoolSchema } } },
    async () => {
      const school = await getSchool({ db: runtime.db.kysely });
      if (!school) throw new GatehouseError('not_set_up', 404, 'Gatehouse has not been set up yet.');
      return school;
    },
  );

  app.patch(
    '/api/school',
    {
      config: { access: 'school.manage' },
      schema: { summary: 'Change the school name or URN', tags: ['school'], body: schoolUpdateSchema, response: { 200: schoolSchema } },
    },
    async (request) => runtime.trail.transaction(actorOf(request), (ctx) => updateSchool(ctx, request.body), metaOf(request)),
  );

  app.get(
    '/api/school/contacts',
    {
      config: { access: 'school.read' },
      schema: { summary: 'Named roles (GV-04): headteacher, DSL, DPO, governor, IT provider', tags: ['school'], response: { 200: z.object({ contacts: z.array(contactSchema) }) } },
    },
    async () => ({ contacts: await listContacts({ db: runtime.db.kysely }) }),
  );

  app.put(
    '/api/school/contacts/:role',
    {
      config: { access: 'school.manage' },
      schema: {
        summary: 'Record who holds a named role',
        tags: ['school'],
        params: z.object({ role: contactRoleSchema }),
        body: contactInputSchema,
        response: { 200: z.object({ contact: contactSchema, auditSeq: z.number() }) },
      },
    },
    async (request) => {
      const { contact, seq } = await runtime.trail.transaction(actorOf(request), (ctx) => setContact(ctx, request.params.role, request.body), metaOf(request));
      return { contact, auditSeq: seq };
    },
  );

  app.delete(
    '/api/school/contacts/:role',
    {
      config: { access: 'school.manage' },
      schema: { summary: 'Clear a named role', tags: ['school'], params: z.object({ role: contactRoleSchema }) },
    },
    async (request, reply) => {
      await runtime.trail.transaction(actorOf(request), (ctx) => removeContact(ctx, request.params.role), metaOf(request));
      return reply.status(204).send();
    },
  );
}
