import type { FastifyRequest } from 'fastify';
import type { Actor } from '../core/context.js';
import { unauthenticated } from '../core/errors.js';

/** The signed-in account as the audit trail's actor. Only for routes that require a session. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.auth) throw unauthenticated();
  return { id: request.auth.accountId, name: request.auth.username, role: request.auth.role };
}

export function metaOf(request: FastifyRequest): { ip: string; requestId: string } {
  return { ip: request.ip, requestId: request.id };
}
