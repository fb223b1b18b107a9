import { z } from 'zod';
import type { FastifyError } from 'fastify';
import { GatehouseError } from '../core/errors.js';
import type { App } from '../http/app.js';
import { actorOf, metaOf } from '../http/request-context.js';
import type { Runtime } from '../runtime.js';
import { groupKinds } from './groups.js';
import { csvFields, guessMapping, importableRoles, readCsv, readGenericCsv, readSds, type ColumnMapping, type ImportData } from './import-sources.js';
import { applyImport, describePlan, grantsPrivilegedRole, planImport, type ImportCounts } from './imports.js';
import { stepUpFor } from '../identity/my-account.js';

/**
 * The console's import wizard (AC-12): preview (headers, a guessed column mapping and the dry-run
 * plan) and commit, each taking the files' text in one JSON body. These two routes accept bodies up
 * to IMPORT_BODY_LIMIT; every other route keeps the server's 1 MB.
 */
export const IMPORT_BODY_LIMIT = 25 * 1024 * 1024;

const mappingSchema = z.object(Object.fromEntries(csvFields.map((f) => [f, z.string().trim().max(200).optional()])) as Record<(typeof csvFields)[number], z.ZodOptional<z.ZodString>>).strict();

const bodySchema = z.object({
  kind: z.enum(['csv', 'sds'], { error: 'must be csv (any CSV with a column mapping) or sds (School Data Sync v2.1)' }),
  files: z
    .record(z.string().min(1).max(255), z.string())
    .refine((files) => Object.keys(files).length > 0, 'choose at least one file')
    .refine((files) => Object.keys(files).length <= 10, 'at most 10 files'),
  mapping: mappingSchema.optional(),
  defaultRole: z.enum(importableRoles as [string, ...string[]], { error: 'must be a role other than administrator' }).optional(),
  groupKind: z.enum(groupKinds).optional(),
  disableMissing: z.boolean().default(false),
});
type Body = z.infer<typeof bodySchema>;

const badRowSchema = z.object({ file: z.string(), line: z.number(), reason: z.string() });
const changeSchema = z.record(z.string(), z.object({ from: z.string().nullable(), to: z.string().nullable() }));
const summarySchema = z.object({
  source: z.string(),
  files: z.array(z.string()),
  disableMissing: z.boolean(),
  counts: z.object(Object.fromEntries(['rows', 'created', 'updated', 'unchanged', 'disabled', 'held', 'bad', 'groupsCreated', 'groupsRenamed', 'membershipsAdded', 'membershipsRemoved'].map((k) => [k, z.number()])) as Record<keyof ImportCounts, z.ZodNumber>),
  created: z.array(z.object({ file: z.string(), line: z.number(), username: z.string(), displayName: z.string(), role: z.string(), status: z.string(), externalId: z.string().nullable(), groups: z.array(z.string()) })),
  updated: z.array(z.object({ file: z.string(), line: z.number(), username: z.string(), displayName: z.string(), changes: changeSchema, groupsAdded: z.array(z.string()), groupsRemoved: z.array(z.string()) })),
  disabled: z.array(z.object({ accountId: z.string(), username: z.string(), displayName: z.string() })),
  held: z.array(z.object({ accountId: z.string(), file: z.string(), line: z.number(), username: z.string(), displayName: z.string(), status: z.string(), reason: z.string() })),
  unchanged: z.array(z.string()),
  groups: z.object({ created: z.array(z.object({ name: z.string(), kind: z.string(), externalId: z.string().nullable() })), renamed: z.array(z.object({ name: z.string(), from: z.string() })) }),
  bad: z.array(badRowSchema),
  notes: z.array(z.string()),
});
const previewSchema = z.object({
  headers: z.record(z.string(), z.array(z.string())),
  guessedMapping: z.record(z.string(), z.string()).nullable(),
  mapping: z.record(z.string(), z.string()).nullable(),
  /** Why there is no plan yet (e.g. no column chosen for the username); the wizard shows it at the mapping step. */
  problem: z.string().nullable(),
  plan: summarySchema.nullable(),
});

