import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/core/config.js';
import type { Clock } from '../../src/core/clock.js';
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
  app: App;
  runtime: Runtime;
  gate: SetupGate;
  logs: LogCapture;
  test: TestDatabase;
  close(): Promise<void>;
}

/** A whole app on a fresh database, driven with app.inject (no port). */
export async function startTestApp(dialect: DialectName, options: { clock?: Clock; config?: Partial<Config> } = {}): Promise<TestApp> {
  const test = await createTestDatabase(dialect);
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);
  const config = testConfig(test, options.config);
  const runtime = await openRuntime(config, { logger, signing: 'create', clock: options.clock });
  const gate = new SetupGate(config.dataDir);
  const app = await buildApp({ runtime, setupGate: gate, webRoot: undefined });
  await app.ready();
  return {
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

export const ADMIN_PASSWORD = 'Correct-Horse-Battery-Staple-42';

/** Runs first-time setup through the API; returns the administrator's session. */
export async function setUpSchool(t: TestApp, school = 'Springfield Primary'): Promise<Session> {
  const token = new URL(t.gate.open('http://gatehouse.test')).hash.replace('#token=', '');
  const response = await t.app.inject({
    method: 'POST',
    url: '/api/setup',
    payload: { token, school: { name: school, urn: '123456' }, administrator: { username: 'master', displayName: 'Master Administrator', email: 'it@school.example', password: ADMIN_PASSWORD } },
  });
  if (response.statusCode !== 201) throw new Error(`setup failed: ${response.statusCode} ${response.body}`);
  return signIn(t, 'master', ADMIN_PASSWORD);
}

export interface Session {
  cookie: string;
  csrf: string;
  headers: Record<string, string>;
}

export async function signIn(t: TestApp, username: string, password: string): Promise<Session> {
  const response = await t.app.inject({ method: 'POST', url: '/api/session', payload: { username, password } });
  if (response.statusCode !== 200) throw new Error(`sign-in failed: ${response.statusCode} ${response.body}`);
  const cookie = response.cookies.find((c) => c.name === '__Host-gatehouse-session');
  if (!cookie) throw new Error('no session cookie');
  const csrf = (response.json() as { csrfToken: string }).csrfToken;
  return { cookie: `${cookie.name}=${cookie.value}`, csrf, headers: { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf-token': csrf } };
}
