import { Migrator } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/audit/trail.js';
import { parseBody } from '../../src/audit/chain.js';
import { ManualClock } from '../../src/core/clock.js';
import { systemActor } from '../../src/core/context.js';
import { hashToken } from '../../src/core/ids.js';
import { migrate } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { createGroup } from '../../src/directory/groups.js';
import { listUsers } from '../../src/directory/scim.js';
import { authenticateScimToken, grantedRoles } from '../../src/directory/scim-tokens.js';
import { createAccount } from '../../src/identity/service.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects } from '../helpers/databases.js';
import { ENTERPRISE, ERROR, GROUP, PATCH_OP, USER, entraUser, patch } from '../helpers/scim.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Finding 8 of issue 10: a SCIM token's reach. The three attacks as reported (a token with role
 * "pupil" created a senior leader, promoted a hand-made staff account to DSL, and its DELETE
 * disabled a linked administrator account), every attribute path that maps to a role, accounts
 * and groups of other sources, privileged grants, and the migration of existing tokens.
 */


const available = await dialects();

for (const dialect of available) {
  describe(`SCIM reach: what a token may create, see and change (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;

    afterEach(async () => {
      await t?.close();
    });

    async function start() {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    }

    /** A token as the console makes it; `grant` is the request body beyond the name. */
    async function makeToken(name: string, grant: Record<string, unknown>): Promise<string> {
      const response = await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name, ...grant } });
      expect(response.statusCode, response.body).toBe(201);
      return response.json().secret as string;
    }

    function scim(token: string, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown) {
      return t.app.inject({
        method,
        url: `/scim/v2${url}`,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/scim+json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
    }

    const filter = (expression: string) => `filter=${encodeURIComponent(expression)}`;
    const account = (id: string) => t.runtime.db.kysely.selectFrom('account').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const accountNamed = (username: string) => t.runtime.db.kysely.selectFrom('account').selectAll().where('username', '=', username).executeTakeFirst();

    async function events(action: string) {
      const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['actor', 'severity', 'target', 'body']).where('action', '=', action).orderBy('seq').execute();
      return rows.map((r) => ({ actor: r.actor, severity: r.severity, target: r.target, details: parseBody(r.body).details as Record<string, unknown> }));
    }

    /** An account made by hand in Gatehouse (Accounts), as an administrator does. */
    async function handMade(username: string, role: string): Promise<string> {
      const response = await t.app.inject({ method: 'POST', url: '/api/accounts', headers: admin.headers, payload: { username, displayName: `Hand ${username}`, role } });
      expect(response.statusCode, response.body).toBe(201);
      return (await accountNamed(username))!.id;
    }

    async function linkedAdministrator(personId: string, username: string): Promise<string> {
      return t.runtime.trail.transaction(systemActor('test'), (ctx) =>
        createAccount(ctx, { username, displayName: `${username} (administrator)`, email: null, role: 'administrator', passwordHash: null, linkedAccountId: personId }),
      );
    }

    function expectRefused(response: Awaited<ReturnType<typeof scim>>, detail: RegExp) {
      expect(response.statusCode, response.body).toBe(403);
      expect(response.json()).toMatchObject({ schemas: [ERROR], status: '403' });
      expect(response.json().detail).toMatch(detail);
    }

    it('AC-12 attack: a token with role "pupil" cannot create a senior leader (userType "Senior leader"), nor anyone outside its grant; each refusal is audited', async () => {
      await start();
      // The token exactly as in the report: made with one role, pupil.
      const pupilToken = await makeToken('Entra ID', { role: 'pupil' });
      const leader = await scim(pupilToken, 'POST', '/Users', entraUser('new.head', 'e-head', { userType: 'Senior leader' }));
      expectRefused(leader, /Senior leader.*may give Pupil only/);
      expect(await accountNamed('new.head')).toBeUndefined();
      for (const [userName, userType] of [['a.dsl', 'DSL'], ['a.teacher', 'Teacher'], ['a.office', 'Reception'], ['an.admin', 'Administrator']] as const) {
        expect((await scim(pupilToken, 'POST', '/Users', entraUser(userName, `e-${userName}`, { userType }))).statusCode, userType).toBe(403);
        expect(await accountNamed(userName)).toBeUndefined();
      }
      // The role may also come from roles[] or the enterprise extension: the same refusal.
      expect((await scim(pupilToken, 'POST', '/Users', entraUser('via.roles', 'e-r', { roles: [{ value: 'senior_leader', primary: true }] }))).statusCode).toBe(403);
      expect((await scim(pupilToken, 'POST', '/Users', entraUser('via.enterprise', 'e-x', { [ENTERPRISE]: { userType: 'Senior leader' } }))).statusCode).toBe(403);
      expect(await accountNamed('via.roles')).toBeUndefined();
      expect(await accountNamed('via.enterprise')).toBeUndefined();
      // What it is granted still works.
      const pupil = await scim(pupilToken, 'POST', '/Users', entraUser('a.pupil', 'e-p', { userType: 'Student' }));
      expect(pupil.statusCode, pupil.body).toBe(201);
      expect((await account(pupil.json().id)).role).toBe('pupil');

      const refusals = await events('scim.refused');
      expect(refusals.map((r) => [r.details.reason, r.details.requestedRole])).toEqual([
        ['role_not_granted', 'senior_leader'],
        ['role_not_granted', 'dsl'],
        ['role_not_granted', 'staff'],
        ['role_not_granted', 'office'],
        ['administrator', 'administrator'],
        ['role_not_granted', 'senior_leader'],
        ['role_not_granted', 'senior_leader'],
      ]);
      expect(refusals[0]).toMatchObject({ actor: 'scim:Entra ID', severity: 'warning', target: 'username:new.head', details: { operation: 'create', username: 'new.head', grant: { roles: ['pupil'], allowPrivileged: false, adoptExisting: false } } });
    });

    it('AC-12 attack: a "pupil" token cannot promote a staff account made by hand to DSL: it cannot find it, and a PATCH by id is refused and audited', async () => {
      await start();
      const pupilToken = await makeToken('Entra ID', { role: 'pupil' });
      const staffId = await handMade('mr.staff', 'staff');
      // Not there for this token: not found by name, not listed, not readable.
      expect((await scim(pupilToken, 'GET', `/Users?${filter('userName eq "mr.staff"')}`)).json().totalResults).toBe(0);
      expect((await scim(pupilToken, 'GET', '/Users')).json().Resources.map((r: { userName: string }) => r.userName)).not.toContain('mr.staff');
      expect((await scim(pupilToken, 'GET', `/Users/${staffId}`)).statusCode).toBe(404);
      // Knowing the id does not help.
      const promoted = await scim(pupilToken, 'PATCH', `/Users/${staffId}`, patch({ op: 'Replace', path: 'userType', value: 'DSL' }));
      expectRefused(promoted, /made by hand.*may not adopt existing accounts/);
      const replaced = await scim(pupilToken, 'PUT', `/Users/${staffId}`, entraUser('mr.staff', 'e-staff', { userType: 'DSL' }));
      expect(replaced.statusCode).toBe(403);
      const disabled = await scim(pupilToken, 'PATCH', `/Users/${staffId}`, patch({ op: 'Replace', path: 'active', value: 'False' }));
      expect(disabled.statusCode).toBe(403);
      expect(await account(staffId)).toMatchObject({ role: 'staff', status: 'active', source: 'manual', provisioning_source: null });
      // Even a token that may adopt existing accounts may not reach a role outside its grant.
      const adopter = await makeToken('Adopter', { roles: ['pupil'], adoptExisting: true });
      expectRefused(await scim(adopter, 'PATCH', `/Users/${staffId}`, patch({ op: 'Replace', path: 'userType', value: 'DSL' })), /role \(Staff\) is outside the token's grant/);
      expect((await account(staffId)).role).toBe('staff');
      const refusals = await events('scim.refused');
      expect(refusals.map((r) => [r.actor, r.details.reason, r.details.operation])).toEqual([
        ['scim:Entra ID', 'not_provisioned_by_token', 'patch'],
        ['scim:Entra ID', 'not_provisioned_by_token', 'replace'],
        ['scim:Entra ID', 'not_provisioned_by_token', 'patch'],
        ['scim:Adopter', 'role_not_granted', 'patch'],
      ]);
      expect(refusals[0]).toMatchObject({ severity: 'warning', target: `account:${staffId}`, details: { username: 'mr.staff', role: 'staff', source: 'manual' } });
      expect(await events('account.changed')).toEqual([]);
    });

    it('AC-01 attack: a "pupil" token\'s DELETE cannot close a linked administrator account, and no token\'s DELETE can', async () => {
      await start();
      const pupilToken = await makeToken('Entra ID', { role: 'pupil' });
      const staffId = await handMade('it.tech', 'staff');
      const adminId = await linkedAdministrator(staffId, 'it.tech.admin');
      expectRefused(await scim(pupilToken, 'DELETE', `/Users/${staffId}`), /made by hand/);
      expect(await account(adminId)).toMatchObject({ status: 'active' });
      expect(await account(staffId)).toMatchObject({ status: 'active' });

      // A token whose grant and source do reach the person still may not: the leaver would close the administrator account.
      const staffToken = await makeToken('Staff sync', { roles: ['staff'] });
      const person = (await scim(staffToken, 'POST', '/Users', entraUser('tech.two', 'e-t2'))).json();
      const secondAdmin = await linkedAdministrator(person.id, 'tech.two.admin');
      expectRefused(await scim(staffToken, 'DELETE', `/Users/${person.id}`), /administrator account linked.*start this leaver in Gatehouse/);
      expect(await account(secondAdmin)).toMatchObject({ status: 'active' });
      expect(await account(person.id)).toMatchObject({ status: 'active' });
      expect(await t.runtime.db.kysely.selectFrom('leaver_checklist').selectAll().execute()).toEqual([]);
      const refusals = await events('scim.refused');
      expect(refusals.map((r) => [r.actor, r.details.reason, r.details.operation])).toEqual([
        ['scim:Entra ID', 'not_provisioned_by_token', 'delete'],
        ['scim:Staff sync', 'linked_administrator', 'delete'],
      ]);
      expect(refusals[1]!.details.administratorAccounts).toEqual([{ id: secondAdmin, username: 'tech.two.admin', status: 'active' }]);
      // An administrator starts that leaver by hand: both accounts close.
      const leaver = await t.app.inject({ method: 'POST', url: `/api/accounts/${person.id}/leaver`, headers: admin.headers, payload: {} });
      expect(leaver.statusCode, leaver.body).toBe(201);
      expect((await account(secondAdmin)).status).toBe('disabled');
    });

    it('AC-12 attack: no attribute path that maps to a role changes one outside the grant (userType, roles, roles[primary eq true].value, the enterprise extension, PUT, PATCH without a path)', async () => {
      await start();
      const pupilToken = await makeToken('Entra ID', { role: 'pupil' });
      const pupil = (await scim(pupilToken, 'POST', '/Users', entraUser('a.pupil', 'e-1'))).json();
      const variants: Array<[string, Record<string, unknown>]> = [
        ['userType', patch({ op: 'Replace', path: 'userType', value: 'DSL' })],
        ['Add userType (label)', patch({ op: 'Add', path: 'userType', value: 'Designated safeguarding lead' })],
        ['USERTYPE', patch({ op: 'replace', path: 'USERTYPE', value: 'dsl' })],
        ['roles', patch({ op: 'Replace', path: 'roles', value: [{ value: 'dsl', primary: true }] })],
        ['roles (primary as "True")', patch({ op: 'Add', path: 'roles', value: [{ value: 'pupil' }, { value: 'dsl', primary: 'True' }] })],
        ['roles[primary eq true].value', patch({ op: 'Replace', path: 'roles[primary eq true].value', value: 'dsl' })],
        ['roles[primary eq "True"].value', patch({ op: 'Replace', path: 'roles[primary eq "True"].value', value: 'dsl' })],
        ['roles.value', patch({ op: 'Replace', path: 'roles.value', value: 'dsl' })],
        ['core URN userType', patch({ op: 'Replace', path: `${USER}:userType`, value: 'dsl' })],
        ['core URN roles[primary eq true].value', patch({ op: 'Replace', path: `${USER}:roles[primary eq true].value`, value: 'dsl' })],
        ['enterprise userType', patch({ op: 'Replace', path: `${ENTERPRISE}:userType`, value: 'dsl' })],
        ['no path: userType', patch({ op: 'Replace', value: { userType: 'dsl' } })],
        ['no path: roles', patch({ op: 'Replace', value: { roles: [{ value: 'dsl', primary: true }] } })],
        ['no path: enterprise object', patch({ op: 'Replace', value: { [ENTERPRISE]: { userType: 'dsl' } } })],
        ['no path: core object', patch({ op: 'Replace', value: { [USER]: { userType: 'dsl' } } })],
        ['no path: core URN key', patch({ op: 'Add', value: { [`${USER}:userType`]: 'dsl' } })],
        ['later op wins', patch({ op: 'Replace', path: 'userType', value: 'Pupil' }, { op: 'Replace', path: 'roles[primary eq true].value', value: 'dsl' })],
      ];
      for (const [name, body] of variants) {
        expectRefused(await scim(pupilToken, 'PATCH', `/Users/${pupil.id}`, body), /names the role Designated safeguarding lead.*may give Pupil only/);
        expect((await account(pupil.id)).role, name).toBe('pupil');
      }
      // Control: each path does name the role, as a token of the same source that may give DSL shows.
      const wideToken = await makeToken('Wide', { roles: ['pupil', 'dsl'], role: 'pupil', allowPrivileged: true, source: 'Entra ID' });
      for (const [name, body] of variants) {
        const allowed = await scim(wideToken, 'PATCH', `/Users/${pupil.id}`, body);
        expect(allowed.statusCode, `${name}: ${allowed.body}`).toBe(200);
        expect((await account(pupil.id)).role, name).toBe('dsl');
        expect((await scim(wideToken, 'PATCH', `/Users/${pupil.id}`, patch({ op: 'Replace', path: 'userType', value: 'Pupil' }))).statusCode).toBe(200);
      }
      expect((await scim(pupilToken, 'PUT', `/Users/${pupil.id}`, entraUser('a.pupil', 'e-1', { userType: 'DSL' }))).statusCode).toBe(403);
      expect((await scim(pupilToken, 'PATCH', `/Users/${pupil.id}`, patch({ op: 'Replace', path: 'userType', value: 'Staff' }))).statusCode).toBe(403);
      const admin = await scim(pupilToken, 'PATCH', `/Users/${pupil.id}`, patch({ op: 'Replace', path: 'userType', value: 'IT administrator' }));
      expectRefused(admin, /SCIM never makes an administrator/);
      expect((await account(pupil.id)).role).toBe('pupil');
      const refusals = (await events('scim.refused')).filter((r) => r.actor === 'scim:Entra ID');
      expect(refusals).toHaveLength(variants.length + 3);
      expect(refusals.map((r) => r.details.reason)).toEqual([...variants.map(() => 'role_not_granted'), 'role_not_granted', 'role_not_granted', 'administrator']);
      // The privileged changes the wide token made are warnings in the trail.
      const changes = (await events('account.changed')).filter((e) => (e.details.changes as { role?: { to: string } }).role?.to === 'dsl');
      expect(changes).toHaveLength(variants.length);
      expect(changes.every((e) => e.severity === 'warning' && e.actor === 'scim:Wide')).toBe(true);
    });

    it('AC-12 a token sees and changes only the accounts its provisioning source made, unless it may adopt existing accounts of its roles', async () => {
      await start();
      const entra = await makeToken('Entra ID', { roles: ['pupil', 'staff'] });
      const google = await makeToken('Google', { roles: ['pupil', 'staff'] });
      const pupil = (await scim(entra, 'POST', '/Users', entraUser('a.pupil', 'e-1', { userType: 'Student' }))).json();
      expect(await account(pupil.id)).toMatchObject({ source: 'scim', provisioning_source: 'Entra ID' });

      // Another source's token: not there, and refused by id.
      expect((await scim(google, 'GET', `/Users/${pupil.id}`)).statusCode).toBe(404);
      expect((await scim(google, 'GET', '/Users')).json().totalResults).toBe(0);
      expect((await scim(google, 'GET', `/Users?${filter('externalId eq "e-1"')}`)).json().totalResults).toBe(0);
      expectRefused(await scim(google, 'PATCH', `/Users/${pupil.id}`, patch({ op: 'Replace', path: 'name.familyName', value: 'Taken' })), /another provisioning source/);
      expectRefused(await scim(google, 'DELETE', `/Users/${pupil.id}`), /another provisioning source/);
      const clash = await scim(google, 'POST', '/Users', entraUser('a.pupil', 'g-1'));
      expect(clash.statusCode).toBe(409);
      expect(clash.json()).toMatchObject({ scimType: 'uniqueness', detail: expect.stringContaining('may not manage') });
      expect(await account(pupil.id)).toMatchObject({ status: 'active', family_name: 'Bloggs' });

      // A replacement token of the same source carries on where the old one left off.
      const rotated = await makeToken('Entra ID 2027', { roles: ['pupil', 'staff'], source: 'Entra ID' });
      expect((await scim(rotated, 'GET', `/Users/${pupil.id}`)).json().userName).toBe('a.pupil');
      expect((await scim(rotated, 'PATCH', `/Users/${pupil.id}`, patch({ op: 'Replace', path: 'name.familyName', value: 'Smith' }))).statusCode).toBe(200);

      // Adoption: only with the grant, only of its roles, and the account is then the adopter's.
      const manualPupil = await handMade('manual.pupil', 'pupil');
      const manualStaff = await handMade('manual.staff', 'staff');
      expect((await scim(entra, 'GET', `/Users?${filter('userName eq "manual.pupil"')}`)).json().totalResults).toBe(0);
      const adopter = await makeToken('Adopter', { roles: ['pupil'], adoptExisting: true });
      expect((await events('scim.token_created')).at(-1)).toMatchObject({ severity: 'warning', details: { adoptExisting: true } });
      const found = (await scim(adopter, 'GET', `/Users?${filter('userName eq "manual.pupil"')}`)).json();
      expect(found.totalResults).toBe(1);
      expect((await scim(adopter, 'GET', `/Users?${filter('userName eq "manual.staff"')}`)).json().totalResults).toBe(0);
      expect((await scim(adopter, 'PATCH', `/Users/${found.Resources[0].id}`, patch({ op: 'Replace', path: 'externalId', value: 'x-1' }))).statusCode).toBe(200);
      expect(await account(manualPupil)).toMatchObject({ source: 'scim', provisioning_source: 'Adopter' });
      const adopted = (await events('account.changed')).at(-1)!;
      expect(adopted.details.changes).toMatchObject({ source: { from: 'manual', to: 'scim' }, provisioningSource: { from: null, to: 'Adopter' } });
      expect((await scim(entra, 'GET', `/Users/${manualPupil}`)).statusCode).toBe(404);
      expect((await account(manualStaff)).source).toBe('manual');
    });

    it('AC-12 privileged roles need an explicit grant (allowPrivileged / --allow-privileged), recorded as a high-severity event; a grant is checked when the token is made', async () => {
      await start();
      const make = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload });
      for (const [payload, message] of [
        [{ name: 'A', roles: ['staff', 'dsl'] }, /Designated safeguarding lead is a privileged role.*allowPrivileged/],
        [{ name: 'B', role: 'senior_leader' }, /Senior leader is a privileged role/],
        [{ name: 'C', roles: ['office', 'governor'] }, /are privileged roles/],
        [{ name: 'D', roles: ['pupil'], allowPrivileged: true }, /none of the roles is privileged/],
        [{ name: 'E', roles: ['pupil', 'staff'], role: 'dsl' }, /must be one of the roles granted/],
        [{ name: 'F', roles: ['administrator'] }, /other than administrator/],
        [{ name: 'G' }, /choose the roles/],
        [{ name: 'H', roles: ['pupil'], allowPriviledged: true }, /allowPriviledged/],
      ] as const) {
        const response = await make(payload);
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(response.body, JSON.stringify(payload)).toMatch(message);
      }
      expect(await t.runtime.db.kysely.selectFrom('scim_token').select('name').execute()).toEqual([]);

      const made = await make({ name: 'SLT sync', roles: ['staff', 'senior_leader', 'dsl'], role: 'staff', allowPrivileged: true });
      expect(made.statusCode, made.body).toBe(201);
      expect(made.json().token).toMatchObject({ roles: ['staff', 'senior_leader', 'dsl'], defaultRole: 'staff', allowPrivileged: true, adoptExisting: false, source: 'SLT sync' });
      const [event] = await events('scim.token_created');
      expect(event).toMatchObject({ actor: 'master', severity: 'high', details: { name: 'SLT sync', roles: ['staff', 'senior_leader', 'dsl'], allowPrivileged: true, privilegedRoles: ['senior_leader', 'dsl'] } });
      const secret = made.json().secret as string;
      const head = await scim(secret, 'POST', '/Users', entraUser('the.head', 'e-h', { userType: 'Senior leader' }));
      expect(head.statusCode, head.body).toBe(201);
      expect((await account(head.json().id)).role).toBe('senior_leader');
      // Granted privileged roles, still not others (DPO) and never administrator.
      expect((await scim(secret, 'POST', '/Users', entraUser('the.dpo', 'e-d', { userType: 'DPO' }))).statusCode).toBe(403);
      expect((await scim(secret, 'POST', '/Users', entraUser('the.admin', 'e-a', { userType: 'Admin' }))).statusCode).toBe(403);
      const listed = (await t.app.inject({ method: 'GET', url: '/api/scim/tokens', headers: admin.headers })).json().tokens;
      expect(listed).toEqual([expect.objectContaining({ name: 'SLT sync', roles: ['staff', 'senior_leader', 'dsl'], allowPrivileged: true })]);
    });

    it('AC-12 attack: group membership reaches no account outside the token\'s reach, and a token sees only its own source\'s groups', async () => {
      await start();
      const pupilToken = await makeToken('Pupils', { role: 'pupil' });
      const other = await makeToken('Other', { role: 'pupil' });
      const mine = (await scim(pupilToken, 'POST', '/Users', entraUser('my.pupil', 'e-1'))).json();
      const staffId = await handMade('mr.staff', 'staff');
      const created = await scim(pupilToken, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Year 7', members: [{ value: mine.id }] });
      expect(created.statusCode, created.body).toBe(201);
      const group = created.json();
      // A hand-made staff account (say the group has a lenient filtering policy) cannot be put in it.
      expectRefused(await scim(pupilToken, 'PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: staffId }] })), /Group membership: .*made by hand/);
      expect((await scim(pupilToken, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Sneaky', members: [{ value: staffId }] })).statusCode).toBe(403);
      expect(await t.runtime.db.kysely.selectFrom('directory_group').select('name').where('name', '=', 'Sneaky').execute()).toEqual([]);
      // A member an administrator added by hand is neither shown to the token nor removed by its PUT.
      expect((await t.app.inject({ method: 'PUT', url: `/api/groups/${group.id}/members/${staffId}`, headers: admin.headers, payload: { role: 'member' } })).statusCode).toBe(204);
      expect((await scim(pupilToken, 'GET', `/Groups/${group.id}`)).json().members.map((m: { value: string }) => m.value)).toEqual([mine.id]);
      expect((await scim(pupilToken, 'PUT', `/Groups/${group.id}`, { schemas: [GROUP], displayName: 'Year 7', members: [] })).statusCode).toBe(200);
      expect((await scim(pupilToken, 'PATCH', `/Groups/${group.id}`, patch({ op: 'Remove', path: 'members' }))).statusCode).toBe(204);
      const members = await t.runtime.db.kysely.selectFrom('group_member').select('account_id').where('group_id', '=', group.id).execute();
      expect(members.map((m) => m.account_id)).toEqual([staffId]);
      // Another source's token does not see the group at all.
      expect((await scim(other, 'GET', `/Groups/${group.id}`)).statusCode).toBe(404);
      expect((await scim(other, 'GET', '/Groups')).json().totalResults).toBe(0);
      expect((await scim(other, 'DELETE', `/Groups/${group.id}`)).statusCode).toBe(404);
      expect((await scim(other, 'PATCH', `/Groups/${group.id}`, patch({ op: 'Replace', path: 'displayName', value: 'Renamed' }))).statusCode).toBe(404);
      // Nor does the user's groups attribute show it.
      expect((await scim(pupilToken, 'PATCH', `/Groups/${group.id}`, patch({ op: 'Add', path: 'members', value: [{ value: mine.id }] }))).statusCode).toBe(204);
      expect((await scim(pupilToken, 'GET', `/Users/${mine.id}`)).json().groups).toEqual([expect.objectContaining({ value: group.id })]);
      const refusals = await events('scim.refused');
      expect(refusals.map((r) => [r.details.operation, r.details.reason])).toEqual([
        ['group_patch', 'not_provisioned_by_token'],
        ['group_create', 'not_provisioned_by_token'],
      ]);
    });

    it('AC-12 existing tokens migrate to a grant of their one role, not privileged, without adoption; their accounts and groups stay theirs', async () => {
      t = undefined as unknown as TestApp;
      const test = await createTestDatabase(dialect);
      const db = await test.open();
      try {
        const before = Object.keys(migrations).filter((m) => m < '0006');
        const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => migrations }, migrationTableName: 'gatehouse_migration', migrationLockTableName: 'gatehouse_migration_lock' });
        const partial = await migrator.migrateTo(before.at(-1)!);
        expect(partial.error).toBeUndefined();
        const clock = new ManualClock('2026-09-07T08:00:00.000Z');
        const trail = new AuditTrail(db, clock, undefined, { checkpointEvery: 1e9, checkpointMinutes: 60 });
        const now = clock.now().toISOString();
        const legacy = (name: string, role: string, secret: string) =>
          db.kysely.insertInto('scim_token' as never).values({ id: `00000000-0000-4000-8000-00000000000${name.length}`, name, token_hash: hashToken(secret), default_role: role, created_at: now, created_by: 'master', last_used_at: null, revoked_at: null } as never).execute();
        await legacy('Entra ID', 'pupil', 'gscim_entra');
        await legacy('SLT', 'senior_leader', 'gscim_slt');
        const made = (actor: string, username: string, role: string, source: string) =>
          trail.transaction({ id: null, name: actor, role: null }, (ctx) => createAccount(ctx, { username, displayName: username, email: null, role: role as never, passwordHash: null, source }));
        const pupil = await made('scim:Entra ID', 'old.pupil', 'pupil', 'scim');
        const teacher = await made('scim:Entra ID', 'old.teacher', 'staff', 'scim');
        const head = await made('scim:SLT', 'old.head', 'senior_leader', 'scim');
        const manual = await made('master', 'by.hand', 'pupil', 'manual');
        // An account made by hand that a token took over before this release.
        const adopted = await made('master', 'adopted', 'pupil', 'manual');
        await trail.transaction({ id: null, name: 'scim:Entra ID', role: null }, async (ctx) => {
          await ctx.db.updateTable('account').set({ source: 'scim' }).where('id', '=', adopted).execute();
          await ctx.audit.record({ action: 'account.changed', target: `account:${adopted}`, details: { changes: { source: { from: 'manual', to: 'scim' } } } });
          // A later change by another token does not make it that token's.
          await ctx.audit.record({ action: 'account.changed', target: `account:${pupil}`, details: {} });
        });
        await trail.transaction({ id: null, name: 'scim:SLT', role: null }, (ctx) => ctx.audit.record({ action: 'account.changed', target: `account:${pupil}`, details: {} }));
        const groupId = await trail.transaction({ id: null, name: 'scim:Entra ID', role: null }, (ctx) => createGroup(ctx, { name: 'Year 7', kind: 'other', source: 'scim' }));

        expect((await migrate(db))[0]).toBe('0006-scim-grants');
        const tokens = await db.kysely.selectFrom('scim_token').select(['name', 'roles', 'default_role', 'allow_privileged', 'adopt_existing', 'provisioning_source']).orderBy('name').execute();
        expect(tokens).toEqual([
          { name: 'Entra ID', roles: '["pupil"]', default_role: 'pupil', allow_privileged: 0, adopt_existing: 0, provisioning_source: 'Entra ID' },
          { name: 'SLT', roles: '["senior_leader"]', default_role: 'senior_leader', allow_privileged: 0, adopt_existing: 0, provisioning_source: 'SLT' },
        ]);
        const owners = Object.fromEntries((await db.kysely.selectFrom('account').select(['id', 'provisioning_source']).execute()).map((a) => [a.id, a.provisioning_source]));
        expect([owners[pupil], owners[teacher], owners[head], owners[manual], owners[adopted]]).toEqual(['Entra ID', 'Entra ID', 'SLT', null, 'Entra ID']);
        expect((await db.kysely.selectFrom('directory_group').select('provisioning_source').where('id', '=', groupId).executeTakeFirstOrThrow()).provisioning_source).toBe('Entra ID');

        // The pupil token reaches its pupils, not the teacher it once made through userType.
        const entra = (await authenticateScimToken(db.kysely, clock, 'gscim_entra'))!;
        expect(entra).toMatchObject({ roles: ['pupil'], defaultRole: 'pupil', allowPrivileged: false, adoptExisting: false, source: 'Entra ID' });
        const seen = await listUsers(db.kysely, entra, {}, '/scim/v2');
        expect((seen.Resources as Array<{ userName: string }>).map((r) => r.userName).sort()).toEqual(['adopted', 'old.pupil']);
        // A token migrated with a privileged role keeps it in its grant but cannot use it until replaced.
        const slt = (await authenticateScimToken(db.kysely, clock, 'gscim_slt'))!;
        expect(slt.roles).toEqual(['senior_leader']);
        expect(grantedRoles(slt)).toEqual([]);
        expect((await listUsers(db.kysely, slt, {}, '/scim/v2')).totalResults).toBe(0);
      } finally {
        await db.close();
        await test.drop();
      }
    });

    if (dialect === 'sqlite') {
      it('AC-12 gatehouse scim token create --roles pupil,staff; privileged roles only with --allow-privileged', async () => {
        await start();
        const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
        const refused = await runCli(['scim', 'token', 'create', '--name', 'SLT', '--roles', 'staff,senior-leader'], env);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/--roles: Senior leader is a privileged role.*--allow-privileged/);
        const created = await runCli(['scim', 'token', 'create', '--name', 'SLT', '--roles', 'staff,senior_leader', '--role', 'staff', '--allow-privileged', '--source', 'Entra ID'], env);
        expect(created.code, created.stderr).toBe(0);
        expect(created.stdout).toContain('roles staff, senior_leader (new people: staff); privileged roles allowed; source "Entra ID"');
        const [event] = await events('scim.token_created');
        expect(event).toMatchObject({ actor: expect.stringMatching(/^cli:/), severity: 'high', details: { roles: ['staff', 'senior_leader'], allowPrivileged: true, source: 'Entra ID' } });
        expect((await t.app.inject({ method: 'GET', url: '/api/scim/tokens', headers: admin.headers })).json().tokens[0]).toMatchObject({ name: 'SLT', allowPrivileged: true, source: 'Entra ID' });
      }, 180_000);
    }
  });
}
