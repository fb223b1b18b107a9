import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../core/errors.js';
import {
  cancelStaffReset,
  decideStaffReset,
  decisionSchema,
  issueSchema,
  issueStaffReset,
  listRequestsSchema,
  listResetRequests,
  myPupils,
  requestSchema,
  requestStaffReset,
  resetPupilPassword,
} from './resets.js';
import {
  RESET_COOKIE,
  confirmResetEmail,
  currentSelfServiceReset,
  finishSelfServiceReset,
  selfEmailSchema,
  selfFinishSchema,
  selfStartSchema,
  startSelfServiceReset,
  type SelfServiceState,
} from './self-service-reset.js';
import { csrfTokenFor } from './sessions.js';

const requestSummary = z.object({
  id: z.string(),
  status: z.string(),
  account: z.object({ id: z.string(), username: z.string(), displayName: z.string(), role: z.string() }),
  requestedBy: z.string().nullable(),
  reason: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  decisionNote: z.string().nullable(),
  issuedBy: z.string().nullable(),
  issuedAt: z.string().nullable(),
  verifiedHow: z.string().nullable(),
  needsSecondPerson: z.boolean(),
});
const idParams = z.object({ id: z.uuid('must be a request id') });

const selfServiceState = z.object({
  next: z.enum(['email', 'new_password']),
  username: z.string(),
  expiresAt: z.string(),
  emailedTo: z.string().nullable(),
  csrfToken: z.string(),
});

/**
 * The self-service reset is held by the browser that gave the first code, in an HttpOnly cookie
 * (so the e-mailed link, opened in another tab of that browser, finds it; in another browser it
 * does not). State-changing steps also send the CSRF token derived from it, as at sign-in.
 */
const resetCookie = (expires: Date) => ({ path: '/', httpOnly: true, secure: true, sameSite: 'strict' as const, expires });
const resetTokenOf = (request: FastifyRequest): string | undefined => request.cookies[RESET_COOKIE];
function checkCsrf(request: FastifyRequest, token: string | undefined): void {
  const sent = request.headers['x-csrf-token'];
  const expected = token ? csrfTokenFor(token) : '';
  if (typeof sent !== 'string' || !token || sent.length !== expected.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(expected))) {
    throw new GatehouseError('csrf_failed', 403, 'This request did not come from a Gatehouse page. Reload the page and try again.');
  }
}
const withCsrf = (state: SelfServiceState, token: string) => ({ ...state, csrfToken: csrfTokenFor(token) });
const clearReset = (reply: FastifyReply) => reply.clearCookie(RESET_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });

