import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * The Provisioning page in Chromium (AC-12): an administrator makes a SCIM token for Entra ID, sees
 * it once with the SCIM base URL, the token works against /scim/v2, and revoking it stops it.
 * Screenshots: test-results/screenshots/scim-*.png.
 */
describe('SCIM provisioning tokens in Chromium', () => {
  const e2e = browserSuite({ prefix: 'scim-', allow: /status of (400|401|409)/ });
  let admin: HttpSessionWithSecret;

  const scim = (token: string, method: string, url: string, body?: unknown) =>
    fetch(`${e2e.server.url}/scim/v2${url}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  });

  it('AC-12 an administrator makes a token for Entra ID, sees it once with the SCIM URL, and revokes it', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });

    await page.getByRole('link', { name: 'Provisioning' }).click();
    await page.getByText('No tokens yet').waitFor();
    await page.getByLabel('Used by').fill('Entra ID');
    await page.getByLabel('Role for new people').selectOption('pupil');
    await page.getByRole('button', { name: 'Make a token' }).click();
    const shown = page.getByTestId('scim-secret');
    await shown.waitFor();
    const token = (await shown.getByTestId('scim-token').textContent())!;
    expect(token).toMatch(/^gscim_[A-Za-z0-9_-]{43}$/);
    expect(await shown.getByTestId('scim-url').textContent()).toBe(`${e2e.server.url}/scim/v2`);
    await shown.getByText('map userName to mailNickname', { exact: false }).waitFor();
    await e2e.shot(page, '01-token-shown-once');

    // The token works as Entra ID would use it: a person is created as a pupil.
    const created = await scim(token, 'POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'new.pupil', externalId: 'e-1', name: { givenName: 'New', familyName: 'Pupil' }, active: true });
    expect(created.status).toBe(201);

    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });
    // Shown once: after reloading, the token is nowhere on the page.
    await page.reload();
    const row = page.getByTestId('scim-tokens').locator('tr[data-token="Entra ID"]');
    await row.getByText('Pupil').first().waitFor();
    expect(await row.getByText('never').count()).toBe(0);
    expect(await page.content()).not.toContain(token);

    // A duplicate name is explained.
    await page.getByLabel('Used by').fill('Entra ID');
    await page.getByRole('button', { name: 'Make a token' }).click();
    await page.getByRole('alert').filter({ hasText: 'already in use' }).waitFor();
    await e2e.shot(page, '02-token-listed');

    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Revoke Entra ID' }).click();
    await row.getByText('revoked').waitFor();
    await page.getByText('Every token is revoked').waitFor();
    expect((await scim(token, 'GET', '/Users')).status).toBe(401);
    await e2e.shot(page, '03-token-revoked');

    // People created over SCIM appear in the directory.
    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByTestId('accounts').locator('tr[data-username="new.pupil"]').waitFor();
    e2e.expectNoProblems();
    await page.close();
  });
});
