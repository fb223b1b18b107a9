import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { addPoolAccounts, allocateGuest, allocateSchema, endVisit, listPool, listVisits, poolAddSchema, visitsQuerySchema } from './service.js';

const visitSchema = z.object({
  id: z.string(),
  accountId: z.string(),
  username: z.string(),
  visitorName: z.string().nullable(),
  organisation: z.string().nullable(),
  purpose: z.string().nullable(),
  host: z.string().nullable(),
  startsAt: z.string(),
  endsAt: z.string(),
  endedAt: z.string().nullable(),
  endReason: z.string().nullable(),
  wipedAt: z.string().nullable(),
  allocatedBy: z.string(),
  state: z.enum(['active', 'past_end', 'ended', 'wiped']),
  wipeDueAt: z.string().nullable(),
});

const poolAccountSchema = z.object({
  id: z.string(),
  username: z.string(),
  state: z.enum(['free', 'allocated', 'past_end']),
  visit: visitSchema.nullable(),
  detailsHeld: z.number(),
  lastUsedAt: z.string().nullable(),
});

const slipSchema = z.object({
  school: z.string(),
  visitorName: z.string(),
  organisation: z.string().nullable(),
  username: z.string(),
  password: z.string(),
  validUntil: z.string(),
  timeZone: z.string(),
  aupAtSignIn: z.boolean(),
});

/** The guest desk (AC-05): reception allocates and ends visits; administrators keep the pool. */
export function registerGuestRoutes(app: App, rt: Runtime): void {
  const tags = ['guests'];

  app.get(
    '/api/guests/pool',
    { config: { access: 'guests.manage' }, schema: { summary: 'The guest-account pool: each account free, allocated (to whom, until when) or past its end awaiting the sweep', tags, response: { 200: z.object({ accounts: z.array(poolAccountSchema), free: z.number(), endOfDay: z.string(), retentionDays: z.number(), timeZone: z.string() }) } } },
    async () => {
      const accounts = await listPool(rt);
      return { accounts, free: accounts.filter((a) => a.state === 'free').length, endOfDay: rt.profile.guests.endOfDay, retentionDays: rt.profile.guests.retentionDays, timeZone: rt.profile.timeZone };
    },
  );

  // Creating accounts is an administrator's job (accounts.manage); reception only allocates them.
  app.post(
    '/api/guests/pool',
    { config: { access: 'accounts.manage' }, schema: { summary: 'Add guest accounts to the pool (guest-01, guest-02 … numbered on; no password, disabled while free)', tags, body: poolAddSchema, response: { 201: z.object({ created: z.array(z.string()) }) } } },
    async (request, reply) => reply.status(201).send({ created: await addPoolAccounts(rt, actorOf(request), request.body, metaOf(request)) }),
  );

  app.get(
    '/api/guests/visits',
    { config: { access: 'guests.manage' }, schema: { summary: 'Visits: today’s (in progress, and every one that started today), those in progress, or all', tags, querystring: visitsQuerySchema, response: { 200: z.object({ visits: z.array(visitSchema) }) } } },
    async (request) => ({ visits: await listVisits(rt, request.query.scope) }),
  );

  app.post(
    '/api/guests/visits',
    { config: { access: 'guests.manage' }, schema: { summary: 'Allocate a free guest account to a named visitor until the expected end (at the latest the end of the school day); the password is in the slip, shown once', tags, body: allocateSchema, response: { 201: z.object({ visit: visitSchema, slip: slipSchema }) } } },
    async (request, reply) => reply.status(201).send(await allocateGuest(rt, actorOf(request), request.body, metaOf(request))),
  );

  app.post(
    '/api/guests/visits/:id/end',
    { config: { access: 'guests.manage' }, schema: { summary: 'End a visit now: the guest’s sessions end and the account is disabled and freed', tags, params: z.object({ id: z.uuid('must be a visit id') }), response: { 200: visitSchema } } },
    async (request) => endVisit(rt, actorOf(request), request.params.id, metaOf(request)),
  );
}
