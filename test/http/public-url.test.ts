import { afterEach, describe, expect, it } from 'vitest';
import { relyingParty } from '../../src/identity/passkeys.js';
import { dialects } from '../helpers/databases.js';
import { totpNow } from '../../src/identity/totp.js';
import { setUpSchool, startTestApp, ADMIN_PASSWORD, masterSecrets, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Finding 12 of issue 10 (links from GATEHOUSE_PUBLIC_URL, never the Host header): a client chooses
 * its Host header, so a look-alike site relaying to Gatehouse (Host: evil.example) must not get
 * links, or a passkey relying party, naming itself. With GATEHOUSE_PUBLIC_URL everything names the
 * public address; without it SCIM links are relative and passkeys work only on the server itself.
 */

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const EVIL = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

const available = await dialects();

for (const dialect of available) {
  describe(`links and the passkey relying party come from GATEHOUSE_PUBLIC_URL (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;

    afterEach(async () => {
      await t?.close();
    });

    async function start(publicUrl: string | undefined) {
      t = await startTestApp(dialect, { config: { publicUrl } });
      admin = await setUpSchool(t);
    }

    /** SCIM requests with a forged Host; every link in every answer. */
    async function scimLinks(): Promise<string[]> {
      const made = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Entra ID', roles: ['pupil'] } });
      const bearer = made.json().secret as string;
      const scim = (method: 'GET' | 'POST', url: string, body?: unknown) =>
        t.app.inject({ method, url: `/scim/v2${url}`, headers: { ...EVIL, authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/scim+json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });
      const user = await scim('POST', '/Users', { schemas: [USER], userName: 'a.pupil', name: { givenName: 'A', familyName: 'Pupil' } });
      expect(user.statusCode, user.body).toBe(201);
      const group = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Year 7', members: [{ value: user.json().id }] });
      expect(group.statusCode, group.body).toBe(201);
      const answers = [user, group, ...(await Promise.all(['/Users', `/Users/${user.json().id}`, '/Groups', '/ServiceProviderConfig', '/ResourceTypes', '/Schemas'].map((u) => scim('GET', u))))];
      for (const a of answers) {
        expect(a.body).not.toContain('evil.example');
        expect(String(a.headers.location ?? '')).not.toContain('evil.example');
      }
      const links = [String(user.headers.location), String(group.headers.location)];
      JSON.stringify(answers.map((a) => a.json()), (key, value) => {
        if ((key === 'location' || key === '$ref') && typeof value === 'string') links.push(value);
        return value;
      });
      return links;
    }

    /** The passkey options My account asks for, with a forged Host (after re-authentication). */
    async function passkeyOptions(headers: Record<string, string>) {
      t.clock.advance(30_000);
      const code = await totpNow(masterSecrets.get(t)!, t.clock);
      const reauth = await t.app.inject({ method: 'POST', url: '/api/account/reauthenticate', headers: admin.headers, payload: { password: ADMIN_PASSWORD, code } });
      expect(reauth.statusCode, reauth.body).toBeLessThan(300);
      return t.app.inject({ method: 'POST', url: '/api/account/passkeys/options', headers: { ...admin.headers, ...headers } });
    }

    it('AC-12 a SCIM request with a forged Host: evil.example gets links to GATEHOUSE_PUBLIC_URL when it is set', async () => {
      await start('https://gatehouse.school.example');
      const links = await scimLinks();
      expect(links.length).toBeGreaterThan(10);
      expect(links.every((l) => l.startsWith('https://gatehouse.school.example/scim/v2/'))).toBe(true);
    });

    it('AC-12 attack: without GATEHOUSE_PUBLIC_URL a forged Host: evil.example gets relative SCIM links, never its own name', async () => {
      await start(undefined);
      const links = await scimLinks();
      expect(links.length).toBeGreaterThan(10);
      expect(links.every((l) => l.startsWith('/scim/v2/'))).toBe(true);
    });

    it('AC-14 a forged Host: evil.example does not become the passkey relying party when GATEHOUSE_PUBLIC_URL is set', async () => {
      await start('https://gatehouse.school.example');
      const options = await passkeyOptions(EVIL);
      expect(options.statusCode, options.body).toBe(200);
      expect(options.json().rp).toEqual({ id: 'gatehouse.school.example', name: 'Gatehouse' });
      expect(options.body).not.toContain('evil.example');
      expect(relyingParty(t.runtime, { headers: { host: 'evil.example' }, socket: { remoteAddress: '203.0.113.9', localPort: 443 } })).toEqual({ id: 'gatehouse.school.example', origin: 'https://gatehouse.school.example', name: 'Gatehouse' });
    });

    it('AC-14 attack: without GATEHOUSE_PUBLIC_URL, passkeys are refused for a forged Host and work only at localhost on the server itself', async () => {
      await start(undefined);
      const options = await passkeyOptions(EVIL);
      expect(options.statusCode).toBe(409);
      expect(options.json().error).toMatchObject({ code: 'passkeys_need_public_url', message: expect.stringContaining('GATEHOUSE_PUBLIC_URL') });
      expect(options.body).not.toContain('evil.example');
      // The same rule at sign-in (the routes share relyingParty): only a browser on the server, at localhost.
      const rp = (host: string, remoteAddress: string) => () => relyingParty(t.runtime, { headers: { host }, socket: { remoteAddress, localPort: 8080 } });
      expect(rp('evil.example', '127.0.0.1')).toThrow(/GATEHOUSE_PUBLIC_URL/);
      expect(rp('localhost:8080', '192.168.1.20')).toThrow(/GATEHOUSE_PUBLIC_URL/);
      expect(rp('127.0.0.1:8080', '127.0.0.1')).toThrow(/GATEHOUSE_PUBLIC_URL/);
      expect(rp('localhost:9999', '127.0.0.1')()).toEqual({ id: 'localhost', origin: 'http://localhost:8080', name: 'Gatehouse' });
      expect(rp('localhost', '::1')()).toEqual({ id: 'localhost', origin: 'http://localhost:8080', name: 'Gatehouse' });
    });
  });
}
