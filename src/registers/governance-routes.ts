import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { CSV_MAX_BYTES } from './csv.js';
import {
  auditSchema, changeSchema, dpWalkSchema, exportableRegisters, exportRegisterCsv, filteringReviewPoints, filteringReviewStatus, filteringReviewSchema, importTrainingCsv,
  listPolicyReviews, listReviews, listShortfalls, physicalCheckSchema, physicalSecurityItems, policyReviewSchema, recommendationStatusSchema, recordChange, recordPolicyReview,
  recordReview, recordShortfall, recordTraining, reportShortfall, resolveShortfall, setRecommendationStatus, shortfallReportSchema, shortfallSchema, trainingRegister, trainingSchema,
} from './governance.js';

const idParams = z.object({ id: z.uuid('must be an id') });
const exportParams = z.object({ register: z.enum(exportableRegisters, { error: `must be one of ${exportableRegisters.join(', ')}` }) });
const csvBody = z.object({ csv: z.string().min(1, 'attach the CSV file').max(CSV_MAX_BYTES, `the file must be at most ${CSV_MAX_BYTES / 1024 / 1024} MB`) }).strict();

/** Issue 12: the governance registers (GV-01, GV-02, GV-05, GV-06, GV-07, GV-09, GV-10) over HTTP. */
export function registerGovernanceRoutes(app: App, rt: Runtime): void {
  const tags = ['governance'];
  app.get('/api/governance', { config: { access: 'governance.read' }, schema: { summary: 'The governance registers: reviews and audits with recommendations, the filtering review and when it is due, walks, physical checks, policy reviews and shortfalls', tags } }, async () => ({
    reviews: await listReviews(rt),
    filtering: await filteringReviewStatus(rt),
    policies: await listPolicyReviews(rt),
    shortfalls: await listShortfalls(rt, true),
    filteringPoints: filteringReviewPoints,
    physicalItems: physicalSecurityItems,
  }));
  app.get('/api/governance/export/:register', { config: { access: 'governance.read' }, schema: { summary: 'One governance register as CSV (audited)', tags, params: exportParams } }, async (request, reply) =>
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${request.params.register}-${rt.clock.now().toISOString().slice(0, 10)}.csv"`).header('cache-control', 'no-store')
      .send(await exportRegisterCsv(rt, actorOf(request), request.params.register, metaOf(request))),
  );
  app.post('/api/governance/reviews', { config: { access: 'governance.manage' }, schema: { summary: 'Record a review or audit of technical security with findings and recommendations (GV-01, audited)', tags, body: auditSchema } }, async (request, reply) =>
    reply.code(201).send(await recordReview(rt, actorOf(request), request.body.kind, request.body, metaOf(request))),
  );
  app.post('/api/governance/filtering-reviews', { config: { access: 'governance.manage' }, schema: { summary: 'Record the filtering and monitoring review, a note for each P4 9.15 point (GV-02, audited)', tags, body: filteringReviewSchema } }, async (request, reply) =>
    reply.code(201).send(await recordReview(rt, actorOf(request), 'filtering_monitoring', request.body, metaOf(request))),
  );
  app.post('/api/governance/review-triggers', { config: { access: 'governance.manage' }, schema: { summary: 'Record a change that brings the filtering review forward: a safeguarding risk, working practice or new technology (GV-02, audited)', tags, body: changeSchema } }, async (request, reply) =>
    reply.code(201).send(await recordChange(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/governance/dp-walks', { config: { access: 'governance.manage' }, schema: { summary: 'Record a data-protection walk or spot check with what was checked and found (GV-09, audited)', tags, body: dpWalkSchema } }, async (request, reply) =>
    reply.code(201).send(await recordReview(rt, actorOf(request), 'dp_walk', request.body, metaOf(request))),
  );
  app.post('/api/governance/physical-checks', { config: { access: 'governance.manage' }, schema: { summary: 'Record the physical-security checklist: server room, cabinets, access, cabling (GV-10, audited)', tags, body: physicalCheckSchema } }, async (request, reply) =>
    reply.code(201).send(await recordReview(rt, actorOf(request), 'physical_security', request.body, metaOf(request))),
  );
  app.put('/api/governance/recommendations/:id', { config: { access: 'governance.manage' }, schema: { summary: 'Set a recommendation’s status (audited)', tags, params: idParams, body: recommendationStatusSchema } }, async (request) =>
    setRecommendationStatus(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post('/api/governance/policy-reviews', { config: { access: 'governance.manage' }, schema: { summary: 'Record a policy’s review and its next review date (GV-06, audited)', tags, body: policyReviewSchema } }, async (request, reply) =>
    reply.code(201).send(await recordPolicyReview(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/governance/shortfalls', { config: { access: 'governance.manage' }, schema: { summary: 'Record a resource shortfall and its risk (GV-07, audited)', tags, body: shortfallSchema } }, async (request, reply) =>
    reply.code(201).send(await recordShortfall(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.put('/api/governance/shortfalls/:id/reported', { config: { access: 'governance.manage' }, schema: { summary: 'Record the date a shortfall was reported to governors (GV-07, audited)', tags, params: idParams, body: shortfallReportSchema } }, async (request) =>
    reportShortfall(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.delete('/api/governance/shortfalls/:id', { config: { access: 'governance.manage' }, schema: { summary: 'Mark a shortfall resolved (audited)', tags, params: idParams } }, async (request, reply) => {
    await resolveShortfall(rt, actorOf(request), request.params.id, metaOf(request));
    return reply.code(204).send();
  });

  // GV-05 training: everyone's for governance readers; one's own for anyone signed in.
  app.get('/api/governance/training', { config: { access: 'governance.read' }, schema: { summary: 'Training records per member of staff, with the AUP accepted at induction (GV-05)', tags } }, async () => ({ people: await trainingRegister(rt) }));
  app.post('/api/governance/training', { config: { access: 'training.manage' }, schema: { summary: 'Record a completed training course for a member of staff (GV-05, audited)', tags, body: trainingSchema } }, async (request, reply) =>
    reply.code(201).send(await recordTraining(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/governance/training/import', { bodyLimit: CSV_MAX_BYTES * 2 + 4096, config: { access: 'training.manage' }, schema: { summary: 'Import training records from CSV (Username, Course, Completed, Certificate): every row checked first, nothing imported on any error (audited)', tags, body: csvBody } }, async (request, reply) =>
    reply.code(201).send(await importTrainingCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.get('/api/my/training', { config: { access: 'authenticated' }, schema: { summary: 'My own training records and AUP acceptance (GV-05)', tags } }, async (request) => {
    const [mine] = await trainingRegister(rt, actorOf(request).id!);
    return { person: mine ?? null };
  });
}
