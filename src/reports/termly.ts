import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Actor } from '../core/context.js';
import { GatehouseError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { pdfFilename, renderPdf, type PdfSection } from '../core/pdf.js';
import type { DueItem } from '../dashboard/due.js';
import { listPolicies } from '../filtering/policies.js';
import type { Runtime } from '../runtime.js';
import { checker } from './checks.js';
import { lastEndedPeriod, periodBounds, periodOf, reportingPeriods, type Period } from './periods.js';

// incidents and breaches (issue 11)
import { incidentsSection } from '../incidents/termly-section.js';
import { governanceSection } from '../governance/termly-section.js';

/**
 * The termly monitoring report (MO-05) for senior leaders and governors: what the filter blocked, by
 * category and by group; the requests and reports from the block page and what was decided; changes
 * to the filtering; the checks made; and what other capabilities add (alerts, incidents, exceptions)
 * through `termlySections`. Counts only: no pupil is named in it, so it can go in a governors' pack.
 * On screen and as a PDF; "issuing" it records who issued which document (its SHA-256) for which term.
 */

type Meta = { ip: string | null; requestId: string | null };

export interface ReportContext {
  rt: Runtime;
  period: Period;
  /** ISO instants bounding the period */
  from: string;
  to: string;
}

/** A capability's part of the termly report; null when it has nothing to say. */
export type TermlySection = (context: ReportContext) => Promise<PdfSection | null>;

/** Sections other modules add (alerts, incidents, exceptions), in order after the filtering ones. */
export const termlySections: TermlySection[] = [
  // change control and filter exceptions (issue 11)
  governanceSection,
  // incidents and breaches (issue 11)
  incidentsSection,
];

export interface TermlyReport {
  period: Period;
  generatedAt: string;
  sections: PdfSection[];
  issued: Array<{ id: string; issuedAt: string; issuedBy: string; sha256: string }>;
}

const n = (v: unknown) => Number(v ?? 0);
const fmt = (v: number) => v.toLocaleString('en-GB');
const day = (iso: string) => iso.slice(0, 10);

const ROUTINE = new Set(['filtering.list_updated', 'filtering.list_unchanged', 'filtering.check_recorded', 'filtering.check_actions_recorded', 'filtering.access_requested', 'filtering.page_reported', 'filtering.list_update_failed']);

async function blocksSections({ rt, from, to }: ReportContext): Promise<PdfSection[]> {
  const db = rt.db.kysely;
  const totals = await db
    .selectFrom('filter_activity')
    .select((eb) => [eb.fn.countAll<number>().as('all'), eb.fn.sum<number>(sql`case when action = 'block' then 1 else 0 end`).as('blocked')])
    .where('at', '>=', from)
    .where('at', '<', to)
    .executeTakeFirst();
  const byCategory = await db
    .selectFrom('filter_activity')
    .select(['category', (eb) => eb.fn.countAll<number>().as('count')])
    .where('action', '=', 'block')
    .where('at', '>=', from)
    .where('at', '<', to)
    .groupBy('category')
    .orderBy('count', 'desc')
    .limit(15)
    .execute();
  const byPolicy = await db
    .selectFrom('filter_activity')
    .select(['policy', (eb) => eb.fn.countAll<number>().as('count'), (eb) => eb.fn.count<number>('username').distinct().as('people'), (eb) => eb.fn.count<number>('client_ip').distinct().as('devices')])
    .where('action', '=', 'block')
    .where('at', '>=', from)
    .where('at', '<', to)
    .groupBy('policy')
    .orderBy('count', 'desc')
    .execute();
  const names = new Map((await db.selectFrom('filter_category').select(['id', 'name']).execute()).map((c) => [c.id, c.name]));
  const policies = new Map((await listPolicies(rt)).map((p) => [p.id, p.name]));
  const all = n(totals?.all);
  const blocked = n(totals?.blocked);
  return [
    {
      heading: 'What the filter blocked',
      facts: [
        ['Requests decided', fmt(all)],
        ['Blocked', `${fmt(blocked)}${all ? ` (${((100 * blocked) / all).toFixed(1)}%)` : ''}`],
      ],
      paragraphs: all === 0 ? ['No filtering activity was recorded in this period: either the filter was not in use, or its activity is kept for a shorter time than this report covers.'] : [],
      table: {
        columns: ['Category', 'Blocked requests'],
        widths: [3, 1],
        rows: byCategory.map((r) => [r.category ? (names.get(r.category) ?? r.category) : 'School lists and other rules', fmt(n(r.count))]),
        empty: 'Nothing was blocked.',
      },
    },
    {
      heading: 'Blocks by group',
      paragraphs: ['Each group’s filtering policy, how many requests it blocked, and how many different people and devices were refused something. No person is named in this report.'],
      table: {
        columns: ['Group (policy)', 'Blocked', 'People', 'Devices'],
        widths: [3, 1, 1, 1],
        rows: byPolicy.map((r) => [policies.get(r.policy) ?? r.policy, fmt(n(r.count)), fmt(n(r.people)), fmt(n(r.devices))]),
        empty: 'Nothing was blocked.',
      },
    },
  ];
}

async function requestsSection({ rt, from, to }: ReportContext): Promise<PdfSection> {
  const rows = await rt.db.kysely
    .selectFrom('filter_request')
    .select(['kind', 'status', (eb) => eb.fn.countAll<number>().as('count')])
    .where('created_at', '>=', from)
    .where('created_at', '<', to)
    .groupBy(['kind', 'status'])
    .execute();
  const count = (kind: string, status?: string) => rows.filter((r) => r.kind === kind && (status === undefined || r.status === status)).reduce((s, r) => s + n(r.count), 0);
  const statuses = [...new Set(rows.map((r) => r.status))].sort();
  return {
    heading: 'Requests and reports from the block page',
    facts: [
      ['Requests to unblock a site', fmt(count('request'))],
      ['Pages reported (wrongly blocked, or should be blocked)', fmt(count('report'))],
    ],
    table: {
      columns: ['Outcome', 'Requests', 'Reports'],
      widths: [2, 1, 1],
      rows: statuses.map((s) => [s, fmt(count('request', s)), fmt(count('report', s))]),
      empty: 'None were made.',
    },
  };
}

async function changesSection({ rt, from, to }: ReportContext): Promise<PdfSection> {
  const rows = await rt.db.kysely
    .selectFrom('audit_event')
    .select(['at', 'actor', 'action', 'target'])
    .where('action', 'like', 'filtering.%')
    .where('at', '>=', from)
    .where('at', '<', to)
    .orderBy('seq')
    .execute();
  const changes = rows.filter((r) => !ROUTINE.has(r.action));
  const automatic = rows.filter((r) => r.action === 'filtering.list_updated').length;
  const failed = rows.filter((r) => r.action === 'filtering.list_update_failed').length;
  return {
    heading: 'Changes to the filtering',
    paragraphs: [
      `${fmt(changes.length)} change${changes.length === 1 ? '' : 's'} made by people; the lists updated themselves ${fmt(automatic)} time${automatic === 1 ? '' : 's'}${failed ? ` and ${fmt(failed)} update${failed === 1 ? '' : 's'} failed` : ''}. The full change-control log is in the console, from the audit trail.`,
    ],
    table: {
      columns: ['Date', 'By', 'Change'],
      widths: [1, 1.4, 3],
      rows: changes.slice(-40).map((r) => [day(r.at), r.actor, r.action.replace(/^filtering\./, '').replace(/_/g, ' ')]),
      empty: 'No changes were made.',
    },
  };
}

async function checksSection({ rt, from, to }: ReportContext): Promise<PdfSection> {
  const rows = await rt.db.kysely.selectFrom('filtering_check').selectAll().where('checked_at', '>=', from).where('checked_at', '<', to).orderBy('checked_at').execute();
  const failed = rows.filter((r) => r.outcome === 'fail');
  return {
    heading: 'Checks of the filtering and monitoring',
    paragraphs: [
      rows.length === 0
        ? 'No checks were recorded this term. P4 9.18 asks for checks across devices, locations and groups, recorded with their results and actions.'
        : `${fmt(rows.length)} check${rows.length === 1 ? '' : 's'} recorded, ${fmt(failed.length)} finding a problem; ${fmt(failed.filter((r) => r.actions === '').length)} of those without an action recorded yet.`,
    ],
    table: {
      columns: ['Date', 'By', 'Group', 'Device, location', 'Result', 'Action'],
      widths: [0.9, 1, 1.3, 1.4, 0.6, 2],
      rows: rows.map((r) => [day(r.checked_at), r.checked_by_name, r.user_group, `${r.device}, ${r.location}`, r.outcome === 'pass' ? 'pass' : `fail (${r.failed})`, r.actions]),
      empty: 'No checks were recorded.',
    },
  };
}

function contextFor(rt: Runtime, period: Period): ReportContext {
  const { start, end } = periodBounds(period, rt.profile.timeZone);
  return { rt, period, from: start.toISOString(), to: end.toISOString() };
}

/** The periods a report can be made for, newest first. */
export function availablePeriods(rt: Runtime): Period[] {
  return reportingPeriods(rt.profile, rt.clock.now());
}

export function findPeriod(rt: Runtime, from: string | undefined): Period {
  const periods = availablePeriods(rt);
  if (periods.length === 0) throw new GatehouseError('validation_failed', 400, 'The profile lists no term that has started yet.');
  if (!from) return periods[0]!;
  const period = periods.find((p) => p.from === from);
  if (!period) throw new GatehouseError('validation_failed', 400, `There is no reporting period starting ${from}; choose one of ${periods.map((p) => p.from).join(', ')}.`);
  return period;
}

export async function termlyReport(rt: Runtime, period: Period): Promise<TermlyReport> {
  const context = contextFor(rt, period);
  const sections: PdfSection[] = [...(await blocksSections(context)), await requestsSection(context), await changesSection(context), await checksSection(context)];
  for (const section of termlySections) {
    const s = await section(context);
    if (s) sections.push(s);
  }
  const issued = await rt.db.kysely.selectFrom('monitoring_report').select(['id', 'issued_at', 'issued_by_name', 'sha256']).where('period_from', '=', period.from).orderBy('issued_at').execute();
  return { period, generatedAt: rt.clock.now().toISOString(), sections, issued: issued.map((r) => ({ id: r.id, issuedAt: r.issued_at, issuedBy: r.issued_by_name, sha256: r.sha256 })) };
}

export async function termlyReportPdf(rt: Runtime, report: TermlyReport, by: string): Promise<{ pdf: Buffer; filename: string }> {
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  const pdf = await renderPdf({
    title: `Termly monitoring report: ${report.period.name}`,
    subtitle: `${school?.name ?? 'The school'} · ${report.period.from} to ${report.period.to} · for senior leaders and governors (MO-05)`,
    generatedBy: by,
    generatedAt: new Date(report.generatedAt),
    marking: 'OFFICIAL-SENSITIVE',
    sections: report.sections,
  });
  return { pdf, filename: pdfFilename(`monitoring-report-${report.period.from}`, new Date(report.generatedAt)) };
}

/** Issues the report: the PDF as it stands now, its hash recorded with who issued it (audited). */
export async function issueTermlyReport(rt: Runtime, actor: Actor, period: Period, meta: Meta): Promise<{ id: string; filename: string; sha256: string }> {
  const who = await checker(rt, actor);
  const report = await termlyReport(rt, period);
  const { pdf, filename } = await termlyReportPdf(rt, report, who.name);
  const sha256 = createHash('sha256').update(pdf).digest('hex');
  const id = newId();
  await rt.trail.transaction(actor, async (ctx) => {
    await ctx.db.insertInto('monitoring_report').values({ id, period_name: period.name, period_from: period.from, period_to: period.to, issued_at: ctx.clock.now().toISOString(), issued_by: who.id, issued_by_name: who.name, sha256, bytes: pdf.length, filename, document: pdf.toString('base64') }).execute();
    await ctx.audit.record({ action: 'reports.termly_issued', target: `monitoring_report:${period.from}`, severity: 'notice', details: { period: period.name, from: period.from, to: period.to, sha256, bytes: pdf.length } });
  }, meta);
  return { id, filename, sha256 };
}

/** An issued report exactly as it was issued. */
export async function issuedReport(rt: Runtime, id: string): Promise<{ pdf: Buffer; filename: string } | null> {
  const row = await rt.db.kysely.selectFrom('monitoring_report').select(['document', 'filename']).where('id', '=', id).executeTakeFirst();
  return row ? { pdf: Buffer.from(row.document, 'base64'), filename: row.filename } : null;
}

/** The overview: the report for the term just ended not issued yet (MO-05). */
export async function termlyReportDue(rt: Runtime): Promise<DueItem[]> {
  const now = rt.clock.now();
  const ended = lastEndedPeriod(rt.profile, now);
  const items: DueItem[] = [];
  const base = { href: '/reports', requirement: 'MO-05', permission: 'reports.read' as const };
  if (ended) {
    const issued = await rt.db.kysely.selectFrom('monitoring_report').select('id').where('period_from', '=', ended.from).limit(1).executeTakeFirst();
    if (!issued) items.push({ ...base, kind: 'termly_report_due', title: `The monitoring report for ${ended.name} has not been issued to senior leaders and governors`, dueAt: periodBounds(ended, rt.profile.timeZone).end.toISOString(), overdue: true });
  }
  const current = periodOf(rt.profile, now);
  if (current) {
    const { end } = periodBounds(current, rt.profile.timeZone);
    const issued = await rt.db.kysely.selectFrom('monitoring_report').select('id').where('period_from', '=', current.from).limit(1).executeTakeFirst();
    if (!issued && end.getTime() - now.getTime() < 14 * 86_400_000) items.push({ ...base, kind: 'termly_report_soon', title: `The monitoring report for ${current.name} is due at the end of term`, dueAt: end.toISOString(), overdue: false });
  }
  return items;
}
