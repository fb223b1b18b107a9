import { PassThrough } from 'node:stream';
import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { parseBody } from './chain.js';
import { exportJsonl } from './export.js';
import { verifyTrail } from './verify.js';

const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2026-09-01T00:00:00Z' });
const isoDateOrTime = z.union([z.iso.date(), isoTime], { error: 'must be a date (2026-09-01) or an ISO 8601 date-time' }).transform((v) => new Date(v).toISOString());

const eventSchema = z.object({
  seq: z.number(),
  at: z.string(),
  actor: z.string(),
  actorId: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  severity: z.string(),
  details: z.unknown(),
  hash: z.string(),
});

export function registerAuditRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/api/audit/events',
    {
      config: { access: 'audit.read' },
      schema: {
        summary: 'The audit trail, newest first',
        tags: ['audit'],
        querystring: z.object({
          before: z.coerce.number().int().positive().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
          action: z.string().max(100).optional(),
        }),
        response: { 200: z.object({ events: z.array(eventSchema), nextBefore: z.number().nullable() }) },
      },
    },
    async (request) => {
      const { before, limit, action } = request.query;
      let query = runtime.db.kysely.selectFrom('audit_event').select(['seq', 'body', 'hash']).orderBy('seq', 'desc').limit(limit);
      if (before) query = query.where('seq', '<', before);
      if (action) query = query.where('action', 'like', `${action.replace(/[%_\\]/g, '')}%`);
      const rows = await query.execute();
      return {
        events: rows.map((r) => {
          const { prev: _prev, ...event } = parseBody(r.body);
          return { ...event, seq: Number(r.seq), hash: r.hash };
        }),
        nextBefore: rows.length === limit ? Number(rows[rows.length - 1]!.seq) : null,
      };
    },
  );

  app.post(
    '/api/audit/verify',
    {
      config: { access: 'audit.read' },
      schema: {
        summary: 'Check every link of the chain and every signed checkpoint',
        tags: ['audit'],
        response: {
          200: z.object({
            ok: z.boolean(),
            events: z.number(),
            headSeq: z.number(),
            headHash: z.string(),
            firstBrokenSeq: z.number().nullable(),
            checkpoints: z.object({ checked: z.number(), lastSeq: z.number().nullable(), external: z.number() }),
            keys: z.array(z.string()),
            problems: z.array(z.object({ seq: z.number(), kind: z.string(), message: z.string() })),
            seconds: z.number(),
          }),
        },
      },
    },
    async (request) => {
      const report = await verifyTrail(runtime.db);
      await runtime.trail.transaction(
        actorOf(request),
        (ctx) => ctx.audit.record({ action: 'audit.verified', target: 'audit_trail', severity: report.ok ? 'info' : 'high', details: { ok: report.ok, events: report.events, firstBrokenSeq: report.firstBrokenSeq } }),
        metaOf(request),
      );
      return report;
    },
  );

  app.get(
    '/api/audit/export',
    {
      config: { access: 'audit.export' },
      schema: {
        summary: 'Export events as JSON lines (for the local authority or police); the export itself is audited',
        tags: ['audit'],
        querystring: z.object({ since: isoDateOrTime.optional(), until: isoDateOrTime.optional(), reason: z.string().trim().min(3, 'say briefly why (at least 3 characters)').max(500) }),
      },
    },
    async (request, reply) => {
      const { since, until, reason } = request.query;
      await runtime.trail.transaction(
        actorOf(request),
        (ctx) => ctx.audit.record({ action: 'audit.exported', target: 'audit_trail', severity: 'notice', details: { since: since ?? null, until: until ?? null, reason, via: 'api' } }),
        metaOf(request),
      );
      const stream = new PassThrough();
      exportJsonl(runtime.db, stream, { since, until }).then(
        () => stream.end(),
        (error) => stream.destroy(error as Error),
      );
      const stamp = runtime.clock.now().toISOString().slice(0, 10);
      return reply
        .header('content-type', 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="gatehouse-audit-${stamp}.jsonl"`)
        .send(stream);
    },
  );

  app.get(
    '/api/audit/key',
    {
      config: { access: 'audit.read' },
      schema: {
        summary: 'The public keys that sign checkpoints, and this node’s',
        tags: ['audit'],
        response: { 200: z.object({ thisNode: z.string().nullable(), keys: z.array(z.object({ keyId: z.string(), publicKey: z.string(), createdAt: z.string() })) }) },
      },
    },
    async () => {
      const keys = await runtime.db.kysely.selectFrom('audit_key').selectAll().orderBy('created_at').execute();
      return { thisNode: runtime.signer?.keyId ?? null, keys: keys.map((k) => ({ keyId: k.key_id, publicKey: k.public_key, createdAt: k.created_at })) };
    },
  );
}
