import { randomInt } from 'node:crypto';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { GroupSettings } from '../core/profile.js';
import { acceptable, checkPassword, type PasswordContext } from './password-rules.js';

let words: string[] | undefined;

/**
 * AC-09: a system-generated temporary password that is easy to read out and type — three words
 * from the EFF long list and two digits, e.g. "Maple-Tiger-Quartz-47" (about 45 bits, and it
 * expires) — drawn with a CSPRNG, and regenerated until it meets the profile's rules.
 */
export function generateTemporaryPassword(settings: GroupSettings, context: PasswordContext): string {
  words ??= ((dictionary as Record<string, string[]>)['diceware-common'] ?? []).filter((w) => /^[a-z]{4,8}$/.test(w));
  for (let attempt = 0; attempt < 100; attempt++) {
    const parts = Array.from({ length: 3 }, () => {
      const w = words![randomInt(words!.length)]!;
      return w[0]!.toUpperCase() + w.slice(1);
    });
    let candidate = `${parts.join('-')}-${randomInt(10, 100)}`;
    while ([...candidate].length < settings.passwords.minLength) candidate += randomInt(10).toString();
    if (acceptable(checkPassword(settings, candidate, context))) return candidate;
  }
  throw new Error('could not generate a temporary password that meets the profile');
}
