import { afterEach, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

async function person(t: TestApp, username: string, role: Role, displayName: string, extra: { email?: string; externalId?: string; givenName?: string; familyName?: string } = {}): Promise<string> {
  return t.runtime.trail.transaction(systemActor('test'), (ctx) =>
    createAccount(ctx, { username, displayName, email: extra.email ?? null, role, passwordHash: null, externalId: extra.externalId ?? null, givenName: extra.givenName ?? null, familyName: extra.familyName ?? null }),
  );
}

for (const dialect of await dialects()) {
  describe(`directory (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    afterEach(async () => {
      await t?.close();
    });

    async function school() {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      const amy = await person(t, 'amy.p', 'pupil', 'Amy Pond', { externalId: 'UPN-A123', givenName: 'Amy', familyName: 'Pond' });
      const rory = await person(t, 'rory.w', 'pupil', 'Rory Williams', { email: 'rory@pupils.example' });
      const smith = await person(t, 'jsmith', 'staff', 'John Smith', { email: 'jsmith@school.example' });
      const post = (url: string, payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url, headers: admin.headers, payload });
      const put = (url: string, payload: Record<string, unknown>) => t.app.inject({ method: 'PUT', url, headers: admin.headers, payload });
      const y7 = (await post('/api/groups', { name: 'Year 7', kind: 'year' })).json().id as string;
      const c7a = (await post('/api/groups', { name: '7A', kind: 'class' })).json().id as string;
      for (const id of [amy, rory]) expect((await put(`/api/groups/${y7}/members/${id}`, { role: 'member' })).statusCode).toBe(204);
      await put(`/api/groups/${c7a}/members/${amy}`, { role: 'member' });
      await put(`/api/groups/${c7a}/members/${smith}`, { role: 'teacher' });
      return { amy, rory, smith, y7, c7a };
    }

    const list = async (query: string) => {
      const r = await t.app.inject({ method: 'GET', url: `/api/accounts?${query}`, headers: admin.headers });
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as { accounts: Array<{ username: string; groups: Array<{ name: string; role: string }> }>; total: number };
    };

    it('AC-12 keeps a record of people and usernames with their groups, searchable and filterable', async () => {
      const { c7a } = await school();
      const pupils = await list('role=pupil');
      expect(pupils.accounts.map((a) => a.username)).toEqual(['amy.p', 'rory.w']);
      expect(pupils.accounts[0]!.groups.map((g) => g.name)).toEqual(['7A', 'Year 7']);
      expect((await list(`group=${c7a}`)).accounts.map((a) => [a.username, a.groups.find((g) => g.name === '7A')?.role])).toEqual([
        ['amy.p', 'member'],
        ['jsmith', 'teacher'],
      ]);
      expect((await list('q=rory%40pupils')).accounts.map((a) => a.username)).toEqual(['rory.w']);
      expect((await list('q=UPN-A123')).accounts.map((a) => a.username)).toEqual(['amy.p']);
      const page = await list('limit=1&offset=1');
      expect(page.accounts).toHaveLength(1);
      expect(page.total).toBe(4);
      const bad = await t.app.inject({ method: 'GET', url: '/api/accounts?status=gone&role=wizard', headers: admin.headers });
      expect(bad.statusCode).toBe(400);

      const groups = await t.app.inject({ method: 'GET', url: '/api/groups', headers: admin.headers });
      expect(groups.json().groups.map((g: { name: string; members: number; teachers: number }) => [g.name, g.members, g.teachers])).toEqual([
        ['7A', 1, 1],
        ['Year 7', 2, 0],
      ]);
    });

    it('AC-12 exports the directory to CSV, neutralising spreadsheet formulas, and records the export', async () => {
      const { rory } = await school();
      await t.app.inject({ method: 'PATCH', url: `/api/accounts/${rory}`, headers: admin.headers, payload: { displayName: '=HYPERLINK("http://evil")' } });
      const r = await t.app.inject({ method: 'GET', url: '/api/directory/export.csv?role=pupil', headers: admin.headers });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toContain('text/csv');
      expect(r.headers['content-disposition']).toContain('gatehouse-directory-2026-09-07.csv');
      const lines = r.body.replace(/^\uFEFF/, '').trim().split('\r\n');
      expect(lines[0]).toBe('username,display_name,given_name,family_name,email,role,status,groups,teaches,administrator_account,linked_to,external_id,source,created_at,left_at');
      expect(lines.find((l) => l.startsWith('amy.p'))).toMatch(/^amy\.p,Amy Pond,Amy,Pond,,Pupil,active,7A; Year 7,,,,UPN-A123,manual,/);
      expect(lines.find((l) => l.startsWith('rory.w'))).toContain(`"'=HYPERLINK(""http://evil"")"`);
      const audit = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'directory.exported').executeTakeFirstOrThrow();
      expect(JSON.parse(audit.body).details.rows).toBe(2);
    });

    it('AC-12 keeps names and e-mail up to date, audited; a leaver’s status cannot be flipped back', async () => {
      const { amy } = await school();
      const r = await t.app.inject({ method: 'PATCH', url: `/api/accounts/${amy}`, headers: admin.headers, payload: { familyName: 'Williams', displayName: 'Amy Williams', email: 'not-an-email' } });
      expect(r.statusCode).toBe(400);
      const ok = await t.app.inject({ method: 'PATCH', url: `/api/accounts/${amy}`, headers: admin.headers, payload: { familyName: 'Williams', displayName: 'Amy Williams' } });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ displayName: 'Amy Williams', familyName: 'Williams', givenName: 'Amy' });
      const event = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'account.details_changed').executeTakeFirstOrThrow();
      expect(JSON.parse(event.body).details.changes.familyName).toEqual({ from: 'Pond', to: 'Williams' });
      await t.runtime.db.kysely.updateTable('account').set({ status: 'left' }).where('id', '=', amy).execute();
      const back = await t.app.inject({ method: 'PATCH', url: `/api/accounts/${amy}`, headers: admin.headers, payload: { status: 'active' } });
      expect(back.json().error.code).toBe('account_left');
    });

    it('AC-01 groups and memberships change only through audited actions, with clear errors', async () => {
      const { y7, amy, c7a } = await school();
      const bad = await t.app.inject({ method: 'POST', url: '/api/groups', headers: admin.headers, payload: { name: '', kind: 'house' } });
      expect(bad.statusCode).toBe(400);
      expect(JSON.stringify(bad.json().error)).toContain('year, class, department, other');
      expect((await t.app.inject({ method: 'PATCH', url: `/api/groups/${y7}`, headers: admin.headers, payload: { name: 'Year Seven' } })).json().name).toBe('Year Seven');
      expect((await t.app.inject({ method: 'DELETE', url: `/api/groups/${c7a}/members/${amy}`, headers: admin.headers })).statusCode).toBe(204);
      expect((await t.app.inject({ method: 'DELETE', url: `/api/groups/${c7a}/members/${amy}`, headers: admin.headers })).statusCode).toBe(404);
      const members = await t.app.inject({ method: 'GET', url: `/api/groups/${c7a}/members`, headers: admin.headers });
      expect(members.json().members.map((m: { username: string; memberRole: string }) => [m.username, m.memberRole])).toEqual([['jsmith', 'teacher']]);
      expect((await t.app.inject({ method: 'DELETE', url: `/api/groups/${c7a}`, headers: admin.headers })).statusCode).toBe(204);
      const actions = (await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', 'like', 'group.%').orderBy('seq').execute()).map((r) => r.action);
      expect(actions).toEqual(['group.created', 'group.created', 'group.member_added', 'group.member_added', 'group.member_added', 'group.member_added', 'group.changed', 'group.member_removed', 'group.deleted']);
    });

    it('PW-03 a password may not contain the family name the directory records', async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      await person(t, 'amy.p', 'staff', 'Amy', { familyName: 'Pondsworth' });
      const account = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', 'amy.p').executeTakeFirstOrThrow();
      const { checkPassword } = await import('../../src/identity/password-rules.js');
      const { contextFor } = await import('../../src/identity/password-change.js');
      const { settingsFor } = await import('../../src/identity/policy.js');
      const rules = checkPassword(settingsFor(t.runtime.profile, 'staff'), 'mister-pondsworth-rides-again', contextFor(account));
      expect(rules.find((r) => r.requirement === 'PW-03')?.ok).toBe(false);
    });
  });
}
