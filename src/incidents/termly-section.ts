import type { PdfSection } from '../core/pdf.js';
import type { ReportContext } from '../reports/termly.js';
import { categories, categoryLabels } from './access.js';

/** MO-05 + IN-07: incidents in the term, counts only (no one named, no titles): for governors. */
export async function incidentsSection({ rt, from, to }: ReportContext): Promise<PdfSection | null> {
  const db = rt.db.kysely;
  const opened = await db.selectFrom('incident').select(['category', (eb) => eb.fn.countAll<number>().as('n')]).where('created_at', '>=', from).where('created_at', '<', to).groupBy('category').execute();
  const closed = await db.selectFrom('incident').select(['category', (eb) => eb.fn.countAll<number>().as('n')]).where('closed_at', '>=', from).where('closed_at', '<', to).groupBy('category').execute();
  const reported = await db.selectFrom('incident').select((eb) => eb.fn.countAll<number>().as('n')).where('ico_decision', '=', 'reportable').where('ico_decided_at', '>=', from).where('ico_decided_at', '<', to).executeTakeFirst();
  const concerns = await db.selectFrom('incident_concern').select((eb) => eb.fn.countAll<number>().as('n')).where('created_at', '>=', from).where('created_at', '<', to).executeTakeFirst();
  const count = (rows: Array<{ category: string; n: unknown }>, c: string) => Number(rows.find((r) => r.category === c)?.n ?? 0);
  return {
    heading: 'Incidents and concerns',
    paragraphs: [`${Number(concerns?.n ?? 0)} concern(s) were reported by pupils, staff or visitors. ${Number(reported?.n ?? 0)} personal-data breach(es) were reported to the ICO.`],
    table: {
      columns: ['Category', 'Recorded', 'Closed'],
      widths: [2, 1, 1],
      rows: categories.map((c) => [categoryLabels[c], String(count(opened, c)), String(count(closed, c))]),
      empty: 'No incidents.',
    },
  };
}