export function registerResetRoutes(app: App, rt: Runtime): void {
  const tags = ['password resets'];

  // --- Self-service (AC-11): before sign-in -----------------------------------------------------
  app.post('/api/password-reset/start', { config: { access: 'public' }, schema: { summary: 'Self-service reset, step 1: username and a code from the authenticator app or a recovery code; then, as the profile asks, a link is e-mailed to the address on file (next: email)', tags, body: selfStartSchema, response: { 200: selfServiceState } } }, async (request, reply) => {
    const { token, state } = await startSelfServiceReset(rt, request.body, metaOf(request));
    reply.setCookie(RESET_COOKIE, token, resetCookie(new Date(state.expiresAt)));
    return withCsrf(state, token);
  });
  app.get('/api/password-reset', { config: { access: 'public' }, schema: { summary: 'Self-service reset: where the reset this browser holds stands', tags, response: { 200: selfServiceState } } }, async (request) => {
    const token = resetTokenOf(request);
    return withCsrf(await currentSelfServiceReset(rt, token), token!);
  });
  app.post('/api/password-reset/email', { config: { access: 'public' }, schema: { summary: 'Self-service reset, step 2: the code from the e-mailed link (once, for this reset only, within 15 minutes)', tags, body: selfEmailSchema, response: { 200: selfServiceState } } }, async (request, reply) => {
    const token = resetTokenOf(request);
    checkCsrf(request, token);
    const state = await confirmResetEmail(rt, token, request.body, metaOf(request));
    reply.setCookie(RESET_COOKIE, token!, resetCookie(new Date(state.expiresAt)));
    return withCsrf(state, token!);
  });
  app.post('/api/password-reset/finish', { config: { access: 'public' }, schema: { summary: 'Self-service reset, last step: the new password; every session ends and a lock clears', tags, body: selfFinishSchema } }, async (request, reply) => {
    const token = resetTokenOf(request);
    checkCsrf(request, token);
    await finishSelfServiceReset(rt, token, request.body, metaOf(request));
    clearReset(reply);
    return reply.status(204).send();
  });

  // --- Pupils, by the staff who teach them (AC-11, AC-03) -----------------------------------------
  app.get('/api/my-pupils', { config: { access: 'resets.pupils' }, schema: { summary: 'Pupils in the classes I teach (administrators: all pupils)', tags, querystring: z.object({ q: z.string().trim().max(100).optional() }), response: { 200: z.object({ pupils: z.array(z.object({ id: z.string(), username: z.string(), displayName: z.string(), status: z.string(), locked: z.boolean(), classes: z.array(z.string()) })) }) } } }, async (request) => ({
    pupils: await myPupils(rt, actorOf(request), request.query.q),
  }));
  app.post('/api/my-pupils/:id/reset', { config: { access: 'resets.pupils' }, schema: { summary: 'Reset a pupil’s password: a temporary password (shown once) they change at sign-in', tags, params: z.object({ id: z.uuid('must be an account id') }), response: { 200: z.object({ username: z.string(), displayName: z.string(), temporaryPassword: z.string(), expiresAt: z.string() }) } } }, async (request) =>
    resetPupilPassword(rt, actorOf(request), request.params.id, metaOf(request)),
  );

  // --- Staff: request, second-person approval, issue (AC-10) --------------------------------------
  app.get('/api/password-resets', { config: { access: 'resets.request' }, schema: { summary: 'Staff reset requests (open, or all)', tags, querystring: listRequestsSchema, response: { 200: z.object({ requests: z.array(requestSummary) }) } } }, async (request) => ({
    requests: await listResetRequests(rt, request.query),
  }));
  app.post('/api/password-resets', { config: { access: 'resets.request' }, schema: { summary: 'Ask for a staff member’s password to be reset (a second person approves)', tags, body: requestSchema, response: { 201: requestSummary } } }, async (request, reply) =>
    reply.status(201).send(await requestStaffReset(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/password-resets/:id/approve', { config: { access: 'resets.approve' }, schema: { summary: 'Approve a reset request (not your own)', tags, params: idParams, body: decisionSchema, response: { 200: requestSummary } } }, async (request) =>
    decideStaffReset(rt, actorOf(request), request.params.id, 'approved', request.body.note, metaOf(request)),
  );
  app.post('/api/password-resets/:id/refuse', { config: { access: 'resets.approve' }, schema: { summary: 'Refuse a reset request (not your own)', tags, params: idParams, body: decisionSchema, response: { 200: requestSummary } } }, async (request) =>
    decideStaffReset(rt, actorOf(request), request.params.id, 'refused', request.body.note, metaOf(request)),
  );
  app.post('/api/password-resets/:id/issue', { config: { access: 'resets.request' }, schema: { summary: 'Issue the temporary password of an approved request to the verified person (shown once)', tags, params: idParams, body: issueSchema, response: { 200: z.object({ request: requestSummary, temporaryPassword: z.string() }) } } }, async (request) =>
    issueStaffReset(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.delete('/api/password-resets/:id', { config: { access: 'resets.request' }, schema: { summary: 'Cancel an open request', tags, params: idParams } }, async (request, reply) => {
    await cancelStaffReset(rt, actorOf(request), request.params.id, metaOf(request));
    return reply.status(204).send();
  });
}
