import { z } from 'zod';
import type { Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { badRequest, GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { lockAuditWriter } from '../audit/writer.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { DueItem } from '../dashboard/due.js';
import type { Runtime } from '../runtime.js';
import { recordPolicyVersion, writtenPolicy } from './written-policy.js';
import { loadFrameworks, type Clause, type Framework } from './frameworks.js';
import { DUE_SOON_DAYS, Facts, probe, type EvidenceLink, type ProbeStatus } from './probes.js';
// equipment registers (issue 12): their compliance probes, registered before any framework loads
import '../registers/register-probes.js';
// governance registers (issue 12): GV-01, GV-02, GV-05, GV-06, GV-07, GV-09, GV-10 probes
import '../registers/governance-probes.js';

/**
 * GV-08: where the school stands against each framework, computed from live data on every request
 * (never typed in): each clause is met when all its evidence is — probes over Gatehouse's data and
 * current sign-offs — due soon when something lapses within DUE_SOON_DAYS, otherwise not met.
 */

type Meta = { ip: string | null; requestId: string | null };

export interface EvidenceResult {
  kind: 'probe' | 'signoff';
  /** the probe's id, or "signoff" */
  id: string;
  title: string;
  status: ProbeStatus;
  summary: string;
  links: EvidenceLink[];
  dueAt: string | null;
  /** for a sign-off: who may sign, the current sign-off if any */
  signoff?: { statement: string; validMonths: number; by: Role[]; current: SignoffSummary | null };
}

export interface ClauseResult {
  id: string;
  title: string;
  requirements: string[];
  status: ProbeStatus;
  evidence: EvidenceResult[];
}

export interface FrameworkResult {
  id: string;
  name: string;
  publisher: string;
  version: string;
  url: string | null;
  note: string | null;
  counts: Record<ProbeStatus, number> & { total: number };
  clauses: ClauseResult[];
}

export interface SignoffSummary {
  id: string;
  frameworkId: string;
  clauseId: string;
  statement: string;
  evidence: string;
  signedBy: string;
  signedAt: string;
  validUntil: string;
  withdrawnAt: string | null;
}

const rank: Record<ProbeStatus, number> = { met: 0, due_soon: 1, not_met: 2 };
const worst = (a: ProbeStatus, b: ProbeStatus): ProbeStatus => (rank[a] >= rank[b] ? a : b);
const DAY = 86_400_000;

/** The current (not withdrawn, not lapsed) sign-off of each clause: key "framework/clause". */
async function currentSignoffs(rt: Runtime, now: Date): Promise<Map<string, SignoffSummary>> {
  const rows = await rt.db.kysely.selectFrom('compliance_signoff').selectAll().where('withdrawn_at', 'is', null).where('valid_until', '>', now.toISOString()).orderBy('signed_at', 'asc').execute();
  const map = new Map<string, SignoffSummary>();
  for (const r of rows) map.set(`${r.framework_id}/${r.clause_id}`, summarise(r));
  return map;
}

const summarise = (r: { id: string; framework_id: string; clause_id: string; statement: string; evidence: string; signed_by_name: string; signed_at: string; valid_until: string; withdrawn_at: string | null }): SignoffSummary => ({
  id: r.id,
  frameworkId: r.framework_id,
  clauseId: r.clause_id,
  statement: r.statement,
  evidence: r.evidence,
  signedBy: r.signed_by_name,
  signedAt: r.signed_at,
  validUntil: r.valid_until,
  withdrawnAt: r.withdrawn_at,
});

async function evaluateClause(fw: Framework, clause: Clause, facts: Facts, signoffs: Map<string, SignoffSummary>): Promise<ClauseResult> {
  const evidence: EvidenceResult[] = [];
  for (const spec of clause.evidence) {
    if (spec.kind === 'probe') {
      const p = probe(spec.probe)!;
      let result;
      try {
        result = await p.evaluate(facts);
      } catch (error) {
        facts.rt.logger.error({ err: error, probe: p.id }, 'compliance probe failed');
        result = { status: 'not_met' as const, summary: 'This check could not be run; the server log has the details.', evidence: [] };
      }
      evidence.push({ kind: 'probe', id: p.id, title: p.title, status: result.status, summary: result.summary, links: result.evidence, dueAt: result.dueAt ?? null });
    } else {
      const current = signoffs.get(`${fw.id}/${clause.id}`) ?? null;
      let status: ProbeStatus = 'not_met';
      let summary = 'Not signed off.';
      if (current) {
        const left = new Date(current.validUntil).getTime() - facts.now.getTime();
        status = left <= DUE_SOON_DAYS * DAY ? 'due_soon' : 'met';
        summary = `Signed off by ${current.signedBy} on ${current.signedAt.slice(0, 10)}, until ${current.validUntil.slice(0, 10)}.`;
      }
      evidence.push({
        kind: 'signoff',
        id: 'signoff',
        title: spec.statement,
        status,
        summary,
        links: current ? [{ label: 'Sign-off in the audit trail', href: `/audit?target=${encodeURIComponent(`compliance_signoff:${current.id}`)}` }] : [],
        dueAt: current?.validUntil ?? null,
        signoff: { statement: spec.statement, validMonths: spec.validMonths, by: spec.by, current },
      });
    }
  }
  return { id: clause.id, title: clause.title, requirements: clause.requirements, status: evidence.map((e) => e.status).reduce(worst, 'met'), evidence };
}

/** Every framework, evaluated together so shared facts are read once. */
export async function evaluateCompliance(rt: Runtime, frameworks: Framework[] = loadFrameworks()): Promise<FrameworkResult[]> {
  const facts = new Facts(rt);
  const signoffs = await currentSignoffs(rt, facts.now);
  const out: FrameworkResult[] = [];
  for (const fw of frameworks) {
    const clauses = await Promise.all(fw.clauses.map((c) => evaluateClause(fw, c, facts, signoffs)));
    const counts = { met: 0, due_soon: 0, not_met: 0, total: clauses.length };
    for (const c of clauses) counts[c.status]++;
    out.push({ id: fw.id, name: fw.name, publisher: fw.publisher, version: fw.version, url: fw.url, note: fw.note, counts, clauses });
  }
  return out;
}

function findClause(frameworkId: string, clauseId: string): { fw: Framework; clause: Clause } {
  const fw = loadFrameworks().find((f) => f.id === frameworkId);
  if (!fw) throw notFound('There is no such framework.');
  const clause = fw.clauses.find((c) => c.id === clauseId);
  if (!clause) throw notFound(`${fw.name} has no clause ${clauseId}.`);
  return { fw, clause };
}

export const signoffSchema = z
  .object({
    evidence: z.string().trim().min(10, 'say what you saw: the document, meeting or record, and where it is kept (at least a few words)').max(4000, 'must be at most 4000 characters'),
  })
  .strict();

/** A named person attests a clause, with what they saw; it holds for the clause's period. Audited. */
export async function signOffClause(rt: Runtime, actor: Actor, frameworkId: string, clauseId: string, input: z.infer<typeof signoffSchema>, meta: Meta): Promise<SignoffSummary> {
  const { fw, clause } = findClause(frameworkId, clauseId);
  const spec = clause.evidence.find((e) => e.kind === 'signoff');
  if (!spec || spec.kind !== 'signoff') throw badRequest(`Clause ${clause.id} is judged from Gatehouse’s records, not signed off by hand.`);
  if (!actor.id || !actor.role || !spec.by.includes(actor.role)) throw new GatehouseError('forbidden', 403, `Clause ${clause.id} is signed off by: ${spec.by.join(', ').replaceAll('_', ' ')}.`);
  const id = newId();
  return rt.trail.transaction(
    actor,
    async (ctx) => {
      // One sign-off of a clause at a time (PostgreSQL: the audit writer's lock, taken before reading;
      // SQLite's write transaction already holds it), so exactly one is ever current.
      await lockAuditWriter(ctx.db);
      const now = ctx.clock.now();
      const until = new Date(now);
      until.setUTCMonth(until.getUTCMonth() + spec.validMonths);
      // A new sign-off replaces the one before: withdraw it in the same transaction, so exactly one is current.
      const previous = await ctx.db.selectFrom('compliance_signoff').select('id').where('framework_id', '=', fw.id).where('clause_id', '=', clause.id).where('withdrawn_at', 'is', null).execute();
      if (previous.length > 0) {
        await ctx.db.updateTable('compliance_signoff').set({ withdrawn_at: now.toISOString(), withdrawn_by: actor.id, withdrawn_reason: 'replaced by a new sign-off' }).where('id', 'in', previous.map((p) => p.id)).execute();
      }
      const row = { id, framework_id: fw.id, clause_id: clause.id, statement: spec.statement, evidence: input.evidence, signed_by: actor.id!, signed_by_name: actor.name, signed_at: now.toISOString(), valid_until: until.toISOString(), withdrawn_at: null, withdrawn_by: null, withdrawn_reason: null };
      await ctx.db.insertInto('compliance_signoff').values(row).execute();
      await ctx.audit.record({ action: 'compliance.signed_off', target: `compliance_signoff:${id}`, severity: 'notice', details: { framework: fw.id, clause: clause.id, statement: spec.statement, validUntil: row.valid_until, replaced: previous.map((p) => p.id) } });
      return summarise(row);
    },
    meta,
  );
}

export const withdrawSchema = z.object({ reason: z.string().trim().min(3, 'say why').max(1000) }).strict();

/** A sign-off found to be wrong is withdrawn (never deleted): the clause is not met again. Audited. */
export async function withdrawSignoff(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof withdrawSchema>, meta: Meta): Promise<SignoffSummary> {
  return rt.trail.transaction(
    actor,
    async (ctx) => {
      const row = await ctx.db.selectFrom('compliance_signoff').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('There is no such sign-off.');
      if (row.withdrawn_at) throw new GatehouseError('already_withdrawn', 409, 'This sign-off was already withdrawn.');
      const { clause } = findClause(row.framework_id, row.clause_id);
      const spec = clause.evidence.find((e) => e.kind === 'signoff');
      if (!actor.role || !spec || spec.kind !== 'signoff' || !spec.by.includes(actor.role)) throw new GatehouseError('forbidden', 403, `Only ${spec && spec.kind === 'signoff' ? spec.by.join(', ').replaceAll('_', ' ') : 'the signing roles'} may withdraw this sign-off.`);
      const now = ctx.clock.now().toISOString();
      const updated = await ctx.db.updateTable('compliance_signoff').set({ withdrawn_at: now, withdrawn_by: actor.id, withdrawn_reason: input.reason }).where('id', '=', id).where('withdrawn_at', 'is', null).executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) throw new GatehouseError('already_withdrawn', 409, 'This sign-off was already withdrawn.');
      await ctx.audit.record({ action: 'compliance.signoff_withdrawn', target: `compliance_signoff:${id}`, severity: 'warning', details: { framework: row.framework_id, clause: row.clause_id, reason: input.reason } });
      return { ...summarise(row), withdrawnAt: now };
    },
    meta,
  );
}

/**
 * Records today's standing of each framework (one row per framework per day, replaced through the
 * day), so the history shows how the school's position moved. Run daily by `serve` and after each
 * sign-off. A derived record, not a change to the school's data: not an audit event.
 */
export async function recordSnapshot(rt: Runtime, results?: FrameworkResult[]): Promise<void> {
  const evaluated = results ?? (await evaluateCompliance(rt));
  const now = rt.clock.now();
  const day = now.toISOString().slice(0, 10);
  await rt.db.kysely.transaction().execute(async (tx) => {
    for (const fw of evaluated) {
      const clauses = JSON.stringify(Object.fromEntries(fw.clauses.map((c) => [c.id, c.status])));
      await tx.deleteFrom('compliance_snapshot').where('framework_id', '=', fw.id).where('day', '=', day).execute();
      await tx.insertInto('compliance_snapshot').values({ id: newId(), taken_at: now.toISOString(), day, framework_id: fw.id, met: fw.counts.met, due_soon: fw.counts.due_soon, not_met: fw.counts.not_met, total: fw.counts.total, clauses }).execute();
    }
  });
}

export interface HistoryPoint {
  day: string;
  met: number;
  dueSoon: number;
  notMet: number;
  total: number;
  /** clauses whose status differs from the point before */
  changed: Array<{ clause: string; from: ProbeStatus | null; to: ProbeStatus }>;
}

export async function complianceHistory(rt: Runtime, frameworkId: string, days = 400): Promise<HistoryPoint[]> {
  if (!loadFrameworks().some((f) => f.id === frameworkId)) throw notFound('There is no such framework.');
  const since = new Date(rt.clock.now().getTime() - days * DAY).toISOString().slice(0, 10);
  const rows = await rt.db.kysely.selectFrom('compliance_snapshot').selectAll().where('framework_id', '=', frameworkId).where('day', '>=', since).orderBy('day', 'asc').execute();
  let before: Record<string, ProbeStatus> | null = null;
  return rows.map((r) => {
    const clauses = JSON.parse(r.clauses) as Record<string, ProbeStatus>;
    const changed = before ? Object.entries(clauses).filter(([id, s]) => before![id] !== s).map(([clause, to]) => ({ clause, from: before![clause] ?? null, to })) : [];
    before = clauses;
    return { day: r.day, met: r.met, dueSoon: r.due_soon, notMet: r.not_met, total: r.total, changed };
  });
}

export async function listSignoffs(rt: Runtime, frameworkId: string): Promise<SignoffSummary[]> {
  return (await rt.db.kysely.selectFrom('compliance_signoff').selectAll().where('framework_id', '=', frameworkId).orderBy('signed_at', 'desc').limit(500).execute()).map(summarise);
}

/** The overview's item: a framework with clauses not met, or sign-offs lapsing soon. */
export async function complianceDue(rt: Runtime): Promise<DueItem[]> {
  const results = await evaluateCompliance(rt);
  return results
    .filter((fw) => fw.counts.not_met > 0 || fw.counts.due_soon > 0)
    .map((fw) => ({
      kind: 'compliance',
      title: `${fw.name}: ${fw.counts.not_met} of ${fw.counts.total} not met${fw.counts.due_soon > 0 ? `, ${fw.counts.due_soon} due soon` : ''}`,
      detail: fw.clauses.filter((c) => c.status === 'not_met').slice(0, 3).map((c) => `${c.id} ${c.title}`).join('; '),
      dueAt: null,
      overdue: fw.counts.not_met > 0,
      href: `/compliance/${fw.id}`,
      requirement: 'GV-08',
      permission: 'compliance.read' as const,
    }));
}

/** GV-08 history: today's standing recorded every six hours while the server runs (the day's row is replaced). */
export function scheduleComplianceSnapshots(rt: Runtime, everyMs = 6 * 3_600_000): Periodic {
  return schedulePeriodic(
    rt.logger,
    'compliance snapshot',
    async () => {
      await recordSnapshot(rt);
      // A configuration change shows as a new version of the written policy even if nobody opens it.
      await recordPolicyVersion(rt, await writtenPolicy(rt));
    },
    { everyMs, firstAfterMs: 60_000 },
  );
}
