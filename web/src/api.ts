/** The console's only way to the server: JSON over the HTTP API, with the session's CSRF token. */

export interface ApiErrorBody {
  code: string;
  message: string;
  fields?: Array<{ field: string; message: string }>;
  requestId?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
}

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/**
 * High-impact changes (a privileged role, the audit export, a list's location; a second factor) need
 * the person to have confirmed it is them in the last few minutes: the server answers 403
 * `reauthentication_required`. The console's one prompt (ReauthPrompt) registers here; `api` asks
 * it, and when the person confirms, sends the same request once more.
 */
export type ReauthHandler = (refusal: ApiError) => Promise<boolean>;
let reauthHandler: ReauthHandler | null = null;

export function setReauthHandler(handler: ReauthHandler | null): void {
  reauthHandler = handler;
}

export const REAUTH_PATH = '/api/account/reauthenticate';

/** `emergency`: a filtering change that only blocks more, in force at once and awaiting approval (FI-06, `x-change-emergency`). */
export interface ApiOptions {
  emergency?: boolean;
}

export async function api<T>(method: string, path: string, body?: unknown, options: ApiOptions = {}): Promise<T> {
  try {
    return await send<T>(method, path, body, options);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 403 && error.body.code === 'reauthentication_required') || !reauthHandler || path === REAUTH_PATH) throw error;
    if (!(await reauthHandler(error))) {
      throw new ApiError(403, { code: 'reauthentication_cancelled', message: 'Not done: this needs you to confirm it is you first.' });
    }
    return send<T>(method, path, body, options);
  }
}

async function send<T>(method: string, path: string, body: unknown, options: ApiOptions): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.emergency) headers['x-change-emergency'] = 'true';
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, { code: 'network', message: 'The server cannot be reached. Check the connection and try again.' });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: fall through
  }
  if (!response.ok) {
    const error = (data as { error?: ApiErrorBody } | undefined)?.error;
    throw new ApiError(response.status, error ?? { code: 'http_error', message: `The server answered ${response.status}.` });
  }
  // FI-06: under change control a filtering edit is not applied but sent for approval (202 with the
  // request). Every page that edits the filter tells the person so, through the console's notice.
  // An emergency one is in force at once (200), awaiting approval: said so too.
  const pending = (data as { changeRequest?: ChangeRequestNotice } | undefined)?.changeRequest;
  if (pending) window.dispatchEvent(new CustomEvent<ChangeRequestNotice>(CHANGE_REQUESTED_EVENT, { detail: pending }));
  return data as T;
}

export const CHANGE_REQUESTED_EVENT = 'gatehouse:change-requested';
export interface ChangeRequestNotice {
  id: string;
  summary: string;
  state?: string;
}

export interface Info {
  school: { name: string } | null;
  setupRequired: boolean;
  version: string;
}

export interface Account {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  isBreakGlass: boolean;
  expiresAt: string;
  roleLabel: string;
  permissions: string[];
  mfaEnrolled: boolean;
  passwordExpiresAt: string | null;
}

export interface SessionResponse {
  account: Account;
  csrfToken: string;
}

export interface Rule {
  id: string;
  requirement: string;
  label: string;
  ok: boolean;
  advisory?: boolean;
  detail?: string;
}

export interface AupVersion {
  id: string;
  audience: string;
  version: number;
  title: string;
  body: string;
  publishedAt: string;
}

export type Step =
  | { step: 'mfa'; methods: string[] }
  | { step: 'aup'; aup: AupVersion }
  | { step: 'change_password'; reason: 'temporary' | 'expired' | 'required'; rules: Rule[] }
  | { step: 'mfa_enrol'; secret: string; uri: string; qrSvg: string; reason: string };

export interface Outcome {
  status: 'pending' | 'signed_in';
  csrfToken: string;
  banner: string | null;
  step?: Step;
  username?: string;
  account?: Account;
  passwordReminder?: string | null;
  recoveryCodes?: string[];
}

/** The server's QR code (SVG text) as an image address: no markup from the network goes into the page. */
export const svgDataUrl = (svg: string) => `data:image/svg+xml;base64,${btoa(svg)}`;

export interface Readiness {
  status: string;
  database?: string;
}

export async function readiness(): Promise<{ ok: boolean; text: string }> {
  try {
    const r = await fetch('/readyz', { headers: { accept: 'application/json' } });
    const body = (await r.json()) as Readiness & { error?: ApiErrorBody };
    if (r.ok) return { ok: true, text: `Ready (${body.database === 'postgres' ? 'PostgreSQL' : 'SQLite'})` };
    return { ok: false, text: body.error?.message ?? `Not ready (${r.status})` };
  } catch {
    return { ok: false, text: 'The server cannot be reached' };
  }
}
