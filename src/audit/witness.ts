import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { GENESIS, prevOffset, sha256Hex } from './chain.js';
import { parseNote, splitNotes, noteSignatureValid, type ParsedNote } from './checkpoints.js';
import { keyIdOf } from './signing.js';

/**
 * Witnesses: a second signature on the server's checkpoints, made with a key that never lives on
 * the server (C2SP tlog-cosignature, Ed25519 "cosignature/v1"). Whoever holds the database and the
 * server's signing key can rewrite the trail and re-sign every checkpoint, but cannot make a
 * witness's cosignature on the rewritten head, nor change what the witness already cosigned.
 *
 * A witness key has a name (a short identifier such as `governors-clerk.example-school`); its key
 * id is SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]. A cosignature line on a note is
 *
 *     — <name> base64(key id ‖ u64 timestamp ‖ Ed25519 signature)
 *
 * over "cosignature/v1\ntime <timestamp>\n" followed by the note's body. The public key is written
 * as a verifier key ("vkey"): `<name>+<key id hex>+base64(0x04 ‖ public key)`.
 */

const COSIGNATURE_V1 = 0x04;
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const PRIVATE_PREFIX = 'PRIVATE+KEY+';

/** A witness name: a C2SP key name (no spaces, no "+"), never one of the server's 16-hex key ids. */
export const WITNESS_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/;

export function checkWitnessName(name: string): string | undefined {
  if (!WITNESS_NAME.test(name)) return 'a witness name is letters, digits and . _ / - (up to 100), e.g. governors-clerk.springfield';
  if (/^[0-9a-f]{16}$/.test(name)) return 'a witness name must not look like a server key id (16 hex digits)';
  return undefined;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

function witnessKeyId(name: string, rawPublic: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([COSIGNATURE_V1]), rawPublic]))
    .digest()
    .subarray(0, 4);
}

/** A witness's public key, as a verifier holds it. */
export interface WitnessVerifier {
  name: string;
  /** 8 hex digits */
  keyId: string;
  publicKey: KeyObject;
  vkey: string;
}

export interface WitnessSigner extends WitnessVerifier {
  privateKey: KeyObject;
}

function verifierFrom(name: string, publicKey: KeyObject): WitnessVerifier {
  const raw = rawPublicKey(publicKey);
  const id = witnessKeyId(name, raw);
  return {
    name,
    keyId: id.toString('hex'),
    publicKey,
    vkey: `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.from([COSIGNATURE_V1]), raw]).toString('base64')}`,
  };
}

/** name+hex+base64: the name and the key id hold no "+", the base64 may. */
function splitKey(text: string): [string, string, string] | undefined {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
  return m ? [m[1]!, m[2]!, m[3]!] : undefined;
}

/** Reads a verifier key (`name+keyid+base64`); throws with a reason when it is not one. */
export function parseVkey(vkey: string): WitnessVerifier {
  const parts = splitKey(vkey.trim());
  if (!parts) throw new Error('a witness key is written name+keyid+base64 (as `gatehouse audit witness-key create` prints it)');
  const [name, hex, b64] = parts;
  const problem = checkWitnessName(name);
  if (problem) throw new Error(problem);
  const material = Buffer.from(b64, 'base64');
  if (!/^[0-9a-f]{8}$/.test(hex) || material.length !== 33 || material[0] !== COSIGNATURE_V1) {
    throw new Error('not an Ed25519 cosignature/v1 witness key (type 0x04, 32 bytes)');
  }
  const publicKey = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), material.subarray(1)]), format: 'der', type: 'spki' });
  const verifier = verifierFrom(name, publicKey);
  if (verifier.keyId !== hex) throw new Error(`the witness key's id ${hex} does not match its name and public key (expected ${verifier.keyId})`);
  return verifier;
}

/** Makes a witness key pair in `file` (owner read/write only, never overwritten). */
export function createWitnessKey(file: string, name: string): WitnessSigner {
  const problem = checkWitnessName(name);
  if (problem) throw new Error(problem);
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  const signer = signerFrom(name, privateKey);
  const line = `${PRIVATE_PREFIX}${name}+${signer.keyId}+${Buffer.concat([Buffer.from([COSIGNATURE_V1]), seed]).toString('base64')}\n`;
  writeFileSync(file, line, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return signer;
}

function signerFrom(name: string, privateKey: KeyObject): WitnessSigner {
  return { ...verifierFrom(name, createPublicKey(privateKey)), privateKey };
}

/** Loads a witness key file; refuses one that others can read. */
export function loadWitnessKey(file: string): WitnessSigner {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new Error(`${file} can be read by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  const text = readFileSync(file, 'utf8').trim();
  const parts = text.startsWith(PRIVATE_PREFIX) ? splitKey(text.slice(PRIVATE_PREFIX.length)) : undefined;
  const material = parts ? Buffer.from(parts[2], 'base64') : Buffer.alloc(0);
  if (!parts || material.length !== 33 || material[0] !== COSIGNATURE_V1 || checkWitnessName(parts[0])) {
    throw new Error(`${file} is not a witness key (made by \`gatehouse audit witness-key create\`)`);
  }
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, material.subarray(1)]), format: 'der', type: 'pkcs8' });
  const signer = signerFrom(parts[0], privateKey);
  if (signer.keyId !== parts[1]) throw new Error(`${file}: the key id does not match the key`);
  return signer;
}

