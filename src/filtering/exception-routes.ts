import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import {
  approveFilterOff, decideRequestSchema, decideUnblockRequest, decisionLog, endException, filterOffSchema, lessonAllowanceSchema, listExceptions, openForClass,
  quarantineDevice, quarantineSchema, releaseDevice, requestFilterOff, requestOutcome, reviewDecision,
} from './exceptions.js';

const idParams = z.object({ id: z.uuid('must be an id') });

/** Filter exceptions over HTTP (issue 11: FI-07, FI-08, FI-12, FI-13, IN-06). */
export function registerExceptionRoutes(app: App, rt: Runtime): void {
  const tags = ['filtering'];
  app.get('/api/filtering/requests/:id/outcome', { config: { access: 'public' }, schema: { summary: 'The requester’s view of their unblock request (from the link the block page gives): open, allowed until when, or refused with the reason', tags, params: idParams } }, async (request) => requestOutcome(rt, request.params.id));
  app.get('/api/filtering/my-requests', { config: { access: 'authenticated' }, schema: { summary: 'My unblock requests and their outcomes', tags } }, async (request) => {
    const rows = await rt.db.kysely.selectFrom('filter_request').select('id').where('account_id', '=', request.auth!.accountId).orderBy('created_at', 'desc').limit(100).execute();
    return { requests: await Promise.all(rows.map((r) => requestOutcome(rt, r.id))) };
  });
  app.post('/api/filtering/requests/:id/decision', { config: { access: 'exceptions.decide' }, schema: { summary: 'Decide an unblock request: allow for the person, a group or everyone for a time, or refuse with a reason (audited)', tags, params: idParams, body: decideRequestSchema } }, async (request) => decideUnblockRequest(rt, actorOf(request), request.params.id, request.body));
  app.get('/api/filtering/decisions', { config: { access: 'exceptions.read' }, schema: { summary: 'The log of unblock decisions with who reviewed each and when (FI-08)', tags } }, async () => ({ decisions: await decisionLog(rt) }));
  app.post('/api/filtering/decisions/:id/review', { config: { access: 'exceptions.review' }, schema: { summary: 'Mark a decision reviewed (by someone other than who decided)', tags, params: idParams, body: z.object({ note: z.string().trim().max(1000).optional() }).strict() } }, async (request, reply) => {
    await reviewDecision(rt, actorOf(request), request.params.id, request.body.note ?? null);
    return reply.status(204).send();
  });
  app.get('/api/filtering/exceptions', { config: { access: 'exceptions.read' }, schema: { summary: 'Filter exceptions: allowances, lesson allowances, filtering turned off, quarantined devices', tags, querystring: z.object({ kind: z.enum(['allow', 'lesson', 'filter-off', 'quarantine']).optional(), current: z.enum(['true', 'false']).optional() }).strict() } }, async (request) => ({
    exceptions: await listExceptions(rt, { kind: request.query.kind, current: request.query.current !== 'false' }),
    limits: { lessonAllowanceMaxMinutes: rt.profile.governance.lessonAllowanceMaxMinutes, filterOffMaxHours: rt.profile.governance.filterOffMaxHours, remediationSites: rt.profile.quarantine.remediationSites },
  }));
  app.post('/api/filtering/exceptions/:id/end', { config: { access: 'exceptions.decide' }, schema: { summary: 'End an allowance or filter-off early (audited)', tags, params: idParams } }, async (request) => endException(rt, actorOf(request), request.params.id));
  app.get('/api/filtering/lessons', { config: { access: 'lessons.open' }, schema: { summary: 'The classes I teach and the lesson allowances open for them', tags } }, async (request) => {
    const classes = await rt.db.kysely.selectFrom('group_member as m').innerJoin('directory_group as g', 'g.id', 'm.group_id').select(['g.id', 'g.name']).where('m.account_id', '=', request.auth!.accountId).where('m.member_role', '=', 'teacher').orderBy('g.name').execute();
    const ids = new Set(classes.map((c) => c.id));
    const open = (await listExceptions(rt, { kind: 'lesson', current: true })).filter((e) => e.subject !== null && ids.has(e.subject));
    return { classes, open, maxMinutes: rt.profile.governance.lessonAllowanceMaxMinutes };
  });
  app.post('/api/filtering/lessons', { config: { access: 'lessons.open' }, schema: { summary: 'Open a site or category for a class I teach, for the lesson (at most the profile’s maximum; never illegal content)', tags, body: lessonAllowanceSchema } }, async (request, reply) => reply.status(201).send(await openForClass(rt, actorOf(request), request.body)));
  app.post('/api/filtering/filter-off', { config: { access: 'filter_off.request' }, schema: { summary: 'Ask for filtering to be turned off for a person, group or address, with a reason and an end (a second approver must approve)', tags, body: filterOffSchema } }, async (request, reply) => reply.status(201).send(await requestFilterOff(rt, actorOf(request), request.body)));
  app.post('/api/filtering/filter-off/:id/approve', { config: { access: 'filter_off.approve' }, schema: { summary: 'Approve turning filtering off (not the person who asked); it ends by itself', tags, params: idParams } }, async (request) => approveFilterOff(rt, actorOf(request), request.params.id));
  app.post('/api/filtering/quarantine', { config: { access: 'quarantine.manage' }, schema: { summary: 'Quarantine a device by address or MAC: everything blocked at the resolver and proxy but the remediation sites (IN-06)', tags, body: quarantineSchema } }, async (request, reply) => reply.status(201).send(await quarantineDevice(rt, actorOf(request), request.body)));
  app.post('/api/filtering/quarantine/:id/release', { config: { access: 'quarantine.manage' }, schema: { summary: 'Release a quarantined device (by a named person, audited)', tags, params: idParams, body: z.object({ note: z.string().trim().max(1000).optional() }).strict() } }, async (request) => releaseDevice(rt, actorOf(request), request.params.id, request.body.note));
}
