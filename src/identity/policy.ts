import type { Role } from '../core/authz.js';
import { groupOf, type GroupSettings, type Profile } from '../core/profile.js';

/** The profile's settings for a person of this role. */
export const settingsFor = (profile: Profile, role: Role): GroupSettings => profile.groups[groupOf(role)];

/** AC-09: when a temporary password given at `now` to a person of this role stops working unused. */
export function temporaryPasswordExpiresAt(profile: Profile, role: Role, now: Date): string {
  return new Date(now.getTime() + settingsFor(profile, role).passwords.temporaryExpiresHours * 3_600_000).toISOString();
}

/**
 * When a password set at `setAt` expires under the profile (PW-06), or null if it never does:
 * after N days, or when the next term starts; never for passwords that earned the exemption.
 */
export function passwordExpiresAt(profile: Profile, role: Role, setAt: string | null, exempt: boolean): string | null {
  const expiry = settingsFor(profile, role).passwords.expiry;
  if (!setAt || expiry.every === 'never' || (exempt && settingsFor(profile, role).passwords.expiryExemption)) return null;
  if (expiry.every === 'days') return new Date(Date.parse(setAt) + expiry.days * 86_400_000).toISOString();
  const setDay = setAt.slice(0, 10);
  const next = profile.terms.find((t) => t.starts > setDay);
  return next ? `${next.starts}T00:00:00.000Z` : null;
}

/**
 * AC-07 and AC-14: administrators always need MFA (whatever the profile says); others when the
 * profile asks for it always, or when they are away from the school's networks.
 */
export function mfaRequired(profile: Profile, role: Role, offsite: boolean): boolean {
  if (role === 'administrator') return true;
  const mfa = settingsFor(profile, role).mfa;
  return mfa.always || (mfa.offsite && offsite);
}
