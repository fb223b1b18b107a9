import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { complianceHistory, evaluateCompliance, listSignoffs, recordSnapshot, signOffClause, signoffSchema, withdrawSchema, withdrawSignoff } from './service.js';

const status = z.enum(['met', 'due_soon', 'not_met']);
const link = z.object({ label: z.string(), href: z.string() });
const signoffSummary = z.object({ id: z.string(), frameworkId: z.string(), clauseId: z.string(), statement: z.string(), evidence: z.string(), signedBy: z.string(), signedAt: z.string(), validUntil: z.string(), withdrawnAt: z.string().nullable() });
const evidence = z.object({
  kind: z.enum(['probe', 'signoff']),
  id: z.string(),
  title: z.string(),
  status,
  summary: z.string(),
  links: z.array(link),
  dueAt: z.string().nullable(),
  signoff: z.object({ statement: z.string(), validMonths: z.number(), by: z.array(z.string()), current: signoffSummary.nullable() }).optional(),
});
const clause = z.object({ id: z.string(), title: z.string(), requirements: z.array(z.string()), status, evidence: z.array(evidence) });
const framework = z.object({
  id: z.string(),
  name: z.string(),
  publisher: z.string(),
  version: z.string(),
  url: z.string().nullable(),
  note: z.string().nullable(),
  counts: z.object({ met: z.number(), due_soon: z.number(), not_met: z.number(), total: z.number() }),
  clauses: z.array(clause),
});
const frameworkParams = z.object({ framework: z.string().regex(/^[a-z0-9-]{2,60}$/, 'must be a framework id') });
const clauseParams = frameworkParams.extend({ clause: z.string().min(1).max(40) });

/** GV-08: the compliance view over HTTP. Computed on each request from live data. */
export function registerComplianceRoutes(app: App, rt: Runtime): void {
  const tags = ['compliance'];
  app.get(
    '/api/compliance',
    { config: { access: 'compliance.read' }, schema: { summary: 'Where the school stands against each framework (GV-08): every clause met, due soon or not met, with the evidence behind it', tags, response: { 200: z.object({ evaluatedAt: z.string(), frameworks: z.array(framework) }) } } },
    async () => ({ evaluatedAt: rt.clock.now().toISOString(), frameworks: await evaluateCompliance(rt) }),
  );
  app.get(
    '/api/compliance/:framework/history',
    { config: { access: 'compliance.read' }, schema: { summary: 'A framework’s standing day by day, and which clauses changed', tags, params: frameworkParams, response: { 200: z.object({ points: z.array(z.object({ day: z.string(), met: z.number(), dueSoon: z.number(), notMet: z.number(), total: z.number(), changed: z.array(z.object({ clause: z.string(), from: status.nullable(), to: status })) })) }) } } },
    async (request) => ({ points: await complianceHistory(rt, request.params.framework) }),
  );
  app.get(
    '/api/compliance/:framework/signoffs',
    { config: { access: 'compliance.read' }, schema: { summary: 'Every sign-off of a framework’s clauses, current and withdrawn', tags, params: frameworkParams, response: { 200: z.object({ signoffs: z.array(signoffSummary) }) } } },
    async (request) => ({ signoffs: await listSignoffs(rt, request.params.framework) }),
  );
  app.post(
    '/api/compliance/:framework/clauses/:clause/signoffs',
    { config: { access: 'compliance.signoff' }, schema: { summary: 'Sign a clause off by hand, saying what was seen; it holds for the clause’s period (audited)', tags, params: clauseParams, body: signoffSchema, response: { 201: signoffSummary } } },
    async (request, reply) => {
      const result = await signOffClause(rt, actorOf(request), request.params.framework, request.params.clause, request.body, metaOf(request));
      await recordSnapshot(rt).catch((error: unknown) => rt.logger.warn({ err: error }, 'compliance snapshot after a sign-off failed'));
      return reply.code(201).send(result);
    },
  );
  app.post(
    '/api/compliance/signoffs/:id/withdraw',
    { config: { access: 'compliance.signoff' }, schema: { summary: 'Withdraw a sign-off found to be wrong, with the reason (audited; never deleted)', tags, params: z.object({ id: z.uuid('must be a sign-off id') }), body: withdrawSchema, response: { 200: signoffSummary } } },
    async (request) => {
      const result = await withdrawSignoff(rt, actorOf(request), request.params.id, request.body, metaOf(request));
      await recordSnapshot(rt).catch((error: unknown) => rt.logger.warn({ err: error }, 'compliance snapshot after a withdrawal failed'));
      return result;
    },
  );
}
