import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { diffLines } from '../../src/compliance/written-policy.js';
import { groups } from '../../src/core/profile.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';

describe('the policy document diff', () => {
  it('GV-08 a line diff shows what was removed and added, with unchanged stretches cut short', () => {
    const before = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].join('\n');
    const after = ['a', 'b', 'c', 'D', 'e', 'f', 'g', 'h', 'i'].join('\n');
    expect(diffLines(before, after, 1)).toEqual([
      { op: ' ', text: '…' },
      { op: ' ', text: 'c' },
      { op: '-', text: 'd' },
      { op: '+', text: 'D' },
      { op: ' ', text: 'e' },
      { op: ' ', text: '…' },
      { op: ' ', text: 'h' },
      { op: '+', text: 'i' },
    ]);
    expect(diffLines('same\ntext', 'same\ntext').every((l) => l.op === ' ')).toBe(true);
  });
});

for (const dialect of await dialects()) {
  describe(`the written policy and the governors' report (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    let work: string;
    const sessions = new Map<Role, Session>();
    const api = async (session: Session, url: string, method: 'GET' | 'PUT' = 'GET', payload?: unknown) => {
      const r = await t.app.inject({ method, url, headers: session.headers, payload: payload as object, remoteAddress: '127.0.0.1' });
      return { status: r.statusCode, body: r.headers['content-type']?.toString().includes('json') ? (r.json() as any) : undefined, raw: r.rawPayload };
    };
    const pdfText = (raw: Buffer) => {
      const file = path.join(work, `${Math.random().toString(36).slice(2)}.pdf`);
      writeFileSync(file, raw);
      return execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
    };

    beforeAll(async () => {
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-policy-doc-'));
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      for (const role of ['senior_leader', 'governor', 'pupil'] as const) {
        const hash = await t.runtime.hasher.hash(PASSWORD);
        await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: `w-${role}`, displayName: `W ${role}`, email: null, role, passwordHash: hash }));
        sessions.set(role, await signIn(t, `w-${role}`, PASSWORD));
      }
    });
    afterAll(async () => {
      await t?.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('GV-08 the written policy is generated from the configuration in force: the profile’s rules per group, the roles, the filtering policies, change control', async () => {
      const doc = (await api(sessions.get('pupil')!, '/api/policy-document')).body;
      expect(doc.title).toBe('Springfield Primary: technical-security policy');
      const section = (h: string) => doc.sections.find((s: any) => s.heading === h);
      const signIn = section('3. Signing in and passwords').table;
      expect(signIn.columns).toEqual(['Rule', ...groups.map((g) => g[0]!.toUpperCase() + g.slice(1))]);
      expect(signIn.columns).toContain('Pupils');
      const lockout = signIn.rows.find((r: string[]) => r[0] === 'Lockout');
      const p = t.runtime.profile.groups.staff.lockout;
      expect(lockout[1 + groups.indexOf('staff')]).toEqual(p.after === null ? 'never' : expect.stringContaining(`after ${p.after} failures`));
      expect(section('2. Roles and responsibilities').table.rows).toContainEqual(['Designated safeguarding lead (DSL)', 'NOT NAMED']);
      const filtering = section('4. Internet filtering').table.rows.find((r: string[]) => r[0] === 'Pupils');
      expect(filtering[1]).toContain('gambling');
      expect(section('4.1 Lists in use').paragraphs[0]).toContain('NO ILLEGAL-CONTENT LIST IS IN USE');
      expect(section('5. Changes to the filtering').paragraphs[0]).toContain(`(Senior leader)`);
      expect(section('5. Changes to the filtering').paragraphs[1]).toContain(`at most ${t.runtime.profile.governance.lessonAllowanceMaxMinutes} minutes`);
      const roles = section('2.1 What each role may do in Gatehouse').table.rows;
      expect(roles.find((r: string[]) => r[0] === 'Governor')[1]).toContain('See where the school stands');
      expect(roles.find((r: string[]) => r[0] === 'Pupil')[1]).not.toContain('Change');
      expect(doc.version.number).toBe(1);
      // The PDF says the same.
      const pdf = await api(sessions.get('pupil')!, '/api/policy-document/pdf');
      expect(pdf.status).toBe(200);
      const text = pdfText(pdf.raw);
      expect(text).toContain('technical-security policy');
      expect(text).toContain('version 1');
      expect(text).toMatch(/Designated safeguarding lead \(DSL\)\s+NOT NAMED/);
    });

    it('GV-08 a change of configuration makes a new version, and the change shows as a diff against the one before; reading again changes nothing', async () => {
      const head = sessions.get('senior_leader')!;
      const first = (await api(head, '/api/compliance/policy-document/changes')).body;
      expect(first.versions.map((v: any) => v.number)).toEqual([1]);
      expect((await api(admin, '/api/school/contacts/dsl', 'PUT', { name: 'Jane Doe', email: 'jane@springfield.sch.uk' })).status).toBe(200);
      const changes = (await api(head, '/api/compliance/policy-document/changes')).body;
      expect(changes.versions.map((v: any) => v.number)).toEqual([2, 1]);
      expect(changes).toMatchObject({ from: 1, to: 2 });
      expect(changes.diff.filter((l: any) => l.op !== ' ')).toEqual([
        { op: '-', text: '| Designated safeguarding lead (DSL) | NOT NAMED |' },
        { op: '+', text: '| Designated safeguarding lead (DSL) | Jane Doe |' },
      ]);
      await api(head, '/api/policy-document');
      expect((await api(head, '/api/compliance/policy-document/changes')).body.versions.length).toBe(2);
      const events = await t.runtime.db.kysely.selectFrom('audit_event').select(['target']).where('action', '=', 'compliance.policy_document_changed').orderBy('seq').execute();
      expect(events.map((e) => e.target)).toEqual(['policy_document:1', 'policy_document:2']);
      expect((await api(head, '/api/compliance/policy-document/changes?from=1&to=9')).status).toBe(404);
    });

    it('GV-08 attack: twenty people opening the policy at once after a change record one new version, not twenty', async () => {
      expect((await api(admin, '/api/school/contacts/dpo', 'PUT', { name: 'Derek Data', email: 'dpo@springfield.sch.uk' })).status).toBe(200);
      const reads = await Promise.all(Array.from({ length: 20 }, () => api(sessions.get('pupil')!, '/api/policy-document')));
      expect(reads.every((r) => r.status === 200)).toBe(true);
      expect(new Set(reads.map((r) => r.body.version.number))).toEqual(new Set([3]));
      const versions = await t.runtime.db.kysely.selectFrom('policy_document_version').select('number').orderBy('number').execute();
      expect(versions.map((v) => v.number)).toEqual([1, 2, 3]);
    });

    it('GV-08 the governors’ report PDF says where the school stands, what changed this term and what needs a decision; pupils may not have it', async () => {
      const governor = sessions.get('governor')!;
      const r = await api(governor, '/api/compliance/governors-report/pdf?period=2026-09-01');
      expect(r.status).toBe(200);
      const text = pdfText(r.raw);
      expect(text).toContain('Governors’ report: Autumn term 2026');
      expect(text).toContain('Where the school stands');
      expect(text).toMatch(/Cyber Essentials v3\.3\s+\d+\s+\d+\s+\d+\s+12/);
      expect(text).toContain('What changed in Autumn term 2026');
      expect(text).toMatch(/Technical-security policy document changed:\s*3/);
      expect(text).toContain('What needs a decision or action');
      // The illegal-content list is missing: a clause not met, named with why.
      expect(text).toMatch(/illegal/i);
      expect((await api(sessions.get('pupil')!, '/api/compliance/governors-report/pdf')).status).toBe(403);
      expect((await api(sessions.get('pupil')!, '/api/compliance/policy-document/changes')).status).toBe(403);
      expect((await api(governor, '/api/compliance/governors-report/pdf?period=2019-01-01')).status).toBe(400);
    });
  });
}
