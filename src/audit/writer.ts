import { sql, type Transaction } from 'kysely';
import { canonicalJson } from '../core/canonical-json.js';
import type { Actor, AuditEventInput, AuditWriter } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import { dialectOf } from '../db/dialect.js';
import type { Schema } from '../db/schema.js';
import { GENESIS, canonicalEvent, sha256Hex, type ChainFields } from './chain.js';

/** Lock id for the single-writer section on PostgreSQL ("gate" in ASCII). */
const POSTGRES_AUDIT_LOCK = 0x67617465;

/** Keys that must never reach the trail, at any depth: the trail is exported to outside bodies. */
const SECRET_KEY =
  /^(pass|password|passphrase|(new|old|current|temporary)_?password|secret|client_?secret|token|session_?token|api_?key|otp|totp|recovery_?codes?|private_?key)$/i;

function assertNoSecrets(value: unknown, at = 'details'): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(key)) {
      throw new Error(`audit ${at}.${key}: looks like a secret; the audit trail must never hold secrets`);
    }
    assertNoSecrets(inner, `${at}.${key}`);
  }
}

/**
 * Takes the single-writer lock for the rest of the transaction. On SQLite the transaction already
 * holds the database write lock (BEGIN IMMEDIATE), so there is nothing more to take.
 */
export async function lockAuditWriter(trx: Transaction<Schema>): Promise<void> {
  if (dialectOf(trx) === 'postgres') await sql`select pg_advisory_xact_lock(${POSTGRES_AUDIT_LOCK})`.execute(trx);
}

const ACTION = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/**
 * Appends events inside the caller's transaction, so the event commits or rolls back with the
 * change it records. One writer at a time: SQLite transactions begin IMMEDIATE (the database write
 * lock), PostgreSQL takes a transaction-scoped advisory lock before reading the head. Either way
 * sequence numbers have no gaps and each event's `prev` is the committed head.
 */
export class TransactionAuditWriter implements AuditWriter {
  private head: { seq: number; hash: string } | undefined;
  /** The newest sequence number this writer appended, for the checkpoint scheduler. */
  lastSeq = 0;

  constructor(
    private readonly trx: Transaction<Schema>,
    private readonly actor: Actor,
    private readonly clock: Clock,
  ) {}

  async record(event: AuditEventInput): Promise<number> {
    const [seq] = await this.recordMany([event]);
    return seq!;
  }

  async recordMany(events: AuditEventInput[]): Promise<number[]> {
    if (events.length === 0) return [];
    const head = await this.readHead();
    const at = this.clock.now().toISOString();
    const rows: Array<{ seq: number; body: string; hash: string }> = [];
    let prev = head;
    for (const event of events) {
      if (!ACTION.test(event.action)) throw new Error(`audit action "${event.action}" is not a dotted lower-case name`);
      assertNoSecrets(event.details);
      const fields: ChainFields = {
        seq: prev.seq + 1,
        at,
        actor: this.actor.name,
        actor_id: this.actor.id,
        action: event.action,
        target: event.target ?? null,
        severity: event.severity ?? 'info',
        details: canonicalJson(event.details ?? {}),
        prev_hash: prev.hash,
      };
      const body = canonicalEvent(fields);
      const row = { seq: fields.seq, body, hash: sha256Hex(body) };
      rows.push(row);
      prev = { seq: row.seq, hash: row.hash };
    }
    // Stay well inside SQLite's bound-parameter limit.
    for (let i = 0; i < rows.length; i += 500) {
      await this.trx.insertInto('audit_event').values(rows.slice(i, i + 500)).execute();
    }
    this.head = prev;
    this.lastSeq = prev.seq;
    return rows.map((r) => r.seq);
  }

  private async readHead(): Promise<{ seq: number; hash: string }> {
    if (this.head) return this.head;
    await lockAuditWriter(this.trx);
    const row = await this.trx
      .selectFrom('audit_event')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    this.head = row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS };
    return this.head;
  }
}
