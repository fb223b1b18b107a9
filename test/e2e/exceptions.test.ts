import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, changeOverHttp, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

function listFolder(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-exc-'));
  mkdirSync(path.join(root, 'ut1', 'adult'), { recursive: true });
  writeFileSync(path.join(root, 'ut1', 'adult', 'domains'), 'adult-site.example\n');
  mkdirSync(path.join(root, 'ut1', 'games'), { recursive: true });
  writeFileSync(path.join(root, 'ut1', 'games', 'domains'), 'games-site.example\n');
  writeFileSync(path.join(root, 'ut1', 'global_usage'), 'NAME:\tadult\nNAME EN: Adult\nDESC EN: adult.\n\nNAME:\tgames\nNAME EN: Games\nDESC EN: games.\n\n');
  writeFileSync(path.join(root, 'iwf.txt'), 'abuse-images.example\n');
  return root;
}

/**
 * Filter exceptions in Chromium (issue 11): an unblock request sent from the block page, decided by
 * the DSL and seen by the requester (FI-13); a lesson allowance that ends by itself (FI-12); a device
 * quarantined and released by a named person (IN-06). Screenshots: test-results/screenshots/exceptions-*.png.
 */
describe('filter exceptions in Chromium', () => {
  const folder = listFolder();
  const e2e = browserSuite({ prefix: 'exceptions-', allow: /status of (400|401|403)/, env: { GATEHOUSE_LIST_FOLDER: folder } });
  let dsl: HttpSessionWithSecret;
  let teacher: HttpSessionWithSecret;

  beforeAll(async () => {
    const url = e2e.server.url;
    const admin = await setupAndSignIn(e2e.server);
    await reauthOverHttp(url, admin);
    // Each list is a change request a senior leader approves (FI-06).
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'UT1', format: 'ut1', location: path.join(folder, 'ut1'), kind: 'category', scheduleHours: 24 })).state).toBe('applied');
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'IWF list', format: 'domains', location: path.join(folder, 'iwf.txt'), kind: 'illegal', scheduleHours: 1 })).state).toBe('applied');
    dsl = (await createPersonOverHttp(url, admin, { username: 'dsafe', displayName: 'Dana Safeguard', role: 'dsl' })).session;
    const t = await createPersonOverHttp(url, admin, { username: 'tteach', displayName: 'Tom Teacher', role: 'staff' });
    teacher = t.session;
    const group = (await (await call(url, 'POST', '/api/groups', admin, { name: '7B', kind: 'class' })).json()) as { id: string };
    expect((await call(url, 'PUT', `/api/groups/${group.id}/members/${t.id}`, admin, { role: 'teacher' })).status).toBeLessThan(300);
  }, 120_000);

  it('FI-13 FI-08 a request from the block page is allowed by the DSL, and the requester sees the outcome on their link', async () => {
    const pupil = await e2e.page({ width: 1024, height: 760 });
    await pupil.goto(`${e2e.server.url}/blocked?host=adult-site.example`);
    await pupil.getByTestId('blocked-page').waitFor();
    await pupil.getByRole('button', { name: /Send/ }).click();
    await pupil.getByText('Say in a few words why').first().waitFor();
    await pupil.getByLabel(/why/i).first().fill('For my PSHE project on online safety');
    await pupil.getByRole('button', { name: /Send/ }).click();
    await pupil.getByRole('link', { name: 'See what happens to your request' }).click();
    await pupil.getByTestId('request-status').getByText('Not decided yet').waitFor();
    await e2e.shot(pupil, '01-request-open');

    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'dsafe', { totpSecret: dsl.totpSecret });
    await page.getByRole('link', { name: 'Unblock decisions' }).click();
    const card = page.getByTestId('request-card').first();
    await card.waitFor();
    await card.getByRole('button', { name: 'Refuse' }).click();
    await card.getByText('Give the reason for refusing').first().waitFor();
    await e2e.shot(page, '02-decide-validation');
    await card.getByLabel('For (minutes)').fill('30');
    await card.getByLabel(/Note or reason/).fill('Fine for the project');
    await card.getByRole('button', { name: 'Allow' }).click();
    await page.getByTestId('no-requests').waitFor();
    await page.getByRole('table', { name: 'Decisions' }).getByText('Allowed — Fine for the project').waitFor();
    await e2e.shot(page, '03-decided');

    await pupil.reload();
    await pupil.getByText(/Allowed until/).waitFor();
    await e2e.shot(pupil, '04-request-allowed');
    e2e.expectNoProblems();
  }, 120_000);

  it('FI-12 a teacher opens a category for their class for a lesson, and it ends by itself', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'tteach', { totpSecret: teacher.totpSecret });
    await page.getByRole('link', { name: 'Open for my class' }).click();
    const form = page.getByRole('form', { name: 'Open for my class' });
    await form.getByLabel('Minutes').fill('999');
    await form.getByRole('button', { name: 'Open for the lesson' }).click();
    await form.getByText('Between 1 and 60 minutes.').first().waitFor();
    await e2e.shot(page, '05-lesson-validation');
    await form.getByLabel('Open').selectOption('category');
    await form.getByLabel('Category').fill('games');
    await form.getByLabel('Minutes').fill('1');
    await form.getByLabel('What the lesson needs it for').fill('Game design lesson');
    await form.getByRole('button', { name: 'Open for the lesson' }).click();
    await form.getByText(/games is open for 7B until/).waitFor();
    await e2e.shot(page, '06-lesson-open');
    await new Promise((r) => setTimeout(r, 62_000));
    await page.reload();
    await page.getByTestId('no-open').waitFor();
    await e2e.shot(page, '07-lesson-ended');
    e2e.expectNoProblems();
  }, 150_000);

  it('IN-06 the DSL quarantines a device and a named person releases it', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'dsafe', { totpSecret: dsl.totpSecret });
    await page.getByRole('link', { name: 'Exceptions' }).click();
    await page.getByTestId('no-quarantine').waitFor();
    const form = page.getByRole('form', { name: 'Quarantine a device' });
    await form.getByLabel('IP address or MAC address').fill('not an address!');
    await form.getByRole('button', { name: 'Quarantine' }).click();
    await form.getByText('That is not an IP address or a MAC address.').first().waitFor();
    await form.getByLabel('IP address or MAC address').fill('10.9.9.9');
    await form.getByLabel('Reason').fill('Malware beaconing (incident 12)');
    await form.getByRole('button', { name: 'Quarantine' }).click();
    const table = page.getByRole('table', { name: 'Quarantined devices' });
    await table.getByText('10.9.9.9').waitFor();
    await e2e.shot(page, '08-quarantined');
    await table.getByRole('button', { name: 'Release' }).click();
    await page.getByTestId('no-quarantine').waitFor();
    await e2e.shot(page, '09-released');
    e2e.expectNoProblems();
  }, 120_000);
});