const cosignedMessage = (body: string, timestamp: bigint) => Buffer.from(`cosignature/v1\ntime ${timestamp}\n${body}`, 'utf8');

/** The cosignature line for a note body, at `time`. */
export function cosignatureLine(signer: WitnessSigner, body: string, time: Date): string {
  const timestamp = BigInt(Math.floor(time.getTime() / 1000));
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(timestamp);
  const signature = sign(null, cosignedMessage(body, timestamp), signer.privateKey);
  return `— ${signer.name} ${Buffer.concat([Buffer.from(signer.keyId, 'hex'), ts, signature]).toString('base64')}`;
}

export type CosignatureCheck =
  | { state: 'absent' }
  | { state: 'invalid' }
  | { state: 'valid'; time: Date };

/**
 * Looks for this witness's cosignature on a note. Lines by other names or other key ids are not
 * this witness's (C2SP: ignore them); a line with this name and key id that does not verify is
 * reported as invalid.
 */
export function checkCosignature(note: ParsedNote, witness: WitnessVerifier): CosignatureCheck {
  let seen = false;
  for (const line of note.cosignatures) {
    if (line.name !== witness.name) continue;
    const data = Buffer.from(line.data, 'base64');
    if (data.length !== 76 || data.subarray(0, 4).toString('hex') !== witness.keyId) continue;
    seen = true;
    const timestamp = data.readBigUInt64BE(4);
    if (verify(null, cosignedMessage(note.body, timestamp), witness.publicKey, data.subarray(12))) {
      return { state: 'valid', time: new Date(Number(timestamp) * 1000) };
    }
  }
  return seen ? { state: 'invalid' } : { state: 'absent' };
}

/** The note as the server signed it: body, blank line, the server's signature line only. */
export function serverNote(note: ParsedNote): string {
  return `${note.body}\n— ${note.keyId} ${note.signature}\n`;
}

export class WitnessRefusal extends Error {}

export interface WitnessInput {
  /** The checkpoint note to cosign (the newest note in the text is taken). */
  noteText: string;
  /** The witness's own log: append-only, one cosigned note after another. */
  logFile: string;
  signer: WitnessSigner;
  /** The server's public keys (PEM); the note must be signed by one of them. */
  serverKeys: string[];
  /** An export of the trail (`gatehouse audit export --after <seq>`) covering the new events. */
  exportText?: string | undefined;
  clock: Clock;
}

export interface WitnessResult {
  cosigned: boolean;
  note: ParsedNote;
  previous: ParsedNote | undefined;
  /** Events checked one by one in the export (0 without one). */
  eventsChecked: number;
  /** What was done, in a sentence. */
  message: string;
  entry?: string;
}

/** Reads the witness's own log, checking every entry carries this witness's valid cosignature. */
export function readWitnessLog(logFile: string, signer: WitnessVerifier): ParsedNote[] {
  if (!existsSync(logFile)) return [];
  const notes = splitNotes(readFileSync(logFile, 'utf8')).map((n) => parseNote(n));
  for (const note of notes) {
    const check = checkCosignature(note, signer);
    if (check.state !== 'valid') {
      throw new WitnessRefusal(
        `${logFile}: the entry for checkpoint ${note.seq} (${note.at}) does not carry a valid cosignature by ${signer.name}: this witness log has been altered. Keep the altered file for investigation and start a new log only after finding out why.`,
      );
    }
  }
  return notes;
}

/**
 * Checks that the events after `from` (exclusive) up to `to` in an export chain from `fromHash`
 * and end at `toHash`. Throws WitnessRefusal naming the first event that does not.
 */
