import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, changeOverHttp, createPersonOverHttp, setupAndSignIn, signInOverHttp, TEST_PASSWORD, type HttpSessionWithSecret } from '../helpers/server-process.js';

/**
 * Change control in Chromium (FI-06, MO-06): the IT administrator asks for a site to be blocked; the
 * change waits; the administrator is refused when approving it themselves (the console says so, and
 * the server refuses the same request from a second session); a senior leader refuses without a
 * reason (a clear error), then approves it and it is in force; a governor reads the log and exports
 * it. Then an emergency: the administrator adds a block list from the Lists page with the emergency
 * tick box (in force at once, awaiting approval) and a senior leader rolls it back (the list is gone).
 * Screenshots: test-results/screenshots/changes-*.png.
 */
describe('change control in Chromium', () => {
  const e2e = browserSuite({
    prefix: 'changes-',
    allow: /status of (400|401|403)/,
    env: (test) => {
      // Administrators approve too here, so the refusal the walk shows is the requester's own, not the role's.
      const profile = path.join(test.dataDir, 'school-profile.yaml');
      writeFileSync(profile, 'name: Springfield change-control test\nextends: ncsc\ngovernance:\n  changeApprovers: [senior_leader, administrator]\n');
      return { GATEHOUSE_PROFILE: profile };
    },
  });
  let admin: HttpSessionWithSecret;
  let head: HttpSessionWithSecret;
  let governor: HttpSessionWithSecret;
  let listId: string;

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    // The list itself is a change request (list.source_add), approved by a senior leader.
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'School block list', format: 'domains', location: null, kind: 'block' })).state).toBe('applied');
    const lists = (await (await call(url, 'GET', '/api/filtering/lists', admin)).json()) as { sources: Array<{ id: string; name: string }> };
    listId = lists.sources.find((l) => l.name === 'School block list')!.id;
    head = (await createPersonOverHttp(url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader' })).session;
    governor = (await createPersonOverHttp(url, admin, { username: 'ggov', displayName: 'Gary Governor', role: 'governor' })).session;
  }, 120_000);

  it('FI-06 a change request is refused for the requester and approved by a second person', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('link', { name: 'Changes' }).click();
    await page.getByRole('heading', { name: 'Filtering changes' }).waitFor();
    await page.getByText('Nothing is waiting for approval.').waitFor();
    const form = page.getByRole('form', { name: 'Ask for a change' });
    // Nothing typed: clear errors, nothing asked.
    await form.getByRole('button', { name: 'Ask for approval' }).click();
    await form.getByText('Give at least one site.').waitFor();
    await form.getByText('Say why this change is needed.').waitFor();
    await e2e.shot(page, '01-form-errors');
    await form.getByLabel('Sites').fill('games.example');
    await form.getByLabel('Reason').fill('Distracting in lessons (Year 6 teachers)');
    await form.getByRole('button', { name: 'Ask for approval' }).click();
    await page.getByRole('status').getByText('Asked: it takes effect when a second person approves it.').waitFor();
    const card = page.getByTestId('pending-change');
    await card.getByText('You asked for this change').waitFor();
    expect(await card.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await e2e.shot(page, '02-requested');
    const id = (await card.getAttribute('data-id'))!;

    // The server refuses the requester too, from another session of theirs.
    const second = await signInOverHttp(e2e.server.url, 'master', TEST_PASSWORD, admin.totpSecret);
    const own = await call(e2e.server.url, 'POST', `/api/governance/changes/${id}/approve`, second, {});
    expect(own.status).toBe(403);
    expect(((await own.json()) as { error: { message: string } }).error.message).toMatch(/You asked for this change/);
    // Nothing is in force yet.
    const entries = (await (await call(e2e.server.url, 'GET', `/api/filtering/lists/${listId}/entries`, admin)).json()) as { entries: unknown[] };
    expect(entries.entries).toEqual([]);
    e2e.expectNoProblems();
    await page.close();

    const leader = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(leader, 'hhead', { totpSecret: head.totpSecret });
    await leader.getByRole('link', { name: 'Changes' }).click();
    const pending = leader.getByTestId('pending-change');
    await pending.getByText('Add games.example to the block list “School block list”').waitFor();
    await pending.getByRole('button', { name: 'Refuse' }).click();
    await pending.getByText('Say why (at least a few words): it is recorded.').waitFor();
    await e2e.shot(leader, '03-approver');
    await pending.getByLabel('Reason (needed to refuse or roll back; kept with an approval)').fill('Agreed at the safeguarding meeting');
    await pending.getByRole('button', { name: 'Approve' }).click();
    await leader.getByRole('status').getByText('Approved and applied.').waitFor();
    await leader.getByText('Nothing is waiting for approval.').waitFor();
    const row = leader.getByTestId('change-log').locator(`tr[data-id="${id}"]`);
    expect(await row.locator('td').nth(3).innerText()).toBe('Approved and applied');
    expect(await row.locator('td').nth(4).innerText()).toContain('hhead');
    // The approver's note is kept with the decision and shown in the log.
    expect(await row.locator('td').nth(4).innerText()).toContain('Agreed at the safeguarding meeting');
    await e2e.shot(leader, '04-approved');
    const after = (await (await call(e2e.server.url, 'GET', `/api/filtering/lists/${listId}/entries`, admin)).json()) as { entries: Array<{ host: string }> };
    expect(after.entries.map((e) => e.host)).toEqual(['games.example']);
    e2e.expectNoProblems();
    await leader.close();
  });

  it('MO-06 a governor reads the change-control log and exports it as CSV', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'ggov', { totpSecret: governor.totpSecret });
    await page.getByRole('link', { name: 'Changes' }).click();
    await page.getByTestId('change-log').getByText('Distracting in lessons', { exact: false }).waitFor();
    // A governor reads; asking for and approving changes is not theirs.
    expect(await page.getByRole('form', { name: 'Ask for a change' }).count()).toBe(0);
    await e2e.shot(page, '05-governor-log');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const file = await download.path();
    const csv = readFileSync(file!, 'utf8');
    expect(csv).toContain('games.example');
    expect(csv).toContain('Approved and applied');
    e2e.expectNoProblems();
    await page.close();
  });

  it('FI-06 an emergency block list added from the Lists page is in force at once, awaits approval, and a senior leader rolls it back', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'master', { totpSecret: admin.totpSecret });
    await page.getByRole('link', { name: 'Lists' }).click();
    const form = page.getByRole('form', { name: 'Add a list' });
    await form.getByLabel('Name').fill('Urgent blocks');
    await form.getByLabel('Kind').selectOption('block');
    await form.getByLabel('Emergency: block now (in force at once, awaiting approval)').check();
    await e2e.shot(page, '06-emergency-form');
    await form.getByRole('button', { name: 'Add the list' }).click();
    await page.getByTestId('change-requested').getByText('Emergency change in force now, awaiting approval: Add the block list “Urgent blocks” (edited here)').waitFor();
    await page.locator('tr[data-source="Urgent blocks"]').waitFor();
    await e2e.shot(page, '07-emergency-in-force');
    e2e.expectNoProblems();
    await page.close();

    const leader = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(leader, 'hhead', { totpSecret: head.totpSecret });
    await leader.getByRole('link', { name: 'Changes' }).click();
    const card = leader.getByTestId('pending-change').filter({ hasText: 'Urgent blocks' });
    await card.getByText('Emergency: in effect, awaiting approval').waitFor();
    await card.getByLabel('Reason (needed to refuse or roll back; kept with an approval)').fill('Blocks the whole of the school’s own list by mistake');
    await e2e.shot(leader, '08-emergency-awaiting');
    await card.getByRole('button', { name: 'Roll back' }).click();
    await leader.getByRole('status').getByText('Rolled back: what it changed is as it was before.').waitFor();
    await e2e.shot(leader, '09-rolled-back');
    const after = (await (await call(e2e.server.url, 'GET', '/api/filtering/lists', admin)).json()) as { sources: Array<{ name: string }> };
    expect(after.sources.map((s) => s.name)).not.toContain('Urgent blocks');
    e2e.expectNoProblems();
    await leader.close();
  });
});
