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
import * as monitoringReports from './0015-monitoring-reports.js';
import * as policyDocument from './0018-policy-document.js';
// issue 12: backups and governance registers (src/registers/)
import * as backupsGovernance from './0017-backups-governance.js';

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
  '0015-monitoring-reports': monitoringReports,
  // issue 12: backups and governance registers (in numeric order: the test compares with the sorted files)
  '0017-backups-governance': backupsGovernance,
  '0018-policy-document': policyDocument,
};
