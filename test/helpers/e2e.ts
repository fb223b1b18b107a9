import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Locator, Page, ViewportSize } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { SCREENSHOTS, launchChromium } from './browser.js';
import { ROOT } from './cli.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { TEST_PASSWORD, freshCode, startServerProcess, type ServerProcess } from './server-process.js';

/**
 * What every browser test (test/e2e) shares: the built server on a fresh SQLite database, Debian's
 * Chromium, pages that record console errors and page errors, screenshots named for the file, and
 * the check that nothing unexpected was recorded.
 *
 * Call it inside `describe`: it starts everything in a `beforeAll` (before the file's own) and
 * tears it down in an `afterAll`. Its pages see the console as a UK school does: British English
 * (dates day first, 24-hour times) on London time.
 */
export interface BrowserSuiteOptions {
  /** The start of every screenshot's file name, e.g. 'scim-' for test-results/screenshots/scim-*.png. */
  prefix: string;
  /** Console errors matching this are answers the test means to provoke (e.g. /status of (400|401)/); any other is a problem. Default: none. */
  allow?: RegExp;
  /**
   * Server settings besides the data folder, the database and the host (127.0.0.1). A function is
   * called once the test database exists, before the server starts (e.g. to write a profile into its data folder).
   */
  env?: Record<string, string> | ((test: TestDatabase) => Record<string, string>);
}

export interface BrowserSuite {
  readonly test: TestDatabase;
  readonly server: ServerProcess;
  readonly browser: Browser;
  /**
   * A page in a context of its own (closing the page closes it), at this size, British. Its page
   * errors, and its console errors that `allow` (the suite's unless given) does not match, are
   * recorded for `expectNoProblems`.
   */
  page(viewport: ViewportSize, options?: { allow?: RegExp }): Promise<Page>;
  /** A screenshot of the whole page, or of one element, as <prefix><name>.png. */
  shot(target: Page | Locator, name: string): Promise<void>;
  /** Signs in from the console's sign-in page, with the second factor when a TOTP secret is given. */
  signIn(page: Page, username: string, options?: { password?: string; totpSecret?: string }): Promise<void>;
  /** Fails with what was recorded if any page opened in this test recorded a problem. */
  expectNoProblems(): void;
}

/** How a UK school sees the console: what scripts format, and the clock. */
export const BRITISH = { locale: 'en-GB', timezoneId: 'Europe/London' } as const;
/**
 * Chromium draws date and time fields in its own interface language, not the context's locale, and
 * Debian's package ships en-US only (09/01/2026, 3:30 PM). With this, the fields follow the page's
 * lang (the console's is en-GB) and read 01/09/2026, 15:30, as in a UK school's browser.
 */
const FIELDS_FOLLOW_PAGE_LANGUAGE = '--enable-blink-features=LangAttributeAwareFormControlUI';

const NOTHING = /(?!)/;

export function browserSuite(options: BrowserSuiteOptions): BrowserSuite {
  let test: TestDatabase | undefined;
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let problems: string[] = [];
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the browser suite's ${what} is not started: use it inside a test or a later beforeAll`);
    return value;
  };

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'main.js')) || !existsSync(path.join(ROOT, 'web', 'dist', 'index.html'))) {
      throw new Error('The server and console are not built: run `npm run build` (npm test does it first).');
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    test = await createTestDatabase('sqlite');
    const env = typeof options.env === 'function' ? options.env(test) : options.env;
    server = await startServerProcess({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url, GATEHOUSE_HOST: '127.0.0.1', ...env });
    browser = await launchChromium([FIELDS_FOLLOW_PAGE_LANGUAGE]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await test?.drop();
  });
  beforeEach(() => {
    problems = [];
  });

  const suite: BrowserSuite = {
    get test() {
      return started(test, 'database');
    },
    get server() {
      return started(server, 'server');
    },
    get browser() {
      return started(browser, 'browser');
    },
    async page(viewport, pageOptions = {}) {
      const page = await suite.browser.newPage({ viewport, ...BRITISH });
      const allow = pageOptions.allow ?? options.allow ?? NOTHING;
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && !allow.test(m.text())) problems.push(`console: ${m.text()}`);
      });
      return page;
    },
    async shot(target, name) {
      const file = path.join(SCREENSHOTS, `${options.prefix}${name}.png`);
      if ('mainFrame' in target) await target.screenshot({ path: file, fullPage: true });
      else await target.screenshot({ path: file });
    },
    async signIn(page, username, { password = TEST_PASSWORD, totpSecret } = {}) {
      await page.goto(suite.server.url);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      if (totpSecret === undefined) return;
      await page.getByRole('heading', { name: 'Check it’s you' }).waitFor();
      await page.getByLabel('Code').fill(await freshCode(totpSecret));
      await page.getByRole('button', { name: 'Continue' }).click();
    },
    expectNoProblems() {
      expect(problems, problems.join('\n')).toEqual([]);
    },
  };
  return suite;
}
