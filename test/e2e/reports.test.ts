import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { ROOT } from '../helpers/cli.js';
import { call, changeOverHttp, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';
import { portBelowEphemeral } from '../helpers/ports.js';

const run = promisify(execFile);

/** A small UT1-layout folder and an IWF-style list, in the server's list folder. */
function listFolder(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-lists-'));
  const lists: Record<string, string[]> = { agressif: ['hate-site.example'], drogue: ['buy-drugs.example'], gambling: ['casino-royale.example'], malware: ['malware-host.example'], adult: ['adult-site.example'], warez: ['free-films.example'], vpn: ['hide-me.example'] };
  let usage = '# test\n';
  for (const [id, domains] of Object.entries(lists)) {
    mkdirSync(path.join(root, 'ut1', id), { recursive: true });
    writeFileSync(path.join(root, 'ut1', id, 'domains'), `${domains.join('\n')}\n`);
    usage += `NAME:\t${id}\nDEFAULT_TYPE: black\nDESC EN: ${id} sites.\nNAME EN: ${id[0]!.toUpperCase()}${id.slice(1)}\n\n`;
  }
  writeFileSync(path.join(root, 'ut1', 'global_usage'), usage);
  writeFileSync(path.join(root, 'iwf.txt'), 'abuse-images.example\n');
  return root;
}

/**
 * Filtering checks and the termly report in Chromium (GV-03, AU-04, MO-05): the DSL runs a guided
 * check for pupils through the live filter and the running DNS resolver, sees what failed, and
 * records the action; a senior leader reads the termly report, downloads its PDF (rendered to PNG
 * and read back) and issues it. Screenshots: test-results/screenshots/reports-*.png.
 */
describe('filtering checks and the termly report in Chromium', () => {
  const folder = listFolder();
  const dnsPort = portBelowEphemeral();
  const e2e = browserSuite({ prefix: 'reports-', allow: /status of (400|401)/, env: { GATEHOUSE_LIST_FOLDER: folder, GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: '127.0.0.1:9' } });
  let dsl: HttpSessionWithSecret;
  let head: HttpSessionWithSecret;

  beforeAll(async () => {
    const url = e2e.server.url;
    const admin = await setupAndSignIn(e2e.server);
    await reauthOverHttp(url, admin);
    // Each list is a change request a senior leader approves (FI-06).
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'UT1', format: 'ut1', location: path.join(folder, 'ut1'), kind: 'category', scheduleHours: 24 })).state).toBe('applied');
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'IWF list', format: 'domains', location: path.join(folder, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 })).state).toBe('applied');
    dsl = (await createPersonOverHttp(url, admin, { username: 'dsafe', displayName: 'Dana Safeguard', role: 'dsl' })).session;
    head = (await createPersonOverHttp(url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader' })).session;
  }, 120_000);

  it('GV-03 AU-04 the DSL runs a guided check for pupils through the live filter and the resolver, sees what failed, and records the action', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'dsafe', { totpSecret: dsl.totpSecret });
    await page.getByRole('link', { name: 'Checks' }).click();
    await page.getByRole('heading', { name: 'Filtering checks' }).waitFor();
    await page.getByText('No checks have been recorded yet.').waitFor();
    await page.getByRole('button', { name: 'Run a guided check' }).click();
    const form = page.getByRole('form', { name: 'Guided check' });
    // Nothing typed: the browser asks for the device first, and nothing is recorded.
    await form.getByRole('button', { name: 'Run the check' }).click();
    expect(await form.getByLabel('Device').evaluate((el) => (el as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(false);
    await form.getByLabel('Group').selectOption({ label: 'Pupils' });
    await form.getByLabel('Device').fill('Year 5 iPad 12');
    await form.getByLabel('Location').fill('Library');
    await form.getByLabel('Addresses of your own (optional)').fill('https://www.bbc.co.uk/bitesize allow\ncasino-royale.example block');
    await e2e.shot(page, '01-guided-form');
    await form.getByRole('button', { name: 'Run the check' }).click();

    await page.getByRole('heading', { name: /Check of .* problems found/ }).waitFor();
    const results = page.getByTestId('results');
    expect(await results.locator('tr[data-category="illegal"] td').nth(3).innerText()).toBe('blocked');
    expect(await results.locator('tr[data-category="gambling"] td').nth(1).innerText()).toBe('http://casino-royale.example/');
    expect(await results.locator('tr[data-category="self-harm"] td').nth(3).innerText()).toBe('nothing to try');
    // The running resolver was asked too.
    const dns = results.locator('tr[data-category="dns"]');
    expect(await dns.locator('td').nth(0).innerText()).toContain(`The DNS resolver at 127.0.0.1:${dnsPort} answers and blocks`);
    expect(await dns.locator('td').nth(3).innerText()).toBe('blocked');
    expect(await results.locator('tr[data-category="custom"]').count()).toBe(2);
    await e2e.shot(page, '02-guided-result');

    await page.getByLabel('What will be done').fill('IT provider to add a self-harm list by Friday (Dana).');
    await page.getByRole('button', { name: 'Save the actions' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    await page.getByRole('link', { name: 'Filtering checks' }).click();
    const row = page.getByTestId('checks').locator('tbody tr').first();
    expect(await row.locator('td').nth(1).innerText()).toBe('Dana Safeguard');
    expect(await row.locator('td').nth(5).innerText()).toBe('IT provider to add a self-harm list by Friday (Dana).');
    await e2e.shot(page, '03-register');
    e2e.expectNoProblems();
    await page.close();
  });

  it('MO-05 a senior leader reads the termly report, downloads the PDF and issues it to governors', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead', { totpSecret: head.totpSecret });
    await page.getByRole('link', { name: 'Termly report' }).click();
    await page.getByRole('heading', { name: 'Termly monitoring report' }).waitFor();
    await page.locator('[data-section="Checks of the filtering and monitoring"]').getByText('Dana Safeguard').waitFor();
    await page.locator('[data-section="Changes to the filtering"]').waitFor();
    await e2e.shot(page, '04-termly');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download PDF' }).click()]);
    const out = path.join(ROOT, 'test-results', 'screenshots');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, 'reports-05-termly.pdf');
    await download.saveAs(file);
    const { stdout } = await run('pdftotext', ['-layout', file, '-']);
    expect(stdout).toContain('Termly monitoring report');
    expect(stdout).toContain('Checks of the filtering and monitoring');
    expect(stdout).toContain('Dana Safeguard');
    // The first page as an image, to look at.
    await run('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', file, path.join(out, 'reports-05-termly-page')]);

    await page.getByRole('button', { name: 'Issue to senior leaders and governors' }).click();
    await page.getByRole('status').getByText(/Issued\. The PDF is kept exactly as issued/).waitFor();
    await page.getByRole('link', { name: 'the PDF as issued' }).waitFor();
    await e2e.shot(page, '06-issued');
    e2e.expectNoProblems();
    await page.close();
  });
});
