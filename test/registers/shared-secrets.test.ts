import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createLogger } from '../../src/core/logger.js';
import { loadProfile } from '../../src/core/profile.js';
import { buildApp } from '../../src/http/app.js';
import { createAccount } from '../../src/identity/service.js';
import { looksLikeASecret, recordRotation, sharedSecretsDue } from '../../src/registers/shared-secrets.js';
import { openRuntime } from '../../src/runtime.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, setUpSchool, signIn, startTestApp, testConfig, type Session, type TestApp } from '../helpers/runtime.js';

const DAY = 86_400_000;

interface Secret {
  id: string;
  name: string;
  kind: string;
  location: string;
  rotation: string;
  rotationDays: number | null;
  rotationLabel: string;
  lastRotatedAt: string | null;
  nextDueAt: string;
  overdue: boolean;
  dueSoon: boolean;
  flaggedAt: string | null;
  flagReason: string | null;
  notes: string | null;
  holders: Array<{ id: string; username: string; displayName: string; status: string }>;
  retiredAt: string | null;
}

async function person(t: TestApp, username: string, displayName: string, role: Role = 'staff'): Promise<string> {
  return t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName, email: null, role, passwordHash: null }));
}

async function events(t: TestApp, prefix: string) {
  const rows = await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'severity', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute();
  return rows.map((r) => ({ action: r.action, severity: r.severity, details: parseBody(r.body).details as Record<string, unknown> }));
}

const available = await dialects();

describe('looksLikeASecret', () => {
  it('PW-12 catches labelled values and long random words, and lets descriptions through', () => {
    for (const text of ['Door code: 4821', 'WPA key=Summer2026!', 'password: CorrectHorseBatteryStaple', 'Xk9fP2mQ7vL4wR8zq on a sticky note']) expect(looksLikeASecret(text), text).not.toBeNull();
    for (const text of [
      'Sealed envelope in the head’s safe',
      'Code: in the red folder in the bursar’s office',
      'KeePass vault \\\\fileserver01\\IT\\KeePassVault2026.kdbx',
      'Admin page https://192.168.1.1/Admin2026Console',
      'Alarm panel by the main entrance; the key holder list is in the office',
    ]) {
      expect(looksLikeASecret(text), text).toBeNull();
    }
  });
});

