import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { splitNotes } from '../../src/audit/checkpoints.js';
import { emailFingerprint, fingerprintOf } from '../../src/audit/fingerprint.js';
import { createWitnessKey } from '../../src/audit/witness.js';
import { systemActor } from '../../src/core/context.js';
import { runCli } from '../helpers/cli.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const HOUR = 3_600_000;

async function setContacts(t: TestApp, contacts: Array<{ role: string; email: string | null }>): Promise<void> {
  await t.runtime.trail.transaction(systemActor('test'), async (ctx) => {
    const now = ctx.clock.now().toISOString();
    for (const c of contacts) await ctx.db.insertInto('school_contact').values({ role: c.role, name: `The ${c.role}`, email: c.email, updated_at: now }).execute();
  });
}

for (const dialect of await dialects()) {
  describe(`the trail's fingerprint in the console and by e-mail (${dialect})`, () => {
    let t: TestApp | undefined;
    let sink: Awaited<ReturnType<typeof startSmtpSink>> | undefined;
    afterEach(async () => {
      await t?.close();
      await sink?.close();
      t = undefined;
      sink = undefined;
    });

    it('AU-01 the Audit page prints a fresh fingerprint (recorded in the trail), checks one written down earlier, and shows the newest checkpoint only to audit readers', async () => {
      t = await startTestApp(dialect);
      const admin = await setUpSchool(t);
      expect((await t.app.inject({ method: 'GET', url: '/api/audit/checkpoint' })).statusCode).toBe(401);

      const printed = await t.app.inject({ method: 'POST', url: '/api/audit/fingerprint', headers: admin.headers });
      expect(printed.statusCode).toBe(200);
      const shown = printed.json() as { seq: number; hash: string; note: string; school: string; fingerprint: { text: string; grouped: string } };
      expect(shown.school).toBe('Springfield Primary');
      expect(shown.fingerprint).toEqual({ text: fingerprintOf(shown.seq, shown.hash).text, grouped: fingerprintOf(shown.seq, shown.hash).grouped });
      expect(shown.fingerprint.grouped).toMatch(/^[0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}$/);
      expect(splitNotes(shown.note)).toHaveLength(1);
      // Signed now: it covers every event up to the moment it was printed.
      const head = await t.runtime.db.kysely.selectFrom('audit_event').select(['seq', 'action', 'body']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      expect(head.action).toBe('audit.fingerprint_shown');
      expect(Number(head.seq)).toBe(shown.seq + 1);
      expect(JSON.parse(head.body).details).toEqual({ seq: shown.seq, fingerprint: shown.fingerprint.text });

      const checkpoint = await t.app.inject({ method: 'GET', url: '/api/audit/checkpoint', headers: admin.headers });
      expect(checkpoint.json()).toMatchObject({ seq: shown.seq, note: shown.note });

      const good = await t.app.inject({ method: 'POST', url: '/api/audit/verify', headers: admin.headers, payload: { heads: [`${shown.seq}:${shown.fingerprint.grouped}`] } });
      expect(good.json()).toMatchObject({ ok: true, external: { fingerprints: 1, fingerprintsAgreeing: 1, summary: '1 fingerprint agrees' } });
      const wrong = await t.app.inject({ method: 'POST', url: '/api/audit/verify', headers: admin.headers, payload: { heads: [`${shown.seq}:0000 0000 0000 0000`] } });
      expect(wrong.json()).toMatchObject({ ok: false, firstBrokenSeq: 1, problems: [expect.objectContaining({ kind: 'rewritten' })] });
      const beyond = await t.app.inject({ method: 'POST', url: '/api/audit/verify', headers: admin.headers, payload: { heads: [`${shown.seq + 1000}:${shown.fingerprint.grouped}`] } });
      expect(beyond.json()).toMatchObject({ ok: false, problems: [expect.objectContaining({ kind: 'truncated' })] });
      const junk = await t.app.inject({ method: 'POST', url: '/api/audit/verify', headers: admin.headers, payload: { heads: ['twelve:abc'] } });
      expect(junk.statusCode).toBe(400);
      // Without SMTP nothing can be e-mailed, and the console is told why.
      const mail = await t.app.inject({ method: 'POST', url: '/api/audit/fingerprint/email', headers: admin.headers });
      expect(mail.statusCode).toBe(409);
      expect(mail.json().error.code).toBe('smtp_not_configured');
    });

    it('AU-01 a witness on another machine fetches the newest checkpoint over HTTP when the school makes it public, and cosigns it (`audit witness --url`)', async () => {
      t = await startTestApp(dialect, { config: { auditCheckpointPublic: true } });
      await t.runtime.trail.checkpointNow();
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as AddressInfo).port;
      const open = await t.app.inject({ method: 'GET', url: '/api/audit/checkpoint' });
      expect(open.statusCode).toBe(200);
      const clerk = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-clerk-'));
      try {
        createWitnessKey(path.join(clerk, 'w.key'), 'clerk.example');
        writeFileSync(path.join(clerk, 'server.pub'), t.runtime.signer!.publicKeyPem);
        const run = await runCli(['audit', 'witness', '--key', path.join(clerk, 'w.key'), '--log', path.join(clerk, 'w.log'), '--server-key', path.join(clerk, 'server.pub'), '--url', `http://127.0.0.1:${port}`], {});
        expect(run.stderr).not.toMatch(/gatehouse:/);
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(new RegExp(`^Cosigned checkpoint ${open.json().seq} `));
        const entry = splitNotes(readFileSync(path.join(clerk, 'w.log'), 'utf8'));
        expect(entry).toHaveLength(1);
        expect(entry[0]).toMatch(/\n— clerk\.example [A-Za-z0-9+/=]+\n$/);
      } finally {
        rmSync(clerk, { recursive: true, force: true });
      }
    }, 120_000);

    it('AU-01 `gatehouse audit fingerprint` signs the head and prints the fingerprint that `audit verify --head` then finds in agreement', async () => {
      t = await startTestApp(dialect);
      const env = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
      const printed = await runCli(['audit', 'fingerprint', '--json'], env);
      expect(printed.code).toBe(0);
      const shown = JSON.parse(printed.stdout) as { seq: number; fingerprint: string; grouped: string; note: string };
      expect(shown.fingerprint).toMatch(new RegExp(`^${shown.seq}:[0-9a-f]{16}$`));
      const checked = await runCli(['audit', 'verify', '--head', `${shown.seq}:${shown.grouped}`], env);
      expect(checked.code).toBe(0);
      expect(checked.stdout).toContain(`Outside the server: 1 fingerprint agrees, the newest covering event ${shown.seq}.`);
    }, 180_000);

    it('AU-01 the fingerprint e-mail: on demand to the headteacher and governor, none when off or without SMTP, retried a day after a failure, not an hour', async () => {
      sink = await startSmtpSink();
      t = await startTestApp(dialect, { config: { smtpUrl: sink.url } });
      const admin = await setUpSchool(t);
      const none = await t.app.inject({ method: 'POST', url: '/api/audit/fingerprint/email', headers: admin.headers });
      expect(none.statusCode).toBe(409);
      expect(none.json().error.code).toBe('no_recipients');
      await setContacts(t, [{ role: 'headteacher', email: 'head@school.example' }, { role: 'governor', email: 'chair@governors.example' }]);
      const now = await t.app.inject({ method: 'POST', url: '/api/audit/fingerprint/email', headers: admin.headers });
      expect(now.statusCode).toBe(200);
      expect(now.json().sent.sort()).toEqual(['chair@governors.example', 'head@school.example']);
      await sink.waitFor(2);
      expect(sink.messages[0]!.raw).toMatch(/Subject: Springfield Primary: audit trail fingerprint \d+ \/ [0-9a-f]{4} [0-9a-f]{4}/);
      // Scheduled runs: nothing when the schedule is off; the on-demand e-mail counts for this week.
      expect((await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'off' })).attempted).toBe(false);
      expect((await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'weekly' })).attempted).toBe(false);
      t.clock.advance(24 * HOUR + 1);
      expect((await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'daily' })).attempted).toBe(true);
      await sink.waitFor(4);

      // The mail server goes away: the failure is recorded, and tried again a day later, not every hour.
      await sink.close();
      sink = undefined;
      t.clock.advance(8 * 24 * HOUR);
      const failed = await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'weekly' });
      expect(failed).toMatchObject({ attempted: true, sent: [] });
      expect(failed.failed).toHaveLength(2);
      t.clock.advance(2 * HOUR);
      expect((await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'weekly' })).attempted).toBe(false);
      t.clock.advance(23 * HOUR);
      expect((await emailFingerprint(t.runtime, systemActor(), { scheduled: true, schedule: 'weekly' })).attempted).toBe(true);
      const actions = await t.runtime.db.kysely.selectFrom('audit_event').select('action').where('action', 'like', 'audit.fingerprint%').orderBy('seq').execute();
      expect(actions.map((a) => a.action)).toEqual([
        'audit.fingerprint_emailing', 'audit.fingerprint_emailed',
        'audit.fingerprint_emailing', 'audit.fingerprint_emailed',
        'audit.fingerprint_emailing', 'audit.fingerprint_email_failed',
        'audit.fingerprint_emailing', 'audit.fingerprint_email_failed',
      ]);
    }, 120_000);
  });
}
