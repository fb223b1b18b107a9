import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { registerAuditRoutes } from '../audit/routes.js';
import type { RouteAccess } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import { TrustedNetworks } from '../core/networks.js';
import { registerIdentityRoutes } from '../identity/routes.js';
import { registerAccountRoutes } from '../identity/account-routes.js';
import type { SessionAccount } from '../identity/sessions.js';
import type { Runtime } from '../runtime.js';
import { registerSchoolRoutes } from '../school/routes.js';
import { registerDashboardRoutes } from '../dashboard/routes.js';
import { registerAccessRoutes } from '../access/routes.js';
import { registerResetRoutes } from '../identity/reset-routes.js';
import { registerDirectoryRoutes } from '../directory/routes.js';
import { registerGuestRoutes } from '../guests/routes.js';
import { registerImportRoutes } from '../directory/import-routes.js';
import { registerScimRoutes } from '../directory/scim-routes.js';
import { registerSharedSecretRoutes } from '../registers/shared-secret-routes.js';
import { registerLeaverRoutes } from '../directory/leaver-routes.js';
import { registerFilteringRoutes } from '../filtering/routes.js';
import { registerProxyPacRoutes } from '../filtering/proxy/pac-route.js';
import { registerComplianceRoutes } from '../compliance/routes.js';
import { registerReportRoutes } from '../reports/routes.js';
// Issue 11: change control
import { registerChangeRoutes } from '../governance/routes.js';
// filter exceptions (issue 11)
import { registerExceptionRoutes } from '../filtering/exception-routes.js';
// issue 11: safeguarding alerts
import { registerAlertRoutes } from '../monitoring/routes.js';
// incidents and breaches (issue 11)
import { registerIncidentRoutes } from '../incidents/routes.js';
// backups and risk registers (issue 12)
import { registerBackupRoutes } from '../registers/backup-routes.js';
// governance registers (issue 12)
import { registerGovernanceRoutes } from '../registers/governance-routes.js';
import { registerRiskRoutes } from '../registers/risk-routes.js';
import type { SetupGate } from '../school/setup-gate.js';
import { registerAuthHooks } from './auth.js';
import { Metrics } from './metrics.js';
import { registerRateLimits } from './rate-limits.js';
import { registerInputGuard } from './input-guard.js';
import { registerSystemRoutes } from './system-routes.js';
import { VERSION } from './version.js';
// equipment registers (issue 12)
import { registerEquipmentRoutes } from '../registers/equipment-routes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Every route declares who may call it; registration fails without it. */
    access?: RouteAccess;
    /**
     * The body's `files` are uploaded files judged row by row by the route itself (a row with a NUL
     * is reported as a bad row and the rest imported), so the edge's NUL check leaves them alone.
     */
    bodyFilesJudgedByRoute?: boolean;
  }
  interface FastifyRequest {
    auth: SessionAccount | null;
    sessionToken: string | null;
  }
}

export interface AppOptions {
  runtime: Runtime;
  setupGate: SetupGate;
  /** Folder of the built console (web/dist); the API still runs without it. */
  webRoot?: string | undefined;
  https?: { key: Buffer; cert: Buffer } | undefined;
  /** A logger of its own for tests; the runtime's logger otherwise. */
  logger?: FastifyServerOptions['loggerInstance'];
}