for (const dialect of available) {
  describe(`shared-secrets register (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    afterEach(async () => {
      await t?.close();
    });
    const start = async (profile = 'ncsc') => {
      t = await startTestApp(dialect, { config: { profile } });
      admin = await setUpSchool(t);
    };
    const post = (url: string, payload?: unknown) => t.app.inject({ method: 'POST', url, headers: admin.headers, payload: payload as object });
    const list = async (query = '') => (await t.app.inject({ url: `/api/secrets${query}`, headers: admin.headers })).json().secrets as Secret[];
    const due = async () => (await t.app.inject({ url: '/api/dashboard/due', headers: admin.headers })).json().items.filter((i: { kind: string }) => i.kind === 'shared_secret') as Array<{ title: string; overdue: boolean; href: string; requirement: string; dueAt: string }>;

    it('PW-12 records a shared secret with holders and rotation due dates, never the secret', async () => {
      await start('ncsc');
      const bursar = await person(t, 'bursar', 'Brenda Bursar');
      const head = await person(t, 'head', 'Harriet Head', 'senior_leader');

      // Last changed on 1 August (local midnight, BST): the NCSC baseline's 90 days run from there, to 30 October (GMT by then).
      const wifi = await post('/api/secrets', { name: 'Staff Wi-Fi', kind: 'wifi', location: 'Sealed envelope in the head’s safe', lastRotatedOn: '2026-08-01', holders: [bursar, head], notes: 'Printed on the staffroom notice board? No: keep it off the walls.' });
      expect(wifi.statusCode, wifi.body).toBe(201);
      const recorded = wifi.json() as Secret;
      expect(recorded).toMatchObject({
        name: 'Staff Wi-Fi',
        kind: 'wifi',
        rotation: 'profile',
        rotationLabel: 'Every 90 days (school default)',
        lastRotatedAt: '2026-07-31T23:00:00.000Z',
        nextDueAt: '2026-10-30T00:00:00.000Z',
        overdue: false,
        flaggedAt: null,
      });
      expect(recorded.holders.map((h) => h.username).sort()).toEqual(['bursar', 'head']);

      // A per-secret override, and a secret whose last change nobody knows (due now).
      const alarm = (await post('/api/secrets', { name: 'Intruder alarm', kind: 'alarm_code', location: 'Known by the caretaker and the head', rotation: 'days', rotationDays: 30, lastRotatedOn: '2026-08-20' })).json() as Secret;
      expect(alarm).toMatchObject({ rotationLabel: 'Every 30 days', nextDueAt: '2026-09-18T23:00:00.000Z', dueSoon: true, overdue: false });
      const mis = (await post('/api/secrets', { name: 'MIS master password', kind: 'master_password', location: 'Password manager, IT vault' })).json() as Secret;
      expect(mis).toMatchObject({ lastRotatedAt: null, nextDueAt: t.clock.now().toISOString(), overdue: true });

      // There is no field for the secret: one given is refused, and so is a secret pasted into the text.
      const withSecret = await post('/api/secrets', { name: 'Guest Wi-Fi', kind: 'wifi', location: 'Reception', secret: 'Welcome2026!' });
      expect(withSecret.statusCode).toBe(400);
      expect(withSecret.json().error.message).toContain('never holds the secret itself');
      const pasted = await post('/api/secrets', { name: 'Guest Wi-Fi', kind: 'wifi', location: 'Reception', notes: 'WPA2 key: Welcome2026!' });
      expect(pasted.statusCode).toBe(400);
      expect(pasted.json().error.fields).toEqual([{ field: 'body.notes', message: expect.stringContaining('seems to hold the secret itself') }]);
      expect(pasted.json().error.message).not.toContain('Welcome2026');
      const random = await t.app.inject({ method: 'PATCH', url: `/api/secrets/${recorded.id}`, headers: admin.headers, payload: { location: 'Xk9fP2mQ7vL4wR8zq' } });
      expect(random.statusCode).toBe(400);
      expect((await t.runtime.db.kysely.selectFrom('shared_secret').select('name').execute()).map((r) => r.name).sort()).toEqual(['Intruder alarm', 'MIS master password', 'Staff Wi-Fi']);
      const everything = JSON.stringify(await t.runtime.db.kysely.selectFrom('shared_secret').selectAll().execute()) + JSON.stringify(await t.runtime.db.kysely.selectFrom('audit_event').select('body').execute());
      expect(everything).not.toContain('Welcome2026');
      expect(everything).not.toContain('Xk9fP2mQ7vL4wR8zq');

      // Soonest due first; the overview shows what is overdue or due within 14 days, not the rest.
      expect((await list()).map((s) => s.name)).toEqual(['MIS master password', 'Intruder alarm', 'Staff Wi-Fi']);
      expect((await due()).map((d) => [d.title, d.overdue, d.href, d.requirement])).toEqual([
        ['MIS master password (master password) is overdue for a change', true, '/secrets', 'PW-12'],
        ['Intruder alarm (alarm code) is due for a change', false, '/secrets', 'PW-12'],
      ]);

      // Recording a rotation on 8 September: next due at the start of 7 December, 90 days on; audited.
      t.clock.advance(DAY);
      admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecrets.get(t) });
      const rotated = (await post(`/api/secrets/${mis.id}/rotation`)).json() as Secret;
      expect(rotated).toMatchObject({ lastRotatedAt: t.clock.now().toISOString(), nextDueAt: '2026-12-07T00:00:00.000Z', overdue: false });
      expect((await due()).map((d) => d.title)).toEqual(['Intruder alarm (alarm code) is due for a change']);

      // Holders change; someone who has left cannot be recorded as one.
      const holders = await t.app.inject({ method: 'PUT', url: `/api/secrets/${recorded.id}/holders`, headers: admin.headers, payload: { accountIds: [head] } });
      expect((holders.json() as Secret).holders.map((h) => h.username)).toEqual(['head']);
      await t.runtime.db.kysely.updateTable('account').set({ status: 'left' }).where('id', '=', bursar).execute();
      const refused = await t.app.inject({ method: 'PUT', url: `/api/secrets/${recorded.id}/holders`, headers: admin.headers, payload: { accountIds: [head, bursar] } });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toContain('Brenda Bursar has left');

      // An edit of the rotation moves the due date; retiring takes it off the register and the overview.
      const edited = await t.app.inject({ method: 'PATCH', url: `/api/secrets/${recorded.id}`, headers: admin.headers, payload: { rotation: 'days', rotationDays: 365, location: 'Head’s safe, blue folder' } });
      expect(edited.json()).toMatchObject({ rotationLabel: 'Every 365 days', nextDueAt: '2027-07-31T23:00:00.000Z', location: 'Head’s safe, blue folder' });
      expect((await post(`/api/secrets/${alarm.id}/retire`)).json()).toMatchObject({ retiredAt: t.clock.now().toISOString() });
      expect((await list()).map((s) => s.name)).toEqual(['MIS master password', 'Staff Wi-Fi']);
      expect((await list('?includeRetired=true')).map((s) => s.name)).toContain('Intruder alarm');
      expect(await due()).toEqual([]);

      // Every change is in the trail, and none of it carries a secret.
      expect((await events(t, 'shared_secret.')).map((e) => e.action)).toEqual([
        'shared_secret.added',
        'shared_secret.added',
        'shared_secret.added',
        'shared_secret.rotated',
        'shared_secret.holders_changed',
        'shared_secret.changed',
        'shared_secret.retired',
      ]);
      const added = (await events(t, 'shared_secret.added'))[0]!;
      expect(added.details).toMatchObject({ name: 'Staff Wi-Fi', kind: 'wifi', nextDueAt: recorded.nextDueAt });
      expect((added.details.holders as string[]).sort()).toEqual(['bursar', 'head']);
      expect(Object.keys(added.details)).not.toContain('notes');
      expect((await events(t, 'shared_secret.holders_changed'))[0]!.details).toEqual({ name: 'Staff Wi-Fi', added: [], removed: ['bursar'] });

      // Only those with secrets.manage may change the register (the authorization test covers every role).
      expect((await t.app.inject({ method: 'POST', url: '/api/secrets', payload: { name: 'x', kind: 'wifi', location: 'y' } })).statusCode).toBe(401);
    });

    it('PW-12 termly rotation is due when the next term starts, from the profile’s term dates (p3), in the school’s time zone', async () => {
      await start('p3');
      // 7 September 2026 is in the Autumn 2026 term; the next starts on 5 January 2027 (GMT).
      const wifi = (await post('/api/secrets', { name: 'Pupil Wi-Fi', kind: 'wifi', location: 'Network controller, IT office', lastRotatedOn: '2026-09-04' })).json() as Secret;
      expect(wifi).toMatchObject({ rotationLabel: 'Termly (school default)', nextDueAt: '2027-01-05T00:00:00.000Z', overdue: false });
      expect(await due()).toEqual([]);

      // Changed on the Spring term's first day: due when the Summer term starts (12 April 2027, BST: 23:00Z the day before).
      // (Months pass here, so the register is driven through its use cases rather than an idle session.)
      const technician = systemActor('it-technician');
      const overview = async () => (await sharedSecretsDue(t.runtime)).map((d) => ({ overdue: d.overdue, dueAt: d.dueAt }));
      t.clock.set('2027-01-05T09:00:00.000Z');
      expect(await overview()).toEqual([{ overdue: true, dueAt: '2027-01-05T00:00:00.000Z' }]);
      const spring = await recordRotation(t.runtime, technician, wifi.id);
      expect(spring.nextDueAt).toBe('2027-04-11T23:00:00.000Z');
      expect(await overview()).toEqual([]);
      // Under two weeks before, the overview shows it as due.
      t.clock.set('2027-03-30T12:00:00.000Z');
      expect(await overview()).toEqual([{ overdue: false, dueAt: '2027-04-11T23:00:00.000Z' }]);

      // Changed in the summer holiday: due when the Autumn 2027 term starts (2 September, BST).
      t.clock.set('2027-08-10T10:00:00.000Z');
      expect((await recordRotation(t.runtime, technician, wifi.id)).nextDueAt).toBe('2027-09-01T23:00:00.000Z');

      // Past the last term the profile lists, a rotation is due at once, so the missing dates get noticed.
      t.clock.set('2027-10-01T10:00:00.000Z');
      expect(await recordRotation(t.runtime, technician, wifi.id)).toMatchObject({ nextDueAt: '2027-10-01T10:00:00.000Z', overdue: true });
      expect((await events(t, 'shared_secret.rotated')).map((e) => e.details.nextDueAt)).toEqual(['2027-04-11T23:00:00.000Z', '2027-09-01T23:00:00.000Z', '2027-10-01T10:00:00.000Z']);
    });

    it('PW-12 due dates follow the profile: edited term dates or a new rotation show at once in the register and the overview', async () => {
      await start('p3');
      const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-secrets-profile-'));
      const p3Terms = loadProfile('p3').terms;
      const profileFile = (name: string, text: string) => {
        const file = path.join(dir, `${name}.yaml`);
        writeFileSync(file, `name: ${name}\nextends: p3\n${text}`);
        return file;
      };
      // The school's Autumn term 2026 in fact starts on 10 September, not 3 September.
      const editedTerms = profileFile('edited-terms', `terms:\n${p3Terms.map((term) => `  - { name: ${term.name}, starts: ${term.name === 'Autumn 2026' ? '2026-09-10' : term.starts}, ends: ${term.ends} }`).join('\n')}\n`);
      // The school switches from termly to every 30 days (its term dates stay as they were).
      const everyThirtyDays = profileFile('thirty-days', 'sharedSecrets: { rotation: { days: 30 } }\n');

      // The same database opened again with another profile, as `serve` would be after the change.
      const reopen = async (profile: string) => {
        const { test, gate, logs, clock } = t;
        const totpSecret = masterSecrets.get(t)!;
        await t.app.close();
        await t.runtime.close();
        const runtime = await openRuntime(testConfig(test, { profile }), { logger: createLogger('debug', logs), signing: 'create', clock, recordProfile: true });
        const app = await buildApp({ runtime, setupGate: gate, webRoot: undefined });
        await app.ready();
        t = { clock, app, runtime, gate, logs, test, close: async () => { await app.close(); await runtime.close(); await test.drop(); } };
        masterSecrets.set(t, totpSecret);
        admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret });
      };
      const register = async () => (await list()).map((s) => [s.name, s.nextDueAt, s.overdue]);
      const overview = async () => (await due()).map((d) => [d.title.split(' (')[0], d.dueAt, d.overdue]);

      await post('/api/secrets', { name: 'Pupil Wi-Fi', kind: 'wifi', location: 'Network controller', lastRotatedOn: '2026-07-25' });
      await post('/api/secrets', { name: 'Staff Wi-Fi', kind: 'wifi', location: 'Head’s safe', lastRotatedOn: '2026-09-04' });
      await post('/api/secrets', { name: 'Server room', kind: 'other', location: 'Key safe', rotation: 'termly', lastRotatedOn: '2026-07-25' });
      await post('/api/secrets', { name: 'Alarm', kind: 'alarm_code', location: 'Caretaker', rotation: 'days', rotationDays: 7, lastRotatedOn: '2026-09-06' });
      // P3 as shipped: termly, from the Autumn term on 3 September (BST) and the Spring term on 5 January.
      expect(await register()).toEqual([
        ['Pupil Wi-Fi', '2026-09-02T23:00:00.000Z', true],
        ['Server room', '2026-09-02T23:00:00.000Z', true],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
        ['Staff Wi-Fi', '2027-01-05T00:00:00.000Z', false],
      ]);
      expect(await overview()).toEqual([
        ['Pupil Wi-Fi', '2026-09-02T23:00:00.000Z', true],
        ['Server room', '2026-09-02T23:00:00.000Z', true],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
      ]);

      // Edited term dates: every termly secret is due when the Autumn term now starts; the 7-day one does not move.
      await reopen(editedTerms);
      expect(await register()).toEqual([
        ['Pupil Wi-Fi', '2026-09-09T23:00:00.000Z', false],
        ['Server room', '2026-09-09T23:00:00.000Z', false],
        ['Staff Wi-Fi', '2026-09-09T23:00:00.000Z', false],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
      ]);
      expect(await overview()).toEqual([
        ['Pupil Wi-Fi', '2026-09-09T23:00:00.000Z', false],
        ['Server room', '2026-09-09T23:00:00.000Z', false],
        ['Staff Wi-Fi', '2026-09-09T23:00:00.000Z', false],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
      ]);

      // Every 30 days: the secrets on the school's default count 30 days from their last change; the termly one keeps the terms.
      await reopen(everyThirtyDays);
      expect(await register()).toEqual([
        ['Pupil Wi-Fi', '2026-08-23T23:00:00.000Z', true],
        ['Server room', '2026-09-02T23:00:00.000Z', true],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
        ['Staff Wi-Fi', '2026-10-03T23:00:00.000Z', false],
      ]);
      expect((await list()).find((s) => s.name === 'Staff Wi-Fi')!.rotationLabel).toBe('Every 30 days (school default)');
      expect(await overview()).toEqual([
        ['Pupil Wi-Fi', '2026-08-23T23:00:00.000Z', true],
        ['Server room', '2026-09-02T23:00:00.000Z', true],
        ['Alarm', '2026-09-12T23:00:00.000Z', false],
      ]);
      // The trail names each profile as it came into force; the register itself did not change.
      expect((await events(t, 'profile.activated')).map((e) => e.details.name)).toEqual(['P3 — ICT Security Policy', 'edited-terms', 'thirty-days']);
      expect((await events(t, 'shared_secret.')).map((e) => e.action)).toEqual(Array(4).fill('shared_secret.added'));
    });

    it('PW-12 a per-secret rotation counts days under a termly profile', async () => {
      await start('p3');
      const alarm = (await post('/api/secrets', { name: 'Alarm', kind: 'alarm_code', location: 'Caretaker', rotation: 'days', rotationDays: 7, lastRotatedOn: '2026-09-06' })).json() as Secret;
      expect(alarm).toMatchObject({ rotationLabel: 'Every 7 days', nextDueAt: '2026-09-12T23:00:00.000Z', dueSoon: true });
    });

    it('PW-12 a termly override needs term dates in the profile', async () => {
      await start('ncsc');
      const refused = await post('/api/secrets', { name: 'Staff Wi-Fi', kind: 'wifi', location: 'Safe', rotation: 'termly' });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toContain('no term dates');
      expect(await list()).toEqual([]);
    });

    it('PW-12 gatehouse secrets list and due print the register without any secret', async () => {
      await start('ncsc');
      const caretaker = await person(t, 'caretaker', 'Colin Caretaker');
      await post('/api/secrets', { name: 'Boiler room key safe', kind: 'other', location: 'Caretaker’s office', lastRotatedOn: '2026-09-01', holders: [caretaker] });
      const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url, GATEHOUSE_PROFILE: 'ncsc' };
      const listed = await runCli(['secrets', 'list'], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('Boiler room key safe (Other)');
      expect(listed.stdout).toContain('known by: Colin Caretaker (caretaker)');
      expect(listed.stdout).toContain('rotation: Every 90 days (school default); last changed 2026-09-01');
      const dueNow = await runCli(['secrets', 'due', '--days', '400', '--json'], env);
      expect(dueNow.code, dueNow.stderr).toBe(0);
      expect((JSON.parse(dueNow.stdout) as { secrets: Secret[] }).secrets.map((s) => s.name)).toEqual(['Boiler room key safe']);
      const bad = await runCli(['secrets', 'due', '--days', 'soon'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('not a whole number of days');
    });
  });
}
