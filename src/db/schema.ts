import type { Generated, GeneratedAlways } from 'kysely';

/**
 * Table types, shared by both dialects. Times are ISO-8601 UTC text with milliseconds
 * ("2026-09-01T08:00:00.000Z") in both, so they compare and sort as text; flags are 0/1 integers.
 */
export interface SchoolTable {
  id: number;
  name: string;
  urn: string | null;
  created_at: string;
  updated_at: string;
}

/** GV-04: the people the policies name (headteacher, DSL, DPO, responsible governor, IT lead). */
export interface SchoolContactTable {
  role: string;
  name: string;
  email: string | null;
  updated_at: string;
}

export interface AccountTable {
  id: string;
  username: string;
  display_name: string;
  email: string | null;
  role: string;
  password_hash: string | null;
  status: string;
  is_break_glass: number;
  created_at: string;
  updated_at: string;
  linked_account_id: string | null;
  failed_attempts: Generated<number>;
  locked_at: string | null;
  password_set_at: string | null;
  password_expiry_exempt: Generated<number>;
  must_change_password: Generated<number>;
  temporary_expires_at: string | null;
  /** encrypted with the server's secret key */
  totp_secret: string | null;
  totp_last_step: number | null;
  totp_enrolled_at: string | null;
  given_name: string | null;
  family_name: string | null;
  /** the id the person has in the system they came from (SCIM externalId, SDS sourcedId, MIS id) */
  external_id: string | null;
  /** where the record came from: manual, csv, sds, scim, guest-pool */
  source: Generated<string>;
  left_at: string | null;
  /** AC-05: a guest's access ends here; sign-in and sessions stop */
  access_ends_at: string | null;
  /** source scim: the provisioning source (of SCIM tokens) that made or adopted it, and so owns it */
  provisioning_source: string | null;
}

export interface DirectoryGroupTable {
  id: string;
  name: string;
  /** year, class, department, other */
  kind: string;
  external_id: string | null;
  source: Generated<string>;
  created_at: string;
  updated_at: string;
  /** source scim: the provisioning source (of SCIM tokens) that made it, and so owns it */
  provisioning_source: string | null;
}

export interface GroupMemberTable {
  group_id: string;
  account_id: string;
  /** member, or teacher (of a class: may reset its pupils' passwords) */
  member_role: string;
  added_at: string;
}

