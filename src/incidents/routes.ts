import { z } from 'zod';
import { GatehouseError } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import {
  addEvent,
  authoritySchema,
  breachRecord,
  closeIncident,
  closeSchema,
  concernSchema,
  createSchema,
  dismissConcern,
  dismissSchema,
  eventSchema,
  getIncident,
  icoSchema,
  listConcerns,
  listIncidents,
  recordAuthorityReport,
  recordIcoDecision,
  recordIncident,
  reportConcern,
  toCsv,
  updateIncident,
  updateSchema,
} from './service.js';

const idParams = z.object({ id: z.uuid('must be an id') });

/** The header the concern form sends: a cross-site page cannot send it without a CORS preflight Gatehouse never grants. */
export const CONCERN_HEADER = 'x-gatehouse-concern';

/** Incidents and breaches (issue 11: IN-01..IN-07, MO-03) over HTTP. */
export function registerIncidentRoutes(app: App, rt: Runtime): void {
  const tags = ['incidents'];
  app.post(
    '/api/concerns',
    {
      config: { access: 'public' },
      bodyLimit: 16 * 1024,
      schema: { summary: 'Report an online-safety or technical concern to the DSL / IT lead (anyone, named or anonymous; from the sign-in page or the block page). Answers with a reference only.', tags, body: concernSchema },
    },
    async (request, reply) => {
      if (request.headers[CONCERN_HEADER] !== '1') throw new GatehouseError('csrf_failed', 403, 'This request did not come from a Gatehouse page. Reload the page and try again.');
      const { reference } = await reportConcern(rt, request.body, metaOf(request));
      return reply.code(202).header('cache-control', 'no-store').send({ reference });
    },
  );
  app.get('/api/concerns', { config: { access: 'concerns.read' }, schema: { summary: 'Concerns reported (online-safety ones: the DSL; technical ones: the IT lead and the DSL)', tags } }, async (request) => ({ concerns: await listConcerns(rt, actorOf(request)) }));
  app.post(
    '/api/concerns/:id/dismiss',
    { config: { access: 'concerns.read' }, schema: { summary: 'Close a concern that needs no incident, saying why (audited)', tags, params: idParams, body: dismissSchema } },
    async (request, reply) => {
      await dismissConcern(rt, actorOf(request), request.params.id, request.body, metaOf(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/incidents',
    { config: { access: 'incidents.read' }, schema: { summary: 'The incident register: the categories the reader’s role may see, newest first', tags, querystring: z.object({ status: z.enum(['open', 'closed']).optional() }).strict() } },
    async (request) => ({ incidents: await listIncidents(rt, actorOf(request), request.query) }),
  );
  app.post(
    '/api/incidents',
    { config: { access: 'incidents.record' }, schema: { summary: 'Record an incident by hand, from an alert (alertRef) or from a concern (concernId); a data breach starts its 72-hour clock at awareAt (audited)', tags, body: createSchema } },
    async (request, reply) => reply.code(201).send(await recordIncident(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.get(
    '/api/incidents/breach-record',
    { config: { access: 'incidents.breach' }, schema: { summary: 'The Art 33(5) record of every personal-data breach, reported or not (CSV)', tags } },
    async (_request, reply) =>
      reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="breach-record.csv"').header('cache-control', 'no-store').send(toCsv(await breachRecord(rt))),
  );
  app.get('/api/incidents/:id', { config: { access: 'incidents.read' }, schema: { summary: 'One incident with its timeline (not found unless the reader’s role may see its category)', tags, params: idParams } }, async (request) => getIncident(rt, actorOf(request), request.params.id));
  app.patch(
    '/api/incidents/:id',
    { config: { access: 'incidents.manage' }, schema: { summary: 'Record people and devices involved, containment, cause, actions, policy updates (each change a timeline entry, audited)', tags, params: idParams, body: updateSchema } },
    async (request) => updateIncident(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post(
    '/api/incidents/:id/timeline',
    { config: { access: 'incidents.manage' }, schema: { summary: 'Add to the timeline: a note, a containment step, or a device quarantine (append-only, audited)', tags, params: idParams, body: eventSchema } },
    async (request, reply) => reply.code(201).send(await addEvent(rt, actorOf(request), request.params.id, request.body, metaOf(request))),
  );
  app.post(
    '/api/incidents/:id/ico-decision',
    { config: { access: 'incidents.breach' }, schema: { summary: 'Record the ICO decision on a personal-data breach: reportable or not, why, and the ICO reference (once, audited)', tags, params: idParams, body: icoSchema } },
    async (request) => recordIcoDecision(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post(
    '/api/incidents/:id/authority-report',
    { config: { access: 'incidents.manage' }, schema: { summary: 'Record the report of a cyber incident to Action Fraud, the NCSC or the police, with their reference (once, audited)', tags, params: idParams, body: authoritySchema } },
    async (request) => recordAuthorityReport(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post(
    '/api/incidents/:id/close',
    { config: { access: 'incidents.manage' }, schema: { summary: 'Close an incident with its outcome (a breach only once its ICO decision is recorded; audited)', tags, params: idParams, body: closeSchema } },
    async (request) => closeIncident(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
}
