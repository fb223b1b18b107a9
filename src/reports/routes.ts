import { z } from 'zod';
import { notFound } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { actionsSchema, checker, getCheck, guidedCheckSchema, listChecks, manualCheckSchema, recordManualCheck, runGuidedCheck, setCheckActions } from './checks.js';
import { CHECK_CATEGORIES } from './guided-check.js';
import { availablePeriods, findPeriod, issuedReport, issueTermlyReport, termlyReport, termlyReportPdf } from './termly.js';

const periodQuery = z.object({ period: z.iso.date({ message: 'must be a date like 2026-09-01' }).optional() }).strict();
const idParams = z.object({ id: z.uuid('must be an id') });

/** MO-05 (termly monitoring report), GV-03 and AU-04 (the register of filtering checks) over HTTP. */
export function registerReportRoutes(app: App, rt: Runtime): void {
  const tags = ['reports'];
  app.get(
    '/api/reports/termly',
    { config: { access: 'reports.read' }, schema: { summary: 'The termly monitoring report for a period (the latest by default), with the periods available and when it was issued', tags, querystring: periodQuery } },
    async (request) => {
      const period = findPeriod(rt, request.query.period);
      return { periods: availablePeriods(rt), report: await termlyReport(rt, period) };
    },
  );
  app.get(
    '/api/reports/termly/pdf',
    { config: { access: 'reports.read' }, schema: { summary: 'The termly monitoring report as a PDF, as it stands now (not an issued copy)', tags, querystring: periodQuery } },
    async (request, reply) => {
      const who = await checker(rt, actorOf(request));
      const report = await termlyReport(rt, findPeriod(rt, request.query.period));
      const { pdf, filename } = await termlyReportPdf(rt, report, who.name);
      return reply.header('content-type', 'application/pdf').header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store').send(pdf);
    },
  );
  app.post(
    '/api/reports/termly/issue',
    { config: { access: 'reports.issue' }, schema: { summary: 'Issue the report for a period to senior leaders and governors: the PDF is kept exactly as issued, with its SHA-256 (audited)', tags, body: z.object({ period: z.iso.date({ message: 'must be a date like 2026-09-01' }) }).strict() } },
    async (request, reply) => {
      const issued = await issueTermlyReport(rt, actorOf(request), findPeriod(rt, request.body.period), metaOf(request));
      return reply.code(201).send(issued);
    },
  );
  app.get(
    '/api/reports/issued/:id/pdf',
    { config: { access: 'reports.read' }, schema: { summary: 'An issued termly report, byte for byte as it was issued', tags, params: idParams } },
    async (request, reply) => {
      const found = await issuedReport(rt, request.params.id);
      if (!found) throw notFound('There is no such issued report.');
      return reply.header('content-type', 'application/pdf').header('content-disposition', `attachment; filename="${found.filename}"`).header('cache-control', 'no-store').send(found.pdf);
    },
  );

  app.get(
    '/api/checks',
    { config: { access: 'checks.read' }, schema: { summary: 'The register of filtering and monitoring checks, newest first, and the categories a guided check tries', tags } },
    async () => ({ checks: await listChecks(rt), categories: CHECK_CATEGORIES.map((c) => ({ id: c.id, name: c.name, note: c.note ?? null })) }),
  );
  app.get('/api/checks/:id', { config: { access: 'checks.read' }, schema: { summary: 'One check with its results', tags, params: idParams } }, async (request) => getCheck(rt, request.params.id));
  app.post(
    '/api/checks',
    { config: { access: 'checks.record' }, schema: { summary: 'Record a check made by hand: when, device, location, group, what was tested, the result and the actions (audited)', tags, body: manualCheckSchema } },
    async (request, reply) => reply.code(201).send(await recordManualCheck(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post(
    '/api/checks/guided',
    { config: { access: 'checks.record' }, schema: { summary: 'Run a guided check: real addresses of each UKSIC category through the live filter for a group, person or device, and the running resolver and proxy; recorded with its results (audited)', tags, body: guidedCheckSchema } },
    async (request, reply) => reply.code(201).send(await runGuidedCheck(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.put(
    '/api/checks/:id/actions',
    { config: { access: 'checks.record' }, schema: { summary: 'Record the actions resulting from a check (audited with the previous text)', tags, params: idParams, body: actionsSchema } },
    async (request) => setCheckActions(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
}
