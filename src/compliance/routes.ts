import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { checker } from '../reports/checks.js';
import { findPeriod } from '../reports/termly.js';
import { governorsReportPdf } from './governors-report.js';
import { diffLines, policyVersions, policyVersionText, recordPolicyVersion, writtenPolicy } from './written-policy.js';
import { renderPdf, pdfFilename } from '../core/pdf.js';
import { notFound } from '../core/errors.js';
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

  // --- The written policy, generated from the configuration in force -----------------------------
  const pdfReply = <R extends { header(k: string, v: string): R; send(b: Buffer): R }>(reply: R, pdf: Buffer, filename: string) =>
    reply.header('content-type', 'application/pdf').header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store').send(pdf);
  app.get(
    '/api/policy-document',
    { config: { access: 'school.read' }, schema: { summary: 'The school’s technical-security policy, written from what Gatehouse enforces now, with its version', tags } },
    async () => {
      const doc = await writtenPolicy(rt);
      const version = await recordPolicyVersion(rt, doc);
      return { title: doc.title, subtitle: doc.subtitle, sections: doc.sections, sha256: doc.sha256, version };
    },
  );
  app.get('/api/policy-document/pdf', { config: { access: 'school.read' }, schema: { summary: 'The technical-security policy as a PDF', tags } }, async (request, reply) => {
    const doc = await writtenPolicy(rt);
    const version = await recordPolicyVersion(rt, doc);
    const who = await checker(rt, actorOf(request));
    const pdf = await renderPdf({ title: doc.title, subtitle: `${doc.subtitle} · version ${version.number} · SHA-256 ${doc.sha256.slice(0, 16)}…`, generatedBy: who.name, generatedAt: rt.clock.now(), marking: 'OFFICIAL', sections: doc.sections });
    return pdfReply(reply, pdf, pdfFilename(`technical-security-policy-v${version.number}`, rt.clock.now()));
  });
  app.get(
    '/api/compliance/policy-document/changes',
    { config: { access: 'compliance.read' }, schema: { summary: 'The policy document’s versions, and what changed between two of them (the latest and the one before, by default)', tags, querystring: z.object({ from: z.coerce.number().int().min(1).optional(), to: z.coerce.number().int().min(1).optional() }).strict() } },
    async (request) => {
      await recordPolicyVersion(rt, await writtenPolicy(rt));
      const versions = await policyVersions(rt);
      const to = request.query.to ?? versions[0]?.number;
      const from = request.query.from ?? (to !== undefined && to > 1 ? to - 1 : undefined);
      if (to === undefined || from === undefined) return { versions, from: null, to: to ?? null, diff: [] };
      const [before, after] = await Promise.all([policyVersionText(rt, from), policyVersionText(rt, to)]);
      if (before === null || after === null) throw notFound('There is no such version of the policy document.');
      return { versions, from, to, diff: diffLines(before, after) };
    },
  );
  app.get(
    '/api/compliance/governors-report/pdf',
    { config: { access: 'compliance.read' }, schema: { summary: 'The governors’ report as a PDF: where the school stands, what changed this term, what needs a decision', tags, querystring: z.object({ period: z.iso.date({ message: 'must be a date like 2026-09-01' }).optional() }).strict() } },
    async (request, reply) => {
      const who = await checker(rt, actorOf(request));
      const { pdf, filename } = await governorsReportPdf(rt, findPeriod(rt, request.query.period), who.name);
      return pdfReply(reply, pdf, filename);
    },
  );
}
