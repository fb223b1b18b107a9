import { DUE_SOON_DAYS, registerProbe, type Probe, type ProbeResult } from '../compliance/probes.js';
import { addMonths, filteringReviewPoints, filteringReviewStatus, lastOfKind, listPolicyReviews, listReviews, listShortfalls, trainingRegister, YEAR_MONTHS, type ReviewKind } from './governance.js';

/**
 * Issue 12: the compliance clauses the governance registers make automatically checkable. Each
 * judges the records themselves — a filtering review covering every P4 9.15 point within 12 months
 * and after any recorded change (GV-02), policies within their review dates (GV-06), a current
 * training record per member of staff (GV-05), a review or audit reported to senior leaders with no
 * recommendation past its date (GV-01), shortfalls reported to governors (GV-07), a data-protection
 * walk (GV-09) and a physical-security check with nothing failed (GV-10) within 12 months.
 * Registered once, when the compliance service loads.
 */
const DAY = 86_400_000;
const dateOf = (iso: string) => iso.slice(0, 10);
const evidence = [{ label: 'Governance', href: '/governance' }];

function yearly(now: Date, last: string | null, what: string): ProbeResult {
  if (!last) return { status: 'not_met', summary: `No ${what} is recorded.`, evidence, dueAt: null };
  const due = addMonths(last, YEAR_MONTHS);
  const left = Date.parse(due) - now.getTime();
  if (left <= 0) return { status: 'not_met', summary: `The last ${what} was on ${dateOf(last)}; another was due by ${dateOf(due)}.`, evidence, dueAt: due };
  return { status: left < DUE_SOON_DAYS * DAY ? 'due_soon' : 'met', summary: `The last ${what} was on ${dateOf(last)}; the next is due by ${dateOf(due)}.`, evidence, dueAt: due };
}

