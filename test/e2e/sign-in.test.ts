import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { TEST_PASSWORD, call, freshCode, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * Sign-in flows in Chromium under the P4 profile (lockout after 3, AUP for staff, an upper-case
 * letter and a digit, no part of the previous password), as a member of staff and an administrator
 * would meet them. Screenshots: test-results/screenshots/sign-in-*.png.
 */
describe('sign-in flows in Chromium (profile p4)', () => {
  const e2e = browserSuite({ prefix: 'sign-in-', env: { GATEHOUSE_PROFILE: 'p4' } });
  let admin: HttpSessionWithSecret;
  let temporary: string;
  // P4 refuses a new password sharing a run of 4 characters with the current one (PW-04); the
  // temporary password is random, so pick a new one that shares none with it.
  let chosen = 'Harbour-Lantern-Fog-91';

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    const aup = await call(url, 'POST', '/api/aup', admin, {
      audience: 'staff',
      title: 'Staff Acceptable Use Agreement',
      body: 'I will use school systems for school work.\nI will keep my password to myself and lock my screen when I leave my desk.\nI understand that my use is monitored.',
    });
    expect(aup.status).toBe(201);
    const created = await call(url, 'POST', '/api/accounts', admin, { username: 'rjones', displayName: 'Rhian Jones', email: 'rjones@school.example', role: 'staff' });
    temporary = ((await created.json()) as { temporaryPassword: string }).temporaryPassword;
    const runs = (p: string) => new Set(Array.from({ length: Math.max(p.length - 3, 0) }, (_, i) => p.slice(i, i + 4).toLowerCase()));
    const current = runs(temporary);
    chosen = ['Harbour-Lantern-Fog-91', 'Quasar+Zephyr+Jukebox+57', 'Xylo=Quokka=Vortex=38'].find((c) => ![...runs(c)].some((r) => current.has(r)))!;
    await call(url, 'POST', '/api/accounts', admin, { username: 'pupil9', displayName: 'Sam Pupil', role: 'pupil' });
  });

  it('AC-06 AC-09 PW-08 a new member of staff accepts the AUP and replaces the temporary password, with live feedback', async () => {
    const page = await e2e.page({ width: 1200, height: 900 });
    await e2e.signIn(page, 'rjones', { password: temporary });

    await page.getByRole('heading', { name: 'Staff Acceptable Use Agreement' }).waitFor();
    expect(await page.getByTestId('banner').textContent()).toContain('You are signing in to a school system');
    await e2e.shot(page, '01-aup');
    const accept = page.getByRole('button', { name: 'Accept and continue' });
    expect(await accept.isDisabled()).toBe(true);
    await page.getByLabel('I have read the Acceptable Use Policy and I agree to follow it').check();
    await accept.click();

    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await page.getByLabel('Current password').fill(temporary);
    await page.getByLabel('New password', { exact: true }).fill('rhianjones1');
    const rules = page.getByTestId('password-rules');
    await rules.getByText('still needs an upper-case letter').waitFor();
    await rules.locator('li.rule-bad', { hasText: 'No username, no part of your name' }).waitFor();
    await e2e.shot(page, '02-new-password-feedback');
    await page.getByLabel('New password', { exact: true }).fill(chosen);
    await page.getByLabel('New password again').fill(chosen);
    await rules.locator('li.rule-ok', { hasText: 'Include an upper-case letter and a number' }).waitFor();
    expect(await rules.locator('li.rule-bad').count()).toBe(0);
    await e2e.shot(page, '03-new-password-good');
    await page.getByRole('button', { name: 'Save and continue' }).click();

    await page.getByRole('heading', { name: 'Springfield Primary' }).waitFor();
    expect(await page.getByTestId('banner').textContent()).toContain('Lock your screen');
    await e2e.shot(page, '04-signed-in');
    await page.close();
  });

  it('PW-07 three wrong passwords lock a pupil out; an administrator unlocks the account from the console', async () => {
    const pupil = await e2e.page({ width: 1200, height: 800 });
    await pupil.goto(e2e.server.url);
    for (let i = 0; i < 4; i++) {
      await pupil.getByLabel('Username').fill('pupil9');
      await pupil.getByLabel('Password').fill(`not-it-${i}`);
      await pupil.getByRole('button', { name: 'Sign in' }).click();
      await pupil.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
    }
    await e2e.shot(pupil, '05-refused');
    await pupil.close();

    const page = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(page, 'master');
    await page.getByRole('heading', { name: 'Check it’s you' }).waitFor();
    await e2e.shot(page, '06-second-factor');
    await page.getByLabel('Code').fill(await freshCode(admin.totpSecret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByRole('button', { name: 'Locked' }).click();
    const row = page.locator('tr[data-username="pupil9"]');
    await row.getByText('locked after 3 failures').waitFor();
    await e2e.shot(page, '07-locked-accounts');
    await page.getByRole('button', { name: 'Unlock pupil9' }).click();
    await page.getByText('No accounts match.').waitFor();

    await page.getByRole('link', { name: 'Policy', exact: true }).click();
    await page.getByTestId('profile-warnings').waitFor();
    expect(await page.getByTestId('profile-warnings').textContent()).toContain('NIST SP 800-63B');
    await e2e.shot(page, '08-policy');
    await page.close();
  });

  it('AC-14 a member of staff sets up an authenticator app from My account after confirming it is them', async () => {
    const page = await e2e.page({ width: 1200, height: 1000 });
    await e2e.signIn(page, 'rjones', { password: chosen });
    await page.getByRole('link', { name: 'My account' }).click();
    await page.getByTestId('sessions').waitFor();
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    // The server wants the password again first: the console's one prompt asks, then carries on.
    const prompt = page.getByTestId('reauth-prompt');
    await prompt.getByRole('heading', { name: 'Confirm it’s you' }).waitFor();
    await prompt.getByLabel('Your password').fill('not-my-password');
    await prompt.getByRole('button', { name: 'Confirm' }).click();
    await prompt.getByRole('alert').filter({ hasText: 'not right' }).waitFor();
    await prompt.getByLabel('Your password').fill(chosen);
    await prompt.getByRole('button', { name: 'Confirm' }).click();
    const secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
    await e2e.shot(page, '09a-authenticator-secret');
    await page.getByLabel('Code from the app').fill(await freshCode(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    await e2e.shot(page, '09-recovery-codes');
    await page.getByLabel('I have saved these codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('mfa-card').getByText('You sign in with a code').waitFor();
    await e2e.shot(page, '10-my-account');
    await page.close();
  });

  it('AC-07 the console asks an administrator to confirm it is them before giving a privileged role, and a cancel leaves it undone', async () => {
    const page = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('link', { name: 'Accounts' }).click();
    const create = async (username: string, displayName: string) => {
      await page.getByRole('button', { name: 'New account' }).click();
      const form = page.getByRole('form', { name: 'New account' });
      await form.getByLabel('Full name').fill(displayName);
      await form.getByLabel('Username').fill(username);
      await form.getByLabel('Role').selectOption('dsl');
      await form.getByRole('button', { name: 'Create with a temporary password' }).click();
      return form;
    };
    // Cancelled: nothing made, and the form says why.
    const form = await create('dsafe', 'Dee Safe');
    const prompt = page.getByTestId('reauth-prompt');
    await prompt.getByText('before giving anyone a privileged role').waitFor();
    await e2e.shot(page, '11-reauth-prompt');
    await prompt.getByRole('button', { name: 'Cancel' }).click();
    await form.getByRole('alert').filter({ hasText: 'Not done' }).waitFor();
    expect((await call(e2e.server.url, 'GET', '/api/accounts?q=dsafe', admin).then((r) => r.json()) as { total: number }).total).toBe(0);
    // Confirmed with the password and a code: the same request goes through.
    await form.getByRole('button', { name: 'Create with a temporary password' }).click();
    await prompt.getByLabel('Your password').fill(TEST_PASSWORD);
    await prompt.getByLabel('Code from your app').fill(await freshCode(admin.totpSecret));
    await prompt.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('temporary-password').waitFor();
    expect((await call(e2e.server.url, 'GET', '/api/accounts?q=dsafe', admin).then((r) => r.json()) as { accounts: Array<{ role: string }> }).accounts.map((a) => a.role)).toEqual(['dsl']);
    await page.close();
  });
});