export interface ScimTokenTable {
  id: string;
  name: string;
  token_hash: string;
  default_role: string;
  /** JSON array of the roles the token may give and change (its grant) */
  roles: string;
  /** 1: its grant may hold privileged roles (core/authz privilegedRoles) */
  allow_privileged: number;
  /** 1: it may see and change accounts of its roles that other sources made (and so adopt them) */
  adopt_existing: number;
  /** tokens with the same provisioning source share the accounts and groups they made */
  provisioning_source: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface SchoolSystemTable {
  id: string;
  name: string;
  description: string | null;
  created_at: string;
}

export interface AccessGrantTable {
  system_id: string;
  /** role:<role> or group:<group id> */
  subject: string;
  level: string;
  note: string | null;
  updated_at: string;
}

export interface AccessReviewTable {
  id: string;
  status: string;
  started_at: string;
  started_by: string;
  /** JSON: the matrix and privileged accounts as they stood */
  snapshot: string;
  /** JSON: accountId -> decision */
  decisions: string;
  signed_off_at: string | null;
  signed_off_by: string | null;
  summary: string | null;
}

export interface GuestAllocationTable {
  id: string;
  account_id: string;
  visitor_name: string | null;
  organisation: string | null;
  purpose: string | null;
  host: string | null;
  starts_at: string;
  ends_at: string;
  ended_at: string | null;
  end_reason: string | null;
  wiped_at: string | null;
  allocated_by: string;
}

export interface ResetRequestTable {
  id: string;
  account_id: string;
  /** staff_reset (needs a second person) or self_service */
  kind: string;
  status: string;
  requested_by: string | null;
  reason: string | null;
  created_at: string;
  expires_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_note: string | null;
  issued_by: string | null;
  issued_at: string | null;
  verified_how: string | null;
  token_hash: string | null;
  /** self-service: the e-mailed code, hashed and bound to this request (never the code) */
  email_code_hash: string | null;
  email_sent_at: string | null;
  email_expires_at: string | null;
  email_verified_at: string | null;
  email_failures: Generated<number>;
}

/** Work done once at start with the data folder's keys (see migration 0006). */
export interface MaintenanceTaskTable {
  name: string;
  created_at: string;
}

export interface LeaverChecklistTable {
  account_id: string;
  left_on: string;
  started_at: string;
  started_by: string;
  /** JSON list of checklist items */
  items: string;
  /** free note from whoever started the leaver (never a password) */
  note: string | null;
  completed_at: string | null;
}

export interface SharedSecretTable {
  id: string;
  name: string;
  kind: string;
  location: string;
  /** profile (the profile's sharedSecrets.rotation), termly, or days (rotation_days) */
  rotation: string;
  rotation_days: number | null;
  last_rotated_at: string | null;
  /**
   * The due date as computed at the row's last change, for the record only: never read. It depends
   * on the profile (term dates, rotation), which can change, so registers/shared-secrets#secretDueAt
   * derives it on every read. (Kept: dropping it would take a migration for nothing.)
   */
  next_due_at: string;
  flagged_at: string | null;
  flag_reason: string | null;
  notes: string | null;
  created_at: string;
  updated_at: string;
  retired_at: string | null;
}

export interface SharedSecretHolderTable {
  secret_id: string;
  account_id: string;
}

export interface SessionTable {
  id: string;
  account_id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  ended_at: string | null;
  end_reason: string | null;
  reauthenticated_at: string | null;
  /** a WebAuthn challenge waiting for its answer */
  challenge: string | null;
  /** an authenticator secret being enrolled from My account, sealed to this session and account (never sent back by the browser) */
  pending_totp_secret: string | null;
  pending_totp_expires_at: string | null;
}

export interface PasswordHistoryTable {
  id: string;
  account_id: string;
  password_hash: string;
  set_at: string;
}

export interface RecoveryCodeTable {
  account_id: string;
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

export interface PasskeyTable {
  id: string;
  account_id: string;
  public_key: string;
  counter: number;
  transports: string | null;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface AupVersionTable {
  id: string;
  audience: string;
  version: number;
  title: string;
  body: string;
  published_at: string;
  published_by: string | null;
}

export interface AupAcceptanceTable {
  account_id: string;
  aup_version_id: string;
  accepted_at: string;
  ip: string | null;
}

export interface SignInAttemptTable {
  id: string;
  account_id: string;
  created_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  offsite: number;
  mfa_verified: Generated<number>;
  mfa_failures: Generated<number>;
  challenge: string | null;
  /** encrypted: a TOTP secret shown for enrolment, not yet confirmed */
  pending_totp_secret: string | null;
}

/** body is the event's canonical JSON, exactly the bytes hashed; the rest is generated from it. */
export interface AuditEventTable {
  seq: number;
  body: string;
  hash: string;
  at: GeneratedAlways<string>;
  actor: GeneratedAlways<string>;
  actor_id: GeneratedAlways<string | null>;
  action: GeneratedAlways<string>;
  target: GeneratedAlways<string | null>;
  severity: GeneratedAlways<string>;
  prev_hash: GeneratedAlways<string>;
}

export interface AuditCheckpointTable {
  seq: number;
  at: string;
  hash: string;
  key_id: string;
  signature: string;
  note: string;
}

export interface AuditKeyTable {
  key_id: string;
  public_key: string;
  created_at: string;
}

export interface FilterListSourceTable {
  id: string;
  name: string;
  /** the category id of a single list, and the prefix of a UT1 category whose id is taken */
  slug: string;
  /** ut1 | domains | hosts | adblock */
  format: string;
  /** an http(s) URL, a folder or file path, or null for a list edited in the console */
  location: string | null;
  /** category | illegal | allow | block */
  kind: string;
  description: string | null;
  schedule_hours: number;
  enabled: Generated<number>;
  created_at: string;
  updated_at: string;
  last_fetched_at: string | null;
  /** ok | held | error */
  last_result: string | null;
  last_error: string | null;
  current_at: string | null;
  entries: Generated<number>;
  bytes: Generated<number>;
  category_count: Generated<number>;
  held_at: string | null;
  held_entries: number | null;
  held_version: string | null;
}

export interface FilterListEntryTable {
  source_id: string;
  host: string;
  note: string | null;
  added_at: string;
  added_by: string;
}

export interface FilterCategoryTable {
  id: string;
  source_id: string;
  name: string;
  description: string;
  kind: string;
  domains: number;
  urls: number;
  updated_at: string;
}

export interface FilterPolicyTable {
  /** role:<group>, unknown, or group:<directory_group.id> */
  id: string;
  group_id: string | null;
  name: string;
  priority: number;
  /** JSON lists */
  blocked_categories: string;
  schedules: string;
  allow_lists: string;
  block_lists: string;
  safe_search: string;
  youtube_mode: string;
  downloads_allowed: number;
  default_action: string;
  created_at: string;
  updated_at: string;
}

export interface FilterDeviceTable {
  id: string;
  name: string;
  /** an address or a CIDR network */
  address: string | null;
  mac: string | null;
  policy_id: string;
  note: string | null;
  created_at: string;
  updated_at: string;
}

export interface FilterIdentityTable {
  id: string;
  ip: string;
  account_id: string | null;
  device_id: string | null;
  mac: string | null;
  /** captive | api | proxy-auth */
  via: string;
  reported_by: string;
  started_at: string;
  expires_at: string;
  ended_at: string | null;
}

export interface FilterIdentityTokenTable {
  id: string;
  name: string;
  token_hash: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface FilterActivityTable {
  id: Generated<number>;
  at: string;
  point: string;
  client_ip: string;
  device_id: string | null;
  device_name: string | null;
  person_id: string | null;
  username: string | null;
  host: string;
  url: string | null;
  search_term: string | null;
  action: string;
  category: string | null;
  rule: string;
  policy: string;
}

export interface FilterRequestTable {
  id: string;
  /** request | report */
  kind: string;
  host: string;
  url: string | null;
  category: string | null;
  reason: string;
  /** open | approved | refused | closed */
  status: string;
  account_id: string | null;
  username: string | null;
  client_ip: string | null;
  device_name: string | null;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  decision_note: string | null;
}

/** GV-03, AU-04: one check of the filtering and monitoring (P4 9.18-9.20). */
export interface FilteringCheckTable {
  id: string;
  kind: string;
  checked_at: string;
  checked_by: string;
  checked_by_name: string;
  perspective: string;
  device: string;
  location: string;
  user_group: string;
  policy_id: string | null;
  what: string;
  results: string | null;
  passed: number;
  failed: number;
  outcome: string;
  actions: string;
}

/** GV-08: a version of the technical-security policy generated from the configuration. */
export interface PolicyDocumentVersionTable {
  id: string;
  number: number;
  recorded_at: string;
  sha256: string;
  text: string;
}

/** MO-05: a termly monitoring report issued to senior leaders and governors. */
export interface MonitoringReportTable {
  id: string;
  period_name: string;
  period_from: string;
  period_to: string;
  issued_at: string;
  issued_by: string;
  issued_by_name: string;
  sha256: string;
  bytes: number;
  filename: string;
  document: string;
}

/** GV-08: a person's attestation that a framework clause is met, with its evidence, until a date. */
export interface ComplianceSignoffTable {
  id: string;
  framework_id: string;
  clause_id: string;
  statement: string;
  evidence: string;
  signed_by: string;
  signed_by_name: string;
  signed_at: string;
  valid_until: string;
  withdrawn_at: string | null;
  withdrawn_by: string | null;
  withdrawn_reason: string | null;
}

/** GV-08: a framework's standing on a day, for its history. */
export interface ComplianceSnapshotTable {
  id: string;
  taken_at: string;
  day: string;
  framework_id: string;
  met: number;
  due_soon: number;
  not_met: number;
  total: number;
  clauses: string;
}

export interface FilterStateTable {
  id: number;
  policy_generation: number;
  identity_generation: number;
}

// --- Equipment registers (issue 12: AS-01..AS-07, AS-10..AS-13) ---
export interface EquipmentItemTable {
  id: string; tag: string; serial: string | null; type: string; description: string; location: string;
  holder_account_id: string | null; holder_name: string | null; mac: string | null; address: string | null;
  status: string; personal_data: number; last_found_at: string | null; disposed_at: string | null; created_at: string; updated_at: string;
}
export interface EquipmentLoanTable {
  id: string; item_id: string; account_id: string | null; borrower_name: string; purpose: string; lent_at: string; due_back: string; returned_at: string | null; returned_to: string | null; kind: string; data_assessment: string | null;
}
export interface EquipmentStocktakeTable { id: string; started_at: string; started_by: string; closed_at: string | null; missing: string | null }
export interface EquipmentStocktakeFoundTable { stocktake_id: string; item_id: string; found_at: string; found_by: string }
export interface EquipmentCertificateTable { id: string; item_id: string; kind: string; filename: string; content_type: string; bytes: number; sha256: string; uploaded_at: string; uploaded_by: string }
export interface EquipmentDisposalTable { item_id: string; disposed_on: string; authorised_by: string; licences_checked: number; personal_data: string; destruction: string; method: string; recipient: string; recorded_at: string; recorded_by: string }
export interface SoftwareTitleTable {
  id: string; name: string; match_key: string; publisher: string | null; purpose: string; requested_by: string; created_at: string;
  head_decision: string | null; head_by: string | null; head_at: string | null; head_note: string | null;
  dpo_decision: string | null; dpo_by: string | null; dpo_at: string | null; dpo_note: string | null;
}
export interface SoftwareLicenceTable { id: string; title_id: string; seats: number; bought_on: string; expires_on: string | null; reference: string; created_at: string }
export interface InventoryDeviceTable { name: string; serial: string | null; os: string | null; last_check_in: string | null; antivirus: string | null; av_updated_at: string | null; last_patched_at: string | null; critical_pending_since: string | null; apps: string; imported_at: string }
export interface RemovableMediaTable { id: string; label: string; encrypted: number; holder_name: string; issued_on: string; returned_on: string | null }

export interface Schema {
  school: SchoolTable;
  school_contact: SchoolContactTable;
  account: AccountTable;
  session: SessionTable;
  password_history: PasswordHistoryTable;
  recovery_code: RecoveryCodeTable;
  passkey: PasskeyTable;
  aup_version: AupVersionTable;
  aup_acceptance: AupAcceptanceTable;
  sign_in_attempt: SignInAttemptTable;
  audit_event: AuditEventTable;
  audit_checkpoint: AuditCheckpointTable;
  audit_key: AuditKeyTable;
  directory_group: DirectoryGroupTable;
  group_member: GroupMemberTable;
  scim_token: ScimTokenTable;
  school_system: SchoolSystemTable;
  access_grant: AccessGrantTable;
  access_review: AccessReviewTable;
  guest_allocation: GuestAllocationTable;
  reset_request: ResetRequestTable;
  maintenance_task: MaintenanceTaskTable;
  leaver_checklist: LeaverChecklistTable;
  shared_secret: SharedSecretTable;
  shared_secret_holder: SharedSecretHolderTable;
  filter_list_source: FilterListSourceTable;
  filter_list_entry: FilterListEntryTable;
  filter_category: FilterCategoryTable;
  filter_policy: FilterPolicyTable;
  filter_device: FilterDeviceTable;
  filter_identity: FilterIdentityTable;
  filter_identity_token: FilterIdentityTokenTable;
  filter_activity: FilterActivityTable;
  filter_request: FilterRequestTable;
  filter_state: FilterStateTable;
  compliance_signoff: ComplianceSignoffTable;
  compliance_snapshot: ComplianceSnapshotTable;
  filtering_check: FilteringCheckTable;
  monitoring_report: MonitoringReportTable;
  policy_document_version: PolicyDocumentVersionTable;
  // Issue 11: change control (src/governance/)
  change_request: ChangeRequestTable;
  // filter exceptions (issue 11)
  filter_exception: FilterExceptionTable;
  filter_request_review: FilterRequestReviewTable;
  // issue 11: safeguarding alerts
  alert: AlertTable;
  alert_state: AlertStateTable;
  // incidents and breaches (issue 11)
  incident_concern: IncidentConcernTable;
  incident: IncidentTable;
  incident_event: IncidentEventTable;
  incident_reminder: IncidentReminderTable;
  // equipment registers (issue 12)
  equipment_item: EquipmentItemTable;
  equipment_loan: EquipmentLoanTable;
  equipment_stocktake: EquipmentStocktakeTable;
  equipment_stocktake_found: EquipmentStocktakeFoundTable;
  equipment_certificate: EquipmentCertificateTable;
  equipment_disposal: EquipmentDisposalTable;
  software_title: SoftwareTitleTable;
  software_licence: SoftwareLicenceTable;
  inventory_device: InventoryDeviceTable;
  removable_media: RemovableMediaTable;
  // backups and governance registers (issue 12, 0017-backups-governance)
  backup_job: BackupJobTable;
  backup_checkin: BackupCheckinTable;
  backup_restore_test: BackupRestoreTestTable;
  continuity_plan: ContinuityPlanTable;
  governance_review: GovernanceReviewTable;
  governance_recommendation: GovernanceRecommendationTable;
  training_record: TrainingRecordTable;
  policy_review: PolicyReviewTable;
  resource_shortfall: ResourceShortfallTable;
  risk: RiskTable;
  // governance registers (issue 12, 0019-governance-registers)
  governance_change: GovernanceChangeTable;
}

// --- Issue 11: change control (src/governance/) ---
export interface ChangeRequestTable {
  id: string;
  kind: string;
  target: string;
  summary: string;
  /** JSON: the typed, validated mutation */
  payload: string;
  /** JSON: the target as it was when requested (stale check, rollback) */
  before_state: string;
  reason: string;
  emergency: number;
  /** pending | applied | refused | withdrawn | applied_pending_approval | rolled_back */
  state: string;
  requested_by: string;
  requested_by_name: string;
  requested_at: string;
  decided_by: string | null;
  decided_by_name: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  applied_at: string | null;
  escalated_at: string | null;
}

// filter exceptions (issue 11: FI-07, FI-08, FI-12, FI-13, IN-06)
export interface FilterExceptionTable {
  id: string;
  /** allow | lesson | filter-off | quarantine */
  kind: string;
  /** person | group | device | address | mac | everyone */
  scope: string;
  /** the person's or group's id, the device id, the address or the MAC; null for everyone */
  subject: string | null;
  subject_name: string | null;
  /** domain | category; null for filter-off and quarantine */
  target_kind: string | null;
  target: string | null;
  /** pending (filter-off awaiting approval) | active | ended | refused */
  status: string;
  starts_at: string;
  ends_at: string | null;
  reason: string;
  request_id: string | null;
  incident_id: string | null;
  created_by: string;
  created_by_name: string;
  created_at: string;
  decided_by: string | null;
  decided_by_name: string | null;
  decided_at: string | null;
  ended_by: string | null;
  ended_by_name: string | null;
  ended_at: string | null;
}

export interface FilterRequestReviewTable {
  request_id: string;
  reviewed_by: string;
  reviewed_by_name: string;
  reviewed_at: string;
  note: string | null;
}

// issue 11: safeguarding alerts (FI-11, MO-02, MO-03, MO-07)
export interface AlertTable {
  id: string;
  kind: string;
  rule: string;
  severity: string;
  dedupe_key: string;
  first_at: string;
  last_at: string;
  count: number;
  person_id: string | null;
  username: string | null;
  device: string | null;
  client_ip: string | null;
  what: string;
  why: string;
  status: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  acknowledged_by_name: string | null;
  closed_at: string | null;
  closed_by: string | null;
  closed_by_name: string | null;
  action_taken: string | null;
  outcome: string | null;
  escalations: number;
  escalated_at: string | null;
  notified_at: string | null;
}

export interface AlertStateTable {
  id: number;
  audit_seq: number;
  digest_at: string | null;
}

// incidents and breaches (issue 11: IN-01..IN-07, MO-03)
export interface IncidentConcernTable {
  id: string;
  reference: string;
  kind: string;
  source: string;
  reporter_name: string | null;
  details: string;
  blocked_host: string | null;
  created_at: string;
  status: string;
  incident_id: string | null;
}

export interface IncidentTable {
  id: string;
  reference: string;
  category: string;
  title: string;
  summary: string;
  status: string;
  source: string;
  alert_ref: string | null;
  concern_id: string | null;
  people: string;
  devices: string;
  containment: string;
  cause: string;
  actions: string;
  policy_updates: string;
  outcome: string;
  recorded_by: string | null;
  recorded_by_name: string;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  aware_at: string | null;
  ico_decision: string | null;
  ico_reasoning: string | null;
  ico_reference: string | null;
  ico_decided_at: string | null;
  ico_decided_by: string | null;
  authority: string | null;
  authority_reference: string | null;
  authority_reported_at: string | null;
}

export interface IncidentEventTable {
  id: string;
  incident_id: string;
  seq: number;
  at: string;
  actor_id: string | null;
  actor_name: string;
  kind: string;
  text: string;
}

export interface IncidentReminderTable {
  incident_id: string;
  mark: number;
  sent_at: string;
  sent: number;
}

// backups and governance registers (issue 12, 0017-backups-governance)
export interface BackupJobTable {
  id: string;
  name: string;
  what: string;
  location: string;
  encrypted: number;
  interval_minutes: number;
  grace_minutes: number;
  token_hash: string;
  token_issued_at: string;
  last_checkin_at: string | null;
  last_status: string | null;
  last_success_at: string | null;
  alerted_at: string | null;
  system: string | null;
  created_at: string;
  updated_at: string;
  retired_at: string | null;
}
export interface BackupCheckinTable {
  id: string;
  job_id: string;
  at: string;
  status: string;
  ip: string | null;
}
export interface BackupRestoreTestTable {
  id: string;
  job_id: string | null;
  tested_at: string;
  result: string;
  tested_by: string;
  tested_by_name: string;
  notes: string;
}
export interface ContinuityPlanTable {
  id: string;
  title: string;
  document_link: string;
  ransomware_response: string;
  reviewed_at: string;
  next_review_at: string;
  recorded_by_name: string;
  /** 0020: the people to call, one a line */
  contacts: string;
  /** 0020: what changed in this version */
  change_note: string | null;
  /** 0020: the account that recorded it */
  recorded_by: string | null;
}
export interface GovernanceReviewTable {
  id: string;
  kind: string;
  title: string;
  reviewed_at: string;
  reviewed_by: string;
  reviewed_by_name: string;
  checklist: string;
  findings: string;
  reported_to: string;
  created_at: string;
}
export interface GovernanceRecommendationTable {
  id: string;
  review_id: string;
  text: string;
  owner: string;
  due_at: string;
  done_at: string | null;
  /** open | in_progress | done (0019) */
  status: Generated<string>;
  updated_at: string | null;
}
export interface TrainingRecordTable {
  id: string;
  account_id: string;
  course: string;
  completed_at: string;
  expires_at: string | null;
  certificate_name: string | null;
  certificate_type: string | null;
  certificate_sha256: string | null;
  certificate: string | null;
  recorded_by_name: string;
  created_at: string;
  /** the certificate's number or where the school keeps it (0019) */
  certificate_reference: string | null;
}
/** A change that brings the filtering and monitoring review forward (GV-02, P4 9.17; 0019). */
export interface GovernanceChangeTable {
  id: string;
  kind: string;
  description: string;
  recorded_at: string;
  recorded_by_name: string;
}
export interface PolicyReviewTable {
  id: string;
  policy: string;
  reviewed_at: string;
  next_review_at: string;
  reviewed_by_name: string;
  notes: string;
}
export interface ResourceShortfallTable {
  id: string;
  title: string;
  risk: string;
  recorded_at: string;
  reported_to_governors_at: string | null;
  resolved_at: string | null;
}
export interface RiskTable {
  id: string;
  title: string;
  owner: string;
  likelihood: number;
  impact: number;
  treatment: string;
  review_at: string;
  reviewed_at: string;
  closed_at: string | null;
  created_at: string;
}
