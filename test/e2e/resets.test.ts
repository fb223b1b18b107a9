import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { TEST_PASSWORD, call, createPersonOverHttp, setupAndSignIn, signInOverHttp, type HttpSessionWithSecret } from '../helpers/server-process.js';

/** Password resets in Chromium: a forgotten password without a second factor, and a staff reset approved by a second person. */
describe('password resets in Chromium', () => {
  const e2e = browserSuite({ prefix: 'resets-', allow: /status of (400|401)/ });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  });

  it('AC-10 a staff reset waits for a second person, who approves it and issues a temporary password to the verified person', async () => {
    const staff = await createPersonOverHttp(e2e.server.url, admin, { username: 'jbloggs', displayName: 'Jane Bloggs', role: 'staff' });
    await createPersonOverHttp(e2e.server.url, admin, { username: 'head', displayName: 'Helen Head', role: 'senior_leader' });
    const asked = await call(e2e.server.url, 'POST', '/api/password-resets', admin, { accountId: staff.id, reason: 'Locked out after half term; phoned the office' });
    expect(asked.status).toBe(201);

    const page = await e2e.page({ width: 1280, height: 900 });

    // Forgotten, with no authenticator app: the page says who to ask.
    await page.goto(e2e.server.url);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await page.getByLabel('Username').fill('jbloggs');
    await page.getByLabel('Code').fill('123456');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').filter({ hasText: 'ask the IT team' }).waitFor();
    await e2e.shot(page, '01-self-service-refused');
    await page.getByRole('link', { name: 'Back to sign-in' }).click();

    // The senior leader signs in and finds the request on the overview.
    await page.getByLabel('Username').fill('head');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('needs-attention').getByText('waiting for a second person’s approval').waitFor();
    await e2e.shot(page, '02-needs-attention');
    await page.getByTestId('needs-attention').getByRole('link', { name: /Password reset for Jane Bloggs/ }).click();
    const card = page.getByTestId('reset-request').filter({ hasText: 'Jane Bloggs' });
    await card.getByText('waiting for a second person').waitFor();
    await e2e.shot(page, '03-pending');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.getByText('approved — ready to issue').waitFor();
    await card.getByRole('button', { name: 'Issue temporary password' }).click();
    await card.getByLabel('How did you check it is really them?').fill('In person at the office, staff ID card');
    await card.getByRole('button', { name: 'Issue', exact: true }).click();
    const issued = page.getByTestId('temporary-password');
    await issued.waitFor();
    await e2e.shot(page, '04-issued');
    const temporary = (await issued.locator('code.secret').textContent())!.trim();

    // The temporary password works once, and must be changed at sign-in.
    const first = await call(e2e.server.url, 'POST', '/api/session', undefined, { username: 'jbloggs', password: temporary });
    expect(((await first.json()) as { step?: { step: string } }).step?.step).toBe('change_password');
    const changed = await signInOverHttp(e2e.server.url, 'jbloggs', temporary, undefined, 'Quiet-Meadow-Compass-19');
    expect(changed.cookie).toContain('gatehouse-session');

    // Closed requests stay visible, with who did what.
    await page.getByLabel('Show closed requests too').check();
    await card.getByText('issued by').waitFor();
    await e2e.shot(page, '05-history');
    e2e.expectNoProblems();
  });
});
