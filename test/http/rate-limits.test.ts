import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../src/core/config.js';
import { rateClassOf } from '../../src/http/rate-limits.js';
import { clientKey } from '../../src/core/networks.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Finding 12 (part) of issue 10: @fastify/rate-limit was a dependency and never registered. Each
 * class of public route now has a per-address limit from the configuration; a burst beyond it is
 * answered 429 with Retry-After and the project's error body (SCIM's error schema under /scim/v2),
 * before any password is hashed or token looked up.
 */

const OUTSIDER = '203.0.113.77';

for (const dialect of await dialects()) {
  describe(`rate limits on the public routes (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });
    const start = (config: Partial<Config>) => startTestApp(dialect, { config });

    it('FI-13 attack: a burst of block-page reports beyond the configured limit is refused with 429 and Retry-After; other addresses and the next minute are served', async () => {
      t = await start({ rateLimitReportPerMinute: 5 });
      const report = (ip: string) => t.app.inject({ method: 'POST', url: '/api/filtering/requests', payload: { action: 'report', host: 'example.org', reason: 'flood' }, remoteAddress: ip });
      for (let i = 0; i < 5; i++) expect((await report(OUTSIDER)).statusCode).toBe(201);
      const refused = await report(OUTSIDER);
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(refused.json()).toEqual({ error: { code: 'rate_limited', message: expect.stringMatching(/^Too many requests from this address\. Wait \d+ seconds? and try again\.$/), details: { retryAfterSeconds: expect.any(Number) }, requestId: expect.any(String) } });
      // Nothing more was stored than the limit allowed.
      expect(Number((await t.runtime.db.kysely.selectFrom('filter_request').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)).toBe(5);
      expect((await report('10.20.0.3')).statusCode).toBe(201);
      t.clock.advance(60_000);
      expect((await report(OUTSIDER)).statusCode).toBe(201);
    });

    it('PW-07 attack: a sign-in burst beyond the configured limit is refused with 429 before any password is hashed', async () => {
      t = await start({ rateLimitSignInPerMinute: 8, signInFailuresPerAddress: 1000 });
      const attempt = (ip: string) => t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'nobody', password: 'guess' }, remoteAddress: ip });
      // Every address in one IPv6 /64 is one client.
      for (let i = 0; i < 8; i++) expect((await attempt(`2001:db8:1:2::${i + 1}`)).statusCode).toBe(401);
      const verify = vi.spyOn(t.runtime.hasher, 'verify');
      const refused = await attempt('2001:db8:1:2:ffff::9');
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('rate_limited');
      expect(verify).not.toHaveBeenCalled();
      // The steps of a sign-in share the budget.
      expect((await t.app.inject({ method: 'GET', url: '/api/sign-in', remoteAddress: '2001:db8:1:2::1' })).statusCode).toBe(429);
      expect((await attempt('2001:db8:1:3::1')).statusCode).toBe(401);
    });

    it('AC-10 attack: a burst of self-service reset requests beyond the configured limit is refused with 429', async () => {
      t = await start({ rateLimitResetPerMinute: 3 });
      const start1 = () => t.app.inject({ method: 'POST', url: '/api/password-reset/start', payload: { username: 'staff1', code: '123456' }, remoteAddress: OUTSIDER });
      for (let i = 0; i < 3; i++) expect((await start1()).statusCode).not.toBe(429);
      expect((await start1()).statusCode).toBe(429);
      const finish = await t.app.inject({ method: 'POST', url: '/api/password-reset/finish', payload: { token: 'x'.repeat(30), newPassword: 'Whatever-Long-Password-1' }, remoteAddress: OUTSIDER });
      expect(finish.statusCode).toBe(429);
    });

    it('AC-12 attack: a burst of SCIM requests beyond the configured limit is refused with 429 in the SCIM error schema, before the token is looked up', async () => {
      t = await start({ rateLimitApiPerMinute: 4 });
      const admin = await setUpSchool(t);
      const token = (await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Entra', role: 'pupil' } })).json().secret as string;
      const list = (bearer: string) => t.app.inject({ method: 'GET', url: '/scim/v2/Users', headers: { authorization: `Bearer ${bearer}` }, remoteAddress: OUTSIDER });
      for (let i = 0; i < 3; i++) expect((await list(token)).statusCode).toBe(200);
      expect((await list('scim_wrong')).statusCode).toBe(401);
      const refused = await list(token);
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toBeDefined();
      expect(refused.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '429' });
      // A wrong token is now answered 429 too, not 401: the limit is checked before the token.
      expect((await list('scim_wrong')).statusCode).toBe(429);
    });
  });
}

describe('rate-limit classes and defaults', () => {
  it('PW-07 limits every public route that takes a password, a code, a token or a report, and leaves health checks alone', () => {
    expect(rateClassOf('POST', '/api/session')).toBe('signIn');
    expect(rateClassOf('POST', '/api/sign-in/second-factor')).toBe('signIn');
    expect(rateClassOf('POST', '/api/sign-in/passkey')).toBe('signIn');
    expect(rateClassOf('POST', '/api/account/reauthenticate')).toBe('signIn');
    expect(rateClassOf('POST', '/api/setup')).toBe('reset');
    expect(rateClassOf('POST', '/api/password-reset/start')).toBe('reset');
    expect(rateClassOf('GET', '/api/filtering/blocked')).toBe('blockPage');
    expect(rateClassOf('POST', '/api/filtering/connect')).toBe('blockPage');
    expect(rateClassOf('POST', '/api/filtering/requests')).toBe('report');
    expect(rateClassOf('POST', '/api/filtering/identity')).toBe('api');
    expect(rateClassOf('PATCH', '/scim/v2/Users/:id')).toBe('api');
    for (const route of ['/healthz', '/readyz', '/metrics', '/api/info', '/assets/*']) expect(rateClassOf('GET', route), route).toBeNull();
    expect(clientKey('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
  });

  it('PW-07 the defaults let a school behind one NAT address sign in at 8:30 (bench/login.sh: 1,500 in a minute, 58/s at capacity), and come from the configuration', () => {
    const { config } = loadConfig({});
    expect(config.rateLimitSignInPerMinute).toBeGreaterThanOrEqual(58 * 60);
    expect(config.rateLimitReportPerMinute).toBeLessThan(config.rateLimitBlockPagePerMinute);
    expect(loadConfig({ GATEHOUSE_RATE_LIMIT_RESET_PER_MINUTE: '12' }).config.rateLimitResetPerMinute).toBe(12);
    expect(() => loadConfig({ GATEHOUSE_RATE_LIMIT_REPORT_PER_MINUTE: '0' })).toThrow(/GATEHOUSE_RATE_LIMIT_REPORT_PER_MINUTE: must be at least 1 request/);
  });
});
