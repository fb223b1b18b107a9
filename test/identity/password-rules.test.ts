import { describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/core/profile.js';
import { acceptable, checkPassword, earnsExemption, isCommonPassword, type PasswordContext } from '../../src/identity/password-rules.js';
import { runCli } from '../helpers/cli.js';

const jane: PasswordContext = { username: 'jbloggs', names: ['Jane Bloggs'], personal: ['jane.bloggs@school.example'] };
const failing = (profile: string, group: 'staff' | 'pupils', password: string, context: PasswordContext = jane) =>
  checkPassword(loadProfile(profile).groups[group], password, context).filter((r) => !r.ok && !r.advisory).map((r) => r.id);

describe('password rules', () => {
  it('PW-01 needs at least 8 characters in every shipped profile', () => {
    for (const p of ['ncsc', 'p0', 'p1', 'p2', 'p3', 'p4']) {
      expect(failing(p, 'staff', 'Xq7!vLp')).toContain('length');
      expect(failing(p, 'staff', 'Xq7!vLpz')).not.toContain('length');
    }
  });

  it('PW-02 p1 needs three of upper, lower, digit and symbol', () => {
    expect(failing('p1', 'staff', 'quietmoonlight7')).toEqual(['composition']);
    expect(failing('p1', 'staff', 'Quietmoonlight7')).toEqual([]);
    expect(failing('p1', 'staff', 'quiet-moonlight7')).toEqual([]);
    // P1's rules are staff rules; pupils keep the baseline.
    expect(failing('p1', 'pupils', 'quietmoonlight')).toEqual([]);
  });

  it('PW-02 p3 needs upper, lower and a digit', () => {
    expect(failing('p3', 'staff', 'QUIETMOONLIGHT7')).toEqual(['composition']);
    expect(failing('p3', 'staff', 'Quietmoonlight!')).toEqual(['composition']);
    expect(failing('p3', 'staff', 'Quietmoonlight7')).toEqual([]);
  });

  it('PW-02 p4 needs one upper-case letter and one digit', () => {
    expect(failing('p4', 'staff', 'quietmoonlight7')).toEqual(['composition']);
    expect(failing('p4', 'staff', 'QUIETMOONLIGHT7')).toEqual([]);
    expect(failing('p4', 'pupils', 'Quietmoonlight')).toEqual(['composition']);
  });

  it('PW-03 refuses the username, any part of the name and recorded details, whatever the case', () => {
    expect(failing('ncsc', 'staff', 'xx-JBloggs-2026')).toEqual(['personal']);
    expect(failing('ncsc', 'staff', 'lovely-JANE-day')).toEqual(['personal']);
    expect(failing('p4', 'staff', 'Bloggsville-77')).toEqual(['personal']);
    expect(failing('ncsc', 'staff', 'school-example-tree')).toEqual(['personal']);
    // Name parts shorter than three letters are not words to refuse.
    expect(failing('ncsc', 'staff', 'Jo is a bird 44', { username: 'jo', names: ['Jo Li'] })).toEqual([]);
    const rule = checkPassword(loadProfile('ncsc').groups.staff, 'lovely-JANE-day', jane).find((r) => r.id === 'personal')!;
    expect(rule.detail).toBe('contains “jane” from your name');
  });

  it('PW-04 p4 refuses any part of the previous password (4 characters in a row), ignoring case', () => {
    const current = 'Tulip-Garden-42';
    expect(failing('p4', 'staff', 'GARDEN-Violet-99', { ...jane, current })).toEqual(['previous']);
    expect(failing('p4', 'staff', 'Sunflower-Meadow-7', { ...jane, current })).toEqual([]);
    // Three shared characters are allowed ("ip-").
    expect(failing('p4', 'staff', 'Ship-Sailing-7', { ...jane, current })).toEqual([]);
  });

  it('PW-04 p1 wants a new password significantly different from the current one', () => {
    expect(failing('p1', 'staff', 'Autumn-Leaves-43', { ...jane, current: 'Autumn-Leaves-42' })).toEqual(['previous']);
  });

  it('PW-10 refuses common and breached passwords, also with digits and symbols added', () => {
    for (const pw of ['password', 'Password1', 'Summer2024!', 'Qwerty123', 'iloveyou']) expect(isCommonPassword(pw), pw).toBe(true);
    for (const pw of ['Quietmoonlight7', 'violet-staple-harbour']) expect(isCommonPassword(pw), pw).toBe(false);
    expect(failing('p1', 'staff', 'Password1!')).toEqual(['common']);
  });

  it('PW-06 p3 tells a person when their password earns the 15-character exemption from termly expiry', () => {
    const staff = loadProfile('p3').groups.staff;
    expect(earnsExemption(staff, 'Quietmoonlight7')).toBe(false);
    expect(earnsExemption(staff, 'Quiet-moonlight-7')).toBe(true);
    const rules = checkPassword(staff, 'Quietmoonlight7', jane);
    expect(rules.find((r) => r.id === 'exemption')).toMatchObject({ ok: false, advisory: true });
    expect(acceptable(rules)).toBe(true);
  });

  it('PW-03 PW-04 `gatehouse password check` reads the password from standard input and exits 0 only when acceptable', async () => {
    const args = ['password', 'check', '--profile', 'p4', '--group', 'staff', '--username', 'jbloggs', '--name', 'Jane Bloggs'];
    const good = await runCli(args, {}, 'Sunflower-Meadow-7\n');
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ acceptable: true, group: 'staff' });
    const bad = await runCli([...args, '--current-stdin'], {}, 'Tulip-Garden-42\nJane-Garden-42\n');
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as { rules: Array<{ id: string; ok: boolean; requirement: string }> };
    expect(report.rules.filter((r) => !r.ok).map((r) => `${r.requirement} ${r.id}`)).toEqual(['PW-03 personal', 'PW-04 previous']);
  });
});