interface Read {
  headers: Record<string, string[]>;
  guessedMapping: ColumnMapping | null;
  mapping: ColumnMapping | null;
  data?: ImportData;
  problem?: string;
}

function readFiles(body: Body): Read {
  if (body.kind === 'sds') {
    const data = readSds(body.files);
    return { headers: data.headers, guessedMapping: null, mapping: null, data };
  }
  const names = Object.keys(body.files);
  if (names.length !== 1) throw new GatehouseError('import_file_invalid', 400, 'A CSV import takes one file.');
  const table = readCsv(names[0]!, body.files[names[0]!]!);
  const guessed = guessMapping(table.headers);
  const mapping = Object.fromEntries(Object.entries(body.mapping ?? guessed).filter(([, header]) => header)) as ColumnMapping;
  const base = { headers: { [table.file]: table.headers }, guessedMapping: guessed, mapping };
  try {
    return { ...base, data: readGenericCsv(table, { mapping, defaultRole: body.defaultRole as never, groupKind: body.groupKind }) };
  } catch (error) {
    if (error instanceof GatehouseError && error.code === 'import_file_invalid') return { ...base, problem: error.message };
    throw error;
  }
}

export function registerImportRoutes(app: App, rt: Runtime): void {
  const tags = ['imports'];
  // Over the limit: one clear message instead of Fastify's "Request body is too large".
  const errorHandler = (error: FastifyError, request: Parameters<App['errorHandler']>[1], reply: Parameters<App['errorHandler']>[2]) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({
        error: { code: 'import_too_large', message: `The files are too large to import at once (at most ${IMPORT_BODY_LIMIT / 1024 / 1024} MB altogether). Split them, or use the gatehouse import command on the server.`, requestId: request.id },
      });
    }
    return app.errorHandler.call(app, error, request, reply);
  };

  app.post(
    '/api/imports/preview',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      errorHandler,
      config: { access: 'directory.manage', bodyFilesJudgedByRoute: true },
      schema: { summary: 'Dry run of an import (generic CSV with a column mapping, or School Data Sync v2.1): the columns, a guessed mapping, and what would be created, updated, disabled and left unchanged, with every bad row', tags, body: bodySchema, response: { 200: previewSchema } },
    },
    async (request) => {
      const read = readFiles(request.body);
      const plan = read.data ? describePlan(await planImport(rt, request.body.kind, read.data, { disableMissing: request.body.disableMissing })) : null;
      return { headers: read.headers, guessedMapping: read.guessedMapping as Record<string, string> | null, mapping: read.mapping as Record<string, string> | null, problem: read.problem ?? null, plan };
    },
  );

  app.post(
    '/api/imports/commit',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      errorHandler,
      config: { access: 'directory.manage', bodyFilesJudgedByRoute: true },
      schema: { summary: 'Run an import: the same body as the preview; good rows are imported, bad rows are reported and left out. One that gives anyone a privileged role needs a recent re-authentication', tags, body: bodySchema, response: { 200: z.object({ importId: z.string(), plan: summarySchema }) } },
    },
    async (request) => {
      const read = readFiles(request.body);
      if (!read.data) throw new GatehouseError('import_file_invalid', 400, read.problem ?? 'The file could not be read.');
      const plan = await planImport(rt, request.body.kind, read.data, { disableMissing: request.body.disableMissing });
      // A file that makes someone a senior leader, DSL, DPO, governor or office account is a grant of that role (issue 10, finding 12).
      if (grantsPrivilegedRole(plan)) await stepUpFor(rt, request.auth)('privileged_role');
      const result = await applyImport(rt, actorOf(request), plan, metaOf(request));
      return { importId: result.importId, plan: describePlan(plan) };
    },
  );
}
