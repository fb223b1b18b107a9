import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SESSION_COOKIE, SIGN_IN_COOKIE, type App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { passkeySignInOptions, relyingParty } from './passkeys.js';
import { signOut } from './service.js';
import { csrfTokenFor } from './sessions.js';
import {
  SIGN_IN_MINUTES,
  loadAttempt,
  acceptAupAtSignIn,
  accountView,
  cancelSignIn,
  changePasswordAtSignIn,
  confirmEnrolmentAtSignIn,
  currentStep,
  startSignIn,
  submitSecondFactor,
  type Client,
  type Outcome,
} from './sign-in.js';

const ruleSchema = z.object({ id: z.string(), requirement: z.string(), label: z.string(), ok: z.boolean(), advisory: z.boolean().optional(), detail: z.string().optional() });

export const accountViewSchema = z.object({
  accountId: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  roleLabel: z.string(),
  /** What this person may do, so the console shows only what will work (the server still checks). */
  permissions: z.array(z.string()),
  isBreakGlass: z.boolean(),
  expiresAt: z.string(),
  mfaEnrolled: z.boolean(),
  passwordExpiresAt: z.string().nullable(),
});

const stepSchema = z.object({
  step: z.enum(['mfa', 'aup', 'change_password', 'mfa_enrol']),
  methods: z.array(z.string()).optional(),
  aup: z.object({ id: z.string(), audience: z.string(), version: z.number(), title: z.string(), body: z.string(), publishedAt: z.string() }).optional(),
  reason: z.string().optional(),
  rules: z.array(ruleSchema).optional(),
  secret: z.string().optional(),
  uri: z.string().optional(),
  qrSvg: z.string().optional(),
});

const outcomeSchema = z.object({
  status: z.enum(['pending', 'signed_in']),
  csrfToken: z.string(),
  banner: z.string().nullable(),
  step: stepSchema.optional(),
  username: z.string().optional(),
  account: accountViewSchema.optional(),
  passwordReminder: z.string().nullable().optional(),
  recoveryCodes: z.array(z.string()).optional(),
});

const cookie = (expires: Date) => ({ path: '/', httpOnly: true, secure: true, sameSite: 'strict' as const, expires });
const clear = { path: '/', httpOnly: true, secure: true, sameSite: 'strict' as const };

function clientOf(request: FastifyRequest): Client {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null, requestId: request.id };
}

/** Sets the cookie the outcome calls for and returns the body (never the tokens themselves). */
function reply(rt: Runtime, res: FastifyReply, outcome: Outcome) {
  if (outcome.status === 'pending') {
    res.setCookie(SIGN_IN_COOKIE, outcome.token, cookie(new Date(rt.clock.now().getTime() + SIGN_IN_MINUTES * 60_000)));
    const { token: _token, ...body } = outcome;
    return body;
  }
  res.clearCookie(SIGN_IN_COOKIE, clear);
  res.setCookie(SESSION_COOKIE, outcome.token, cookie(new Date(outcome.account.expiresAt)));
  const { token: _token, ...body } = outcome;
  return body;
}

