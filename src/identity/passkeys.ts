import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Actor } from '../core/context.js';
import { GatehouseError, notFound } from '../core/errors.js';
import type { Runtime } from '../runtime.js';
import type { SessionAccount } from './sessions.js';
import { requireRecentReauth } from './my-account.js';
import { newRecoveryCodes, recoveryCodeHash } from './totp.js';

/**
 * Passkeys (WebAuthn) as a second factor beside the authenticator app: registered from My account
 * after re-authentication, used at sign-in in place of a code.
 *
 * The relying party (RP ID and the origin the browser must report) comes from GATEHOUSE_PUBLIC_URL,
 * never from the request's Host header: the client chooses that header, so a look-alike site
 * relaying requests (Host: evil.example) would otherwise have its own origin accepted (issue 10,
 * finding 12). Without a public URL, passkeys work only in a browser on the server itself, at
 * http(s)://localhost:<the port the connection arrived on> (RP ID `localhost`, which browsers
 * allow without TLS); anywhere else they are refused with a message naming the setting.
 */
export interface RelyingParty {
  id: string;
  origin: string;
  name: string;
}

/** What relyingParty reads of a request: the Host header (only to refuse) and the connection. */
export interface RelyingPartyRequest {
  headers: { host?: string | undefined };
  socket: { remoteAddress?: string | undefined; localPort?: number | undefined };
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;

export function relyingParty(rt: Runtime, request: RelyingPartyRequest): RelyingParty {
  if (rt.config.publicUrl) {
    const u = new URL(rt.config.publicUrl);
    return { id: u.hostname, origin: u.origin, name: 'Gatehouse' };
  }
  const hostname = (request.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const port = request.socket.localPort;
  if (hostname !== 'localhost' || !LOOPBACK.test(request.socket.remoteAddress ?? '') || !port) {
    throw new GatehouseError(
      'passkeys_need_public_url',
      409,
      'Passkeys need the address people use to reach Gatehouse: an administrator sets GATEHOUSE_PUBLIC_URL (e.g. https://gatehouse.school.example). Until then, use the authenticator app.',
    );
  }
  return { id: 'localhost', origin: `${rt.config.tlsCertFile ? 'https' : 'http'}://localhost:${port}`, name: 'Gatehouse' };
}

const actorOf = (s: SessionAccount): Actor => ({ id: s.accountId, name: s.username, role: s.role });
type Meta = { ip: string | null; requestId: string | null };

export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export async function listPasskeys(rt: Runtime, accountId: string): Promise<PasskeyInfo[]> {
  const rows = await rt.db.kysely.selectFrom('passkey').select(['id', 'name', 'created_at', 'last_used_at']).where('account_id', '=', accountId).orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
}

export async function passkeyRegistrationOptions(rt: Runtime, s: SessionAccount, rp: RelyingParty) {
  await requireRecentReauth(rt, s);
  const existing = await rt.db.kysely.selectFrom('passkey').select(['id', 'transports']).where('account_id', '=', s.accountId).execute();
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: s.username,
    userDisplayName: s.displayName,
    userID: new TextEncoder().encode(s.accountId),
    attestationType: 'none',
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: c.transports ? (JSON.parse(c.transports) as string[]) : undefined })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
  await rt.db.kysely.updateTable('session').set({ challenge: options.challenge }).where('id', '=', s.sessionId).execute();
  return options;
}

