import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ROOT } from '../helpers/cli.js';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

const run = promisify(execFile);
const OUT = path.join(ROOT, 'test-results', 'screenshots');

/** Saves a download from the page, reads its text back and renders its first page to PNG (to look at). */
async function downloadPdf(page: Page, link: string, name: string): Promise<string> {
  mkdirSync(OUT, { recursive: true });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: link }).click()]);
  const file = path.join(OUT, `${name}.pdf`);
  await download.saveAs(file);
  await run('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', file, path.join(OUT, `${name}-page`)]);
  return (await run('pdftotext', ['-layout', file, '-'])).stdout;
}

/**
 * The written policy and the governors' report in Chromium (GV-08): a senior leader reads the
 * technical-security policy Gatehouse writes from its configuration, sees the DSL not named; once the
 * DSL is recorded the page shows the new version and what changed; both PDFs are downloaded, read
 * back and rendered to PNG. Screenshots: test-results/screenshots/policy-doc-*.png.
 */
describe('the written policy and the governors’ report in Chromium', () => {
  const e2e = browserSuite({ prefix: 'policy-doc-', allow: /status of (400|401)/ });
  let admin: HttpSessionWithSecret;
  let head: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
    head = (await createPersonOverHttp(e2e.server.url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader' })).session;
  });

  it('GV-08 the policy document is written from the configuration, a change shows as a new version with its difference, and both PDFs open', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead', { totpSecret: head.totpSecret });
    await page.getByRole('link', { name: 'Security policy' }).click();
    await page.getByRole('heading', { name: 'Technical-security policy', exact: true }).waitFor();
    const roles = page.locator('[data-section="2. Roles and responsibilities"]');
    await roles.getByRole('row', { name: /Designated safeguarding lead \(DSL\) NOT NAMED/ }).waitFor();
    await page.getByText(/^Version 1 of/).waitFor();
    await e2e.shot(page, '01-policy');

    // The configuration changes: the DSL is named on the school record.
    expect((await call(e2e.server.url, 'PUT', '/api/school/contacts/dsl', admin, { name: 'Jane Doe', email: 'jane@springfield.sch.uk' })).status).toBe(200);
    await page.reload();
    await page.getByText(/^Version 2 of/).waitFor();
    const changes = page.getByTestId('policy-changes');
    await changes.getByRole('heading', { name: 'What changed from version 1 to version 2' }).waitFor();
    expect(await changes.locator('.diff-del').allInnerTexts()).toEqual(['- | Designated safeguarding lead (DSL) | NOT NAMED |\n']);
    expect(await changes.locator('.diff-add').allInnerTexts()).toEqual(['+ | Designated safeguarding lead (DSL) | Jane Doe |\n']);
    await roles.getByRole('row', { name: /Designated safeguarding lead \(DSL\) Jane Doe/ }).waitFor();
    await e2e.shot(page, '02-changed');

    const policy = await downloadPdf(page, 'Download PDF', 'policy-doc-03-policy');
    expect(policy).toContain('Springfield Primary: technical-security policy');
    expect(policy).toContain('version 2');
    expect(policy).toMatch(/Designated safeguarding lead \(DSL\)\s+Jane Doe/);

    await page.getByRole('link', { name: 'Compliance' }).click();
    const governors = await downloadPdf(page, 'Governors’ report (PDF)', 'policy-doc-04-governors');
    expect(governors).toContain('Governors’ report');
    expect(governors).toContain('Where the school stands');
    expect(governors).toContain('What needs a decision or action');
    expect(governors).toMatch(/Technical-security policy document changed:\s*2/);
    e2e.expectNoProblems();
    await page.close();
  });
});
