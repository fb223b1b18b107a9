import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { newId } from '../../src/core/ids.js';
import { createAccount } from '../../src/identity/service.js';
import { equipmentDue } from '../../src/registers/equipment.js';
import { softwareDue } from '../../src/registers/software.js';
import { dialects } from '../helpers/databases.js';
import { ADMIN_PASSWORD, reauthenticate, setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

const PASSWORD = 'Violet-Harbour-Lantern-7';
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(32)]);

for (const dialect of await dialects()) {
  describe(`equipment registers on ${dialect}`, () => {
    let t: TestApp;
    let admin: Session;
    const sessions = new Map<string, Session>();
    const created = new Map<string, string>();
    const totps = new Map<string, string | undefined>();
    /** Moves the clock on; sessions idle that long have ended, so everyone signs in again. */
    const advanceDays = async (days: number) => {
      t.clock.advance(days * 86_400_000);
      sessions.clear();
      admin = await signIn(t, 'master', ADMIN_PASSWORD, { totpSecret: admin.totpSecret });
    };
    const api = async (session: Session | null, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
      const response = await t.app.inject({ method, url, headers: session?.headers ?? {}, payload: payload as object, remoteAddress: '127.0.0.1' });
      const json = response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined;
      return { status: response.statusCode, body: json, text: response.body, raw: response.rawPayload, headers: response.headers };
    };
    const as = async (role: Role, suffix = '1'): Promise<Session> => {
      const username = `${role.replace('_', '')}${suffix}`;
      if (!sessions.has(username)) {
        if (!created.has(username)) {
          const hash = await t.runtime.hasher.hash(PASSWORD);
          await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `A ${role} ${suffix}`, email: null, role, passwordHash: hash }));
          created.set(username, '');
        }
        sessions.set(username, await signIn(t, username, PASSWORD, { totpSecret: totps.get(username) }));
        totps.set(username, sessions.get(username)!.totpSecret);
      }
      return sessions.get(username)!;
    };
    const events = async (prefix: string) =>
      (await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'actor', 'target', 'body']).where('action', 'like', `${prefix}%`).orderBy('seq').execute()).map((e) => ({ action: e.action, actor: e.actor, target: e.target, details: parseBody(e.body).details as Record<string, any> }));
    const register = async (tag: string, extra: Record<string, unknown> = {}) => {
      const office = await as('office');
      const r = await api(office, 'POST', '/api/equipment', { tag, type: 'laptop', description: 'Dell Latitude 3440', location: 'Staff room', serial: `SN-${tag}`, ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    };
    const attach = async (id: string, kind: string, data: Buffer, filename = `${kind}.pdf`) => api(await as('office'), 'POST', `/api/equipment/${id}/certificates`, { kind, filename, data: data.toString('base64') });

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    });
    afterAll(async () => {
      await t.close();
    });

    it('AS-01 an item is registered with tag, serial, type, location and holder, kept in the register and audited', async () => {
      await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'mrsmith', displayName: 'Mr Smith', email: null, role: 'staff', passwordHash: null }));
      const item = await register('GH-0001', { holder: 'mrsmith', mac: '3C-22-FB-01-02-03', personalData: true });
      expect(item).toMatchObject({ tag: 'GH-0001', serial: 'SN-GH-0001', type: 'laptop', location: 'Staff room', holder: 'mrsmith', holderName: 'Mr Smith', mac: '3c:22:fb:01:02:03', status: 'in_use', personalData: true });
      const list = await api(await as('senior_leader'), 'GET', '/api/equipment');
      expect(list.body.items.map((i: any) => i.tag)).toContain('GH-0001');
      expect(await events('equipment.registered')).toEqual([expect.objectContaining({ actor: 'office1', target: `equipment_item:${item.id}` })]);
      // The same tag twice is refused, also when two requests race.
      const office = await as('office');
      const race = await Promise.all([1, 2, 3].map(() => api(office, 'POST', '/api/equipment', { tag: 'GH-RACE', type: 'tablet', description: 'iPad', location: 'Year 5' })));
      expect(race.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    });

    it('AS-01 attack: hostile input is refused at the edge with the field named, and roles without registers.manage cannot register', async () => {
      const office = await as('office');
      const bad = await api(office, 'POST', '/api/equipment', { tag: '=HYPERLINK("http://evil")', type: '', description: 'x', location: 'y', mac: 'not-a-mac' });
      expect(bad.status).toBe(400);
      const fields = JSON.stringify(bad.body);
      expect(fields).toContain('tag');
      expect(fields).toContain('mac');
      for (const role of ['staff', 'governor', 'dpo', 'senior_leader', 'pupil'] as Role[]) {
        expect((await api(await as(role), 'POST', '/api/equipment', { tag: 'X-1', type: 'laptop', description: 'x', location: 'y' })).status, role).toBe(403);
      }
      expect((await api(await as('staff'), 'GET', '/api/equipment')).status).toBe(403);
      expect((await api(null, 'GET', '/api/equipment')).status).toBe(401);
    });

    it('AS-02 an item lent off site is known with borrower, purpose and return date; a second loan at once is refused; an overdue loan shows on the overview', async () => {
      const item = await register('GH-0002');
      const office = await as('office');
      const loans = await Promise.all([1, 2].map(() => api(office, 'POST', `/api/equipment/${item.id}/loan`, { borrower: 'mrsmith', purpose: 'Residential trip to Kingswood', dueBack: '2026-09-10' })));
      expect(loans.map((l) => l.status).sort()).toEqual([200, 409]);
      const got = await api(office, 'GET', `/api/equipment/${item.id}`);
      expect(got.body).toMatchObject({ status: 'on_loan', loan: { borrower: 'Mr Smith', purpose: 'Residential trip to Kingswood', dueBack: '2026-09-10', overdue: false } });
      expect((await api(office, 'POST', `/api/equipment/${item.id}/loan`, { borrower: 'mrsmith', purpose: 'x', dueBack: '2020-01-01' })).status).toBe(400);
      await advanceDays(5);
      const due = await equipmentDue(t.runtime);
      expect(due).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'equipment_loan_overdue', requirement: 'AS-02', overdue: true })]));
      const back = await api(await as('office'), 'POST', `/api/equipment/${item.id}/return`, { location: 'ICT cupboard' });
      expect(back.body).toMatchObject({ status: 'in_use', loan: null, location: 'ICT cupboard' });
      expect(back.body.loans[0].returnedAt).not.toBeNull();
      expect((await equipmentDue(t.runtime)).some((d) => d.kind === 'equipment_loan_overdue')).toBe(false);
    });

    it('AS-13 last seen comes from the filtering identification where the MAC matches, and from the inventory check-in', async () => {
      const item = (await api(await as('office'), 'GET', '/api/equipment')).body.items.find((i: any) => i.tag === 'GH-0001');
      expect(item.lastSeenAt).toBeNull();
      const at = t.clock.now().toISOString();
      await t.runtime.db.kysely.insertInto('filter_identity').values({ id: newId(), ip: '10.0.5.20', account_id: null, device_id: null, mac: '3c:22:fb:01:02:03', via: 'api', reported_by: 'radius', started_at: at, expires_at: at, ended_at: null }).execute();
      const seen = (await api(await as('office'), 'GET', '/api/equipment')).body.items.find((i: any) => i.tag === 'GH-0001');
      expect(seen).toMatchObject({ lastSeenAt: at, lastSeenBy: 'filtering identification (MAC)' });
    });

    it('AS-01 a stock-take lists the items not found, and the overview says when the next is due', async () => {
      expect((await equipmentDue(t.runtime)).find((d) => d.kind === 'equipment_stocktake')).toMatchObject({ requirement: 'AS-01', title: 'No stock-take of the equipment has been recorded' });
      const office = await as('office');
      expect((await api(office, 'POST', '/api/equipment/stocktake')).status).toBe(201);
      expect((await api(office, 'POST', '/api/equipment/stocktake')).status).toBe(409);
      const found = await api(office, 'POST', '/api/equipment/stocktake/found', { tags: ['GH-0001', 'GH-0002', 'NOPE-9'] });
      expect(found.body.unknown).toEqual(['NOPE-9']);
      const closed = await api(office, 'POST', '/api/equipment/stocktake/close');
      expect(closed.body.missing.map((m: any) => m.tag)).toEqual(['GH-RACE']);
      expect(closed.body.found).toBe(2);
      expect((await equipmentDue(t.runtime)).find((d) => d.kind === 'equipment_stocktake')).toBeUndefined();
      expect((await events('equipment.stocktake_closed'))[0]!.details.missing).toEqual(['GH-RACE']);
    });

    it('AS-05 before a third-party repair the personal data on the device is assessed and recorded; without the assessment it cannot go', async () => {
      const item = await register('GH-0500', { personalData: true });
      const office = await as('office');
      const missing = await api(office, 'POST', `/api/equipment/${item.id}/repair`, { repairer: 'FixIt Ltd', fault: 'Cracked screen', dueBack: '2026-12-01' });
      expect(missing.status).toBe(400);
      expect(JSON.stringify(missing.body)).toContain('dataAssessment');
      const sent = await api(office, 'POST', `/api/equipment/${item.id}/repair`, { repairer: 'FixIt Ltd', fault: 'Cracked screen', dueBack: '2026-12-01', dataAssessment: 'Staff documents on the drive: drive removed and kept in the office safe' });
      expect(sent.status).toBe(200);
      expect(sent.body.loan).toMatchObject({ kind: 'repair', borrower: 'FixIt Ltd', dataAssessment: 'Staff documents on the drive: drive removed and kept in the office safe' });
      expect((await api(office, 'POST', `/api/equipment/${item.id}/loan`, { borrower: 'mrsmith', purpose: 'x', dueBack: '2026-12-01' })).status).toBe(409);
      expect((await events('equipment.sent_for_repair'))[0]).toMatchObject({ actor: 'office1', details: { personalData: true, repairer: 'FixIt Ltd' } });
      expect((await api(await as('staff'), 'POST', `/api/equipment/${item.id}/repair`, { repairer: 'x', fault: 'y', dueBack: '2026-12-01', dataAssessment: 'z' })).status).toBe(403);
      expect((await api(office, 'POST', `/api/equipment/${item.id}/return`, {})).body.status).toBe('in_use');
    });

    it('AS-03 AS-04 an item cannot be disposed of without the WEEE and data-destruction certificates (and PAT for a sale); with them the record keeps who authorised, method, recipient and the SHA-256s', async () => {
      const item = await register('GH-0003', { personalData: true });
      const head = await as('senior_leader');
      const disposal = { disposedOn: '2026-09-12', licencesChecked: true, personalData: 'Staff e-mail cache', destruction: 'Drive shredded by the agency', method: 'sale', recipient: 'Greenbridge Recycling Ltd' };
      const refused = await api(head, 'POST', `/api/equipment/${item.id}/dispose`, disposal);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('certificates_missing');
      expect((await attach(item.id, 'weee', PDF)).status).toBe(201);
      expect((await attach(item.id, 'data_destruction', PNG, 'destruction.png')).status).toBe(201);
      const noPat = await api(head, 'POST', `/api/equipment/${item.id}/dispose`, disposal);
      expect(noPat.status).toBe(409);
      expect(noPat.body.error.message).toContain('PAT certificate');
      // The licence check cannot be skipped.
      expect((await api(head, 'POST', `/api/equipment/${item.id}/dispose`, { ...disposal, licencesChecked: false })).status).toBe(400);
      expect((await attach(item.id, 'pat', PDF)).status).toBe(201);
      // The office keeps the register but does not authorise disposals.
      expect((await api(await as('office'), 'POST', `/api/equipment/${item.id}/dispose`, disposal)).status).toBe(403);
      expect((await api(admin, 'POST', `/api/equipment/${item.id}/dispose`, disposal)).status).toBe(403);
      const twice = await Promise.all([1, 2].map(() => api(head, 'POST', `/api/equipment/${item.id}/dispose`, disposal)));
      expect(twice.map((r) => r.status).sort()).toEqual([200, 409]);
      const done = twice.find((r) => r.status === 200)!.body;
      expect(done).toMatchObject({ status: 'disposed', disposal: { authorisedBy: 'A senior_leader 1', method: 'sale', recipient: 'Greenbridge Recycling Ltd', licencesChecked: true, personalData: 'Staff e-mail cache' } });
      expect(done.certificates.map((c: any) => [c.kind, c.contentType])).toEqual([['weee', 'application/pdf'], ['data_destruction', 'image/png'], ['pat', 'application/pdf']]);
      const cert = done.certificates[0];
      const file = await api(await as('office'), 'GET', `/api/equipment/${item.id}/certificates/${cert.id}`);
      expect(file.raw.equals(PDF)).toBe(true);
      expect(file.headers['x-content-type-options']).toBe('nosniff');
      // A certificate is reached only through its own item, and only by those who may read the register.
      const other = await register('GH-0003B');
      expect((await api(await as('office'), 'GET', `/api/equipment/${other.id}/certificates/${cert.id}`)).status).toBe(404);
      expect((await api(await as('governor'), 'GET', `/api/equipment/${item.id}/certificates/${cert.id}`)).status).toBe(403);
      expect((await api(await as('staff'), 'GET', `/api/equipment/${item.id}/certificates/${cert.id}`)).status).toBe(403);
      expect(existsSync(path.join(t.runtime.config.dataDir, 'certificates', cert.sha256))).toBe(true);
      const [event] = await events('equipment.disposed');
      expect(event).toMatchObject({ actor: 'seniorleader1', target: `equipment_item:${item.id}`, details: { method: 'sale', recipient: 'Greenbridge Recycling Ltd' } });
      // Gone from the register's working list; changes to it are refused.
      expect((await api(head, 'GET', '/api/equipment')).body.items.map((i: any) => i.tag)).not.toContain('GH-0003');
      expect((await api(await as('office'), 'POST', `/api/equipment/${item.id}/loan`, { borrower: 'mrsmith', purpose: 'x', dueBack: '2026-12-01' })).status).toBe(409);
    });

    it('AS-03 attack: a file that is not a PDF, renamed .pdf, is refused by its content; oversized and non-base64 uploads are refused', async () => {
      const item = await register('GH-0004');
      const html = await attach(item.id, 'weee', Buffer.from('<html><script>alert(1)</script></html>'), 'certificate.pdf');
      expect(html.status).toBe(400);
      expect(html.body.error.message).toContain('PDF, PNG or JPEG');
      const exe = await attach(item.id, 'weee', Buffer.from('MZ\x90\x00 this program cannot be run in DOS mode'), 'weee.pdf');
      expect(exe.status).toBe(400);
      expect((await api(await as('office'), 'POST', `/api/equipment/${item.id}/certificates`, { kind: 'weee', filename: 'a.pdf', data: '%%%not base64%%%' })).status).toBe(400);
      const big = Buffer.concat([PDF, Buffer.alloc(6 * 1024 * 1024)]);
      expect([400, 413]).toContain((await attach(item.id, 'weee', big)).status);
      expect((await api(await as('office'), 'GET', `/api/equipment/${item.id}`)).body.certificates).toEqual([]);
      expect((await attach(item.id, 'weee', PDF, '../../etc/passwd.pdf')).body.certificates[0].filename).not.toContain('/');
    });

    it('AC-13 AS-01 a leaver’s checklist has an item for each piece of equipment issued to them, ticked when its return is recorded', async () => {
      const leaverId = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'mrsjones', displayName: 'Mrs Jones', email: null, role: 'staff', passwordHash: null }));
      const laptop = await register('GH-0010', { holder: 'mrsjones' });
      const tablet = await register('GH-0011');
      await api(await as('office'), 'POST', `/api/equipment/${tablet.id}/loan`, { borrower: 'mrsjones', purpose: 'Working from home', dueBack: '2026-12-01' });
      await reauthenticate(t, admin);
      const started = await api(admin, 'POST', `/api/accounts/${leaverId}/leaver`, {});
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const linked = started.body.items.filter((i: any) => i.kind === 'equipment_returned' && i.how === 'linked');
      expect(linked.map((i: any) => [i.ref, i.done])).toEqual([[`equipment_item:${laptop.id}`, false], [expect.stringMatching(/^equipment_loan:/), false]]);
      await api(await as('office'), 'POST', `/api/equipment/${laptop.id}/return`, { fromHolder: true });
      await api(await as('office'), 'POST', `/api/equipment/${tablet.id}/return`, {});
      const after = await api(admin, 'GET', `/api/leavers/${leaverId}`);
      expect(after.body.items.filter((i: any) => i.how === 'linked' && i.kind === 'equipment_returned').every((i: any) => i.done && i.doneBy === 'office1')).toBe(true);
      expect((await api(admin, 'GET', `/api/equipment/${laptop.id}`)).body.holder).toBeNull();
    });

    it('AS-01 CSV import checks every row and imports nothing on any error, naming line and column; a good file imports', async () => {
      const office = await as('office');
      const bad = await api(office, 'POST', '/api/equipment/import', { csv: 'Tag,Type,Description,Location,Holder,MAC\nGH-0100,laptop,HP,Office,,\nGH-0100,laptop,HP,Office,,\nGH-0102,,HP,Office,nobody,zz\n' });
      expect(bad.status).toBe(400);
      const errors = bad.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`);
      expect(errors).toEqual(expect.arrayContaining(['3:tag', '4:type', '4:mac']));
      expect((await api(office, 'GET', '/api/equipment')).body.items.map((i: any) => i.tag)).not.toContain('GH-0100');
      expect((await api(office, 'POST', '/api/equipment/import', { csv: 'Tag\n' })).status).toBe(400);
      const good = await api(office, 'POST', '/api/equipment/import', { csv: '\uFEFFtag,type,description,location,holder,personal_data\r\nGH-0200,projector,Epson EB,Hall,,no\r\n"GH-0201",laptop,"Dell, 14""",Office,mrsmith,yes\r\n' });
      expect(good.status, JSON.stringify(good.body)).toBe(201);
      expect(good.body.imported).toBe(2);
      const huge = 'tag,type,description,location\n' + 'x'.repeat(2 * 1024 * 1024 + 10);
      expect([400, 413]).toContain((await api(office, 'POST', '/api/equipment/import', { csv: huge })).status);
    });

    it('AS-01 attack: the CSV export neutralises formulas planted in a cell', async () => {
      const office = await as('office');
      await register('GH-0300', { description: '=cmd|\' /C calc\'!A0', location: '@SUM(1+1)' });
      const csv = await api(office, 'GET', '/api/equipment/export.csv');
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      const line = csv.text.split('\r\n').find((l) => l.startsWith('GH-0300'))!;
      expect(line).toContain(`'=cmd`);
      expect(line).toContain(`'@SUM`);
      expect(line).not.toMatch(/,=|,@|,\+|,-/);
      expect((await events('equipment.exported')).length).toBeGreaterThan(0);
    });

    it('AS-07 a title is approved by the headteacher and GDPR-checked by the DPO, each recorded with who; nobody approves their own, and a decision is made once', async () => {
      const office = await as('office');
      const title = (await api(office, 'POST', '/api/software', { name: 'Purple Mash', publisher: '2Simple', purpose: 'Computing curriculum' })).body;
      expect(title.status).toBe('pending');
      // Only the headteacher's role approves and only the DPO checks GDPR.
      expect((await api(office, 'POST', `/api/software/${title.id}/approval`, { decision: 'approved' })).status).toBe(403);
      expect((await api(admin, 'POST', `/api/software/${title.id}/approval`, { decision: 'approved' })).status).toBe(403);
      expect((await api(await as('senior_leader'), 'POST', `/api/software/${title.id}/gdpr`, { decision: 'approved' })).status).toBe(403);
      expect((await api(await as('dpo'), 'POST', `/api/software/${title.id}/approval`, { decision: 'approved' })).status).toBe(403);
      const head = await api(await as('senior_leader'), 'POST', `/api/software/${title.id}/approval`, { decision: 'approved', note: 'Curriculum need' });
      expect(head.body).toMatchObject({ status: 'pending', head: { decision: 'approved', by: 'seniorleader1' } });
      // A second headteacher decision (e.g. a replayed request) is refused.
      const replay = await Promise.all([1, 2].map(async (i) => api(await as('senior_leader', String(i + 1)), 'POST', `/api/software/${title.id}/approval`, { decision: 'refused', note: 'no' })));
      expect(replay.map((r) => r.status)).toEqual([409, 409]);
      const refusedNoReason = await api(await as('dpo'), 'POST', `/api/software/${title.id}/gdpr`, { decision: 'refused' });
      expect(refusedNoReason.status).toBe(400);
      const dpo = await api(await as('dpo'), 'POST', `/api/software/${title.id}/gdpr`, { decision: 'approved', note: 'DPA signed, UK hosting' });
      expect(dpo.body).toMatchObject({ status: 'approved', dpo: { decision: 'approved', by: 'dpo1', note: 'DPA signed, UK hosting' } });
      expect((await events('software.')).map((e) => e.action)).toEqual(['software.title_added', 'software.head_decided', 'software.gdpr_checked']);
      // Self-approval: a senior leader who could add a title could not approve it; simulated by a title added in their name.
      const own = (await api(office, 'POST', '/api/software', { name: 'Own Tool', purpose: 'x' })).body;
      await t.runtime.db.kysely.updateTable('software_title').set({ requested_by: 'seniorleader1' }).where('id', '=', own.id).execute();
      const self = await api(await as('senior_leader'), 'POST', `/api/software/${own.id}/approval`, { decision: 'approved' });
      expect(self.status).toBe(403);
      expect(self.body.error.code).toBe('self_approval');
    });

    it('AS-06 licences bought are reconciled against installations from an inventory CSV; over-use and expiring licences are flagged on the overview', async () => {
      const office = await as('office');
      const title = (await api(office, 'POST', '/api/software', { name: 'Microsoft Office', purpose: 'Office suite' })).body;
      expect((await api(office, 'POST', `/api/software/${title.id}/licences`, { seats: 2, boughtOn: '2026-01-01', expiresOn: '2026-09-30', reference: 'PO-1234' })).status).toBe(201);
      expect((await api(office, 'POST', `/api/software/${title.id}/licences`, { seats: 0, boughtOn: '2026-01-01', reference: 'x' })).status).toBe(400);
      const inventory = [
        'Device name,Serial number,OS,Last check-in,Antivirus,Antivirus updated,Last patched,Critical updates pending since,Apps',
        'STAFF-PC-01,SN-GH-0001,Windows 11,2026-09-11,Defender,2026-09-11,2026-09-01,,Microsoft Office; Purple Mash',
        'STAFF-PC-02,,Windows 11,2026-09-11,Defender,2026-08-01,2026-08-01,2026-08-10,microsoft office',
        'STAFF-PC-03,,Windows 10,2026-07-01,,,2026-06-01,,Microsoft Office;Zoom',
      ].join('\n');
      const imported = await api(office, 'POST', '/api/inventory/import', { csv: inventory });
      expect(imported.status, JSON.stringify(imported.body)).toBe(201);
      expect(imported.body).toEqual({ devices: 3, installations: 5 });
      const software = (await api(office, 'GET', '/api/software')).body;
      expect(software.titles.find((x: any) => x.name === 'Microsoft Office')).toMatchObject({ seats: 2, installations: 3, overUsed: true });
      expect(software.unlicensed).toEqual([{ name: 'Zoom', installations: 1 }]);
      const due = await softwareDue(t.runtime);
      expect(due).toEqual(expect.arrayContaining([
        expect.objectContaining({ kind: 'licence_over_used', requirement: 'AS-06' }),
        expect.objectContaining({ kind: 'licence_expiring', requirement: 'AS-06' }),
      ]));
      const csv = await api(office, 'GET', '/api/software/export.csv');
      expect(csv.text).toContain('Microsoft Office');
    });

    it('AS-11 AS-12 AS-13 device health from the inventory: stale anti-virus, critical updates pending more than 14 days and devices not seen are flagged', async () => {
      const health = (await api(await as('senior_leader'), 'GET', '/api/devices-health')).body;
      const by = Object.fromEntries(health.devices.map((d: any) => [d.name, d]));
      expect(by['STAFF-PC-01']).toMatchObject({ avStale: false, patchOverdue: false, unseen: false });
      expect(by['STAFF-PC-02']).toMatchObject({ avStale: true, patchOverdue: true });
      expect(by['STAFF-PC-03']).toMatchObject({ avStale: true, unseen: true });
      expect(health.limits.criticalPatchDays).toBe(14);
      const due = await softwareDue(t.runtime);
      expect(due.map((d) => d.requirement)).toEqual(expect.arrayContaining(['AS-11', 'AS-12', 'AS-13']));
      // A critical update pending exactly 14 days is not yet overdue; 15 days is.
      const office = await as('office');
      const now = t.clock.now().getTime();
      const day = (n: number) => new Date(now - n * 86_400_000).toISOString();
      await api(office, 'POST', '/api/inventory/import', { csv: `Device name,Critical updates pending since,Antivirus,Antivirus updated,Last check-in,Apps\nA,${day(14)},Defender,${day(0)},${day(0)},\nB,${day(15)},Defender,${day(0)},${day(0)},\n` });
      const again = (await api(office, 'GET', '/api/devices-health')).body.devices;
      expect(again.map((d: any) => [d.name, d.patchOverdue])).toEqual([['A', false], ['B', true]]);
    });

    it('GV-08 AS-01 AS-06 AS-11 AS-12 the compliance view judges the stock-take, licences, anti-virus and 14-day patching clauses from the registers', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/compliance', headers: (await as('senior_leader')).headers });
      expect(response.statusCode).toBe(200);
      const body = response.json() as any;
      const frameworks = (Array.isArray(body) ? body : body.frameworks) as Array<{ id: string; clauses: Array<{ id: string; evidence: Array<{ id?: string; status: string; summary: string }> }> }>;
      const probe = (fw: string, clause: string, id: string) => frameworks.find((f) => f.id === fw)!.clauses.find((c) => c.id === clause)!.evidence.find((e) => e.id === id)!;
      // The last inventory (from the AS-11 test) has devices A (14 days, not overdue) and B (15 days, overdue).
      expect(probe('cyber-essentials', 'A6.4', 'patches-14-days')).toMatchObject({ status: 'not_met' });
      expect(probe('cyber-essentials', 'A6.4', 'patches-14-days').summary).toContain('B');
      expect(probe('cyber-essentials', 'A8.1', 'antivirus-current')).toMatchObject({ status: 'met' });
      expect(probe('school-policy', 'AS-01', 'equipment-stocktake').status).toBe('met');
      // Microsoft Office is licensed for 2 seats and no longer installed; nothing is over-used now.
      expect(probe('dfe-cyber-security', '8', 'licences-reconciled').status).toBe('met');
    });

    it('AS-06 attack: a hostile inventory CSV (bad dates, duplicate devices, NUL bytes, unclosed quotes) imports nothing and keeps the last inventory', async () => {
      const office = await as('office');
      const before = (await api(office, 'GET', '/api/devices-health')).body.devices.length;
      const bad = await api(office, 'POST', '/api/inventory/import', { csv: 'Device name,Last check-in,Apps\nA,yesterday,\nA,2026-01-01,\n' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`)).toEqual(['2:Last check-in', '3:Device name']);
      expect((await api(office, 'POST', '/api/inventory/import', { csv: 'Device name,Apps\nA\u0000,x\n' })).status).toBe(400);
      expect((await api(office, 'POST', '/api/inventory/import', { csv: 'Device name,Apps\n"A,x\n' })).status).toBe(400);
      expect((await api(office, 'POST', '/api/inventory/import', { csv: 'Hostname,Apps\nA,x\n' })).status).toBe(400);
      expect((await api(office, 'GET', '/api/devices-health')).body.devices.length).toBe(before);
      expect((await api(await as('staff'), 'POST', '/api/inventory/import', { csv: 'Device name,Apps\nA,x\n' })).status).toBe(403);
    });

    it('AS-10 only encrypted drives are issued, each to a named holder, and their return is recorded', async () => {
      const office = await as('office');
      expect((await api(office, 'POST', '/api/media', { label: 'USB-07', encrypted: false, holder: 'Mrs Jones', issuedOn: '2026-09-07' })).status).toBe(400);
      const drive = await api(office, 'POST', '/api/media', { label: 'USB-07', encrypted: true, holder: 'Mr Smith', issuedOn: '2026-09-07' });
      expect(drive.status).toBe(201);
      expect((await api(office, 'POST', '/api/media', { label: 'USB-07', encrypted: true, holder: 'Mr Smith', issuedOn: '2026-09-07' })).status).toBe(409);
      const back = await api(office, 'POST', `/api/media/${drive.body.id}/return`);
      expect(back.body.returnedOn).not.toBeNull();
      expect((await api(office, 'POST', `/api/media/${drive.body.id}/return`)).status).toBe(409);
      expect((await events('media.')).map((e) => e.action)).toEqual(['media.issued', 'media.returned']);
    });
  });
}
