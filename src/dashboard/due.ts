import type { Permission } from '../core/authz.js';
import type { Runtime } from '../runtime.js';

/**
 * What needs someone's attention on the overview: an overdue access review, shared secrets due for
 * rotation, staff resets waiting for a second person, visitors still signed in. Each capability
 * module contributes a provider (registered in `providers.ts`); each item names the permission a
 * person needs to see it, the requirement it comes from, and where in the console to act on it.
 */
export interface DueItem {
  /** stable kind, e.g. "access_review", "shared_secret" */
  kind: string;
  /** one line a headteacher understands: "Wi-Fi key (staff) is due for rotation" */
  title: string;
  /** more detail, optional */
  detail?: string;
  /** when it is or was due (ISO), or null for "now" */
  dueAt: string | null;
  overdue: boolean;
  /** the console path to act on it, e.g. "/secrets" */
  href: string;
  /** requirement ID, e.g. "PW-12" */
  requirement: string;
  /** who may see it */
  permission: Permission;
}

export type DueProvider = (rt: Runtime) => Promise<DueItem[]>;
