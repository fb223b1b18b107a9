import type { Insertable, Kysely } from 'kysely';
import { z } from 'zod';
import type { Schema } from '../db/schema.js';
import type { Runtime } from '../runtime.js';
import type { Clock } from './clock.js';
import type { Actor, AuditSeverity } from './context.js';
import { conflict, notFound } from './errors.js';
import { hashToken, newId, newSecretToken } from './ids.js';

/**
 * Bearer tokens for systems that call Gatehouse rather than people (SCIM clients, the filtering
 * identity API). Each names the system that uses it; the token is shown once, to whoever made it,
 * and only its SHA-256 is stored, so it is looked up by that hash and no comparison runs over the
 * secret. A revoked token stops working at once. Making and revoking one is audited; the last use
 * is noted at most once a minute. Each kind has its own table with these columns (and any of its
 * own), its own prefix and its own audit actions.
 */

/** The columns every token table has. */
export interface ApiTokenRow {
  id: string;
  name: string;
  token_hash: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** The tables whose rows are tokens. */
type TokenTable = { [T in keyof Schema]: Schema[T] extends ApiTokenRow ? T : never }[keyof Schema];

export interface ApiTokenKind<Table extends TokenTable> {
  table: Table;
  /** Recognisable in a leaked file or a secret scanner; the rest is 256 random bits. */
  prefix: string;
  /** What messages call one, e.g. "SCIM token". */
  noun: string;
  /** The error code when a token that is not revoked already has the name. */
  nameTakenCode: string;
  audit: { created: string; revoked: string };
}

/** A token's name: it becomes part of the audit actor (`scim:<name>`), so no colon. */
export const apiTokenNameSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(100, 'must be at most 100 characters')
  .regex(/^[^\s:][^:]*$/, 'may not contain a colon')
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'may not contain control characters');

type Meta = { ip: string | null; requestId: string | null };

/** The summary every kind shows (never the token or its hash). */
export interface ApiTokenSummary {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export const summariseApiToken = (row: ApiTokenRow): ApiTokenSummary => ({
  id: row.id,
  name: row.name,
  createdAt: row.created_at,
  createdBy: row.created_by,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at,
});

/** The queries, made and revoked under the kind's audit actions. */
export function apiTokens<Table extends TokenTable>(kind: ApiTokenKind<Table>) {
  type Row = Schema[Table];
  // Every token table has the ApiTokenRow columns; Kysely cannot see that through a table name
  // chosen by a type parameter, so the queries are written against one such table.
  const on = (db: Kysely<Schema>) => db as unknown as Kysely<Record<string, ApiTokenRow>>;
  const table = kind.table as string;
  const byId = (db: Kysely<Schema>, id: string) => on(db).selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst() as Promise<Row | undefined>;

  return {
    async list(db: Kysely<Schema>): Promise<Row[]> {
      return (await on(db).selectFrom(table).selectAll().orderBy('created_at', 'desc').orderBy('id').execute()) as Row[];
    },

    /** A new token; `secret` is its only copy, never stored or logged. `columns` are the kind's own. */
    async create(
      rt: Runtime,
      actor: Actor,
      input: { name: string; columns?: Omit<Insertable<Row>, keyof ApiTokenRow>; details?: Record<string, unknown>; severity?: AuditSeverity },
      meta: Meta,
    ): Promise<{ row: Row; secret: string }> {
      const secret = `${kind.prefix}${newSecretToken()}`;
      const id = newId();
      await rt.trail.transaction(actor, async (ctx) => {
        const clash = await on(ctx.db).selectFrom(table).select('id').where('name', '=', input.name).where('revoked_at', 'is', null).executeTakeFirst();
        if (clash) throw conflict(`A ${kind.noun} called “${input.name}” is already in use; revoke it first or choose another name.`, kind.nameTakenCode);
        await on(ctx.db)
          .insertInto(table)
          .values({ ...input.columns, id, name: input.name, token_hash: hashToken(secret), created_at: ctx.clock.now().toISOString(), created_by: actor.name, last_used_at: null, revoked_at: null })
          .execute();
        await ctx.audit.record({ action: kind.audit.created, target: `${table}:${id}`, severity: input.severity ?? 'notice', details: { name: input.name, ...input.details } });
      }, meta);
      return { row: (await byId(rt.db.kysely, id))!, secret };
    },

    /** Stops a token working at once; revoking twice changes nothing. */
    async revoke(rt: Runtime, actor: Actor, id: string, meta: Meta): Promise<Row> {
      await rt.trail.transaction(actor, async (ctx) => {
        const row = await byId(ctx.db, id);
        if (!row) throw notFound(`There is no such ${kind.noun}.`);
        if (row.revoked_at) return;
        await on(ctx.db).updateTable(table).set({ revoked_at: ctx.clock.now().toISOString() }).where('id', '=', id).execute();
        await ctx.audit.record({ action: kind.audit.revoked, target: `${table}:${id}`, severity: 'notice', details: { name: row.name } });
      }, meta);
      return (await byId(rt.db.kysely, id))!;
    },

    /** The token's row if `secret` is a token of this kind that is not revoked; its last use noted at most once a minute. */
    async authenticate(db: Kysely<Schema>, clock: Clock, secret: string): Promise<Row | undefined> {
      if (!secret.startsWith(kind.prefix) || secret.length > 200) return undefined;
      const row = (await on(db).selectFrom(table).selectAll().where('token_hash', '=', hashToken(secret)).where('revoked_at', 'is', null).executeTakeFirst()) as Row | undefined;
      if (!row) return undefined;
      const now = clock.now();
      if (!row.last_used_at || now.getTime() - Date.parse(row.last_used_at) >= 60_000) {
        await on(db).updateTable(table).set({ last_used_at: now.toISOString() }).where('id', '=', row.id).execute();
      }
      return row;
    },
  };
}
