import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

const dayFromNow = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

/**
 * The risk register in Chromium (GV-01): a senior leader adds a risk, corrects its owner (an edit,
 * not a review), reviews it with a new score, imports the rest of the register from a spreadsheet
 * (a file with a bad score is refused whole, naming line and column) and closes a risk; a governor
 * sees the register and can change nothing. Screenshots: test-results/screenshots/risks-*.png.
 */
describe('the risk register in Chromium', () => {
  const e2e = browserSuite({ prefix: 'risks-', allow: /status of (400|401|409)/ });
  let head: HttpSessionWithSecret;
  let governor: HttpSessionWithSecret;

  beforeAll(async () => {
    const admin = await setupAndSignIn(e2e.server);
    head = (await createPersonOverHttp(e2e.server.url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader' })).session;
    governor = (await createPersonOverHttp(e2e.server.url, admin, { username: 'ggov', displayName: 'Gina Governor', role: 'governor' })).session;
  }, 120_000);

  it('GV-01 a risk is added, edited, reviewed, imported with others from CSV and closed; a governor only reads', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead', { totpSecret: head.totpSecret });
    await page.getByRole('link', { name: 'Risks', exact: true }).click();
    await page.getByRole('heading', { name: 'Risks', exact: true }).waitFor();
    await page.getByTestId('empty').waitFor();

    await page.getByRole('button', { name: 'Add a risk' }).click();
    const form = page.getByTestId('risk-form');
    await form.getByRole('button', { name: 'Add', exact: true }).click();
    await form.locator('.field-invalid').first().waitFor();
    await e2e.shot(page, '01-form-errors');
    await form.getByLabel('Risk', { exact: true }).fill('Ransomware encrypts the admin server');
    await form.getByLabel('Owner').fill('IT lead');
    await form.getByLabel('Likelihood').selectOption('4');
    await form.getByLabel('Impact').selectOption('5');
    await form.getByLabel('Treatment').fill('Offline backups, MFA on remote access');
    await form.getByLabel('Next review').fill(dayFromNow(60));
    await form.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'added (score 20)' }).waitFor();

    const row = page.locator('tr[data-risk="Ransomware encrypts the admin server"]');
    await row.getByRole('button', { name: 'Edit' }).click();
    await page.getByTestId('risk-form').getByLabel('Owner').fill('Business manager');
    await page.getByTestId('risk-form').getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'changed.' }).waitFor();
    await row.filter({ hasText: 'Business manager' }).waitFor();

    await row.getByRole('button', { name: 'Review' }).click();
    const review = page.getByTestId('risk-form');
    await review.getByLabel('Likelihood').selectOption('2');
    await review.getByLabel('Next review').fill(dayFromNow(180));
    await review.getByRole('button', { name: 'Record the review' }).click();
    await page.getByRole('status').filter({ hasText: 'reviewed: score 10' }).waitFor();
    await e2e.shot(page, '02-reviewed');

    await page.getByRole('button', { name: 'Import CSV' }).click();
    const importer = page.getByTestId('import-risks');
    const header = 'Title,Owner,Likelihood,Impact,Treatment,Review at';
    await importer.getByLabel('CSV file').setInputFiles({ name: 'risks.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}\nPhishing,Headteacher,4,4,Training and a report button,${dayFromNow(90)}\nLost laptop,Office,3,7,Encryption,${dayFromNow(90)}\n`) });
    await importer.getByRole('button', { name: 'Import' }).click();
    await importer.getByTestId('import-errors').waitFor();
    expect(await importer.getByTestId('import-errors').innerText()).toContain('Line 3, impact');
    expect(await page.locator('tr[data-risk="Phishing"]').count()).toBe(0);
    await e2e.shot(page, '03-import-refused');
    await importer.getByLabel('CSV file').setInputFiles({ name: 'risks.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}\nPhishing,Headteacher,4,4,Training and a report button,${dayFromNow(90)}\nLost laptop,Office,3,3,Encryption,${dayFromNow(10)}\n`) });
    await importer.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('status').filter({ hasText: 'Imported: 2 rows.' }).waitFor();
    await page.locator('tr[data-risk="Lost laptop"]').waitFor();
    expect(await page.getByTestId('risks').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-risk')))).toEqual(['Phishing', 'Ransomware encrypts the admin server', 'Lost laptop']);
    await e2e.shot(page, '04-imported');

    page.once('dialog', (d) => void d.accept());
    await page.locator('tr[data-risk="Lost laptop"]').getByRole('button', { name: 'Close' }).click();
    await page.getByRole('status').filter({ hasText: '“Lost laptop” closed.' }).waitFor();
    expect(await page.locator('tr[data-risk="Lost laptop"]').count()).toBe(0);
    await page.close();

    const gov = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(gov, 'ggov', { totpSecret: governor.totpSecret });
    await gov.getByRole('link', { name: 'Risks', exact: true }).click();
    await gov.locator('tr[data-risk="Phishing"]').waitFor();
    expect(await gov.getByRole('button', { name: 'Add a risk' }).count()).toBe(0);
    expect(await gov.getByRole('button', { name: 'Review' }).count()).toBe(0);
    expect(await gov.getByRole('link', { name: 'Export CSV' }).count()).toBe(1);
    await e2e.shot(gov, '05-governor-reads');
    e2e.expectNoProblems();
  }, 180_000);
});
