import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, type TestDatabase } from '../helpers/databases.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'imports');
const available = await dialects();

for (const dialect of available) {
  describe(`gatehouse import (${dialect})`, () => {
    let test: TestDatabase;
    afterEach(async () => {
      await test?.drop();
    });
    const env = () => ({ GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url });
    const imported = async () => {
      const db = await test.open();
      try {
        return (await db.kysely.selectFrom('account').select(['username', 'source']).where('source', '!=', 'manual').orderBy('username').execute()).map((a) => a.username);
      } finally {
        await db.close();
      }
    };

    it('AC-12 a dry run changes nothing and reports bad rows with line numbers (exit 2); --commit imports the good rows (still exit 2)', async () => {
      test = await createTestDatabase(dialect);
      const file = path.join(FIXTURES, 'people-with-errors.csv');
      const dry = await runCli(['import', 'csv', file], env());
      expect(dry.code, dry.stderr).toBe(2);
      expect(dry.stdout).toContain('Dry run of people-with-errors.csv (CSV): nothing has been changed.');
      expect(dry.stdout).toContain('people-with-errors.csv line 3: missing username');
      expect(dry.stdout).toContain('people-with-errors.csv line 8: the administrator role is refused');
      expect(dry.stdout).toMatch(/to create\s+2\n/);
      expect(dry.stdout).toContain('Run again with --commit to import.');
      expect(dry.stderr).toBe(''); // no progress bar when standard error is not a terminal
      expect(await imported()).toEqual([]);

      const commit = await runCli(['import', 'csv', file, '--commit'], env());
      expect(commit.code, commit.stderr).toBe(2);
      expect(commit.stdout).toMatch(/created\s+2\n/);
      expect(await imported()).toEqual(['abrown', 'mnash']);
    });

    it('AC-12 a clean file exits 0, --map and --role set the columns and the role, --json prints the plan; errors exit 1', async () => {
      test = await createTestDatabase(dialect);
      const sds = await runCli(['import', 'sds', path.join(FIXTURES, 'sds'), '--commit'], env());
      expect(sds.code, sds.stderr).toBe(0);
      expect(sds.stdout).toContain('Imported users.csv, roles.csv, classes.csv, enrollments.csv (School Data Sync v2.1).');
      expect(sds.stdout).toContain('users.csv has a password column: it was not read.');
      expect(await imported()).toEqual(['awhite', 'bblack', 'cgrey', 'mteach', 'phead', 'taide']);

      const again = await runCli(['import', 'sds', path.join(FIXTURES, 'sds'), '--json'], env());
      expect(again.code, again.stderr).toBe(0);
      const plan = JSON.parse(again.stdout);
      expect(plan).toMatchObject({ committed: false, source: 'sds', counts: { created: 0, unchanged: 6, bad: 0 } });

      // Without a role column, --role gives everyone theirs; --map names the username column.
      const file = path.join(FIXTURES, 'people.csv');
      const mapped = await runCli(['import', 'csv', file, '--map', 'role=', '--map', 'username=Admission number', '--role', 'staff', '--json'], env());
      expect(mapped.code, mapped.stderr).toBe(0);
      const mappedPlan = JSON.parse(mapped.stdout);
      expect(mappedPlan.mapping).toMatchObject({ username: 'Admission number', givenName: 'First name' });
      expect(mappedPlan.mapping.role).toBeUndefined();
      expect(mappedPlan.created).toHaveLength(6);
      expect(mappedPlan.created[0]).toMatchObject({ username: 'a1001', displayName: 'Amelia Brown', role: 'staff' });

      const noRole = await runCli(['import', 'csv', file, '--map', 'role='], env());
      expect(noRole.code).toBe(1);
      expect(noRole.stderr).toContain('has no role column: choose the role of the people in it');
      const missing = await runCli(['import', 'csv', path.join(FIXTURES, 'nope.csv')], env());
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/gatehouse: cannot read .*nope.csv \(ENOENT\)/);
      const badMap = await runCli(['import', 'csv', file, '--map', 'shoeSize=Year'], env());
      expect(badMap.code).toBe(1);
      expect(badMap.stderr).toContain('"shoeSize" is not a field');
    });
  });
}
