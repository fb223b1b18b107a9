import { z } from 'zod';
import { groups } from '../core/profile.js';
import { describeGroup } from '../core/profile-describe.js';
import { profileWarnings } from '../core/profile-warnings.js';
import { SESSION_COOKIE, SIGN_IN_COOKIE, type App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import {
  accountChangeSchema,
  changeAccount,
  createAdministratorAccount,
  createPersonAccount,
  deleteAccount,
  getAccount,
  issueAccountTemporaryPassword,
  listAccounts,
  listQuerySchema,
  newAccountSchema,
  reportCompromised,
  unlockAccount,
} from './accounts.js';
import { membershipsOf } from '../directory/groups.js';
import { acceptancesOf, aupInputSchema, currentAups, publishAup } from './aup.js';
import {
  changeOwnPassword,
  confirmTotpEnrolment,
  endMySessions,
  mySessions,
  reauthenticate,
  regenerateRecoveryCodes,
  removeTotp,
  startTotpEnrolment,
  stepUpFor,
} from './my-account.js';
import { contextFor } from './password-change.js';
import { finishPasskeyRegistration, listPasskeys, passkeyRegistrationOptions, relyingParty, removePasskey } from './passkeys.js';
import { acceptable, checkPassword } from './password-rules.js';
import { settingsFor } from './policy.js';
import { resolveSession } from './sessions.js';
import { loadAttempt } from './sign-in.js';
import type { Role } from '../core/authz.js';

const summarySchema = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  email: z.string().nullable(),
  role: z.string(),
  status: z.string(),
  isBreakGlass: z.boolean(),
  linkedAccountId: z.string().nullable(),
  locked: z.boolean(),
  lockedAt: z.string().nullable(),
  failedAttempts: z.number(),
  mfaEnrolled: z.boolean(),
  mustChangePassword: z.boolean(),
  temporaryExpiresAt: z.string().nullable(),
  passwordExpiresAt: z.string().nullable(),
  createdAt: z.string(),
  givenName: z.string().nullable(),
  familyName: z.string().nullable(),
  externalId: z.string().nullable(),
  source: z.string(),
  leftAt: z.string().nullable(),
  accessEndsAt: z.string().nullable(),
});
const membershipSchema = z.object({ groupId: z.string(), name: z.string(), kind: z.string(), role: z.string() });
const listedSchema = summarySchema.extend({ groups: z.array(membershipSchema) });
const withTemporary = z.object({ account: summarySchema, temporaryPassword: z.string() });
const idParams = z.object({ id: z.uuid('must be an account id') });
const ruleSchema = z.object({ id: z.string(), requirement: z.string(), label: z.string(), ok: z.boolean(), advisory: z.boolean().optional(), detail: z.string().optional() });
const codesSchema = z.object({ recoveryCodes: z.array(z.string()) });

