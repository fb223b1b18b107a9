import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfile, shippedProfiles } from '../../src/core/profile.js';
import { profileWarnings } from '../../src/core/profile-warnings.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-profile-'));

describe('policy profiles', () => {
  it('every shipped profile is valid and extends the NCSC baseline', () => {
    for (const name of shippedProfiles()) {
      const profile = loadProfile(name);
      expect(profile.lineage[0]).toBe('NCSC / NIST baseline');
    }
  });

  it('PW-07 PW-02 the NCSC baseline has no warnings: no composition rules, no expiry, a blocklist, lockout after 10', () => {
    const ncsc = loadProfile('ncsc');
    expect(profileWarnings(ncsc)).toEqual([]);
    expect(ncsc.groups.staff.passwords).toMatchObject({ composition: 'none', expiry: { every: 'never' }, compromisedList: true });
    expect(ncsc.groups.staff.lockout.after).toBe(10);
    expect(ncsc.groups.administrators.mfa.always).toBe(true);
  });

  it('PW-07 p1 locks staff after 6 failures, p4 everyone after 3; where a policy is silent the baseline applies', () => {
    const p1 = loadProfile('p1');
    expect(p1.groups.staff.lockout.after).toBe(6);
    expect(p1.groups.pupils.lockout.after).toBe(10);
    const p4 = loadProfile('p4');
    for (const g of ['pupils', 'staff', 'guests', 'administrators'] as const) expect(p4.groups[g].lockout.after).toBe(3);
  });

  it('PW-02 each profile carries its own composition rule', () => {
    expect(loadProfile('p1').groups.staff.passwords.composition).toEqual({ atLeast: 3, of: ['upper', 'lower', 'digit', 'symbol'] });
    expect(loadProfile('p3').groups.staff.passwords.composition).toEqual({ all: ['upper', 'lower', 'digit'] });
    expect(loadProfile('p4').groups.staff.passwords.composition).toEqual({ all: ['upper', 'digit'] });
    expect(loadProfile('p0').groups.staff.passwords.composition).toBe('none');
  });

  it('PW-06 p1 expires staff passwords after 90 days, p3 termly with a 15-character exemption, p4 every 90 days for all', () => {
    expect(loadProfile('p1').groups.staff.passwords.expiry).toEqual({ every: 'days', days: 90 });
    const p3 = loadProfile('p3');
    expect(p3.groups.staff.passwords.expiry).toEqual({ every: 'term' });
    expect(p3.groups.staff.passwords.expiryExemption).toEqual({ minLength: 15, classes: ['upper', 'lower', 'digit', 'symbol'] });
    expect(p3.terms.length).toBeGreaterThan(3);
    expect(loadProfile('p4').groups.pupils.passwords.expiry).toEqual({ every: 'days', days: 90 });
  });

  it('PW-02 warns, citing the guidance, where a profile departs from NCSC/NIST advice', () => {
    const warnings = profileWarnings(loadProfile('p4'));
    expect(warnings.map((w) => w.setting)).toEqual(['passwords.composition', 'passwords.expiry', 'lockout.after']);
    for (const w of warnings) expect(w.guidance).toMatch(/NIST SP 800-63B|NCSC/);
    expect(warnings[0]!.groups).toEqual(['pupils', 'staff', 'guests', 'administrators']);
  });

  it('AC-10 every shipped profile asks staff for two factors of different kinds to reset their own password, and administrators for none (never self-service); a profile asking staff for one is refused', () => {
    for (const name of shippedProfiles()) {
      const profile = loadProfile(name);
      expect({ name, staff: profile.groups.staff.resets }).toEqual({ name, staff: { selfService: true, selfServiceFactors: ['authenticator', 'email'], secondPersonApproval: true } });
      expect({ name, administrators: profile.groups.administrators.resets.selfService }).toEqual({ name, administrators: false });
    }
    const oneFactor = path.join(dir, 'one-factor.yaml');
    writeFileSync(oneFactor, 'name: One factor\nextends: ncsc\ngroups:\n  staff:\n    resets: { selfServiceFactors: [authenticator] }\n');
    expect(() => loadProfile(oneFactor)).toThrow(/groups\.staff\.resets\.selfServiceFactors must be \[authenticator, email\].*two factors of different kinds/);
    const noCode = path.join(dir, 'no-code.yaml');
    writeFileSync(noCode, 'name: Link only\nextends: ncsc\ngroups:\n  pupils:\n    resets: { selfService: true, selfServiceFactors: [email] }\n');
    expect(() => loadProfile(noCode)).toThrow(/selfServiceFactors: must include authenticator/);
  });

  it('refuses an invalid profile with the setting and the reason', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'name: Bad\nextends: ncsc\ndefaults:\n  passwords:\n    minLength: 0\n    composition: { atLeast: 5, of: [upper] }\n  lockot: { after: 3 }\n');
    expect(() => loadProfile(file)).toThrow(/defaults\.passwords\.minLength: Too small|defaults: Unrecognized key: "lockot"/);
    const termly = path.join(dir, 'termly.yaml');
    writeFileSync(termly, 'name: Termly\nextends: ncsc\ndefaults:\n  passwords:\n    expiry: { every: term }\n');
    expect(() => loadProfile(termly)).toThrow(/expires passwords termly, but the profile lists no term dates/);
  });

  it('a school profile can extend a shipped one and override one group', () => {
    const file = path.join(dir, 'ours.yaml');
    writeFileSync(file, 'name: Our school\nextends: p4\ngroups:\n  pupils:\n    lockout: { after: 10 }\n');
    const ours = loadProfile(file);
    expect(ours.lineage).toEqual(['NCSC / NIST baseline', 'P4 — Technical Security Policy', 'Our school']);
    expect(ours.groups.pupils.lockout.after).toBe(10);
    expect(ours.groups.staff.lockout.after).toBe(3);
  });

  it('`gatehouse profile check` prints the rules and the warnings, and exits 1 for an invalid profile', async () => {
    const ok = await runCli(['profile', 'check', 'p3'], {});
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('p3: valid — "P3 — ICT Security Policy"');
    expect(ok.stdout).toMatch(/! passwords\.expiry \(staff, administrators\)\n.*\n    Guidance: NIST SP 800-63B/);
    const bad = await runCli(['profile', 'check', path.join(dir, 'bad.yaml')], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not valid');
  });
});
