import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS, canonicalEvent, parseBody, sha256Hex } from '../../src/audit/chain.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { splitNotes } from '../../src/audit/checkpoints.js';
import { loadOrCreateSigner } from '../../src/audit/signing.js';
import { AuditTrail } from '../../src/audit/trail.js';
import { verifyTrail } from '../../src/audit/verify.js';
import { ManualClock } from '../../src/core/clock.js';
import { systemActor } from '../../src/core/context.js';
import type { Database } from '../../src/db/database.js';
import { spawn } from 'node:child_process';
import { ROOT, runCli } from '../helpers/cli.js';
import { dialects, migratedDatabase, type TestDatabase } from '../helpers/databases.js';

/** An attacker with direct database access: switches off the append-only triggers, then edits. */
async function tamper(db: Database, statements: string[]): Promise<void> {
  if (db.dialect === 'sqlite') {
    const h = db.sqlite!;
    for (const t of ['audit_event', 'audit_checkpoint', 'audit_key']) {
      h.exec(`DROP TRIGGER IF EXISTS ${t}_no_update; DROP TRIGGER IF EXISTS ${t}_no_delete;`);
    }
    for (const s of statements) h.exec(s);
    return;
  }
  await db.kysely.transaction().execute(async (trx) => {
    for (const t of ['audit_event', 'audit_checkpoint', 'audit_key']) await sql.raw(`ALTER TABLE ${t} DISABLE TRIGGER USER`).execute(trx);
    for (const s of statements) await sql.raw(s).execute(trx);
    for (const t of ['audit_event', 'audit_checkpoint', 'audit_key']) await sql.raw(`ALTER TABLE ${t} ENABLE TRIGGER USER`).execute(trx);
  });
}

async function appendEvents(trail: AuditTrail, count: number, actor = 'tester'): Promise<void> {
  await trail.transaction(systemActor(actor), async (ctx) => {
    for (let i = 0; i < count; i++) {
      await ctx.audit.record({ action: 'test.event_written', target: `thing:${i}`, details: { n: i, note: `event number ${i}` } });
    }
  });
}

