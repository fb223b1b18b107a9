import type { Actor } from '../core/context.js';
import type { Role } from '../core/authz.js';

/**
 * Who reads which category of incident (need to know; docs/incidents.md):
 * - safeguarding: the DSL only. The DSL tells the headteacher what they need; the policies ask for
 *   concerns to go to the DSL (P1, P2, P4 3.8) and nothing says other leaders read the details.
 * - security and cyber: the IT lead (administrators), the headteacher (senior leader) and the DPO
 *   (IN-02: P3 4.7, 4.11, 8.1).
 * - personal-data breach: the DPO, the IT lead and the headteacher (IN-04: P3 8.4).
 */
export const categories = ['safeguarding', 'security', 'data_breach', 'cyber'] as const;
export type Category = (typeof categories)[number];

export const categoryLabels: Record<Category, string> = {
  safeguarding: 'Safeguarding / online safety',
  security: 'Security',
  data_breach: 'Personal-data breach',
  cyber: 'Cyber incident',
};

const readers: Record<Category, readonly Role[]> = {
  safeguarding: ['dsl'],
  security: ['administrator', 'senior_leader', 'dpo'],
  cyber: ['administrator', 'senior_leader', 'dpo'],
  data_breach: ['dpo', 'administrator', 'senior_leader'],
};

export function readableCategories(actor: Actor): Category[] {
  return categories.filter((c) => actor.role !== null && readers[c].includes(actor.role));
}

export function mayRead(actor: Actor, category: string): boolean {
  return (readableCategories(actor) as string[]).includes(category);
}

/** Concerns: online-safety ones to the DSL, technical ones to the IT lead (the DSL sees both). */
export function readableConcernKinds(actor: Actor): string[] {
  if (actor.role === 'dsl') return ['online_safety', 'technical'];
  if (actor.role === 'administrator') return ['technical'];
  return [];
}
