import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * The backups register in Chromium (BK-01, BK-02, BK-04): the IT administrator adds a job, is shown
 * its check-in URL once, the backup run checks in with it, and the job shows as on schedule; then a
 * test restore recorded in the register turns the policy's BK-03 clause from not met to met on the
 * compliance dashboard (GV-08). Screenshots: test-results/screenshots/backups-*.png.
 */
describe('backups register in Chromium', () => {
  const e2e = browserSuite({ prefix: 'backups-', allow: /status of (400|401)/ });
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
});
