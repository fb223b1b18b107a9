import type { GeneratedAlways } from 'kysely';

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
  audit_event: AuditEventTable;
  audit_checkpoint: AuditCheckpointTable;
  audit_key: AuditKeyTable;
}
