import { z } from 'zod';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { CSV_BODY_LIMIT, csvImportBody } from './csv.js';
import {
  attachCertificate, certificateFile, certificateSchema, closeStocktake, currentStocktake, disposalSchema, disposeItem, exportDisposalsCsv, exportEquipmentCsv, getItem,
  importEquipmentCsv, itemSchema, lendItem, listItems, loanSchema, markFound, registerItem, repairSchema, returnItem, sendForRepair, startStocktake, updateItem,
} from './equipment.js';
import {
  addLicence, addTitle, decideTitle, decisionSchema, deviceHealth, exportDevicesCsv, exportMediaCsv, exportSoftwareCsv, importInventoryCsv, importMediaCsv, importSoftwareCsv, issueMedia, licenceSchema,
  listMedia, listTitles, mediaSchema, returnMedia, titleSchema,
} from './software.js';

const idParams = z.object({ id: z.uuid('must be an id') });
const csvBody = csvImportBody;
const csvLimit = CSV_BODY_LIMIT;

/** Issue 12: the equipment, disposal, software and licence, removable media and device health registers (AS-01..AS-07, AS-10..AS-13). */
export function registerEquipmentRoutes(app: App, rt: Runtime): void {
  const tags = ['registers'];
  const csv = (reply: { header: (k: string, v: string) => typeof reply; send: (b: string) => unknown }, name: string, body: string) =>
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}-${rt.clock.now().toISOString().slice(0, 10)}.csv"`).header('cache-control', 'no-store').send(body);

  // Equipment (AS-01, AS-02, AS-05, AS-13)
  app.get('/api/equipment', { config: { access: 'registers.read' }, schema: { summary: 'The equipment register with loans and when each item was last seen', tags, querystring: z.object({ disposed: z.enum(['yes', 'no']).default('no') }).strict() } }, async (request) => ({
    items: await listItems(rt, { includeDisposed: request.query.disposed === 'yes' }),
    stocktake: await currentStocktake(rt),
  }));
  app.get('/api/equipment/export.csv', { config: { access: 'registers.read' }, schema: { summary: 'The equipment register as CSV (audited)', tags } }, async (request, reply) =>
    csv(reply as never, 'equipment', await exportEquipmentCsv(rt, actorOf(request), metaOf(request))),
  );
  app.post('/api/equipment/import', { bodyLimit: csvLimit, config: { access: 'registers.manage' }, schema: { summary: 'Import items from CSV: every row checked first, nothing imported on any error (audited)', tags, body: csvBody } }, async (request, reply) =>
    reply.code(201).send(await importEquipmentCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.post('/api/equipment', { config: { access: 'registers.manage' }, schema: { summary: 'Register an item (audited)', tags, body: itemSchema } }, async (request, reply) =>
    reply.code(201).send(await registerItem(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.get('/api/equipment/disposals/export.csv', { config: { access: 'registers.read' }, schema: { summary: 'Every disposal with who authorised it, method, recipient and the certificates’ SHA-256s, as CSV (AS-03, AS-04; audited)', tags } }, async (request, reply) =>
    csv(reply as never, 'disposals', await exportDisposalsCsv(rt, actorOf(request), metaOf(request))),
  );
  app.get('/api/equipment/stocktake', { config: { access: 'registers.read' }, schema: { summary: 'The stock-take under way and the last one closed', tags } }, async () => currentStocktake(rt));
  app.post('/api/equipment/stocktake', { config: { access: 'registers.manage' }, schema: { summary: 'Start a stock-take (audited)', tags } }, async (request, reply) =>
    reply.code(201).send(await startStocktake(rt, actorOf(request), metaOf(request))),
  );
  app.post('/api/equipment/stocktake/found', { config: { access: 'registers.manage' }, schema: { summary: 'Mark items found by tag (audited)', tags, body: z.object({ tags: z.array(z.string().trim().min(1).max(60)).min(1, 'give at least one tag').max(5000) }).strict() } }, async (request) =>
    markFound(rt, actorOf(request), request.body.tags, metaOf(request)),
  );
  app.post('/api/equipment/stocktake/close', { config: { access: 'registers.manage' }, schema: { summary: 'Close the stock-take: items not found are listed as missing (audited)', tags } }, async (request) =>
    closeStocktake(rt, actorOf(request), metaOf(request)),
  );
  app.get('/api/equipment/:id', { config: { access: 'registers.read' }, schema: { summary: 'One item with its loans, certificates and disposal', tags, params: idParams } }, async (request) => getItem(rt, request.params.id));
  app.put('/api/equipment/:id', { config: { access: 'registers.manage' }, schema: { summary: 'Change an item (audited with what changed)', tags, params: idParams, body: itemSchema } }, async (request) =>
    updateItem(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post('/api/equipment/:id/loan', { config: { access: 'registers.manage' }, schema: { summary: 'Lend an item off site to a person until a date (AS-02, audited)', tags, params: idParams, body: loanSchema } }, async (request) =>
    lendItem(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post('/api/equipment/:id/repair', { config: { access: 'registers.manage' }, schema: { summary: 'Send an item to a third party for repair, with the personal data on it assessed and protected first (AS-05, audited)', tags, params: idParams, body: repairSchema } }, async (request) =>
    sendForRepair(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post('/api/equipment/:id/return', { config: { access: 'registers.manage' }, schema: { summary: 'Record an item’s return (closes its loan; with fromHolder, no longer issued to its holder); ticks a leaver’s checklist (audited)', tags, params: idParams, body: z.object({ fromHolder: z.boolean().default(false), location: z.string().trim().min(1).max(200).optional() }).strict() } }, async (request) =>
    returnItem(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );
  app.post('/api/equipment/:id/certificates', { bodyLimit: 8 * 1024 * 1024, config: { access: 'registers.manage' }, schema: { summary: 'Attach a WEEE, data-destruction or PAT certificate (PDF, PNG or JPEG by content; SHA-256 recorded; audited)', tags, params: idParams, body: certificateSchema } }, async (request, reply) =>
    reply.code(201).send(await attachCertificate(rt, actorOf(request), request.params.id, request.body, metaOf(request))),
  );
  app.get('/api/equipment/:id/certificates/:certificateId', { config: { access: 'registers.read' }, schema: { summary: 'A certificate as uploaded (checked against its SHA-256)', tags, params: z.object({ id: z.uuid('must be an id'), certificateId: z.uuid('must be an id') }) } }, async (request, reply) => {
    const file = await certificateFile(rt, request.params.id, request.params.certificateId);
    return reply.header('content-type', file.contentType).header('content-disposition', `attachment; filename="${file.filename.replace(/"/g, '')}"`).header('x-content-type-options', 'nosniff').header('cache-control', 'no-store').send(file.bytes);
  });
  app.post('/api/equipment/:id/dispose', { config: { access: 'registers.dispose' }, schema: { summary: 'Authorise and record a disposal: refused without the WEEE and data-destruction certificates (and PAT for a sale or gift) (AS-03, AS-04; audited)', tags, params: idParams, body: disposalSchema } }, async (request) =>
    disposeItem(rt, actorOf(request), request.params.id, request.body, metaOf(request)),
  );

  // Software and licences (AS-06, AS-07)
  app.get('/api/software', { config: { access: 'registers.read' }, schema: { summary: 'Software titles with approvals, licences and installations counted from the last inventory (over-use flagged)', tags } }, async () => listTitles(rt));
  app.get('/api/software/export.csv', { config: { access: 'registers.read' }, schema: { summary: 'The software and licence register as CSV (audited)', tags } }, async (request, reply) =>
    csv(reply as never, 'software', await exportSoftwareCsv(rt, actorOf(request), metaOf(request))),
  );
  app.post('/api/software/import', { bodyLimit: csvLimit, config: { access: 'registers.manage' }, schema: { summary: 'Import titles and licences from CSV: new titles await approval; every row checked first, nothing imported on any error (audited)', tags, body: csvBody } }, async (request, reply) =>
    reply.code(201).send(await importSoftwareCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.post('/api/software', { config: { access: 'registers.manage' }, schema: { summary: 'Add a software title, to be approved by the headteacher and checked by the DPO before use (audited)', tags, body: titleSchema } }, async (request, reply) =>
    reply.code(201).send(await addTitle(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/software/:id/approval', { config: { access: 'software.approve' }, schema: { summary: 'The headteacher approves or refuses a title (AS-07; never the person who added it; audited)', tags, params: idParams, body: decisionSchema } }, async (request) =>
    decideTitle(rt, actorOf(request), request.params.id, 'head', request.body, metaOf(request)),
  );
  app.post('/api/software/:id/gdpr', { config: { access: 'software.gdpr' }, schema: { summary: 'The DPO records the GDPR check of a title (AS-07; audited)', tags, params: idParams, body: decisionSchema } }, async (request) =>
    decideTitle(rt, actorOf(request), request.params.id, 'dpo', request.body, metaOf(request)),
  );
  app.post('/api/software/:id/licences', { config: { access: 'registers.manage' }, schema: { summary: 'Record licences bought: seats, purchase and expiry (AS-06; audited)', tags, params: idParams, body: licenceSchema } }, async (request, reply) =>
    reply.code(201).send(await addLicence(rt, actorOf(request), request.params.id, request.body, metaOf(request))),
  );

  // Inventory and device health (AS-06, AS-11, AS-12, AS-13)
  app.post('/api/inventory/import', { bodyLimit: csvLimit, config: { access: 'registers.manage' }, schema: { summary: 'Import an inventory export (Intune-style CSV): installations per title, anti-virus and patch state per device; replaces the last one; all or nothing (audited)', tags, body: csvBody } }, async (request, reply) =>
    reply.code(201).send(await importInventoryCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.get('/api/devices-health', { config: { access: 'registers.read' }, schema: { summary: 'Anti-virus and patch state per device from the last inventory, stale and overdue flagged', tags } }, async () => ({
    devices: await deviceHealth(rt),
    limits: rt.profile.registers,
  }));
  app.get('/api/devices-health/export.csv', { config: { access: 'registers.read' }, schema: { summary: 'Device health as CSV (audited)', tags } }, async (request, reply) =>
    csv(reply as never, 'device-health', await exportDevicesCsv(rt, actorOf(request), metaOf(request))),
  );

  // Removable media (AS-10)
  app.get('/api/media', { config: { access: 'registers.read' }, schema: { summary: 'School-issued encrypted drives and who holds them', tags } }, async () => ({ media: await listMedia(rt) }));
  app.get('/api/media/export.csv', { config: { access: 'registers.read' }, schema: { summary: 'The removable media register as CSV (audited)', tags } }, async (request, reply) =>
    csv(reply as never, 'removable-media', await exportMediaCsv(rt, actorOf(request), metaOf(request))),
  );
  app.post('/api/media/import', { bodyLimit: csvLimit, config: { access: 'registers.manage' }, schema: { summary: 'Import encrypted drives from CSV: every row checked first, nothing imported on any error (audited)', tags, body: csvBody } }, async (request, reply) =>
    reply.code(201).send(await importMediaCsv(rt, actorOf(request), request.body.csv, metaOf(request))),
  );
  app.post('/api/media', { config: { access: 'registers.manage' }, schema: { summary: 'Issue an encrypted drive (audited)', tags, body: mediaSchema } }, async (request, reply) =>
    reply.code(201).send(await issueMedia(rt, actorOf(request), request.body, metaOf(request))),
  );
  app.post('/api/media/:id/return', { config: { access: 'registers.manage' }, schema: { summary: 'Record a drive returned (audited)', tags, params: idParams } }, async (request) =>
    returnMedia(rt, actorOf(request), request.params.id, metaOf(request)),
  );
}