export function checkExportSegment(exportText: string, from: number, fromHash: string, to: number, toHash: string): number {
  let expected = from + 1;
  let prev = fromHash;
  for (const line of exportText.split('\n')) {
    if (expected > to) break;
    if (line.trim() === '') continue;
    const at = line.lastIndexOf(',"hash":"');
    if (at < 0 || !line.endsWith('"}')) throw new WitnessRefusal(`the export has a line that is not an audit event (no "hash" at its end)`);
    const body = `${line.slice(0, at)}}`;
    const hash = line.slice(at + 9, -2);
    const seqMatch = /"seq":(\d+),"severity":/.exec(body.slice(body.lastIndexOf('"prev":"')));
    const seq = seqMatch ? Number(seqMatch[1]) : NaN;
    if (!Number.isSafeInteger(seq) || seq < expected) continue;
    if (seq > expected) throw new WitnessRefusal(`the export does not hold events ${expected}–${Math.min(seq - 1, to)}: export the events after ${from} (\`gatehouse audit export --after ${from}\`)`);
    if (sha256Hex(body) !== hash) throw new WitnessRefusal(`event ${seq} in the export does not match its own hash: it was changed`);
    const prevAt = prevOffset(body, seq);
    if (prevAt < 0 || body.substr(prevAt, 64) !== prev) {
      throw new WitnessRefusal(
        seq === from + 1
          ? `event ${seq} in the export does not follow the head witnessed before (event ${from}): the trail was rewritten at or before event ${from}`
          : `event ${seq} in the export does not follow event ${seq - 1}: events were removed, inserted or reordered`,
      );
    }
    prev = hash;
    expected++;
  }
  if (expected <= to) throw new WitnessRefusal(`the export ends before event ${to}: export the events after ${from} up to the checkpoint at least`);
  if (prev !== toHash) throw new WitnessRefusal(`the export's event ${to} has hash ${prev.slice(0, 16)}…, but the checkpoint says ${toHash.slice(0, 16)}…: the export and the checkpoint are of different trails`);
  return to - from;
}

/**
 * The witness's one job: take the server's newest checkpoint, check it is signed by the server and
 * extends what this witness cosigned before (same trail, never fewer events, the same head at the
 * same size; with an export, every event in between chains), then cosign it and append it to the
 * witness's own log. A checkpoint that does not extend the last one is refused, loudly: that is the
 * evidence of a rewrite.
 */
export function witnessCheckpoint(input: WitnessInput): WitnessResult {
  const texts = splitNotes(input.noteText);
  if (texts.length === 0) throw new WitnessRefusal('no checkpoint note found in the input (expected the lines from `gatehouse audit checkpoint` or the checkpoint log)');
  const notes = texts.map((t) => parseNote(t));
  // The newest note in the input: a checkpoint log holds them oldest first.
  const note = notes.reduce((a, b) => (b.seq > a.seq || (b.seq === a.seq && b.at > a.at) ? b : a));
  if (!input.serverKeys.some((pem) => noteSignatureValid(note, pem))) {
    const ids = input.serverKeys.map((pem) => keyIdOf(createPublicKey(pem)));
    throw new WitnessRefusal(`checkpoint ${note.seq} is signed by key ${note.keyId}, and its signature does not verify with the server key${ids.length === 1 ? '' : 's'} given (${ids.join(', ')})`);
  }
  const log = readWitnessLog(input.logFile, input.signer);
  const previous = log.reduce<ParsedNote | undefined>((a, b) => (!a || b.seq > a.seq || (b.seq === a.seq && b.at > a.at) ? b : a), undefined);
  if (previous) {
    if (note.origin !== previous.origin) {
      throw new WitnessRefusal(`the checkpoint is of trail ${note.origin}, but this witness has cosigned trail ${previous.origin} (last at event ${previous.seq}, ${previous.at}): the trail was replaced. Not cosigned.`);
    }
    if (note.seq < previous.seq) {
      throw new WitnessRefusal(`the checkpoint covers ${note.seq} events, fewer than the ${previous.seq} this witness cosigned (signed ${previous.at}): the trail was cut back or rewritten. Not cosigned.`);
    }
    if (note.seq === previous.seq && note.hash !== previous.hash) {
      throw new WitnessRefusal(`the checkpoint gives event ${note.seq} the hash ${note.hash.slice(0, 16)}…, but this witness cosigned ${previous.hash.slice(0, 16)}… for the same event (signed ${previous.at}): the trail was rewritten at or before event ${note.seq}. Not cosigned.`);
    }
    if (note.at < previous.at) {
      throw new WitnessRefusal(`the checkpoint is dated ${note.at}, before the one this witness cosigned last (${previous.at}): not the server's newest. Not cosigned.`);
    }
    if (note.seq === previous.seq) {
      return { cosigned: false, note, previous, eventsChecked: 0, message: `Nothing new: checkpoint ${note.seq} is the one this witness cosigned last (${previous.at}).` };
    }
  }
  let eventsChecked = 0;
  if (input.exportText !== undefined) {
    eventsChecked = checkExportSegment(input.exportText, previous?.seq ?? 0, previous?.hash ?? GENESIS, note.seq, note.hash);
  }
  const entry = `${note.body}\n— ${note.keyId} ${note.signature}\n${cosignatureLine(input.signer, note.body, input.clock.now())}\n`;
  appendFileSync(input.logFile, `${entry}\n`, { mode: 0o600 });
  const grew = previous ? `; it extends event ${previous.seq} cosigned ${previous.at}` : '; the first this witness cosigns';
  const checked = eventsChecked > 0 ? `, and the ${eventsChecked} events since were checked one by one in the export` : '';
  return { cosigned: true, note, previous, eventsChecked, entry, message: `Cosigned checkpoint ${note.seq} (${note.at})${grew}${checked}.` };
}
