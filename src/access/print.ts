import type { AccessMatrix } from './matrix.js';
import type { ReviewStatusReport, ReviewSummary } from './review.js';

/**
 * The matrix and the review status as plain text for `gatehouse access …`: fixed-width tables that
 * fit a terminal, ticks for permissions, levels for the school's systems.
 */

/** Terminal headings, 6 characters at most, so nine roles fit in 90 columns; the legend says what they stand for. */
const cliHeadings: Record<string, string> = { administrator: 'Admin', senior_leader: 'SLT', dsl: 'DSL', dpo: 'DPO', governor: 'Gov', office: 'Office', staff: 'Staff', pupil: 'Pupil', guest: 'Guest' };
const heading = (role: { role: string; shortLabel: string }) => cliHeadings[role.role] ?? role.shortLabel.slice(0, 6);

const pad = (text: string, width: number) => (text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width));

function table(head: string[], rows: string[][], firstWidth: number, cellWidth: number): string {
  const line = (cells: string[]) => `${pad(cells[0]!, firstWidth)} ${cells.slice(1).map((c) => pad(c, cellWidth)).join(' ')}`.trimEnd();
  return [line(head), line(head.map((_, i) => '-'.repeat(i === 0 ? firstWidth : cellWidth))), ...rows.map(line)].join('\n');
}

export function formatMatrix(matrix: AccessMatrix): string {
  const out: string[] = [];
  const { roles, permissions } = matrix.gatehouse;
  out.push('RIGHTS IN GATEHOUSE (from the authorization table; ✓ = the role has it)', '');
  const cellWidth = 6;
  let area = '';
  const rows: string[][] = [];
  for (const p of permissions) {
    if (p.area !== area) {
      area = p.area;
      rows.push([`${area}:`, ...roles.map(() => '')]);
    }
    rows.push([`  ${p.permission}`, ...roles.map((r) => (p.roles.includes(r.role as never) ? '✓' : '·'))]);
  }
  out.push(table(['Permission', ...roles.map(heading)], rows, 22, cellWidth));
  out.push('', 'What each permission allows:');
  for (const p of permissions) out.push(`  ${pad(p.permission, 20)} ${p.description}`);
  out.push('', `Roles: ${roles.map((r) => `${heading(r)} = ${r.label}`).join('; ')}`);

  out.push('', '', 'RIGHTS IN THE SCHOOL’S SYSTEMS (as recorded by the school)', '');
  if (matrix.systems.length === 0) {
    out.push('  No school systems are listed yet. Add them in the console under Access rights.');
  } else {
    const levelLabel = new Map(matrix.levels.map((l) => [l.level, l.label]));
    const used = matrix.subjects.filter((s) => s.kind === 'role' || matrix.systems.some((sys) => sys.grants.some((g) => g.subject === s.subject)));
    const heads = used.map((s) => {
      const role = roles.find((r) => `role:${r.role}` === s.subject);
      return role ? heading(role) : s.name;
    });
    const width = Math.min(12, Math.max(6, ...heads.map((h) => h.length)));
    const systemRows = matrix.systems.map((sys) => [sys.name, ...used.map((s) => {
      const grant = sys.grants.find((g) => g.subject === s.subject);
      return grant ? `${levelLabel.get(grant.level) ?? grant.level}${grant.note ? '*' : ''}` : '—';
    })]);
    out.push(table(['System', ...heads], systemRows, 22, width));
    out.push('', '— = not recorded; * = has a note:');
    for (const sys of matrix.systems) {
      if (sys.description) out.push(`  ${sys.name}: ${sys.description}`);
      for (const g of sys.grants.filter((g) => g.note)) out.push(`  ${sys.name} / ${matrix.subjects.find((s) => s.subject === g.subject)?.name ?? g.subject}: ${g.note}`);
    }
  }

  out.push('', '', 'RULES ABOUT WHOSE RECORDS PEOPLE REACH (AC-03)', '');
  for (const r of matrix.rules) out.push(`  • ${r.rule} [${r.requirement}]`);
  return `${out.join('\n')}\n`;
}

const day = (iso: string) => iso.slice(0, 10);

export function formatReviewStatus(status: ReviewStatusReport, reviews: ReviewSummary[]): string {
  const out: string[] = ['Annual access review (AC-02)'];
  out.push(`  Reviews are due every ${status.everyMonths} months (profile setting accessReview.everyMonths).`);
  out.push(`  Last signed off: ${status.lastSignedOffAt ? day(status.lastSignedOffAt) : 'never'}`);
  out.push(`  Next due:        ${status.nextDueAt ? day(status.nextDueAt) : 'now'}${status.overdue ? '  — OVERDUE' : ''}`);
  if (status.inProgress) {
    const r = status.inProgress;
    out.push(`  In progress:     started ${day(r.startedAt)} by ${r.startedBy.name}; ${r.decided} of ${r.accounts} privileged accounts decided`);
  }
  const past = reviews.filter((r) => r.status === 'signed_off');
  if (past.length) {
    out.push('', 'Past reviews:');
    for (const r of past) out.push(`  ${day(r.signedOffAt!)}  signed off by ${r.signedOffBy?.name ?? '?'}: ${r.accounts} accounts, ${r.changes} change${r.changes === 1 ? '' : 's'}${r.summary ? ` — ${r.summary}` : ''}`);
  }
  return `${out.join('\n')}\n`;
}
