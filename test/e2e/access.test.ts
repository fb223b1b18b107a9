import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { TEST_PASSWORD, call, createPersonOverHttp, freshCode, setupAndSignIn, startServerProcess, type HttpSessionWithSecret, type ServerProcess } from '../helpers/server-process.js';

/**
 * Access rights in Chromium (AC-01, AC-02, AC-03): an IT administrator reads the matrix and records
 * a school system with rights in it; a senior leader walks the annual review to sign-off.
 * Screenshots: test-results/screenshots/access-*.png.
 */
describe('access rights and the annual review in Chromium', () => {
  let test: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let admin: HttpSessionWithSecret;

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `access-${name}.png`), fullPage: true });
  const watch = (page: Page) => {
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (400|401|409)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    return problems;
  };

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) throw new Error('The console is not built: run `npm run build`.');
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    server = await startServerProcess({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1' }, { built: true });
    admin = await setupAndSignIn(server);
    await createPersonOverHttp(server.url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader', email: 'head@springfield.sch.uk' });
    await createPersonOverHttp(server.url, admin, { username: 'ddsl', displayName: 'Dee Safeguarding', role: 'dsl' });
    const teacher = await createPersonOverHttp(server.url, admin, { username: 'tteacher', displayName: 'Tom Teacher', role: 'staff' });
    const linked = await call(server.url, 'POST', `/api/accounts/${teacher.id}/administrator-account`, admin);
    expect(linked.status).toBe(201);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });

  it('AC-01 AC-03 an IT administrator reads the matrix and records a school system with each group’s rights', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems = watch(page);
    await page.goto(server.url);
    await page.getByLabel('Username').fill('master');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Code').fill(await freshCode(admin.totpSecret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('needs-attention').getByText('Annual access review overdue').waitFor();

    await page.getByRole('link', { name: 'Access rights' }).click();
    const gatehouse = page.getByTestId('gatehouse-matrix');
    await gatehouse.waitFor();
    // Only senior leaders sign off the review: one tick on that row, under "Senior leader".
    const reviewRow = gatehouse.locator('tr[data-permission="access.review"]');
    expect(await reviewRow.locator('td.tick.yes').count()).toBe(1);
    expect(await reviewRow.locator('td.tick.yes').textContent()).toContain('Senior leader: yes');
    await page.getByTestId('object-rules').getByText('Staff may reset pupils’ passwords only for pupils in classes they teach').waitFor();
    await page.getByTestId('no-systems').waitFor();
    // An IT administrator cannot start the review.
    expect(await page.getByRole('button', { name: 'Start the access review' }).count()).toBe(0);
    await page.getByText('A senior leader starts and signs off the review.').waitFor();
    await shot(page, '01-matrix');

    await page.getByLabel('System name').fill('MIS (Arbor)');
    await page.getByLabel('What it holds (optional)').fill('Pupil records, attendance, behaviour');
    await page.getByRole('button', { name: 'Add system' }).click();
    const systems = page.getByTestId('systems-matrix');
    await systems.locator('tr[data-system="MIS (Arbor)"]').waitFor();
    // A duplicate is explained, and nothing is lost.
    await page.getByLabel('System name').fill('MIS (Arbor)');
    await page.getByRole('button', { name: 'Add system' }).click();
    await page.getByRole('alert').filter({ hasText: 'is already listed' }).waitFor();
    await page.getByLabel('System name').fill('Finance');
    await page.getByRole('button', { name: 'Add system' }).click();
    await systems.locator('tr[data-system="Finance"]').waitFor();

    await page.getByLabel('MIS (Arbor): School office (reception)').selectOption('edit');
    await systems.locator('tr[data-system="MIS (Arbor)"] td.level-edit').waitFor();
    await page.getByLabel('Finance: School office (reception)').selectOption('admin');
    await page.getByLabel('Finance: Senior leader').selectOption('read');
    const form = page.getByRole('form', { name: 'Record a right' });
    await form.getByLabel('System').selectOption({ label: 'MIS (Arbor)' });
    await form.getByLabel('Who').selectOption({ label: 'Staff' });
    await form.getByLabel('Level').selectOption({ label: 'Read' });
    await form.getByLabel('Note (optional)').fill('Only their own classes');
    await form.getByRole('button', { name: 'Save' }).click();
    await systems.locator('tr[data-system="MIS (Arbor)"]').getByText('Only their own classes').waitFor();
    expect(await page.getByLabel('MIS (Arbor): Staff').inputValue()).toBe('read');
    await shot(page, '02-school-systems');
    await systems.screenshot({ path: path.join(SCREENSHOTS, 'access-02b-school-systems-detail.png') });

    // Rename a system, then remove one with its rights.
    await page.getByLabel('System name').fill('Old VLE');
    await page.getByRole('button', { name: 'Add system' }).click();
    await page.getByLabel('Old VLE: Pupil').selectOption('read');
    await page.getByRole('button', { name: 'Rename Old VLE' }).click();
    await systems.getByLabel('System name').fill('Old VLE (Moodle)');
    await systems.getByRole('button', { name: 'Save' }).click();
    await systems.locator('tr[data-system="Old VLE (Moodle)"]').waitFor();
    await page.getByRole('button', { name: 'Remove Old VLE (Moodle)' }).click();
    await systems.getByRole('group', { name: 'Remove Old VLE (Moodle)?' }).getByText('Remove it and its 1 recorded right?').waitFor();
    await systems.screenshot({ path: path.join(SCREENSHOTS, 'access-02c-remove-system.png') });
    await systems.getByRole('button', { name: 'Yes, remove' }).click();
    await systems.locator('tr[data-system="Old VLE (Moodle)"]').waitFor({ state: 'detached' });

    // Every change is in the audit trail.
    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByTestId('audit-events').getByText('access.grant_changed').first().waitFor();
    expect(problems, problems.join('\n')).toEqual([]);
    await page.close();
  });

  it('AC-02 a senior leader reviews every privileged account and signs off', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems = watch(page);
    await page.goto(server.url);
    await page.getByLabel('Username').fill('hhead');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const attention = page.getByTestId('needs-attention');
    await attention.getByText('Annual access review overdue').waitFor();
    await shot(page, '03-overdue-on-overview');
    await attention.getByRole('link', { name: 'Annual access review overdue' }).click();

    const panel = page.getByTestId('access-review');
    await panel.getByTestId('review-status').getByText('Never').waitFor();
    await panel.getByRole('button', { name: 'Start the access review' }).click();
    const accounts = panel.getByTestId('privileged-accounts');
    await accounts.waitFor();
    const usernames = await accounts.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-username')));
    expect(usernames.sort()).toEqual(['ddsl', 'hhead', 'master', 'tteacher.admin']);
    await accounts.locator('tr[data-username="tteacher.admin"]').getByText('Administrator account of Tom Teacher (tteacher)').waitFor();
    await shot(page, '04-review-started');
    await panel.screenshot({ path: path.join(SCREENSHOTS, 'access-04b-review-panel.png') });

    await panel.getByRole('button', { name: 'Confirm master' }).click();
    await panel.getByTestId('decision-master').waitFor();
    await panel.getByRole('button', { name: 'Confirm hhead' }).click();
    await panel.getByTestId('decision-hhead').waitFor();
    await panel.getByRole('button', { name: 'Change needed for tteacher.admin' }).click();
    const change = panel.getByRole('form', { name: 'Change needed for tteacher.admin' });
    await change.getByLabel('What should change').fill('Tom no longer looks after the network: remove his administrator account.');
    await change.getByLabel(/Disable this account now/).check();
    await shot(page, '05-change-needed');
    await change.getByRole('button', { name: 'Record' }).click();
    const decided = panel.getByTestId('decision-tteacher.admin');
    await decided.getByText('Change needed').waitFor();
    await decided.getByText('disabled').waitFor();

    // One account still lacks a decision: sign-off waits for it.
    await panel.getByTestId('missing-decisions').getByText('1 account still needs a decision').waitFor();
    expect(await panel.getByRole('button', { name: 'Sign off the review' }).isDisabled()).toBe(true);
    await panel.getByRole('button', { name: 'Confirm ddsl' }).click();
    await panel.getByTestId('decision-ddsl').waitFor();
    await panel.getByTestId('review-progress').getByText('4 of 4 privileged accounts decided').waitFor();

    await panel.getByLabel('Your note on the rights above (optional)').fill('The office should not need admin rights in Finance: ask the business manager.');
    await panel.getByRole('button', { name: 'Save note' }).click();
    await panel.locator('.review-note .saved').waitFor();
    await panel.getByLabel('Summary').fill('Reviewed with the business manager on the INSET day. One administrator account disabled.');
    await shot(page, '06-ready-to-sign-off');
    await panel.screenshot({ path: path.join(SCREENSHOTS, 'access-06b-review-panel.png') });
    await panel.getByRole('button', { name: 'Sign off the review' }).click();

    const past = panel.getByTestId('past-reviews');
    await past.getByText('Signed off').waitFor();
    expect(await past.textContent()).toContain('by Helen Head (hhead)');
    expect(await panel.getByTestId('review-status').textContent()).not.toContain('Never');
    await panel.getByRole('button', { name: 'Start the access review' }).waitFor();
    await shot(page, '07-signed-off');

    await past.getByRole('link', { name: 'Open' }).click();
    const record = page.getByTestId('review-record');
    await record.getByTestId('signed-off').waitFor();
    await record.getByText('Reviewed with the business manager on the INSET day').waitFor();
    // The record shows the accounts as they stood when the review began.
    expect(await record.getByTestId('privileged-accounts').locator('tr[data-username="tteacher.admin"]').textContent()).toContain('active');
    await record.getByTestId('systems-matrix').locator('tr[data-system="Finance"]').waitFor();
    await shot(page, '08-review-record');

    // The overview no longer lists the review as due.
    await page.getByRole('link', { name: 'Overview' }).click();
    await attention.waitFor();
    expect(await attention.textContent()).not.toContain('Annual access review');
    expect(problems, problems.join('\n')).toEqual([]);
    await page.close();

    // The disabled administrator account can no longer sign in.
    const accounts2 = (await (await call(server.url, 'GET', '/api/accounts?q=tteacher.admin', admin)).json()) as { accounts: Array<{ username: string; status: string }> };
    expect(accounts2.accounts.find((a) => a.username === 'tteacher.admin')!.status).toBe('disabled');
  });
});
