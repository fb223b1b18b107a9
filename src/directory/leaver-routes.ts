import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { getLeaver, listLeavers, startLeaver, startLeaverSchema, tickItem, tickSchema } from './leavers.js';

const itemSchema = z.object({
  id: z.string(),
  kind: z.string(),
  label: z.string(),
  how: z.enum(['automatic', 'linked', 'manual']),
  done: z.boolean(),
  notApplicable: z.boolean().optional(),
  doneAt: z.string().nullable(),
  doneBy: z.string().nullable(),
  detail: z.string().nullable().optional(),
  ref: z.string().nullable().optional(),
  href: z.string().nullable().optional(),
});
const leaverSchema = z.object({
  accountId: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  leftOn: z.string(),
  startedAt: z.string(),
  startedBy: z.string(),
  note: z.string().nullable(),
  completedAt: z.string().nullable(),
  items: z.array(itemSchema),
  done: z.number(),
  total: z.number(),
});
const accountParams = z.object({ accountId: z.uuid('must be an account id') });

/** AC-13: leavers over HTTP. */
export function registerLeaverRoutes(app: App, rt: Runtime): void {
  const tags = ['leavers'];

  app.post(
    '/api/accounts/:id/leaver',
    {
      config: { access: 'leavers.manage' },
      schema: {
        summary: 'Start a leaver: the account and its administrator account close, every session ends, every shared secret they knew is flagged for rotation, and the checklist starts',
        tags,
        params: z.object({ id: z.uuid('must be an account id') }),
        body: startLeaverSchema,
        response: { 201: leaverSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await startLeaver(rt, actorOf(request), request.params.id, request.body, metaOf(request))),
  );

  app.get('/api/leavers', { config: { access: 'leavers.manage' }, schema: { summary: 'Leaver checklists: open ones, and the most recently completed', tags, response: { 200: z.object({ open: z.array(leaverSchema), completed: z.array(leaverSchema), timeZone: z.string() }) } } }, async () => ({
    ...(await listLeavers(rt)),
    timeZone: rt.profile.timeZone,
  }),
  );

  app.get('/api/leavers/:accountId', { config: { access: 'leavers.manage' }, schema: { summary: 'One leaver’s checklist', tags, params: accountParams, response: { 200: leaverSchema } } }, async (request) =>
    getLeaver(rt, request.params.accountId),
  );

  app.post(
    '/api/leavers/:accountId/items/:itemId',
    {
      config: { access: 'leavers.manage' },
      schema: {
        summary: 'Tick or untick an item a person checks (such as the equipment returned); the checklist completes when every item is done',
        tags,
        params: accountParams.extend({ itemId: z.string().regex(/^[a-z0-9-]{1,80}$/, 'must be a checklist item id') }),
        body: tickSchema,
        response: { 200: leaverSchema },
      },
    },
    async (request) => tickItem(rt, actorOf(request), request.params.accountId, request.params.itemId, request.body.done, metaOf(request)),
  );
}
