import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { forbidden, unavailable } from '../core/errors.js';
import { appliedMigrations, checkReady } from '../db/database.js';
import type { Runtime } from '../runtime.js';
import { getSchool } from '../school/service.js';
import type { App } from './app.js';
import { VERSION } from './version.js';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export function registerSystemRoutes(app: App, runtime: Runtime): void {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: { summary: 'Liveness: the process is up', tags: ['system'], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Readiness: the database answers and its schema is current',
        tags: ['system'],
        response: { 200: z.object({ status: z.literal('ready'), database: z.enum(['sqlite', 'postgres']) }) },
      },
    },
    async () => {
      if (app.state.shuttingDown) throw unavailable('Gatehouse is shutting down.', 'shutting_down');
      await checkReady(runtime.db);
      return { status: 'ready' as const, database: runtime.db.dialect };
    },
  );

  app.get(
    '/metrics',
    {
      // Public at the route level, guarded here: a bearer token when configured, else loopback only.
      config: { access: 'public' },
      schema: { summary: 'Prometheus metrics', tags: ['system'], hide: true },
    },
    async (request, reply) => {
      const expected = runtime.config.metricsToken;
      if (expected) {
        const sent = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
        const a = Buffer.from(sent);
        const b = Buffer.from(expected);
        if (a.length !== b.length || !timingSafeEqual(a, b)) throw forbidden('A valid metrics token is required.');
      } else if (!LOOPBACK.test(request.socket.remoteAddress ?? '') || !LOOPBACK.test(request.ip)) {
        // Both the connection and the client: a reverse proxy on this machine (trusted) passes on
        // requests from anywhere, which must not count as this machine's.
        throw forbidden('Metrics are served only to this machine unless GATEHOUSE_METRICS_TOKEN is set.');
      }
      reply.header('content-type', app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );

  app.get(
    '/api/openapi.json',
    { config: { access: 'public' }, schema: { hide: true } },
    async () => app.swagger(),
  );

  app.get(
    '/api/info',
    {
      config: { access: 'public' },
      schema: {
        summary: 'What the sign-in page shows: the school name, whether setup is needed, the version',
        tags: ['system'],
        response: {
          200: z.object({
            school: z.object({ name: z.string() }).nullable(),
            setupRequired: z.boolean(),
            version: z.string(),
          }),
        },
      },
    },
    async () => {
      const school = await getSchool({ db: runtime.db.kysely });
      return { school: school ? { name: school.name } : null, setupRequired: !school, version: VERSION };
    },
  );

  app.get(
    '/api/system/status',
    {
      config: { access: 'system.read' },
      schema: {
        summary: 'Server details for administrators',
        tags: ['system'],
        response: {
          200: z.object({
            version: z.string(),
            uptimeSeconds: z.number(),
            database: z.object({ dialect: z.enum(['sqlite', 'postgres']), location: z.string(), migrations: z.array(z.string()) }),
            audit: z.object({ events: z.number(), lastCheckpointSeq: z.number().nullable(), signingKeyId: z.string().nullable() }),
          }),
        },
      },
    },
    async () => {
      const db = runtime.db.kysely;
      const head = await db.selectFrom('audit_event').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const cp = await db.selectFrom('audit_checkpoint').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      return {
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - app.state.startedAt) / 1000),
        database: { dialect: runtime.db.dialect, location: runtime.db.location, migrations: await appliedMigrations(runtime.db) },
        audit: { events: head ? Number(head.seq) : 0, lastCheckpointSeq: cp ? Number(cp.seq) : null, signingKeyId: runtime.signer?.keyId ?? null },
      };
    },
  );
}
