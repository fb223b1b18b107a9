import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { systemActor } from '../../src/core/context.js';
import { createAccount } from '../../src/identity/service.js';
import { loadConfig, type Config } from '../../src/core/config.js';
import { ManualClock } from '../../src/core/clock.js';
import { totpNow } from '../../src/identity/totp.js';
import { createLogger } from '../../src/core/logger.js';
import { buildApp, type App } from '../../src/http/app.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { SetupGate } from '../../src/school/setup-gate.js';
import type { DialectName } from '../../src/db/dialect.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

/** Collects every log line so tests can assert that no secret was written. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export function testConfig(test: TestDatabase, overrides: Partial<Config> = {}): Config {
  const { config } = loadConfig({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url });
  return { ...config, ...overrides };
}

export interface TestApp {
  clock: ManualClock;
  app: App;
  runtime: Runtime;
  gate: SetupGate;
  logs: LogCapture;
  test: TestDatabase;
  close(): Promise<void>;
}

/** A whole app on a fresh database, driven with app.inject (no port). */
export async function startTestApp(dialect: DialectName, options: { clock?: ManualClock; config?: Partial<Config>; database?: TestDatabase } = {}): Promise<TestApp> {
  const test = options.database ?? (await createTestDatabase(dialect));
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);
  const config = testConfig(test, options.config);
  // A clock that moves only when told, so TOTP codes, expiry and lockout windows are exact.
  const clock = options.clock ?? new ManualClock('2026-09-07T08:00:00.000Z');
  const runtime = await openRuntime(config, { logger, signing: 'create', clock, recordProfile: true });
  const gate = new SetupGate(config.dataDir);
  const app = await buildApp({ runtime, setupGate: gate, webRoot: undefined });
  await app.ready();
  return {
    clock,
    app,
    runtime,
    gate,
    logs,
    test,
    async close() {
      await app.close();
      await runtime.close();
      await test.drop();
    },
  };
}

/**
 * Stops the app and its runtime as a server restart would, keeping the database and the data
 * folder, and starts a new one on them (same clock): for what happens at start.
 */
export async function restartTestApp(t: TestApp, options: { config?: Partial<Config> } = {}): Promise<TestApp> {
  await t.app.close();
  await t.runtime.close();
  return startTestApp(t.test.dialect, { clock: t.clock, database: t.test, ...options });
}

export const ADMIN_PASSWORD = 'Correct-Horse-Battery-Staple-42';

/** The master account's authenticator secret, per test app, for signing in again. */
export const masterSecrets = new WeakMap<TestApp, string>();

/** Runs first-time setup through the API; returns the administrator's session. */
export async function setUpSchool(t: TestApp, school = 'Springfield Primary'): Promise<Session> {
  const token = new URL(t.gate.open('http://gatehouse.test')).hash.replace('#token=', '');
  const response = await t.app.inject({
    method: 'POST',
    url: '/api/setup',
    payload: { token, school: { name: school, urn: '123456' }, administrator: { username: 'master', displayName: 'Master Administrator', email: 'it@school.example', password: ADMIN_PASSWORD } },
  });
  if (response.statusCode !== 201) throw new Error(`setup failed: ${response.statusCode} ${response.body}`);
  const session = await signIn(t, 'master', ADMIN_PASSWORD);
  masterSecrets.set(t, session.totpSecret!);
  return session;
}

export interface Session {
  cookie: string;
  csrf: string;
  headers: Record<string, string>;
  /** The authenticator-app secret, once the account has one. */
  totpSecret?: string;
  recoveryCodes?: string[];
}

interface OutcomeBody {
  status: 'pending' | 'signed_in';
  csrfToken: string;
  step?: { step: string; secret?: string; aup?: { id: string } };
  recoveryCodes?: string[];
  error?: { code: string; message: string };
}

/**
 * Signs in through every step the account needs: a TOTP code (the clock moves on 30 seconds
 * first, as each code is accepted once), the AUP, MFA enrolment. A forced password change is not
 * done here: tests of it drive that step themselves.
 */
