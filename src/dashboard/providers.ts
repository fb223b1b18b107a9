import type { DueProvider } from './due.js';
import { resetDueItems } from '../identity/resets.js';
import { accessReviewDue } from '../access/review.js';
import { guestDueItems } from '../guests/service.js';
import { sharedSecretsDue } from '../registers/shared-secrets.js';
import { openLeavers } from '../directory/leavers.js';
import { filteringDue } from '../filtering/lists-service.js';
import { complianceDue } from '../compliance/service.js';
import { checksDue } from '../reports/checks.js';
import { termlyReportDue } from '../reports/termly.js';
// backups and risk registers (issue 12)
import { backupsDue } from '../registers/backups.js';
import { risksDue } from '../registers/risks.js';

/** Every module's contribution to "needs attention" (add yours here). */
export const dueProviders: DueProvider[] = [
  resetDueItems,
  accessReviewDue,
  guestDueItems,
  sharedSecretsDue,
  openLeavers,
  filteringDue,
  complianceDue,
  checksDue,
  termlyReportDue,
  // backups and risk registers (issue 12)
  backupsDue,
  risksDue,
];
