import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { checkIn, createJob, currentPlan, exportJobsCsv, getJob, importJobsCsv, listJobs, listRestoreTests, jobSchema, planHistory, planSchema, recordPlan, recordRestoreTest, restoreTestSchema, retireJob, rotateToken } from './backups.js';
import { CSV_MAX_BYTES } from './csv.js';

const idParams = z.object({ id: z.uuid('must be an id') });
const csvBody = z.object({ csv: z.string().min(1, 'attach the CSV file').max(CSV_MAX_BYTES, `the file must be at most ${CSV_MAX_BYTES / 1024 / 1024} MB`) }).strict();
const checkinParams = z.object({ id: z.string().max(100), token: z.string().max(200) });

/** BK-01..05 (backups register and check-ins) over HTTP; the risk register's routes are in risk-routes.ts. */
export function registerBackupRoutes(app: App, rt: Runtime): void {
  const tags = ['registers'];
  app.get('/api/backups', { config: { access: 'backups.read' }, schema: { summary: 'Backup jobs with their state, test restores and the continuity plan', tags } },
    async () => ({ jobs: await listJobs(rt), restoreTests: await listRestoreTests(rt), plan: await currentPlan(rt) }));
  app.get('/api/backups/export.csv', { config: { access: 'backups.read' }, schema: { summary: 'The backups register as CSV (audited)', tags } },
    async (request, reply) => reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="backups.csv"').send(await exportJobsCsv(rt, actorOf(request), metaOf(request))));
  app.post('/api/backups', { config: { access: 'backups.manage' }, schema: { summary: 'Add a backup job; answers its check-in URL once (audited)', tags, body: jobSchema } },
    async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await createJob(rt, actorOf(request), request.body, metaOf(request))));
  app.post('/api/backups/import', { bodyLimit: CSV_MAX_BYTES * 2 + 4096, config: { access: 'backups.manage' }, schema: { summary: 'Import backup jobs from CSV: every row checked first, nothing imported on any error; answers each new check-in URL once (audited)', tags, body: csvBody } },
    async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await importJobsCsv(rt, actorOf(request), request.body.csv, metaOf(request))));
  app.get('/api/backups/plan/history', { config: { access: 'backups.read' }, schema: { summary: 'Every version of the continuity and disaster recovery plan, newest first', tags } },
    async () => ({ versions: await planHistory(rt) }));
  app.get('/api/backups/:id', { config: { access: 'backups.read' }, schema: { summary: 'One backup job', tags, params: idParams } }, async (request) => getJob(rt, request.params.id));
  app.post('/api/backups/:id/token', { config: { access: 'backups.manage' }, schema: { summary: 'Issue a new check-in token; the old one stops working (audited)', tags, params: idParams } },
    async (request, reply) => reply.header('cache-control', 'no-store').send(await rotateToken(rt, actorOf(request), request.params.id, metaOf(request))));
  app.delete('/api/backups/:id', { config: { access: 'backups.manage' }, schema: { summary: 'Retire a backup job (audited)', tags, params: idParams } },
    async (request, reply) => {
      await retireJob(rt, actorOf(request), request.params.id, metaOf(request));
      return reply.code(204).send();
    });
  app.post('/api/backups/restore-tests', { config: { access: 'backups.record' }, schema: { summary: 'Record a test restore and its result (audited)', tags, body: restoreTestSchema } },
    async (request, reply) => reply.code(201).send(await recordRestoreTest(rt, actorOf(request), request.body, metaOf(request))));
  app.put('/api/backups/plan', { config: { access: 'backups.record' }, schema: { summary: 'Record the reviewed continuity and disaster recovery plan with its ransomware response (audited)', tags, body: planSchema } },
    async (request) => recordPlan(rt, actorOf(request), request.body, metaOf(request)));

  // The check-in: a public URL holding the job's secret token (`curl -fsS URL`; `/fail` for a failed run).
  for (const method of ['GET', 'POST'] as const) {
    for (const [suffix, status] of [['', 'ok'], ['/fail', 'fail']] as const) {
      app.route({
        method,
        url: `/api/backups/checkin/:id/:token${suffix}`,
        config: { access: 'public' },
        schema: { summary: `Check-in from a backup run (${status === 'ok' ? 'success' : 'failure'}); the token is the job's secret`, tags, params: checkinParams },
        handler: async (request, reply) => {
          await checkIn(rt, request.params.id, request.params.token, status, request.ip);
          return reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send('OK\n');
        },
      });
    }
  }
}
