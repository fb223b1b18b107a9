import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { call, setupAndSignIn, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

/**
 * Passkeys in Chromium with a virtual authenticator (the DevTools WebAuthn domain): added from My
 * account, then used at sign-in instead of a code. WebAuthn needs a domain, so the console is
 * opened at localhost rather than 127.0.0.1.
 */
describe('passkeys in Chromium', () => {
  let test: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let temporary: string;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) throw new Error('The console is not built: run `npm run build`.');
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    server = await startServerProcess({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url }, { built: true });
    base = server.url.replace('127.0.0.1', 'localhost');
    const admin = await setupAndSignIn(server);
    const created = await call(server.url, 'POST', '/api/accounts', admin, { username: 'kpatel', displayName: 'Kiran Patel', role: 'staff' });
    temporary = ((await created.json()) as { temporaryPassword: string }).temporaryPassword;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });

  it('AC-14 a member of staff adds a passkey and then signs in with it instead of a code', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });

    await page.goto(base);
    await page.getByLabel('Username').fill('kpatel');
    await page.getByLabel('Password').fill(temporary);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Current password').fill(temporary);
    await page.getByLabel('New password', { exact: true }).fill('Quartz-Meadow-Beacon-27');
    await page.getByLabel('New password again').fill('Quartz-Meadow-Beacon-27');
    await page.getByRole('button', { name: 'Save and continue' }).click();
    await page.getByRole('link', { name: 'My account' }).click();

    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByLabel('Name for the passkey').fill('Staffroom laptop');
    await page.getByLabel('Your password').fill('Quartz-Meadow-Beacon-27');
    await page.getByRole('button', { name: 'Confirm and create the passkey' }).click();
    // No authenticator app yet, so the first passkey comes with recovery codes.
    await page.getByTestId('recovery-codes').waitFor();
    await page.getByLabel('I have saved these codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('passkeys').getByText('Staffroom laptop').waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'passkeys-01-added.png'), fullPage: true });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').fill('kpatel');
    await page.getByLabel('Password').fill('Quartz-Meadow-Beacon-27');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Check it’s you' }).waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'passkeys-02-second-factor.png'), fullPage: true });
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.getByRole('link', { name: 'My account' }).waitFor();
    expect(await page.getByText('Signed in as').textContent()).toContain('Kiran Patel');
    await context.close();
  });
});
