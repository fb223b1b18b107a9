import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { appliedMigrations, migrate, openDatabase } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { ROOT } from '../helpers/cli.js';
import { createTestDatabase, dialects } from '../helpers/databases.js';

/**
 * Released migrations are never edited: their checksums are pinned here. A new migration is a new
 * file and a new line below; changing an old one fails this test.
 */
const RELEASED: Record<string, string> = {
  '0001-foundation.ts': 'efc32983',
  '0002-sign-in.ts': '8db861f1',
  '0003-passkey-challenges.ts': '6d710d12',
  '0004-directory.ts': '1a989f7e',
  // (new: issue 5, filtering; pinned when added — change it here only until issue 5 is released)
  '0005-filtering.ts': 'd6e2c6ee',
  // (new: issue 10, finding 8, SCIM grants, and the secrets hardening; pinned when added — change them here only until issue 10 is released)
  '0006-scim-grants.ts': '9310a3f3',
  '0007-secrets-hardening.ts': '04761465',
  // (issue 10, finding 11: the enrolment secret kept by the server; renumber if another 0008/0009 lands first)
  '0009-session-totp-enrolment.ts': '5b4b33f1',
  // (issue 12: the compliance view's sign-offs and history)
  '0010-compliance.ts': '77e600fb',
  // (issue 11: the register of filtering checks and the issued termly reports)
  '0015-monitoring-reports.ts': 'ab230bac',
  // (issue 12: versions of the written policy generated from the configuration)
  '0018-policy-document.ts': '747d58a3',
  // (issue 11: change control, filtering changes approved by a second person, src/governance/)
  '0011-change-control.ts': '381020fe',
  // (issue 11: filter exceptions: allowances, filter-off, quarantine, and the review of unblock decisions)
  '0012-filter-exceptions.ts': 'dd66797e',
  // (issue 11: safeguarding alerts, their lifecycle and the security-event reader's place)
  '0013-alerts.ts': '5e114647',
  // (issue 11: incidents and breaches: concerns, the incident register and timeline, breach reminders)
  '0014-incidents.ts': 'a92e8c8e',
  // (issue 12: the equipment, disposal, software and licence, removable media and device health registers)
  '0016-equipment-registers.ts': '34ed39ec',
  // (issue 12: the backups register with check-ins, test restores, the continuity plan; governance and risk registers)
  '0017-backups-governance.ts': 'd83d9209',
  // (issue 12: governance registers: recommendation status, certificate references, filtering-review triggers)
  '0019-governance-registers.ts': 'ffbcd3fe',
  // (issue 12: the continuity plan's contacts, change note and history, BK-05)
  '0020-backups-more.ts': 'feda1eb9',
};

const available = await dialects();

describe('migrations', () => {
  it('released migration files are unchanged', () => {
    const dir = path.join(ROOT, 'src', 'db', 'migrations');
    const files = readdirSync(dir).filter((f) => /^\d{4}-.*\.ts$/.test(f));
    for (const file of files) {
      const sum = createHash('sha256').update(readFileSync(path.join(dir, file))).digest('hex').slice(0, 8);
      expect({ file, sum }).toEqual({ file, sum: RELEASED[file] ?? `(new: add ${sum} to RELEASED when released)` });
    }
    expect(files.map((f) => f.replace(/\.ts$/, ''))).toEqual(Object.keys(migrations));
  });

  for (const dialect of available) {
    it(`apply once and are recorded, on ${dialect}`, async () => {
      const test = await createTestDatabase(dialect);
      const db = await test.open();
      try {
        expect(await migrate(db)).toEqual(Object.keys(migrations));
        expect(await migrate(db)).toEqual([]);
        expect(await appliedMigrations(db)).toEqual(Object.keys(migrations));
      } finally {
        await db.close();
        await test.drop();
      }
    });

    it(`refuse a database written by a newer Gatehouse, on ${dialect}`, async () => {
      const test = await createTestDatabase(dialect);
      const db = await test.open();
      try {
        await migrate(db);
        await sql`INSERT INTO gatehouse_migration (name, timestamp) VALUES ('9999-from-the-future', '2030-01-01T00:00:00.000Z')`.execute(db.kysely);
        await expect(migrate(db)).rejects.toThrow(/written by a newer Gatehouse \(it has migration 9999-from-the-future\)/);
      } finally {
        await db.close();
        await test.drop();
      }
    });

    if (dialect === 'sqlite') {
      it('open SQLite with WAL, foreign keys, a busy timeout and normal sync (full when configured)', async () => {
        const test = await createTestDatabase('sqlite');
        const db = await test.open();
        try {
          expect(db.sqlite!.pragma('journal_mode', { simple: true })).toBe('wal');
          expect(db.sqlite!.pragma('foreign_keys', { simple: true })).toBe(1);
          expect(db.sqlite!.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(5000);
          expect(db.sqlite!.pragma('synchronous', { simple: true })).toBe(1);
          const full = await openDatabase({ databaseUrl: test.url, sqliteSynchronous: 'full' });
          expect(full.sqlite!.pragma('synchronous', { simple: true })).toBe(2);
          await full.close();
        } finally {
          await db.close();
          await test.drop();
        }
      });
    }
  }
});