const probes: Probe[] = [
  {
    id: 'filtering-review',
    title: 'The filtering and monitoring review covered every point of P4 9.15 within the last 12 months and after any change in risk, practice or technology',
    kind: 'record',
    requirements: ['GV-02'],
    async evaluate(f) {
      const s = await f.get('filtering-review', () => filteringReviewStatus(f.rt));
      if (!s.last) return { status: 'not_met', summary: 'No filtering and monitoring review is recorded.', evidence, dueAt: null };
      const last = (await f.get('filtering-review-last', () => listReviews(f.rt, { id: s.last!.id })))[0]!;
      const covered = filteringReviewPoints.filter((p) => last.checklist.some((c) => c.point === p.id && c.note.trim())).length;
      if (covered < filteringReviewPoints.length) return { status: 'not_met', summary: `The last review (${dateOf(s.last.reviewedAt)}) covered ${covered} of the ${filteringReviewPoints.length} points.`, evidence, dueAt: s.dueAt };
      const when = `The last review was on ${dateOf(s.last.reviewedAt)} by ${s.last.reviewedBy}, reported to ${s.last.reportedTo}`;
      if (s.overdue) return { status: 'not_met', summary: `${when}; another was due by ${dateOf(s.dueAt!)} (${s.reason}).`, evidence, dueAt: s.dueAt };
      return { status: s.dueSoon ? 'due_soon' : 'met', summary: `${when}; the next is due by ${dateOf(s.dueAt!)}${s.changes.length ? ` (${s.reason})` : ''}.`, evidence, dueAt: s.dueAt };
    },
  },
  {
    id: 'governance-reviews',
    title: 'A review or audit of technical security was reported to senior leaders within the last 12 months, and no recommendation is past its date',
    kind: 'record',
    requirements: ['GV-01'],
    async evaluate(f) {
      const reviews = (await f.get('governance-reviews', () => listReviews(f.rt))).filter((r) => r.kind === 'audit' || r.kind === 'review');
      const result = yearly(f.now, reviews[0]?.reviewedAt ?? null, 'review or audit of technical security');
      if (result.status === 'not_met') return result;
      const overdue = reviews.flatMap((r) => r.recommendations).filter((x) => x.overdue);
      if (overdue.length) return { status: 'not_met', summary: `${overdue.length} recommendation${overdue.length === 1 ? ' is' : 's are'} past ${overdue.length === 1 ? 'its' : 'their'} date: ${overdue.slice(0, 3).map((x) => x.text).join('; ')}.`, evidence, dueAt: null };
      return { ...result, summary: `${result.summary.replace(/\.$/, '')}, reported to ${reviews[0]!.reportedTo}.` };
    },
  },
  {
    id: 'training-records',
    title: 'Every member of staff has a training record within the last 12 months (NCSC cyber security training)',
    kind: 'record',
    requirements: ['GV-05'],
    async evaluate(f) {
      const people = await f.get('training', () => trainingRegister(f.rt));
      if (people.length === 0) return { status: 'not_met', summary: 'There are no staff accounts to train.', evidence, dueAt: null };
      const missing = people.filter((p) => p.state === 'none' || p.state === 'lapsed');
      if (missing.length) return { status: 'not_met', summary: `${missing.length} of ${people.length} members of staff have no current training: ${missing.slice(0, 5).map((p) => p.displayName).join(', ')}${missing.length > 5 ? '…' : ''}.`, evidence, dueAt: null };
      const next = people.map((p) => p.currentUntil!).sort()[0]!;
      return { status: people.some((p) => p.state === 'due_soon') ? 'due_soon' : 'met', summary: `All ${people.length} members of staff have current training; the first lapses on ${dateOf(next)}.`, evidence, dueAt: next };
    },
  },
  {
    id: 'policies-reviewed',
    title: 'Policies are recorded with their reviews and none is past its next review date (at most 12 months)',
    kind: 'record',
    requirements: ['GV-06'],
    async evaluate(f) {
      const policies = await f.get('policy-reviews', () => listPolicyReviews(f.rt));
      if (policies.length === 0) return { status: 'not_met', summary: 'No policy review is recorded.', evidence, dueAt: null };
      const overdue = policies.filter((p) => p.overdue);
      if (overdue.length) return { status: 'not_met', summary: `Past their review date: ${overdue.map((p) => p.policy).join(', ')}.`, evidence, dueAt: overdue[0]!.nextReviewAt };
      const next = policies[0]!;
      return { status: next.dueSoon ? 'due_soon' : 'met', summary: `${policies.length} polic${policies.length === 1 ? 'y' : 'ies'} within their review dates; the next is “${next.policy}” by ${dateOf(next.nextReviewAt)}.`, evidence, dueAt: next.nextReviewAt };
    },
  },
  {
    id: 'shortfalls-reported',
    title: 'Every open resource shortfall, with its risk, has been reported to governors',
    kind: 'automatic',
    requirements: ['GV-07'],
    async evaluate(f) {
      const all = await f.get('shortfalls', () => listShortfalls(f.rt, true));
      // An empty register is not proof that nothing is short: it asks to be looked at, not passed.
      if (all.length === 0) return { status: 'due_soon', summary: 'No resource shortfall has ever been recorded: record any the school has, with their risks, and report them to governors.', evidence };
      const open = all.filter((s) => !s.resolvedAt);
      if (open.length === 0) return { status: 'met', summary: `No open resource shortfall (${all.length} resolved).`, evidence };
      const unreported = open.filter((s) => !s.reportedToGovernorsAt);
      if (unreported.length) return { status: 'not_met', summary: `Not yet reported to governors: ${unreported.map((s) => s.title).join(', ')}.`, evidence };
      return { status: 'met', summary: `All ${open.length} open shortfall${open.length === 1 ? ' was' : 's were'} reported to governors.`, evidence };
    },
  },
  ...(
    [
      ['dp-walk', 'dp_walk', 'GV-09', 'A data-protection walk or spot check of systems and devices was made within the last 12 months', 'data-protection walk'],
      ['physical-security', 'physical_security', 'GV-10', 'The physical-security checklist (server room, cabinets, access, cabling) was checked within the last 12 months with nothing failed', 'physical-security check'],
    ] as Array<[string, ReviewKind, string, string, string]>
  ).map(([id, kind, requirement, title, what]): Probe => ({
    id,
    title,
    kind: 'record',
    requirements: [requirement],
    async evaluate(f) {
      const last = await f.get(`last-${kind}`, () => lastOfKind(f.rt, kind));
      const result = yearly(f.now, last?.review.reviewedAt ?? null, what);
      if (result.status !== 'not_met' && last && last.review.failed.length) return { status: 'not_met', summary: `The last ${what} (${dateOf(last.review.reviewedAt)}) failed: ${last.review.failed.join('; ')}.`, evidence, dueAt: result.dueAt ?? null };
      return result;
    },
  })),
];

for (const p of probes) registerProbe(p);
