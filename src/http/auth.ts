import { timingSafeEqual } from 'node:crypto';
import { can } from '../core/authz.js';
import { forbidden, unauthenticated, GatehouseError } from '../core/errors.js';
import { authenticateScimToken, type ScimClient } from '../directory/scim-tokens.js';
import { authenticateIdentityToken } from '../filtering/identify.js';
import { csrfTokenFor, resolveSession } from '../identity/sessions.js';
import type { Runtime } from '../runtime.js';
import type { App } from './app.js';
import { SESSION_COOKIE, SIGN_IN_COOKIE } from './app.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The SCIM client whose bearer token authenticated this request (routes with access `scim`). */
    scimClient: ScimClient | null;
    /** The system whose identity-API token authenticated this request (routes with access `filter_agent`). */
    filterAgent: { id: string; name: string } | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Runs before body parsing and validation, so an unauthorised caller learns nothing about a
 * route's inputs. Resolves the session cookie, then applies the route's declared access rule and,
 * for state-changing requests on a session, the CSRF header.
 */
export function registerAuthHooks(app: App, runtime: Runtime): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('sessionToken', null);
  app.decorateRequest('scimClient', null);
  app.decorateRequest('filterAgent', null);

  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access;
    if (access === 'scim') {
      // A SCIM client: a bearer token and nothing else (no cookie, so no CSRF to check).
      const match = BEARER.exec(request.headers.authorization ?? '');
      const client = match ? await authenticateScimToken(runtime.db.kysely, runtime.clock, match[1]!) : undefined;
      if (!client) {
        reply.header('www-authenticate', 'Bearer realm="gatehouse-scim"');
        throw new GatehouseError('scim_unauthorized', 401, match ? 'The SCIM token is not valid or has been revoked.' : 'Send a SCIM token as Authorization: Bearer <token>.');
      }
      request.scimClient = client;
      return;
    }
    if (access === 'filter_agent') {
      // RADIUS accounting or a device agent: an identity-API bearer token, never a session.
      const match = BEARER.exec(request.headers.authorization ?? '');
      const agent = match ? await authenticateIdentityToken(runtime.db.kysely, runtime.clock, match[1]!) : undefined;
      if (!agent) {
        reply.header('www-authenticate', 'Bearer realm="gatehouse-filtering"');
        throw new GatehouseError('token_invalid', 401, match ? 'The identity token is not valid or has been revoked.' : 'Send an identity token as Authorization: Bearer <token>.');
      }
      request.filterAgent = agent;
      return;
    }
    const token = request.cookies[SESSION_COOKIE];
    if (token) {
      const session = await resolveSession(runtime.db.kysely, runtime.clock, runtime.profile, token);
      if (session) {
        request.auth = session;
        request.sessionToken = token;
      }
    }
    if (!access || access === 'public') return;
    if (access === 'signing_in') {
      const pending = request.cookies[SIGN_IN_COOKIE];
      if (!pending) throw new GatehouseError('sign_in_expired', 401, 'This sign-in has timed out or was cancelled. Please sign in again.');
      const sent = request.headers['x-csrf-token'];
      if (!SAFE_METHODS.has(request.method) && (typeof sent !== 'string' || !sameToken(sent, csrfTokenFor(pending)))) {
        throw new GatehouseError('csrf_failed', 403, 'This request did not come from a Gatehouse page. Reload the page and try again.');
      }
      return;
    }
    if (!request.auth) throw unauthenticated(token ? 'Your session has ended. Please sign in again.' : 'Please sign in.');
    if (!SAFE_METHODS.has(request.method)) {
      const sent = request.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !sameToken(sent, csrfTokenFor(request.sessionToken!))) {
        throw new GatehouseError('csrf_failed', 403, 'This request did not come from a Gatehouse page. Reload the page and try again.');
      }
    }
    if (access !== 'authenticated' && !can(request.auth.role, access)) throw forbidden();
  });
}
