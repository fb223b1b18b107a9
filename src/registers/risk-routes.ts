import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { CSV_BODY_LIMIT, csvImportBody } from './csv.js';
import { addRisk, closeRisk, editRisk, exportRisksCsv, importRisksCsv, listRisks, reviewRisk, riskEditSchema, riskSchema } from './risks.js';

const idParams = z.object({ id: z.uuid('must be an id') });

/** GV-01: the risk register over HTTP: add, edit, review (re-score), close, CSV export and import. */
export function registerRiskRoutes(app: App, rt: Runtime): void {
  const tags = ['registers'];
  app.get('/api/risks', { config: { access: 'risks.read' }, schema: { summary: 'The risk register, highest score first', tags } }, async () => ({ risks: await listRisks(rt) }));
  app.get('/api/risks/export.csv', { config: { access: 'risks.read' }, schema: { summary: 'The risk register as CSV (audited)', tags } }, async (request, reply) =>
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="risks-${rt.clock.now().toISOString().slice(0, 10)}.csv"`).header('cache-control', 'no-store').send(await exportRisksCsv(rt, actorOf(request), metaOf(request))),
  );
  app.post('/api/risks/import', { bodyLimit: CSV_BODY_LIMIT, config: { access: 'risks.manage' }, schema: { summary: 'Import risks from CSV: every row checked first, nothing imported on any error (audited)', tags, body: csvImportBody } }, async (request, reply) =>
    reply.code(201).send(await importRisksCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.post('/api/risks', { config: { access: 'risks.manage' }, schema: { summary: 'Add a risk (audited)', tags, body: riskSchema } }, async (request, reply) =>
    reply.code(201).send(await addRisk(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.patch('/api/risks/:id', { config: { access: 'risks.manage' }, schema: { summary: 'Correct a risk’s title, owner or treatment without reviewing it (audited with the values before)', tags, params: idParams, body: riskEditSchema } }, async (request) =>
    editRisk(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.put('/api/risks/:id', { config: { access: 'risks.manage' }, schema: { summary: 'Review a risk: re-score it and set the next review (audited)', tags, params: idParams, body: riskSchema } }, async (request) =>
    reviewRisk(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.delete('/api/risks/:id', { config: { access: 'risks.manage' }, schema: { summary: 'Close a risk (audited)', tags, params: idParams } }, async (request, reply) => {
    await closeRisk(rt, actorOf(request), request.params.id, metaOf(request));
    return reply.code(204).send();
  });
}
