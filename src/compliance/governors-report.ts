import { renderPdf, pdfFilename, type PdfSection } from '../core/pdf.js';
import { dueProviders } from '../dashboard/providers.js';
import type { Runtime } from '../runtime.js';
import { periodBounds, type Period } from '../reports/periods.js';
import { loadFrameworks } from './frameworks.js';
import type { ProbeStatus } from './probes.js';
import { evaluateCompliance } from './service.js';
import { policyVersions } from './written-policy.js';

/**
 * The governors' report (issue 12, GV-08): where the school stands against each framework, what
 * changed this term (clauses that moved, the policy document's versions, the changes people made),
 * and what needs a decision (clauses not met that a governor or senior leader must act on, and what
 * is overdue on the overview). A PDF for the governors' pack; computed from live data like the
 * compliance view.
 */

const words: Record<ProbeStatus, string> = { met: 'met', due_soon: 'due soon', not_met: 'not met' };
const day = (iso: string) => iso.slice(0, 10);

/** Audit actions worth a governor's eye, and how to say them. */
const NOTABLE: Record<string, string> = {
  'access.review_signed_off': 'Access rights review signed off',
  'aup.published': 'Acceptable Use Policy published',
  'compliance.signed_off': 'Compliance clause signed off',
  'compliance.signoff_withdrawn': 'Compliance sign-off withdrawn',
  'compliance.policy_document_changed': 'Technical-security policy document changed',
  'reports.termly_issued': 'Termly monitoring report issued',
  'filtering.check_recorded': 'Filtering check recorded',
  'filtering.policy_changed': 'Filtering policy changed',
  'filtering.list_added': 'Filter list added',
  'filtering.list_removed': 'Filter list removed',
  'account.created': 'Account created',
  'account.disabled': 'Account disabled',
  'leaver.completed': 'Leaver checklist completed',
};

export async function governorsReportSections(rt: Runtime, period: Period): Promise<PdfSection[]> {
  const { start, end } = periodBounds(period, rt.profile.timeZone);
  const from = start.toISOString();
  const to = end.toISOString();
  const frameworks = await evaluateCompliance(rt);
  const sections: PdfSection[] = [];

  sections.push({
    heading: 'Where the school stands',
    paragraphs: ['Each framework’s clauses, judged now from Gatehouse’s records and from sign-offs by the people responsible.'],
    table: {
      columns: ['Framework', 'Met', 'Due soon', 'Not met', 'Of'],
      widths: [3, 0.7, 0.9, 0.8, 0.6],
      rows: frameworks.map((f) => [f.name, f.counts.met, f.counts.due_soon, f.counts.not_met, f.counts.total]),
    },
  });

  // What changed: clause movements from the daily history within the term.
  const snapshots = await rt.db.kysely.selectFrom('compliance_snapshot').select(['framework_id', 'day', 'clauses']).where('day', '>=', day(from)).where('day', '<', day(to)).orderBy('day').execute();
  const names = new Map(loadFrameworks().map((f) => [f.id, f]));
  const firstByFramework = new Map<string, Record<string, ProbeStatus>>();
  for (const s of snapshots) if (!firstByFramework.has(s.framework_id)) firstByFramework.set(s.framework_id, JSON.parse(s.clauses) as Record<string, ProbeStatus>);
  const moved: Array<[string, string, string, string]> = [];
  for (const fw of frameworks) {
    const first = firstByFramework.get(fw.id);
    if (!first) continue;
    for (const clause of fw.clauses) {
      const was = first[clause.id];
      if (was && was !== clause.status) moved.push([names.get(fw.id)?.name ?? fw.id, `${clause.id} ${clause.title}`, words[was], words[clause.status]]);
    }
  }
  const events = await rt.db.kysely.selectFrom('audit_event').select(['action', (eb) => eb.fn.countAll<number>().as('n')]).where('at', '>=', from).where('at', '<', to).where('action', 'in', Object.keys(NOTABLE)).groupBy('action').execute();
  const versions = (await policyVersions(rt)).filter((v) => v.recordedAt >= from && v.recordedAt < to);
  sections.push({
    heading: `What changed in ${period.name}`,
    paragraphs: [
      moved.length === 0 ? (firstByFramework.size === 0 ? 'No standing was recorded earlier this term to compare with.' : 'No clause changed its standing this term.') : `${moved.length} clause${moved.length === 1 ? '' : 's'} changed standing this term:`,
    ],
    table: moved.length > 0 ? { columns: ['Framework', 'Clause', 'Was', 'Now'], widths: [1.4, 3.4, 0.8, 0.8], rows: moved.slice(0, 60) } : undefined,
  });
  sections.push({
    heading: 'Records made this term',
    facts: [
      ...events.sort((a, b) => NOTABLE[a.action]!.localeCompare(NOTABLE[b.action]!)).map((e) => [NOTABLE[e.action]!, String(Number(e.n))] as [string, string]),
      ['Policy document versions', versions.length === 0 ? 'unchanged' : versions.map((v) => `version ${v.number} of ${day(v.recordedAt)}`).join(', ')],
    ],
  });

  // What needs a decision: clauses not met that governors or senior leaders sign, then the overdue list.
  const decisions: Array<[string, string, string]> = [];
  const seen = new Set<string>();
  for (const fw of frameworks) {
    for (const clause of fw.clauses.filter((c) => c.status === 'not_met')) {
      const key = clause.title;
      if (seen.has(key)) continue;
      seen.add(key);
      const why = clause.evidence.filter((e) => e.status !== 'met').map((e) => e.summary).join(' ');
      decisions.push([`${fw.name} ${clause.id}`, clause.title, why]);
    }
  }
  const overdue = (await Promise.all(dueProviders.map((p) => p(rt).catch(() => [])))).flat().filter((i) => i.overdue && i.kind !== 'compliance');
  sections.push({
    heading: 'What needs a decision or action',
    paragraphs: [`${decisions.length} clause${decisions.length === 1 ? ' is' : 's are'} not met (each listed once${decisions.length > 80 ? '; the first 80 below, every one in the console’s Compliance view' : ''}), and ${overdue.length} item${overdue.length === 1 ? ' is' : 's are'} overdue.`],
    table: { columns: ['Where', 'What', 'Why not met'], widths: [1.3, 2.5, 2.6], rows: decisions.slice(0, 80), empty: 'Every clause is met.' },
  });
  if (overdue.length > 0) {
    sections.push({
      heading: 'Overdue',
      table: { columns: ['Requirement', 'What'], widths: [0.8, 4], rows: overdue.slice(0, 60).map((i) => [i.requirement, i.title]) },
    });
  }
  return sections;
}

export async function governorsReportPdf(rt: Runtime, period: Period, by: string): Promise<{ pdf: Buffer; filename: string }> {
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  const now = rt.clock.now();
  const pdf = await renderPdf({
    title: `Governors’ report: ${period.name}`,
    subtitle: `${school?.name ?? 'The school'} · technical security and online safety · where the school stands, what changed, what needs a decision`,
    generatedBy: by,
    generatedAt: now,
    marking: 'OFFICIAL',
    sections: await governorsReportSections(rt, period),
  });
  return { pdf, filename: pdfFilename(`governors-report-${period.from}`, now) };
}