export interface AppState {
  shuttingDown: boolean;
  startedAt: number;
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
> & { state: AppState; metrics: Metrics; routeAccess: Map<string, RouteAccess> };

export const SESSION_COOKIE = '__Host-gatehouse-session';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const SIGN_IN_COOKIE = '__Host-gatehouse-signin';

export async function buildApp(options: AppOptions): Promise<App> {
  const { runtime } = options;
  // Finding 5: X-Forwarded-For (and -Host, -Proto, X-Request-Id) only from the listed reverse
  // proxies; request.ip is then the right-most address in the chain that is not one of them, and
  // every use of the client's address (off-site MFA, the address throttle, the block page, the
  // captive page, rate limits, the audit trail) reads request.ip.
  const proxies = new TrustedNetworks(runtime.config.trustProxy);
  const fromProxy = (address: string | undefined) => proxies.contains(address);
  const fastify = Fastify({
    loggerInstance: options.logger ?? runtime.logger,
    // One line per request (below), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: proxies.empty ? false : (address: string) => fromProxy(address),
    // A request id passed on by a trusted proxy is kept (one id across both logs); anyone else's is not.
    genReqId: (req) => {
      const sent = req.headers['x-request-id'];
      return typeof sent === 'string' && REQUEST_ID.test(sent) && fromProxy(req.socket.remoteAddress) ? sent : randomUUID();
    },
    requestIdHeader: false,
    bodyLimit: 1024 * 1024,
    // Close idle keep-alive sockets on shutdown; in-flight requests still finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ...(options.https ? { https: options.https } : {}),
  }).withTypeProvider<ZodTypeProvider>();

  const app = fastify as unknown as App;
  app.state = { shuttingDown: false, startedAt: Date.now() };
  app.metrics = new Metrics(runtime);
  app.routeAccess = new Map();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Least privilege by construction: a route without a declared access rule is a startup error.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access) throw new Error(`Route ${route.method} ${route.url} does not declare config.access`);
    for (const method of [route.method].flat()) app.routeAccess.set(`${method} ${route.url}`, access);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    request.log.debug({ method: request.method, url: request.url.split('?')[0] }, 'request received');
  });
  // While shutting down, answer in-flight requests and close their connections, so keep-alive
  // sockets do not hold the process open until their idle timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (app.state.shuttingDown) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.ip }, 'request');
    app.metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // HSTS only means something over TLS; a reverse proxy in front sets its own.
    strictTransportSecurity: options.https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
  });
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse API',
        version: VERSION,
        description:
          'The HTTP API of Gatehouse. Browser sessions use the __Host-gatehouse-session cookie; state-changing requests also send the x-csrf-token header given at sign-in.',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          csrf: { type: 'apiKey', in: 'header', name: 'x-csrf-token' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const fields = error.validation.map((issue) => ({
        field: `${error.validationContext ?? 'body'}${issue.instancePath.replace(/\//g, '.')}`,
        message: issue.message,
      }));
      return reply.status(400).send({
        error: {
          code: 'validation_failed',
          message: fields.map((f) => `${f.field}: ${f.message}`).join('; '),
          fields,
          requestId: request.id,
        },
      });
    }
    if (error instanceof GatehouseError) {
      if (error.status >= 500) request.log.warn({ code: error.code }, error.message);
      return reply.status(error.status).send({
        error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}), requestId: request.id },
      });
    }
    const clientError = error as { statusCode?: number; code?: string; message?: string };
    if (clientError.statusCode && clientError.statusCode >= 400 && clientError.statusCode < 500) {
      // Fastify's own client errors (bad JSON, body too large, wrong content type).
      return reply.status(clientError.statusCode).send({
        error: { code: clientError.code?.toLowerCase() ?? 'bad_request', message: clientError.message ?? 'Bad request.', requestId: request.id },
      });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({
      error: {
        code: 'internal_error',
        message: `Something went wrong on the server. If it happens again, give your IT administrator this reference: ${request.id}`,
        requestId: request.id,
      },
    });
  });

  // Per-address limits on the public routes first, so a flood is cut before sessions, tokens or passwords are looked at.
  await registerRateLimits(app, runtime.config, runtime.clock);
  registerAuthHooks(app, runtime);
  registerInputGuard(app);
  registerSystemRoutes(app, runtime);
  registerSchoolRoutes(app, runtime, options.setupGate);
  registerIdentityRoutes(app, runtime);
  registerAccountRoutes(app, runtime);
  registerAuditRoutes(app, runtime);
  registerDashboardRoutes(app, runtime);
  registerAccessRoutes(app, runtime);
  registerResetRoutes(app, runtime);
  registerDirectoryRoutes(app, runtime);
  registerGuestRoutes(app, runtime);
  registerImportRoutes(app, runtime);
  registerScimRoutes(app, runtime);
  registerSharedSecretRoutes(app, runtime);
  registerLeaverRoutes(app, runtime);
  registerFilteringRoutes(app, runtime);
  registerProxyPacRoutes(app, runtime);
  registerComplianceRoutes(app, runtime);
  registerReportRoutes(app, runtime);
  // Issue 11: change control
  registerChangeRoutes(app, runtime);
  // filter exceptions (issue 11)
  registerExceptionRoutes(app, runtime);
  // issue 11: safeguarding alerts
  registerAlertRoutes(app, runtime);
  // incidents and breaches (issue 11)
  registerIncidentRoutes(app, runtime);
  // equipment registers (issue 12)
  registerEquipmentRoutes(app, runtime);
  // backups and risk registers (issue 12)
  registerBackupRoutes(app, runtime);
  registerGovernanceRoutes(app, runtime);
  registerRiskRoutes(app, runtime);
  await registerConsole(app, options.webRoot);
  return app;
}

/** Serves the built console, and index.html for any other GET outside /api (client-side routes). */
async function registerConsole(app: App, webRoot: string | undefined): Promise<void> {
  const root = webRoot && existsSync(path.join(webRoot, 'index.html')) ? path.resolve(webRoot) : undefined;
  if (root) await app.register(fastifyStatic, { root, serve: false });
  app.get('/assets/*', { config: { access: 'public' }, schema: { hide: true } }, (request, reply) => {
    if (!root) return reply.status(404).send({ error: { code: 'not_found', message: 'The console is not built.', requestId: request.id } });
    const file = (request.params as { '*': string })['*'];
    return reply.header('cache-control', 'public, max-age=31536000, immutable').sendFile(path.join('assets', file));
  });
  app.setNotFoundHandler((request, reply) => {
    const isPage = request.method === 'GET' && !request.url.startsWith('/api/') && (request.headers.accept ?? '').includes('text/html');
    if (isPage && root) return reply.header('cache-control', 'no-cache').sendFile('index.html');
    return reply.status(404).send({ error: { code: 'not_found', message: `No such address: ${request.method} ${request.url.split('?')[0]}`, requestId: request.id } });
  });
}

