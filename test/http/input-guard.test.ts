import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Inputs validated at the edge: PostgreSQL refuses a NUL in any text value, so a NUL that reaches a
 * store is a 500. Every registered route is called by the master administrator with a NUL in each
 * path parameter, in the query and in the body; none may answer 500 (SCIM answers in its own format
 * and is covered by its own fuzz test).
 */
const available = await dialects();

for (const dialect of available) {
  describe(`a NUL character anywhere in a request (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('AC-03 attack: a NUL in a path parameter, the query or the body of any route is refused with 400, never a 500 from the database', async () => {
      const skipped = new Set(['DELETE /api/session']);
      const fiveHundreds: string[] = [];
      let guarded = 0;
      for (const [route, access] of t.app.routeAccess) {
        const [method, url] = route.split(' ') as [string, string];
        if (method === 'HEAD' || method === 'OPTIONS' || access === 'scim' || skipped.has(route) || url.includes('*')) continue;
        const withNulParams = url.replace(/:[A-Za-z]+/g, 'x%00y');
        const attempts = [
          ...(withNulParams !== url ? [{ url: withNulParams, payload: method === 'GET' ? undefined : {} }] : []),
          { url: `${url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000')}?q=a%00b`, payload: method === 'GET' ? undefined : {} },
          ...(method === 'GET' || method === 'DELETE' ? [] : [{ url: url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000'), payload: { name: 'a\u0000b', hosts: ['a\u0000.example'], username: 'x\u0000' } }]),
        ];
        for (const attempt of attempts) {
          const response = await t.app.inject({ method: method as 'GET', url: attempt.url, headers: admin.headers, payload: attempt.payload });
          if (response.statusCode >= 500) fiveHundreds.push(`${route} ${attempt.url} → ${response.statusCode} ${response.body.slice(0, 120)}`);
          if (response.statusCode === 400 && /NUL character/.test(response.body)) guarded++;
        }
      }
      expect(fiveHundreds).toEqual([]);
      expect(guarded).toBeGreaterThan(20);
    });
  });
}
