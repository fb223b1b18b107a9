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
// Issue 11: change control
import { changesDue } from '../governance/changes.js';
// filter exceptions (issue 11)
import { exceptionsDue } from '../filtering/exceptions.js';
// issue 11: safeguarding alerts
import { alertsDue } from '../monitoring/alerts.js';
// incidents and breaches (issue 11)
import { incidentsDue } from '../incidents/service.js';
// equipment registers (issue 12)
import { equipmentDue } from '../registers/equipment.js';
import { softwareDue } from '../registers/software.js';
// backups and risk registers (issue 12)
import { backupsDue } from '../registers/backups.js';
import { risksDue } from '../registers/risks.js';
// governance registers (issue 12)
import { governanceDue } from '../registers/governance.js';

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
  // Issue 11: change control
  changesDue,
  // filter exceptions (issue 11)
  exceptionsDue,
  // issue 11: safeguarding alerts
  alertsDue,
  // incidents and breaches (issue 11)
  incidentsDue,
  // equipment registers (issue 12)
  equipmentDue,
  softwareDue,
  // backups and risk registers (issue 12)
  backupsDue,
  risksDue,
  // governance registers (issue 12)
  governanceDue,
];