export function registerAccountRoutes(app: App, rt: Runtime): void {
  const tags = ['accounts'];

  // --- Administrators: accounts -------------------------------------------------------------
  app.get('/api/accounts', { config: { access: 'accounts.read' }, schema: { summary: 'The directory (AC-12): people with their groups, lockout and password state; search by name, username, e-mail or external id; filter by status (locked too), role or group', tags, querystring: listQuerySchema, response: { 200: z.object({ accounts: z.array(listedSchema), total: z.number() }) } } }, async (request) => {
    const { accounts, total } = await listAccounts(rt, request.query);
    const groups = await membershipsOf(rt.db.kysely, accounts.map((a) => a.id));
    return { accounts: accounts.map((a) => ({ ...a, groups: groups.get(a.id) ?? [] })), total };
  });

  app.post('/api/accounts', { config: { access: 'accounts.manage' }, schema: { summary: 'Create an account with a system-generated temporary password (shown once); a privileged role needs a recent re-authentication', tags, body: newAccountSchema, response: { 201: withTemporary } } }, async (request, reply) =>
    reply.status(201).send(await createPersonAccount(rt, actorOf(request), request.body, metaOf(request), stepUpFor(rt, request.auth))),
  );

  app.get('/api/accounts/:id', { config: { access: 'accounts.read' }, schema: { summary: 'One account, with its groups', tags, params: idParams, response: { 200: listedSchema } } }, async (request) => {
    const account = await getAccount(rt, request.params.id);
    return { ...account, groups: (await membershipsOf(rt.db.kysely, [account.id])).get(account.id) ?? [] };
  });

  app.patch('/api/accounts/:id', { config: { access: 'accounts.manage' }, schema: { summary: 'Disable or enable an account, or change its role (to a privileged role: after a recent re-authentication)', tags, params: idParams, body: accountChangeSchema, response: { 200: summarySchema } } }, async (request) =>
    changeAccount(rt, actorOf(request), request.params.id, request.body, metaOf(request), stepUpFor(rt, request.auth)),
  );

  app.delete('/api/accounts/:id', { config: { access: 'accounts.manage' }, schema: { summary: 'Delete an account', tags, params: idParams } }, async (request, reply) => {
    await deleteAccount(rt, actorOf(request), request.params.id, metaOf(request));
    return reply.status(204).send();
  });

  app.post('/api/accounts/:id/unlock', { config: { access: 'accounts.unlock' }, schema: { summary: 'Unlock an account locked by failed sign-ins', tags, params: idParams, response: { 200: summarySchema } } }, async (request) =>
    unlockAccount(rt, actorOf(request), request.params.id, metaOf(request)),
  );

  app.post('/api/accounts/:id/temporary-password', { config: { access: 'accounts.manage' }, schema: { summary: 'Issue a new temporary password (shown once); the person must change it at sign-in', tags, params: idParams, response: { 200: withTemporary } } }, async (request) =>
    issueAccountTemporaryPassword(rt, actorOf(request), request.params.id, metaOf(request)),
  );

  app.post('/api/accounts/:id/administrator-account', { config: { access: 'accounts.manage' }, schema: { summary: 'Give a person a separate administrator account linked to this everyday account (after a recent re-authentication)', tags, params: idParams, response: { 201: withTemporary } } }, async (request, reply) =>
    reply.status(201).send(await createAdministratorAccount(rt, actorOf(request), request.params.id, metaOf(request), stepUpFor(rt, request.auth))),
  );

  app.post('/api/accounts/:id/compromised', { config: { access: 'accounts.manage' }, schema: { summary: 'Mark a password compromised: sessions end, change forced, DPO e-mailed', tags, params: idParams } }, async (request, reply) => {
    await reportCompromised(rt, actorOf(request), request.params.id, metaOf(request));
    return reply.status(204).send();
  });

  // --- Everyone: my account ----------------------------------------------------------------
  const mine = ['my account'];
  app.post('/api/account/password', { config: { access: 'authenticated' }, schema: { summary: 'Change my password (my other sessions end)', tags: mine, body: z.object({ currentPassword: z.string().min(1, 'is required').max(1024), newPassword: z.string().min(1, 'is required').max(1024) }) } }, async (request, reply) => {
    await changeOwnPassword(rt, request.auth!, request.body, metaOf(request));
    return reply.status(204).send();
  });

  app.get('/api/account/sessions', { config: { access: 'authenticated' }, schema: { summary: 'My sessions', tags: mine, response: { 200: z.object({ sessions: z.array(z.object({ id: z.string(), createdAt: z.string(), lastSeenAt: z.string(), ip: z.string().nullable(), userAgent: z.string().nullable(), current: z.boolean() })) }) } } }, async (request) => ({
    sessions: await mySessions(rt, request.auth!),
  }));

  app.delete('/api/account/sessions/others', { config: { access: 'authenticated' }, schema: { summary: 'Sign out my other sessions', tags: mine, response: { 200: z.object({ ended: z.number() }) } } }, async (request) => ({
    ended: await endMySessions(rt, request.auth!, 'others', metaOf(request)),
  }));

  app.delete('/api/account/sessions/:id', { config: { access: 'authenticated' }, schema: { summary: 'Sign out one of my sessions', tags: mine, params: z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, 'must be a session id') }), response: { 200: z.object({ ended: z.number() }) } } }, async (request) => ({
    ended: await endMySessions(rt, request.auth!, request.params.id, metaOf(request)),
  }));

  app.post('/api/account/reauthenticate', { config: { access: 'authenticated' }, schema: { summary: 'Confirm it is me, before changing how I sign in', tags: mine, body: z.object({ password: z.string().min(1, 'is required').max(1024), code: z.string().max(20).optional() }) } }, async (request, reply) => {
    await reauthenticate(rt, request.auth!, request.body, metaOf(request));
    return reply.status(204).send();
  });

  app.post('/api/account/mfa/totp/start', { config: { access: 'authenticated' }, schema: { summary: 'Start setting up an authenticator app: a new secret made and kept by the server (sealed to this session, for 10 minutes), shown with its QR code', tags: mine, response: { 200: z.object({ secret: z.string(), uri: z.string(), qrSvg: z.string() }) } } }, async (request) =>
    startTotpEnrolment(rt, request.auth!),
  );

  // Only the code: the secret is the one the server made at /start and kept (a secret sent here is refused, not used).
  app.post('/api/account/mfa/totp', { config: { access: 'authenticated' }, schema: { summary: 'Finish setting up an authenticator app with its first code (the secret is the one Gatehouse made at the start, kept by the server); new recovery codes are shown once', tags: mine, body: z.strictObject({ code: z.string().min(1, 'is required').max(20) }), response: { 200: codesSchema } } }, async (request) => ({
    recoveryCodes: await confirmTotpEnrolment(rt, request.auth!, request.body, metaOf(request)),
  }));

  app.delete('/api/account/mfa/totp', { config: { access: 'authenticated' }, schema: { summary: 'Remove my authenticator app', tags: mine } }, async (request, reply) => {
    await removeTotp(rt, request.auth!, metaOf(request));
    return reply.status(204).send();
  });

  app.post('/api/account/mfa/recovery-codes', { config: { access: 'authenticated' }, schema: { summary: 'Replace my recovery codes (shown once)', tags: mine, response: { 200: codesSchema } } }, async (request) => ({
    recoveryCodes: await regenerateRecoveryCodes(rt, request.auth!, metaOf(request)),
  }));

  app.get('/api/account/passkeys', { config: { access: 'authenticated' }, schema: { summary: 'My passkeys', tags: mine, response: { 200: z.object({ passkeys: z.array(z.object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })) }) } } }, async (request) => ({
    passkeys: await listPasskeys(rt, request.auth!.accountId),
  }));

  app.post('/api/account/passkeys/options', { config: { access: 'authenticated' }, schema: { summary: 'WebAuthn options for adding a passkey (after re-authentication)', tags: mine } }, async (request) =>
    passkeyRegistrationOptions(rt, request.auth!, relyingParty(rt, request)),
  );

  app.post(
    '/api/account/passkeys',
    { config: { access: 'authenticated' }, schema: { summary: 'Add a passkey; recovery codes are shown once if I had none', tags: mine, body: z.object({ response: z.record(z.string(), z.unknown()), name: z.string().trim().min(1, 'is required').max(100) }) } },
    async (request) => finishPasskeyRegistration(rt, request.auth!, relyingParty(rt, request), { response: request.body.response as never, name: request.body.name }, metaOf(request)),
  );

  app.delete('/api/account/passkeys/:id', { config: { access: 'authenticated' }, schema: { summary: 'Remove one of my passkeys', tags: mine, params: z.object({ id: z.string().max(1024) }) } }, async (request, reply) => {
    await removePasskey(rt, request.auth!, request.params.id, metaOf(request));
    return reply.status(204).send();
  });

  app.post('/api/account/compromised', { config: { access: 'authenticated' }, schema: { summary: 'Report my password compromised: every session ends, the DPO is told, I choose a new password at next sign-in', tags: mine } }, async (request, reply) => {
    await reportCompromised(rt, actorOf(request), request.auth!.accountId, metaOf(request));
    reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
    return reply.status(204).send();
  });

  // --- Password rules, for live feedback -------------------------------------------------------
  app.post(
    '/api/password-policy/check',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Check a password against the rules, rule by rule (for feedback as someone types). For a signed-in person or a sign-in in progress, their own rules and details are used.',
        tags: ['passwords'],
        body: z.object({
          password: z.string().max(1024),
          currentPassword: z.string().max(1024).optional(),
          group: z.enum(groups).optional(),
          username: z.string().max(64).optional(),
          displayName: z.string().max(200).optional(),
        }),
        response: { 200: z.object({ acceptable: z.boolean(), rules: z.array(ruleSchema) }) },
      },
    },
    async (request) => {
      const { password, currentPassword } = request.body;
      let accountId: string | null = request.auth?.accountId ?? null;
      if (!accountId && request.cookies[SIGN_IN_COOKIE]) {
        accountId = await loadAttempt(rt, request.cookies[SIGN_IN_COOKIE]).then((a) => a.account_id, () => null);
      }
      if (!accountId && request.cookies[SESSION_COOKIE]) {
        accountId = (await resolveSession(rt.db.kysely, rt.clock, rt.profile, request.cookies[SESSION_COOKIE]))?.accountId ?? null;
      }
      const account = accountId ? await rt.db.kysely.selectFrom('account').selectAll().where('id', '=', accountId).executeTakeFirst() : undefined;
      const rules = account
        ? checkPassword(settingsFor(rt.profile, account.role as Role), password, contextFor(account, currentPassword ?? null))
        : checkPassword(rt.profile.groups[request.body.group ?? 'staff'], password, { username: request.body.username ?? null, names: request.body.displayName ? [request.body.displayName] : [], current: currentPassword ?? null });
      return { acceptable: acceptable(rules), rules };
    },
  );

  // --- The profile and the Acceptable Use Policy ----------------------------------------------
  app.get('/api/profile', { config: { access: 'profile.read' }, schema: { summary: 'The active policy profile, described per group, with its warnings', tags: ['profile'] } }, async () => ({
    name: rt.profile.name,
    description: rt.profile.description ?? null,
    source: rt.profile.source ?? null,
    lineage: rt.profile.lineage,
    terms: rt.profile.terms,
    trustedNetworks: rt.profile.trustedNetworks,
    groups: Object.fromEntries(groups.map((g) => [g, describeGroup(rt.profile.groups[g]).map(([label, value]) => ({ label, value }))])),
    warnings: profileWarnings(rt.profile),
  }));

  app.get('/api/aup', { config: { access: 'aup.read' }, schema: { summary: 'The current Acceptable Use Policy for each audience', tags: ['aup'] } }, async () => ({ versions: await currentAups(rt.db.kysely) }));

  app.post('/api/aup', { config: { access: 'aup.manage' }, schema: { summary: 'Publish a new version for an audience: everyone in it accepts again at next sign-in', tags: ['aup'], body: aupInputSchema } }, async (request, reply) =>
    reply.status(201).send(await rt.trail.transaction(actorOf(request), (ctx) => publishAup(ctx, request.body), metaOf(request))),
  );

  app.get('/api/aup/:audience/acceptances', { config: { access: 'aup.read' }, schema: { summary: 'Who accepted which version', tags: ['aup'], params: z.object({ audience: z.enum(groups) }) } }, async (request) => ({
    acceptances: await acceptancesOf(rt.db.kysely, request.params.audience),
  }));
}
