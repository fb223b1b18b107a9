import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * Access rights in Chromium (AC-01, AC-02, AC-03): an IT administrator reads the matrix and records
 * a school system with rights in it; a senior leader walks the annual review to sign-off.
 * Screenshots: test-results/screenshots/access-*.png.
 */
describe('access rights and the annual review in Chromium', () => {
  const e2e = browserSuite({ prefix: 'access-', allow: /status of (400|401|409)/ });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    await createPersonOverHttp(url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader', email: 'head@springfield.sch.uk' });
    await createPersonOverHttp(url, admin, { username: 'ddsl', displayName: 'Dee Safeguarding', role: 'dsl' });
    const teacher = await createPersonOverHttp(url, admin, { username: 'tteacher', displayName: 'Tom Teacher', role: 'staff' });
    // Giving administrator rights needs a recent re-authentication (test/identity/reauth.test.ts).
    await reauthOverHttp(url, admin);
    const linked = await call(url, 'POST', `/api/accounts/${teacher.id}/administrator-account`, admin);
    expect(linked.status).toBe(201);
  });

  it('AC-01 AC-03 an IT administrator reads the matrix and records a school system with each group’s rights', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
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
    await e2e.shot(page, '01-matrix');

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
    await e2e.shot(page, '02-school-systems');
    await e2e.shot(systems, '02b-school-systems-detail');

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
    await e2e.shot(systems, '02c-remove-system');
    await systems.getByRole('button', { name: 'Yes, remove' }).click();
    await systems.locator('tr[data-system="Old VLE (Moodle)"]').waitFor({ state: 'detached' });

    // Every change is in the audit trail.
    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByTestId('audit-events').getByText('access.grant_changed').first().waitFor();
    e2e.expectNoProblems();
    await page.close();
  });

  it('AC-02 a senior leader reviews every privileged account and signs off', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead');
    const attention = page.getByTestId('needs-attention');
    await attention.getByText('Annual access review overdue').waitFor();
    await e2e.shot(page, '03-overdue-on-overview');
    await attention.getByRole('link', { name: 'Annual access review overdue' }).click();

    const panel = page.getByTestId('access-review');
    await panel.getByTestId('review-status').getByText('Never').waitFor();
    await panel.getByRole('button', { name: 'Start the access review' }).click();
    const accounts = panel.getByTestId('privileged-accounts');
    await accounts.waitFor();
    const usernames = await accounts.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-username')));
    expect(usernames.sort()).toEqual(['ddsl', 'hhead', 'master', 'tteacher.admin']);
    await accounts.locator('tr[data-username="tteacher.admin"]').getByText('Administrator account of Tom Teacher (tteacher)').waitFor();
    await e2e.shot(page, '04-review-started');
    await e2e.shot(panel, '04b-review-panel');

    await panel.getByRole('button', { name: 'Confirm master' }).click();
    await panel.getByTestId('decision-master').waitFor();
    await panel.getByRole('button', { name: 'Confirm hhead' }).click();
    await panel.getByTestId('decision-hhead').waitFor();
    await panel.getByRole('button', { name: 'Change needed for tteacher.admin' }).click();
    const change = panel.getByRole('form', { name: 'Change needed for tteacher.admin' });
    await change.getByLabel('What should change').fill('Tom no longer looks after the network: remove his administrator account.');
    await change.getByLabel(/Disable this account now/).check();
    await e2e.shot(page, '05-change-needed');
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
    await e2e.shot(page, '06-ready-to-sign-off');
    await e2e.shot(panel, '06b-review-panel');
    await panel.getByRole('button', { name: 'Sign off the review' }).click();

    const past = panel.getByTestId('past-reviews');
    await past.getByText('Signed off').waitFor();
    expect(await past.textContent()).toContain('by Helen Head (hhead)');
    expect(await panel.getByTestId('review-status').textContent()).not.toContain('Never');
    await panel.getByRole('button', { name: 'Start the access review' }).waitFor();
    await e2e.shot(page, '07-signed-off');

    await past.getByRole('link', { name: 'Open' }).click();
    const record = page.getByTestId('review-record');
    await record.getByTestId('signed-off').waitFor();
    await record.getByText('Reviewed with the business manager on the INSET day').waitFor();
    // The record shows the accounts as they stood when the review began.
    expect(await record.getByTestId('privileged-accounts').locator('tr[data-username="tteacher.admin"]').textContent()).toContain('active');
    await record.getByTestId('systems-matrix').locator('tr[data-system="Finance"]').waitFor();
    await e2e.shot(page, '08-review-record');

    // The overview no longer lists the review as due.
    await page.getByRole('link', { name: 'Overview' }).click();
    await attention.waitFor();
    expect(await attention.textContent()).not.toContain('Annual access review');
    e2e.expectNoProblems();
    await page.close();

    // The disabled administrator account can no longer sign in.
    const accounts2 = (await (await call(e2e.server.url, 'GET', '/api/accounts?q=tteacher.admin', admin)).json()) as { accounts: Array<{ username: string; status: string }> };
    expect(accounts2.accounts.find((a) => a.username === 'tteacher.admin')!.status).toBe('disabled');
  });
});
