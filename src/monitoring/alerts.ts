import { sql, type Selectable } from 'kysely';
import { z } from 'zod';
import { can, roles, type Permission, type Role } from '../core/authz.js';
import type { Actor } from '../core/context.js';
import { GatehouseError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { DueItem } from '../dashboard/due.js';
import type { AlertTable } from '../db/schema.js';
import type { ActivityRecord } from '../filtering/point.js';
import { filterServiceFor } from '../filtering/service.js';
import type { Resolve } from '../filtering/list-origin.js';
import type { Runtime } from '../runtime.js';
import { checkWebhook, postJson, webhookBody, type AlertMessage } from './delivery.js';
import { RuleEngine, type AlertKind, type Candidate } from './rules.js';

/**
 * Safeguarding and security alerts (FI-11, MO-02, MO-03, MO-07). The activity writer hands each
 * written batch to `AlertEngine.observe` (sync, a push onto a queue), so the DNS and proxy hot path
 * never waits on alert work. Rules run on the queue; alerts are stored and audited in one
 * transaction; their e-mail goes out within about a second of arriving, several alerts arriving
 * together in one mail; low-severity ones in a digest when the profile says so. Security events
 * (lockouts, failed sign-ins to privileged accounts) are read from the audit trail every few seconds.
 *
 * Lifecycle: new → acknowledged (a named person) → closed with an action and an outcome. An alert
 * not acknowledged within the profile's time is escalated to the next roles in turn. Identical
 * alerts while one is open add to its count: nothing is muted.
 */

type Meta = { ip: string | null; requestId: string | null };

/** Who may see and handle each kind (the authz table decides; a profile cannot widen it). */
export const kindPermission: Record<AlertKind, Permission> = { safeguarding: 'alerts.safeguarding', security: 'alerts.security' };
export const visibleKinds = (role: Role | null): AlertKind[] => (role ? (['safeguarding', 'security'] as const).filter((k) => can(role, kindPermission[k])) : []);

export const outcomes = ['no_concern', 'false_positive', 'spoken_to_pupil', 'parents_contacted', 'referred', 'incident_recorded', 'filtering_changed'] as const;
export const outcomeLabels: Record<(typeof outcomes)[number], string> = {
  no_concern: 'No concern after looking into it',
  false_positive: 'False positive (the rule misfired)',
  spoken_to_pupil: 'Spoken to the person',
  parents_contacted: 'Parents or carers contacted',
  referred: 'Referred (early help, social care, police, Prevent)',
  incident_recorded: 'Recorded as an incident',
  filtering_changed: 'Filtering changed',
};

export const alertQuerySchema = z
  .object({
    status: z.enum(['open', 'new', 'acknowledged', 'closed', 'all']).default('open'),
    kind: z.enum(['safeguarding', 'security']).optional(),
    severity: z.enum(['high', 'medium', 'low']).optional(),
    person: z.string().trim().max(100).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(200),
  })
  .strict();

export const closeSchema = z
  .object({
    action: z.string().trim().min(1, 'say what was done').max(4000, 'must be at most 4000 characters'),
    outcome: z.enum(outcomes, { error: `must be one of ${outcomes.join(', ')}` }),
  })
  .strict();

export interface AlertSummary {
  id: string;
  kind: AlertKind;
  rule: string;
  severity: string;
  firstAt: string;
  lastAt: string;
  count: number;
  username: string | null;
  device: string | null;
  clientIp: string | null;
  what: string;
  why: string;
  status: 'new' | 'acknowledged' | 'closed';
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  closedAt: string | null;
  closedBy: string | null;
  action: string | null;
  outcome: string | null;
  escalations: number;
  notifiedAt: string | null;
}

const summarise = (r: Selectable<AlertTable>): AlertSummary => ({
  id: r.id,
  kind: r.kind as AlertKind,
  rule: r.rule,
  severity: r.severity,
  firstAt: r.first_at,
  lastAt: r.last_at,
  count: Number(r.count),
  username: r.username,
  device: r.device,
  clientIp: r.client_ip,
  what: r.what,
  why: r.why,
  status: r.status as AlertSummary['status'],
  acknowledgedAt: r.acknowledged_at,
  acknowledgedBy: r.acknowledged_by_name,
  closedAt: r.closed_at,
  closedBy: r.closed_by_name,
  action: r.action_taken,
  outcome: r.outcome,
  escalations: Number(r.escalations),
  notifiedAt: r.notified_at,
});

export async function listAlerts(rt: Runtime, actor: Actor, query: z.infer<typeof alertQuerySchema>): Promise<AlertSummary[]> {
  const kinds = visibleKinds(actor.role).filter((k) => !query.kind || k === query.kind);
  if (kinds.length === 0) return [];
  let q = rt.db.kysely.selectFrom('alert').selectAll().where('kind', 'in', kinds);
  if (query.status === 'open') q = q.where('status', '!=', 'closed');
  else if (query.status !== 'all') q = q.where('status', '=', query.status);
  if (query.severity) q = q.where('severity', '=', query.severity);
  if (query.person) q = q.where('username', '=', query.person.toLowerCase());
  return (await q.orderBy('first_at', 'desc').orderBy('id', 'desc').limit(query.limit).execute()).map(summarise);
}

/** One alert, if this person may see its kind (otherwise it does not exist for them). */
export async function getAlert(rt: Runtime, actor: Actor, id: string): Promise<AlertSummary> {
  const row = await rt.db.kysely.selectFrom('alert').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !visibleKinds(actor.role).includes(row.kind as AlertKind)) throw notFound('There is no such alert.');
  return summarise(row);
}

