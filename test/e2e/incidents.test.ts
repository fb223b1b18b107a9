import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const sink = await startSmtpSink();

/**
 * Incidents and breaches in Chromium (IN-01, IN-04, IN-06, MO-03): a pupil reports a concern from
 * the sign-in page without signing in; it reaches the DSL by e-mail and in the console, and the DSL
 * takes it up as an incident and records the quarantine step; the DPO sees a personal-data breach's
 * 72-hour clock on the overview and the incident, and records the ICO decision.
 * Screenshots: test-results/screenshots/incidents-*.png.
 */
describe('incidents and breaches in Chromium', () => {
  const e2e = browserSuite({ prefix: 'incidents-', allow: /status of (400|401|404)/, env: { GATEHOUSE_SMTP_URL: sink.url } });
  let admin: HttpSessionWithSecret;
  let dsl: HttpSessionWithSecret;
  let dpo: HttpSessionWithSecret;

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    dsl = (await createPersonOverHttp(url, admin, { username: 'dsafe', displayName: 'Dana Safeguard', role: 'dsl', email: 'dana@school.example' })).session;
    dpo = (await createPersonOverHttp(url, admin, { username: 'ddata', displayName: 'Dev Data', role: 'dpo', email: 'dev@school.example' })).session;
  }, 120_000);
  afterAll(async () => {
    await sink.close();
  });

  it('IN-01 a pupil reports a concern from the sign-in page, and it reaches the DSL, who takes it up and quarantines the device through the filter (IN-06)', async () => {
    const page = await e2e.page({ width: 1280, height: 860 });
    await page.goto(e2e.server.url);
    await page.getByRole('link', { name: 'Report a concern' }).click();
    await page.getByRole('heading', { name: 'Report a concern' }).waitFor();
    // nothing typed: told what is missing, nothing sent
    await page.getByRole('button', { name: 'Send the concern' }).click();
    await page.getByText('say what happened').first().waitFor();
    await e2e.shot(page, '01-concern-empty');
    await page.getByLabel('What happened?').fill('An older pupil keeps messaging me on the class chat asking for photos. <script>alert(1)</script>');
    await page.getByRole('button', { name: 'Send the concern' }).click();
    const sent = page.getByTestId('concern-sent');
    await sent.waitFor();
    const reference = (await sent.locator('strong.mono').innerText()).trim();
    expect(reference).toMatch(/^C-[0-9A-Z]{8}$/);
    expect(await sent.innerText()).not.toContain('photos');
    await e2e.shot(page, '02-concern-sent');
    await page.close();

    // the DSL is told by e-mail (without the details) ...
    for (let i = 0; i < 200 && !sink.messages.some((m) => m.raw.includes(reference)); i++) await new Promise((r) => setTimeout(r, 25));
    const mail = sink.messages.find((m) => m.raw.includes(reference))!;
    expect(mail.to).toContain('dana@school.example');
    expect(mail.raw).not.toContain('photos');

    // ... and finds it in the console
    const dslPage = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(dslPage, 'dsafe', { totpSecret: dsl.totpSecret });
    await dslPage.getByRole('link', { name: 'Incidents' }).click();
    await dslPage.getByTestId('incidents-empty').waitFor();
    await dslPage.getByRole('tab', { name: /Concerns \(1 new\)/ }).click();
    const row = dslPage.getByTestId('concerns').locator('tbody tr', { hasText: reference });
    expect(await row.innerText()).toContain('asking for photos. <script>alert(1)</script>'); // shown as text
    await e2e.shot(dslPage, '03-concerns');
    await row.getByRole('link', { name: 'Take up' }).click();
    await dslPage.getByRole('heading', { name: 'Record an incident' }).waitFor();
    expect(await dslPage.getByLabel('Category').inputValue()).toBe('safeguarding');
    await dslPage.getByLabel('Title').fill('Pupil asked for photos on the class chat');
    await dslPage.getByLabel('What happened').fill('Reported by a pupil from the sign-in page.');
    await dslPage.getByLabel('Devices involved').fill('Year 6 laptop 14');
    await dslPage.getByRole('button', { name: 'Record the incident' }).click();
    await dslPage.getByTestId('incident').waitFor();
    await dslPage.getByText(`Recorded from concern ${reference}.`).waitFor();
    const slot = dslPage.locator('[data-slot="quarantine"]');
    // A name is not enough for the filter: it asks for the address or MAC, and keeps what was typed.
    await slot.getByLabel('Device IP or MAC address').fill('Year 6 laptop 14');
    await slot.getByRole('button', { name: 'Quarantine device' }).click();
    await slot.getByText('that is not an IP address or a MAC address').waitFor();
    await slot.getByLabel('Device IP or MAC address').fill('10.0.6.14');
    await slot.getByRole('button', { name: 'Quarantine device' }).click();
    await dslPage.getByTestId('timeline').getByText('Device 10.0.6.14 put in quarantine').waitFor();
    // IN-06: the quarantine is the filter's, in force and named after the incident.
    const quarantined = await dslPage.evaluate(async () => (await fetch('/api/filtering/exceptions?kind=quarantine&current=true')).json());
    expect(JSON.stringify(quarantined)).toContain('10.0.6.14');
    await dslPage.getByLabel('What was done or found').fill('Parents of both pupils contacted');
    await dslPage.getByRole('button', { name: 'Add', exact: true }).click();
    await dslPage.getByTestId('timeline').getByText('Parents of both pupils contacted').waitFor();
    await e2e.shot(dslPage, '04-incident');
    e2e.expectNoProblems();
    await dslPage.close();
  });

  it('IN-04 a personal-data breach shows its 72-hour clock on the overview and the incident; the DPO records the ICO decision', async () => {
    const awareAt = new Date(Date.now() - 30 * 3_600_000).toISOString();
    const created = await call(e2e.server.url, 'POST', '/api/incidents', admin, { category: 'data_breach', title: 'Class list e-mailed to the wrong parent', summary: 'Names and dates of birth of 28 pupils in 4C.', people: '28 pupils in 4C', awareAt });
    expect(created.status).toBe(201);
    const { reference } = (await created.json()) as { reference: string };
    const page = await e2e.page({ width: 1280, height: 900 });
    await e2e.signIn(page, 'ddata', { totpSecret: dpo.totpSecret });
    await page.getByText(`Breach ${reference}: 41 hours left to decide on reporting to the ICO`).waitFor();
    await e2e.shot(page, '05-overview');
    await page.getByRole('link', { name: 'Incidents' }).click();
    const row = page.getByTestId('incidents').locator('tbody tr', { hasText: reference });
    expect(await row.getByTestId('breach-clock').innerText()).toBe('41 h left to decide on reporting to the ICO');
    await row.getByRole('link', { name: reference }).click();
    await page.getByTestId('breach').waitFor();
    await e2e.shot(page, '06-breach');
    // a reported breach needs the ICO's reference
    await page.getByLabel('ICO decision').selectOption('reportable');
    await page.getByLabel('Why').fill('Dates of birth of children: a risk to their rights and freedoms.');
    await page.getByRole('button', { name: 'Record the decision' }).click();
    await page.getByText('give the ICO’s reference').waitFor();
    await page.getByLabel('ICO reference').fill('IC-123456-A1B2');
    await page.getByRole('button', { name: 'Record the decision' }).click();
    await page.getByTestId('breach-clock').getByText('ICO decision recorded: reported').waitFor();
    await page.getByTestId('timeline').getByText(/Reported to the ICO \(reference IC-123456-A1B2\)/).waitFor();
    await e2e.shot(page, '07-decided');
    e2e.expectNoProblems();
    await page.close();
  });
});
