import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { acknowledgeAlert, alertEngineFor, alertQuerySchema, closeAlert, closeSchema, getAlert, listAlerts, outcomeLabels, visibleKinds } from './alerts.js';
import { filterServiceFor } from '../filtering/service.js';
import './report.js';

const idParams = z.object({ id: z.uuid('must be an id') });

/** FI-11, MO-02, MO-03, MO-07: the alerts over HTTP; each person sees only the kinds their role is for. */
export function registerAlertRoutes(app: App, rt: Runtime): void {
  const tags = ['alerts'];
  // Activity written by this node's filter is evaluated by this node's engine (registered once per runtime).
  const engine = alertEngineFor(rt);
  filterServiceFor(rt).onActivityWritten(engine.observer);
  app.get(
    '/api/alerts',
    { config: { access: 'alerts.read' }, schema: { summary: 'Alerts of the kinds this person may see, newest first, filtered by status, kind, severity and person; the outcomes to close them with', tags, querystring: alertQuerySchema } },
    async (request) => {
      const actor = actorOf(request);
      return { alerts: await listAlerts(rt, actor, request.query), kinds: visibleKinds(actor.role), outcomes: Object.entries(outcomeLabels).map(([id, label]) => ({ id, label })) };
    },
  );
  app.get('/api/alerts/:id', { config: { access: 'alerts.read' }, schema: { summary: 'One alert: who, device, what, when, why, and what was done', tags, params: idParams } }, async (request) => getAlert(rt, actorOf(request), request.params.id));
  app.post(
    '/api/alerts/:id/acknowledge',
    { config: { access: 'alerts.handle' }, schema: { summary: 'Acknowledge an alert as the named person looking into it (audited; once)', tags, params: idParams } },
    async (request) => acknowledgeAlert(rt, actorOf(request), request.params.id, metaOf(request)),
  );
  app.post(
    '/api/alerts/:id/close',
    { config: { access: 'alerts.handle' }, schema: { summary: 'Close an acknowledged alert with the action taken and the outcome (audited)', tags, params: idParams, body: closeSchema } },
    async (request) => closeAlert(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
}