export function registerIdentityRoutes(app: App, runtime: Runtime): void {
  const rt = runtime;
  const signInCookie = (request: FastifyRequest) => request.cookies[SIGN_IN_COOKIE];
  const pendingRoute = (summary: string, body?: z.ZodType) => ({
    config: { access: 'signing_in' as const },
    schema: { summary, tags: ['sign-in'], ...(body ? { body } : {}), response: { 200: outcomeSchema } },
  });

  app.post(
    '/api/session',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Sign in with username and password; answers with a session, or with the next step of the sign-in',
        tags: ['sign-in'],
        body: z.object({ username: z.string().min(1, 'is required').max(200), password: z.string().min(1, 'is required').max(1024) }),
        response: { 200: outcomeSchema },
      },
    },
    async (request, res) => {
      try {
        const outcome = await startSignIn(rt, request.body, clientOf(request));
        app.metrics.signIns.inc({ result: outcome.status });
        return reply(rt, res, outcome);
      } catch (error) {
        app.metrics.signIns.inc({ result: 'failure' });
        throw error;
      }
    },
  );

  app.get('/api/sign-in', pendingRoute('The sign-in in progress: its current step'), async (request, res) => reply(rt, res, await currentStep(rt, signInCookie(request), clientOf(request))));

  app.post(
    '/api/sign-in/second-factor',
    pendingRoute(
      'Give the second factor: a code from the authenticator app, or a recovery code',
      z.object({ code: z.string().max(20).optional(), recoveryCode: z.string().max(40).optional() }).refine((v) => v.code || v.recoveryCode, 'give a code or a recovery code'),
    ),
    async (request, res) => reply(rt, res, await submitSecondFactor(rt, signInCookie(request), request.body as { code?: string; recoveryCode?: string }, clientOf(request))),
  );

  app.post('/api/sign-in/passkey/options', { config: { access: 'signing_in' }, schema: { summary: 'WebAuthn options for signing in with a passkey', tags: ['sign-in'] } }, async (request) => {
    const attempt = await loadAttempt(rt, signInCookie(request));
    return passkeySignInOptions(rt, attempt, relyingParty(rt, request));
  });

  app.post(
    '/api/sign-in/passkey',
    pendingRoute('Give the second factor with a passkey', z.object({ response: z.record(z.string(), z.unknown()) })),
    async (request, res) =>
      reply(rt, res, await submitSecondFactor(rt, signInCookie(request), { passkey: { rp: relyingParty(rt, request), response: (request.body as { response: unknown }).response as never } }, clientOf(request))),
  );

  app.post(
    '/api/sign-in/aup',
    pendingRoute('Accept the Acceptable Use Policy shown', z.object({ versionId: z.string().max(100) })),
    async (request, res) => reply(rt, res, await acceptAupAtSignIn(rt, signInCookie(request), (request.body as { versionId: string }).versionId, clientOf(request))),
  );

  app.post(
    '/api/sign-in/password',
    pendingRoute('Replace a temporary, expired or compromised password', z.object({ currentPassword: z.string().min(1, 'is required').max(1024), newPassword: z.string().min(1, 'is required').max(1024) })),
    async (request, res) => reply(rt, res, await changePasswordAtSignIn(rt, signInCookie(request), request.body as { currentPassword: string; newPassword: string }, clientOf(request))),
  );

  app.post(
    '/api/sign-in/mfa-enrolment',
    pendingRoute('Confirm MFA enrolment with the first code from the authenticator app', z.object({ code: z.string().min(6).max(20) })),
    async (request, res) => reply(rt, res, await confirmEnrolmentAtSignIn(rt, signInCookie(request), (request.body as { code: string }).code, clientOf(request))),
  );

  app.delete('/api/sign-in', { config: { access: 'signing_in' }, schema: { summary: 'Cancel the sign-in in progress', tags: ['sign-in'] } }, async (request, res) => {
    await cancelSignIn(rt, signInCookie(request));
    res.clearCookie(SIGN_IN_COOKIE, clear);
    return res.status(204).send();
  });

  app.get(
    '/api/session',
    {
      config: { access: 'authenticated' },
      schema: { summary: 'Who is signed in, and the CSRF token for this session', tags: ['session'], response: { 200: z.object({ account: accountViewSchema, csrfToken: z.string() }) } },
    },
    async (request) => ({ account: await accountView(rt, request.auth!.accountId, request.auth!.expiresAt), csrfToken: csrfTokenFor(request.sessionToken!) }),
  );

  app.delete('/api/session', { config: { access: 'authenticated' }, schema: { summary: 'Sign out', tags: ['session'] } }, async (request, res) => {
    const auth = request.auth!;
    await rt.trail.transaction(actorOf(request), (ctx) => signOut(ctx, auth), metaOf(request));
    res.clearCookie(SESSION_COOKIE, clear);
    return res.status(204).send();
  });
}
