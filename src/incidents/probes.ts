import type { Probe } from '../compliance/probes.js';
import { BREACH_HOURS } from './service.js';

const HOUR = 3_600_000;

/**
 * IN-04 as a compliance probe: every personal-data breach has its ICO decision (reportable or not,
 * and why) recorded within 72 hours of the school becoming aware of it. Counts only: the compliance
 * view is read by governors.
 */
export const breachDecisionsProbe: Probe = {
  id: 'breach-decisions',
  title: 'Every personal-data breach has its ICO decision (reportable or not, and why) recorded within 72 hours of awareness',
  kind: 'automatic',
  requirements: ['IN-04'],
  async evaluate(f) {
    const evidence = [{ label: 'Incidents', href: '/incidents' }];
    const rows = await f.get('incident-breaches', () => f.rt.db.kysely.selectFrom('incident').select(['aware_at', 'ico_decided_at']).where('category', '=', 'data_breach').execute());
    if (rows.length === 0) return { status: 'met', summary: 'No personal-data breach has been recorded; the procedure (72-hour clock, DPO reminders, ICO decision) is in place.', evidence, dueAt: null };
    const now = f.now.getTime();
    const deadline = (aware: string | null) => Date.parse(aware ?? '') + BREACH_HOURS * HOUR;
    const late = rows.filter((r) => (r.ico_decided_at ? Date.parse(r.ico_decided_at) : now) > deadline(r.aware_at)).length;
    const pending = rows.filter((r) => !r.ico_decided_at && now <= deadline(r.aware_at));
    if (late > 0) return { status: 'not_met', summary: `${late} of ${rows.length} personal-data breaches had no ICO decision within ${BREACH_HOURS} hours.`, evidence, dueAt: null };
    if (pending.length > 0) {
      const next = new Date(Math.min(...pending.map((r) => deadline(r.aware_at)))).toISOString();
      return { status: 'due_soon', summary: `${pending.length} personal-data breach(es) awaiting the ICO decision; the next is due by ${next.slice(0, 16).replace('T', ' ')} UTC.`, evidence, dueAt: next };
    }
    return { status: 'met', summary: `All ${rows.length} personal-data breaches had their ICO decision within ${BREACH_HOURS} hours.`, evidence, dueAt: null };
  },
};