async function namedPerson(rt: Runtime, actor: Actor): Promise<{ id: string; name: string }> {
  if (!actor.id) throw new GatehouseError('forbidden', 403, 'An alert is handled by a named person.');
  const account = await rt.db.kysely.selectFrom('account').select('display_name').where('id', '=', actor.id).executeTakeFirst();
  return { id: actor.id, name: account?.display_name ?? actor.name };
}

export async function acknowledgeAlert(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<AlertSummary> {
  const alert = await getAlert(rt, actor, id);
  const who = await namedPerson(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    // conditional: two people acknowledging at once, only one does
    const done = await ctx.db
      .updateTable('alert')
      .set({ status: 'acknowledged', acknowledged_at: ctx.clock.now().toISOString(), acknowledged_by: who.id, acknowledged_by_name: who.name })
      .where('id', '=', id)
      .where('status', '=', 'new')
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new GatehouseError('conflict', 409, 'This alert has already been acknowledged.');
    await ctx.audit.record({ action: 'alert.acknowledged', target: `alert:${id}`, severity: 'info', details: { kind: alert.kind, rule: alert.rule, severity: alert.severity } });
  }, meta);
  return getAlert(rt, actor, id);
}

export async function closeAlert(rt: Runtime, actor: Actor, id: string, input: z.infer<typeof closeSchema>, meta: Meta): Promise<AlertSummary> {
  const alert = await getAlert(rt, actor, id);
  if (alert.status === 'new') throw new GatehouseError('conflict', 409, 'Acknowledge the alert before closing it.');
  const who = await namedPerson(rt, actor);
  await rt.trail.transaction(actor, async (ctx) => {
    const done = await ctx.db
      .updateTable('alert')
      .set({ status: 'closed', closed_at: ctx.clock.now().toISOString(), closed_by: who.id, closed_by_name: who.name, action_taken: input.action, outcome: input.outcome })
      .where('id', '=', id)
      .where('status', '=', 'acknowledged')
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new GatehouseError('conflict', 409, 'This alert has already been closed.');
    await ctx.audit.record({ action: 'alert.closed', target: `alert:${id}`, severity: 'info', details: { kind: alert.kind, rule: alert.rule, outcome: input.outcome, action: input.action } });
  }, meta);
  return getAlert(rt, actor, id);
}

// --- The engine: rules off the hot path, storage, delivery, escalation ---------------------------

const SECURITY_ACTIONS = ['account.locked', 'session.sign_in_failed'];

export interface AlertEngineOptions {
  /** how long to gather alerts into one mail (ms) */
  gatherMs?: number;
  /** how often to read the audit trail and look for escalations and digests (ms) */
  tickMs?: number;
  /** webhook retry delays (ms) */
  retryMs?: number[];
  resolve?: Resolve;
}

