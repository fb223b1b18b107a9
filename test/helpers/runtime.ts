import { Writable } from 'node:stream';
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
