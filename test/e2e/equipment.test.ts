import { beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';

const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
const dayFromNow = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

/**
 * The equipment registers in Chromium (issue 12): the school office registers a laptop (after the
 * form says what is missing), lends it off site to a teacher, who then leaves: recording the return
 * ticks her checklist; the certificates are attached (a renamed non-PDF is refused) and a senior
 * leader authorises the disposal; a title's licences are over-used according to an inventory CSV, and
 * a licensing spreadsheet imported as CSV (after a file with a duplicate row is refused whole) flags
 * a second over-used title.
 * Screenshots: test-results/screenshots/equipment-*.png.
 */
describe('the equipment registers in Chromium', () => {
  const e2e = browserSuite({ prefix: 'equipment-', allow: /status of (400|401|409)/ });
  let admin: HttpSessionWithSecret;
  let office: HttpSessionWithSecret;
  let head: HttpSessionWithSecret;
  let teacherId: string;

  beforeAll(async () => {
    const url = e2e.server.url;
    admin = await setupAndSignIn(e2e.server);
    office = (await createPersonOverHttp(url, admin, { username: 'ooffice', displayName: 'Olive Office', role: 'office' })).session;
    head = (await createPersonOverHttp(url, admin, { username: 'hhead', displayName: 'Helen Head', role: 'senior_leader' })).session;
    teacherId = (await createPersonOverHttp(url, admin, { username: 'jbloggs', displayName: 'Jane Bloggs', role: 'staff' })).id;
  }, 120_000);

  it('AS-01 AS-02 AC-13 AS-03 AS-04 an item registered, lent off site, returned by a leaver, and disposed of with its certificates', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'ooffice', { totpSecret: office.totpSecret });
    await page.getByRole('link', { name: 'Equipment', exact: true }).click();
    await page.getByRole('heading', { name: 'Equipment', exact: true }).waitFor();
    await page.getByTestId('empty').waitFor();
    await e2e.shot(page, '01-empty');

    await page.getByRole('button', { name: 'Register an item' }).click();
    const form = page.getByTestId('item-form');
    await form.getByRole('button', { name: 'Register', exact: true }).click();
    await form.locator('.field-invalid').first().waitFor();
    expect(await form.locator('.field-invalid').count()).toBeGreaterThanOrEqual(4);
    await e2e.shot(page, '02-form-errors');
    await form.getByLabel('Asset tag').fill('GH-0042');
    await form.getByLabel('Serial number').fill('5CG1234XYZ');
    await form.getByLabel('Type').fill('laptop');
    await form.getByLabel('Make and model').fill('Dell Latitude 3440');
    await form.getByLabel('Location').fill('Year 4 classroom');
    await form.getByLabel('MAC address').fill('3c:22:fb:01:02:03');
    await form.getByLabel('May hold personal data').check();
    await form.getByRole('button', { name: 'Register', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'GH-0042 has been registered.' }).waitFor();
    await page.locator('tr[data-tag="GH-0042"]').waitFor();
    await e2e.shot(page, '03-registered');

    // Lent off site to a teacher.
    await page.getByRole('link', { name: 'GH-0042' }).click();
    await page.getByRole('button', { name: 'Lend off site' }).click();
    const loan = page.getByTestId('loan-form');
    await loan.getByLabel('To (username)').fill('jbloggs');
    await loan.getByLabel('Why it goes off site').fill('Marking at home over half term');
    await loan.getByLabel('Due back').fill(dayFromNow(10));
    await loan.getByRole('button', { name: 'Lend' }).click();
    await page.getByRole('status').filter({ hasText: 'is lent until' }).waitFor();
    expect(await page.getByTestId('loans').innerText()).toContain('Jane Bloggs');
    await e2e.shot(page, '04-on-loan');

    // She leaves: her checklist waits for the laptop; recording its return ticks it.
    await reauthOverHttp(e2e.server.url, admin);
    const started = await call(e2e.server.url, 'POST', `/api/accounts/${teacherId}/leaver`, admin, {});
    expect(started.status).toBe(201);
    const waiting = ((await started.json()) as { items: Array<{ ref?: string; done: boolean }> }).items.find((i) => i.ref?.startsWith('equipment_loan:'));
    expect(waiting).toMatchObject({ done: false });
    await page.getByRole('button', { name: 'Record its return' }).click();
    await page.getByRole('status').filter({ hasText: 'GH-0042 is back.' }).waitFor();
    const checklist = (await (await call(e2e.server.url, 'GET', `/api/leavers/${teacherId}`, admin)).json()) as { items: Array<{ ref?: string; done: boolean; doneBy: string | null }> };
    expect(checklist.items.find((i) => i.ref === waiting!.ref)).toMatchObject({ done: true, doneBy: 'ooffice' });

    // Certificates: a renamed non-PDF is refused by its content; the real ones are attached.
    await page.getByRole('button', { name: 'Attach a certificate' }).click();
    let cert = page.getByTestId('certificate-form');
    await cert.getByLabel('File').setInputFiles({ name: 'weee.pdf', mimeType: 'application/pdf', buffer: Buffer.from('<html>not a certificate</html>') });
    await cert.getByRole('button', { name: 'Attach' }).click();
    await cert.getByRole('alert').filter({ hasText: 'PDF, PNG or JPEG' }).waitFor();
    await e2e.shot(page, '05-renamed-file-refused');
    await cert.getByLabel('File').setInputFiles({ name: 'weee-transfer-note.pdf', mimeType: 'application/pdf', buffer: PDF });
    await cert.getByRole('button', { name: 'Attach' }).click();
    await page.getByRole('status').filter({ hasText: 'WEEE transfer note attached.' }).waitFor();
    await page.getByRole('button', { name: 'Attach a certificate' }).click();
    cert = page.getByTestId('certificate-form');
    await cert.getByLabel('Certificate').selectOption('data_destruction');
    await cert.getByLabel('File').setInputFiles({ name: 'destruction-certificate.pdf', mimeType: 'application/pdf', buffer: PDF });
    await cert.getByRole('button', { name: 'Attach' }).click();
    await page.getByRole('status').filter({ hasText: 'Data-destruction certificate attached.' }).waitFor();
    // The office cannot dispose of it.
    expect(await page.getByRole('button', { name: 'Dispose of it' }).count()).toBe(0);
    await page.close();

    // A senior leader authorises the disposal.
    const leader = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(leader, 'hhead', { totpSecret: head.totpSecret });
    await leader.getByRole('link', { name: 'Equipment', exact: true }).click();
    await leader.getByRole('link', { name: 'GH-0042' }).click();
    await leader.getByRole('button', { name: 'Dispose of it' }).click();
    const disposal = leader.getByTestId('disposal-form');
    await disposal.getByLabel('Method').selectOption('sale');
    await disposal.getByLabel('Recipient').fill('Greenbridge Recycling Ltd');
    await disposal.getByLabel('Personal data on the media').fill('Pupil reports cached by Word');
    await disposal.getByLabel('How the data was destroyed').fill('Drive shredded by the agency');
    await disposal.getByLabel('Software licences on it checked').check();
    await disposal.getByRole('button', { name: 'Authorise and record the disposal' }).click();
    // A sale needs a PAT certificate too: refused, and the checklist in the form shows it missing.
    await disposal.getByRole('alert').filter({ hasText: 'PAT certificate' }).waitFor();
    await e2e.shot(leader, '06-disposal-refused-no-pat');
    await disposal.getByLabel('Method').selectOption('waste');
    await disposal.getByRole('button', { name: 'Authorise and record the disposal' }).click();
    await leader.getByTestId('disposal').waitFor();
    expect(await leader.getByTestId('disposal').innerText()).toContain('authorised by Helen Head');
    expect(await leader.getByTestId('certificates').innerText()).toContain('WEEE transfer note');
    await e2e.shot(leader, '07-disposed');
    e2e.expectNoProblems();
  }, 180_000);

  it('AS-06 AS-07 licences over-used are flagged from an inventory CSV and from a licences CSV imported all or nothing', async () => {
    const url = e2e.server.url;
    const added = await call(url, 'POST', '/api/software', office, { name: 'Microsoft Office', publisher: 'Microsoft', purpose: 'Office suite for staff' });
    const title = (await added.json()) as { id: string };
    expect((await call(url, 'POST', `/api/software/${title.id}/licences`, office, { seats: 1, boughtOn: dayFromNow(-100), expiresOn: dayFromNow(265), reference: 'EES-2026' })).status).toBe(201);
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'hhead', { totpSecret: head.totpSecret });
    await page.getByRole('link', { name: 'Software & licences' }).click();
    await page.locator('tr[data-title="Microsoft Office"]').getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('status').filter({ hasText: 'Microsoft Office: approved.' }).waitFor();
    await page.close();

    const officePage = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(officePage, 'ooffice', { totpSecret: office.totpSecret });
    await officePage.getByRole('link', { name: 'Software & licences' }).click();
    await officePage.getByRole('button', { name: 'Import inventory CSV' }).click();
    const csv = [
      'Device name,Serial number,OS,Last check-in,Antivirus,Antivirus updated,Last patched,Critical updates pending since,Apps',
      `STAFF-PC-01,5CG1,Windows 11,${dayFromNow(-1)},Defender,${dayFromNow(-1)},${dayFromNow(-3)},,Microsoft Office; Zoom`,
      `STAFF-PC-02,5CG2,Windows 11,${dayFromNow(-2)},Defender,${dayFromNow(-20)},${dayFromNow(-40)},${dayFromNow(-20)},Microsoft Office;Zoom`,
    ].join('\n');
    await officePage.getByTestId('import-inventory').getByLabel('CSV file').setInputFiles({ name: 'intune-export.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await officePage.getByTestId('import-inventory').getByRole('button', { name: 'Import' }).click();
    await officePage.getByRole('status').filter({ hasText: 'Imported' }).waitFor();
    const row = officePage.locator('tr[data-title="Microsoft Office"]');
    await row.getByTestId('over-used').waitFor();
    expect(await row.innerText()).toContain('awaiting decisions');
    expect(await officePage.getByTestId('unlicensed').innerText()).toContain('Zoom');
    await e2e.shot(officePage, '08-software-over-used');

    // The office brings Zoom into the register from the licensing spreadsheet: a first file names it twice and imports nothing.
    await officePage.getByRole('button', { name: 'Import titles and licences CSV' }).click();
    const titles = officePage.getByTestId('import-software');
    const header = 'Title,Publisher,Purpose,Seats,Bought on,Expires on,Reference';
    await titles.getByLabel('CSV file').setInputFiles({ name: 'licences.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}\nZoom,Zoom Video,Parents' evenings online,1,${dayFromNow(-30)},${dayFromNow(335)},ZM-1\nzoom,Zoom Video,Again,1,${dayFromNow(-30)},,ZM-2\n`) });
    await titles.getByRole('button', { name: 'Import' }).click();
    await titles.getByTestId('import-errors').waitFor();
    expect(await titles.getByTestId('import-errors').innerText()).toContain('Line 3, title: the same as line 2');
    expect(await officePage.locator('tr[data-title="Zoom"]').count()).toBe(0);
    await e2e.shot(officePage, '09-software-import-errors');
    // A spreadsheet saved in a Windows encoding is refused before it is sent.
    await titles.getByLabel('CSV file').setInputFiles({ name: 'licences-1252.csv', mimeType: 'text/csv', buffer: Buffer.concat([Buffer.from(`${header}\nZoom,Zoom Video,Parents' evenings caf`), Buffer.from([0xe9]), Buffer.from(`,1,${dayFromNow(-30)},,ZM-1\n`)]) });
    await titles.getByRole('button', { name: 'Import' }).click();
    await titles.getByRole('alert').filter({ hasText: 'not UTF-8' }).waitFor();
    await titles.getByLabel('CSV file').setInputFiles({ name: 'licences.csv', mimeType: 'text/csv', buffer: Buffer.from(`${header}\nZoom,Zoom Video,Parents' evenings online,1,${dayFromNow(-30)},${dayFromNow(335)},ZM-1\n`) });
    await titles.getByRole('button', { name: 'Import' }).click();
    await officePage.getByRole('status').filter({ hasText: 'Imported: 1 title, 1 licence.' }).waitFor();
    // Two devices have Zoom and one seat is licensed: over-used, and waiting for the headteacher and the DPO like any new title.
    const zoom = officePage.locator('tr[data-title="Zoom"]');
    await zoom.getByTestId('over-used').waitFor();
    expect(await zoom.innerText()).toContain('awaiting decisions');
    expect(await officePage.getByTestId('unlicensed').count()).toBe(0);
    await e2e.shot(officePage, '10-software-imported-over-used');

    await officePage.getByRole('link', { name: 'Device health' }).click();
    await officePage.locator('tr[data-device="STAFF-PC-02"]').waitFor();
    expect(await officePage.locator('tr[data-device="STAFF-PC-02"]').innerText()).toContain('overdue');
    await e2e.shot(officePage, '11-device-health');
    e2e.expectNoProblems();
  }, 120_000);
});