export class AlertEngine {
  private rules: RuleEngine;
  private queue: ActivityRecord[][] = [];
  private working: Promise<void> | undefined;
  private outbox = new Set<string>();
  private sending: Promise<void> | undefined;
  private gatherTimer: NodeJS.Timeout | undefined;
  private timer: Periodic | undefined;
  private readonly pendingWebhooks = new Set<Promise<void>>();
  /** alerts raised and mails sent (metrics, the benchmark) */
  raised = 0;
  mailsSent = 0;
  dropped = 0;

  constructor(
    private readonly rt: Runtime,
    private readonly options: AlertEngineOptions = {},
  ) {
    this.rules = new RuleEngine(rt.profile.alerts);
  }

  /** the same function each time, so it is registered once */
  readonly observer = (batch: readonly ActivityRecord[]): void => this.observe(batch);

  /** Called by the activity writer with each written batch: a push, nothing more. */
  observe(batch: readonly ActivityRecord[]): void {
    if (this.queue.length >= 1000) {
      this.dropped += batch.length;
      return;
    }
    this.queue.push(batch as ActivityRecord[]);
    this.working ??= this.drain().finally(() => (this.working = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.shift()!;
      try {
        await this.raise(this.rules.evaluate(batch));
      } catch (error) {
        this.rt.logger.error({ err: error }, 'alerts: a batch of activity could not be evaluated');
      }
    }
  }

  /** Stores candidates (identical open alerts add to their count) and queues the new ones for delivery. */
  async raise(candidates: Candidate[]): Promise<string[]> {
    if (candidates.length === 0) return [];
    const created: Array<{ id: string; severity: string }> = [];
    await this.rt.trail.transaction({ id: null, name: 'system', role: null }, async (ctx) => {
      for (const c of candidates) {
        const open = await ctx.db.selectFrom('alert').select(['id']).where('dedupe_key', '=', c.dedupeKey).where('status', '!=', 'closed').executeTakeFirst();
        if (open) {
          await ctx.db.updateTable('alert').set({ count: sql`count + 1`, last_at: c.at }).where('id', '=', open.id).execute();
          continue;
        }
        const id = newId();
        await ctx.db
          .insertInto('alert')
          .values({ id, kind: c.kind, rule: c.rule, severity: c.severity, dedupe_key: c.dedupeKey, first_at: c.at, last_at: c.at, count: 1, person_id: c.personId, username: c.username, device: c.device, client_ip: c.clientIp, what: c.what.slice(0, 500), why: c.why.slice(0, 500), status: 'new', acknowledged_at: null, acknowledged_by: null, acknowledged_by_name: null, closed_at: null, closed_by: null, closed_by_name: null, action_taken: null, outcome: null, escalations: 0, escalated_at: null, notified_at: null })
          .execute();
        await ctx.audit.record({ action: 'alert.raised', target: `alert:${id}`, severity: c.severity === 'high' ? 'warning' : 'notice', details: { kind: c.kind, rule: c.rule, severity: c.severity } });
        created.push({ id, severity: c.severity });
      }
    });
    this.raised += created.length;
    const digest = this.rt.profile.alerts.lowSeverityDigestMinutes > 0;
    for (const a of created) if (!(digest && a.severity === 'low')) this.outbox.add(a.id);
    if (this.outbox.size > 0) this.gatherTimer ??= setTimeout(() => void this.sendOutbox(), this.options.gatherMs ?? 500);
    return created.map((a) => a.id);
  }

  private async sendOutbox(): Promise<void> {
    this.gatherTimer = undefined;
    while (this.sending) await this.sending;
    const ids = [...this.outbox];
    this.outbox.clear();
    if (ids.length === 0) return;
    this.sending = (async () => {
      try {
        const rows = await this.rt.db.kysely.selectFrom('alert').selectAll().where('id', 'in', ids).execute();
        for (const kind of ['safeguarding', 'security'] as const) {
          const these = rows.filter((r) => r.kind === kind).map(summarise);
          if (these.length === 0) continue;
          await this.deliver(kind, these, this.rt.profile.alerts.recipients[kind], 'new');
        }
        await this.rt.db.kysely.updateTable('alert').set({ notified_at: this.rt.clock.now().toISOString() }).where('id', 'in', ids).where('notified_at', 'is', null).execute();
      } catch (error) {
        this.rt.logger.error({ err: error }, 'alerts: delivery failed');
      } finally {
        this.sending = undefined;
      }
    })();
    await this.sending;
  }

  /** The people to tell: active accounts with an e-mail address in these roles, of roles allowed to see the kind. */
  private async recipients(kind: AlertKind, wanted: readonly Role[]): Promise<Array<{ email: string; name: string }>> {
    const allowed = wanted.filter((r) => (roles as readonly string[]).includes(r) && can(r, kindPermission[kind]));
    if (allowed.length === 0) return [];
    const rows = await this.rt.db.kysely.selectFrom('account').select(['email', 'display_name']).where('role', 'in', allowed).where('status', '=', 'active').where('email', 'is not', null).execute();
    return rows.map((r) => ({ email: r.email!, name: r.display_name }));
  }

  private link(id: string): string {
    const base = this.rt.config.publicUrl ? this.rt.config.publicUrl.replace(/\/$/, '') : '';
    return `${base}/alerts?id=${id}`;
  }

  private message(a: AlertSummary): AlertMessage {
    return { id: a.id, kind: a.kind, severity: a.severity, rule: a.rule, at: a.firstAt, who: a.username ?? (a.clientIp ? `address ${a.clientIp}` : a.rule.startsWith('backup_') ? 'the backup monitor' : 'unknown'), device: a.device, what: a.what, why: a.why, count: a.count, link: this.link(a.id) };
  }

  private async deliver(kind: AlertKind, alerts: AlertSummary[], roleList: readonly Role[], why: 'new' | 'digest' | 'escalation'): Promise<void> {
    const messages = alerts.map((a) => this.message(a));
    const people = await this.recipients(kind, roleList);
    const high = alerts.some((a) => a.severity === 'high');
    const label = kind === 'safeguarding' ? 'Safeguarding' : 'Security';
    const subject =
      why === 'escalation'
        ? `[Gatehouse] ESCALATED: ${alerts.length} ${kind} alert${alerts.length === 1 ? '' : 's'} not acknowledged`
        : `[Gatehouse] ${high ? 'URGENT ' : ''}${label} alert${alerts.length === 1 ? '' : 's'}${why === 'digest' ? ' (digest)' : ''}: ${alerts.length}`;
    const body = [
      why === 'escalation' ? `Nobody has acknowledged ${alerts.length === 1 ? 'this alert' : 'these alerts'} yet; they are passed to you.` : `${alerts.length} ${kind} alert${alerts.length === 1 ? '' : 's'}.`,
      '',
      ...messages.flatMap((m) => [`• [${m.severity}] ${m.who}${m.device ? ` on ${m.device}` : ''}`, `  what: ${m.what}`, `  why: ${m.why}`, `  when: ${m.at}${m.count > 1 ? ` (seen ${m.count} times)` : ''}`, `  open: ${m.link}`, '']),
      'Open the alert in Gatehouse to acknowledge it and record what was done. No page content is kept or sent.',
    ].join('\n');
    for (const person of people) {
      const result = await this.rt.mailer.send({ to: person.email, subject, text: body });
      if (result.sent) this.mailsSent++;
    }
    for (const hook of this.rt.profile.alerts.webhooks.filter((w) => w.kinds.includes(kind))) {
      const p = this.webhook(hook.url, webhookBody(hook.format, messages)).finally(() => this.pendingWebhooks.delete(p));
      this.pendingWebhooks.add(p);
    }
  }

  /** Posts to a webhook after checking where it goes; retried with back-off; failures logged (never its address's secrets). */
  private async webhook(url: string, body: unknown): Promise<void> {
    const checked = await checkWebhook(url, this.options.resolve);
    const host = (() => {
      try {
        return new URL(url).hostname;
      } catch {
        return 'invalid';
      }
    })();
    if ('problem' in checked) {
      this.rt.logger.warn({ host, problem: checked.problem }, 'alerts: webhook refused');
      return;
    }
    for (const delay of [0, ...(this.options.retryMs ?? [1000, 5000, 25_000])]) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      if (await postJson(checked.target, body)) return;
    }
    this.rt.logger.error({ host }, 'alerts: webhook failed after retries');
  }

