import { dictionary } from '@zxcvbn-ts/language-common';
import { classLabels, type CharacterClass, type GroupSettings } from '../core/profile.js';

/**
 * The profile's password rules, checked one by one so that a person sees each rule with its
 * result as they type. Pure and fast (no hashing): reuse of old passwords, which needs the stored
 * hashes, is checked separately when the password is saved.
 */
export interface RuleResult {
  id: 'length' | 'composition' | 'personal' | 'previous' | 'common' | 'reuse' | 'exemption';
  /** The requirement this rule enforces. */
  requirement: string;
  label: string;
  ok: boolean;
  /** Rules that inform rather than decide (the expiry exemption). */
  advisory?: boolean;
  detail?: string;
}

export interface PasswordContext {
  username?: string | null;
  /** The person's names as recorded: every part of 3+ letters is refused. */
  names?: string[];
  /** Other recorded details (e-mail address, date of birth…). */
  personal?: string[];
  /** The current password, when changing it (PW-04). */
  current?: string | null;
}

const CLASS_TESTS: Record<CharacterClass, RegExp> = {
  upper: /\p{Lu}/u,
  lower: /\p{Ll}/u,
  digit: /\p{Nd}/u,
  symbol: /[^\p{L}\p{Nd}]/u,
};

export function classesIn(password: string): Set<CharacterClass> {
  return new Set((Object.keys(CLASS_TESTS) as CharacterClass[]).filter((c) => CLASS_TESTS[c].test(password)));
}

const list = (xs: string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

let common: Set<string> | undefined;

/**
 * PW-10: the 49,000 most common passwords from breach corpora (the list zxcvbn-ts ships). Also
 * refuses a common password with digits or symbols tacked on ("Summer2024!"), the usual way
 * composition rules are met.
 */
export function isCommonPassword(password: string): boolean {
  common ??= new Set((dictionary as Record<string, string[]>)['passwords-common']);
  const lower = password.toLowerCase();
  if (common.has(lower)) return true;
  const stem = lower.replace(/[^\p{L}]+$/u, '');
  return stem.length >= 4 && stem !== lower && common.has(stem);
}

/** Words of 3+ letters from names and details, lower-cased: "Anne-Marie O'Neill" → anne, marie, neill. */
function parts(values: Array<string | null | undefined>): string[] {
  const out = new Set<string>();
  for (const value of values) {
    if (!value) continue;
    for (const part of value.toLowerCase().split(/[^\p{L}\p{Nd}]+/u)) if (part.length >= 3) out.add(part);
  }
  return [...out];
}

/** The longest run of characters the two share, ignoring case. */
export function longestSharedRun(a: string, b: string): string {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let best = '';
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j < y.length; j++) {
      let k = 0;
      while (i + k < x.length && j + k < y.length && x[i + k] === y[j + k]) k++;
      if (k > best.length) best = x.slice(i, i + k);
    }
  }
  return best;
}

export function checkPassword(settings: GroupSettings, password: string, context: PasswordContext = {}): RuleResult[] {
  const p = settings.passwords;
  const length = [...password].length;
  const have = classesIn(password);
  const results: RuleResult[] = [];

  results.push({
    id: 'length',
    requirement: 'PW-01',
    label: `At least ${p.minLength} characters${p.maxLength < 256 ? ` and at most ${p.maxLength}` : ''}`,
    ok: length >= p.minLength && length <= p.maxLength,
    detail: `${length} character${length === 1 ? '' : 's'}`,
  });

  if (p.composition !== 'none') {
    if ('atLeast' in p.composition) {
      const found = p.composition.of.filter((c) => have.has(c));
      results.push({
        id: 'composition',
        requirement: 'PW-02',
        label: `At least ${p.composition.atLeast} of: ${list(p.composition.of.map((c) => classLabels[c]))}`,
        ok: found.length >= p.composition.atLeast,
        detail: `${found.length} of them so far`,
      });
    } else {
      const missing = p.composition.all.filter((c) => !have.has(c));
      results.push({
        id: 'composition',
        requirement: 'PW-02',
        label: `Include ${list(p.composition.all.map((c) => classLabels[c]))}`,
        ok: missing.length === 0,
        ...(missing.length ? { detail: `still needs ${list(missing.map((c) => classLabels[c]))}` } : {}),
      });
    }
  }

  if (p.forbidPersonalInfo) {
    const lower = password.toLowerCase();
    const username = context.username?.toLowerCase() ?? '';
    const names = parts(context.names ?? []);
    const found = [
      ...(username.length >= 3 && lower.includes(username) ? ['your username'] : []),
      ...names.filter((n) => lower.includes(n)).map((n) => `“${n}” from your name`),
      ...parts(context.personal ?? []).filter((n) => !names.includes(n) && lower.includes(n)).map((n) => `“${n}” from your details`),
    ];
    results.push({
      id: 'personal',
      requirement: 'PW-03',
      label: 'No username, no part of your name, no personal details',
      ok: found.length === 0,
      ...(found.length ? { detail: `contains ${list(found)}` } : {}),
    });
  }

  if (p.sharedRunWithCurrent && context.current) {
    const run = longestSharedRun(password, context.current);
    results.push({
      id: 'previous',
      requirement: 'PW-04',
      label: `No ${p.sharedRunWithCurrent} characters in a row from your current password`,
      ok: run.length < p.sharedRunWithCurrent,
      ...(run.length >= p.sharedRunWithCurrent ? { detail: `shares “${run}”` } : {}),
    });
  }

  if (p.compromisedList) {
    const isCommon = length > 0 && isCommonPassword(password);
    results.push({
      id: 'common',
      requirement: 'PW-10',
      label: 'Not a common or breached password',
      ok: !isCommon,
      ...(isCommon ? { detail: 'this password, or one very like it, is on lists attackers try first' } : {}),
    });
  }

  if (p.expiry.every !== 'never' && p.expiryExemption) {
    const e = p.expiryExemption;
    const qualifies = length >= e.minLength && e.classes.every((c) => have.has(c));
    results.push({
      id: 'exemption',
      requirement: 'PW-06',
      label: `${e.minLength}+ characters with ${list(e.classes.map((c) => classLabels[c]))}: never needs changing`,
      ok: qualifies,
      advisory: true,
    });
  }
  return results;
}

export const acceptable = (results: RuleResult[]): boolean => results.every((r) => r.ok || r.advisory);

/** Does this password earn the profile's expiry exemption (PW-06, P3 7.6)? */
export function earnsExemption(settings: GroupSettings, password: string): boolean {
  const e = settings.passwords.expiryExemption;
  if (!e) return false;
  const have = classesIn(password);
  return [...password].length >= e.minLength && e.classes.every((c) => have.has(c));
}