for (const dialect of await dialects()) {
  describe(`audit trail on ${dialect}`, () => {
    let test: TestDatabase;
    let db: Database;
    let cleanup: () => Promise<void>;
    let trail: AuditTrail;
    let clock: ManualClock;

    beforeEach(async () => {
      ({ test, db, cleanup } = await migratedDatabase(dialect));
      clock = new ManualClock('2026-09-01T08:00:00.000Z');
      const { signer } = loadOrCreateSigner(test.dataDir);
      trail = new AuditTrail(db, clock, signer, { checkpointEvery: 10, checkpointMinutes: 60, checkpointLogFile: path.join(test.dataDir, 'checkpoints.log') });
      await trail.start({ timer: false });
    });
    afterEach(async () => {
      await cleanup();
    });

    it('AU-01 writes the event in the same transaction as the change it records', async () => {
      await trail.transaction(systemActor('tester'), async (ctx) => {
        await ctx.db.insertInto('school_contact').values({ role: 'dsl', name: 'Jane', email: null, updated_at: clock.now().toISOString() }).execute();
        await ctx.audit.record({ action: 'school.contact_set', target: 'school_contact:dsl', details: { name: 'Jane' } });
      });
      const events = await db.kysely.selectFrom('audit_event').selectAll().where('action', '=', 'school.contact_set').execute();
      expect(events).toHaveLength(1);
      expect(events[0]!.actor).toBe('tester');
      expect(parseBody(events[0]!.body).details).toEqual({ name: 'Jane' });
    });

    it('AU-01 a failed transaction leaves neither the change nor its event', async () => {
      const before = (await verifyTrail(db)).events;
      await expect(
        trail.transaction(systemActor('tester'), async (ctx) => {
          await ctx.db.insertInto('school_contact').values({ role: 'dsl', name: 'Jane', email: null, updated_at: clock.now().toISOString() }).execute();
          await ctx.audit.record({ action: 'school.contact_set', target: 'school_contact:dsl', details: { name: 'Jane' } });
          throw new Error('validation failed after writing');
        }),
      ).rejects.toThrow('validation failed after writing');
      expect(await db.kysely.selectFrom('school_contact').selectAll().execute()).toHaveLength(0);
      const report = await verifyTrail(db);
      expect(report.events).toBe(before);
      expect(report.ok).toBe(true);
      // The next event follows on directly: no gap where the rolled-back one was.
      await appendEvents(trail, 1);
      expect((await verifyTrail(db)).ok).toBe(true);
    });

    it('AU-01 the database itself refuses UPDATE and DELETE on the trail', async () => {
      await appendEvents(trail, 2);
      await expect(db.kysely.updateTable('audit_event').set({ body: '{}' }).where('seq', '=', 1).execute()).rejects.toThrow(/append-only/);
      await expect(db.kysely.deleteFrom('audit_event').where('seq', '=', 2).execute()).rejects.toThrow(/append-only/);
    });

    it('AU-02 refuses to write a secret into the trail', async () => {
      await expect(
        trail.transaction(systemActor('tester'), (ctx) => ctx.audit.record({ action: 'account.created', details: { username: 'x', password: 'hunter2' } })),
      ).rejects.toThrow(/never hold secrets/);
      await expect(
        trail.transaction(systemActor('tester'), (ctx) => ctx.audit.record({ action: 'account.created', details: { nested: { token: 'abc' } } })),
      ).rejects.toThrow(/never hold secrets/);
    });

    it('AU-01 chains each event to the one before and signs checkpoints that verify', async () => {
      await appendEvents(trail, 25);
      await trail.checkpointNow();
      const rows = await db.kysely.selectFrom('audit_event').selectAll().orderBy('seq').execute();
      expect(rows[0]!.prev_hash).toBe(GENESIS);
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
      for (const row of rows) expect(sha256Hex(row.body)).toBe(row.hash);
      // The body is canonical JSON naming its own sequence number and its predecessor.
      for (const row of rows) expect(parseBody(row.body)).toMatchObject({ seq: Number(row.seq), prev: row.prev_hash });
      expect(rows.map((r) => Object.keys(parseBody(r.body)).join())).toEqual(rows.map(() => 'action,actor,actorId,at,details,prev,seq,severity,target'));
      const report = await verifyTrail(db);
      expect(report).toMatchObject({ ok: true, events: rows.length, firstBrokenSeq: null });
      expect(report.checkpoints.checked).toBeGreaterThanOrEqual(1);
      expect(report.checkpoints.lastSeq).toBe(rows.length);
      // The checkpoint log on other storage holds the same notes.
      expect(readFileSync(path.join(test.dataDir, 'checkpoints.log'), 'utf8')).toContain(`\n${rows.length}\n`);
    });

    it('AU-01 detects an updated event and names its sequence number', async () => {
      await appendEvents(trail, 30);
      await tamper(db, [`UPDATE audit_event SET body = replace(body, '"n":15', '"n":99') WHERE seq = 17`]);
      const report = await verifyTrail(db);
      expect(report.ok).toBe(false);
      expect(report.firstBrokenSeq).toBe(17);
      expect(report.problems[0]).toMatchObject({ seq: 17, kind: 'changed_event' });
    });

    it('AU-01 detects a deleted event and names its sequence number', async () => {
      await appendEvents(trail, 30);
      await tamper(db, ['DELETE FROM audit_event WHERE seq = 12']);
      const report = await verifyTrail(db);
      expect(report.firstBrokenSeq).toBe(12);
      expect(report.problems[0]).toMatchObject({ seq: 12, kind: 'missing_events' });
    });

    it('AU-01 detects reordered events and names the first one out of place', async () => {
      await appendEvents(trail, 30);
      // Swap events 8 and 9 wholesale (contents and hashes), keeping the sequence numbers.
      await tamper(db, [
        'UPDATE audit_event SET seq = -8 WHERE seq = 8',
        'UPDATE audit_event SET seq = 8 WHERE seq = 9',
        'UPDATE audit_event SET seq = 9 WHERE seq = -8',
      ]);
      const report = await verifyTrail(db);
      expect(report.ok).toBe(false);
      expect(report.firstBrokenSeq).toBe(8);
    });

    it('AU-01 detects a truncated tail from the signed checkpoints', async () => {
      await appendEvents(trail, 30);
      await trail.checkpointNow();
      await tamper(db, ['DELETE FROM audit_event WHERE seq > 24']);
      const report = await verifyTrail(db);
      expect(report.firstBrokenSeq).toBe(25);
      expect(report.problems.find((p) => p.kind === 'truncated')?.message).toMatch(/events 25–3\d were cut off/);
    });

    it('AU-01 detects a tail cut together with its checkpoints, from the checkpoint log kept elsewhere', async () => {
      await appendEvents(trail, 30);
      await trail.checkpointNow();
      const externalLog = readFileSync(path.join(test.dataDir, 'checkpoints.log'), 'utf8');
      await tamper(db, ['DELETE FROM audit_event WHERE seq > 20', 'DELETE FROM audit_checkpoint WHERE seq > 20']);
      expect((await verifyTrail(db)).ok).toBe(true);
      const report = await verifyTrail(db, { externalNotes: splitNotes(externalLog) });
      expect(report.ok).toBe(false);
      expect(report.firstBrokenSeq).toBe(21);
    });

    it('AU-01 detects a rewritten chain (hashes recomputed) through the signed checkpoint', async () => {
      await appendEvents(trail, 19);
      await trail.checkpointNow(); // covers 1–20 (event 1 is the key registration)
      await appendEvents(trail, 5);
      await trail.checkpointNow(); // covers 1–25
      // Rewrite event 22 and recompute every hash from there, so the chain itself looks intact.
      const rows = await db.kysely.selectFrom('audit_event').selectAll().where('seq', '>=', 22).orderBy('seq').execute();
      let prev = (await db.kysely.selectFrom('audit_event').select('hash').where('seq', '=', 21).executeTakeFirstOrThrow()).hash;
      const statements: string[] = [];
      for (const row of rows) {
        const event = parseBody(row.body);
        const details = Number(row.seq) === 22 ? '{"n":21,"note":"nothing happened"}' : canonicalJson(event.details);
        const body = canonicalEvent({ ...row, seq: Number(row.seq), details, prev_hash: prev });
        const hash = sha256Hex(body);
        statements.push(`UPDATE audit_event SET body = '${body}', hash = '${hash}' WHERE seq = ${row.seq}`);
        prev = hash;
      }
      await tamper(db, statements);
      const report = await verifyTrail(db);
      expect(report.ok).toBe(false);
      expect(report.problems.some((p) => p.kind === 'checkpoint_mismatch')).toBe(true);
      // The last checkpoint that still matches is at 20, so the damage lies after it.
      expect(report.firstBrokenSeq).toBe(21);
    });

    it('AU-01 detects a forged checkpoint', async () => {
      await appendEvents(trail, 12);
      await trail.checkpointNow();
      const cp = await db.kysely.selectFrom('audit_checkpoint').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      const forged = cp.note.replace(/\n(\d+)\n/, `\n${Number(cp.seq) + 5}\n`);
      await tamper(db, [`UPDATE audit_checkpoint SET note = '${forged}', seq = ${Number(cp.seq) + 5} WHERE seq = ${cp.seq}`]);
      const report = await verifyTrail(db);
      expect(report.ok).toBe(false);
      expect(report.problems.some((p) => p.kind === 'bad_signature')).toBe(true);
    });

    it('AU-01 checks stretches in parallel worker threads with the same findings', async () => {
      await appendEvents(trail, 60);
      await trail.checkpointNow();
      const intact = await verifyTrail(db, { workers: 3, parallelFrom: 1 });
      expect(intact).toMatchObject({ ok: true, events: 61, headSeq: 61 });
      expect(intact.checkpoints.lastSeq).toBe(61);
      // Damage on a stretch boundary (21 is the first event of the second stretch) and inside one.
      await tamper(db, ['DELETE FROM audit_event WHERE seq = 21', `UPDATE audit_event SET body = replace(body, '"actor":"tester"', '"actor":"x"') WHERE seq = 50`]);
      const single = await verifyTrail(db, { workers: 1 });
      const parallel = await verifyTrail(db, { workers: 3, parallelFrom: 1 });
      expect(single.firstBrokenSeq).toBe(21);
      expect(parallel.problems).toEqual(single.problems);
      const edge = await migratedDatabase(dialect);
      try {
        const edgeTrail = new AuditTrail(edge.db, clock, undefined, { checkpointEvery: 1e9, checkpointMinutes: 60 });
        await appendEvents(edgeTrail, 40);
        await tamper(edge.db, ['DELETE FROM audit_event WHERE seq BETWEEN 14 AND 27']);
        const whole = await verifyTrail(edge.db, { workers: 3, parallelFrom: 1 });
        expect(whole.problems).toEqual([expect.objectContaining({ seq: 14, kind: 'missing_events', message: 'events 14–27 are missing' })]);
      } finally {
        await edge.cleanup();
      }
    });

    it('AU-01 keeps events in order under concurrent writers in separate processes', async () => {
      const writers = ['alpha', 'bravo', 'charlie'];
      const runs = writers.map(
        (label) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/audit-writer.ts', test.url, '60', label, label === 'charlie' ? '5' : '1'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
            let err = '';
            child.stderr.on('data', (d) => (err += d));
            child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${label} exited ${code}: ${err}`))));
          }),
      );
      // And this process writes at the same time.
      const local = (async () => {
        for (let i = 0; i < 30; i++) await appendEvents(trail, 1, 'local');
      })();
      await Promise.all([...runs, local]);
      const report = await verifyTrail(db);
      expect(report.ok).toBe(true);
      const rows = await db.kysely.selectFrom('audit_event').select(['seq', 'actor', 'body']).where('action', 'like', 'test.%').orderBy('seq').execute();
      expect(rows).toHaveLength(60 * 3 + 30);
      // Each writer's own events keep their order, and a batch stays contiguous.
      for (const label of ['alpha', 'bravo', 'charlie']) {
        const mine = rows.filter((r) => r.actor === label).map((r) => (parseBody(r.body).details as { n: number }).n);
        expect(mine).toEqual([...Array(60).keys()]);
      }
      const charlie = rows.filter((r) => r.actor === 'charlie').map((r) => Number(r.seq));
      for (let b = 0; b < 60; b += 5) expect(charlie[b + 4]! - charlie[b]!).toBe(4);
    });

    it('AU-01 keeps events in order under concurrent transactions in one process', async () => {
      await Promise.all(Array.from({ length: 8 }, (_, w) => (async () => {
        for (let i = 0; i < 10; i++) {
          await trail.transaction(systemActor(`w${w}`), async (ctx) => {
            await ctx.audit.record({ action: 'test.first', details: { w, i } });
            await new Promise((r) => setTimeout(r, Math.random() * 3));
            await ctx.audit.record({ action: 'test.second', details: { w, i } });
          });
        }
      })()));
      const report = await verifyTrail(db);
      expect(report.ok).toBe(true);
      const rows = await db.kysely.selectFrom('audit_event').select(['seq', 'action', 'body']).where('action', 'like', 'test.%').orderBy('seq').execute();
      expect(rows).toHaveLength(160);
      for (let i = 0; i < rows.length; i += 2) {
        expect(rows[i]!.action).toBe('test.first');
        expect(parseBody(rows[i + 1]!.body).details).toEqual(parseBody(rows[i]!.body).details);
      }
    });

    it('AU-01 `gatehouse audit verify` names the first broken sequence number and exits 1', async () => {
      await appendEvents(trail, 20);
      await trail.checkpointNow();
      const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
      const good = await runCli(['audit', 'verify'], env);
      expect(good.code).toBe(0);
      expect(good.stdout).toMatch(/^OK: 2\d audit events/);
      await tamper(db, [`UPDATE audit_event SET body = replace(body, '"actor":"tester"', '"actor":"nobody"') WHERE seq = 9`]);
      const bad = await runCli(['audit', 'verify'], env);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/^BROKEN at sequence 9:/);
      const json = await runCli(['audit', 'verify', '--json'], env);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, firstBrokenSeq: 9 });
    }, 180_000); // three CLI processes: slow on a busy machine

    it('AU-01 `gatehouse audit verify --checkpoints` uses the checkpoint log kept elsewhere', async () => {
      await appendEvents(trail, 15);
      await trail.checkpointNow();
      const external = path.join(test.dataDir, 'offbox.log');
      writeFileSync(external, readFileSync(path.join(test.dataDir, 'checkpoints.log')));
      appendFileSync(external, '\n');
      await tamper(db, ['DELETE FROM audit_event WHERE seq > 10', 'DELETE FROM audit_checkpoint WHERE seq > 10']);
      const env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
      expect((await runCli(['audit', 'verify'], env)).code).toBe(0);
      const withLog = await runCli(['audit', 'verify', '--checkpoints', external], env);
      expect(withLog.code).toBe(1);
      expect(withLog.stdout).toMatch(/^BROKEN at sequence 11:/);
    }, 180_000); // CLI processes: slow on a busy machine
  });
}
