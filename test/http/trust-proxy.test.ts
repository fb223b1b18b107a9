import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { loadConfig } from '../../src/core/config.js';
import { systemActor } from '../../src/core/context.js';
import { filterServiceFor } from '../../src/filtering/service.js';
import { createAccount } from '../../src/identity/service.js';
import { ROOT, childEnv } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { signIn, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Finding 5 of issue 10: with GATEHOUSE_TRUST_PROXY=true, anyone's X-Forwarded-For was believed.
 * Now only the listed reverse proxies are, and the client is the right-most address in the chain
 * that is not one of them. Each attack is sent with a forged header from an address that is not a
 * trusted proxy (app.inject sets the connecting address), and the trusted path is shown to work.
 */

const PASSWORD = 'Violet-Harbour-Lantern-7';
const REVERSE_PROXY = '10.0.0.5';
const OUTSIDER = '203.0.113.50';

async function person(t: TestApp, username: string, role: Role): Promise<string> {
  const hash = await t.runtime.hasher.hash(PASSWORD);
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: username, email: null, role, passwordHash: hash }));
}

/** The trusted proxies as an operator writes them, read through the real configuration loader. */
function trusted(value: string): string[] {
  return loadConfig({ GATEHOUSE_TRUST_PROXY: value }).config.trustProxy;
}

