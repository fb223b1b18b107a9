import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { accessMatrix, addSystem, changeSystem, grantInputSchema, listSystems, removeSystem, setGrant, systemChangeSchema, systemInputSchema } from './matrix.js';
import {
  cancelReview,
  decideAccount,
  decisionInputSchema,
  getReview,
  listReviews,
  matrixNoteSchema,
  noteOnMatrix,
  reviewStatus,
  signOff,
  signOffSchema,
  startReview,
} from './review.js';

const grantSchema = z.object({ subject: z.string(), level: z.string(), note: z.string().nullable(), updatedAt: z.string() });
const systemSchema = z.object({ id: z.string(), name: z.string(), description: z.string().nullable(), createdAt: z.string(), grants: z.array(grantSchema) });
const matrixSchema = z.object({
  gatehouse: z.object({
    roles: z.array(z.object({ role: z.string(), label: z.string(), shortLabel: z.string() })),
    permissions: z.array(z.object({ permission: z.string(), area: z.string(), description: z.string(), roles: z.array(z.string()) })),
  }),
  systems: z.array(systemSchema),
  subjects: z.array(z.object({ subject: z.string(), kind: z.string(), name: z.string(), groupKind: z.string().optional() })),
  levels: z.array(z.object({ level: z.string(), label: z.string(), description: z.string() })),
  rules: z.array(z.object({ id: z.string(), requirement: z.string(), rule: z.string(), enforcedBy: z.string() })),
});
const personSchema = z.object({ id: z.string().nullable(), name: z.string() });
const privilegedSchema = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  roleLabel: z.string(),
  status: z.string(),
  isBreakGlass: z.boolean(),
  linkedAccount: z.object({ id: z.string(), username: z.string(), displayName: z.string() }).nullable(),
  reasons: z.array(z.string()),
  lastSignInAt: z.string().nullable(),
  mfaEnrolled: z.boolean(),
});
const decisionSchema = z.object({ decision: z.string(), note: z.string().nullable(), disabled: z.boolean(), decidedAt: z.string(), decidedBy: personSchema });
const reviewSummarySchema = z.object({
  id: z.string(),
  status: z.string(),
  startedAt: z.string(),
  startedBy: personSchema,
  signedOffAt: z.string().nullable(),
  signedOffBy: personSchema.nullable(),
  summary: z.string().nullable(),
  accounts: z.number(),
  decided: z.number(),
  changes: z.number(),
});
const reviewSchema = reviewSummarySchema.extend({
  snapshot: z.object({ takenAt: z.string(), startedBy: personSchema, everyMonths: z.number(), matrix: matrixSchema, accounts: z.array(privilegedSchema) }),
  decisions: z.object({ accounts: z.record(z.string(), decisionSchema), matrixNote: z.string().nullable(), signedOffBy: personSchema.optional() }),
});
const statusSchema = z.object({ everyMonths: z.number(), lastSignedOffAt: z.string().nullable(), nextDueAt: z.string().nullable(), overdue: z.boolean(), inProgress: reviewSummarySchema.nullable() });

const systemParams = z.object({ id: z.uuid('must be a school system id') });
const reviewParams = z.object({ id: z.uuid('must be a review id') });
const decisionParams = reviewParams.extend({ accountId: z.uuid('must be an account id') });

