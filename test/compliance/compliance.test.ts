import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { FRAMEWORKS_DIR, FrameworkError, loadFrameworks, parseFramework } from '../../src/compliance/frameworks.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const DAY = 86_400_000;

interface Evidence { kind: string; id: string; status: string; summary: string; links: Array<{ href: string }>; signoff?: { by: string[]; current: { id: string; signedBy: string; validUntil: string } | null } }
interface Clause { id: string; status: string; requirements: string[]; evidence: Evidence[] }
interface Framework { id: string; counts: { met: number; due_soon: number; not_met: number; total: number }; clauses: Clause[] }

describe('compliance frameworks as data', () => {
  it('GV-08 every framework file loads, names only existing probes and roles, and the school-policy framework covers every requirement in the catalogue', () => {
    const frameworks = loadFrameworks();
    expect(frameworks.map((f) => f.id)).toEqual(['dfe-filtering-monitoring', 'dfe-cyber-security', 'cyber-essentials', 'school-policy']);
    // The catalogue lives beside the project (../shared), as the UT1 lists do (test/helpers/ut1.ts).
    const catalogue = [process.env.GATEHOUSE_TEST_REQUIREMENTS, path.resolve(FRAMEWORKS_DIR, '..', '..', 'shared', 'REQUIREMENTS.md'), '/work/shared/REQUIREMENTS.md'].find((c): c is string => Boolean(c) && existsSync(c!));
    if (!catalogue) throw new Error('shared/REQUIREMENTS.md not found beside the project (or set GATEHOUSE_TEST_REQUIREMENTS)');
    const ids = [...readFileSync(catalogue, 'utf8').matchAll(/^\| ([A-Z]{2}-\d{2}) \|/gm)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(80);
    const school = frameworks.find((f) => f.id === 'school-policy')!;
    expect(school.clauses.map((c) => c.id).sort()).toEqual([...ids].sort());
    // Automatic where Gatehouse has the data: at least the ones its probes prove.
    expect(school.clauses.filter((c) => c.evidence.some((e) => e.kind === 'probe')).length).toBeGreaterThanOrEqual(20);
  });

  it('GV-08 a framework file naming an unknown probe, an unknown role or a clause twice is refused, naming the file and the clause', () => {
    const base = 'id: x-test\nname: Test\npublisher: Us\nversion: "1"\nclauses:\n';
    expect(() => parseFramework(`${base}  - id: "1"\n    title: A clause\n    evidence:\n      - probe: no-such-probe\n`, 'bad.yaml')).toThrow(new FrameworkError('bad.yaml: clause 1 names the probe "no-such-probe", which does not exist'));
    expect(() => parseFramework(`${base}  - id: "1"\n    title: A clause\n    evidence:\n      - signoff: Somebody attests this\n        by: [headmaster]\n`, 'bad.yaml')).toThrow(/clause 1 names unknown roles: headmaster/);
    expect(() => parseFramework(`${base}  - id: "1"\n    title: A clause\n    evidence:\n      - probe: lockout\n  - id: "1"\n    title: Again\n    evidence:\n      - probe: lockout\n`, 'bad.yaml')).toThrow(/clause 1 appears twice/);
    expect(() => parseFramework(`${base}  - id: "1"\n    title: A clause\n    evidence: []\n`, 'bad.yaml')).toThrow(/at least one kind of evidence/);
    expect(() => parseFramework('a: &a [*a, *a]\n', 'bomb.yaml')).toThrow(/bomb.yaml/);
  });
});

const available = await dialects();

for (const dialect of available) {
  describe(`the compliance view (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    const sessions = new Map<Role, Session>();

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      for (const role of ['senior_leader', 'governor', 'staff', 'dpo'] as const) {
        const hash = await t.runtime.hasher.hash(PASSWORD);
        await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: `c-${role}`, displayName: `C ${role}`, email: `${role}@school.example`, role, passwordHash: hash }));
        sessions.set(role, await signIn(t, `c-${role}`, PASSWORD));
      }
    });
    afterAll(async () => {
      await t?.close();
    });

    const get = async (session: Session): Promise<Framework[]> => {
      const response = await t.app.inject({ method: 'GET', url: '/api/compliance', headers: session.headers });
      expect(response.statusCode, response.body).toBe(200);
      return (response.json() as { frameworks: Framework[] }).frameworks;
    };
    const clause = (frameworks: Framework[], fw: string, id: string) => frameworks.find((f) => f.id === fw)!.clauses.find((c) => c.id === id)!;
    const send = (session: Session, url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: session.headers, payload });

    it('GV-08 a clause judged from records turns from not met to met when the record is made (an access review signed off), and the history shows the change', async () => {
      const head = sessions.get('senior_leader')!;
      let fws = await get(head);
      expect(clause(fws, 'cyber-essentials', 'A7.1').status).toBe('not_met');
      expect(clause(fws, 'cyber-essentials', 'A7.1').evidence[0]!.summary).toBe('No signed-off access review has been recorded.');
      // Yesterday's snapshot, as the daily job writes it.
      t.clock.advance(-DAY);
      await import('../../src/compliance/service.js').then((s) => s.recordSnapshot(t.runtime));
      t.clock.advance(DAY);

      const review = (await send(head, '/api/access/reviews', {})).json() as { id: string; snapshot: { accounts: Array<{ id: string }> } };
      for (const account of review.snapshot.accounts) expect((await t.app.inject({ method: 'PUT', url: `/api/access/reviews/${review.id}/accounts/${account.id}`, headers: head.headers, payload: { decision: 'confirm' } })).statusCode).toBe(200);
      expect((await send(head, `/api/access/reviews/${review.id}/sign-off`, { summary: 'All privileged accounts confirmed.' })).statusCode).toBe(200);

      fws = await get(head);
      const a71 = clause(fws, 'cyber-essentials', 'A7.1');
      expect(a71.status).toBe('met');
      expect(a71.evidence[0]!.summary).toMatch(/^The last signed-off access review was on 2026-09-07; the next is due by 2027-09-07\.$/);
      expect(a71.evidence[0]!.links[0]!.href).toBe('/access');

      await import('../../src/compliance/service.js').then((s) => s.recordSnapshot(t.runtime));
      const history = (await t.app.inject({ method: 'GET', url: '/api/compliance/cyber-essentials/history', headers: head.headers })).json() as { points: Array<{ day: string; changed: Array<{ clause: string; from: string; to: string }> }> };
      expect(history.points.map((p) => p.day)).toEqual(['2026-09-06', '2026-09-07']);
      expect(history.points[1]!.changed).toContainEqual({ clause: 'A7.1', from: 'not_met', to: 'met' });
    });

    it('GV-08 AC-07 the administrator-MFA clause is computed from the accounts as they are: an administrator without a second factor makes it not met', async () => {
      const head = sessions.get('senior_leader')!;
      expect(clause(await get(head), 'dfe-cyber-security', '4').evidence.find((e) => e.id === 'admin-mfa')!.status).toBe('met');
      await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'admin2', displayName: 'Second Admin', email: null, role: 'administrator', passwordHash: null }));
      const mfa = clause(await get(head), 'dfe-cyber-security', '4').evidence.find((e) => e.id === 'admin-mfa')!;
      expect(mfa.status).toBe('not_met');
      expect(mfa.summary).toMatch(/^1 administrator account of \d+ has no second factor\.$/);
      await t.runtime.db.kysely.updateTable('account').set({ status: 'disabled' }).where('username', '=', 'admin2').execute();
      expect(clause(await get(head), 'dfe-cyber-security', '4').evidence.find((e) => e.id === 'admin-mfa')!.status).toBe('met');
    });

    it('GV-08 a manual sign-off by a named role meets its clause, is audited in the same transaction, lapses after its period, and can be withdrawn with a reason', async () => {
      const governor = sessions.get('governor')!;
      const before = clause(await get(governor), 'dfe-filtering-monitoring', '2');
      expect(before.status).toBe('not_met');
      expect(before.evidence[0]!.signoff!.by).toEqual(['senior_leader', 'dsl', 'governor']);

      const tooShort = await send(governor, '/api/compliance/dfe-filtering-monitoring/clauses/2/signoffs', { evidence: 'ok' });
      expect(tooShort.statusCode).toBe(400);
      const signed = await send(governor, '/api/compliance/dfe-filtering-monitoring/clauses/2/signoffs', { evidence: 'Review minutes of the FGB meeting, 3 September, item 7; kept in the governors’ drive.' });
      expect(signed.statusCode, signed.body).toBe(201);
      const signoff = signed.json() as { id: string; validUntil: string; signedBy: string };
      expect(signoff.signedBy).toBe('c-governor');
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'actor', 'target', 'body']).where('action', '=', 'compliance.signed_off').execute();
      expect(events).toHaveLength(1);
      expect(events[0]!.target).toBe(`compliance_signoff:${signoff.id}`);
      expect(parseBody(events[0]!.body).details).toMatchObject({ framework: 'dfe-filtering-monitoring', clause: '2' });

      let now = clause(await get(governor), 'dfe-filtering-monitoring', '2');
      expect(now.status).toBe('met');
      expect(now.evidence[0]!.links[0]!.href).toBe(`/audit?target=${encodeURIComponent(`compliance_signoff:${signoff.id}`)}`);

      // Eleven and a half months on it is due soon; after twelve it has lapsed. (Evaluated directly:
      // a year on, the test's sessions would have ended.)
      const { evaluateCompliance } = await import('../../src/compliance/service.js');
      const later = async () => (await evaluateCompliance(t.runtime)) as unknown as Framework[];
      t.clock.advance(350 * DAY);
      expect(clause(await later(), 'dfe-filtering-monitoring', '2').status).toBe('due_soon');
      t.clock.advance(20 * DAY);
      expect(clause(await later(), 'dfe-filtering-monitoring', '2').status).toBe('not_met');
      t.clock.advance(-370 * DAY);

      const withdrawn = await send(sessions.get('senior_leader')!, `/api/compliance/signoffs/${signoff.id}/withdraw`, { reason: 'The minutes were of a different meeting.' });
      expect(withdrawn.statusCode, withdrawn.body).toBe(200);
      now = clause(await get(governor), 'dfe-filtering-monitoring', '2');
      expect(now.status).toBe('not_met');
      expect((await send(governor, `/api/compliance/signoffs/${signoff.id}/withdraw`, { reason: 'again' })).statusCode).toBe(409);
    });

    it('GV-08 attack: roles outside a clause’s signers, and roles without the permission, cannot sign it off; staff cannot read the view', async () => {
      // The DPO holds compliance.signoff but clause 3.2 of the filtering standards is the senior leader's and DSL's.
      const dpo = await send(sessions.get('dpo')!, '/api/compliance/dfe-filtering-monitoring/clauses/3.2/signoffs', { evidence: 'I looked at the network diagram and it seemed fine.' });
      expect(dpo.statusCode).toBe(403);
      expect((dpo.json() as { error: { message: string } }).error.message).toBe('Clause 3.2 is signed off by: senior leader, dsl.');
      // Administrators never attest their own work.
      expect((await send(admin, '/api/compliance/dfe-filtering-monitoring/clauses/3.2/signoffs', { evidence: 'I configured every network path myself.' })).statusCode).toBe(403);
      expect((await t.app.inject({ method: 'GET', url: '/api/compliance', headers: sessions.get('staff')!.headers })).statusCode).toBe(403);
      // A clause judged from records cannot be "signed off" to look met.
      const forced = await send(sessions.get('senior_leader')!, '/api/compliance/dfe-cyber-security/clauses/4/signoffs', { evidence: 'Everyone has MFA, trust me.' });
      expect(forced.statusCode).toBe(400);
      expect((await send(sessions.get('senior_leader')!, '/api/compliance/no-such/clauses/1/signoffs', { evidence: 'Nothing to see here at all.' })).statusCode).toBe(404);
      expect((await send(sessions.get('senior_leader')!, '/api/compliance/dfe-cyber-security/clauses/99/signoffs', { evidence: 'Nothing to see here at all.' })).statusCode).toBe(404);
      expect(await t.runtime.db.kysely.selectFrom('compliance_signoff').select('id').where('clause_id', 'in', ['3.2', '4']).execute()).toEqual([]);
    });

    it('GV-08 attack: ten simultaneous sign-offs of one clause leave exactly one current sign-off, the others recorded as replaced', async () => {
      const head = sessions.get('senior_leader')!;
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => send(head, '/api/compliance/dfe-cyber-security/clauses/14/signoffs', { evidence: `Risk register reviewed at SLT meeting ${i}.` })));
      expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(201));
      const rows = await t.runtime.db.kysely.selectFrom('compliance_signoff').select(['id', 'withdrawn_at', 'withdrawn_reason']).where('framework_id', '=', 'dfe-cyber-security').where('clause_id', '=', '14').execute();
      expect(rows).toHaveLength(10);
      expect(rows.filter((r) => r.withdrawn_at === null)).toHaveLength(1);
      expect(rows.filter((r) => r.withdrawn_reason === 'replaced by a new sign-off')).toHaveLength(9);
    });

    it('GV-08 the overview lists each framework with clauses not met, for the roles that read the compliance view only', async () => {
      const due = async (s: Session) => ((await t.app.inject({ method: 'GET', url: '/api/dashboard/due', headers: s.headers })).json() as { items: Array<{ kind: string; title: string; href: string; requirement: string }> }).items.filter((i) => i.kind === 'compliance');
      const items = await due(sessions.get('governor')!);
      expect(items.map((i) => i.href)).toContain('/compliance/cyber-essentials');
      expect(items.find((i) => i.href === '/compliance/cyber-essentials')!.title).toMatch(/^Cyber Essentials v3\.3: \d+ of 12 not met/);
      expect(await due(sessions.get('staff')!)).toEqual([]);
    });
  });
}
