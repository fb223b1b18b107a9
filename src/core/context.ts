import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../db/schema.js';
import type { Role } from './authz.js';
import type { Clock } from './clock.js';

/** Who is acting: a signed-in account, or the system itself (setup, CLI, scheduled jobs). */
export interface Actor {
  /** The account id, or null for the system. */
  id: string | null;
  /** What a person reading the audit trail sees: a username, "system", "setup", "cli:root". */
  name: string;
  role: Role | null;
}

export const systemActor = (name = 'system'): Actor => ({ id: null, name, role: null });

export type AuditSeverity = 'info' | 'notice' | 'warning' | 'high';

export interface AuditEventInput {
  /** dotted verb phrase: "school.updated", "session.signed_in" */
  action: string;
  /** what it was done to: "account:…", "school" */
  target?: string | null;
  severity?: AuditSeverity;
  /** facts about the change; never secrets (rejected by the writer) */
  details?: Record<string, unknown>;
}

export interface AuditWriter {
  /** Appends in the current transaction; returns the sequence number. */
  record(event: AuditEventInput): Promise<number>;
}

/** What a use case receives: who, when, the open transaction and the audit writer bound to it. */
export interface Ctx {
  actor: Actor;
  clock: Clock;
  db: Transaction<Schema>;
  audit: AuditWriter;
  ip: string | null;
  requestId: string | null;
}

/** What a read-only use case receives. */
export interface ReadCtx {
  actor: Actor;
  clock: Clock;
  db: Kysely<Schema>;
}