export async function finishPasskeyRegistration(rt: Runtime, s: SessionAccount, rp: RelyingParty, input: { response: RegistrationResponseJSON; name: string }, m: Meta): Promise<{ passkey: PasskeyInfo; recoveryCodes: string[] | null }> {
  await requireRecentReauth(rt, s);
  const row = await rt.db.kysely.selectFrom('session').select('challenge').where('id', '=', s.sessionId).executeTakeFirst();
  if (!row?.challenge) throw new GatehouseError('no_challenge', 409, 'Start adding the passkey again.');
  let verified;
  try {
    verified = await verifyRegistrationResponse({ response: input.response, expectedChallenge: row.challenge, expectedOrigin: rp.origin, expectedRPID: rp.id });
  } catch (error) {
    throw new GatehouseError('passkey_rejected', 400, `The passkey could not be checked: ${(error as Error).message}`);
  }
  if (!verified.verified) throw new GatehouseError('passkey_rejected', 400, 'The passkey could not be checked. Try again.');
  const credential = verified.registrationInfo.credential;
  const now = rt.clock.now().toISOString();
  let codes: string[] | null = null;
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    await ctx.db.updateTable('session').set({ challenge: null }).where('id', '=', s.sessionId).execute();
    await ctx.db
      .insertInto('passkey')
      .values({
        id: credential.id,
        account_id: s.accountId,
        public_key: Buffer.from(credential.publicKey).toString('base64'),
        counter: credential.counter,
        transports: credential.transports ? JSON.stringify(credential.transports) : null,
        name: input.name,
        created_at: now,
        last_used_at: null,
      })
      .execute();
    // Without an authenticator app there are no recovery codes yet: give them now.
    const hasCodes = await ctx.db.selectFrom('recovery_code').select('code_hash').where('account_id', '=', s.accountId).limit(1).executeTakeFirst();
    if (!hasCodes) {
      codes = newRecoveryCodes();
      await ctx.db.insertInto('recovery_code').values(codes.map((c) => ({ account_id: s.accountId, code_hash: recoveryCodeHash(rt.keyedHash, s.accountId, c), created_at: now, used_at: null }))).execute();
    }
    await ctx.audit.record({ action: 'mfa.passkey_added', target: `account:${s.accountId}`, severity: 'notice', details: { username: s.username, name: input.name } });
  }, m);
  return { passkey: { id: credential.id, name: input.name, createdAt: now, lastUsedAt: null }, recoveryCodes: codes };
}

export async function removePasskey(rt: Runtime, s: SessionAccount, id: string, m: Meta): Promise<void> {
  await requireRecentReauth(rt, s);
  await rt.trail.transaction(actorOf(s), async (ctx) => {
    const gone = await ctx.db.deleteFrom('passkey').where('id', '=', id).where('account_id', '=', s.accountId).executeTakeFirst();
    if (Number(gone.numDeletedRows ?? 0) === 0) throw notFound('You have no such passkey.');
    await ctx.audit.record({ action: 'mfa.passkey_removed', target: `account:${s.accountId}`, severity: 'warning', details: { username: s.username } });
  }, m);
}

/** At sign-in: options for the account's own passkeys; the challenge waits in the sign-in attempt. */
export async function passkeySignInOptions(rt: Runtime, attempt: { id: string; account_id: string }, rp: RelyingParty) {
  const keys = await rt.db.kysely.selectFrom('passkey').select(['id', 'transports']).where('account_id', '=', attempt.account_id).execute();
  if (keys.length === 0) throw new GatehouseError('no_passkey', 409, 'This account has no passkey.');
  const options = await generateAuthenticationOptions({
    rpID: rp.id,
    allowCredentials: keys.map((k) => ({ id: k.id, transports: k.transports ? (JSON.parse(k.transports) as never) : undefined })),
    userVerification: 'preferred',
  });
  await rt.db.kysely.updateTable('sign_in_attempt').set({ challenge: options.challenge }).where('id', '=', attempt.id).execute();
  return options;
}

/** Checks a passkey assertion for the attempt's account; true when it is good (the counter moves on). */
export async function checkPasskeyAssertion(rt: Runtime, attempt: { id: string; account_id: string; challenge: string | null }, rp: RelyingParty, response: AuthenticationResponseJSON): Promise<boolean> {
  if (!attempt.challenge) return false;
  const key = await rt.db.kysely.selectFrom('passkey').selectAll().where('id', '=', response.id).where('account_id', '=', attempt.account_id).executeTakeFirst();
  if (!key) return false;
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: attempt.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: { id: key.id, publicKey: new Uint8Array(Buffer.from(key.public_key, 'base64')), counter: key.counter, transports: key.transports ? JSON.parse(key.transports) : undefined },
    });
    if (!result.verified) return false;
    await rt.db.kysely.updateTable('passkey').set({ counter: result.authenticationInfo.newCounter, last_used_at: rt.clock.now().toISOString() }).where('id', '=', key.id).execute();
    await rt.db.kysely.updateTable('sign_in_attempt').set({ challenge: null }).where('id', '=', attempt.id).execute();
    return true;
  } catch {
    return false;
  }
}