export async function signIn(t: TestApp, username: string, password: string, options: { totpSecret?: string; ip?: string } = {}): Promise<Session> {
  let response = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password }, remoteAddress: options.ip ?? '127.0.0.1' });
  if (response.statusCode !== 200) throw new Error(`sign-in failed: ${response.statusCode} ${response.body}`);
  let totpSecret = options.totpSecret;
  let recoveryCodes: string[] | undefined;
  for (let i = 0; i < 6; i++) {
    const body = response.json() as OutcomeBody;
    if (body.status === 'signed_in') {
      const cookie = response.cookies.find((c) => c.name === '__Host-gatehouse-session')!;
      recoveryCodes = body.recoveryCodes ?? recoveryCodes;
      const jar = `${cookie.name}=${cookie.value}`;
      return { cookie: jar, csrf: body.csrfToken, headers: { cookie: jar, 'x-csrf-token': body.csrfToken }, totpSecret, recoveryCodes };
    }
    const pending = response.cookies.find((c) => c.name === '__Host-gatehouse-signin')!;
    const headers = { cookie: `${pending.name}=${pending.value}`, 'x-csrf-token': body.csrfToken };
    const step = body.step!;
    if (step.step === 'mfa') {
      if (!totpSecret) throw new Error(`${username} needs a second factor, and the test gave no TOTP secret`);
      t.clock.advance(30_000);
      response = await t.app.inject({ method: 'POST', url: '/api/sign-in/second-factor', headers, payload: { code: await totpNow(totpSecret, t.clock) } });
    } else if (step.step === 'mfa_enrol') {
      totpSecret = step.secret!;
      response = await t.app.inject({ method: 'POST', url: '/api/sign-in/mfa-enrolment', headers, payload: { code: await totpNow(totpSecret, t.clock) } });
    } else if (step.step === 'aup') {
      response = await t.app.inject({ method: 'POST', url: '/api/sign-in/aup', headers, payload: { versionId: step.aup!.id } });
    } else {
      throw new Error(`sign-in stopped at step ${step.step}`);
    }
    if (response.statusCode !== 200) throw new Error(`sign-in step ${step.step} failed: ${response.statusCode} ${response.body}`);
  }
  throw new Error('sign-in did not finish');
}

/**
 * Confirms it is still the session's owner (POST /api/account/reauthenticate), as the console's
 * prompt does before a high-impact change: the password, and a fresh code (the clock moves on 30
 * seconds first, as each code is accepted once) when the account has an authenticator.
 */
export async function reauthenticate(t: TestApp, session: Session, password = ADMIN_PASSWORD, totpSecret = session.totpSecret): Promise<void> {
  let code: string | undefined;
  if (totpSecret) {
    t.clock.advance(30_000);
    code = await totpNow(totpSecret, t.clock);
  }
  const response = await t.app.inject({ method: 'POST', url: '/api/account/reauthenticate', headers: session.headers, payload: { password, ...(code ? { code } : {}) } });
  if (response.statusCode !== 204) throw new Error(`re-authentication failed: ${response.statusCode} ${response.body}`);
}

/**
 * A school profile file whose filtering changes apply at once (`governance.changeControl: off`), for
 * tests of the filter itself rather than of change control (test/governance/changes.test.ts).
 */
export function profileWithoutChangeControl(folder = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-profile-'))): string {
  const file = path.join(folder, 'school-profile.yaml');
  writeFileSync(file, 'name: Changes apply at once\nextends: ncsc\ngovernance:\n  changeControl: "off"\n');
  return file;
}

const APPROVER_PASSWORD = 'Amber-Quarry-Thimble-58';
const approvers = new WeakMap<TestApp, Session>();

/**
 * FI-06: approves a filtering change request as a second person, a senior leader (made once per
 * test app, signed in again when its session has expired). Give the 202 answer of a filtering route,
 * or a change request's id. Returns the approved change request; throws unless it was approved.
 */
export async function approveAsSeniorLeader(t: TestApp, asked: string | { statusCode: number; body: string }): Promise<{ id: string; state: string; secret?: string; [key: string]: unknown }> {
  let id: string;
  if (typeof asked === 'string') id = asked;
  else {
    const changeRequest = asked.statusCode === 202 ? (JSON.parse(asked.body) as { changeRequest?: { id: string } }).changeRequest : undefined;
    if (!changeRequest) throw new Error(`not a change request: ${asked.statusCode} ${asked.body}`);
    id = changeRequest.id;
  }
  let session = approvers.get(t);
  if (!session) {
    const hash = await t.runtime.hasher.hash(APPROVER_PASSWORD);
    await t.runtime.trail.transaction(systemActor('test'), (ctx) => createAccount(ctx, { username: 'approver', displayName: 'Ann Approver (senior leader)', email: 'approver@school.example', role: 'senior_leader', passwordHash: hash }));
    session = await signIn(t, 'approver', APPROVER_PASSWORD);
    approvers.set(t, session);
  }
  let response = await t.app.inject({ method: 'POST', url: `/api/governance/changes/${id}/approve`, headers: session.headers, payload: {} });
  if (response.statusCode === 401) {
    session = await signIn(t, 'approver', APPROVER_PASSWORD, { totpSecret: session.totpSecret });
    approvers.set(t, session);
    response = await t.app.inject({ method: 'POST', url: `/api/governance/changes/${id}/approve`, headers: session.headers, payload: {} });
  }
  if (response.statusCode !== 200) throw new Error(`approval failed: ${response.statusCode} ${response.body}`);
  return response.json();
}
