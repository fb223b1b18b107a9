import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './cli.js';

/**
 * The UT1 lists for tests. The full snapshot lives beside the project (`../shared/data/ut1`, see
 * the brief); a checkout elsewhere finds it through GATEHOUSE_TEST_UT1 or the workplace path. A
 * small sample (a few categories, cut down; CC BY-SA 4.0, UT1 / Université Toulouse Capitole) is
 * kept in test/fixtures/ut1-sample for tests that need only some real names.
 */
export const UT1_SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ut1-sample');

export function fullUt1(): string {
  const candidates = [process.env.GATEHOUSE_TEST_UT1, path.resolve(ROOT, '..', 'shared', 'data', 'ut1'), '/work/shared/data/ut1'].filter((c): c is string => Boolean(c));
  const found = candidates.find((c) => existsSync(path.join(c, 'global_usage')));
  if (!found) throw new Error(`The UT1 lists are not found (looked in ${candidates.join(', ')}); set GATEHOUSE_TEST_UT1 to the ut1 folder.`);
  return found;
}
