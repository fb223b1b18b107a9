import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS, canonicalEvent, parseBody, sha256Hex } from '../../src/audit/chain.js';
import { checkpointBody, formatNote, originOf, splitNotes } from '../../src/audit/checkpoints.js';
import { exportJsonl } from '../../src/audit/export.js';
import { emailFingerprint, parseHead } from '../../src/audit/fingerprint.js';
import { keyIdOf, loadOrCreateSigner, type AuditSigner } from '../../src/audit/signing.js';
import { AuditTrail } from '../../src/audit/trail.js';
import { verifyTrail } from '../../src/audit/verify.js';
import { WitnessRefusal, createWitnessKey, loadWitnessKey, parseVkey, witnessCheckpoint } from '../../src/audit/witness.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { ManualClock } from '../../src/core/clock.js';
import { systemActor } from '../../src/core/context.js';
import type { Database } from '../../src/db/database.js';
import { runCli } from '../helpers/cli.js';
import { dialects, migratedDatabase, type TestDatabase } from '../helpers/databases.js';
import { startTestApp, type TestApp } from '../helpers/runtime.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

/**
 * Finding 7 of issue 10: whoever holds the database AND the server's signing key can delete an
 * event, rebuild the chain and re-sign every checkpoint, and the server's own checks cannot tell.
 * These tests perform that attack and show what outside the server still tells: the off-box
 * checkpoint log, an offline witness's cosignatures, a governor's written-down fingerprint.
 */

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const HOUR = 3_600_000;

async function appendEvents(trail: AuditTrail, count: number, actor = 'tester'): Promise<void> {
  await trail.transaction(systemActor(actor), async (ctx) => {
    for (let i = 0; i < count; i++) await ctx.audit.record({ action: 'test.event_written', target: `thing:${i}`, details: { n: i, note: `event number ${i}` } });
  });
}

async function headOf(db: Database): Promise<number> {
  const row = await db.kysely.selectFrom('audit_event').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row ? Number(row.seq) : 0;
}

/** The attacker's first step with the database: the append-only triggers off. */
async function triggersOff(db: Database): Promise<void> {
  for (const t of ['audit_event', 'audit_checkpoint', 'audit_key']) {
    if (db.dialect === 'sqlite') {
      await sql.raw(`DROP TRIGGER IF EXISTS ${t}_no_update`).execute(db.kysely);
      await sql.raw(`DROP TRIGGER IF EXISTS ${t}_no_delete`).execute(db.kysely);
    } else {
      await sql.raw(`ALTER TABLE ${t} DISABLE TRIGGER USER`).execute(db.kysely);
    }
  }
}

/**
 * The attack: with the database and the server's own signing key (read from the data folder, as
 * the attacker would), drop events, renumber and re-chain the rest so every link holds, delete the
 * stored checkpoints and sign new ones at the sizes given, with the server's key. Returns the
 * re-signed notes, as the server would have appended them to its checkpoint log.
 */
async function rewriteAsAttacker(
  db: Database,
  dataDir: string,
  options: { drop?: number[]; keepUpTo?: number; resign: Array<{ seq: number; at: string }> },
): Promise<{ head: number; notes: string[]; hashAt: (seq: number) => string }> {
  const { signer } = loadOrCreateSigner(dataDir);
  await triggersOff(db);
  const rows = await db.kysely.selectFrom('audit_event').select(['seq', 'body']).orderBy('seq').execute();
  const kept = rows.filter((r) => !(options.drop ?? []).includes(Number(r.seq)) && (options.keepUpTo === undefined || Number(r.seq) <= options.keepUpTo));
  let prev = GENESIS;
  const rebuilt = kept.map((r, i) => {
    const e = parseBody(r.body);
    const body = canonicalEvent({ seq: i + 1, at: e.at, actor: e.actor, actor_id: e.actorId, action: e.action, target: e.target, severity: e.severity, details: canonicalJson(e.details), prev_hash: prev });
    prev = sha256Hex(body);
    return { seq: i + 1, body, hash: prev };
  });
  await db.kysely.deleteFrom('audit_event').execute();
  for (let i = 0; i < rebuilt.length; i += 200) await db.kysely.insertInto('audit_event').values(rebuilt.slice(i, i + 200)).execute();
  await db.kysely.deleteFrom('audit_checkpoint').execute();
  const origin = originOf(rebuilt[0]!.hash);
  const notes: string[] = [];
  for (const { seq, at } of options.resign) {
    const body = checkpointBody(origin, seq, rebuilt[seq - 1]!.hash, at);
    const signature = signer.sign(body);
    const note = formatNote(body, signer.keyId, signature);
    await db.kysely.insertInto('audit_checkpoint').values({ seq, at, hash: rebuilt[seq - 1]!.hash, key_id: signer.keyId, signature, note }).execute();
    notes.push(note);
  }
  return { head: rebuilt.length, notes, hashAt: (seq) => rebuilt[seq - 1]!.hash };
}

