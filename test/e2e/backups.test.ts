import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const sink = await startSmtpSink();

/**
 * The backups register in Chromium (BK-01, BK-02, BK-04): the IT administrator adds a job, is shown
 * its check-in URL once, the backup run checks in with it, and the job shows as on schedule; then a
 * test restore recorded in the register turns the policy's BK-03 clause from not met to met on the
 * compliance dashboard (GV-08). A run that reports a failure raises an alert in the alerts engine:
 * mailed (a real SMTP sink), on the Alerts page, acknowledged and closed there (BK-02). The
 * continuity plan is written and reviewed in the console with its history (BK-05), and a CSV import
 * with mistakes is refused naming each line and column. Screenshots: test-results/screenshots/backups-*.png.
 */
describe('backups register in Chromium', () => {
  const e2e = browserSuite({
    prefix: 'backups-',
    allow: /status of (400|401)/,
    env: (test) => {
      // Security alerts (a failed backup among them) also to the senior leader, who has an e-mail address here.
      const profile = path.join(test.dataDir, 'profile.yaml');
      writeFileSync(profile, 'name: Springfield backups test\nextends: ncsc\nalerts:\n  recipients:\n    safeguarding: [dsl]\n    security: [administrator, senior_leader]\n');
      return { GATEHOUSE_SMTP_URL: sink.url, GATEHOUSE_PROFILE: profile };
    },
  });
  afterAll(async () => {
    await sink.close();
  });
  let admin: HttpSessionWithSecret;
  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  }, 120_000);

  it('BK-01 BK-02 BK-04 the administrator adds a job, gets its check-in URL once, and a run checks in', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('link', { name: 'Backups' }).click();
    await page.getByRole('heading', { name: 'Backups', exact: true }).waitFor();
    await page.getByText('No backup job is registered yet.').waitFor();
    const form = page.getByRole('form', { name: 'Add a backup job' });
    await form.getByLabel('Name').fill('Admin server nightly');
    await form.getByLabel('What is backed up').fill('MIS database and staff shares');
    await e2e.shot(page, 'empty-form');
    await form.getByRole('button', { name: 'Add job' }).click();
    const shown = page.getByTestId('checkin-url');
    await shown.waitFor();
    const text = (await shown.locator('code').textContent())!;
    const url = text.replace(/^curl -fsS /, '');
    expect(url).toMatch(/\/api\/backups\/checkin\/[0-9a-f-]{36}\/[A-Za-z0-9_-]{43}$/);
    const target = url.startsWith('http') ? url : `${e2e.server.url}${url}`;
    expect((await fetch(target)).status).toBe(200);
    await page.reload();
    await page.getByRole('link', { name: 'Backups' }).click().catch(() => undefined);
    await page.getByTestId('backup-jobs').getByText('On schedule').waitFor();
    await expect(page.getByTestId('checkin-url').count()).resolves.toBe(0);
    await e2e.shot(page, 'on-schedule');
    e2e.expectNoProblems();
  });

  it('GV-08 BK-03 the compliance dashboard turns "test restores at least yearly" from not met to met once a test restore is recorded', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    const clause = async () => {
      await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Compliance' }).click();
      await page.locator('[data-framework="school-policy"]').click();
      await page.getByRole('heading', { name: 'The school\'s technical-security policy' }).waitFor();
      const row = page.locator('tr[data-clause="BK-03"]');
      await row.waitFor();
      return row;
    };
    const before = await clause();
    expect(await before.locator('td').nth(1).textContent()).toBe('not met');
    await e2e.shot(page, 'bk03-not-met');

    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Backups' }).click();
    const form = page.getByRole('form', { name: 'Record a test restore' });
    await form.getByRole('button', { name: 'Record test restore' }).click();
    await form.locator('.field-error, [role="alert"]').first().waitFor(); // nothing said about the restore: refused with a reason
    await form.getByLabel('What was restored and how it went').fill('Restored the MIS database from last night’s off-site copy to a spare server; opened and checked 20 pupil records.');
    await form.getByRole('button', { name: 'Record test restore' }).click();
    await page.getByText(/Restored the MIS database/).waitFor();

    const after = await clause();
    expect(await after.locator('td').nth(1).textContent()).toBe('met');
    await e2e.shot(page, 'bk03-met');
    e2e.expectNoProblems();
  });

  it('BK-02 a failed backup run raises an alert: at the SMTP sink and on the Alerts page, where it is acknowledged and closed', async () => {
    const url = e2e.server.url;
    // The IT provider named among the school's contacts gets the backup mail; the senior leader, the security alert.
    expect((await call(url, 'PUT', '/api/school/contacts/it_provider', admin, { name: 'Acme IT', email: 'it@school.example' })).status).toBe(200);
    await createPersonOverHttp(url, admin, { username: 'ivy', displayName: 'Ivy Head', role: 'senior_leader', email: 'head@school.example' });
    const made = await call(url, 'POST', '/api/backups', admin, { name: 'NAS nightly', what: 'Staff shares', location: 'on_site', encrypted: true, intervalMinutes: 1440, graceMinutes: 120 });
    expect(made.status).toBe(201);
    const { job, token } = (await made.json()) as { job: { id: string }; token: string };
    expect((await fetch(`${url}/api/backups/checkin/${job.id}/${token}/fail`)).status).toBe(200);
    const deadline = Date.now() + 30_000;
    const subject = (m: (typeof sink.messages)[number]) => /^Subject: (.*)$/m.exec(m.raw)?.[1] ?? '';
    while (!(sink.messages.some((m) => subject(m).includes('Backup failed: NAS nightly')) && sink.messages.some((m) => subject(m).includes('Security alert'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const alertMail = sink.messages.find((m) => subject(m).includes('Security alert'));
    expect(alertMail, 'no alert mail reached the sink').toBeDefined();
    expect(alertMail!.to).toEqual(['head@school.example']);
    expect(alertMail!.raw).toContain('NAS nightly');
    expect(sink.messages.find((m) => subject(m).includes('Backup failed: NAS nightly'))!.to).toEqual(['it@school.example']);
    const id = /alerts\?id=(?:3D)?([0-9a-f-]{36})/.exec(alertMail!.raw)![1]!;

    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.locator(`tr[data-alert="${id}"]`).waitFor();
    expect(await page.locator(`tr[data-alert="${id}"]`).innerText()).toContain('backup job “NAS nightly”');
    await e2e.shot(page, 'alert-list');
    await page.goto(`${url}/alerts?id=${id}`);
    const detail = page.getByTestId('alert-detail');
    await detail.waitFor();
    expect(await detail.innerText()).toContain('reported a failure');
    await detail.getByRole('button', { name: 'Acknowledge' }).click();
    const form = page.getByRole('form', { name: 'Close the alert' });
    await form.waitFor();
    await form.getByLabel('What was done').fill('The NAS volume was full; cleared old snapshots and re-ran the job.');
    await form.getByLabel('Outcome').selectOption({ label: 'No concern after looking into it' });
    await form.getByRole('button', { name: 'Close the alert' }).click();
    await detail.getByText(/closed by Master Administrator/).waitFor();
    await e2e.shot(page, 'alert-closed');

    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Backups' }).click();
    await page.getByTestId('backup-jobs').getByText('Failed').waitFor();
    await e2e.shot(page, 'failed-job');
    e2e.expectNoProblems();
  }, 120_000);

  it('BK-05 BK-01 the continuity plan is written and reviewed in the console with its history; a CSV import with mistakes names each line and column', async () => {
    const page = await e2e.page({ width: 1366, height: 1000 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Backups' }).click();
    await page.getByRole('button', { name: 'Write the plan' }).click();
    const form = page.getByRole('form', { name: 'Continuity plan' });
    await form.getByLabel('Response to ransomware (who does what, in which order)').fill('1. Unplug the network switch in the server room.\n2. Call the IT provider.\n3. Report to Action Fraud (0300 123 2040).\n4. Restore from the offline copy.');
    await form.getByLabel('Who to call (one a line)').fill('IT provider: Acme IT, 01632 960000\nInsurer: RPA, 0300 000 0000');
    await form.getByLabel('Next review').fill('2027-09-01');
    await e2e.shot(page, 'plan-form');
    await form.getByRole('button', { name: 'Save this version' }).click();
    const plan = page.getByTestId('continuity-plan');
    await plan.getByText('Acme IT, 01632 960000').waitFor();

    await page.getByRole('button', { name: 'Review the plan' }).click();
    await form.getByLabel('Who to call (one a line)').fill('IT provider: Acme IT, 01632 960000\nInsurer: RPA, 0300 000 0000\nDPO: dpo@school.example');
    await form.getByLabel('What changed (optional)').fill('Added the DPO');
    await form.getByRole('button', { name: 'Save this version' }).click();
    await plan.getByText('dpo@school.example').waitFor();
    await page.getByRole('button', { name: 'Earlier versions' }).click();
    const history = page.getByTestId('plan-history');
    await history.getByText('Added the DPO').waitFor();
    expect(await history.locator('tbody tr').count()).toBe(2);
    await e2e.shot(page, 'plan-history');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-backups-'));
    const bad = path.join(dir, 'jobs.csv');
    writeFileSync(bad, 'name,what,location,encrypted,interval_minutes,grace_minutes\nCloud mail,Mailboxes,cloud,yes,1440,120\nTapes,Weekly tape,moon,maybe,1440,60\n');
    const importForm = page.getByRole('form', { name: 'Import backup jobs' });
    await importForm.getByLabel('CSV file').setInputFiles(bad);
    await importForm.getByRole('button', { name: 'Import' }).click();
    const problems = page.getByTestId('import-problems');
    await problems.getByText('line 3, location: must be one of on_site, off_site, offline, cloud').waitFor();
    await problems.getByText('line 3, encrypted: must be yes or no').waitFor();
    await expect(page.getByTestId('backup-jobs').getByText('Cloud mail').count()).resolves.toBe(0);
    await e2e.shot(importForm, 'import-refused');
    const good = path.join(dir, 'good.csv');
    writeFileSync(good, 'name,what,location,encrypted,interval_minutes,grace_minutes\nCloud mail,Mailboxes,cloud,yes,1440,120\nTapes,Weekly tape,offline,no,10080,1440\n');
    await importForm.getByLabel('CSV file').setInputFiles(good);
    await importForm.getByRole('button', { name: 'Import' }).click();
    await page.getByTestId('checkin-urls').waitFor();
    await page.getByTestId('backup-jobs').getByText('Tapes').waitFor();
    await e2e.shot(page, 'imported');
    e2e.expectNoProblems();
  }, 120_000);
});
