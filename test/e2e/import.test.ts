import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { browserSuite } from '../helpers/e2e.js';
import { call, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'imports');

/** The import wizard in Chromium (AC-12): a file with bad rows, the dry run naming them by line, the good rows imported. */
describe('import wizard in Chromium', () => {
  const e2e = browserSuite({ prefix: 'import-', allow: /status of (400|401)/ });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  });

  it('AC-12 walks a CSV with bad rows through column matching and a dry run, then imports the good rows; then School Data Sync files', async () => {
    const page = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });

    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Import', exact: true }).click();
    await page.getByRole('heading', { name: 'Import people' }).waitFor();
    await page.getByLabel(/A CSV file/).check();
    await e2e.shot(page, '01-kind');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByLabel('CSV file').setInputFiles(path.join(FIXTURES, 'mis-export-with-errors.csv'));
    await page.getByText('Chosen: mis-export-with-errors.csv').waitFor();
    await page.getByRole('button', { name: 'Next' }).click();

    // "Login name" is not a spelling Gatehouse knows: the wizard says so, and the person picks it.
    const mapping = page.getByRole('form', { name: 'Match columns' });
    await mapping.getByRole('status').filter({ hasText: 'holds the username' }).waitFor();
    expect(await mapping.getByLabel('First name').inputValue()).toBe('Forename');
    expect(await mapping.getByLabel('Last name').inputValue()).toBe('Legal Surname');
    expect(await mapping.getByLabel('External id').inputValue()).toBe('Adno');
    expect(await mapping.getByLabel('Groups').inputValue()).toBe('Reg');
    expect(await mapping.getByLabel('Year group').inputValue()).toBe('Year');
    expect(await mapping.getByLabel('Role', { exact: true }).inputValue()).toBe('Type');
    await e2e.shot(page, '02a-columns-guessed');
    await mapping.getByLabel('Username').selectOption('Login name');
    await mapping.getByRole('status').waitFor({ state: 'detached' });
    await e2e.shot(page, '02b-columns-matched');
    await mapping.getByRole('button', { name: 'Dry run' }).click();

    const dry = page.getByTestId('dry-run');
    await dry.waitFor();
    expect(await dry.locator('[data-count="created"] dd').textContent()).toBe('5');
    expect(await dry.locator('[data-count="bad"] dd').textContent()).toBe('3');
    const bad = page.getByTestId('bad-rows');
    const rows = await bad.locator('tbody tr').allTextContents();
    expect(rows).toEqual([
      expect.stringMatching(/^mis-export-with-errors\.csv4missing username$/),
      expect.stringMatching(/^mis-export-with-errors\.csv6duplicate in file: the username "qdixon" is also on line 5$/),
      expect.stringMatching(/^mis-export-with-errors\.csv7role "Parent" refused: parents and guardians are not given Gatehouse accounts$/),
    ]);
    await page.getByTestId('to-create').getByText('Theo Grant, Jr').waitFor();
    await e2e.shot(page, '03-dry-run');
    // Nothing is imported by a dry run.
    const before = await call(e2e.server.url, 'GET', '/api/accounts?q=nadams', admin);
    expect(((await before.json()) as { total: number }).total).toBe(0);

    await page.getByRole('button', { name: 'Import (leaving out 3 bad rows)' }).click();
    const result = page.getByTestId('import-result');
    await result.waitFor();
    expect(await result.getByRole('status').textContent()).toContain('Imported: 5 created, 0 updated, 0 disabled, 0 unchanged. 3 bad rows were left out.');
    await e2e.shot(page, '04-result');

    const after = (await (await call(e2e.server.url, 'GET', '/api/accounts?limit=100', admin)).json()) as { accounts: Array<{ username: string; source: string; role: string; groups: Array<{ name: string; role: string }> }> };
    const imported = after.accounts.filter((a) => a.source === 'csv');
    expect(imported.map((a) => a.username).sort()).toEqual(['nadams', 'obaker', 'qdixon', 'tgrant', 'uhart']);
    expect(imported.find((a) => a.username === 'uhart')).toMatchObject({ role: 'staff', groups: [{ name: '8C', role: 'teacher' }] });

    await result.getByRole('link', { name: 'Accounts' }).click();
    await page.getByTestId('accounts').getByText('Noah Adams').waitFor();
    await e2e.shot(page, '05-accounts');

    // School Data Sync: the four files together; a re-run of the same CSV would change nothing.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Import', exact: true }).click();
    await page.getByLabel(/School Data Sync/).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('School Data Sync files').setInputFiles(['users.csv', 'roles.csv', 'classes.csv', 'enrollments.csv'].map((f) => path.join(FIXTURES, 'sds', f)));
    await page.getByRole('button', { name: 'Next' }).click();
    await dry.waitFor();
    expect(await dry.locator('[data-count="created"] dd').textContent()).toBe('6');
    expect(await dry.locator('[data-count="bad"] dd').textContent()).toBe('0');
    await dry.getByText('users.csv has a password column: it was not read.').waitFor();
    await e2e.shot(page, '06-sds-dry-run');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await result.waitFor();
    expect(await result.getByRole('status').textContent()).toContain('Imported: 6 created');
    await e2e.shot(page, '07-sds-result');

    e2e.expectNoProblems();
  });
});
