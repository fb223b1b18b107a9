import type { Clock } from '../core/clock.js';
import type { Actor, Ctx } from '../core/context.js';
import type { Database } from '../db/database.js';
import { createCheckpoint, registerKey, type Checkpoint } from './checkpoints.js';
import type { AuditSigner } from './signing.js';
import { TransactionAuditWriter } from './writer.js';

export interface TrailOptions {
  checkpointEvery: number;
  checkpointMinutes: number;
  checkpointLogFile?: string | undefined;
  onCheckpoint?: (checkpoint: Checkpoint) => void;
  onError?: (error: unknown) => void;
}

export interface TransactionMeta {
  ip?: string | null;
  requestId?: string | null;
}

/**
 * The unit of work: runs a use case in one transaction with an audit writer bound to it, so a
 * change and its event commit together or not at all; then, off the request path, signs a
 * checkpoint when enough events have accumulated.
 */
export class AuditTrail {
  private checkpointed = 0;
  private appendedSince = 0;
  private pending: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly database: Database,
    readonly clock: Clock,
    private readonly signer: AuditSigner | undefined,
    private readonly options: TrailOptions,
  ) {}

  /** Loads the last checkpoint position and registers this node's key (audited when new). */
  async start(options: { timer: boolean }): Promise<void> {
    if (this.signer) {
      const signer = this.signer;
      await this.transaction({ id: null, name: 'system', role: null }, async (ctx) => {
        if (await registerKey(ctx.db, signer, ctx.clock)) {
          await ctx.audit.record({
            action: 'audit.key_registered',
            target: `audit_key:${signer.keyId}`,
            severity: 'notice',
            details: { keyId: signer.keyId },
          });
        }
      });
    }
    const last = await this.database.kysely.selectFrom('audit_checkpoint').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
    this.checkpointed = last ? Number(last.seq) : 0;
    if (options.timer && this.signer) {
      this.timer = setInterval(() => this.requestCheckpoint(), this.options.checkpointMinutes * 60_000);
      this.timer.unref();
    }
  }

  async transaction<T>(actor: Actor, work: (ctx: Ctx) => Promise<T>, meta: TransactionMeta = {}): Promise<T> {
    let writer: TransactionAuditWriter | undefined;
    const result = await this.database.kysely.transaction().execute(async (trx) => {
      writer = new TransactionAuditWriter(trx, actor, this.clock);
      return work({ actor, clock: this.clock, db: trx, audit: writer, ip: meta.ip ?? null, requestId: meta.requestId ?? null });
    });
    if (writer && writer.lastSeq > 0) this.noteAppended(writer.lastSeq);
    return result;
  }

  private noteAppended(seq: number): void {
    this.appendedSince = Math.max(this.appendedSince, seq);
    if (this.appendedSince - this.checkpointed >= this.options.checkpointEvery) this.requestCheckpoint();
  }

  /** Schedules a checkpoint; concurrent requests share one. */
  requestCheckpoint(): Promise<void> {
    if (!this.signer) return Promise.resolve();
    if (this.pending) return this.pending;
    this.pending = this.checkpointNow()
      .then(() => undefined, (error) => this.options.onError?.(error))
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /** Signs the head now. Checkpoints are made one at a time, so a caller sees any already under way. */
  checkpointNow(): Promise<Checkpoint | undefined> {
    if (!this.signer) return Promise.reject(new Error('No audit signing key is loaded on this node.'));
    const signer = this.signer;
    const run = this.queue.then(async () => {
      const checkpoint = await createCheckpoint(this.database.kysely, signer, this.clock, this.options.checkpointLogFile);
      if (checkpoint) {
        this.checkpointed = checkpoint.seq;
        this.options.onCheckpoint?.(checkpoint);
      }
      return checkpoint;
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** On shutdown: stop the timer, let a running checkpoint finish, sign the final head. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pending;
    if (this.signer) await this.checkpointNow().catch((error) => this.options.onError?.(error));
  }
}
