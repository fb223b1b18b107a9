import type { PdfSection } from '../core/pdf.js';
import type { ReportContext } from '../reports/termly.js';

const fmt = (v: number) => v.toLocaleString('en-GB');

const stateLabels: Record<string, string> = {
  pending: 'Awaiting approval',
  applied: 'Approved and applied',
  refused: 'Refused',
  withdrawn: 'Withdrawn by the requester',
  applied_pending_approval: 'Emergency, in force, awaiting approval',
  rolled_back: 'Emergency, rolled back',
};

const kindLabels: Record<string, string> = {
  allow: 'Sites or categories allowed (unblock decisions)',
  lesson: 'Lesson allowances by teachers',
  'filter-off': 'Filtering turned off',
  quarantine: 'Devices quarantined',
};

/**
 * MO-05 / FI-06 / FI-07 / FI-12: the term's change requests (by outcome, emergencies) and the
 * exceptions made to the filter (allowances, lesson allowances, filtering turned off, quarantines).
 * Counts only: nobody is named, so it can go in a governors' pack.
 */
export async function governanceSection({ rt, from, to }: ReportContext): Promise<PdfSection> {
  const db = rt.db.kysely;
  const changes = await db.selectFrom('change_request').select(['state', 'emergency']).where('requested_at', '>=', from).where('requested_at', '<', to).execute();
  const exceptions = await db.selectFrom('filter_exception').select(['kind', 'status']).where('created_at', '>=', from).where('created_at', '<', to).execute();
  const byState = new Map<string, number>();
  for (const c of changes) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
  const byKind = new Map<string, { made: number; refused: number }>();
  for (const e of exceptions) {
    const entry = byKind.get(e.kind) ?? { made: 0, refused: 0 };
    if (e.status === 'refused') entry.refused += 1;
    else if (e.status !== 'pending') entry.made += 1;
    byKind.set(e.kind, entry);
  }
  const emergencies = changes.filter((c) => Number(c.emergency) === 1).length;
  return {
    heading: 'Change control and exceptions to the filter',
    paragraphs: [
      changes.length === 0
        ? 'No change requests were made to the filtering this term.'
        : `${fmt(changes.length)} change request${changes.length === 1 ? '' : 's'} to the filtering, ${fmt(emergencies)} of them emergency block${emergencies === 1 ? '' : 's'} put in force at once. Every change is approved by a second person named in the policy, never by the person who asked.`,
    ],
    table: {
      columns: ['What', 'Count'],
      widths: [3, 1],
      rows: [
        ...[...byState].sort((a, b) => b[1] - a[1]).map(([state, count]) => [`Change requests: ${stateLabels[state] ?? state}`, fmt(count)]),
        ...[...byKind].map(([kind, v]) => [kindLabels[kind] ?? kind, v.refused ? `${fmt(v.made)} (${fmt(v.refused)} refused)` : fmt(v.made)]),
      ],
      empty: 'No change requests or exceptions this term.',
    },
  };
}
