import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, launchChromium } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { fullUt1 } from '../helpers/ut1.js';
import { TEST_PASSWORD, call, createPersonOverHttp, freshCode, setupAndSignIn, startServerProcess, type HttpSessionWithSecret, type ServerProcess } from '../helpers/server-process.js';

/**
 * The filtering console in Chromium (FI-01, FI-03, FI-05, FI-13, MO-01), against a server that runs
 * the protective DNS resolver over the real UT1 lists: an administrator edits the pupils' policy,
 * tests an address, sees the lists and the live activity that `dig` queries made; someone who is not
 * signed in asks for a blocked site from the block page, and the request shows in the console.
 * Screenshots: test-results/screenshots/filtering-*.png.
 */
const GAMBLING = '0-casino.info';

describe('filtering console in Chromium', () => {
  let test: TestDatabase;
  let server: ServerProcess;
  let browser: Browser;
  let admin: HttpSessionWithSecret;
  const dnsPort = 20_000 + Math.floor(Math.random() * 20_000);

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `filtering-${name}.png`), fullPage: true });
  const dig = (name: string) => execFileSync('dig', ['@127.0.0.1', '-p', String(dnsPort), name, '+tries=1', '+time=3'], { encoding: 'utf8' });

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) throw new Error('The console is not built: run `npm run build`.');
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    server = await startServerProcess(
      { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1', GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: '127.0.0.1:9' },
      { built: true },
    );
    admin = await setupAndSignIn(server);
    // The UT1 lists from a folder on the server, and the school's own allow list.
    const ut1 = await call(server.url, 'POST', '/api/filtering/lists', admin, { name: 'UT1', format: 'ut1', location: fullUt1(), kind: 'category', scheduleHours: 24 });
    expect(ut1.status).toBe(201);
    const allow = await call(server.url, 'POST', '/api/filtering/lists', admin, { name: 'School allow list', format: 'domains', location: null, kind: 'allow', scheduleHours: 24 });
    const allowId = ((await allow.json()) as { id: string }).id;
    expect((await call(server.url, 'POST', `/api/filtering/lists/${allowId}/entries`, admin, { hosts: ['www.bbc.co.uk/bitesize'], note: 'Revision' })).status).toBe(200);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });

  it('FI-02 FI-01 FI-04 MO-01 FI-13 policies, test an address, lists, live activity and a request from the block page', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (400|401|409)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.goto(server.url);
    await page.getByLabel('Username').fill('master');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Code').fill(await freshCode(admin.totpSecret));
    await page.getByRole('button', { name: 'Continue' }).click();

    // Policies: the pupils' policy with UT1's categories by name and description.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Policies' }).click();
    const form = page.getByTestId('policy-form');
    await form.getByRole('heading', { name: 'Pupils' }).waitFor();
    const gambling = form.getByTestId('categories').getByRole('checkbox', { name: /Gambling\/Casino games/ });
    expect(await gambling.isChecked()).toBe(true);
    await form.getByText('Gambling and games sites, casino, etc.').waitFor();
    const shopping = form.getByTestId('categories').getByRole('checkbox', { name: /^shopping Any shopping/ });
    expect(await shopping.isChecked()).toBe(false);
    await shopping.check();
    expect(await form.getByTestId('schedule').getByLabel('Name').inputValue()).toBe('school hours');
    await form.getByLabel('YouTube').selectOption('moderate');
    await form.getByRole('button', { name: 'Save Pupils' }).click();
    await form.getByText('Saved: in force now.').waitFor();
    await shot(page, '01-policy-saved');
    const saved = (await (await call(server.url, 'GET', '/api/filtering/policies', admin)).json()) as { policies: Array<{ id: string; blockedCategories: string[]; youtube: string; edited: boolean }> };
    const pupils = saved.policies.find((p) => p.id === 'role:pupils')!;
    expect(pupils).toMatchObject({ edited: true, youtube: 'moderate' });
    expect(pupils.blockedCategories).toContain('shopping');

    // Test an address: blocked for pupils, with the reason and the list it is on.
    await page.getByRole('link', { name: 'Test an address' }).click();
    await page.getByLabel('Web address').fill(`https://www.${GAMBLING}/roulette`);
    await page.getByLabel('Policy').selectOption('role:pupils');
    await page.getByRole('button', { name: 'Test' }).click();
    const verdict = page.getByTestId('verdict');
    await verdict.getByRole('heading', { name: 'Blocked' }).waitFor();
    await verdict.getByText('Blocked: Gambling/Casino games for Pupils').first().waitFor();
    await verdict.getByTestId('matches').getByText(GAMBLING, { exact: true }).waitFor();
    await shot(page, '02-test-blocked');
    await page.getByLabel('Web address').fill('https://www.bbc.co.uk/bitesize');
    await page.getByRole('button', { name: 'Test' }).click();
    await verdict.getByRole('heading', { name: 'Allowed' }).waitFor();
    await verdict.getByText('Allowed: on the school’s allow list “School allow list”').waitFor();

    // Lists: UT1 from the folder, up to date, with its size; the school's list with its site.
    await page.getByRole('link', { name: 'Lists' }).click();
    const ut1Row = page.getByTestId('sources').locator('tr[data-source="UT1"]');
    await ut1Row.getByText('up to date').waitFor();
    expect(Number((await ut1Row.locator('td.num').textContent())!.replace(/,/g, ''))).toBeGreaterThan(100_000);
    await page.getByTestId('sources').locator('tr[data-source="School allow list"]').getByRole('button', { name: 'Edit sites' }).click();
    await page.getByTestId('entries').getByText('www.bbc.co.uk').waitFor();
    await shot(page, '03-lists');

    // Activity: live, from real DNS queries to the resolver `serve` runs.
    await page.getByRole('link', { name: 'Activity' }).click();
    const activity = page.getByTestId('activity');
    expect(dig(`www.${GAMBLING}`)).toContain('status: NXDOMAIN');
    expect(dig('use-application-dns.net')).toContain('status: NXDOMAIN');
    await activity.getByText(`www.${GAMBLING}`).waitFor({ timeout: 15_000 });
    await activity.getByText('use-application-dns.net').waitFor();
    await page.getByLabel('Action').selectOption('block');
    await page.getByRole('button', { name: 'Show' }).click();
    await activity.locator('tr.blocked').first().waitFor();
    await shot(page, '04-activity');

    // The block page, as a visitor who is not signed in: ask for the site, with a reason.
    const visitor = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const blockedUrl = `${server.url}/blocked?${new URLSearchParams({ host: `www.${GAMBLING}`, url: `http://www.${GAMBLING}/roulette`, category: 'gambling', action: 'request' })}`;
    await visitor.goto(blockedUrl);
    const blockedPage = visitor.getByTestId('blocked-page');
    await blockedPage.getByText('Gambling and games sites, casino, etc.', { exact: false }).waitFor();
    await blockedPage.getByLabel('Why?').fill('We are studying probability in maths with this roulette simulator');
    await shot(visitor, '05-block-page');
    await blockedPage.getByRole('button', { name: 'Send' }).click();
    await blockedPage.getByText('your request has been sent').waitFor();
    await shot(visitor, '06-block-page-sent');
    await visitor.close();

    await page.getByRole('link', { name: 'Requests' }).click();
    const requests = page.getByTestId('requests');
    await requests.getByText('studying probability', { exact: false }).waitFor();
    await requests.getByText(`www.${GAMBLING}`).waitFor();
    await shot(page, '07-requests');

    // The captive page (FI-02): a pupil signs in at /connect on their device; it is theirs until the end of the day.
    await createPersonOverHttp(server.url, admin, { username: 'amy.pupil', displayName: 'Amy Pupil', role: 'pupil' });
    const phone = await (await browser.newContext({ viewport: { width: 420, height: 800 } })).newPage();
    await phone.goto(`${server.url}/connect`);
    await phone.getByLabel('Username').fill('amy.pupil');
    await phone.getByLabel('Password').fill(TEST_PASSWORD);
    await phone.getByRole('button', { name: 'Sign in' }).click();
    const connected = phone.getByTestId('connect-page');
    await connected.getByText('is connected as').waitFor();
    await connected.getByText('filtered by the Pupils policy').waitFor();
    await shot(phone, '08-connect');
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByTestId('mappings').getByText('amy.pupil', { exact: true }).waitFor();
    await page.getByTestId('mappings').getByText('signed in at /connect').waitFor();
    await shot(page, '09-devices');
    await phone.close();
    expect(problems).toEqual([]);
  }, 120_000);
});
