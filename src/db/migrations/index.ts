import type { Migration } from 'kysely';
import * as foundation from './0001-foundation.js';
import * as signIn from './0002-sign-in.js';
import * as passkeyChallenges from './0003-passkey-challenges.js';
import * as directory from './0004-directory.js';
import * as filtering from './0005-filtering.js';
import * as scimGrants from './0006-scim-grants.js';
import * as secretsHardening from './0007-secrets-hardening.js';
import * as sessionTotpEnrolment from './0009-session-totp-enrolment.js';
import * as compliance from './0010-compliance.js';
// Issue 11: change control (src/governance/)
import * as changeControl from './0011-change-control.js';
import * as monitoringReports from './0015-monitoring-reports.js';
// equipment registers (issue 12)
import * as equipmentRegisters from './0016-equipment-registers.js';
import * as policyDocument from './0018-policy-document.js';
// filter exceptions (issue 11)
import * as filterExceptions from './0012-filter-exceptions.js';
// issue 11: safeguarding alerts
import * as alerts from './0013-alerts.js';
// incidents and breaches (issue 11)
import * as incidents from './0014-incidents.js';
// issue 12: backups and governance registers (src/registers/)
import * as backupsGovernance from './0017-backups-governance.js';
// issue 12: the governance registers' statuses, certificate references and review triggers
import * as governanceRegisters from './0019-governance-registers.js';
import * as backupsMore from './0020-backups-more.js';

/** One list for both dialects, in order. Append only: a released migration is never edited. */
export const migrations: Record<string, Migration> = {
  '0001-foundation': foundation,
  '0002-sign-in': signIn,
  '0003-passkey-challenges': passkeyChallenges,
  '0004-directory': directory,
  '0005-filtering': filtering,
  '0006-scim-grants': scimGrants,
  '0007-secrets-hardening': secretsHardening,
  '0009-session-totp-enrolment': sessionTotpEnrolment,
  '0010-compliance': compliance,
  // Issue 11: change control (src/governance/); in number order, as the migrations test requires
  '0011-change-control': changeControl,
  // filter exceptions (issue 11); in file order, as the migrations test requires
  '0012-filter-exceptions': filterExceptions,
  // issue 11: safeguarding alerts (in file-name order, as the migrations test requires)
  '0013-alerts': alerts,
  // incidents and breaches (issue 11); in number order, which the migrations test checks
  '0014-incidents': incidents,
  '0015-monitoring-reports': monitoringReports,
  // equipment registers (issue 12); sorted by number, as the migrations test requires
  '0016-equipment-registers': equipmentRegisters,
  // issue 12: backups and governance registers (in numeric order: the test compares with the sorted files)
  '0017-backups-governance': backupsGovernance,
  '0018-policy-document': policyDocument,
  // issue 12: governance registers (GV-01, GV-02, GV-05)
  '0019-governance-registers': governanceRegisters,
  // issue 12: the continuity plan's contacts and history (BK-05)
  '0020-backups-more': backupsMore,
};
