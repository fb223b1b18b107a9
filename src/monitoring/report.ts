import type { ReportContext } from '../reports/termly.js';
import { termlySections } from '../reports/termly.js';
import type { PdfSection } from '../core/pdf.js';
import { outcomeLabels } from './alerts.js';

/** MO-05 / MO-07: the alerts of the term in the termly report: counts by kind, rule and outcome, how fast they were acknowledged. No one is named. */
export async function alertsSection({ rt, from, to }: ReportContext): Promise<PdfSection | null> {
  const rows = await rt.db.kysely.selectFrom('alert').select(['kind', 'rule', 'severity', 'status', 'outcome', 'first_at', 'acknowledged_at', 'escalations']).where('first_at', '>=', from).where('first_at', '<', to).execute();
  if (rows.length === 0) return { heading: 'Alerts', paragraphs: ['No safeguarding or security alerts were raised this term.'] };
  const count = <T extends string>(values: T[]) => [...values.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<T, number>())].sort((a, b) => b[1] - a[1]);
  const acked = rows.filter((r) => r.acknowledged_at).map((r) => (new Date(r.acknowledged_at!).getTime() - new Date(r.first_at).getTime()) / 60_000).sort((a, b) => a - b);
  const median = acked.length ? acked[Math.floor(acked.length / 2)]! : null;
  const byRule = count(rows.map((r) => `${r.kind}: ${r.rule.replace(/_/g, ' ')}`));
  const byOutcome = count(rows.filter((r) => r.outcome).map((r) => outcomeLabels[r.outcome as keyof typeof outcomeLabels] ?? r.outcome!));
  return {
    heading: 'Alerts',
    facts: [
      ['Alerts raised', String(rows.length)],
      ['Safeguarding / security', `${rows.filter((r) => r.kind === 'safeguarding').length} / ${rows.filter((r) => r.kind === 'security').length}`],
      ['High severity', String(rows.filter((r) => r.severity === 'high').length)],
      ['Closed with an outcome', String(rows.filter((r) => r.status === 'closed').length)],
      ['Still open', String(rows.filter((r) => r.status !== 'closed').length)],
      ['Escalated (not acknowledged in time)', String(rows.filter((r) => Number(r.escalations) > 0).length)],
      ['Median time to acknowledge', median === null ? '—' : `${Math.round(median)} minutes`],
    ],
    table: { columns: ['Alerts by rule', 'Count'], rows: [...byRule.map(([k, v]) => [k, String(v)]), ...byOutcome.map(([k, v]) => [`Outcome: ${k}`, String(v)])] },
  };
}

termlySections.push(alertsSection);