  /** Security events from the audit trail, escalations and the low-severity digest. */
  async tick(): Promise<void> {
    await this.readSecurityEvents();
    await this.escalate();
    await this.digest();
  }

  private async state(): Promise<{ audit_seq: number; digest_at: string | null }> {
    const db = this.rt.db.kysely;
    let row = await db.selectFrom('alert_state').select(['audit_seq', 'digest_at']).where('id', '=', 1).executeTakeFirst();
    if (!row) {
      // start from now: the trail's past is not alerted on
      const max = await db.selectFrom('audit_event').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
      row = { audit_seq: Number(max?.seq ?? 0), digest_at: this.rt.clock.now().toISOString() };
      await db.insertInto('alert_state').values({ id: 1, ...row }).onConflict((oc) => oc.column('id').doNothing()).execute();
    }
    return { audit_seq: Number(row.audit_seq), digest_at: row.digest_at };
  }

  private async readSecurityEvents(): Promise<void> {
    const db = this.rt.db.kysely;
    const { audit_seq: from } = await this.state();
    const events = await db.selectFrom('audit_event').select(['seq', 'action', 'severity', 'at', 'body']).where('seq', '>', from).orderBy('seq').limit(5000).execute();
    if (events.length === 0) return;
    const candidates: Candidate[] = [];
    for (const e of events) {
      if (!SECURITY_ACTIONS.includes(e.action)) continue;
      const details = ((JSON.parse(e.body) as { details?: Record<string, unknown> }).details ?? {}) as { username?: string; ip?: string; failures?: number };
      const username = typeof details.username === 'string' ? details.username : null;
      if (!username) continue;
      const who = { personId: null, username, device: null, clientIp: typeof details.ip === 'string' ? details.ip : null, at: e.at };
      if (e.action === 'account.locked') {
        candidates.push({ kind: 'security', rule: 'lockout', severity: e.severity === 'high' ? 'high' : 'medium', dedupeKey: `lockout|${username}`, ...who, what: `account ${username} locked`, why: `${details.failures ?? 'too many'} failed sign-ins` });
      } else if (e.severity === 'high') {
        candidates.push({ kind: 'security', rule: 'privileged_sign_in', severity: 'medium', dedupeKey: `privileged_sign_in|${username}`, ...who, what: `failed sign-in to privileged account ${username}`, why: 'a failed sign-in to an administrator or break-glass account' });
      }
    }
    await this.raise(candidates);
    await db.updateTable('alert_state').set({ audit_seq: Number(events[events.length - 1]!.seq) }).where('id', '=', 1).where('audit_seq', '=', from).execute();
  }

