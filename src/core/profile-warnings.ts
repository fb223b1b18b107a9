import { groups, type Group, type GroupSettings, type Profile } from './profile.js';

/**
 * Settings a school may choose but that go against NCSC and NIST advice: allowed, and shown with
 * the guidance they depart from, so the choice is an informed one.
 */
export interface ProfileWarning {
  setting: string;
  groups: Group[];
  message: string;
  guidance: string;
}

const NIST = 'NIST SP 800-63B §5.1.1.2';
const NCSC = 'NCSC Password policy: updating your approach (2018)';

function check(s: GroupSettings): Array<Omit<ProfileWarning, 'groups'>> {
  const out: Array<Omit<ProfileWarning, 'groups'>> = [];
  const p = s.passwords;
  if (p.composition !== 'none') {
    out.push({
      setting: 'passwords.composition',
      message: 'Composition rules (required character classes) push people towards predictable patterns such as "Password1!" and add little strength.',
      guidance: `${NIST}: verifiers SHOULD NOT impose other composition rules; ${NCSC}: avoid complexity requirements.`,
    });
  }
  if (p.expiry.every !== 'never') {
    out.push({
      setting: 'passwords.expiry',
      message: `Forced expiry (${p.expiry.every === 'days' ? `every ${p.expiry.days} days` : 'every term'}) leads to weaker, incremented passwords; change a password when there is reason to think it is compromised.`,
      guidance: `${NIST}: verifiers SHOULD NOT require memorized secrets to be changed arbitrarily (e.g., periodically); ${NCSC}: regular password changing harms rather than improves security.`,
    });
  }
  if (p.minLength < 8) {
    out.push({ setting: 'passwords.minLength', message: `A minimum of ${p.minLength} characters is below the floor.`, guidance: `${NIST}: at least 8 characters.` });
  }
  if (p.maxLength < 64) {
    out.push({ setting: 'passwords.maxLength', message: `A maximum of ${p.maxLength} characters stops people using long passphrases.`, guidance: `${NIST}: permit at least 64 characters.` });
  }
  if (!p.compromisedList) {
    out.push({ setting: 'passwords.compromisedList', message: 'Common and breached passwords are accepted.', guidance: `${NIST}: compare against a list of commonly-used, expected or compromised values; ${NCSC}: blacklist the most common passwords.` });
  }
  if (s.lockout.after === null) {
    out.push({ setting: 'lockout.after', message: 'Accounts never lock, so guessing is limited only by per-address throttling.', guidance: `${NIST} §5.2.2: limit consecutive failed attempts to no more than 100; ${NCSC}: allow around 10 attempts before locking out.` });
  } else if (s.lockout.after < 5) {
    out.push({
      setting: 'lockout.after',
      message: `Locking after ${s.lockout.after} failures locks out people who mistype, and lets anyone lock another person's account on purpose.`,
      guidance: `${NCSC}: use account lockout or throttling, allowing around 10 attempts.`,
    });
  }
  if (s.resets.selfService && s.resets.selfServiceFactors.length < 2) {
    out.push({
      setting: 'resets.selfServiceFactors',
      message: 'A self-service password reset needs only one factor (a code from the authenticator app or a recovery code): whoever has the phone or the printed codes can take the account over.',
      guidance: 'OWASP ASVS 5.0 §6.4: resetting a forgotten password must not bypass multi-factor authentication (with the password gone, the remaining factor alone is one factor). Add email to selfServiceFactors.',
    });
  }
  return out;
}

export function profileWarnings(profile: Profile): ProfileWarning[] {
  const byKey = new Map<string, ProfileWarning>();
  for (const group of groups) {
    for (const w of check(profile.groups[group])) {
      const key = `${w.setting}\n${w.message}`;
      const existing = byKey.get(key);
      if (existing) existing.groups.push(group);
      else byKey.set(key, { ...w, groups: [group] });
    }
  }
  return [...byKey.values()];
}