/** Writes a checkpoint log as the server does: each note followed by a blank line. */
const asLog = (notes: string[]) => notes.map((n) => `${n}\n`).join('');

/** The text of a mail from the SMTP sink (quoted-printable decoded). */
function mailText(raw: string): string {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return Buffer.from(body.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

async function exportAfter(db: Database, afterSeq: number): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString('utf8')));
  await exportJsonl(db, out, { afterSeq });
  out.end();
  return text;
}

for (const dialect of await dialects()) {
  describe(`audit trail witnessed outside the server on ${dialect}`, () => {
    let test: TestDatabase;
    let db: Database;
    let cleanup: () => Promise<void>;
    let clock: ManualClock;
    let trail: AuditTrail;
    let signer: AuditSigner;
    /** other storage: the share the server appends its checkpoints to */
    let share: string;
    /** the governors' clerk's machine: the witness key and log */
    let clerk: string;
    let offbox: string;
    let env: Record<string, string>;

    beforeEach(async () => {
      ({ test, db, cleanup } = await migratedDatabase(dialect));
      share = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-share-'));
      clerk = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-clerk-'));
      offbox = path.join(share, 'gatehouse-checkpoints.log');
      clock = new ManualClock('2026-09-01T08:00:00.000Z');
      ({ signer } = loadOrCreateSigner(test.dataDir));
      trail = new AuditTrail(db, clock, signer, { checkpointEvery: 1e9, checkpointMinutes: 60, checkpointLogFile: offbox });
      await trail.start({ timer: false }); // event 1: the key's registration
      env = { GATEHOUSE_DATA_DIR: test.dataDir, GATEHOUSE_DATABASE_URL: test.url };
    });
    afterEach(async () => {
      await cleanup();
      rmSync(share, { recursive: true, force: true });
      rmSync(clerk, { recursive: true, force: true });
    });

    /** Appends events up to `seq`, an hour later signs a checkpoint (appended to the off-box log). */
    async function growTo(seq: number): Promise<string> {
      await appendEvents(trail, seq - (await headOf(db)));
      clock.advance(HOUR);
      const cp = await trail.checkpointNow();
      expect(cp?.seq).toBe(seq);
      return cp!.at;
    }

    it(
      'AU-01 attack: an event deleted, the chain rebuilt and every checkpoint re-signed with the server’s own key passes `audit verify --trusted-key` (the server alone cannot tell), but `audit verify --checkpoints <off-box log>` names the first broken event and exits 1',
      async () => {
        const at10 = await growTo(10);
        const at20 = await growTo(20);
        const at30 = await growTo(30);
        const attack = await rewriteAsAttacker(db, test.dataDir, { drop: [12], resign: [{ seq: 10, at: at10 }, { seq: 20, at: at20 }, { seq: 29, at: at30 }] });
        expect(attack.head).toBe(29);

        const withLog = await runCli(['audit', 'verify', '--trusted-key', signer.keyId, '--checkpoints', offbox], env);
        expect(withLog.code).toBe(1);
        const file = escape(offbox);
        expect(withLog.stdout).toMatch(
          new RegExp(
            `^BROKEN at sequence 11: the trail was rewritten at or before event 20 \\(after event 10, where the checkpoint witnessed at ${escape(at10)} in ${file} still agrees\\): ` +
              `the checkpoint witnessed at ${escape(at20)} in ${file} says event 20 has hash [0-9a-f]{16}…, but the trail's event 20 has ${attack.hashAt(20).slice(0, 16)}…\\n`,
          ),
        );
        expect(withLog.stdout).toMatch(new RegExp(`also at 30: the trail ends at event 29, but the checkpoint witnessed at ${escape(at30)} in ${file} covers 30 events: event 30 was cut off`));
        expect(withLog.stdout).toContain('Outside the server: 3 external checkpoints from 1 file given; 1 agrees');

        // The server's own checks alone cannot tell: every link holds and every checkpoint verifies.
        const alone = await runCli(['audit', 'verify', '--trusted-key', signer.keyId], env);
        expect(alone.code).toBe(0);
        expect(alone.stdout).toMatch(/^OK: 29 audit events/);
        expect(alone.stdout).toContain('Nothing kept outside the server was compared');
      },
      300_000,
    );

    it(
      'AU-01 attack: the same rewrite, with the server’s own off-box log rewritten too (the server can write there), is caught by an offline witness’s cosignatures (`audit witness`, `audit verify --witness-key`), and the witness refuses the rewritten head',
      async () => {
        const keyFile = path.join(clerk, 'witness.key');
        const made = await runCli(['audit', 'witness-key', 'create', '--name', 'governors-clerk.springfield', '--out', keyFile], {});
        expect(made.code).toBe(0);
        expect(statSync(keyFile).mode & 0o777).toBe(0o600);
        const vkey = /^\s+(governors-clerk\.springfield\+[0-9a-f]{8}\+\S+)$/m.exec(made.stdout)![1]!;
        const witness = parseVkey(vkey);
        expect(made.stdout).toContain(`key id ${witness.keyId}`);
        const serverKey = path.join(clerk, 'server.pub');
        writeFileSync(serverKey, signer.publicKeyPem);
        const wlog = path.join(clerk, 'witness.log');

        const at10 = await growTo(10);
        // The clerk's machine cosigns the newest checkpoint in the server's log, through the real CLI.
        const first = await runCli(['audit', 'witness', '--key', keyFile, '--log', wlog, '--server-key', serverKey, '--checkpoint', offbox], {});
        expect(first.code).toBe(0);
        expect(first.stdout).toMatch(/^Cosigned checkpoint 10 /);
        const witnessKey = loadWitnessKey(keyFile);
        const at20 = await growTo(20);
        // With an export of the events since, the witness checks each of them chains.
        const second = witnessCheckpoint({ noteText: readFileSync(offbox, 'utf8'), logFile: wlog, signer: witnessKey, serverKeys: [signer.publicKeyPem], exportText: await exportAfter(db, 10), clock });
        expect(second).toMatchObject({ cosigned: true, eventsChecked: 10 });
        const at30 = await growTo(30);
        expect(witnessCheckpoint({ noteText: readFileSync(offbox, 'utf8'), logFile: wlog, signer: witnessKey, serverKeys: [signer.publicKeyPem], clock }).cosigned).toBe(true);
        const genuineWitnessLog = readFileSync(wlog, 'utf8');

        const attack = await rewriteAsAttacker(db, test.dataDir, { drop: [12], resign: [{ seq: 10, at: at10 }, { seq: 20, at: at20 }, { seq: 29, at: at30 }] });
        writeFileSync(offbox, asLog(attack.notes));
        // The server's own log no longer helps: it was rewritten along with the trail.
        expect((await verifyTrail(db, { sources: [{ name: offbox, notes: splitNotes(readFileSync(offbox, 'utf8')) }], trustedKeys: [signer.keyId] })).ok).toBe(true);

        const verified = await runCli(['audit', 'verify', '--checkpoints', offbox, '--checkpoints', wlog, '--witness-key', vkey], env);
        expect(verified.code).toBe(1);
        expect(verified.stdout).toMatch(
          new RegExp(
            `^BROKEN at sequence 11: the trail was rewritten at or before event 20 \\(after event 10, where the checkpoint signed at ${escape(at10)} and cosigned by witness governors-clerk\\.springfield in ${escape(wlog)} still agrees\\): ` +
              `the checkpoint signed at ${escape(at20)} and cosigned by witness governors-clerk\\.springfield in ${escape(wlog)} says event 20 has hash`,
          ),
        );
        expect(verified.stdout).toContain(`witness governors-clerk.springfield (${witness.keyId}): 3 checkpoints cosigned, the newest covering event 30`);

        // The witness's next run sees the server's re-signed head and refuses it.
        expect(() => witnessCheckpoint({ noteText: readFileSync(offbox, 'utf8'), logFile: wlog, signer: witnessKey, serverKeys: [signer.publicKeyPem], clock })).toThrow(
          /covers 29 events, fewer than the 30 this witness cosigned .*cut back or rewritten\. Not cosigned\./,
        );
        expect(readFileSync(wlog, 'utf8')).toBe(genuineWitnessLog);

        // If the attacker reaches the witness's log as well, re-signed notes cannot carry the
        // witness's cosignature: kept lines do not verify, and stripped ones leave nothing cosigned.
        const forged = splitNotes(genuineWitnessLog).map((entry) => {
          const seq = Number(entry.split('\n')[1]);
          const mine = attack.notes.find((n) => Number(n.split('\n')[1]) === Math.min(seq, 29))!;
          return `${mine.trimEnd()}\n${entry.trimEnd().split('\n').at(-1)}\n`;
        });
        const forgedSource = [{ name: wlog, notes: forged }];
        expect((await verifyTrail(db, { sources: forgedSource })).ok).toBe(true);
        const cosignChecked = await verifyTrail(db, { sources: forgedSource, witnessKeys: [witness] });
        expect(cosignChecked.firstBrokenSeq).toBe(11);
        expect(cosignChecked.problems[0]).toMatchObject({ kind: 'bad_cosignature' });
        expect(cosignChecked.problems[0]!.message).toMatch(/checkpoint 20 in .*: the cosignature by witness governors-clerk\.springfield does not verify: the witness log was altered, and the trail may have been rewritten after event 10/);
        const stripped = await verifyTrail(db, { sources: [{ name: wlog, notes: attack.notes }], witnessKeys: [witness] });
        expect(stripped.problems).toEqual([expect.objectContaining({ seq: 1, kind: 'witness_missing' })]);
      },
      300_000,
    );

    it(
      'AU-01 attack: the trail cut back below an external checkpoint and re-signed passes `--trusted-key`, but the off-box log and the witness log show the cut (and the log contradicting itself)',
      async () => {
        const keyFile = path.join(clerk, 'witness.key');
        const witnessKey = createWitnessKey(keyFile, 'it-provider.example');
        const wlog = path.join(clerk, 'witness.log');
        const at10 = await growTo(10);
        const at20 = await growTo(20);
        const at30 = await growTo(30);
        witnessCheckpoint({ noteText: readFileSync(offbox, 'utf8'), logFile: wlog, signer: witnessKey, serverKeys: [signer.publicKeyPem], clock });
        clock.advance(HOUR);
        const later = clock.now().toISOString();
        const attack = await rewriteAsAttacker(db, test.dataDir, { keepUpTo: 25, resign: [{ seq: 10, at: at10 }, { seq: 20, at: at20 }, { seq: 25, at: later }] });
        // The server appends its new (smaller) checkpoint to the off-box log, as it does every one.
        writeFileSync(offbox, readFileSync(offbox, 'utf8') + asLog(attack.notes.slice(-1)));
        expect((await verifyTrail(db, { trustedKeys: [signer.keyId] })).ok).toBe(true);

        const verified = await runCli(['audit', 'verify', '--checkpoints', offbox, '--checkpoints', wlog, '--witness-key', witnessKey.vkey], env);
        expect(verified.code).toBe(1);
        expect(verified.stdout).toMatch(
          new RegExp(`^BROKEN at sequence 26: the trail ends at event 25, but the checkpoint signed at ${escape(at30)} and cosigned by witness it-provider\\.example in ${escape(wlog)} covers 30 events: events 26–30 were cut off\\n`),
        );
        expect(verified.stdout).toMatch(
          new RegExp(`also at 26: ${escape(offbox)}: the checkpoint signed at ${escape(later)} covers 25 events, fewer than the 30 signed earlier at ${escape(at30)}: the trail was cut back`),
        );
      },
      300_000,
    );

    it('AU-01 attack: with the database alone, a public key swapped in under the server’s key id cannot vouch for re-signed checkpoints', async () => {
      const at10 = await growTo(10);
      const at20 = await growTo(20);
      // No server key this time: the attacker makes their own and files it under the server's id.
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      await triggersOff(db);
      await db.kysely.updateTable('audit_key').set({ public_key: publicKey.export({ format: 'pem', type: 'spki' }).toString() }).where('key_id', '=', signer.keyId).execute();
      const rows = await db.kysely.selectFrom('audit_event').select(['seq', 'body']).where('seq', '>', 14).orderBy('seq').execute();
      let prev = (await db.kysely.selectFrom('audit_event').select('hash').where('seq', '=', 14).executeTakeFirstOrThrow()).hash;
      for (const r of rows) {
        const e = parseBody(r.body);
        const details = Number(r.seq) === 15 ? '{"n":0,"note":"nothing happened"}' : canonicalJson(e.details);
        const body = canonicalEvent({ seq: Number(r.seq), at: e.at, actor: e.actor, actor_id: e.actorId, action: e.action, target: e.target, severity: e.severity, details, prev_hash: prev });
        prev = sha256Hex(body);
        await db.kysely.updateTable('audit_event').set({ body, hash: prev }).where('seq', '=', Number(r.seq)).execute();
      }
      // Every stored checkpoint re-signed with the attacker's key, filed under the server's key id.
      await db.kysely.deleteFrom('audit_checkpoint').execute();
      const first = (await db.kysely.selectFrom('audit_event').select('hash').where('seq', '=', 1).executeTakeFirstOrThrow()).hash;
      for (const [seq, at] of [[10, at10], [20, at20]] as const) {
        const hash = (await db.kysely.selectFrom('audit_event').select('hash').where('seq', '=', seq).executeTakeFirstOrThrow()).hash;
        const body = checkpointBody(originOf(first), seq, hash, at);
        const signature = sign(null, Buffer.from(body), privateKey).toString('base64');
        await db.kysely.insertInto('audit_checkpoint').values({ seq, at, hash, key_id: signer.keyId, signature, note: formatNote(body, signer.keyId, signature) }).execute();
      }
      expect(keyIdOf(publicKey)).not.toBe(signer.keyId);
      const report = await verifyTrail(db, { trustedKeys: [signer.keyId] });
      expect(report.ok).toBe(false);
      expect(report.firstBrokenSeq).toBe(1);
      expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'key_mismatch', seq: 1 }));
    });

    it('AU-01 witness keys: made 0600, never overwritten, and read back from the file and the printed public key (base64 with "+" included)', () => {
      for (let i = 0; i < 12; i++) {
        const file = path.join(clerk, `k${i}.key`);
        const made = createWitnessKey(file, `clerk-${i}.example`);
        expect(statSync(file).mode & 0o777).toBe(0o600);
        expect(loadWitnessKey(file).vkey).toBe(made.vkey);
        expect(parseVkey(made.vkey).keyId).toBe(made.keyId);
        expect(() => createWitnessKey(file, 'other')).toThrow(/EEXIST/);
      }
      expect(() => createWitnessKey(path.join(clerk, 'x.key'), '96b44cbe7ba5ecb5')).toThrow(/server key id/);
      expect(() => parseVkey('clerk.example+00000000+AQ==')).toThrow();
    });

    it('AU-01 the witness refuses a checkpoint the server did not sign, one of another trail, and a log someone else edited; with an export it names the first event that does not chain', async () => {
      const witnessKey = createWitnessKey(path.join(clerk, 'witness.key'), 'clerk.example');
      const wlog = path.join(clerk, 'witness.log');
      await growTo(10);
      const forger = generateKeyPairSync('ed25519');
      const pem = (k: typeof forger.publicKey) => k.export({ format: 'pem', type: 'spki' }).toString();
      const input = (extra: Partial<Parameters<typeof witnessCheckpoint>[0]> = {}) => ({ noteText: readFileSync(offbox, 'utf8'), logFile: wlog, signer: witnessKey, serverKeys: [signer.publicKeyPem], clock, ...extra });
      expect(() => witnessCheckpoint(input({ serverKeys: [pem(forger.publicKey)] }))).toThrow(/does not verify with the server key/);
      expect(witnessCheckpoint(input()).cosigned).toBe(true);
      expect(witnessCheckpoint(input())).toMatchObject({ cosigned: false, message: expect.stringMatching(/^Nothing new/) });
      await growTo(20);
      // An export in which event 14 was altered (and re-hashed, so only the link to it breaks).
      const exported = (await exportAfter(db, 10)).split('\n');
      const line = exported[3]!; // event 14
      const body = `${line.slice(0, line.lastIndexOf(',"hash":"')).replace('"n":3', '"n":99')}}`;
      exported[3] = `${body.slice(0, -1)},"hash":"${sha256Hex(body)}"}`;
      expect(() => witnessCheckpoint(input({ exportText: exported.join('\n') }))).toThrow(/event 15 in the export does not follow event 14/);
      const fromThirteen = await exportAfter(db, 12);
      expect(() => witnessCheckpoint(input({ exportText: fromThirteen }))).toThrow(/does not hold events 11–12/);
      // Someone edits the witness's log: the witness refuses to carry on from it.
      const log = readFileSync(wlog, 'utf8');
      writeFileSync(wlog, log.replace(/\n10\n/, '\n11\n'));
      expect(() => witnessCheckpoint(input())).toThrow(WitnessRefusal);
      expect(() => witnessCheckpoint(input())).toThrow(/has been altered/);
      writeFileSync(wlog, log);
      expect(witnessCheckpoint(input({ exportText: await exportAfter(db, 10) }))).toMatchObject({ cosigned: true, eventsChecked: 10 });
    });
  });

  describe(`the governors' fingerprint on ${dialect}`, () => {
      it(
        'AU-01 attack: a rewrite is caught by the fingerprints the governors were e-mailed (real SMTP), checked with `audit verify --head`',
        async () => {
          const sink = await startSmtpSink();
          let t: TestApp | undefined;
          try {
            t = await startTestApp(dialect, { config: { smtpUrl: sink.url, auditCheckpointEvery: 1_000_000 } });
            const rt = t.runtime;
            await rt.trail.transaction(systemActor('test'), async (ctx) => {
              const now = ctx.clock.now().toISOString();
              await ctx.db.insertInto('school').values({ id: 1, name: 'Springfield Primary', urn: null, created_at: now, updated_at: now }).execute();
              await ctx.db.insertInto('school_contact').values([
                { role: 'headteacher', name: 'Seymour Skinner', email: 'head@school.example', updated_at: now },
                { role: 'governor', name: 'Edna Krabappel', email: 'governor@school.example', updated_at: now },
                { role: 'dsl', name: 'Not Told', email: 'dsl@school.example', updated_at: now },
              ]).execute();
              await ctx.audit.record({ action: 'school.contact_set', target: 'school_contact:headteacher' });
            });
            await appendEvents(rt.trail, 15);
            // Week one: the scheduled e-mail goes to the headteacher and the governor only.
            const week1 = await emailFingerprint(rt, systemActor(), { scheduled: true, schedule: 'weekly' });
            expect(week1.sent.sort()).toEqual(['governor@school.example', 'head@school.example']);
            await sink.waitFor(2);
            expect(sink.messages.flatMap((m) => m.to).sort()).toEqual(['governor@school.example', 'head@school.example']);
            const text1 = mailText(sink.messages[0]!.raw);
            expect(text1).not.toMatch(/https?:\/\//);
            const n1 = Number(/Event: +([\d,]+)/.exec(text1)![1]!.replace(/,/g, ''));
            const f1 = /Fingerprint: +([0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4})/.exec(text1)![1]!;
            expect(n1).toBe(week1.seq);
            // The same week, the hourly check sends nothing more.
            t.clock.advance(2 * HOUR);
            expect((await emailFingerprint(rt, systemActor(), { scheduled: true, schedule: 'weekly' })).attempted).toBe(false);

            t.clock.advance(7 * 24 * HOUR);
            await appendEvents(rt.trail, 20);
            const week2 = await emailFingerprint(rt, systemActor(), { scheduled: true, schedule: 'weekly' });
            await sink.waitFor(4);
            const text2 = mailText(sink.messages[2]!.raw);
            const n2 = Number(/Event: +([\d,]+)/.exec(text2)![1]!.replace(/,/g, ''));
            const f2 = /Fingerprint: +([0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4})/.exec(text2)![1]!;
            expect(n2).toBe(week2.seq);
            expect(n2).toBeGreaterThan(n1 + 10);
            const events = await rt.db.kysely.selectFrom('audit_event').select('action').where('action', 'like', 'audit.fingerprint_%').orderBy('seq').execute();
            expect(events.map((e) => e.action)).toEqual(['audit.fingerprint_emailing', 'audit.fingerprint_emailed', 'audit.fingerprint_emailing', 'audit.fingerprint_emailed']);

            // The attack: an event between the two e-mails deleted, everything after re-chained and re-signed.
            const victim = n1 + 5;
            const cps = await rt.db.kysely.selectFrom('audit_checkpoint').select(['seq', 'at']).orderBy('seq').execute();
            const head = await headOf(rt.db);
            await rewriteAsAttacker(rt.db, t.test.dataDir, { drop: [victim], resign: [...cps.map((c) => ({ seq: Math.min(Number(c.seq), head - 1), at: c.at }))] });
            const cliEnv = { GATEHOUSE_DATA_DIR: t.test.dataDir, GATEHOUSE_DATABASE_URL: t.test.url };
            const verified = await runCli(['audit', 'verify', '--head', `${n1}:${f1}`, '--head', `${n2}:${f2}`], cliEnv);
            expect(verified.code).toBe(1);
            expect(verified.stdout).toMatch(
              new RegExp(
                `^BROKEN at sequence ${n1 + 1}: the trail was rewritten at or before event ${n2} \\(after event ${n1}, where the fingerprint written down as "${n1}:${f1}" still agrees\\): ` +
                  `the fingerprint written down as "${n2}:${f2}" says event ${n2}'s hash begins ${f2.replace(/ /g, '')}…`,
              ),
            );
            // The e-mail itself, saved as text, is an outside checkpoint too.
            const fromMail = await verifyTrail(rt.db, { sources: [{ name: 'the e-mail of week two', notes: splitNotes(text2) }], heads: [parseHead(`${n1}:${f1}`)] });
            expect(fromMail.firstBrokenSeq).toBe(n1 + 1);
            expect(fromMail.problems[0]!.message).toContain('in the e-mail of week two says');
          } finally {
            await t?.close();
            await sink.close();
          }
        },
        300_000,
      );

  });
}
