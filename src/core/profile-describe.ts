import { classLabels, groups, type GroupSettings, type Profile } from './profile.js';

/** Each setting of a group in words, for `gatehouse profile check` and the console. */
export function describeGroup(s: GroupSettings): Array<[string, string]> {
  const p = s.passwords;
  const list = (xs: readonly string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);
  const composition =
    p.composition === 'none'
      ? 'no character rules'
      : 'atLeast' in p.composition
        ? `at least ${p.composition.atLeast} of: ${list(p.composition.of.map((c) => classLabels[c]))}`
        : `must include ${list(p.composition.all.map((c) => classLabels[c]))}`;
  const expiry = p.expiry.every === 'never' ? 'never' : p.expiry.every === 'days' ? `every ${p.expiry.days} days` : 'when each term starts';
  return [
    ['Password length', `${p.minLength}–${p.maxLength} characters`],
    ['Characters', composition],
    ['Personal details', p.forbidPersonalInfo ? 'username, names and recorded details refused' : 'not checked'],
    ['Previous password', p.sharedRunWithCurrent ? `must not share ${p.sharedRunWithCurrent} characters in a row with it` : 'not compared'],
    ['Reuse', p.reuse.last || p.reuse.withinDays ? `not the last ${p.reuse.last}, nor any used in the last ${p.reuse.withinDays} days` : 'not checked'],
    ['Expiry', expiry + (p.expiry.every !== 'never' && p.remindDaysBefore ? `, reminders ${p.remindDaysBefore} days before` : '')],
    ['Expiry exemption', p.expiryExemption ? `${p.expiryExemption.minLength}+ characters with ${list(p.expiryExemption.classes.map((c) => classLabels[c]))}` : 'none'],
    ['Common passwords', p.compromisedList ? 'refused' : 'allowed'],
    ['Temporary passwords', `expire unused after ${p.temporaryExpiresHours} hours`],
    ['Lockout', s.lockout.after === null ? 'never' : `after ${s.lockout.after} failures${s.lockout.autoUnlockMinutes ? `, unlocks after ${s.lockout.autoUnlockMinutes} minutes` : ', until unlocked'}`],
    ['MFA', s.mfa.always ? 'always' : s.mfa.offsite ? 'away from school networks' : 'optional'],
    ['Acceptable Use Policy', s.aup.required ? 'must be accepted before access' : 'not required at sign-in'],
    ['Sessions', `end after ${s.sessions.idleMinutes} idle minutes, ${s.sessions.absoluteHours} hours at most`],
    ['Sign-in message', s.banner ? 'yes' : 'none'],
    [
      'Self-service reset',
      s.resets.selfService ? `with ${list(s.resets.selfServiceFactors.map((f) => (f === 'authenticator' ? 'an authenticator or recovery code' : 'a link e-mailed to the address on file')))}` : 'no',
    ],
    ['Reset for someone else', s.resets.secondPersonApproval ? 'approved by a second person first' : 'no second person'],
  ];
}

export function profileTable(profile: Profile): string {
  const rows = describeGroup(profile.groups.staff).map(([label]) => label);
  const cells = groups.map((g) => new Map(describeGroup(profile.groups[g])));
  const width = Math.max(...rows.map((r) => r.length)) + 2;
  const lines: string[] = [];
  for (const label of rows) {
    const values = cells.map((c) => c.get(label)!);
    if (values.every((v) => v === values[0])) {
      lines.push(`${label.padEnd(width)}${values[0]}`);
    } else {
      lines.push(`${label.padEnd(width)}${groups.map((g, j) => `${g}: ${values[j]}`).join('\n' + ' '.repeat(width))}`);
    }
  }
  return lines.join('\n');
}
