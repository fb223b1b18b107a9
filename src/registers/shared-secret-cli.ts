import { localDate } from '../core/local-time.js';
import type { Profile } from '../core/profile.js';
import type { SharedSecretSummary } from './shared-secrets.js';

/** `gatehouse secrets list|due` as plain text: one block per secret, soonest due first. */
export function formatSecrets(profile: Profile, secrets: SharedSecretSummary[], empty: string): string {
  if (secrets.length === 0) return `${empty}\n`;
  const day = (iso: string) => {
    const d = localDate(new Date(iso), profile.timeZone);
    return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
  };
  const lines: string[] = [];
  for (const s of secrets) {
    const state = s.retiredAt ? `retired ${day(s.retiredAt)}` : s.flagReason ? `FLAGGED: ${s.flagReason}` : s.overdue ? 'OVERDUE' : s.dueSoon ? 'due soon' : 'ok';
    lines.push(`${s.name} (${s.kindLabel})  —  next due ${day(s.nextDueAt)}  [${state}]`);
    lines.push(`    kept: ${s.location}`);
    lines.push(`    rotation: ${s.rotationLabel}; last changed ${s.lastRotatedAt ? day(s.lastRotatedAt) : 'not known'}`);
    lines.push(`    known by: ${s.holders.length ? s.holders.map((h) => `${h.displayName} (${h.username}${h.status === 'active' ? '' : `, ${h.status}`})`).join(', ') : 'nobody recorded'}`);
  }
  lines.push('', 'The register never holds the secrets themselves.');
  return `${lines.join('\n')}\n`;
}
