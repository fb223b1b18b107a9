/**
 * One error family for everything a user can be told. `code` is stable (clients switch on it),
 * `status` is the HTTP status, `message` is fit to show a person. Anything that is not a
 * GatehouseError is a bug: the HTTP layer turns it into a 500 with a request id and logs details.
 */
export class GatehouseError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, status: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'GatehouseError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new GatehouseError('bad_request', 400, message, details);

export const validationFailed = (message: string, details?: Record<string, unknown>) =>
  new GatehouseError('validation_failed', 400, message, details);

export const unauthenticated = (message = 'Please sign in.') =>
  new GatehouseError('unauthenticated', 401, message);

export const forbidden = (message = 'You do not have permission to do that.') =>
  new GatehouseError('forbidden', 403, message);

export const notFound = (message = 'Not found.') => new GatehouseError('not_found', 404, message);

export const conflict = (message: string, code = 'conflict') => new GatehouseError(code, 409, message);

export const gone = (message: string, code = 'gone') => new GatehouseError(code, 410, message);

export const unavailable = (message: string, code = 'unavailable') =>
  new GatehouseError(code, 503, message);

/** A problem with start-up configuration: printed to the operator, never reaches a client. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
