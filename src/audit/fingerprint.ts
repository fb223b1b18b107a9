import { schedulePeriodic, type Periodic } from '../core/periodic.js';
import type { Actor } from '../core/context.js';
import { systemActor } from '../core/context.js';
import { conflict } from '../core/errors.js';
import type { Runtime } from '../runtime.js';
import { lockAuditWriter } from './writer.js';

/**
 * The trail's fingerprint: a signed checkpoint's size and the first 16 hex digits of its head hash,
 * short enough to read aloud, write in the governors' minutes or keep on paper. Whoever keeps one
 * can later check (`gatehouse audit verify --head "SEQ:HEX"`) that the trail still leads to that
 * head, whoever holds the server and its keys by then.
 *
 * 16 hex digits are 64 bits: matching them with a rewritten trail takes about 2^64 hash attempts.
 * The e-mail and the printed page also carry the full hash and the signed note.
 */
export const FINGERPRINT_HEX = 16;

export interface Fingerprint {
  seq: number;
  /** the first 16 hex digits of the head hash */
  hex: string;
  /** the same in groups of four, for reading aloud: "9f3a 1c0b 77de 42a0" */
  grouped: string;
  /** what `--head` takes: "1234:9f3a1c0b77de42a0" */
  text: string;
}

export function fingerprintOf(seq: number, hash: string): Fingerprint {
  const hex = hash.slice(0, FINGERPRINT_HEX).toLowerCase();
  return { seq, hex, grouped: hex.match(/.{4}/g)!.join(' '), text: `${seq}:${hex}` };
}

/** A fingerprint written down: "SEQ:HEX"; spaces, dashes and thousands commas are allowed. */
export interface WrittenHead {
  seq: number;
  /** 16 to 64 lower-case hex digits, a prefix of the head hash */
  prefix: string;
  /** as given, for messages */
  text: string;
}

export function parseHead(text: string): WrittenHead {
  const m = /^\s*([\d,\s]+)\s*:\s*([0-9A-Fa-f\s-]+)\s*$/.exec(text);
  const seq = m ? Number(m[1]!.replace(/[,\s]/g, '')) : NaN;
  const prefix = m ? m[2]!.replace(/[\s-]/g, '').toLowerCase() : '';
  if (!m || !Number.isSafeInteger(seq) || seq < 1) {
    throw new Error(`"${text}" is not a fingerprint: write it as the event number, a colon and the hex digits, e.g. "1234:9f3a 1c0b 77de 42a0"`);
  }
  if (prefix.length < FINGERPRINT_HEX || prefix.length > 64) {
    throw new Error(`"${text}": a fingerprint has at least ${FINGERPRINT_HEX} hex digits (at most 64)`);
  }
  return { seq, prefix, text: text.trim() };
}

export interface HeadCheckpoint {
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  note: string;
  fingerprint: Fingerprint;
}

/**
 * The newest signed checkpoint; with `sign`, the head is signed first when events have been added
 * since (on a node that holds the signing key), so the fingerprint covers everything up to now.
 */
export async function headCheckpoint(rt: Pick<Runtime, 'db' | 'trail' | 'signer'>, options: { sign: boolean }): Promise<HeadCheckpoint | undefined> {
  if (options.sign && rt.signer) await rt.trail.checkpointNow();
  const row = await rt.db.kysely.selectFrom('audit_checkpoint').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
  if (!row) return undefined;
  const seq = Number(row.seq);
  return { seq, hash: row.hash, at: row.at, keyId: row.key_id, note: row.note, fingerprint: fingerprintOf(seq, row.hash) };
}

/** How often the governors' e-mail goes out (GATEHOUSE_AUDIT_FINGERPRINT_EMAIL). */
export type FingerprintSchedule = 'off' | 'daily' | 'weekly' | 'monthly';

const DAY = 86_400_000;
const PERIOD: Record<Exclude<FingerprintSchedule, 'off'>, number> = { daily: DAY, weekly: 7 * DAY, monthly: 30 * DAY };
/** After a failed or interrupted send, try again after this long (at most the period). */
const RETRY_AFTER = DAY;

/** The named roles that receive it: the headteacher and the responsible governor (GV-04). */
export const FINGERPRINT_RECIPIENTS = ['headteacher', 'governor'] as const;

export interface FingerprintMailResult {
  /** false when a scheduled run found nothing due */
  attempted: boolean;
  seq: number | null;
  sent: string[];
  failed: Array<{ to: string; error: string }>;
}

export function whenLocal(rt: Pick<Runtime, 'profile'>, iso: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: rt.profile.timeZone, dateStyle: 'full', timeStyle: 'short' }).format(new Date(iso));
}

export function fingerprintMail(schoolName: string, contactName: string, cp: HeadCheckpoint, when: string): { subject: string; text: string } {
  const f = cp.fingerprint;
  return {
    subject: `${schoolName}: audit trail fingerprint ${f.seq} / ${f.grouped}`,
    text:
      `Dear ${contactName},\n\n` +
      `This is the fingerprint of ${schoolName}'s audit trail in Gatehouse: the record of every sign-in and every change to ` +
      `accounts, internet filtering and settings. Please keep this e-mail (or print it and file it with the governors' papers). ` +
      `It lets anyone check later that nobody, not even someone in control of the server, has rewritten the trail up to today.\n\n` +
      `    Event:        ${f.seq.toLocaleString('en-GB')}\n` +
      `    Fingerprint:  ${f.grouped}\n` +
      `    Signed:       ${when}\n\n` +
      `You need do nothing else. If you are asked to confirm the trail, read out the event number and the fingerprint; ` +
      `the person checking runs:\n\n    gatehouse audit verify --head "${f.text}"\n\n` +
      `If it does not match, the trail has been altered since this e-mail was sent: tell the headteacher and the chair of governors.\n\n` +
      `This e-mail never contains a link. The full head hash is ${cp.hash} and the signed checkpoint follows ` +
      `(it can be checked too, with this e-mail saved as text: gatehouse audit verify --checkpoints <file>):\n\n` +
      `${cp.note}\n` +
      `— Gatehouse\n`,
  };
}

