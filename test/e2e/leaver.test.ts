import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * A leaver in Chromium (AC-13, PW-12): the IT lead records the staff Wi-Fi key and who knows it,
 * starts one of them as a leaver, sees the key flagged on the checklist, records the change, ticks
 * the equipment returned and sees the checklist complete. Screenshots: test-results/screenshots/leaver-*.png.
 */
describe('a leaver in Chromium', () => {
  const e2e = browserSuite({ prefix: 'leaver-', allow: /status of (400|401)/ });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
    for (const [username, displayName] of [['jbloggs', 'Jane Bloggs'], ['kstay', 'Kim Stay']]) {
      const created = await call(e2e.server.url, 'POST', '/api/accounts', admin, { username, displayName, email: `${username}@school.example`, role: 'staff' });
      expect(created.status).toBe(201);
    }
  });

  it('AC-13 PW-12 records a Wi-Fi key, starts its holder as a leaver, records the change and completes the checklist', async () => {
    const page = await e2e.page({ width: 1360, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });

    // The register: a Wi-Fi key, where it is kept and who knows it — and a warning if the key itself is typed in.
    await page.getByRole('link', { name: 'Shared secrets' }).click();
    await page.getByTestId('never-the-secret').waitFor();
    await page.getByRole('button', { name: 'Record a shared secret' }).click();
    const form = page.getByRole('form', { name: 'Record a shared secret' });
    await form.getByLabel('Name').fill('Staff Wi-Fi');
    await form.getByLabel('Kind').selectOption('wifi');
    await form.getByLabel('Where it is kept').fill('Sealed envelope in the head’s safe');
    await form.getByLabel('Last changed (optional)').fill('2026-09-01');
    await form.getByLabel('Notes (optional)').fill('WPA key: Summer2026!');
    await page.getByTestId('secret-warning').waitFor();
    await form.getByLabel('Add a holder').fill('Jane');
    await form.getByRole('button', { name: 'Add Jane Bloggs' }).click();
    await form.getByLabel('Add a holder').fill('Kim');
    await form.getByRole('button', { name: 'Add Kim Stay' }).click();
    await e2e.shot(page, '01-secret-warning');
    // The server refuses it too; nothing is lost from the form.
    await form.getByRole('button', { name: 'Record it' }).click();
    await form.getByRole('alert').filter({ hasText: 'seems to hold the secret itself' }).waitFor();
    expect(await form.getByLabel('Name').inputValue()).toBe('Staff Wi-Fi');
    await form.getByLabel('Notes (optional)').fill('Changed from the network controller in the IT office.');
    expect(await page.getByTestId('secret-warning').count()).toBe(0);
    await form.getByRole('button', { name: 'Record it' }).click();
    const row = page.locator('tr[data-name="Staff Wi-Fi"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('Jane Bloggs');
    expect(await row.textContent()).toContain('Every 90 days (school default)');
    await e2e.shot(page, '02-register');

    // One action starts the leaver, after a dialog says what will happen.
    await page.getByRole('link', { name: 'Leavers' }).click();
    await page.getByLabel('Search for the person leaving').fill('Jane');
    await page.getByRole('button', { name: 'Choose Jane Bloggs' }).click();
    await page.getByLabel('Note (optional)').fill('Moving to a school in Leeds; laptop and fob to return');
    await page.getByRole('button', { name: 'Start leaver…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Start the leaver for Jane Bloggs?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('every shared secret they know');
    await e2e.shot(page, '03-confirm');
    await dialog.getByRole('button', { name: 'Close the account and start the checklist' }).click();
    const checklist = page.getByTestId('leaver-jbloggs');
    await checklist.waitFor();
    await checklist.getByText('Change “Staff Wi-Fi”').waitFor();
    expect(await checklist.getByRole('checkbox', { name: 'Account closed', exact: true }).isChecked()).toBe(true);
    expect(await checklist.getByRole('checkbox', { name: 'Sessions ended' }).isChecked()).toBe(true);
    expect(await checklist.getByRole('checkbox', { name: 'Change “Staff Wi-Fi”' }).isChecked()).toBe(false);
    expect(await checklist.getByRole('checkbox', { name: 'Change “Staff Wi-Fi”' }).isDisabled()).toBe(true);
    expect(await checklist.textContent()).toContain('3 of 5 done');
    await e2e.shot(page, '04-checklist');

    // The overview says what needs doing.
    await page.getByRole('link', { name: 'Overview' }).click();
    const attention = page.getByTestId('needs-attention');
    await attention.getByText('Staff Wi-Fi (wi-fi key) must be changed: holder Jane Bloggs left').waitFor();
    await attention.getByText('Leaver checklist for Jane Bloggs is not complete').waitFor();
    await e2e.shot(page, '05-overview');

    // The key is flagged in the register; its change is recorded.
    await page.getByRole('link', { name: 'Leavers' }).click();
    await page.getByTestId('leaver-jbloggs').getByRole('link', { name: 'Go to Shared secrets' }).click();
    await row.getByTestId('flag').filter({ hasText: 'holder Jane Bloggs left' }).waitFor();
    await row.getByText('overdue').waitFor();
    await e2e.shot(page, '06-flagged');
    await page.getByRole('button', { name: 'Record rotation of Staff Wi-Fi' }).click();
    await page.getByRole('status').filter({ hasText: '“Staff Wi-Fi” was changed today' }).waitFor();
    // The message shows before the register has reloaded: wait for the row to catch up.
    await row.getByTestId('flag').waitFor({ state: 'detached' });
    await expect.poll(async () => row.textContent()).not.toContain('Jane Bloggs');
    expect(await row.textContent()).toContain('Kim Stay');
    await e2e.shot(page, '07-rotated');

    // Back on the checklist the key is ticked; the equipment is ticked by hand and the checklist completes.
    await page.getByRole('link', { name: 'Leavers' }).click();
    await checklist.waitFor();
    await checklist.getByRole('checkbox', { name: 'Change “Staff Wi-Fi”', checked: true }).waitFor();
    await checklist.getByRole('checkbox', { name: 'Equipment on loan returned' }).click();
    await page.getByRole('status').filter({ hasText: 'The leaver checklist for Jane Bloggs is complete' }).waitFor();
    await page.getByTestId('completed-leavers').locator('tr[data-username="jbloggs"]').waitFor();
    expect(await page.getByTestId('leaver-jbloggs').count()).toBe(0);
    expect(await page.getByText('No checklist is open.').isVisible()).toBe(true);
    await e2e.shot(page, '08-complete');

    // Jane cannot sign in any more.
    const refused = await call(e2e.server.url, 'POST', '/api/session', undefined, { username: 'jbloggs', password: 'whatever-it-was-1' });
    expect(refused.status).toBe(401);
    e2e.expectNoProblems();
    await page.close();
  });
});