  private async escalate(): Promise<void> {
    const a = this.rt.profile.alerts;
    const now = this.rt.clock.now();
    const before = new Date(now.getTime() - a.escalateAfterMinutes * 60_000).toISOString();
    const due = await this.rt.db.kysely.selectFrom('alert').selectAll().where('status', '=', 'new').where((eb) => eb.or([eb.and([eb('escalated_at', 'is', null), eb('first_at', '<=', before)]), eb('escalated_at', '<=', before)])).execute();
    for (const kind of ['safeguarding', 'security'] as const) {
      const chain = a.escalation[kind];
      const byStep = new Map<number, AlertSummary[]>();
      for (const row of due.filter((r) => r.kind === kind && Number(r.escalations) < chain.length)) {
        // conditional: several nodes ticking at once escalate each step once
        const done = await this.rt.trail.transaction({ id: null, name: 'system', role: null }, async (ctx) => {
          const r = await ctx.db.updateTable('alert').set({ escalations: Number(row.escalations) + 1, escalated_at: now.toISOString() }).where('id', '=', row.id).where('escalations', '=', row.escalations).where('status', '=', 'new').executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) return false;
          await ctx.audit.record({ action: 'alert.escalated', target: `alert:${row.id}`, severity: 'warning', details: { kind, to: chain[Number(row.escalations)], step: Number(row.escalations) + 1 } });
          return true;
        });
        if (done) byStep.set(Number(row.escalations), [...(byStep.get(Number(row.escalations)) ?? []), summarise(row)]);
      }
      for (const [step, alerts] of byStep) await this.deliver(kind, alerts, [chain[step]!], 'escalation');
    }
  }

  private async digest(): Promise<void> {
    const minutes = this.rt.profile.alerts.lowSeverityDigestMinutes;
    if (minutes === 0) return;
    const { digest_at } = await this.state();
    const now = this.rt.clock.now();
    if (digest_at && new Date(digest_at).getTime() + minutes * 60_000 > now.getTime()) return;
    const r = await this.rt.db.kysely.updateTable('alert_state').set({ digest_at: now.toISOString() }).where('id', '=', 1).where((eb) => (digest_at ? eb('digest_at', '=', digest_at) : eb('digest_at', 'is', null))).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return;
    const rows = await this.rt.db.kysely.selectFrom('alert').selectAll().where('severity', '=', 'low').where('notified_at', 'is', null).execute();
    for (const kind of ['safeguarding', 'security'] as const) {
      const these = rows.filter((x) => x.kind === kind).map(summarise);
      if (these.length > 0) await this.deliver(kind, these, this.rt.profile.alerts.recipients[kind], 'digest');
    }
    if (rows.length > 0) await this.rt.db.kysely.updateTable('alert').set({ notified_at: now.toISOString() }).where('id', 'in', rows.map((x) => x.id)).execute();
  }

  start(): void {
    this.timer ??= schedulePeriodic(this.rt.logger, 'alerts: security events, escalation and digest', () => this.tick(), { everyMs: this.options.tickMs ?? 5000, firstAfterMs: 1000 });
  }

  /** Waits until everything queued is evaluated, stored and sent (tests, the benchmark, shutdown). */
  async settle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await this.working;
      if (this.gatherTimer) {
        clearTimeout(this.gatherTimer);
        await this.sendOutbox();
      }
      await this.sending;
      await Promise.all([...this.pendingWebhooks]);
      if (!this.working && !this.gatherTimer && !this.sending && this.queue.length === 0 && this.outbox.size === 0) return;
    }
  }

  async stop(): Promise<void> {
    await this.timer?.stop();
    this.timer = undefined;
    await this.settle();
  }
}

