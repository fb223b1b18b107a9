import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, setupAndSignIn } from '../helpers/server-process.js';

/**
 * Passkeys in Chromium with a virtual authenticator (the DevTools WebAuthn domain): added from My
 * account, then used at sign-in instead of a code. WebAuthn needs a domain, so the console is
 * opened at localhost rather than 127.0.0.1.
 */
describe('passkeys in Chromium', () => {
  const e2e = browserSuite({ prefix: 'passkeys-' });
  let temporary: string;
  let base: string;

  beforeAll(async () => {
    base = e2e.server.url.replace('127.0.0.1', 'localhost');
    const admin = await setupAndSignIn(e2e.server);
    const created = await call(e2e.server.url, 'POST', '/api/accounts', admin, { username: 'kpatel', displayName: 'Kiran Patel', role: 'staff' });
    temporary = ((await created.json()) as { temporaryPassword: string }).temporaryPassword;
  });

  it('AC-14 a member of staff adds a passkey and then signs in with it instead of a code', async () => {
    const page = await e2e.page({ width: 1200, height: 1000 });
    const context = page.context();
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
    await page.getByRole('button', { name: 'Create the passkey' }).click();
    // The server wants the password again first: the console's one prompt asks, then carries on.
    const prompt = page.getByTestId('reauth-prompt');
    await prompt.getByLabel('Your password').fill('Quartz-Meadow-Beacon-27');
    await prompt.getByRole('button', { name: 'Confirm' }).click();
    // No authenticator app yet, so the first passkey comes with recovery codes.
    await page.getByTestId('recovery-codes').waitFor();
    await page.getByLabel('I have saved these codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('passkeys').getByText('Staffroom laptop').waitFor();
    await e2e.shot(page, '01-added');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').fill('kpatel');
    await page.getByLabel('Password').fill('Quartz-Meadow-Beacon-27');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Check it’s you' }).waitFor();
    await e2e.shot(page, '02-second-factor');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.getByRole('link', { name: 'My account' }).waitFor();
    expect(await page.getByText('Signed in as').textContent()).toContain('Kiran Patel');
    await context.close();
  });
});