export function registerAccessRoutes(app: App, rt: Runtime): void {
  const tags = ['access rights'];
  const system = async (id: string) => {
    const found = (await listSystems(rt.db.kysely)).find((s) => s.id === id);
    if (!found) throw new Error('school system vanished after its change');
    return found;
  };

  app.get(
    '/api/access/matrix',
    {
      config: { access: 'access.read' },
      schema: {
        summary: 'The access-rights matrix (AC-01): every role’s permissions in Gatehouse (from the authorization table), each role’s and group’s rights in the school’s systems, and the object-level rules (AC-03)',
        tags,
        response: { 200: matrixSchema },
      },
    },
    async () => accessMatrix(rt.db.kysely),
  );

  app.post('/api/access/systems', { config: { access: 'access.manage' }, schema: { summary: 'List a school system (e.g. "MIS (Arbor)", "Finance")', tags, body: systemInputSchema, response: { 201: systemSchema } } }, async (request, reply) => {
    const id = await rt.trail.transaction(actorOf(request), (ctx) => addSystem(ctx, request.body), metaOf(request));
    return reply.status(201).send(await system(id));
  });

  app.patch('/api/access/systems/:id', { config: { access: 'access.manage' }, schema: { summary: 'Rename a school system or change its description', tags, params: systemParams, body: systemChangeSchema, response: { 200: systemSchema } } }, async (request) => {
    await rt.trail.transaction(actorOf(request), (ctx) => changeSystem(ctx, request.params.id, request.body), metaOf(request));
    return system(request.params.id);
  });

  app.delete('/api/access/systems/:id', { config: { access: 'access.manage' }, schema: { summary: 'Remove a school system and the rights recorded in it', tags, params: systemParams } }, async (request, reply) => {
    await rt.trail.transaction(actorOf(request), (ctx) => removeSystem(ctx, request.params.id), metaOf(request));
    return reply.status(204).send();
  });

  app.put(
    '/api/access/systems/:id/grants',
    { config: { access: 'access.manage' }, schema: { summary: 'Record what a role or directory group may do in a school system (none, read, edit, admin), or clear it with level null', tags, params: systemParams, body: grantInputSchema, response: { 200: systemSchema } } },
    async (request) => {
      await rt.trail.transaction(actorOf(request), (ctx) => setGrant(ctx, request.params.id, request.body), metaOf(request));
      return system(request.params.id);
    },
  );

  // --- The annual access review (AC-02) --------------------------------------------------------
  app.get(
    '/api/access/reviews',
    { config: { access: 'access.read' }, schema: { summary: 'When the access review is next due, the review in progress, and every past review', tags, response: { 200: z.object({ status: statusSchema, reviews: z.array(reviewSummarySchema) }) } } },
    async () => ({ status: await reviewStatus(rt), reviews: await listReviews(rt.db.kysely) }),
  );

  app.post('/api/access/reviews', { config: { access: 'access.review' }, schema: { summary: 'Start an access review: a snapshot of the matrix and every privileged account is kept', tags, response: { 201: reviewSchema } } }, async (request, reply) => {
    const id = await rt.trail.transaction(actorOf(request), (ctx) => startReview(ctx, rt.profile.accessReview.everyMonths), metaOf(request));
    return reply.status(201).send(await getReview(rt.db.kysely, id));
  });

  app.get('/api/access/reviews/:id', { config: { access: 'access.read' }, schema: { summary: 'One review with its snapshot and decisions (read-only once signed off)', tags, params: reviewParams, response: { 200: reviewSchema } } }, async (request) =>
    getReview(rt.db.kysely, request.params.id),
  );

  app.put(
    '/api/access/reviews/:id/accounts/:accountId',
    {
      config: { access: 'access.review' },
      schema: { summary: 'Confirm a privileged account, or record that it must change (with a note; optionally disabling it now)', tags, params: decisionParams, body: decisionInputSchema, response: { 200: reviewSchema } },
    },
    async (request) => decideAccount(rt, actorOf(request), request.params.id, request.params.accountId, request.body, metaOf(request)),
  );

  app.put('/api/access/reviews/:id/matrix-note', { config: { access: 'access.review' }, schema: { summary: 'The reviewer’s note on the matrix (null removes it)', tags, params: reviewParams, body: matrixNoteSchema, response: { 200: reviewSchema } } }, async (request) => {
    await rt.trail.transaction(actorOf(request), (ctx) => noteOnMatrix(ctx, request.params.id, request.body), metaOf(request));
    return getReview(rt.db.kysely, request.params.id);
  });

  app.post('/api/access/reviews/:id/sign-off', { config: { access: 'access.review' }, schema: { summary: 'Sign the review off: every privileged account needs a decision', tags, params: reviewParams, body: signOffSchema, response: { 200: reviewSchema } } }, async (request) => {
    await rt.trail.transaction(actorOf(request), (ctx) => signOff(ctx, request.params.id, request.body), metaOf(request));
    return getReview(rt.db.kysely, request.params.id);
  });

  app.post('/api/access/reviews/:id/cancel', { config: { access: 'access.review' }, schema: { summary: 'Cancel the review in progress (it stays on record as cancelled)', tags, params: reviewParams, response: { 200: reviewSchema } } }, async (request) => {
    await rt.trail.transaction(actorOf(request), (ctx) => cancelReview(ctx, request.params.id), metaOf(request));
    return getReview(rt.db.kysely, request.params.id);
  });
}
