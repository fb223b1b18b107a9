import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * The server runs with the real clock, and guest access ends at the end of the school day (18:00).
 * So that the test passes at any hour, the school's time zone is one where it is mid-morning now.
 */
function midMorningZone(): { zone: string; localHour: number } {
  const utcHour = new Date().getUTCHours();
  const offset = ((10 - utcHour + 36) % 24) - 12; // -12 … +11 hours
  const zone = offset === 0 ? 'Etc/GMT' : offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`; // Etc names are sign-inverted
  return { zone, localHour: (utcHour + offset + 24) % 24 };
}

/** The guest desk in Chromium (AC-05): the pool, an allocation with its printable slip, and ending the visit. */
describe('guest desk in Chromium', () => {
  const { zone, localHour } = midMorningZone();
  const e2e = browserSuite({
    prefix: 'guests-',
    allow: /status of (400|401|409)/,
    env: (test) => {
      const profile = path.join(test.dataDir, 'school-profile.yaml');
      writeFileSync(profile, `name: Springfield guest-desk test\nextends: ncsc\ntimeZone: ${zone}\n`);
      return { GATEHOUSE_PROFILE: profile };
    },
  });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  });

  it('AC-05 an administrator fills the pool; reception allocates an account to a visitor, prints the slip and ends the visit', async () => {
    await createPersonOverHttp(e2e.server.url, admin, { username: 'reception', displayName: 'Rita Reception', role: 'office' });
    await createPersonOverHttp(e2e.server.url, admin, { username: 'head', displayName: 'Harriet Head', role: 'senior_leader' });

    // The administrator adds guest accounts to the pool.
    const adminPage = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(adminPage, 'master', { totpSecret: admin.totpSecret });
    await adminPage.getByRole('link', { name: 'Guest desk' }).click();
    await adminPage.getByText('There are no guest accounts yet. Add some above.').waitFor();
    await adminPage.getByLabel('Add', { exact: true }).fill('3');
    await adminPage.getByRole('button', { name: 'Add to the pool' }).click();
    await adminPage.getByRole('status').filter({ hasText: 'Added guest-01, guest-02, guest-03' }).waitFor();
    await adminPage.getByTestId('free-count').filter({ hasText: '3 of 3 free' }).waitFor();
    await e2e.shot(adminPage, '01-pool-added');

    // On Accounts, a pool account offers none of the actions the API refuses for it (a temporary
    // password, disabling or enabling) nor any other: a note sends the administrator to the guest desk.
    await adminPage.getByRole('link', { name: 'Accounts' }).click();
    const poolRow = adminPage.getByTestId('accounts').locator('tr[data-username="guest-01"]');
    await poolRow.getByTestId('guest-desk-note').waitFor();
    expect(await poolRow.getByTestId('guest-desk-note').textContent()).toBe('Managed at the guest desk');
    expect(await poolRow.getByRole('button').count()).toBe(0);
    // Anyone else's row keeps them.
    const receptionRow = adminPage.getByTestId('accounts').locator('tr[data-username="reception"]');
    await receptionRow.getByRole('button', { name: 'New temporary password for reception' }).waitFor();
    expect(await receptionRow.getByRole('button', { name: 'Disable' }).count()).toBe(1);
    expect(await receptionRow.getByTestId('guest-desk-note').count()).toBe(0);
    await e2e.shot(adminPage, '01b-accounts-pool-note');
    await poolRow.getByRole('link', { name: 'guest desk' }).click();
    await adminPage.getByTestId('free-count').filter({ hasText: '3 of 3 free' }).waitFor();
    expect(new URL(adminPage.url()).pathname).toBe('/guests');

    // A senior leader sees Accounts but may not open the guest desk: the note, without the link.
    const headPage = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(headPage, 'head');
    await headPage.getByRole('link', { name: 'Accounts' }).click();
    const headPoolRow = headPage.getByTestId('accounts').locator('tr[data-username="guest-01"]');
    await headPoolRow.getByTestId('guest-desk-note').waitFor();
    expect(await headPoolRow.getByTestId('guest-desk-note').textContent()).toBe('Managed at the guest desk');
    expect(await headPoolRow.getByRole('link').count()).toBe(0);
    await headPage.context().close();

    // Reception signs in: the guest desk, without the means to add accounts.
    const page = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(page, 'reception');
    await page.getByRole('link', { name: 'Guest desk' }).click();
    await page.getByRole('heading', { name: 'Allocate a guest account' }).waitFor();
    await page.getByTestId('pool').waitFor();
    expect(await page.getByRole('button', { name: 'Add to the pool' }).count()).toBe(0);

    // Nothing filled in: every missing detail is named, and nothing is allocated.
    await page.getByRole('button', { name: 'Allocate and show the slip' }).click();
    const alert = page.getByRole('form', { name: 'Allocate a guest account' }).getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/Visitor name.*is required/);
    await e2e.shot(page, '02-allocate-errors');

    await page.getByLabel('Visitor’s full name').fill('Ada Lovelace');
    await page.getByLabel('Organisation').fill('Analytical Engines Ltd');
    await page.getByLabel('Purpose of visit').fill('STEM workshop with Year 6');
    await page.getByLabel('Host').fill('Mr Babbage');
    await page.getByLabel('Expected end').fill('12:00');
    await e2e.shot(page, '03-allocate-form');
    await page.getByRole('button', { name: 'Allocate and show the slip' }).click();

    const slip = page.getByTestId('guest-slip');
    await slip.waitFor();
    expect(await slip.textContent()).toContain('Springfield Primary');
    expect(await page.getByTestId('slip-visitor').textContent()).toBe('Ada Lovelace (Analytical Engines Ltd)');
    expect(await page.getByTestId('slip-username').textContent()).toBe('guest-01');
    expect(await page.getByTestId('slip-until').textContent()).toMatch(/^12:00 on \w+day \d{1,2} \w+ \d{4}$/);
    expect(await slip.textContent()).toContain('Acceptable Use Policy');
    const password = (await page.getByTestId('slip-password').textContent())!.trim();
    expect(password.length).toBeGreaterThanOrEqual(12);
    await page.getByTestId('visits').getByText('Ada Lovelace').waitFor();
    await e2e.shot(page, '04-slip');

    // Printed, the slip is all there is on the page.
    await page.emulateMedia({ media: 'print' });
    expect(await slip.isVisible()).toBe(true);
    expect(await page.getByTestId('visits').isVisible()).toBe(false);
    expect(await page.getByRole('form', { name: 'Allocate a guest account' }).isVisible()).toBe(false);
    expect(await page.getByRole('link', { name: 'Guest desk' }).isVisible()).toBe(false);
    expect(await slip.getByRole('button', { name: 'Print' }).isVisible()).toBe(false);
    await e2e.shot(page, '05-slip-printed');
    await page.emulateMedia({ media: 'screen' });
    // The Print button opens the browser's print dialogue.
    await page.evaluate(() => {
      const w = globalThis as unknown as { print: () => void; printed: number };
      w.printed = 0;
      w.print = () => void (w.printed += 1);
    });
    await slip.getByRole('button', { name: 'Print' }).click();
    expect(await page.evaluate(() => (globalThis as unknown as { printed: number }).printed)).toBe(1);

    // The visitor signs in with the slip.
    const signedIn = await call(e2e.server.url, 'POST', '/api/session', undefined, { username: 'guest-01', password });
    expect(signedIn.status).toBe(200);
    expect(((await signedIn.json()) as { status: string }).status).toBe('signed_in');

    // Done: the password is not shown again.
    await slip.getByRole('button', { name: /Done/ }).click();
    await slip.waitFor({ state: 'detached' });
    expect(await page.getByText(password).count()).toBe(0);
    await page.getByTestId('pool').locator('tr[data-username="guest-01"]').getByText('Ada Lovelace until 12:00').waitFor();
    await e2e.shot(page, '06-visitors');

    // The visitor leaves early: reception ends the visit, and the password stops working at once.
    await page.getByRole('button', { name: 'End visit of Ada Lovelace' }).click();
    await page.getByTestId('visits').getByText(/ended early at \d\d:\d\d/).waitFor();
    await page.getByTestId('pool').locator('tr[data-username="guest-01"]').getByText('free').waitFor();
    await page.getByTestId('free-count').filter({ hasText: '3 of 3 free' }).waitFor();
    await e2e.shot(page, '07-visit-ended');
    const refused = await call(e2e.server.url, 'POST', '/api/session', undefined, { username: 'guest-01', password });
    expect(refused.status).toBe(401);

    e2e.expectNoProblems();
  });
});
