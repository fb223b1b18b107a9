import { appendFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Schema } from '../db/schema.js';
import type { AuditSigner } from './signing.js';
import { verifySignature } from './signing.js';
import { lockAuditWriter } from './writer.js';

/**
 * A checkpoint is a signed statement "the trail had N events and its head hash was H at time T".
 * Stored in audit_checkpoint and, when configured, appended to a file on other storage. The note is
 * modelled on C2SP tlog-checkpoint: origin line, size, base64 root hash, then extension lines, a
 * blank line and a signature line "— <key id> <base64 Ed25519 signature over the body>".
 */
export interface Checkpoint {
  seq: number;
  at: string;
  hash: string;
  key_id: string;
  signature: string;
  note: string;
}

/** The trail's name: derived from its first event, so every trail has a distinct one. */
export function originOf(firstEventHash: string): string {
  return `gatehouse-audit/${firstEventHash.slice(0, 16)}`;
}

export function checkpointBody(origin: string, seq: number, hashHex: string, at: string): string {
  return `${origin}\n${seq}\n${Buffer.from(hashHex, 'hex').toString('base64')}\ntime ${at}\n`;
}

export function formatNote(body: string, keyId: string, signature: string): string {
  return `${body}\n— ${keyId} ${signature}\n`;
}

export interface ParsedNote {
  body: string;
  origin: string;
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  signature: string;
  /**
   * Signature lines after the server's: cosignatures by witnesses (C2SP tlog-cosignature), each
   * "— <witness name> <base64>". Checked only against witness keys the verifier names.
   */
  cosignatures: Array<{ name: string; data: string }>;
}

/** Parses one note; throws with a reason when it is not one. */
export function parseNote(note: string): ParsedNote {
  const text = note.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  if (split < 0) throw new Error('not a checkpoint note (no blank line before the signature)');
  const body = text.slice(0, split + 1);
  const lines = body.split('\n');
  const signatureLines = text.slice(split + 2).split('\n').filter((l) => l !== '');
  const sig = /^— ([0-9a-f]{16}) ([A-Za-z0-9+/=]+)$/.exec(signatureLines[0] ?? '');
  const seq = Number(lines[1]);
  const at = /^time (.+)$/.exec(lines[3] ?? '')?.[1];
  if (!sig || !lines[0] || !/^\d+$/.test(lines[1] ?? '') || !Number.isSafeInteger(seq) || seq < 1 || !lines[2] || !at) {
    throw new Error('not a checkpoint note (malformed lines)');
  }
  const cosignatures: ParsedNote['cosignatures'] = [];
  for (const line of signatureLines.slice(1)) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error('not a checkpoint note (a malformed signature line)');
    cosignatures.push({ name: m[1]!, data: m[2]! });
  }
  return {
    body,
    origin: lines[0],
    seq,
    hash: Buffer.from(lines[2], 'base64').toString('hex'),
    at,
    keyId: sig[1]!,
    signature: sig[2]!,
    cosignatures,
  };
}

/**
 * Finds the notes in a checkpoint log, a witness log or any text that quotes them (a saved e-mail):
 * an origin line, the body's lines, a blank line, then one or more signature lines. Windows line
 * ends are accepted.
 */
export function splitNotes(text: string): string[] {
  const notes: string[] = [];
  const re = /(?:^|\n)(gatehouse-audit\/[^\n]*\n(?:[^\n]+\n)+\n(?:— [^\n]*(?:\n|$))+)/g;
  const normal = text.replace(/\r\n/g, '\n');
  for (let m = re.exec(normal); m; m = re.exec(normal)) {
    notes.push(m[1]!.endsWith('\n') ? m[1]! : `${m[1]!}\n`);
    // The next note may start right after this one's last line.
    re.lastIndex = m.index + m[0].length - 1;
  }
  return notes;
}

export function noteSignatureValid(note: ParsedNote, publicKeyPem: string): boolean {
  return verifySignature(publicKeyPem, note.body, note.signature);
}

/** Makes sure this node's public key is on record, so its checkpoints can be verified anywhere. */
export async function registerKey(db: Kysely<Schema>, signer: AuditSigner, clock: Clock): Promise<boolean> {
  const existing = await db.selectFrom('audit_key').select('key_id').where('key_id', '=', signer.keyId).executeTakeFirst();
  if (existing) return false;
  await db
    .insertInto('audit_key')
    .values({ key_id: signer.keyId, public_key: signer.publicKeyPem, created_at: clock.now().toISOString() })
    .onConflict((oc) => oc.column('key_id').doNothing())
    .execute();
  return true;
}

/**
 * Signs the current head unless it is already signed. Runs in its own transaction after the events
 * it covers have committed; takes the same single-writer lock as appends so the head cannot move
 * underneath it.
 */
export async function createCheckpoint(
  db: Kysely<Schema>,
  signer: AuditSigner,
  clock: Clock,
  logFile?: string,
): Promise<Checkpoint | undefined> {
  const checkpoint = await db.transaction().execute(async (trx) => {
    await lockAuditWriter(trx);
    const head = await trx.selectFrom('audit_event').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!head) return undefined;
    const last = await trx.selectFrom('audit_checkpoint').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (last && Number(last.seq) >= Number(head.seq)) return undefined;
    const first = await trx.selectFrom('audit_event').select('hash').where('seq', '=', 1).executeTakeFirst();
    const at = clock.now().toISOString();
    const body = checkpointBody(originOf(first?.hash ?? head.hash), Number(head.seq), head.hash, at);
    const signature = signer.sign(body);
    const row: Checkpoint = {
      seq: Number(head.seq),
      at,
      hash: head.hash,
      key_id: signer.keyId,
      signature,
      note: formatNote(body, signer.keyId, signature),
    };
    await trx.insertInto('audit_checkpoint').values(row).execute();
    return row;
  });
  if (checkpoint && logFile) appendFileSync(logFile, `${checkpoint.note}\n`, { mode: 0o600 });
  return checkpoint;
}