for (const dialect of await dialects()) {
  describe(`trusted reverse proxies (${dialect})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t?.close();
    });
    const start = (options: { failuresPerAddress?: number; profile?: string } = {}) =>
      startTestApp(dialect, { config: { profile: options.profile ?? 'p4', trustProxy: trusted(`${REVERSE_PROXY}, 10.1.0.0/24`), ...(options.failuresPerAddress ? { signInFailuresPerAddress: options.failuresPerAddress } : {}) } });
    const attempt = (username: string, password: string, from: string, forwardedFor?: string) =>
      t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: from, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} });

    it('AC-14 attack: a forged X-Forwarded-For naming a school address does not skip off-site MFA', async () => {
      t = await start();
      await person(t, 'staff8', 'staff');
      // From outside, claiming to be on the school network (10.20.30.40 is a trusted network in p4).
      const forged = await attempt('staff8', PASSWORD, OUTSIDER, '10.20.30.40');
      expect(forged.json()).toMatchObject({ status: 'pending', step: { step: 'mfa_enrol', reason: 'offsite' } });
      // Through the trusted proxy, with the forged address first and the real one appended by the proxy.
      const chained = await attempt('staff8', PASSWORD, REVERSE_PROXY, `10.20.30.40, ${OUTSIDER}`);
      expect(chained.json()).toMatchObject({ status: 'pending', step: { step: 'mfa_enrol', reason: 'offsite' } });
      const event = await t.runtime.db.kysely.selectFrom('sign_in_attempt').select(['ip', 'offsite']).orderBy('created_at', 'desc').execute();
      expect(event.map((e) => [e.ip, e.offsite])).toEqual([[OUTSIDER, 1], [OUTSIDER, 1]]);
    });

    it('AC-14 through a trusted reverse proxy, the forwarded address is believed (on site: no MFA asked)', async () => {
      t = await start();
      await person(t, 'staff9', 'staff');
      expect((await attempt('staff9', PASSWORD, REVERSE_PROXY, '10.20.30.40')).json()).toMatchObject({ status: 'signed_in' });
      // Two proxies in a row, both trusted (10.1.0.0/24): the client is the first untrusted from the right.
      expect((await attempt('staff9', PASSWORD, '10.1.0.7', `${OUTSIDER}, 10.20.30.41, ${REVERSE_PROXY}`)).json()).toMatchObject({ status: 'signed_in' });
      expect((await attempt('staff9', PASSWORD, REVERSE_PROXY, OUTSIDER)).json()).toMatchObject({ status: 'pending', step: { reason: 'offsite' } });
    });

    it('PW-07 attack: made-up X-Forwarded-For addresses do not spread guesses past the address throttle', async () => {
      // ncsc: the account itself does not lock after 5 failures, so only the address throttle is tested.
      t = await start({ failuresPerAddress: 5, profile: 'ncsc' });
      await person(t, 'staff1', 'staff');
      for (let i = 0; i < 5; i++) expect((await attempt('staff1', `guess-${i}`, OUTSIDER, `198.51.100.${i + 1}`)).statusCode).toBe(401);
      // The sixth guess is counted against the real address, whatever the header says.
      const refused = await attempt('staff1', PASSWORD, OUTSIDER, '198.51.100.99');
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('too_many_attempts');
      // A client behind the trusted proxy is its own address, so another person is not held back.
      expect((await attempt('staff1', PASSWORD, REVERSE_PROXY, '10.20.30.42')).statusCode).toBe(200);
    });

    it('FI-02 attack: a forged X-Forwarded-For neither reveals who is signed in at a school device nor maps the attacker’s device onto it', async () => {
      t = await start();
      const service = filterServiceFor(t.runtime);
      await person(t, 'captive.pupil', 'pupil');
      await person(t, 'mallory', 'pupil');
      // The victim connects their device at 10.70.0.4 at the captive page (through the trusted proxy).
      const victim = await signIn(t, 'captive.pupil', PASSWORD, { ip: REVERSE_PROXY });
      const connected = await t.app.inject({ method: 'POST', url: '/api/filtering/connect', headers: { ...victim.headers, 'x-forwarded-for': '10.70.0.4' }, remoteAddress: REVERSE_PROXY });
      expect(connected.json()).toMatchObject({ ip: '10.70.0.4', connection: { username: 'captive.pupil' } });
      expect(service.identify('10.70.0.4')).toMatchObject({ via: 'captive', username: 'captive.pupil' });

      // The block page, asked from outside while claiming the victim's address: nobody is named.
      const page = await t.app.inject({ method: 'GET', url: '/api/filtering/blocked?host=example.org', headers: { 'x-forwarded-for': '10.70.0.4' }, remoteAddress: OUTSIDER });
      expect(page.statusCode).toBe(200);
      expect(page.json().signedInAs).toBeNull();
      // The same question through the trusted proxy, for the victim's own device, names them (the feature works).
      const own = await t.app.inject({ method: 'GET', url: '/api/filtering/blocked?host=example.org', headers: { 'x-forwarded-for': '10.70.0.4' }, remoteAddress: REVERSE_PROXY });
      expect(own.json().signedInAs).toBe('captive.pupil');

      // Mallory, signed in, "connects" the victim's address as herself: her real address is mapped instead.
      const mallory = await signIn(t, 'mallory', PASSWORD, { ip: OUTSIDER });
      const hijack = await t.app.inject({ method: 'POST', url: '/api/filtering/connect', headers: { ...mallory.headers, 'x-forwarded-for': '10.70.0.4' }, remoteAddress: OUTSIDER });
      expect(hijack.json()).toMatchObject({ ip: OUTSIDER });
      expect(service.identify('10.70.0.4')).toMatchObject({ username: 'captive.pupil' });
      // A block-page report is filed under the real address too (Mallory's own, now mapped to her).
      const report = await t.app.inject({ method: 'POST', url: '/api/filtering/requests', headers: { 'x-forwarded-for': '10.70.0.4' }, payload: { action: 'report', host: 'example.org', reason: 'forged' }, remoteAddress: OUTSIDER });
      expect(report.statusCode).toBe(201);
      const stored = await t.runtime.db.kysely.selectFrom('filter_request').select(['client_ip', 'username']).where('id', '=', report.json().id).executeTakeFirstOrThrow();
      expect(stored).toEqual({ client_ip: OUTSIDER, username: 'mallory' });
    });

    it('AU-01 attack: a request id or a client address sent by an untrusted client does not enter the log or the trail', async () => {
      t = await start();
      const forged = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'forged-id-1', 'x-forwarded-for': '10.20.30.40' }, remoteAddress: OUTSIDER });
      expect(forged.headers['x-request-id']).not.toBe('forged-id-1');
      const passedOn = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'proxy-id-1' }, remoteAddress: REVERSE_PROXY });
      expect(passedOn.headers['x-request-id']).toBe('proxy-id-1');
      const lines = t.logs.lines.map((l) => JSON.parse(l) as { msg?: string; ip?: string; reqId?: string }).filter((l) => l.msg === 'request');
      expect(lines.map((l) => l.ip)).toEqual([OUTSIDER, REVERSE_PROXY]);
    });

    it('AC-03 attack: /metrics is not served to the world through a reverse proxy on this machine', async () => {
      t = await startTestApp(dialect, { config: { trustProxy: trusted('127.0.0.1') } });
      const relayed = await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': OUTSIDER }, remoteAddress: '127.0.0.1' });
      expect(relayed.statusCode).toBe(403);
      expect((await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    });
  });
}

describe('GATEHOUSE_TRUST_PROXY', () => {
  it('AC-14 accepts addresses and networks, and “none”; refuses anything else, naming what to write', () => {
    expect(trusted('10.0.0.5,10.1.0.0/24, fd00::7')).toEqual(['10.0.0.5/32', '10.1.0.0/24', 'fd00::7/128']);
    expect(trusted('false')).toEqual([]);
    expect(loadConfig({}).config.trustProxy).toEqual([]);
    for (const everyone of ['true', 'TRUE', 'yes', '1', '*']) {
      expect(() => trusted(everyone), everyone).toThrow(/GATEHOUSE_TRUST_PROXY: believing X-Forwarded-For from everyone is no longer allowed.*GATEHOUSE_TRUST_PROXY=10\.0\.0\.5/s);
    }
    expect(() => trusted('proxy.school.lan')).toThrow(/must be the addresses or networks of your reverse proxies/);
  });

  it('AC-14 attack: GATEHOUSE_TRUST_PROXY=true is refused at start by the real `gatehouse serve`, saying what to write instead', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-trust-'));
    try {
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'serve'], { cwd: ROOT, env: childEnv({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_PORT: '0', GATEHOUSE_TRUST_PROXY: 'true' }), timeout: 20_000 }, (_e, _out, stderr) => resolve({ code: child.exitCode, stderr }));
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('GATEHOUSE_TRUST_PROXY: believing X-Forwarded-For from everyone is no longer allowed');
      expect(result.stderr).toContain('GATEHOUSE_TRUST_PROXY=10.0.0.5 or 10.0.0.5,10.1.0.0/24');
      expect(result.stderr).toContain('(got "true")');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
