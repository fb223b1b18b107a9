import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { generate } from 'otplib';
import { GATEHOUSE_BIN, ROOT, childEnv } from './cli.js';

/**
 * A real `gatehouse serve` in its own process, on a free port: for the tests that must kill,
 * signal or restart the server, and for the browser tests.
 */
export interface ServerProcess {
  url: string;
  setupLink: string | null;
  child: ChildProcess;
  logs: string[];
  stderr: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface ServerProcessOptions {
  timeoutMs?: number;
}

export async function startServerProcess(env: Record<string, string>, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  // The built command, as a school runs it (see GATEHOUSE_BIN).
  const args = [GATEHOUSE_BIN, 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: childEnv({ GATEHOUSE_PORT: '0', GATEHOUSE_LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let stderr = '';
  let buffer = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const ready = new Promise<{ url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time.\nstdout:\n${logs.join('\n')}\nstderr:\n${stderr}`)), options.timeoutMs ?? 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'Gatehouse is listening' && entry.url) {
            clearTimeout(timer);
            resolve({ url: entry.url });
          }
        } catch {
          // not JSON
        }
        newline = buffer.indexOf('\n');
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready.\nstdout:\n${logs.join('\n')}\nstderr:\n${stderr}`));
    });
  });
  const { url } = await ready;
  // The setup link is printed on stderr just before the "listening" line.
  await new Promise((r) => setTimeout(r, 50));
  const setupLink = /(https?:\/\/\S+\/setup#token=[A-Za-z0-9_-]+)/.exec(stderr)?.[1] ?? null;
  return {
    url,
    setupLink,
    child,
    logs,
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export interface HttpSession {
  cookie: string;
  csrf: string;
}

/** fetch with the session cookie and CSRF header a browser would send. */
export async function call(base: string, method: string, url: string, session?: HttpSession, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (session) {
    headers.cookie = session.cookie;
    headers['x-csrf-token'] = session.csrf;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(new URL(url, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

export const TEST_PASSWORD = 'Correct-Horse-Battery-Staple-42';

export interface HttpSessionWithSecret extends HttpSession {
  totpSecret: string;
}

/** Setup through the printed link, then sign in as the master administrator (enrolling MFA). */
export async function setupAndSignIn(server: ServerProcess): Promise<HttpSessionWithSecret> {
  if (!server.setupLink) throw new Error('the server printed no setup link');
  const token = server.setupLink.split('#token=')[1]!;
  const setup = await call(server.url, 'POST', '/api/setup', undefined, {
    token,
    school: { name: 'Springfield Primary' },
    administrator: { username: 'master', displayName: 'Master Administrator', email: null, password: TEST_PASSWORD },
  });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${await setup.text()}`);
  return signInOverHttp(server.url, 'master', TEST_PASSWORD);
}

const lastStepUsed = new Map<string, number>();

/**
 * The code an authenticator shows, for a time step not used before: each code is accepted once,
 * and the server allows one step of drift either way, so the previous step's code (while at least
 * 5 s of the current step remain, so it cannot fall out of the window on its way) and the next
 * step's code work at once; beyond those three, wait for the clock.
 */
export async function freshCode(secret: string): Promise<string> {
  for (;;) {
    const seconds = Date.now() / 1000;
    const now = Math.floor(seconds / 30);
    const earliest = seconds - now * 30 < 25 ? now - 1 : now;
    const step = Math.max(earliest, (lastStepUsed.get(secret) ?? earliest - 1) + 1);
    if (step <= now + 1) {
      lastStepUsed.set(secret, step);
      return generate({ secret, epoch: step * 30 });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Creates an account as an administrator, then signs in as it with the temporary password and
 * changes it to `password`, so the person can sign in normally (e.g. from a browser).
 */
export async function createPersonOverHttp(base: string, admin: HttpSession, person: { username: string; displayName: string; role: string; email?: string | null }, password = TEST_PASSWORD): Promise<{ id: string; session: HttpSessionWithSecret }> {
  let created = await call(base, 'POST', '/api/accounts', admin, { ...person, email: person.email ?? null });
  if (created.status === 403 && 'totpSecret' in admin) {
    // A privileged role needs a recent re-authentication: confirm, as the console's prompt does, and try again.
    const refusal = (await created.json()) as { error: { code: string } };
    if (refusal.error.code !== 'reauthentication_required') throw new Error(`creating ${person.username} failed: ${JSON.stringify(refusal)}`);
    await reauthOverHttp(base, admin as HttpSessionWithSecret);
    created = await call(base, 'POST', '/api/accounts', admin, { ...person, email: person.email ?? null });
  }
  if (created.status !== 201) throw new Error(`creating ${person.username} failed: ${created.status} ${await created.text()}`);
  const body = (await created.json()) as { account: { id: string }; temporaryPassword: string };
  const session = await signInOverHttp(base, person.username, body.temporaryPassword, undefined, password);
  return { id: body.account.id, session };
}

/** Confirms it is still the session's owner (password and a fresh code), before a high-impact change. */
export async function reauthOverHttp(base: string, session: HttpSessionWithSecret, password = TEST_PASSWORD): Promise<void> {
  const response = await call(base, 'POST', '/api/account/reauthenticate', session, { password, ...(session.totpSecret ? { code: await freshCode(session.totpSecret) } : {}) });
  if (response.status !== 204) throw new Error(`re-authentication failed: ${response.status} ${await response.text()}`);
}

export async function signInOverHttp(base: string, username: string, password: string, totpSecret?: string, newPassword?: string): Promise<HttpSessionWithSecret> {
  let response = await call(base, 'POST', '/api/session', undefined, { username, password });
  let secret = totpSecret;
  for (let i = 0; i < 6; i++) {
    if (response.status !== 200) throw new Error(`sign-in failed: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { status: string; csrfToken: string; step?: { step: string; secret?: string; aup?: { id: string } } };
    const cookies = response.headers.getSetCookie();
    if (body.status === 'signed_in') {
      const cookie = cookies.find((c) => c.startsWith('__Host-gatehouse-session='))!.split(';')[0]!;
      return { cookie, csrf: body.csrfToken, totpSecret: secret! };
    }
    const pending = { cookie: cookies.find((c) => c.startsWith('__Host-gatehouse-signin='))!.split(';')[0]!, csrf: body.csrfToken };
    const step = body.step!;
    if (step.step === 'mfa_enrol') {
      secret = step.secret!;
      response = await call(base, 'POST', '/api/sign-in/mfa-enrolment', pending, { code: await freshCode(secret) });
    } else if (step.step === 'mfa') {
      if (!secret) throw new Error(`${username} needs a second factor`);
      response = await call(base, 'POST', '/api/sign-in/second-factor', pending, { code: await freshCode(secret) });
    } else if (step.step === 'aup') {
      response = await call(base, 'POST', '/api/sign-in/aup', pending, { versionId: step.aup!.id });
    } else if (step.step === 'change_password' && newPassword) {
      response = await call(base, 'POST', '/api/sign-in/password', pending, { currentPassword: password, newPassword });
    } else {
      throw new Error(`sign-in stopped at step ${step.step}`);
    }
  }
  throw new Error('sign-in did not finish');
}

const httpApprovers = new Map<string, HttpSessionWithSecret>();

/**
 * FI-06 over HTTP: a filtering change made through its route (answered 202, a change request under
 * the NCSC baseline) is approved by a second person, a senior leader made once per server. Returns
 * the approved change request; an answer that is not a change request (e.g. 201 under
 * `changeControl: off`) is returned as it is, under `applied`.
 */
export async function changeOverHttp(base: string, admin: HttpSessionWithSecret, method: string, url: string, body?: unknown): Promise<{ status: number; state: string; applied?: unknown }> {
  const asked = await call(base, method, url, admin, body);
  const answer = asked.status === 204 ? undefined : ((await asked.json()) as { changeRequest?: { id: string } });
  if (asked.status !== 202 || !answer?.changeRequest) {
    if (asked.status >= 300) throw new Error(`${method} ${url} failed: ${asked.status} ${JSON.stringify(answer)}`);
    return { status: asked.status, state: 'applied', applied: answer };
  }
  let approver = httpApprovers.get(base);
  if (!approver) {
    approver = (await createPersonOverHttp(base, admin, { username: 'approver', displayName: 'Ann Approver', role: 'senior_leader' })).session;
    httpApprovers.set(base, approver);
  }
  const approved = await call(base, 'POST', `/api/governance/changes/${answer.changeRequest.id}/approve`, approver, {});
  const result = (await approved.json()) as { state: string };
  if (approved.status !== 200) throw new Error(`approving ${method} ${url} failed: ${approved.status} ${JSON.stringify(result)}`);
  return { status: approved.status, state: result.state, applied: result };
}
