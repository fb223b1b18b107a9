import { GatehouseError } from '../core/errors.js';
import type { App } from './app.js';

/**
 * No text Gatehouse keeps may hold a NUL character: PostgreSQL refuses one in any text value, so a
 * NUL in a path parameter, query or body would otherwise surface as a 500 from deep in a store (found
 * by fuzzing the SCIM parser; every route had the same edge). One check, after authentication and
 * before validation, answers 400 for every route. SCIM answers in its own error format and checks
 * its attributes itself, so it is left to do that; so are uploaded import files, which the importer
 * judges row by row.
 */
export function registerInputGuard(app: App): void {
  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.config.access === 'scim') return;
    let body = request.body;
    if (request.routeOptions.config.bodyFilesJudgedByRoute && body && typeof body === 'object' && 'files' in body) {
      // Uploaded files: the importer reports a row with a NUL as bad and imports the rest.
      const { files: _files, ...rest } = body as Record<string, unknown>;
      body = rest;
    }
    const where = nulIn(request.params, 'path') ?? nulIn(request.query, 'query') ?? nulIn(body, 'body');
    if (where) {
      throw new GatehouseError('validation_failed', 400, `${where} contains a NUL character, which Gatehouse does not keep. Remove it and try again.`, { fields: [{ field: where, message: 'contains a NUL character' }] });
    }
  });
}

/** The first field holding a NUL, as "body.name", or null. Walks objects and arrays to a fixed depth. */
function nulIn(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (depth > 8 || value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulIn(value[i], `${path}.${i}`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  if (Buffer.isBuffer(value)) return null;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key.includes('\u0000')) return `${path}.${key.replace(/\u0000/g, '\\0')}`;
    const found = nulIn(inner, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}
