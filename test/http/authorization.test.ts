import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { can, roles, type Role } from '../../src/core/authz.js';
import { csrfTokenFor, startSession } from '../../src/identity/sessions.js';
import { createAccount } from '../../src/identity/service.js';
import { systemActor } from '../../src/core/context.js';
import { buildApp } from '../../src/http/app.js';
import { SetupGate } from '../../src/school/setup-gate.js';
import { setUpSchool, startTestApp, type TestApp } from '../helpers/runtime.js';

/**
 * Least privilege on every route: enumerate every registered route and call it as every role and
 * as nobody. A route that declares a permission must answer 403 to roles without it and must not
 * answer 401/403 to roles with it; a route for any signed-in person must answer 401 to nobody.
 */
describe('authorization: every route × every role', () => {
  let t: TestApp;
  const accounts = new Map<Role, string>();

  beforeAll(async () => {
    t = await startTestApp('sqlite');
    await setUpSchool(t);
    for (const role of roles) {
      const id = await t.runtime.trail.transaction(systemActor('test'), (ctx) =>
        createAccount(ctx, { username: `user-${role}`, displayName: `A ${role}`, email: null, role, passwordHash: null }),
      );
      accounts.set(role, id);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  async function sessionFor(role: Role): Promise<Record<string, string>> {
    const { token } = await t.runtime.trail.transaction(systemActor('test'), (ctx) =>
      startSession(ctx, accounts.get(role)!, role, t.runtime.profile, { ip: null, userAgent: null }),
    );
    return { cookie: `__Host-gatehouse-session=${token}`, 'x-csrf-token': csrfTokenFor(token) };
  }

  const concrete = (url: string) => url.replace(':role', 'dsl').replace('*', 'index.js');

  it('every route declares its access rule', () => {
    expect(t.app.routeAccess.size).toBeGreaterThan(10);
    for (const [route, access] of t.app.routeAccess) expect(access, route).toBeTruthy();
  });

  it('a route without an access rule cannot be registered', async () => {
    const app = await buildApp({ runtime: t.runtime, setupGate: new SetupGate(t.test.dataDir) });
    try {
      await expect(
        (async () => {
          app.get('/api/unguarded', async () => 'oops');
          await app.ready();
        })(),
      ).rejects.toThrow(/does not declare config.access/);
    } finally {
      await app.close().catch(() => undefined);
    }
  });

  it('AC-03 AS-01 AS-03 AS-06 AS-10 GV-01 PW-12 every register’s CSV import and export is a route with the least privilege, so the walk below covers it', () => {
    const csvRoutes: Record<string, string> = {
      'GET /api/equipment/export.csv': 'registers.read',
      'POST /api/equipment/import': 'registers.manage',
      'GET /api/equipment/disposals/export.csv': 'registers.read',
      'GET /api/software/export.csv': 'registers.read',
      'POST /api/software/import': 'registers.manage',
      'POST /api/inventory/import': 'registers.manage',
      'GET /api/devices-health/export.csv': 'registers.read',
      'GET /api/media/export.csv': 'registers.read',
      'POST /api/media/import': 'registers.manage',
      'GET /api/risks/export.csv': 'risks.read',
      'POST /api/risks/import': 'risks.manage',
      'PATCH /api/risks/:id': 'risks.manage',
      'GET /api/secrets/export.csv': 'secrets.read',
    };
    for (const [route, access] of Object.entries(csvRoutes)) expect(t.app.routeAccess.get(route), route).toBe(access);
  });

  it('AC-03 DP-02 checks every route against every role, and against no session', async () => {
    const checked: string[] = [];
    const routes = [...t.app.routeAccess.entries()].sort(([a], [b]) => {
      // Signing out ends the session it is called with; keep it from disturbing the others.
      return Number(a === 'DELETE /api/session') - Number(b === 'DELETE /api/session');
    });
    for (const [route, access] of routes) {
      const [method, url] = route.split(' ') as [string, string];
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      const anonymous = await t.app.inject({ method: method as 'GET', url: concrete(url), payload: method === 'GET' ? undefined : {} });
      if (access === 'signing_in') {
        // Only a sign-in in progress (its own cookie) reaches these; a session does not.
        expect(anonymous.statusCode, `${route} without a sign-in in progress`).toBe(401);
        for (const role of roles) {
          const response = await t.app.inject({ method: method as 'GET', url: concrete(url), headers: await sessionFor(role), payload: method === 'GET' ? undefined : {} });
          expect(response.statusCode, `${route} as ${role} with a session but no sign-in`).toBe(401);
        }
        continue;
      }
      if (access === 'scim' || access === 'filter_agent') {
        // Only a SCIM client's bearer token reaches these; a session cookie, however privileged, does not.
        expect(anonymous.statusCode, `${route} without a bearer token`).toBe(401);
        for (const role of roles) {
          const response = await t.app.inject({ method: method as 'GET', url: concrete(url), headers: await sessionFor(role), payload: method === 'GET' ? undefined : {} });
          expect(response.statusCode, `${route} as ${role} with a session but no bearer token`).toBe(401);
          checked.push(`${route} ${role}`);
        }
        continue;
      }
      if (access === 'public') {
        expect(anonymous.statusCode, `${route} is public`).not.toBe(401);
      } else {
        expect(anonymous.statusCode, `${route} without a session`).toBe(401);
      }
      for (const role of roles) {
        const headers = await sessionFor(role);
        const response = await t.app.inject({ method: method as 'GET', url: concrete(url), headers, payload: method === 'GET' ? undefined : {} });
        const allowed = access === 'public' || access === 'authenticated' || can(role, access);
        if (allowed) {
          expect(response.statusCode === 401 || (response.statusCode === 403 && response.json().error.code === 'forbidden'), `${route} as ${role} (allowed) answered ${response.statusCode}`).toBe(false);
        } else {
          expect(response.statusCode, `${route} as ${role} (not allowed)`).toBe(403);
          expect(response.json().error.code).toBe('forbidden');
        }
        checked.push(`${route} ${role}`);
      }
    }
    expect(checked.length).toBeGreaterThanOrEqual((t.app.routeAccess.size / 2) * roles.length);
  });
});
