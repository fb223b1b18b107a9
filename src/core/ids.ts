import { randomBytes, randomUUID, createHash } from 'node:crypto';

/** Identifiers for rows: random UUIDs, opaque to users. */
export const newId = (): string => randomUUID();

/** An unguessable bearer secret (sessions, setup links): 256 bits, URL-safe. */
export const newSecretToken = (): string => randomBytes(32).toString('base64url');

/** What we store instead of a bearer secret: a lookup key that does not reveal it. */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
