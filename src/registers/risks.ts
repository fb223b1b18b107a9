import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import { csvField } from '../core/csv.js';
import type { Runtime } from '../runtime.js';

/**
 * The risk register: each technical-security risk with its owner, likelihood and impact (1–5), the
 * score (their product), the treatment and the next review date. Reviews and changes are audited.
 */
type Meta = { ip: string | null; requestId: string | null };
const DAY = 86_400_000;
const text = (label: string, max: number) => z.string().trim().min(1, `say ${label}`).max(max, `must be at most ${max} characters`);
const scale = (label: string) => z.number({ error: `${label} must be a number from 1 to 5` }).int(`${label} must be a whole number`).min(1, `${label} must be 1 to 5`).max(5, `${label} must be 1 to 5`);

export const riskSchema = z
  .object({
    title: text('the risk', 500),
    owner: text('who owns the risk', 200),
    likelihood: scale('likelihood'),
    impact: scale('impact'),
    treatment: text('how the risk is treated', 4000),
    reviewAt: z.iso.date({ message: 'must be a date like 2027-01-31' }),
  })
  .strict();

export interface Risk {
  id: string;
  title: string;
  owner: string;
  likelihood: number;
  impact: number;
  score: number;
  treatment: string;
  reviewAt: string;
  reviewedAt: string;
  overdue: boolean;
}

export async function listRisks(rt: Runtime): Promise<Risk[]> {
  const now = rt.clock.now().getTime();
  const rows = await rt.db.kysely.selectFrom('risk').selectAll().where('closed_at', 'is', null).orderBy('created_at').execute();
  return rows
    .map((r) => ({ id: r.id, title: r.title, owner: r.owner, likelihood: r.likelihood, impact: r.impact, score: r.likelihood * r.impact, treatment: r.treatment, reviewAt: r.review_at, reviewedAt: r.reviewed_at, overdue: Date.parse(r.review_at) <= now }))
    .sort((a, b) => b.score - a.score);
}

function reviewDate(rt: Runtime, date: string): string {
  const at = new Date(`${date}T00:00:00.000Z`);
  if (at.getTime() <= rt.clock.now().getTime()) throw new GatehouseError('validation_failed', 400, 'The next review must be in the future.');
  return at.toISOString();
}

export async function addRisk(rt: Runtime, actor: Actor, input: z.infer<typeof riskSchema>, meta: Meta): Promise<Risk> {
  const id = newId();
  const now = rt.clock.now().toISOString();
  const reviewAt = reviewDate(rt, input.reviewAt);
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('risk').values({ id, title: input.title, owner: input.owner, likelihood: input.likelihood, impact: input.impact, treatment: input.treatment, review_at: reviewAt, reviewed_at: now, closed_at: null, created_at: now }).execute();
    await ctx.audit.record({ action: 'risk.added', target: `risk:${id}`, details: { title: input.title, owner: input.owner, likelihood: input.likelihood, impact: input.impact, reviewAt } });
  }, meta);
  return (await listRisks(rt)).find((r) => r.id === id)!;
}

/** A review: the risk re-scored and its next review set (audited with the previous values). */
export async function reviewRisk(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof riskSchema>, meta: Meta): Promise<Risk> {
  const reviewAt = reviewDate(rt, input.reviewAt);
  await rt.trail.transaction(actor, async (ctx) => {
    const before = await ctx.db.selectFrom('risk').selectAll().where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
    if (!before) throw notFound('There is no such risk.');
    await ctx.db.updateTable('risk').set({ title: input.title, owner: input.owner, likelihood: input.likelihood, impact: input.impact, treatment: input.treatment, review_at: reviewAt, reviewed_at: rt.clock.now().toISOString() }).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'risk.reviewed', target: `risk:${id}`, details: { previous: { likelihood: before.likelihood, impact: before.impact, owner: before.owner }, likelihood: input.likelihood, impact: input.impact, owner: input.owner, reviewAt } });
  }, meta);
  return (await listRisks(rt)).find((r) => r.id === id)!;
}

export async function closeRisk(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<void> {
  await rt.trail.transaction(actor, async (ctx) => {
    const r = await ctx.db.updateTable('risk').set({ closed_at: rt.clock.now().toISOString() }).where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw notFound('There is no such risk.');
    await ctx.audit.record({ action: 'risk.closed', target: `risk:${id}`, severity: 'notice' });
  }, meta);
}

export async function exportRisksCsv(rt: Runtime, actor: Actor, meta: Meta): Promise<string> {
  const risks = await listRisks(rt);
  const cols = ['title', 'owner', 'likelihood', 'impact', 'score', 'treatment', 'review_at', 'reviewed_at'];
  const lines = [cols.join(','), ...risks.map((r) => [r.title, r.owner, String(r.likelihood), String(r.impact), String(r.score), r.treatment, r.reviewAt, r.reviewedAt].map(csvField).join(','))];
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'risk.register_exported', target: 'risk', details: { rows: risks.length } }), meta);
  return `\uFEFF${lines.join('\r\n')}\r\n`;
}

export const risksDue: DueProvider = async (rt) => {
  const now = rt.clock.now().getTime();
  const items: DueItem[] = [];
  for (const r of await listRisks(rt)) {
    if (Date.parse(r.reviewAt) - now < 14 * DAY) items.push({ kind: 'risk_review', title: `The risk “${r.title}” is due for review`, dueAt: r.reviewAt, overdue: r.overdue, href: '/risks', requirement: 'GV-01', permission: 'risks.read' });
  }
  return items;
};
