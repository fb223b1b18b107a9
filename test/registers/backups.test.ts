import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { csrfTokenFor, startSession } from '../../src/identity/sessions.js';
import { Facts, probe } from '../../src/compliance/probes.js';
import { alertJobs, backupsDue } from '../../src/registers/backups.js';
import { alertEngineFor } from '../../src/monitoring/alerts.js';
import { loadConfig, type Config } from '../../src/core/config.js';
import { chmodSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeNewKeyFile } from '../../src/core/secret-box.js';
import { inspectBackup } from '../../src/db/backup.js';
import { decryptBackupFile, readBackupKey } from '../../src/db/backup-crypto.js';
import { ownBackupSettings, runOwnBackup } from '../../src/registers/own-backup.js';
import { risksDue } from '../../src/registers/risks.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, masterSecrets, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const available = await dialects();
const HOUR = 3_600_000;

const job = { name: 'Admin server nightly', what: 'MIS and file server shares', location: 'off_site', encrypted: true, intervalMinutes: 24 * 60, graceMinutes: 120 };

for (const dialect of available) {
  describe(`backups and risk registers (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;
    let sink: Awaited<ReturnType<typeof startSmtpSink>> | undefined;
    afterEach(async () => {
      await t?.close();
      await sink?.close();
      sink = undefined;
    });

    async function start(withMail = false, config: Partial<Config> = {}) {
      if (withMail) sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { ...(sink ? { smtpUrl: sink.url } : {}), ...config } });
      admin = await setUpSchool(t);
    }
    /** The clock moved on: a fresh session, as an idle one would have expired. */
    const again = async () => (admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: masterSecrets.get(t)! }));
    const call = (method: string, url: string, payload?: unknown, session: Session | null = admin) =>
      t.app.inject({ method: method as 'GET', url, payload: payload as object, headers: session?.headers ?? {} });
    const events = async (action: string) => (await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', '=', action).execute()).length;

    it('BK-01 BK-04 BK-02 a job with schedule, location and encryption checks in with its token, shown once and stored only as a hash', async () => {
      await start();
      const created = await call('POST', '/api/backups', job);
      expect(created.statusCode).toBe(201);
      const { job: made, token, checkinUrl } = created.json();
      expect(made).toMatchObject({ name: job.name, location: 'off_site', encrypted: true, state: 'waiting' });
      expect(checkinUrl).toContain(`/api/backups/checkin/${made.id}/${token}`);
      const row = await t.runtime.db.kysely.selectFrom('backup_job').selectAll().where('id', '=', made.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(token);
      expect((await call('GET', '/api/backups')).body).not.toContain(token);
      expect(t.logs.text).not.toContain(token);

      const ok = await t.app.inject({ method: 'GET', url: `/api/backups/checkin/${made.id}/${token}` });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toBe('OK\n');
      const listed = (await call('GET', '/api/backups')).json().jobs[0];
      expect(listed).toMatchObject({ state: 'ok', lastStatus: 'ok' });
      expect((await probe('backups-fresh')!.evaluate(new Facts(t.runtime))).status).toBe('met');
      expect(await events('backup.checked_in')).toBe(1);
    });

    it('BK-02 attacks: a wrong token, another job’s token, a rotated (replayed) token and an unknown job all get the same 404', async () => {
      await start();
      const a = (await call('POST', '/api/backups', job)).json();
      const b = (await call('POST', '/api/backups', { ...job, name: 'Cloud mail' })).json();
      const url = (id: string, token: string) => `/api/backups/checkin/${id}/${token}`;
      for (const u of [url(a.job.id, 'x'.repeat(43)), url(a.job.id, b.token), url('00000000-0000-4000-8000-000000000000', a.token), url('not-an-id', a.token)]) {
        const r = await t.app.inject({ method: 'POST', url: u });
        expect(r.statusCode, u).toBe(404);
      }
      // A token with a NUL byte appended is refused before any lookup.
      expect([400, 404]).toContain((await t.app.inject({ method: 'POST', url: url(a.job.id, `${a.token}%00`) })).statusCode);
      const rotated = await call('POST', `/api/backups/${a.job.id}/token`);
      expect(rotated.statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: url(a.job.id, a.token) })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url: url(a.job.id, rotated.json().token) })).statusCode).toBe(200);
      expect(await events('backup.checkin_refused')).toBeGreaterThanOrEqual(3);
      // A retired job's token no longer works.
      expect((await call('DELETE', `/api/backups/${b.job.id}`)).statusCode).toBe(204);
      expect((await t.app.inject({ method: 'GET', url: url(b.job.id, b.token) })).statusCode).toBe(404);
    });

    it('BK-02 check-ins are rate-limited per address', async () => {
      // The same setting the server reads (GATEHOUSE_RATE_LIMIT_API_PER_MINUTE), set low so the test is quick.
      await start(false, { rateLimitApiPerMinute: 25 });
      const limit = t.runtime.config.rateLimitApiPerMinute;
      expect(limit).toBe(25);
      const codes: number[] = [];
      for (let i = 0; i <= limit; i++) codes.push((await t.app.inject({ method: 'GET', url: `/api/backups/checkin/00000000-0000-4000-8000-000000000000/${i}`, remoteAddress: '203.0.113.9' })).statusCode);
      // every one up to the limit is answered (404: no such check-in), the next is refused
      expect(codes.slice(0, limit)).toEqual(Array(limit).fill(404));
      expect(codes[limit]).toBe(429);
      // per address: another address is not held back
      expect((await t.app.inject({ method: 'GET', url: '/api/backups/checkin/00000000-0000-4000-8000-000000000000/x', remoteAddress: '203.0.113.10' })).statusCode).toBe(404);
    });

    it('BK-02 a missed run e-mails the IT lead once, raises one alert in the alerts engine and is a needs-attention item until the next success; a failed run alerts at once', async () => {
      await start(true);
      const engine = alertEngineFor(t.runtime, { gatherMs: 10 });
      const { job: made, token } = (await call('POST', '/api/backups', job)).json();
      expect((await t.app.inject({ method: 'GET', url: `/api/backups/checkin/${made.id}/${token}` })).statusCode).toBe(200);
      t.clock.advance(25 * HOUR);
      expect(await alertJobs(t.runtime)).toEqual({ alerted: 0 });
      t.clock.advance(2 * HOUR);
      // The sweep and check-ins at once: no "database is locked", exactly one alert.
      const [a, b] = await Promise.all([alertJobs(t.runtime), alertJobs(t.runtime)]);
      expect(a.alerted + b.alerted).toBe(1);
      await engine.settle();
      await sink!.waitFor(2);
      const subjects = () => sink!.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1]);
      const missedMail = sink!.messages.find((m) => m.raw.includes('Backup missed: Admin server nightly'))!;
      expect(missedMail.to).toEqual(['it@school.example']);
      // the alerts engine's own mail, to the profile's security recipients (the administrators)
      const alertMail = sink!.messages.find((m) => m.raw.includes('Security alert'))!;
      expect(alertMail.to).toEqual(['it@school.example']);
      expect(alertMail.raw).toContain('has not checked in on time');
      expect((await backupsDue(t.runtime)).map((i) => i.kind)).toContain('backup_missed');
      await again();
      const overview = await call('GET', '/api/dashboard/due');
      expect(overview.body).toContain('has not checked in on time');
      const alerts = (await call('GET', '/api/alerts')).json().alerts;
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ kind: 'security', rule: 'backup_missed', severity: 'medium', status: 'new', device: 'backup job “Admin server nightly”' });
      // Not raised again by later sweeps of the same missed run (every five minutes in serve).
      for (let i = 0; i < 3; i++) {
        t.clock.advance(5 * 60_000);
        expect(await alertJobs(t.runtime)).toEqual({ alerted: 0 });
      }
      await engine.settle();
      await again();
      expect((await call('GET', '/api/alerts')).json().alerts).toHaveLength(1);
      expect((await call('GET', '/api/alerts')).json().alerts[0].count).toBe(1);
      // Handled like any other alert: acknowledged, then closed with what was done.
      const id = alerts[0].id;
      expect((await call('POST', `/api/alerts/${id}/acknowledge`)).statusCode).toBe(200);
      expect((await call('POST', `/api/alerts/${id}/close`, { action: 'The NAS was full; cleared space and re-ran the job', outcome: 'no_concern' })).json()).toMatchObject({ status: 'closed' });

      expect((await t.app.inject({ method: 'GET', url: `/api/backups/checkin/${made.id}/${token}` })).statusCode).toBe(200);
      expect((await backupsDue(t.runtime)).map((i) => i.kind)).not.toContain('backup_missed');
      expect((await t.app.inject({ method: 'POST', url: `/api/backups/checkin/${made.id}/${token}/fail` })).statusCode).toBe(200);
      await engine.settle();
      await sink!.waitFor(4);
      expect(subjects()).toContain('Backup failed: Admin server nightly');
      expect(await events('backup.alert_sent')).toBe(2);
      const open = (await call('GET', '/api/alerts')).json().alerts;
      expect(open).toHaveLength(1);
      expect(open[0]).toMatchObject({ rule: 'backup_failed', severity: 'high' });
      // A second failed run before any success: the failure is already alerted, nothing new.
      expect((await t.app.inject({ method: 'POST', url: `/api/backups/checkin/${made.id}/${token}/fail` })).statusCode).toBe(200);
      await engine.settle();
      expect((await call('GET', '/api/alerts', undefined)).json().alerts).toHaveLength(1);
      expect(await events('alert.raised')).toBe(2);
    });

    if (dialect === 'sqlite') {
      it('DP-03 BK-02 each scheduled backup of Gatehouse’s own database is a check-in of its built-in job: kept to the newest N, 0600, encrypted; a failed run alerts', async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-own-backups-'));
        const keyFile = path.join(dir, '..', `${path.basename(dir)}.key`);
        writeNewKeyFile(keyFile);
        await start(true, { backupDir: dir, backupKeyFile: keyFile, backupKeep: 2, backupEveryMinutes: 60 });
        const engine = alertEngineFor(t.runtime, { gatherMs: 10 });
        const settings = ownBackupSettings(t.runtime)!;
        for (let i = 0; i < 3; i++) {
          expect((await runOwnBackup(t.runtime, settings)).status).toBe('ok');
          t.clock.advance(HOUR);
        }
        const files = readdirSync(dir).sort();
        expect(files).toHaveLength(2);
        expect(files[0]).toBe('gatehouse-20260907T090000Z.db.enc');
        for (const f of files) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
        const plain = path.join(dir, 'check.db');
        await decryptBackupFile(path.join(dir, files[1]!), plain, readBackupKey(keyFile, path.join(t.runtime.config.dataDir, 'secret.key')));
        expect(inspectBackup(plain).auditEvents).toBeGreaterThan(0);

        await again();
        const listed = (await call('GET', '/api/backups')).json().jobs;
        const own = listed.find((j: { name: string }) => j.name === 'Gatehouse database');
        expect(own).toMatchObject({ system: 'gatehouse', encrypted: true, intervalMinutes: 60, graceMinutes: 15, lastStatus: 'ok' });
        expect((await t.runtime.db.kysely.selectFrom('backup_checkin').select('status').where('job_id', '=', own.id).execute()).map((c) => c.status)).toEqual(['ok', 'ok', 'ok']);
        // Built in: no token to rotate, not retired from the console.
        expect((await call('POST', `/api/backups/${own.id}/token`)).statusCode).toBe(409);
        expect((await call('DELETE', `/api/backups/${own.id}`)).statusCode).toBe(409);

        // The key becomes readable by others: the run fails, is recorded as failed and alerts at once.
        chmodSync(keyFile, 0o644);
        const failed = await runOwnBackup(t.runtime, settings);
        expect(failed).toMatchObject({ status: 'fail', error: expect.stringContaining('can be read by other users') });
        expect(readdirSync(dir)).toHaveLength(3); // the two kept and check.db: nothing pruned on failure
        await engine.settle();
        await again();
        const alerts = (await call('GET', '/api/alerts')).json().alerts;
        expect(alerts).toEqual([expect.objectContaining({ rule: 'backup_failed', device: 'backup job “Gatehouse database”' })]);
        await sink!.waitFor(2);
        expect(sink!.messages.map((m) => m.raw).join('\n')).toContain('Backup failed: Gatehouse database');
      });
    } else {
      it('DP-03 on PostgreSQL the scheduled backup is refused at start, pointing to pg_dump', () => {
        expect(() => loadConfig({ GATEHOUSE_DATABASE_URL: 'postgres://gatehouse@127.0.0.1/gatehouse', GATEHOUSE_BACKUP_DIR: '/srv/backups' })).toThrow(/GATEHOUSE_BACKUP_DIR: the scheduled backup is for SQLite; on PostgreSQL back up with pg_dump/);
      });
    }

    it('BK-03 BK-05 test restores are due yearly and the continuity plan with its ransomware response has a review date', async () => {
      await start();
      const kinds = async () => (await backupsDue(t.runtime)).map((i) => i.kind);
      expect(await kinds()).toEqual(expect.arrayContaining(['backup_restore_test', 'continuity_plan']));
      const judged = async (id: string) => (await probe(id)!.evaluate(new Facts(t.runtime))).status;
      expect(await judged('restore-tested')).toBe('not_met');
      expect(await judged('continuity-plan')).toBe('not_met');
      const restore = await call('POST', '/api/backups/restore-tests', { result: 'pass', notes: 'Restored the MIS database to a spare VM and opened it' });
      expect(restore.statusCode).toBe(201);
      expect(restore.json()).toMatchObject({ result: 'pass', testedBy: 'Master Administrator' });
      const future = await call('POST', '/api/backups/restore-tests', { result: 'pass', notes: 'x', testedAt: '2030-01-01T00:00:00Z' });
      expect(future.statusCode).toBe(400);
      const badPlan = await call('PUT', '/api/backups/plan', { title: 'BC/DR', documentLink: 'javascript:alert(1)', ransomwareResponse: '', nextReviewAt: '2027-09-01' });
      expect(badPlan.statusCode).toBe(400);
      const plan = await call('PUT', '/api/backups/plan', { title: 'Business continuity and DR plan', documentLink: 'https://sharepoint.example/bcdr.pdf', ransomwareResponse: 'Isolate the network, call the IT provider, report to Action Fraud, restore from the offline copy.', contacts: 'IT provider: 01632 960000', nextReviewAt: '2027-09-01' });
      expect(plan.statusCode).toBe(200);
      expect(await kinds()).not.toContain('backup_restore_test');
      expect(await kinds()).not.toContain('continuity_plan');
      expect(await judged('restore-tested')).toBe('met');
      expect(await judged('continuity-plan')).toBe('met');
      t.clock.advance(366 * 24 * HOUR);
      expect(await kinds()).toEqual(expect.arrayContaining(['backup_restore_test', 'continuity_plan']));
      expect(await judged('restore-tested')).toBe('not_met');
    });

    it('BK-05 the continuity plan is edited in the console with its contacts; every version is kept as its history, audited with what changed', async () => {
      await start();
      const v1 = { title: 'Business continuity and DR plan', ransomwareResponse: '1. Unplug the network. 2. Call the IT provider. 3. Report to Action Fraud. 4. Restore from the offline copy.', contacts: 'IT provider: Acme IT, 01632 960000\nInsurer: RPA, 0300 000 0000', nextReviewAt: '2027-09-01' };
      const missing = await call('PUT', '/api/backups/plan', { ...v1, contacts: ' ' });
      expect(missing.statusCode).toBe(400);
      expect(missing.body).toContain('contacts');
      expect((await call('PUT', '/api/backups/plan', { ...v1, nextReviewAt: '2026-01-01' })).json().error.message).toContain('must be in the future');
      expect((await call('GET', '/api/backups/plan/history')).json().versions).toEqual([]);
      const first = await call('PUT', '/api/backups/plan', v1);
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ documentLink: null, contacts: v1.contacts, recordedBy: 'Master Administrator' });
      t.clock.advance(HOUR);
      await again();
      const second = await call('PUT', '/api/backups/plan', { ...v1, contacts: `${v1.contacts}\nDPO: dpo@school.example`, changeNote: 'Added the DPO' });
      expect(second.json()).toMatchObject({ changeNote: 'Added the DPO' });
      const history = (await call('GET', '/api/backups/plan/history')).json().versions;
      expect(history.map((v: { changeNote: string | null }) => v.changeNote)).toEqual(['Added the DPO', null]);
      expect(history[1].contacts).toBe(v1.contacts);
      expect((await call('GET', '/api/backups')).json().plan.contacts).toContain('DPO: dpo@school.example');
      const audited = await t.runtime.db.kysely.selectFrom('audit_event').select('body').where('action', '=', 'backup.plan_reviewed').orderBy('seq').execute();
      expect(audited.map((a) => JSON.parse(a.body).details.changed)).toEqual([['created'], ['contacts']]);
      // Read, not written, by a governor.
      await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'gov', displayName: 'A Governor', email: null, role: 'governor', passwordHash: null }));
      const gov = await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        const row = await ctx.db.selectFrom('account').select('id').where('username', '=', 'gov').executeTakeFirstOrThrow();
        return startSession(ctx, row.id, 'governor', t.runtime.profile, { ip: null, userAgent: null });
      });
      const govHeaders = { cookie: `__Host-gatehouse-session=${gov.token}`, 'x-csrf-token': csrfTokenFor(gov.token) };
      expect((await t.app.inject({ method: 'GET', url: '/api/backups/plan/history', headers: govHeaders })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'PUT', url: '/api/backups/plan', headers: govHeaders, payload: v1 })).statusCode).toBe(403);
    });

    it('BK-01 BK-04 backup jobs import from CSV all or nothing, each problem named by line and column; the export round-trips and neutralises formulas', async () => {
      await start();
      await call('POST', '/api/backups', job);
      const bad = [
        'name,what,location,encrypted,interval_minutes,grace_minutes',
        'Cloud mail,Staff and pupil mailboxes,cloud,yes,1440,120',
        'Cloud mail,Again,cloud,yes,1440,120',
        'Admin server nightly,Clash with an existing job,off_site,no,1440,60',
        'Tapes,Weekly tape,moon,maybe,2,0',
      ].join('\n');
      const refused = await call('POST', '/api/backups/import', { csv: bad });
      expect(refused.statusCode).toBe(400);
      const errors = refused.json().error.details.errors as Array<{ line: number; column: string }>;
      expect(errors).toEqual(expect.arrayContaining([
        expect.objectContaining({ line: 3, column: 'name' }),
        expect.objectContaining({ line: 4, column: 'name' }),
        expect.objectContaining({ line: 5, column: 'location' }),
        expect.objectContaining({ line: 5, column: 'encrypted' }),
        expect.objectContaining({ line: 5, column: 'interval_minutes' }),
        expect.objectContaining({ line: 5, column: 'grace_minutes' }),
      ]));
      expect(refused.json().error.message).toContain('nothing was imported');
      expect((await call('GET', '/api/backups')).json().jobs).toHaveLength(1);
      expect((await call('POST', '/api/backups/import', { csv: 'name,what\nx,y' })).json().error.message).toContain('no “location”');
      expect((await call('POST', '/api/backups/import', { csv: 'a\0b' })).statusCode).toBe(400);

      const good = [
        'Name,What,Location,Encrypted,Interval minutes,Grace minutes,State',
        'Cloud mail,Staff and pupil mailboxes,cloud,yes,1440,120,ok',
        '"=HYPERLINK(""http://evil"")",Formula in a name,off site,no,60,15,',
      ].join('\r\n');
      const imported = await call('POST', '/api/backups/import', { csv: good });
      expect(imported.statusCode).toBe(201);
      expect(imported.headers['cache-control']).toBe('no-store');
      const body = imported.json();
      expect(body.imported).toBe(2);
      const mail = body.jobs.find((j: { job: { name: string } }) => j.job.name === 'Cloud mail');
      expect(mail.job).toMatchObject({ location: 'cloud', encrypted: true, intervalMinutes: 1440, state: 'waiting' });
      expect((await t.app.inject({ method: 'GET', url: `/api/backups/checkin/${mail.job.id}/${mail.token}` })).statusCode).toBe(200);
      expect(await events('backup.jobs_imported')).toBe(1);

      const csv = (await call('GET', '/api/backups/export.csv')).body;
      expect(csv).toContain(`"'=HYPERLINK(""http://evil"")"`);
      // The export imports into another school's register (state and check-in columns ignored).
      const other = await startTestApp(dialect);
      try {
        const otherAdmin = await setUpSchool(other);
        const again = await other.app.inject({ method: 'POST', url: '/api/backups/import', headers: otherAdmin.headers, payload: { csv } });
        expect(again.statusCode, again.body).toBe(201);
        expect(again.json().imported).toBe(3);
      } finally {
        await other.close();
      }
      // Staff cannot import.
      expect((await call('POST', '/api/backups/import', { csv: good }, null)).statusCode).toBe(401);
    });

    it('BK-01 role escalation: staff and governors cannot add jobs or rotate tokens; governors can read; hostile input is refused', async () => {
      await start();
      await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
        await createAccount(ctx, { username: 'gov', displayName: 'A Governor', email: null, role: 'governor', passwordHash: null });
      });
      const made = (await call('POST', '/api/backups', job)).json();
      expect((await call('POST', '/api/backups', job)).statusCode).toBe(409);
      expect((await call('POST', '/api/backups', { ...job, name: 'x', intervalMinutes: 1 })).statusCode).toBe(400);
      expect((await call('POST', '/api/backups', { ...job, name: 'y', location: 'moon' })).statusCode).toBe(400);
      expect((await call('POST', '/api/backups', { ...job, name: 'z', extra: 1 })).statusCode).toBe(400);
      expect((await call('POST', `/api/backups/${made.job.id}/token`, undefined, null)).statusCode).toBe(401);
      // CSV export neutralises formulas and is audited.
      await call('POST', '/api/backups', { ...job, name: '=HYPERLINK("http://evil")' });
      const csv = await call('GET', '/api/backups/export.csv');
      expect(csv.body).toContain(`"'=HYPERLINK(""http://evil"")"`);
      expect(await events('backup.register_exported')).toBe(1);
    });

    it('GV-01 the risk register scores likelihood × impact, is reviewed on a date and due on the overview', async () => {
      await start();
      const bad = await call('POST', '/api/risks', { title: 'Ransomware', owner: 'IT lead', likelihood: 6, impact: 0, treatment: 'x', reviewAt: '2026-10-01' });
      expect(bad.statusCode).toBe(400);
      const past = await call('POST', '/api/risks', { title: 'Ransomware', owner: 'IT lead', likelihood: 3, impact: 5, treatment: 'Offline backups', reviewAt: '2020-01-01' });
      expect(past.statusCode).toBe(400);
      const made = await call('POST', '/api/risks', { title: 'Ransomware', owner: 'IT lead', likelihood: 3, impact: 5, treatment: 'Offline backups, MFA', reviewAt: '2026-09-14' });
      expect(made.statusCode).toBe(201);
      expect(made.json()).toMatchObject({ score: 15, overdue: false });
      expect((await probe('risk-register-reviewed')!.evaluate(new Facts(t.runtime))).status).toBe('due_soon');
      expect((await risksDue(t.runtime)).map((i) => i.kind)).toEqual(['risk_review']);
      const reviewed = await call('PUT', `/api/risks/${made.json().id}`, { title: 'Ransomware', owner: 'Business manager', likelihood: 2, impact: 5, treatment: 'Offline backups, MFA, tested restore', reviewAt: '2027-01-31' });
      expect(reviewed.json()).toMatchObject({ score: 10, owner: 'Business manager' });
      expect(await risksDue(t.runtime)).toEqual([]);
      expect(await events('risk.reviewed')).toBe(1);
      const csv = await call('GET', '/api/risks/export.csv');
      expect(csv.body).toContain('Business manager');
    });
  });
}
