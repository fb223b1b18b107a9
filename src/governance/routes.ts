import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { approveChange, approveSchema, decisionSchema, exportChanges, getChange, listChanges, logQuerySchema, newChangeSchema, refuseChange, requestChange, rollBackChange, stateLabels, withdrawChange } from './changes.js';

const idParams = z.object({ id: z.uuid('must be an id') });

/** FI-06, AU-03, MO-06: filtering change requests, their approval by a second person, and the log. */
export function registerChangeRoutes(app: App, rt: Runtime): void {
  const tags = ['governance'];
  app.get('/api/governance/changes', { config: { access: 'changes.read' }, schema: { summary: 'The change-control log, newest first: by state, mine, dates; and who approves', tags, querystring: logQuerySchema } }, async (request) => ({
    changes: await listChanges(rt, actorOf(request), request.query),
    approvers: rt.profile.governance.changeApprovers,
    states: stateLabels,
  }));
  app.get('/api/governance/changes/export.csv', { config: { access: 'changes.read' }, schema: { summary: 'The change-control log as CSV (audited)', tags, querystring: logQuerySchema } }, async (request, reply) => {
    const out = await exportChanges(rt, actorOf(request), 'csv', request.query, metaOf(request));
    return reply.header('content-type', out.contentType).header('content-disposition', `attachment; filename="${out.filename}"`).header('cache-control', 'no-store').send(out.body);
  });
  app.get('/api/governance/changes/export.pdf', { config: { access: 'changes.read' }, schema: { summary: 'The change-control log as PDF (audited)', tags, querystring: logQuerySchema } }, async (request, reply) => {
    const out = await exportChanges(rt, actorOf(request), 'pdf', request.query, metaOf(request));
    return reply.header('content-type', out.contentType).header('content-disposition', `attachment; filename="${out.filename}"`).header('cache-control', 'no-store').send(out.body);
  });
  app.get('/api/governance/changes/:id', { config: { access: 'changes.read' }, schema: { summary: 'One change request', tags, params: idParams } }, async (request) => getChange(rt, request.params.id));
  app.post('/api/governance/changes', { config: { access: 'changes.request' }, schema: { summary: 'Ask for a filtering change (waits for a second person), or an emergency block (in effect at once, awaiting approval)', tags, body: newChangeSchema } }, async (request, reply) => {
    const change = await requestChange(rt, actorOf(request), request.body, metaOf(request));
    return reply.status(change.state === 'pending' ? 202 : 201).send(change);
  });
  app.post('/api/governance/changes/:id/approve', { config: { access: 'changes.approve' }, schema: { summary: 'Approve another person’s change: it is applied now (an emergency one stays in effect)', tags, params: idParams, body: approveSchema } }, async (request) => approveChange(rt, actorOf(request), request.params.id, request.body, metaOf(request)));
  app.post('/api/governance/changes/:id/refuse', { config: { access: 'changes.approve' }, schema: { summary: 'Refuse another person’s change, with the reason', tags, params: idParams, body: decisionSchema } }, async (request) => refuseChange(rt, actorOf(request), request.params.id, request.body, metaOf(request)));
  app.post('/api/governance/changes/:id/rollback', { config: { access: 'changes.approve' }, schema: { summary: 'Roll back an emergency change awaiting approval, with the reason', tags, params: idParams, body: decisionSchema } }, async (request) => rollBackChange(rt, actorOf(request), request.params.id, request.body, metaOf(request)));
  app.post('/api/governance/changes/:id/withdraw', { config: { access: 'changes.request' }, schema: { summary: 'Withdraw my own pending change', tags, params: idParams } }, async (request) => withdrawChange(rt, actorOf(request), request.params.id, metaOf(request)));
}