/**
 * E-mails the current fingerprint to the headteacher and the responsible governor (School > Named
 * roles). Each send is recorded in the trail. Scheduled runs first claim the period under the
 * trail's lock, so several nodes sharing one database send it once.
 */
export async function emailFingerprint(
  rt: Runtime,
  actor: Actor,
  options: { scheduled: boolean; schedule?: FingerprintSchedule },
): Promise<FingerprintMailResult> {
  const none: FingerprintMailResult = { attempted: false, seq: null, sent: [], failed: [] };
  if (!rt.mailer.configured) {
    if (options.scheduled) return none;
    throw conflict('No SMTP server is configured (GATEHOUSE_SMTP_URL), so nothing can be e-mailed.', 'smtp_not_configured');
  }
  const contacts = await rt.db.kysely
    .selectFrom('school_contact')
    .select(['role', 'name', 'email'])
    .where('role', 'in', [...FINGERPRINT_RECIPIENTS])
    .execute();
  const recipients = contacts.filter((c): c is typeof c & { email: string } => !!c.email);
  if (!options.scheduled && recipients.length === 0) {
    throw conflict('Neither the headteacher nor the responsible governor has an e-mail address under School > Named roles.', 'no_recipients');
  }
  const schedule = options.schedule ?? 'weekly';
  if (options.scheduled && schedule === 'off') return none;

  const cp = await headCheckpoint(rt, { sign: true });
  // Claim (scheduled: only when due) in one transaction under the trail's lock.
  const claimed = await rt.trail.transaction(actor, async (ctx) => {
    await lockAuditWriter(ctx.db);
    if (options.scheduled && schedule !== 'off') {
      const last = await ctx.db
        .selectFrom('audit_event')
        .select(['seq', 'at'])
        .where('action', '=', 'audit.fingerprint_emailing')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (last) {
        const done = await ctx.db
          .selectFrom('audit_event')
          .select('seq')
          .where('action', '=', 'audit.fingerprint_emailed')
          .where('seq', '>', last.seq)
          .limit(1)
          .executeTakeFirst();
        const age = ctx.clock.now().getTime() - Date.parse(last.at);
        const wait = done ? PERIOD[schedule] : Math.min(PERIOD[schedule], RETRY_AFTER);
        if (age < wait) return false;
      }
    }
    await ctx.audit.record({
      action: 'audit.fingerprint_emailing',
      target: 'audit_trail',
      details: {
        seq: cp?.seq ?? null,
        fingerprint: cp?.fingerprint.text ?? null,
        to: recipients.map((r) => r.role),
        scheduled: options.scheduled,
      },
    });
    return true;
  });
  if (!claimed) return none;

  const result: FingerprintMailResult = { attempted: true, seq: cp?.seq ?? null, sent: [], failed: [] };
  const school = await rt.db.kysely.selectFrom('school').select('name').executeTakeFirst();
  if (!cp) {
    result.failed.push({ to: '(everyone)', error: 'no checkpoint has been signed yet' });
  } else if (recipients.length === 0) {
    result.failed.push({ to: '(nobody)', error: 'neither the headteacher nor the responsible governor has an e-mail address under School > Named roles' });
  } else {
    const when = whenLocal(rt, cp.at);
    for (const r of recipients) {
      const mail = fingerprintMail(school?.name ?? 'your school', r.name, cp, when);
      const sent = await rt.mailer.send({ to: r.email, ...mail });
      if (sent.sent) result.sent.push(r.email);
      else result.failed.push({ to: r.email, error: sent.error ?? 'not sent' });
    }
  }
  await rt.trail.transaction(actor, (ctx) =>
    ctx.audit.record(
      result.failed.length === 0
        ? { action: 'audit.fingerprint_emailed', target: 'audit_trail', details: { seq: cp!.seq, fingerprint: cp!.fingerprint.text, to: result.sent } }
        : {
            action: 'audit.fingerprint_email_failed',
            target: 'audit_trail',
            severity: 'warning',
            details: { seq: cp?.seq ?? null, fingerprint: cp?.fingerprint.text ?? null, to: result.sent, failed: result.failed },
          },
    ),
  );
  return result;
}

/** In `serve`: checks hourly (first a minute after start) whether the e-mail is due. */
export function scheduleFingerprintEmails(rt: Runtime, everyMs = 3_600_000): Periodic {
  const schedule = rt.config.auditFingerprintEmail;
  return schedulePeriodic(
    rt.logger,
    'audit fingerprint e-mail',
    async () => {
      if (schedule === 'off' || !rt.mailer.configured) return;
      const r = await emailFingerprint(rt, systemActor(), { scheduled: true, schedule });
      if (r.attempted) rt.logger.info({ auditFingerprint: { seq: r.seq, sent: r.sent.length, failed: r.failed.length } }, 'audit fingerprint e-mailed to the headteacher and governor');
    },
    { everyMs, firstAfterMs: 60_000 },
  );
}

