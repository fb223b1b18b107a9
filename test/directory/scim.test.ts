import { afterEach, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import { systemActor } from '../../src/core/context.js';
import { hashToken } from '../../src/core/ids.js';
import { createGroup } from '../../src/directory/groups.js';
import { createAccount } from '../../src/identity/service.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { ENTERPRISE, ERROR, GROUP, LIST, PATCH_OP, USER, entraUser as entraUserBase, patch } from '../helpers/scim.js';
import { approveAsSeniorLeader, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * SCIM 2.0 driven the way Microsoft Entra ID's provisioning service drives it: the requests below
 * follow the shapes Entra sends (capitalised ops, "False" as a string, Replace without a path,
 * `emails[type eq "work"].value`, group membership as Add/Remove of `members`).
 */

const PASSWORD = 'Violet-Harbour-Lantern-7';

/** A user as Entra ID's POST /Users sends it (with the meta and empty roles Entra adds). */
const entraUser = (userName: string, externalId: string, extra: Record<string, unknown> = {}) =>
  entraUserBase(userName, externalId, { meta: { resourceType: 'User' }, roles: [], ...extra });

async function events(t: TestApp, action: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['actor', 'action', 'severity', 'target', 'body']).where('action', '=', action).orderBy('seq').execute();
  return rows.map((r) => ({ actor: r.actor, severity: r.severity, target: r.target, actorId: parseBody(r.body).actorId, details: parseBody(r.body).details as Record<string, unknown> }));
}

const available = await dialects();

for (const dialect of available) {
  describe(`SCIM 2.0 provisioning as Entra ID drives it (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    let bearer: string;

    afterEach(async () => {
      await t?.close();
    });

    async function start(role = 'staff') {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      bearer = await makeToken('Entra ID', role);
    }

    async function makeToken(name: string, role: string): Promise<string> {
      const response = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name, role } });
      expect(response.statusCode, response.body).toBe(201);
      return response.json().secret as string;
    }

    function scim(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, token: string | null = bearer) {
      return t.app.inject({
        method,
        url: `/scim/v2${url}`,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          accept: 'application/scim+json',
          ...(body !== undefined ? { 'content-type': 'application/scim+json; charset=utf-8' } : {}),
        },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
    }

    const filter = (expression: string) => `filter=${encodeURIComponent(expression)}`;

    async function account(id: string) {
      return t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    }

    it('AC-12 answers the discovery endpoints in application/scim+json', async () => {
      await start();
      const config = await scim('GET', '/ServiceProviderConfig');
      expect(config.statusCode).toBe(200);
      expect(config.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(config.json()).toMatchObject({ patch: { supported: true }, filter: { supported: true, maxResults: 200 }, bulk: { supported: false }, authenticationSchemes: [{ type: 'oauthbearertoken' }] });
      const types = (await scim('GET', '/ResourceTypes')).json();
      expect(types.schemas).toEqual([LIST]);
      expect(types.Resources.map((r: { name: string; endpoint: string }) => [r.name, r.endpoint])).toEqual([['User', '/Users'], ['Group', '/Groups']]);
      const schemas = (await scim('GET', '/Schemas')).json();
      expect(schemas.Resources.map((s: { id: string }) => s.id)).toEqual([USER, GROUP]);
      const userName = schemas.Resources[0].attributes.find((a: { name: string }) => a.name === 'userName');
      expect(userName).toMatchObject({ required: true, uniqueness: 'server' });
      expect((await scim('GET', `/Schemas/${USER}`)).json().name).toBe('User');
      // Every SCIM route is guarded by the bearer token (and so checked by the route-authorization test).
      const scimRoutes = [...t.app.routeAccess.entries()].filter(([route]) => route.includes(' /scim/v2/'));
      expect(scimRoutes.length).toBeGreaterThanOrEqual(14);
      expect(scimRoutes.every(([, access]) => access === 'scim')).toBe(true);
      const missing = await scim('GET', '/Nothing');
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ schemas: [ERROR], status: '404' });
    });

    it('AC-12 provisions a person as Entra ID does: empty match, create, find by externalId, PATCH Replace (with and without a path), Add and Remove', async () => {
      await start();
      // 1. Is there already such a user? An empty ListResponse, not a 404.
      const none = await scim('GET', `/Users?${filter('userName eq "Test_User_ab6490ee"')}`);
      expect(none.statusCode).toBe(200);
      expect(none.json()).toEqual({ schemas: [LIST], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });

      // 2. Create.
      const created = await scim('POST', '/Users', entraUser('Test_User_ab6490ee', '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef', { title: 'Teacher', [ENTERPRISE]: { department: 'Maths', employeeNumber: '7' } }));
      expect(created.statusCode, created.body).toBe(201);
      const user = created.json();
      expect(user).toMatchObject({
        schemas: [USER],
        externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
        userName: 'test_user_ab6490ee',
        name: { givenName: 'Jane', familyName: 'Bloggs' },
        displayName: 'Jane Bloggs',
        emails: [{ value: 'test_user_ab6490ee@school.example', type: 'work', primary: true }],
        active: true,
        meta: { resourceType: 'User', location: `/scim/v2/Users/${user.id}` },
      });
      expect(created.headers.location).toBe(user.meta.location);
      const row = await account(user.id);
      expect(row).toMatchObject({ username: 'test_user_ab6490ee', source: 'scim', role: 'staff', status: 'active', password_hash: null, given_name: 'Jane', family_name: 'Bloggs', external_id: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef' });

      // 3. Find it again by externalId, by userName (any case) and by work e-mail.
      for (const expression of ['externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"', 'userName eq "TEST_USER_AB6490EE"', 'emails[type eq "work"].value eq "test_user_ab6490ee@school.example"']) {
        const found = (await scim('GET', `/Users?${filter(expression)}`)).json();
        expect(found.totalResults, expression).toBe(1);
        expect(found.Resources[0].id).toBe(user.id);
      }
      expect((await scim('GET', `/Users/${user.id}`)).json().userName).toBe('test_user_ab6490ee');

      // 4. Replace with paths, as Entra sends attribute changes.
      let patched = await scim('PATCH', `/Users/${user.id}`, patch(
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'jane.bloggs@school.example' },
        { op: 'Replace', path: 'name.familyName', value: 'Bloggs-Smith' },
        { op: 'Replace', path: 'title', value: 'Teacher of Maths' },
        // Attributes Gatehouse does not keep, enterprise or custom, are accepted and ignored.
        { op: 'Add', path: `${ENTERPRISE}:employeeNumber`, value: '42' },
        { op: 'Replace', path: 'urn:ietf:params:scim:schemas:extension:custom:2.0:User:worksiteId', value: '180' },
        { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '07700 900000' },
      ));
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({ emails: [{ value: 'jane.bloggs@school.example' }], name: { familyName: 'Bloggs-Smith' } });

      // 5. Replace without a path: an object of attributes, dotted names allowed.
      patched = await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', value: { displayName: 'Mrs J Bloggs-Smith', 'name.givenName': 'Janet', externalId: 'entra-0001' } }));
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({ displayName: 'Mrs J Bloggs-Smith', name: { givenName: 'Janet' }, externalId: 'entra-0001' });

      // 6. Add (Entra sends Add for an attribute that was empty) and Remove.
      patched = await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Remove', path: 'name.familyName' }, { op: 'Add', path: 'emails[type eq "work"].value', value: 'janet@school.example' }));
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json().name.familyName).toBeUndefined();
      expect(patched.json().emails).toEqual([{ value: 'janet@school.example', type: 'work', primary: true }]);
      patched = await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Add', path: 'name.familyName', value: 'Smith' }, { op: 'Replace', path: 'userName', value: 'Janet.Smith' }));
      expect(patched.json()).toMatchObject({ userName: 'janet.smith', name: { familyName: 'Smith' } });
      expect(await account(user.id)).toMatchObject({ username: 'janet.smith', display_name: 'Mrs J Bloggs-Smith', given_name: 'Janet', family_name: 'Smith', email: 'janet@school.example', external_id: 'entra-0001' });
      expect((await scim('GET', `/Users?${filter('externalId eq "entra-0001"')}`)).json().totalResults).toBe(1);
      expect((await scim('GET', `/Users?${filter('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')}`)).json().totalResults).toBe(0);
    });

    it('AU-02 records every SCIM change with the token’s name as the actor, and no personal details', async () => {
      await start();
      const user = (await scim('POST', '/Users', entraUser('jbloggs', 'ext-1'))).json();
      await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', path: 'name.familyName', value: 'Smith' }, { op: 'Replace', path: 'active', value: 'False' }));
      const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Year 7', externalId: 'g-7' })).json();
      await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: user.id }] }));
      await scim('DELETE', `/Users/${user.id}`);
      const createdEvent = (await events(t, 'account.created')).find((e) => e.target === `account:${user.id}`);
      expect(createdEvent).toMatchObject({ actor: 'scim:Entra ID', actorId: null, target: `account:${user.id}`, details: { username: 'jbloggs', role: 'staff', source: 'scim', externalId: 'ext-1' } });
      const [changed] = await events(t, 'account.changed');
      expect(changed).toMatchObject({ actor: 'scim:Entra ID', severity: 'notice', details: { via: 'scim', updated: ['familyName'], changes: { status: { from: 'active', to: 'disabled' } } } });
      expect(JSON.stringify(changed!.details)).not.toContain('Smith');
      expect((await events(t, 'group.created'))[0]).toMatchObject({ actor: 'scim:Entra ID', details: { name: 'Year 7', source: 'scim' } });
      expect((await events(t, 'group.member_added'))[0]).toMatchObject({ actor: 'scim:Entra ID', details: { accountId: user.id } });
      expect((await events(t, 'account.left'))[0]).toMatchObject({ actor: 'scim:Entra ID', actorId: null, severity: 'notice', details: { username: 'jbloggs' } });
      // The token's own life is audited too, by the administrator who made it.
      expect((await events(t, 'scim.token_created'))[0]).toMatchObject({ actor: 'master', details: { name: 'Entra ID', defaultRole: 'staff' } });
    });

    it('AC-01 gives the token’s default role, or the granted role userType names (Student → pupil, Teacher → staff); others and administrator are refused', async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      const made = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Entra ID', roles: ['pupil', 'staff'] } });
      expect(made.statusCode, made.body).toBe(201);
      bearer = made.json().secret as string;
      const plain = (await scim('POST', '/Users', entraUser('plain.pupil', 'e-1'))).json();
      const teacher = (await scim('POST', '/Users', entraUser('mr.teacher', 'e-2', { userType: 'Teacher' }))).json();
      const student = (await scim('POST', '/Users', entraUser('a.student', 'e-3', { userType: 'Student' }))).json();
      const member = (await scim('POST', '/Users', entraUser('a.member', 'e-4', { userType: 'Member' }))).json();
      expect((await account(plain.id)).role).toBe('pupil');
      expect((await account(teacher.id)).role).toBe('staff');
      expect((await account(student.id)).role).toBe('pupil');
      // Entra's own userType (Member, Guest…) names no Gatehouse role: the default role, recorded.
      expect((await account(member.id)).role).toBe('pupil');
      expect(teacher.userType).toBe('Staff');
      const leader = await scim('POST', '/Users', entraUser('head', 'e-5', { userType: 'Senior leader' }));
      expect(leader.statusCode).toBe(403);
      const sneaky = await scim('POST', '/Users', entraUser('not.an.admin', 'e-6', { userType: 'Administrator' }));
      expect(sneaky.statusCode).toBe(403);
      expect(sneaky.json().detail).toMatch(/never makes an administrator/);

      // A later change of userType within the grant changes the role (and ends sessions); administrator is never given.
      let response = await scim('PATCH', `/Users/${student.id}`, patch({ op: 'Replace', path: 'userType', value: 'Staff' }));
      expect(response.statusCode).toBe(200);
      expect((await account(student.id)).role).toBe('staff');
      response = await scim('PATCH', `/Users/${student.id}`, patch({ op: 'Replace', path: 'userType', value: 'administrator' }));
      expect(response.statusCode).toBe(403);
      expect((await account(student.id)).role).toBe('staff');
      expect((await events(t, 'account.changed'))[0]!.details).toMatchObject({ changes: { role: { from: 'pupil', to: 'staff' } } });
      // Each refusal is recorded as a warning.
      const refusals = await events(t, 'scim.refused');
      expect(refusals.map((r) => [r.severity, r.target, r.details.reason, r.details.userType])).toEqual([
        ['warning', 'username:head', 'role_not_granted', 'Senior leader'],
        ['warning', 'username:not.an.admin', 'administrator', 'Administrator'],
        ['warning', `account:${student.id}`, 'administrator', 'administrator'],
      ]);

      // A token can never carry the administrator role.
      const refused = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Sneaky', role: 'administrator' } });
      expect(refused.statusCode).toBe(400);
    });

    it('AC-12 deactivating (PATCH active "False") disables the account, ends its sessions and refuses sign-in; "True" restores it', async () => {
      await start();
      const user = (await scim('POST', '/Users', entraUser('jbloggs', 'ext-1'))).json();
      await t.runtime.db.kysely.updateTable('account').set({ password_hash: await t.runtime.hasher.hash(PASSWORD), password_set_at: t.clock.now().toISOString() }).where('id', '=', user.id).execute();
      const session = await signIn(t, 'jbloggs', PASSWORD);
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: { cookie: session.cookie } })).statusCode).toBe(200);

      const response = await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', path: 'active', value: 'False' }));
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().active).toBe(false);
      expect((await account(user.id)).status).toBe('disabled');
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: { cookie: session.cookie } })).statusCode).toBe(401);
      const sessions = await t.runtime.db.kysely.selectFrom('session').select(['ended_at', 'end_reason']).where('account_id', '=', user.id).execute();
      expect(sessions).toEqual([{ ended_at: expect.any(String), end_reason: 'account_disabled' }]);
      const attempt = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'jbloggs', password: PASSWORD } });
      expect(attempt.statusCode).toBe(401);
      expect((await events(t, 'account.changed'))[0]!.details).toMatchObject({ sessionsEnded: 1 });
      // Entra still sees the disabled user (active false), and can enable it again.
      expect((await scim('GET', `/Users?${filter('userName eq "jbloggs"')}`)).json().Resources[0].active).toBe(false);
      const enabled = await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', value: { active: 'True' } }));
      expect(enabled.json().active).toBe(true);
      expect((await t.app.inject({ method: 'POST', url: '/api/session', payload: { username: 'jbloggs', password: PASSWORD } })).statusCode).toBe(200);
    });

    it('AC-12 DELETE marks the person as left: sessions end and SCIM no longer sees them', async () => {
      await start();
      const user = (await scim('POST', '/Users', entraUser('leaver', 'ext-9'))).json();
      await t.runtime.db.kysely.updateTable('account').set({ password_hash: await t.runtime.hasher.hash(PASSWORD), password_set_at: t.clock.now().toISOString() }).where('id', '=', user.id).execute();
      const session = await signIn(t, 'leaver', PASSWORD);
      t.clock.advance(60_000);
      const deleted = await scim('DELETE', `/Users/${user.id}`);
      expect(deleted.statusCode).toBe(204);
      expect(await account(user.id)).toMatchObject({ status: 'left', left_at: t.clock.now().toISOString() });
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: { cookie: session.cookie } })).statusCode).toBe(401);
      const gone = await scim('GET', `/Users/${user.id}`);
      expect(gone.statusCode).toBe(404);
      expect(gone.json()).toMatchObject({ schemas: [ERROR], status: '404' });
      expect((await scim('GET', `/Users?${filter('userName eq "leaver"')}`)).json().totalResults).toBe(0);
      expect((await scim('DELETE', `/Users/${user.id}`)).statusCode).toBe(404);
      expect((await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', path: 'active', value: true }))).statusCode).toBe(404);
    });

    it('AC-13 DELETE starts the leaver checklist; a person with a linked administrator account is refused, for an administrator to close both', async () => {
      await start();
      const leaver = (await scim('POST', '/Users', entraUser('a.teacher', 'ext-11'))).json();
      expect((await scim('DELETE', `/Users/${leaver.id}`)).statusCode).toBe(204);
      const checklist = await t.runtime.db.kysely.selectFrom('leaver_checklist').selectAll().where('account_id', '=', leaver.id).executeTakeFirstOrThrow();
      expect(checklist.started_by).toBe('scim:Entra ID');
      expect((await events(t, 'account.left'))[0]).toMatchObject({ actor: 'scim:Entra ID', details: { username: 'a.teacher' } });

      const user = (await scim('POST', '/Users', entraUser('it.tech', 'ext-10'))).json();
      const adminId = await t.runtime.trail.transaction(systemActor('test'), (ctx) =>
        createAccount(ctx, { username: 'it.tech.admin', displayName: 'IT Tech (administrator)', email: null, role: 'administrator', passwordHash: null, linkedAccountId: user.id }),
      );
      // Disabling first: the administrator account is out of SCIM's reach, so the trail says so loudly.
      await scim('PATCH', `/Users/${user.id}`, patch({ op: 'Replace', path: 'active', value: 'False' }));
      expect((await events(t, 'account.changed'))[0]).toMatchObject({ severity: 'warning', details: { linkedAdministratorAccount: { id: adminId, username: 'it.tech.admin', stillActive: true } } });
      expect((await account(adminId)).status).toBe('active');
      const refused = await scim('DELETE', `/Users/${user.id}`);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().detail).toMatch(/administrator account linked/);
      expect((await account(adminId)).status).toBe('active');
      expect((await account(user.id)).status).toBe('disabled');
      expect((await events(t, 'scim.refused'))[0]).toMatchObject({ actor: 'scim:Entra ID', severity: 'warning', details: { reason: 'linked_administrator', username: 'it.tech' } });
    });

    it('AC-12 groups as Entra ID drives them: create, find by displayName without members, PATCH Add/Remove members, rename, delete', async () => {
      await start();
      const a = (await scim('POST', '/Users', entraUser('pupil.a', 'u-a'))).json();
      const b = (await scim('POST', '/Users', entraUser('pupil.b', 'u-b'))).json();
      const c = (await scim('POST', '/Users', entraUser('pupil.c', 'u-c'))).json();
      expect((await scim('GET', `/Groups?excludedAttributes=members&${filter('displayName eq "Year 7"')}`)).json().totalResults).toBe(0);
      const created = await scim('POST', '/Groups', { schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'], externalId: '8aa1a0c0-c4c3', displayName: 'Year 7', meta: { resourceType: 'Group' } });
      expect(created.statusCode, created.body).toBe(201);
      const group = created.json();
      expect(group).toMatchObject({ schemas: [GROUP], displayName: 'Year 7', externalId: '8aa1a0c0-c4c3', members: [] });
      expect(await t.runtime.db.kysely.selectFrom('directory_group').selectAll().where('id', '=', group.id).executeTakeFirstOrThrow()).toMatchObject({ source: 'scim', kind: 'other', external_id: '8aa1a0c0-c4c3' });

      const found = (await scim('GET', `/Groups?excludedAttributes=members&${filter('displayName eq "year 7"')}`)).json();
      expect(found.totalResults).toBe(1);
      expect(found.Resources[0]).toEqual({ schemas: [GROUP], id: group.id, externalId: '8aa1a0c0-c4c3', displayName: 'Year 7', meta: expect.objectContaining({ resourceType: 'Group' }) });
      expect((await scim('GET', `/Groups/${group.id}?excludedAttributes=members`)).json().members).toBeUndefined();

      let response = await scim('PATCH', `/Groups/${group.id}`, patch({ name: 'addMember', op: 'Add', path: 'members', value: [{ displayName: 'Pupil A', value: a.id }, { displayName: 'Pupil B', value: b.id }] }));
      expect(response.statusCode, response.body).toBe(204);
      response = await scim('PATCH', `/Groups/${group.id}`, patch({ name: 'addMember', op: 'Add', path: 'members', value: [{ value: c.id }] }));
      expect(response.statusCode).toBe(204);
      let members = (await scim('GET', `/Groups/${group.id}`)).json().members.map((m: { value: string }) => m.value);
      expect(members.sort()).toEqual([a.id, b.id, c.id].sort());
      const roles = await t.runtime.db.kysely.selectFrom('group_member').select('member_role').where('group_id', '=', group.id).execute();
      expect(roles.every((r) => r.member_role === 'member')).toBe(true);
      expect((await scim('GET', `/Users/${a.id}`)).json().groups).toEqual([expect.objectContaining({ value: group.id, display: 'Year 7' })]);
      expect((await scim('GET', `/Groups?${filter(`members[value eq "${a.id}"]`)}`)).json().totalResults).toBe(1);

      response = await scim('PATCH', `/Groups/${group.id}`, patch({ name: 'removeMember', op: 'Remove', path: 'members', value: [{ value: a.id }] }));
      expect(response.statusCode).toBe(204);
      response = await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Remove', path: `members[value eq "${b.id}"]` }));
      expect(response.statusCode).toBe(204);
      members = (await scim('GET', `/Groups/${group.id}`)).json().members.map((m: { value: string }) => m.value);
      expect(members).toEqual([c.id]);
      expect((await events(t, 'group.member_removed')).map((e) => e.details.accountId)).toEqual([a.id, b.id]);

      // Adding someone SCIM cannot see (here: no such user) is refused and changes nothing.
      response = await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: a.id }, { value: '00000000-0000-4000-8000-000000000000' }] }));
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidValue' });
      expect((await scim('GET', `/Groups/${group.id}`)).json().members).toHaveLength(1);

      response = await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Replace', path: 'displayName', value: 'Year 7 (2026)' }));
      expect(response.statusCode).toBe(204);
      expect((await scim('GET', `/Groups?${filter('externalId eq "8aa1a0c0-c4c3"')}`)).json().Resources[0].displayName).toBe('Year 7 (2026)');

      expect((await scim('DELETE', `/Groups/${group.id}`)).statusCode).toBe(204);
      expect((await scim('GET', `/Groups/${group.id}`)).statusCode).toBe(404);
      expect((await account(c.id)).status).toBe('active');
    });

    it('AC-12 lists users a page at a time, in the order they were made', async () => {
      await start();
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) {
        ids.push((await scim('POST', '/Users', entraUser(`person${i}`, `p-${i}`))).json().id);
        t.clock.advance(1_000);
      }
      const second = (await scim('GET', '/Users?startIndex=2&count=2')).json();
      expect(second).toMatchObject({ totalResults: 5, startIndex: 2, itemsPerPage: 2 });
      expect(second.Resources.map((r: { id: string }) => r.id)).toEqual(ids.slice(1, 3));
      const last = (await scim('GET', '/Users?startIndex=5&count=10')).json();
      expect(last.Resources.map((r: { id: string }) => r.id)).toEqual([ids[4]]);
      const counted = (await scim('GET', '/Users?count=0')).json();
      expect(counted).toMatchObject({ totalResults: 5, itemsPerPage: 0, Resources: [] });
      const slim = (await scim('GET', '/Users?attributes=userName&count=1')).json().Resources[0];
      expect(Object.keys(slim).sort()).toEqual(['id', 'schemas', 'userName']);
    });

    it('AC-12 refuses a clash with 409 uniqueness, a bad filter with 400 invalidFilter and a bad value with 400 invalidValue', async () => {
      await start();
      expect((await scim('POST', '/Users', entraUser('jbloggs', 'ext-1'))).statusCode).toBe(201);
      for (const body of [entraUser('JBloggs', 'ext-2'), entraUser('someone.else', 'ext-1')]) {
        const clash = await scim('POST', '/Users', body);
        expect(clash.statusCode).toBe(409);
        expect(clash.json()).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });
      }
      // The break-glass account's name is taken too, though SCIM cannot see it.
      expect((await scim('POST', '/Users', entraUser('master', 'ext-3'))).json()).toMatchObject({ status: '409', scimType: 'uniqueness' });
      const group = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Staff', externalId: 'g-1' });
      expect(group.statusCode).toBe(201);
      expect((await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Staff again', externalId: 'g-1' })).json()).toMatchObject({ status: '409', scimType: 'uniqueness' });

      for (const expression of ['userName co "j"', 'userName eq "a" or userName eq "b"', 'nickName eq "x"', 'userName eq', '(userName eq "x")', 'userName eq "unterminated']) {
        const bad = await scim('GET', `/Users?${filter(expression)}`);
        expect(bad.statusCode, expression).toBe(400);
        expect(bad.json(), expression).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidFilter' });
      }
      expect((await scim('GET', `/Users?${filter('userName eq "jbloggs" and active eq true')}`)).json().totalResults).toBe(1);

      const upn = await scim('POST', '/Users', entraUser('jane@school.example', 'ext-4', { emails: [{ primary: true, type: 'work', value: 'jane@school.example' }] }));
      expect(upn.statusCode).toBe(400);
      expect(upn.json()).toMatchObject({ scimType: 'invalidValue' });
      expect(upn.json().detail).toMatch(/mailNickname/);
      const email = await scim('POST', '/Users', { ...entraUser('jane', 'ext-5'), emails: [{ value: 'not-an-address', type: 'work' }] });
      expect(email.json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
      const noOp = await scim('PATCH', `/Users/${(await scim('GET', `/Users?${filter('userName eq "jbloggs"')}`)).json().Resources[0].id}`, patch({ op: 'Frobnicate', path: 'active', value: false }));
      expect(noOp.json()).toMatchObject({ status: '400', scimType: 'invalidSyntax' });
      const notJson = await t.app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/scim+json' }, payload: '{"userName": ' });
      expect(notJson.statusCode).toBe(400);
      expect(notJson.json()).toMatchObject({ schemas: [ERROR], status: '400' });
      // Plain application/json is accepted too.
      const plainJson = await t.app.inject({ method: 'POST', url: '/scim/v2/Users', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, payload: entraUser('plain.json', 'ext-6') });
      expect(plainJson.statusCode).toBe(201);
    });

    it('AC-01 SCIM never sees or touches administrator accounts or the break-glass account', async () => {
      await start();
      const master = await t.runtime.db.kysely.selectFrom('account').select('id').where('username', '=', 'master').executeTakeFirstOrThrow();
      const adminId = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'it.admin', displayName: 'IT Admin', email: null, role: 'administrator', passwordHash: null }));
      const all = (await scim('GET', '/Users')).json();
      expect(all.Resources.map((r: { userName: string }) => r.userName)).not.toContain('master');
      expect(all.totalResults).toBe(0);
      for (const id of [master.id, adminId]) {
        expect((await scim('GET', `/Users/${id}`)).statusCode).toBe(404);
        expect((await scim('PATCH', `/Users/${id}`, patch({ op: 'Replace', path: 'active', value: 'False' }))).statusCode).toBe(404);
        expect((await scim('PUT', `/Users/${id}`, entraUser('taken.over', 'x'))).statusCode).toBe(404);
        expect((await scim('DELETE', `/Users/${id}`)).statusCode).toBe(404);
      }
      const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Everyone' })).json();
      expect((await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: master.id }] }))).statusCode).toBe(400);
      expect(await account(master.id)).toMatchObject({ status: 'active', role: 'administrator' });
      expect(await account(adminId)).toMatchObject({ status: 'active', username: 'it.admin' });
      // A group made by hand in Gatehouse is not SCIM's either.
      const manualId = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createGroup(ctx, { name: 'Staff room', kind: 'department' }));
      expect((await scim('GET', `/Groups?${filter('displayName eq "Staff room"')}`)).json().totalResults).toBe(0);
      expect((await scim('GET', `/Groups/${manualId}`)).statusCode).toBe(404);
      expect((await scim('DELETE', `/Groups/${manualId}`)).statusCode).toBe(404);
    });

    it('AC-05 SCIM cannot see, delete or change a guest-pool account: a change is refused with the reason, and the visit goes on', async () => {
      await start();
      const pool = await t.app.inject({ method: 'POST', url: '/api/guests/pool', headers: admin.headers, payload: { count: 2 } });
      expect(pool.statusCode, pool.body).toBe(201);
      const visit = await t.app.inject({
        method: 'POST',
        url: '/api/guests/visits',
        headers: admin.headers,
        payload: { visitorName: 'Ada Lovelace', purpose: 'STEM workshop', host: 'Mr Babbage', expectedEnd: '15:00' },
      });
      expect(visit.statusCode, visit.body).toBe(201);
      const { slip } = visit.json() as { slip: { username: string; password: string } };
      const guest = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', slip.username).executeTakeFirstOrThrow();
      const free = await t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', 'guest-02').executeTakeFirstOrThrow();
      const visitor = await signIn(t, slip.username, slip.password);
      const trailLength = async () => Number((await t.runtime.db.kysely.selectFrom('audit_event').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const before = await trailLength();

      // Not SCIM's users: not listed, not found by name, not readable.
      expect((await scim('GET', '/Users')).json().totalResults).toBe(0);
      expect((await scim('GET', `/Users?${filter('userName eq "guest-01"')}`)).json().totalResults).toBe(0);
      expect((await scim('GET', `/Users/${guest.id}`)).statusCode).toBe(404);

      // A change is refused with why, in the SCIM error format; nothing changes.
      for (const id of [guest.id, free.id]) {
        for (const [method, body] of [
          ['DELETE', undefined],
          ['PATCH', patch({ op: 'Replace', path: 'active', value: 'False' })],
          ['PUT', entraUser('taken.over', 'ext-guest')],
        ] as const) {
          const r = await scim(method, `/Users/${id}`, body);
          expect(r.statusCode, `${method} ${r.body}`).toBe(403);
          expect(r.json()).toMatchObject({ schemas: [ERROR], status: '403' });
          expect(r.json().detail).toMatch(/guest-desk accounts.*Gatehouse's own.*guest desk/);
        }
      }
      expect(await account(guest.id)).toEqual(guest);
      expect(await account(free.id)).toEqual(free);
      expect((await t.runtime.db.kysely.selectFrom('guest_allocation').select('ended_at').executeTakeFirstOrThrow()).ended_at).toBeNull();
      expect((await t.app.inject({ method: 'GET', url: '/api/session', headers: visitor.headers })).statusCode).toBe(200);
      // Nothing changed; each attempt is in the trail as a refusal.
      expect(await trailLength()).toBe(before + 6);
      expect((await events(t, 'scim.refused')).map((e) => [e.target, e.details.reason])).toEqual(
        [guest.id, guest.id, guest.id, free.id, free.id, free.id].map((id) => [`account:${id}`, 'guest_desk']),
      );

      // Nor can SCIM take a guest-desk name, or put a guest-desk account in a group.
      const clash = await scim('POST', '/Users', entraUser('guest-02', 'ext-clash'));
      expect(clash.statusCode).toBe(409);
      expect(clash.json()).toMatchObject({ scimType: 'uniqueness', detail: expect.stringContaining('guest-desk accounts') });
      const person = (await scim('POST', '/Users', entraUser('jbloggs', 'ext-person'))).json();
      const rename = await scim('PATCH', `/Users/${person.id}`, patch({ op: 'Replace', path: 'userName', value: 'guest-01' }));
      expect(rename.statusCode).toBe(409);
      expect(rename.json().detail).toContain('guest-desk accounts');
      const group = (await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Visitors' })).json();
      expect((await scim('PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: guest.id }] }))).statusCode).toBe(400);

      // A guest the identity provider makes (with a token granted the guest role) is its own account, never one of the pool's.
      const guestsToken = await makeToken('Entra B2B', 'guest');
      const provisioned = await scim('POST', '/Users', entraUser('guest-03', 'ext-b2b', { userType: 'Guest' }), guestsToken);
      expect(provisioned.statusCode, provisioned.body).toBe(201);
      expect(await account(provisioned.json().id)).toMatchObject({ role: 'guest', source: 'scim' });
      const desk = (await t.app.inject({ method: 'GET', url: '/api/guests/pool', headers: admin.headers })).json() as { accounts: Array<{ username: string }> };
      expect(desk.accounts.map((a) => a.username)).toEqual(['guest-01', 'guest-02']);
    });

    it('AC-12 refuses a missing, wrong or revoked token with 401 in the SCIM error format; last use is noted at most once a minute', async () => {
      await start();
      for (const token of [null, 'gscim_not-a-real-token-at-all-000000000', `${bearer}x`]) {
        const response = await scim('GET', '/Users', undefined, token);
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({ schemas: [ERROR], status: '401' });
        expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
      }
      const withCookie = await t.app.inject({ method: 'GET', url: '/scim/v2/Users', headers: { cookie: admin.cookie } });
      expect(withCookie.statusCode).toBe(401);

      const row = async () => t.runtime.db.kysely.selectFrom('scim_token').selectAll().where('name', '=', 'Entra ID').executeTakeFirstOrThrow();
      expect((await row()).last_used_at).toBeNull();
      expect((await scim('GET', '/Users')).statusCode).toBe(200);
      const first = (await row()).last_used_at;
      expect(first).toBe(t.clock.now().toISOString());
      t.clock.advance(30_000);
      await scim('GET', '/Users');
      expect((await row()).last_used_at).toBe(first);
      t.clock.advance(31_000);
      await scim('GET', '/Users');
      expect((await row()).last_used_at).toBe(t.clock.now().toISOString());

      const id = (await row()).id;
      const revoked = await t.app.inject({ method: 'DELETE', url: `/api/scim/tokens/${id}`, headers: admin.headers });
      expect(revoked.statusCode).toBe(200);
      expect(revoked.json().revokedAt).toBe(t.clock.now().toISOString());
      const after = await scim('GET', '/Users');
      expect(after.statusCode).toBe(401);
      expect(after.json().detail).toMatch(/revoked/);
      expect((await events(t, 'scim.token_revoked'))[0]).toMatchObject({ actor: 'master', details: { name: 'Entra ID' } });
    });

    it('AC-12 a new token is shown once, stored only as its SHA-256, never listed and never logged', async () => {
      await start();
      const response = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Google', role: 'pupil' } });
      expect(response.statusCode).toBe(201);
      const { token, secret } = response.json();
      expect(secret).toMatch(/^gscim_[A-Za-z0-9_-]{43}$/);
      expect(token).toMatchObject({ name: 'Google', defaultRole: 'pupil', createdBy: 'master', lastUsedAt: null, revokedAt: null });
      const stored = await t.runtime.db.kysely.selectFrom('scim_token').selectAll().where('id', '=', token.id).executeTakeFirstOrThrow();
      expect(stored.token_hash).toBe(hashToken(secret));
      expect(JSON.stringify(stored)).not.toContain(secret);
      const listed = await t.app.inject({ method: 'GET', url: '/api/scim/tokens', headers: admin.headers });
      expect(listed.json().tokens.map((x: { name: string }) => x.name).sort()).toEqual(['Entra ID', 'Google']);
      expect(listed.body).not.toContain(secret);
      expect((await scim('GET', '/Users', undefined, secret)).statusCode).toBe(200);
      const audit = await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute();
      expect(audit.map((a) => a.body).join('\n')).not.toContain(secret);
      expect(t.logs.text).not.toContain(secret);
      expect(t.logs.text).not.toContain(bearer);
      // A second live token of the same name would make the trail ambiguous.
      expect((await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Google', role: 'staff' } })).statusCode).toBe(409);
    });

    it('AC-12 FI-05 a SCIM token opens only SCIM, and a filtering identity-API token only the identity API', async () => {
      await start();
      const made = await t.app.inject({ method: 'POST', url: '/api/filtering/identity-tokens', headers: admin.headers, payload: { name: 'Entra ID' } });
      // A change request (FI-06): made on a senior leader's approval, which shows the secret once.
      const identity = (await approveAsSeniorLeader(t, made)).secret!;
      expect(identity).toMatch(/^gfid_/);
      const identify = (token: string) => t.app.inject({ method: 'POST', url: '/api/filtering/identity', headers: { authorization: `Bearer ${token}` }, payload: { ip: '10.0.0.1', event: 'stop' } });
      expect((await identify(bearer)).statusCode).toBe(401);
      expect((await scim('GET', '/Users', undefined, identity)).statusCode).toBe(401);
      expect((await identify(identity)).statusCode).toBe(200);
      expect((await scim('GET', '/Users')).statusCode).toBe(200);
      // Each kind's trail under its own actions; the same name may be used by both kinds.
      expect((await events(t, 'scim.token_created')).map((e) => e.details)).toEqual([{ name: 'Entra ID', defaultRole: 'staff', roles: ['staff'], allowPrivileged: false, adoptExisting: false, source: 'Entra ID' }]);
      expect((await events(t, 'filtering.identity_token_created')).map((e) => [e.target, e.details])).toEqual([[`filter_identity_token:${(await t.runtime.db.kysely.selectFrom('filter_identity_token').select('id').where('name', '=', 'Entra ID').executeTakeFirstOrThrow()).id}`, { name: 'Entra ID' }]]);
    });

    if (dialect === 'sqlite') {
      it('AC-12 gatehouse scim token create / list / revoke from the command line', async () => {
        await start();
        const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
        const created = await runCli(['scim', 'token', 'create', '--name', 'Entra CLI', '--role', 'pupil'], env);
        expect(created.code, created.stderr).toBe(0);
        const secret = /gscim_[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
        expect(secret).toBeDefined();
        expect(created.stdout).toMatch(/shown only now/i);
        expect((await scim('GET', '/Users', undefined, secret!)).statusCode).toBe(200);
        const listed = await runCli(['scim', 'token', 'list'], env);
        expect(listed.code).toBe(0);
        expect(listed.stdout).toContain('Entra CLI');
        expect(listed.stdout).not.toContain(secret!);
        const id = (await t.runtime.db.kysely.selectFrom('scim_token').select('id').where('name', '=', 'Entra CLI').executeTakeFirstOrThrow()).id;
        const revoked = await runCli(['scim', 'token', 'revoke', id], env);
        expect(revoked.code, revoked.stderr).toBe(0);
        expect((await scim('GET', '/Users', undefined, secret!)).statusCode).toBe(401);
        expect((await events(t, 'scim.token_created')).at(-1)).toMatchObject({ actor: expect.stringMatching(/^cli:/), details: { name: 'Entra CLI' } });
      });
    }
  });
}
