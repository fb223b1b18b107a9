import { PassThrough } from 'node:stream';
import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { parseBody } from './chain.js';
import { exportJsonl } from './export.js';
import { emailFingerprint, headCheckpoint, parseHead, type HeadCheckpoint } from './fingerprint.js';
import { verifyTrail } from './verify.js';
import { stepUpFor } from '../identity/my-account.js';
import { notFound, validationFailed } from '../core/errors.js';

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
        summary: 'Check every link of the chain and every signed checkpoint, and any fingerprints written down earlier',
        tags: ['audit'],
        // No body (the console's plain button) checks the trail alone.
        body: z.object({ heads: z.array(z.string().max(200)).max(50).default([]) }).nullish(),
        response: {
          200: z.object({
            ok: z.boolean(),
            events: z.number(),
            headSeq: z.number(),
            headHash: z.string(),
            firstBrokenSeq: z.number().nullable(),
            checkpoints: z.object({ checked: z.number(), lastSeq: z.number().nullable(), external: z.number() }),
            external: z.object({
              sources: z.array(z.string()),
              checkpoints: z.number(),
              agreeing: z.number(),
              fingerprints: z.number(),
              fingerprintsAgreeing: z.number(),
              lastSeq: z.number().nullable(),
              witnesses: z.array(z.object({ name: z.string(), keyId: z.string(), cosigned: z.number(), lastSeq: z.number().nullable(), lastCosignedAt: z.string().nullable() })),
              summary: z.string(),
            }),
            keys: z.array(z.string()),
            problems: z.array(z.object({ seq: z.number(), kind: z.string(), message: z.string() })),
            seconds: z.number(),
          }),
        },
      },
    },
    async (request) => {
      const heads = (request.body?.heads ?? []).map((text, i) => {
        try {
          return parseHead(text);
        } catch (error) {
          throw validationFailed(`heads[${i}]: ${(error as Error).message}`);
        }
      });
      const report = await verifyTrail(runtime.db, { heads });
      await runtime.trail.transaction(
        actorOf(request),
        (ctx) => ctx.audit.record({ action: 'audit.verified', target: 'audit_trail', severity: report.ok ? 'info' : 'high', details: { ok: report.ok, events: report.events, firstBrokenSeq: report.firstBrokenSeq, ...(heads.length ? { fingerprints: heads.map((h) => h.text) } : {}) } }),
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
        summary: 'Export events as JSON lines (for the local authority or police), after a recent re-authentication; the export itself is audited',
        tags: ['audit'],
        querystring: z.object({ since: isoDateOrTime.optional(), until: isoDateOrTime.optional(), reason: z.string().trim().min(3, 'say briefly why (at least 3 characters)').max(500) }),
      },
    },
    async (request, reply) => {
      const { since, until, reason } = request.query;
      // The whole trail leaves the building: a stolen session alone does not take it (issue 10, finding 12).
      await stepUpFor(runtime, request.auth)('audit_export');
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

  const checkpointSchema = z.object({
    seq: z.number(),
    hash: z.string(),
    at: z.string(),
    keyId: z.string(),
    note: z.string(),
    fingerprint: z.object({ text: z.string(), grouped: z.string() }),
  });
  const shown = (cp: HeadCheckpoint) => ({ seq: cp.seq, hash: cp.hash, at: cp.at, keyId: cp.keyId, note: cp.note, fingerprint: { text: cp.fingerprint.text, grouped: cp.fingerprint.grouped } });

  app.get(
    '/api/audit/checkpoint',
    {
      // A checkpoint is made to be handed to outsiders (witnesses, governors); it holds the number
      // of events and a hash. Public only when the school turns it on, for a witness elsewhere.
      config: { access: runtime.config.auditCheckpointPublic ? 'public' : 'audit.read' },
      schema: { summary: 'The newest signed checkpoint (for a witness to cosign, or a governor to keep)', tags: ['audit'], response: { 200: checkpointSchema } },
    },
    async () => {
      const cp = await headCheckpoint(runtime, { sign: false });
      if (!cp) throw notFound('No checkpoint has been signed yet.');
      return shown(cp);
    },
  );

  app.post(
    '/api/audit/fingerprint',
    {
      config: { access: 'audit.read' },
      schema: {
        summary: 'Sign the head now and show its fingerprint, to print for the governors; recorded in the trail',
        tags: ['audit'],
        response: { 200: checkpointSchema.extend({ school: z.string().nullable() }) },
      },
    },
    async (request) => {
      const cp = await headCheckpoint(runtime, { sign: true });
      if (!cp) throw notFound('No checkpoint has been signed yet: this node holds no signing key.');
      await runtime.trail.transaction(
        actorOf(request),
        (ctx) => ctx.audit.record({ action: 'audit.fingerprint_shown', target: 'audit_trail', details: { seq: cp.seq, fingerprint: cp.fingerprint.text } }),
        metaOf(request),
      );
      const school = await runtime.db.kysely.selectFrom('school').select('name').executeTakeFirst();
      return { ...shown(cp), school: school?.name ?? null };
    },
  );

  app.post(
    '/api/audit/fingerprint/email',
    {
      config: { access: 'audit.read' },
      schema: {
        summary: 'E-mail the fingerprint now to the headteacher and the responsible governor; recorded in the trail',
        tags: ['audit'],
        response: { 200: z.object({ seq: z.number().nullable(), sent: z.array(z.string()), failed: z.array(z.object({ to: z.string(), error: z.string() })) }) },
      },
    },
    async (request) => {
      const result = await emailFingerprint(runtime, actorOf(request), { scheduled: false });
      return { seq: result.seq, sent: result.sent, failed: result.failed };
    },
  );
}
