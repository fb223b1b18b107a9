import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { TEST_PASSWORD, call, createPersonOverHttp, setupAndSignIn, signInOverHttp, startServerProcess, type HttpSessionWithSecret, type ServerProcess } from '../helpers/server-process.js';

/** Password resets in Chromium: a forgotten password without a second factor, and a staff reset approved by a second person. */
async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

describe('password resets in Chromium', () => {
  let test: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'main.js')) || !existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) {
      throw new Error('The server and console are not built: run `npm run build` (npm test does it first).');
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    server = await startServerProcess({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1' }, { built: true });
    browser = await launchChromium();
    admin = await setupAndSignIn(server);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });

  it('AC-10 a staff reset waits for a second person, who approves it and issues a temporary password to the verified person', async () => {
    const staff = await createPersonOverHttp(server.url, admin, { username: 'jbloggs', displayName: 'Jane Bloggs', role: 'staff' });
    await createPersonOverHttp(server.url, admin, { username: 'head', displayName: 'Helen Head', role: 'senior_leader' });
    const asked = await call(server.url, 'POST', '/api/password-resets', admin, { accountId: staff.id, reason: 'Locked out after half term; phoned the office' });
    expect(asked.status).toBe(201);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

    // Forgotten, with no authenticator app: the page says who to ask.
    await page.goto(server.url);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await page.getByLabel('Username').fill('jbloggs');
    await page.getByLabel('Code').fill('123456');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').filter({ hasText: 'ask the IT team' }).waitFor();
    await shot(page, 'resets-01-self-service-refused');
    await page.getByRole('link', { name: 'Back to sign-in' }).click();

    // The senior leader signs in and finds the request on the overview.
    await page.getByLabel('Username').fill('head');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('needs-attention').getByText('waiting for a second person’s approval').waitFor();
    await shot(page, 'resets-02-needs-attention');
    await page.getByTestId('needs-attention').getByRole('link', { name: /Password reset for Jane Bloggs/ }).click();
    const card = page.getByTestId('reset-request').filter({ hasText: 'Jane Bloggs' });
    await card.getByText('waiting for a second person').waitFor();
    await shot(page, 'resets-03-pending');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.getByText('approved — ready to issue').waitFor();
    await card.getByRole('button', { name: 'Issue temporary password' }).click();
    await card.getByLabel('How did you check it is really them?').fill('In person at the office, staff ID card');
    await card.getByRole('button', { name: 'Issue', exact: true }).click();
    const issued = page.getByTestId('temporary-password');
    await issued.waitFor();
    await shot(page, 'resets-04-issued');
    const temporary = (await issued.locator('code.secret').textContent())!.trim();

    // The temporary password works once, and must be changed at sign-in.
    const first = await call(server.url, 'POST', '/api/session', undefined, { username: 'jbloggs', password: temporary });
    expect(((await first.json()) as { step?: { step: string } }).step?.step).toBe('change_password');
    const changed = await signInOverHttp(server.url, 'jbloggs', temporary, undefined, 'Quiet-Meadow-Compass-19');
    expect(changed.cookie).toContain('gatehouse-session');

    // Closed requests stay visible, with who did what.
    await page.getByLabel('Show closed requests too').check();
    await card.getByText('issued by').waitFor();
    await shot(page, 'resets-05-history');
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
