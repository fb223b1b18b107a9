import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { SCREENSHOTS, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { TEST_PASSWORD, freshCode, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * The console in Debian's Chromium, driven by playwright-core (no browser download). Runs the
 * built server and console, as `npm start` does; screenshots go to test-results/screenshots/.
 */
async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

describe('console in Chromium', () => {
  let test: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'main.js')) || !existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) {
      throw new Error('The server and console are not built: run `npm run build` (npm test does it first).');
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    server = await startServerProcess({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1' }, { built: true });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });

  it('sets up the school through the one-time link, signs in, and shows the school and server health', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (400|401)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // Without the link, the console explains where to find it.
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Gatehouse is not set up yet' }).waitFor();

    await page.goto(server.setupLink!);
    await page.getByLabel('School name').fill('Springfield Primary');
    await page.getByLabel('URN (optional)').fill('123456');
    await page.getByLabel('Username').fill('master');
    await page.getByLabel('Full name').fill('Master Administrator');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByLabel('Password again').fill('short');
    await page.getByRole('button', { name: 'Create the school' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('at least 12 characters');
    await shot(page, 'foundation-01-setup-error');

    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('Password again').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Create the school' }).click();
    await page.getByTestId('setup-done').waitFor();
    await shot(page, 'foundation-02-setup-done');
    // The token has been taken out of the address bar.
    expect(page.url()).not.toContain('token=');

    await page.getByRole('button', { name: 'Continue to sign-in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.getByTestId('school-name').textContent()).toBe('Springfield Primary');
    // The sign-in page is public: it does not show the server's state.
    expect(await page.getByText(/Server:|Checking server/).count()).toBe(0);
    await page.getByLabel('Username').fill('master');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
    await shot(page, 'foundation-03-sign-in-refused');

    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // AC-07: an administrator account must set up MFA before it gets a session.
    await page.getByRole('heading', { name: 'Set up your authenticator app' }).waitFor();
    await shot(page, 'foundation-04a-mfa-enrolment');
    const secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
    await page.getByLabel('Code from the app').fill(await freshCode(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    await shot(page, 'foundation-04b-recovery-codes');
    await page.getByLabel('I have saved these codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Springfield Primary' }).waitFor();
    await page.getByTestId('status-audit').waitFor();
    // An administrator sees the server's state in the console's frame.
    await page.getByTestId('health').filter({ hasText: 'Ready (SQLite)' }).waitFor();
    expect(await page.getByText('master (break-glass) account').first().isVisible()).toBe(true);
    await shot(page, 'foundation-04-overview');

    // The setup link is refused once used.
    await page.goto(server.setupLink!);
    await page.getByRole('heading', { name: 'Already set up' }).waitFor();
    await page.goto(server.url);

    await page.getByRole('link', { name: 'School' }).click();
    await page.getByRole('button', { name: 'Record Designated safeguarding lead (DSL)' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Jane Doe');
    await page.getByLabel('E-mail', { exact: true }).fill('not-an-email');
    await page.getByRole('button', { name: 'Save' }).last().click();
    // The browser itself stops a malformed address before it is sent.
    expect(await page.getByLabel('E-mail', { exact: true }).evaluate((el) => (el as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(false);
    await page.getByLabel('E-mail', { exact: true }).fill('dsl@springfield.sch.uk');
    await page.getByRole('button', { name: 'Save' }).last().click();
    await page.getByTestId('contacts').getByText('Jane Doe').waitFor();
    await shot(page, 'foundation-05-school');

    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByTestId('audit-events').getByText('school.contact_set').waitFor();
    await page.getByRole('button', { name: 'Verify the trail' }).click();
    await page.getByTestId('verify-result').waitFor();
    expect(await page.getByTestId('verify-result').textContent()).toMatch(/^Intact: \d+ events checked/);
    await shot(page, 'foundation-06-audit');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(problems, problems.join("\n")).toEqual([]);
  });
});
