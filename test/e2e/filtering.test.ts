import { execFileSync } from 'node:child_process';
// Issue 11: a profile with change control off
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { fullUt1 } from '../helpers/ut1.js';
import { TEST_PASSWORD, call, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSession, type HttpSessionWithSecret } from '../helpers/server-process.js';
import { portBelowEphemeral } from '../helpers/ports.js';

/**
 * The filtering console in Chromium (FI-01, FI-03, FI-05, FI-13, MO-01), against a server that runs
 * the protective DNS resolver over the real UT1 lists: an administrator edits the pupils' policy,
 * tests an address, sees the lists and the live activity that `dig` queries made; someone who is not
 * signed in asks for a blocked site from the block page, and the request shows in the console.
 * Screenshots: test-results/screenshots/filtering-*.png.
 */
const GAMBLING = '0-casino.info';

describe('filtering console in Chromium', () => {
  const dnsPort = portBelowEphemeral();
  // Console errors are problems, but for the 4xx answers the wrong input is meant to get; the first test provokes no 404.
  // The UT1 lists are read from the shared data folder: it is the server's list folder (GATEHOUSE_LIST_FOLDER).
  const e2e = browserSuite({ prefix: 'filtering-', allow: /status of (400|401|404|409)/, env: (test) => {
    // Issue 11: this walk is of the filtering pages, so changes apply at once (change control: test/e2e/changes.test.ts).
    const profile = path.join(test.dataDir, 'school-profile.yaml');
    writeFileSync(profile, 'name: Changes apply at once\nextends: ncsc\ngovernance:\n  changeControl: "off"\n');
    return { GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: '127.0.0.1:9', GATEHOUSE_LIST_FOLDER: fullUt1(), GATEHOUSE_PROFILE: profile };
  } });
  const no404 = { allow: /status of (400|401|409)/ };
  let admin: HttpSessionWithSecret;

  const dig = (name: string) => execFileSync('dig', ['@127.0.0.1', '-p', String(dnsPort), name, '+tries=1', '+time=3'], { encoding: 'utf8' });

  /** A page signed in with an existing session (the sign-in itself is the first test's). */
  async function signedInPage(session: HttpSession, viewport = { width: 1366, height: 900 }): Promise<Page> {
    const page = await e2e.page(viewport);
    const name = session.cookie.slice(0, session.cookie.indexOf('='));
    await page.context().addCookies([{ name, value: session.cookie.slice(name.length + 1), domain: new URL(e2e.server.url).hostname, path: '/', secure: true, httpOnly: true, sameSite: 'Strict' }]);
    return page;
  }
  /** The error shown beside a field: the element its aria-describedby names first, once it is marked invalid. */
  async function errorBeside(field: Locator): Promise<string> {
    await field.and(field.page().locator('[aria-invalid="true"]')).waitFor();
    const id = (await field.getAttribute('aria-describedby'))!.split(' ')[0]!;
    return field.page().locator(`[id="${id}"]`).innerText();
  }
  const pupilsPolicy = async () => ((await (await call(e2e.server.url, 'GET', '/api/filtering/policies', admin)).json()) as { policies: Array<{ id: string; schedules: Array<{ label?: string; from: string; to: string; days: number[]; categories: string[] }> }> }).policies.find((p) => p.id === 'role:pupils')!;

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    // The UT1 lists from a folder on the server, and the school's own allow list.
    // Setting where a list comes from needs a recent re-authentication (test/identity/reauth.test.ts).
    await reauthOverHttp(url, admin);
    const ut1 = await call(url, 'POST', '/api/filtering/lists', admin, { name: 'UT1', format: 'ut1', location: fullUt1(), kind: 'category', scheduleHours: 24 });
    expect(ut1.status).toBe(201);
    const allow = await call(url, 'POST', '/api/filtering/lists', admin, { name: 'School allow list', format: 'domains', location: null, kind: 'allow', scheduleHours: 24 });
    const allowId = ((await allow.json()) as { id: string }).id;
    expect((await call(url, 'POST', `/api/filtering/lists/${allowId}/entries`, admin, { hosts: ['www.bbc.co.uk/bitesize'], note: 'Revision' })).status).toBe(200);
  }, 120_000);

  it('FI-02 FI-01 FI-04 MO-01 FI-13 policies, test an address, lists, live activity and a request from the block page', async () => {
    const page = await e2e.page({ width: 1366, height: 900 }, no404);
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });

    // Policies: the pupils' policy with UT1's categories by name and description.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Policies' }).click();
    const form = page.getByTestId('policy-form');
    await form.getByRole('heading', { name: 'Pupils' }).waitFor();
    const gambling = form.getByTestId('categories').getByRole('checkbox', { name: /Gambling\/Casino games/ });
    expect(await gambling.isChecked()).toBe(true);
    await form.getByText('Gambling and games sites, casino, etc.').waitFor();
    // A category global_usage names only by its id is shown by a readable name.
    const shopping = form.getByTestId('categories').getByRole('checkbox', { name: /^Shopping Any shopping/ });
    expect(await shopping.isChecked()).toBe(false);
    await shopping.check();
    expect(await form.getByTestId('schedule').getByLabel('Name').inputValue()).toBe('school hours');
    await form.getByLabel('YouTube').selectOption('moderate');
    await form.getByRole('button', { name: 'Save Pupils' }).click();
    await form.getByText('Saved: in force now.').waitFor();
    await e2e.shot(page, '01-policy-saved');
    const saved = (await (await call(e2e.server.url, 'GET', '/api/filtering/policies', admin)).json()) as { policies: Array<{ id: string; blockedCategories: string[]; youtube: string; edited: boolean }> };
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
    await e2e.shot(page, '02-test-blocked');
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
    await e2e.shot(page, '03-lists');

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
    await e2e.shot(page, '04-activity');

    // The block page, as a visitor who is not signed in: ask for the site, with a reason.
    const visitor = await e2e.page({ width: 1000, height: 800 }, no404);
    const blockedUrl = `${e2e.server.url}/blocked?${new URLSearchParams({ host: `www.${GAMBLING}`, url: `http://www.${GAMBLING}/roulette`, category: 'gambling', action: 'request' })}`;
    await visitor.goto(blockedUrl);
    const blockedPage = visitor.getByTestId('blocked-page');
    await blockedPage.getByText('Gambling and games sites, casino, etc.', { exact: false }).waitFor();
    // Why, in a pupil's words: the category, and that this device is not signed in (with where to sign in); no policy names, no server state.
    await blockedPage.getByText('This site is blocked because it is in the category “Gambling/Casino games”.').waitFor();
    await blockedPage.getByTestId('device-not-signed-in').getByText('This device isn’t signed in to the school network.', { exact: false }).waitFor();
    expect(await blockedPage.getByRole('link', { name: 'Sign in with your school account' }).getAttribute('href')).toBe('/connect');
    expect(await visitor.locator('body').innerText()).not.toMatch(/Unknown devices|Server:|SQLite|Checking server/);
    await blockedPage.getByLabel('Why?').fill('We are studying probability in maths with this roulette simulator');
    await e2e.shot(visitor, '05-block-page');
    await blockedPage.getByRole('button', { name: 'Send' }).click();
    await blockedPage.getByText('your request has been sent').waitFor();
    await e2e.shot(visitor, '06-block-page-sent');
    await visitor.close();

    await page.getByRole('link', { name: 'Requests' }).click();
    const requests = page.getByTestId('requests');
    await requests.getByText('studying probability', { exact: false }).waitFor();
    await requests.getByText(`www.${GAMBLING}`, { exact: true }).waitFor();
    await e2e.shot(page, '07-requests');

    // The captive page (FI-02): a pupil signs in at /connect on their device; it is theirs until the end of the day.
    await createPersonOverHttp(e2e.server.url, admin, { username: 'amy.pupil', displayName: 'Amy Pupil', role: 'pupil' });
    const phone = await e2e.page({ width: 420, height: 800 }, no404);
    await phone.goto(`${e2e.server.url}/connect`);
    await phone.getByLabel('Username').fill('amy.pupil');
    await phone.getByLabel('Password').fill(TEST_PASSWORD);
    await phone.getByRole('button', { name: 'Sign in' }).click();
    const connected = phone.getByTestId('connect-page');
    await connected.getByText('is connected as').waitFor();
    await connected.getByText('filtered by the Pupils policy').waitFor();
    expect(await phone.locator('body').innerText()).not.toMatch(/Server:|SQLite|Checking server/);
    await e2e.shot(phone, '08-connect');
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByTestId('mappings').getByText('amy.pupil', { exact: true }).waitFor();
    await page.getByTestId('mappings').getByText('signed in at /connect').waitFor();
    await e2e.shot(page, '09-devices');
    await phone.close();
    e2e.expectNoProblems();
  }, 120_000);

  it('FI-02 policy form: a time ending before it starts, one with no day or category, each refused beside its field; another policy and back keeps every change; overlapping times save', async () => {
    const page = await signedInPage(admin);
    await page.goto(`${e2e.server.url}/filtering`);
    const form = page.getByTestId('policy-form');
    await form.getByRole('heading', { name: 'Pupils' }).waitFor();

    // ~70 UT1 categories: a search narrows them, and the count says how many are blocked.
    await form.getByTestId('blocked-count').getByText(/^\d+ of \d+ categories blocked$/).waitFor();
    await form.getByLabel('Find a category').fill('casino');
    await form.getByTestId('categories').getByRole('checkbox', { name: /Gambling\/Casino games/ }).waitFor();
    expect(await form.getByTestId('categories').getByRole('checkbox', { name: /^Ads/ }).count()).toBe(0);
    // UT1's whitelists are not offered to block; a category named only by id in global_usage reads as words.
    await form.getByLabel('Find a category').fill('blanche');
    await form.getByText('No category matches “blanche”.').waitFor();
    expect(await form.getByTestId('categories').getByRole('checkbox').count()).toBe(0);
    await form.getByLabel('Find a category').fill('social');
    await form.getByTestId('categories').getByRole('checkbox', { name: /^Social networks/ }).waitFor();
    await form.getByLabel('Find a category').fill('');

    const schoolHours = form.getByRole('group', { name: /^Time 1/ });
    await schoolHours.getByLabel('From', { exact: true }).fill('15:30');
    await schoolHours.getByLabel('To', { exact: true }).fill('08:30');
    await form.getByRole('button', { name: 'Add a time' }).click();
    const lunch = form.getByRole('group', { name: /^Time 2/ });
    await lunch.getByLabel('Name', { exact: true }).fill('lunch');
    await lunch.getByLabel('From', { exact: true }).fill('12:00');
    await lunch.getByLabel('To', { exact: true }).fill('13:00');
    for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await lunch.getByLabel(day, { exact: true }).uncheck();
    await form.getByRole('button', { name: 'Save Pupils' }).click();

    expect(await errorBeside(schoolHours.getByLabel('To', { exact: true }))).toBe('Must be after 15:30: over midnight, add two times.');
    await lunch.getByText('Choose at least one day.').waitFor();
    await lunch.getByText('Choose at least one category to block at this time.').waitFor();
    await form.getByRole('alert').getByText('3 things to correct: see the fields marked in red.').waitFor();
    // The first field to correct has the focus, though Save is far below it.
    expect(await page.evaluate('document.activeElement.id')).toBe(await schoolHours.getByLabel('To', { exact: true }).getAttribute('id'));
    await e2e.shot(page, '10-policy-errors');
    expect((await pupilsPolicy()).schedules).toHaveLength(1);

    // To another policy and back: what was typed is still there, and the tab says it is not saved.
    const tabs = page.getByRole('group', { name: 'Policies' });
    await tabs.getByRole('button', { name: 'Staff' }).click();
    await form.getByRole('heading', { name: 'Staff' }).waitFor();
    await tabs.getByRole('button', { name: 'Pupils · not saved' }).click();
    expect(await lunch.getByLabel('Name', { exact: true }).inputValue()).toBe('lunch');
    expect(await schoolHours.getByLabel('From', { exact: true }).inputValue()).toBe('15:30');

    // Corrected: school hours again, lunch on weekdays blocking games (it overlaps school hours, which is allowed).
    await schoolHours.getByLabel('From', { exact: true }).fill('08:30');
    await schoolHours.getByLabel('To', { exact: true }).fill('15:30');
    for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await lunch.getByLabel(day, { exact: true }).check();
    await lunch.getByRole('checkbox', { name: 'Games', exact: true }).check();
    await lunch.getByText('Games', { exact: true }).first().waitFor();
    await form.getByRole('button', { name: 'Save Pupils' }).click();
    await form.getByText('Saved: in force now.').waitFor();
    expect(await form.locator('[aria-invalid="true"]').count()).toBe(0);
    expect((await pupilsPolicy()).schedules[1]).toEqual({ label: 'lunch', from: '12:00', to: '13:00', days: [1, 2, 3, 4, 5], categories: ['games'] });
    expect(await tabs.getByRole('button', { name: /not saved/ }).count()).toBe(0);

    // A senior leader reads the policy: only what is blocked, and the times in words.
    const head = await createPersonOverHttp(e2e.server.url, admin, { username: 'helen.head', displayName: 'Helen Head', role: 'senior_leader' });
    const headPage = await signedInPage(head.session);
    await headPage.goto(`${e2e.server.url}/filtering`);
    const readOnly = headPage.getByTestId('policy-form');
    await readOnly.getByText('lunch — Mon–Fri, 12:00–13:00: Games').waitFor();
    expect(await readOnly.getByLabel('Only the blocked ones').isChecked()).toBe(true);
    const shown = readOnly.getByTestId('categories').getByRole('checkbox');
    expect(await shown.count()).toBeGreaterThan(5);
    for (const box of await shown.all()) expect(await box.isChecked()).toBe(true);
    await readOnly.getByText('changing them is for IT administrators').waitFor();
    await e2e.shot(headPage, '11-policy-senior-leader');
    await headPage.context().close();
    await page.context().close();
    e2e.expectNoProblems();
  }, 120_000);

  it('FI-13 the block page on a phone (390 px): fits the screen; a reason too short is refused beside the field and kept; a report is sent; an unreadable address offers no form', async () => {
    const phone = await e2e.page({ width: 390, height: 844 });
    const longUrl = `http://www.${GAMBLING}/roulette/play?session=${'0123456789abcdef'.repeat(4)}&ref=tracking-value`;
    await phone.goto(`${e2e.server.url}/blocked?${new URLSearchParams({ host: `www.${GAMBLING}`, url: longUrl, category: 'gambling', action: 'request' })}`);
    const blockedPage = phone.getByTestId('blocked-page');
    await blockedPage.getByText('Gambling and games sites, casino, etc.', { exact: false }).waitFor();
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);

    await blockedPage.getByLabel('Why?').fill(' ok ');
    await blockedPage.getByRole('button', { name: 'Send' }).click();
    expect(await errorBeside(blockedPage.getByLabel('Why?'))).toBe('Say in a few words why, e.g. which lesson it is for.');
    expect(await blockedPage.getByLabel('Why?').inputValue()).toBe(' ok ');
    await e2e.shot(phone, '12-block-page-phone-error');

    await blockedPage.getByLabel(/Report this page/).check();
    await blockedPage.getByLabel('Why?').fill('This casino page is open on the sixth-form wifi');
    await blockedPage.getByRole('button', { name: 'Send' }).click();
    await blockedPage.getByText('your report has been sent').waitFor();
    await e2e.shot(phone, '13-block-page-phone-sent');
    const requests = (await (await call(e2e.server.url, 'GET', '/api/filtering/requests', admin)).json()) as { requests: Array<{ kind: string; reason: string; url: string | null }> };
    expect(requests.requests.find((r) => r.reason === 'This casino page is open on the sixth-form wifi')).toMatchObject({ kind: 'report', url: longUrl });

    await phone.goto(`${e2e.server.url}/blocked?${new URLSearchParams({ host: 'not a host!!' })}`);
    await blockedPage.getByText('This address could not be read').waitFor();
    expect(await blockedPage.getByRole('button', { name: 'Send' }).count()).toBe(0);
    await phone.context().close();

    // The console shows the category by its name and the request as waiting, not the engine's words.
    const page = await signedInPage(admin);
    await page.goto(`${e2e.server.url}/filtering/requests`);
    const row = page.getByTestId('requests').getByRole('row').filter({ hasText: 'sixth-form wifi' });
    await row.getByText('Gambling/Casino games').waitFor();
    await row.getByText('Reports the page').waitFor();
    await row.getByText('waiting').waitFor();
    await page.context().close();
    e2e.expectNoProblems();
  }, 120_000);

  it('MO-01 MO-04 activity names the category and the list that decided, filters by site, and refuses a "To" before "From" beside the field', async () => {
    expect(dig(`www.${GAMBLING}`)).toContain('status: NXDOMAIN');
    dig('www.bbc.co.uk');
    const page = await signedInPage(admin);
    await page.goto(`${e2e.server.url}/filtering/activity`);
    const activity = page.getByTestId('activity');
    await activity.getByText('Gambling/Casino games (blocked category)').first().waitFor({ timeout: 15_000 });
    await activity.getByText('on the school’s allow list “School allow list”').first().waitFor();
    expect(await activity.innerText()).not.toMatch(/school-allow-list|gambling:|undefined|NaN|Invalid Date/);

    await page.getByLabel('Site', { exact: true }).fill(GAMBLING);
    await page.getByRole('button', { name: 'Show' }).click();
    await expectSoon(async () => {
      const hosts = await activity.locator('tbody code').allInnerTexts();
      return hosts.length > 0 && hosts.every((h) => h.endsWith(GAMBLING));
    });

    await page.getByLabel('From', { exact: true }).fill('2026-03-02T10:00');
    await page.getByLabel('To', { exact: true }).fill('2026-03-01T10:00');
    await page.getByRole('button', { name: 'Show' }).click();
    expect(await errorBeside(page.getByLabel('To', { exact: true }))).toBe('Must be after “From”.');
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe('2026-03-02T10:00');
    await e2e.shot(page, '14-activity');
    await page.context().close();
    e2e.expectNoProblems();
  }, 60_000);

  it('FI-01 FI-05 FI-04 wrong input on Test an address, Devices and Lists: each error beside its field, and what was typed stays', async () => {
    const page = await signedInPage(admin);

    // Test an address: a malformed address, a bad IP address, a person who does not exist.
    await page.goto(`${e2e.server.url}/filtering/test`);
    await page.getByLabel('Web address').fill('exa mple.com');
    await page.getByRole('button', { name: 'Test' }).click();
    expect(await errorBeside(page.getByLabel('Web address'))).toContain('That is not a web address');
    expect(await page.getByLabel('Web address').inputValue()).toBe('exa mple.com');
    expect(await page.getByTestId('verdict').count()).toBe(0);
    await page.getByLabel('Web address').fill('example.com');
    await page.getByLabel('For').selectOption('ip');
    await page.getByLabel('IP address').fill('999.1.1.1');
    await page.getByRole('button', { name: 'Test' }).click();
    expect(await errorBeside(page.getByLabel('IP address'))).toBe('That is not an IP address: type one like 10.1.20.15.');
    await page.getByLabel('IP address').fill('10.9.9.9');
    await page.getByRole('button', { name: 'Test' }).click();
    await page.getByTestId('verdict').getByText('Unknown devices — nobody and no registered device is known at this address').waitFor();
    await page.getByLabel('For').selectOption('person');
    await page.getByLabel('Username').fill('nobody.here');
    await page.getByRole('button', { name: 'Test' }).click();
    expect(await errorBeside(page.getByLabel('Username'))).toBe('There is no person nobody.here.');

    // Devices: a bad network and MAC address, then corrected; the same name twice.
    await page.goto(`${e2e.server.url}/filtering/devices`);
    const register = page.getByRole('form', { name: 'Register a device' });
    await register.getByLabel('Name').fill('ICT suite PC 12');
    await register.getByLabel('Address or network').fill('10.1.20.300');
    await register.getByLabel('MAC address').fill('zz:zz');
    await register.getByRole('button', { name: 'Register' }).click();
    expect(await errorBeside(register.getByLabel('Address or network'))).toContain('That is not an IP address or a network');
    expect(await errorBeside(register.getByLabel('MAC address'))).toContain('That is not a MAC address');
    expect(await register.getByLabel('Name').inputValue()).toBe('ICT suite PC 12');
    await e2e.shot(page, '15-devices-errors');
    await register.getByLabel('Address or network').fill('10.1.20.0/24');
    await register.getByLabel('MAC address').fill('');
    await register.getByLabel('Note (optional)').fill('ICT suite');
    await register.getByRole('button', { name: 'Register' }).click();
    await page.getByTestId('devices').getByText('ICT suite', { exact: true }).waitFor();
    await page.getByTestId('devices').getByRole('button', { name: 'Remove ICT suite PC 12' }).waitFor();
    await register.getByLabel('Name').fill('ICT suite PC 12');
    await register.getByLabel('Address or network').fill('10.1.21.7');
    await register.getByRole('button', { name: 'Register' }).click();
    expect(await errorBeside(register.getByLabel('Name'))).toContain('There is already a device called');
    const token = page.getByRole('form', { name: 'New identity token' });
    await token.getByLabel('Used by').fill('RADIUS: main');
    await token.getByRole('button', { name: 'Make a token' }).click();
    expect(await errorBeside(token.getByLabel('Used by'))).toBe('May not contain a colon (:).');

    // Lists: a name in use, a location that is no address or path, sites that are not names.
    await page.goto(`${e2e.server.url}/filtering/lists`);
    const addList = page.getByRole('form', { name: 'Add a list' });
    await addList.getByLabel('Name').fill('UT1');
    await addList.getByRole('button', { name: 'Add the list' }).click();
    expect(await errorBeside(addList.getByLabel('Name'))).toBe('There is already a list called "UT1".');
    await addList.getByLabel('Name').fill('Trust list');
    await addList.getByLabel('Location').fill('ftp://lists.example.org/trust.txt');
    await addList.getByRole('button', { name: 'Add the list' }).click();
    expect(await errorBeside(addList.getByLabel('Location'))).toContain('Give an http:// or https:// address');
    expect(await addList.getByLabel('Name').inputValue()).toBe('Trust list');
    await page.getByTestId('sources').getByRole('button', { name: 'Edit sites of School allow list' }).click();
    const entries = page.getByTestId('entries');
    await entries.getByLabel('Sites to add').fill('www.tate.org.uk not exa_mple!! http://');
    await entries.getByRole('button', { name: 'Add', exact: true }).click();
    expect(await errorBeside(entries.getByLabel('Sites to add'))).toBe('These are not web addresses or domain names: not, exa_mple!!, http://. Nothing was added; correct them and add again.');
    expect(await entries.getByLabel('Sites to add').inputValue()).toBe('www.tate.org.uk not exa_mple!! http://');
    await e2e.shot(page, '16-lists-errors');
    await page.context().close();
    e2e.expectNoProblems();
  }, 120_000);
});

/** Polls until the check holds (the activity table refreshes every 3 seconds). */
async function expectSoon(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('the condition did not hold in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}
