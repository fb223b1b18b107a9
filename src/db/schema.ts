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
}
