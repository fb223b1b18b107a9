import { z } from 'zod';
import { SESSION_COOKIE, type App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { roleLabels, permissionsOf } from '../core/authz.js';
import { signIn, signOut, type SignInResult } from './service.js';
import { csrfTokenFor } from './sessions.js';

const accountSchema = z.object({
  accountId: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  isBreakGlass: z.boolean(),
  expiresAt: z.string(),
  roleLabel: z.string(),
  /** What this person may do, so the console shows only what will work (the server still checks). */
  permissions: z.array(z.string()),
});
const sessionResponse = z.object({ account: accountSchema, csrfToken: z.string() });

function describe(account: SignInResult['account']) {
  const { accountId, username, displayName, role, isBreakGlass, expiresAt } = account;
  return { accountId, username, displayName, role, isBreakGlass, expiresAt, roleLabel: roleLabels[role], permissions: permissionsOf(role) };
}

export function registerIdentityRoutes(app: App, runtime: Runtime): void {
  const cookieOptions = (expiresAt: string) => ({
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'strict' as const,
    expires: new Date(expiresAt),
  });

  app.post(
    '/api/session',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Sign in with username and password',
        tags: ['session'],
        body: z.object({ username: z.string().min(1, 'is required').max(200), password: z.string().min(1, 'is required').max(1024) }),
        response: { 200: sessionResponse },
      },
    },
    async (request, reply) => {
      try {
        const result = await signIn(
          runtime,
          request.body,
          { ip: request.ip, userAgent: request.headers['user-agent'] ?? null, requestId: request.id },
        );
        app.metrics.signIns.inc({ result: 'success' });
        reply.setCookie(SESSION_COOKIE, result.token, cookieOptions(result.account.expiresAt));
        return { account: describe(result.account), csrfToken: result.csrfToken };
      } catch (error) {
        app.metrics.signIns.inc({ result: 'failure' });
        throw error;
      }
    },
  );

  app.get(
    '/api/session',
    {
      config: { access: 'authenticated' },
      schema: { summary: 'Who is signed in, and the CSRF token for this session', tags: ['session'], response: { 200: sessionResponse } },
    },
    async (request) => {
      return { account: describe(request.auth!), csrfToken: csrfTokenFor(request.sessionToken!) };
    },
  );

  app.delete(
    '/api/session',
    { config: { access: 'authenticated' }, schema: { summary: 'Sign out', tags: ['session'] } },
    async (request, reply) => {
      const auth = request.auth!;
      await runtime.trail.transaction(actorOf(request), (ctx) => signOut(ctx, auth), metaOf(request));
      reply.clearCookie(SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
      return reply.status(204).send();
    },
  );
}