const engines = new WeakMap<Runtime, AlertEngine>();

export function alertEngineFor(rt: Runtime, options?: AlertEngineOptions): AlertEngine {
  let engine = engines.get(rt);
  if (!engine) {
    engine = new AlertEngine(rt, options);
    engines.set(rt, engine);
  }
  return engine;
}

// --- Overview and termly report --------------------------------------------------------------------

/** "Needs attention": alerts nobody has acknowledged, by kind (counts only, no names). */
export async function alertsDue(rt: Runtime): Promise<DueItem[]> {
  const rows = await rt.db.kysely.selectFrom('alert').select(['kind', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('first_at').as('oldest')]).where('status', '=', 'new').groupBy('kind').execute();
  const now = rt.clock.now().getTime();
  return rows.map((r) => {
    const dueAt = new Date(new Date(String(r.oldest)).getTime() + rt.profile.alerts.escalateAfterMinutes * 60_000).toISOString();
    const n = Number(r.n);
    return {
      kind: `alert_${r.kind}`,
      title: `${n} ${r.kind} alert${n === 1 ? '' : 's'} not yet acknowledged`,
      detail: 'Acknowledge each alert and close it with what was done and the outcome.',
      dueAt,
      overdue: new Date(dueAt).getTime() <= now,
      href: '/alerts',
      requirement: 'MO-07',
      permission: kindPermission[r.kind as AlertKind],
    };
  });
}

/** Inside `serve`: the engine observes the filter's activity and ticks (security events, escalation, digest). */
export function startAlerts(rt: Runtime): AlertEngine {
  const engine = alertEngineFor(rt);
  filterServiceFor(rt).onActivityWritten(engine.observer);
  engine.start();
  return engine;
}
