import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * The compliance view in Chromium (GV-08): a senior leader opens Cyber Essentials, sees the
 * access-control clause not met, the access review is signed off, and the clause shows as met with
 * its evidence; then a clause that needs a person's word is signed off from the page. Screenshots:
 * test-results/screenshots/compliance-*.png.
 */
describe('the compliance view in Chromium', () => {
  const e2e = browserSuite({ prefix: 'compliance-', allow: /status of (400|401)/ });
  let head: HttpSessionWithSecret;

  beforeAll(async () => {
    const admin = await setupAndSignIn(e2e.server);
    head = (await createPersonOverHttp(e2e.server.url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader', email: 'head@springfield.sch.uk' })).session;
  });

  it('GV-08 a clause turns from not met to met once the record is made, and a clause needing a person’s word is signed off from the page', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead');
    await page.getByRole('link', { name: 'Compliance' }).click();
    const card = page.locator('[data-framework="cyber-essentials"]');
    await card.waitFor();
    expect(await page.locator('.compliance-card').count()).toBe(4);
    await e2e.shot(page, '01-frameworks');

    await card.click();
    await page.getByRole('heading', { name: 'Cyber Essentials v3.3' }).waitFor();
    const a71 = page.locator('tr[data-clause="A7.1"]');
    expect(await a71.locator('td').nth(1).textContent()).toBe('not met');
    await a71.getByText('No signed-off access review has been recorded.').waitFor();
    await e2e.shot(page, '02-not-met');

    // The record: the annual access review, signed off by the senior leader.
    const review = (await (await call(e2e.server.url, 'POST', '/api/access/reviews', head)).json()) as { id: string; snapshot: { accounts: Array<{ id: string }> } };
    for (const account of review.snapshot.accounts) expect((await call(e2e.server.url, 'PUT', `/api/access/reviews/${review.id}/accounts/${account.id}`, head, { decision: 'confirm' })).status).toBe(200);
    expect((await call(e2e.server.url, 'POST', `/api/access/reviews/${review.id}/sign-off`, head, { summary: 'Every privileged account confirmed with the IT lead.' })).status).toBe(200);

    await page.reload();
    await a71.waitFor();
    expect(await a71.locator('td').nth(1).textContent()).toBe('met');
    await a71.getByText(/The last signed-off access review was on/).waitFor();
    await a71.getByRole('link', { name: 'Access reviews' }).waitFor();
    await e2e.shot(page, '03-met');

    // A clause only a person can vouch for: the firewall, signed off with what was seen.
    const a41 = page.locator('tr[data-clause="A4.1"]');
    await a41.getByRole('button', { name: 'Sign off clause A4.1' }).click();
    // Too little to go on is refused, and what was typed stays.
    await a41.getByLabel('What you saw').fill('ok');
    await a41.getByRole('button', { name: 'Sign off', exact: true }).click();
    await a41.getByText(/say what you saw/).waitFor();
    await a41.getByLabel('What you saw').fill('The IT provider’s firewall report of 2 December, showing the rules on both lines; filed in the IT folder.');
    await e2e.shot(page, '04-sign-off');
    await a41.getByRole('button', { name: 'Sign off', exact: true }).click();
    await page.getByRole('status').getByText(/Clause A4\.1 signed off until/).waitFor();
    // the table is read again after the sign-off's notice shows: wait for it rather than read it once
    await expect.poll(() => a41.locator('td').nth(1).textContent()).toBe('met');
    await a41.getByText(/Signed off by hhead on/).waitFor();
    await page.getByTestId('history').waitFor();
    await e2e.shot(page, '05-signed-off');

    // The overview links each framework with clauses still not met.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByTestId('needs-attention').getByText(/^Cyber Essentials v3\.3: \d+ of 12 not met/).waitFor();
    e2e.expectNoProblems();
    await page.close();
  });
});
