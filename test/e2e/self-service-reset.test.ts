import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { createPersonOverHttp, freshCode, setupAndSignIn, signInOverHttp, type HttpSessionWithSecret } from '../helpers/server-process.js';

/** A port nobody listens on now, so the server's public URL (in the e-mailed link) is known before it starts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const NEW_PASSWORD = 'Quiet-Meadow-Compass-19';
const sink = await startSmtpSink();
const port = await freePort();

/** AC-10/AC-11 in Chromium: a member of staff resets a forgotten password with their authenticator app and the link e-mailed to them. */
describe('self-service password reset in Chromium', () => {
  const e2e = browserSuite({
    prefix: 'self-reset-',
    allow: /status of (400|401|410)/,
    env: (test) => {
      // Staff always use MFA here, so the member of staff has an authenticator app to reset with.
      const profile = path.join(test.dataDir, 'profile.yaml');
      writeFileSync(profile, 'name: Staff always use MFA\nextends: ncsc\ngroups:\n  staff:\n    mfa: { always: true }\n');
      return { GATEHOUSE_PROFILE: profile, GATEHOUSE_SMTP_URL: sink.url, GATEHOUSE_PORT: String(port), GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${port}` };
    },
  });
  let admin: HttpSessionWithSecret;

  beforeAll(async () => {
    admin = await setupAndSignIn(e2e.server);
  });
  afterAll(async () => {
    await sink.close();
  });

  it('AC-11 a member of staff gives a code from their authenticator app, opens the link e-mailed to them in the same browser, and chooses a new password', async () => {
    const { session } = await createPersonOverHttp(e2e.server.url, admin, { username: 'mbrown', displayName: 'Mary Brown', role: 'staff', email: 'mbrown@school.example' });
    expect(session.totpSecret).toBeTruthy();

    const page = await e2e.page({ width: 1280, height: 900 });
    await page.goto(e2e.server.url);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Username').fill('mbrown');
    await page.getByLabel('Code', { exact: true }).fill(await freshCode(session.totpSecret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
    await page.getByText('m•••@school.example').waitFor();
    await e2e.shot(page, '01-check-your-email');

    // The link arrives by real SMTP and is opened in the same browser.
    await sink.waitFor(1);
    expect(sink.messages[0]!.to).toEqual(['mbrown@school.example']);
    const link = /(http:\/\/127\.0\.0\.1:\d+\/reset#code=3D[a-z0-9]+|http:\/\/127\.0\.0\.1:\d+\/reset#code=[a-z0-9]+)/.exec(sink.messages[0]!.raw)![1]!.replace('#code=3D', '#code=');
    const tab = page;
    await tab.goto(link);
    await tab.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await e2e.shot(tab, '02-choose');
    await tab.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await tab.getByLabel('New password again').fill(NEW_PASSWORD);
    await tab.getByRole('button', { name: 'Save my new password' }).click();
    await tab.getByRole('heading', { name: 'Password changed' }).waitFor();
    await e2e.shot(tab, '03-changed');

    // The same link again, later, in a fresh page load: used, refused, with what to do.
    const again = page;
    await again.goto(e2e.server.url);
    await again.goto(link);
    await again.getByRole('alert').waitFor();
    await again.getByText('only in the browser where you entered the code').waitFor();
    await e2e.shot(again, '04-link-used');

    const signedIn = await signInOverHttp(e2e.server.url, 'mbrown', NEW_PASSWORD, session.totpSecret);
    expect(signedIn.cookie).toContain('gatehouse-session');
    e2e.expectNoProblems();
  });
});
