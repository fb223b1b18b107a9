import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../core/context.js';
import { lockAuditWriter } from '../audit/writer.js';
import { GatehouseError, conflict, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { DueItem, DueProvider } from '../dashboard/due.js';
import type { Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import { checkCsv, numberCell, toCsv } from './csv.js';

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

/** An edit: the wording, owner or treatment corrected without it counting as a review (no re-score, same review date). */
export const riskEditSchema = riskSchema
  .pick({ title: true, owner: true, treatment: true })
  .partial()
  .strict()
  .refine((r) => Object.keys(r).length > 0, { message: 'change at least one of title, owner and treatment' });

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

/** GV-01: corrects a risk's title, owner or treatment; audited with the values before and after. */
export async function editRisk(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof riskEditSchema>, meta: Meta): Promise<Risk> {
  await rt.trail.transaction(actor, async (ctx) => {
    const before = await ctx.db.selectFrom('risk').selectAll().where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
    if (!before) throw notFound('There is no such risk.');
    const changed = Object.fromEntries(Object.entries(input).filter(([k, v]) => v !== undefined && v !== before[k as keyof typeof before]));
    if (Object.keys(changed).length === 0) return;
    await ctx.db.updateTable('risk').set(changed).where('id', '=', id).execute();
    await ctx.audit.record({ action: 'risk.edited', target: `risk:${id}`, details: { previous: Object.fromEntries(Object.keys(changed).map((k) => [k, before[k as keyof typeof before]])), ...changed } });
  }, meta);
  return (await listRisks(rt)).find((r) => r.id === id)!;
}

export const RISK_COLUMNS = ['title', 'owner', 'likelihood', 'impact', 'treatment', 'review_at'];

export async function exportRisksCsv(rt: Runtime, actor: Actor, meta: Meta): Promise<string> {
  const risks = await listRisks(rt);
  await rt.trail.transaction(actor, (ctx) => ctx.audit.record({ action: 'risk.register_exported', target: 'risk', details: { rows: risks.length } }), meta);
  // The first six columns are the import's, so an exported register can be brought into another school's.
  return toCsv([...RISK_COLUMNS, 'score', 'reviewed_at'], risks.map((r) => [r.title, r.owner, r.likelihood, r.impact, r.treatment, r.reviewAt.slice(0, 10), r.score, r.reviewedAt]));
}

/**
 * GV-01: risks from CSV (title, owner, likelihood, impact, treatment, review_at), checked like the
 * form: scores 1 to 5, a review date in the future, a title not already open in the register or
 * twice in the file. All or nothing; the rows and one audit event in one transaction.
 */
export async function importRisksCsv(rt: Runtime, actor: Actor, csv: string, meta: Meta): Promise<{ imported: number }> {
  const openTitles = async (db: Kysely<Schema> | Transaction<Schema>) => new Set((await db.selectFrom('risk').select('title').where('closed_at', 'is', null).execute()).map((r) => r.title.toLowerCase()));
  const open = await openTitles(rt.db.kysely);
  const now = rt.clock.now().getTime();
  const rows = checkCsv(csv, {
    required: RISK_COLUMNS,
    columns: { title: 'title', owner: 'owner', likelihood: 'likelihood', impact: 'impact', treatment: 'treatment', reviewAt: 'review_at' },
    schema: riskSchema,
    input: (cell) => ({ title: cell('title'), owner: cell('owner'), likelihood: numberCell(cell('likelihood')), impact: numberCell(cell('impact')), treatment: cell('treatment'), reviewAt: cell('review_at') }),
    key: { column: 'title', of: (r) => r.title.toLowerCase(), taken: (key, r) => (open.has(key) ? `“${r.title}” is already in the register` : null) },
    check: (r) => (Date.parse(`${r.reviewAt}T00:00:00.000Z`) <= now ? [{ column: 'review_at', message: 'the next review must be in the future' }] : []),
  });
  await rt.trail.transaction(actor, async (ctx) => {
    // One writer at a time: a risk added since the file was checked is seen here, not duplicated.
    await lockAuditWriter(ctx.db);
    const nowOpen = await openTitles(ctx.db);
    const clash = rows.find(({ row }) => nowOpen.has(row.title.toLowerCase()));
    if (clash) throw conflict(`“${clash.row.title}” (line ${clash.line}) was added to the register while the file was imported; nothing was imported.`, 'import_raced');
    const nowIso = ctx.clock.now().toISOString();
    const ids: string[] = [];
    for (const { row } of rows) {
      const id = newId();
      ids.push(id);
      await ctx.db.insertInto('risk').values({ id, title: row.title, owner: row.owner, likelihood: row.likelihood, impact: row.impact, treatment: row.treatment, review_at: `${row.reviewAt}T00:00:00.000Z`, reviewed_at: nowIso, closed_at: null, created_at: nowIso }).execute();
    }
    await ctx.audit.record({ action: 'risk.imported', target: 'risk', details: { rows: rows.length, risks: rows.map(({ row }, i) => ({ id: ids[i], title: row.title, owner: row.owner, likelihood: row.likelihood, impact: row.impact, reviewAt: row.reviewAt })) } });
  }, meta);
  return { imported: rows.length };
}

export const risksDue: DueProvider = async (rt) => {
  const now = rt.clock.now().getTime();
  const items: DueItem[] = [];
  for (const r of await listRisks(rt)) {
    if (Date.parse(r.reviewAt) - now < 14 * DAY) items.push({ kind: 'risk_review', title: `The risk “${r.title}” is due for review`, dueAt: r.reviewAt, overdue: r.overdue, href: '/risks', requirement: 'GV-01', permission: 'risks.read' });
  }
  return items;
};
