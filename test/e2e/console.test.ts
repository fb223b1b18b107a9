import { describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { TEST_PASSWORD, freshCode } from '../helpers/server-process.js';

/**
 * The console in Debian's Chromium, driven by playwright-core (no browser download). Runs the
 * built server and console, as `npm start` does; screenshots go to test-results/screenshots/.
 */
describe('console in Chromium', () => {
  const e2e = browserSuite({ prefix: 'foundation-', allow: /status of (400|401)/ });

  it('sets up the school through the one-time link, signs in, and shows the school and server health', async () => {
    const page = await e2e.page({ width: 1280, height: 860 });

    // Without the link, the console explains where to find it.
    await page.goto(e2e.server.url);
    await page.getByRole('heading', { name: 'Gatehouse is not set up yet' }).waitFor();

    await page.goto(e2e.server.setupLink!);
    await page.getByLabel('School name').fill('Springfield Primary');
    await page.getByLabel('URN (optional)').fill('123456');
    await page.getByLabel('Username').fill('master');
    await page.getByLabel('Full name').fill('Master Administrator');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByLabel('Password again').fill('short');
    await page.getByRole('button', { name: 'Create the school' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('at least 12 characters');
    await e2e.shot(page, '01-setup-error');

    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('Password again').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Create the school' }).click();
    await page.getByTestId('setup-done').waitFor();
    await e2e.shot(page, '02-setup-done');
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
    await e2e.shot(page, '03-sign-in-refused');

    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // AC-07: an administrator account must set up MFA before it gets a session.
    await page.getByRole('heading', { name: 'Set up your authenticator app' }).waitFor();
    await e2e.shot(page, '04a-mfa-enrolment');
    const secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
    await page.getByLabel('Code from the app').fill(await freshCode(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    await e2e.shot(page, '04b-recovery-codes');
    await page.getByLabel('I have saved these codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Springfield Primary' }).waitFor();
    await page.getByTestId('status-audit').waitFor();
    // An administrator sees the server's state in the console's frame.
    await page.getByTestId('health').filter({ hasText: 'Ready (SQLite)' }).waitFor();
    expect(await page.getByText('master (break-glass) account').first().isVisible()).toBe(true);
    await e2e.shot(page, '04-overview');

    // The setup link is refused once used.
    await page.goto(e2e.server.setupLink!);
    await page.getByRole('heading', { name: 'Already set up' }).waitFor();
    await page.goto(e2e.server.url);

    await page.getByRole('link', { name: 'School', exact: true }).click();
    await page.getByRole('button', { name: 'Record Designated safeguarding lead (DSL)' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Jane Doe');
    await page.getByLabel('E-mail', { exact: true }).fill('not-an-email');
    await page.getByRole('button', { name: 'Save' }).last().click();
    // The browser itself stops a malformed address before it is sent.
    expect(await page.getByLabel('E-mail', { exact: true }).evaluate((el) => (el as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(false);
    await page.getByLabel('E-mail', { exact: true }).fill('dsl@springfield.sch.uk');
    await page.getByRole('button', { name: 'Save' }).last().click();
    await page.getByTestId('contacts').getByText('Jane Doe').waitFor();
    await e2e.shot(page, '05-school');

    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByTestId('audit-events').getByText('school.contact_set').waitFor();
    await page.getByRole('button', { name: 'Verify the trail' }).click();
    await page.getByTestId('verify-result').waitFor();
    expect(await page.getByTestId('verify-result').textContent()).toMatch(/^Intact: \d+ events checked/);
    await e2e.shot(page, '06-audit');

    // AU-01: the governors' fingerprint, printed (the sheet alone on paper) and checked back.
    await page.evaluate(() => {
      const w = globalThis as unknown as { print: () => void; printed: number };
      w.printed = 0;
      w.print = () => void (w.printed += 1);
    });
    await page.getByRole('button', { name: 'Print the trail’s fingerprint' }).click();
    const sheet = page.getByTestId('fingerprint-sheet');
    await sheet.waitFor();
    await page.waitForFunction(() => (globalThis as unknown as { printed: number }).printed === 1);
    const grouped = (await page.getByTestId('fingerprint-grouped').textContent())!;
    expect(grouped).toMatch(/^[0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}$/);
    const seq = (await page.getByTestId('fingerprint-seq').textContent())!.replace(/,/g, '');
    await page.emulateMedia({ media: 'print' });
    expect(await sheet.isVisible()).toBe(true);
    expect(await page.getByTestId('audit-events').isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Verify the trail' }).isVisible()).toBe(false);
    await e2e.shot(page, '06b-fingerprint-printed');
    await page.emulateMedia({ media: 'screen' });
    await page.getByLabel('Check a fingerprint written down earlier').fill(`${seq}:${grouped}`);
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await page.getByTestId('verify-result').getByText('1 fingerprint agrees').waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    e2e.expectNoProblems();
  });
});
