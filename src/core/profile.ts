import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { roles, type Role } from './authz.js';
import { ConfigError } from './errors.js';

/**
 * The school's policy as data: every value on which the five policies differ. A profile file
 * (YAML or JSON) may `extend` another (a shipped one by name, or a file), overriding what it sets;
 * `groups` override settings for pupils, staff, guests and administrators. Code reads settings
 * from the resolved profile for a person's group, never from literals.
 */

export const characterClasses = ['upper', 'lower', 'digit', 'symbol'] as const;
export type CharacterClass = (typeof characterClasses)[number];
export const classLabels: Record<CharacterClass, string> = {
  upper: 'an upper-case letter',
  lower: 'a lower-case letter',
  digit: 'a number',
  symbol: 'a symbol',
};

export const groups = ['pupils', 'staff', 'guests', 'administrators'] as const;
export type Group = (typeof groups)[number];

export function groupOf(role: Role): Group {
  if (role === 'pupil') return 'pupils';
  if (role === 'guest') return 'guests';
  if (role === 'administrator') return 'administrators';
  return 'staff';
}

const classList = z.array(z.enum(characterClasses)).min(1).max(4);

/** AC-10/AC-11: the kinds of proof a self-service password reset can ask for. */
export const selfServiceFactors = ['authenticator', 'email'] as const;
export type SelfServiceFactor = (typeof selfServiceFactors)[number];

const composition = z.union([
  z.literal('none'),
  z.object({ atLeast: z.number().int().min(1).max(4), of: classList }).strict(),
  z.object({ all: classList }).strict(),
]);

const expiry = z.union([
  z.object({ every: z.literal('never') }).strict(),
  z.object({ every: z.literal('days'), days: z.number().int().min(1).max(3650) }).strict(),
  z.object({ every: z.literal('term') }).strict(),
]);

const cidr = z.string().refine((v) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v), 'must be a network in CIDR form, e.g. 10.0.0.0/8');

/** Every setting of one group; profile files give any part of it. */
const settingsSchema = z
  .object({
    passwords: z
      .object({
        minLength: z.number().int().min(1).max(256),
        maxLength: z.number().int().min(8).max(1024),
        composition,
        /** PW-03: no username, no part (3+ letters) of the person's names, no other recorded details. */
        forbidPersonalInfo: z.boolean(),
        /** PW-04: at change time, no run of this many characters shared with the current password. */
        sharedRunWithCurrent: z.number().int().min(2).max(64).nullable(),
        /** PW-05: not one of the last N passwords, nor any used within D days. */
        reuse: z.object({ last: z.number().int().min(0).max(50), withinDays: z.number().int().min(0).max(3650) }).strict(),
        /** PW-06 */
        expiry,
        remindDaysBefore: z.number().int().min(0).max(90),
        /** PW-06 (P3): no expiry for passwords this long using all these classes. */
        expiryExemption: z.object({ minLength: z.number().int().min(8).max(256), classes: classList }).strict().nullable(),
        /** PW-10: refuse passwords on the shipped list of common and breached passwords. */
        compromisedList: z.boolean(),
        /** AC-09: a temporary password unused for this long stops working. */
        temporaryExpiresHours: z.number().int().min(1).max(24 * 30),
      })
      .strict(),
    /** PW-07 */
    lockout: z.object({ after: z.number().int().min(1).max(1000).nullable(), autoUnlockMinutes: z.number().int().min(1).max(10_080).nullable() }).strict(),
    /** AC-14: MFA always, or away from the school's networks. */
    mfa: z.object({ always: z.boolean(), offsite: z.boolean() }).strict(),
    /** AC-06 */
    aup: z.object({ required: z.boolean() }).strict(),
    /** AC-15 */
    sessions: z.object({ idleMinutes: z.number().int().min(1).max(24 * 60), absoluteHours: z.number().int().min(1).max(24 * 30) }).strict(),
    /** AC-16: shown at sign-in. */
    banner: z.string().max(2000).nullable(),
    /**
     * AC-10/AC-11: whether people of the group may reset their own password with a second factor,
     * which factors that takes (`authenticator`: a code from their authenticator app or a recovery
     * code; `email`: a single-use link e-mailed to the address on file), and whether a reset done for
     * them needs a second authorised person's approval first. Administrators never reset their own
     * password (whatever this says): theirs go through a second person.
     */
    resets: z
      .object({
        selfService: z.boolean(),
        selfServiceFactors: z
          .array(z.enum(selfServiceFactors))
          .min(1)
          .refine((f) => new Set(f).size === f.length, 'lists a factor twice')
          .refine((f) => f.includes('authenticator'), 'must include authenticator: a self-service reset always starts with a code from the person’s authenticator app or a recovery code'),
        secondPersonApproval: z.boolean(),
      })
      .strict(),
  })
  .strict();

export type GroupSettings = z.infer<typeof settingsSchema>;
/** What a profile file may give for a group: any part of its settings (zod 4 has no deepPartial). */
const partialSettings = partialDeep(settingsSchema);

function partialDeep(schema: typeof settingsSchema) {
  const shape = schema.shape;
  const out: Record<string, z.ZodType> = {};
  for (const [key, value] of Object.entries(shape)) {
    out[key] = value instanceof z.ZodObject ? (value as z.ZodObject).partial().optional() : (value as z.ZodType).optional();
  }
  return z.object(out).strict();
}

const term = z
  .object({
    name: z.string().min(1).max(100),
    starts: z.iso.date('must be a date like 2026-09-03'),
    ends: z.iso.date('must be a date like 2026-12-18'),
  })
  .strict()
  .refine((t) => t.ends >= t.starts, 'a term must end on or after the day it starts');

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time like 08:30');

/** A filtering policy's starting settings (FI-05); the console edits the school's own copy. */
const filterPolicySettings = z
  .object({
    blockedCategories: z.array(z.string().min(1).max(100)).max(500),
    schedules: z
      .array(
        z
          .object({
            categories: z.array(z.string().min(1).max(100)).min(1).max(500),
            days: z.array(z.number().int().min(1).max(7)).min(1).max(7),
            from: clockTime,
            to: clockTime,
            label: z.string().max(100).optional(),
          })
          .strict(),
      )
      .max(50),
    safeSearch: z.enum(['on', 'off']),
    youtube: z.enum(['off', 'moderate', 'strict']),
    downloadsAllowed: z.boolean(),
    defaultAction: z.enum(['allow', 'block']),
  })
  .strict();
export type FilterPolicySettings = z.infer<typeof filterPolicySettings>;
export const filterPolicyGroups = [...groups, 'unknown'] as const;
export type FilterPolicyGroup = (typeof filterPolicyGroups)[number];

const filteringSchema = z
  .object({
    /** MO-01: filtering activity is kept this many days. */
    activityRetentionDays: z.number().int().min(1).max(3650).optional(),
    /** FI-04: a list not updated for this many of its schedules is reported stale. */
    staleAfterSchedules: z.number().int().min(2).max(100).optional(),
    /** FI-02: a sign-in at the captive page maps the device to the person until this local time. */
    captiveUntil: clockTime.optional(),
    /** FI-05: starting policies for the four groups and for unknown devices. */
    policies: z.object(Object.fromEntries(filterPolicyGroups.map((g) => [g, filterPolicySettings.optional()]))).strict().optional(),
  })
  .strict();

/**
 * FI-06, FI-07, FI-08, FI-12, AU-03: who may approve a change to the filtering (never the person who
 * asked for it), how soon an emergency change still awaiting approval is escalated, and how long a
 * lesson allowance or a period with filtering off may last.
 */
const governanceSchema = z
  .object({
    /** The roles whose members approve filtering changes and filter-off requests (FI-06, FI-08). */
    changeApprovers: z.array(z.enum(roles)).min(1).max(9).optional(),
    /** An emergency change that took effect at once is escalated after this many hours unapproved. */
    emergencyEscalateAfterHours: z.number().int().min(1).max(168).optional(),
    /** FI-12: the longest a teacher may open a site or category for a class. */
    lessonAllowanceMaxMinutes: z.number().int().min(5).max(480).optional(),
    /** FI-08: the longest filtering may be turned off for a person, group or device. */
    filterOffMaxHours: z.number().int().min(1).max(24 * 31).optional(),
    /** Issue 11 (FI-06): `required`: the filtering routes make change requests a second person approves; `off`: they apply at once (audited). */
    changeControl: z.enum(['required', 'off'], { error: 'must be required or off' }).optional(),
  })
  .strict();

// issue 11: safeguarding alerts (FI-11, MO-02, MO-03, MO-07)
const alertSeverity = z.enum(['high', 'medium', 'low']);
const alertsSchema = z
  .object({
    /** blocked categories of concern (list category ids) and how serious a block in each is */
    concernCategories: z.record(z.string().min(1).max(100), alertSeverity).optional(),
    /** repeated blocked attempts by one person or device within a window raise an alert */
    repeated: z.object({ attempts: z.number().int().min(2).max(1000), withinMinutes: z.number().int().min(1).max(1440), severity: alertSeverity }).strict().optional(),
    /** categories that mean getting round the filter (VPN, DNS over HTTPS, proxies) */
    circumventionCategories: z.array(z.string().min(1).max(100)).max(100).optional(),
    circumventionSeverity: alertSeverity.optional(),
    /** watch-list search terms, any language; matched after leetspeak and accents are normalised, one letter off for words of 5+ letters */
    watchList: z.array(z.object({ term: z.string().trim().min(2).max(100), severity: alertSeverity, theme: z.string().trim().min(1).max(100) }).strict()).max(5000).optional(),
    /** security events: blocked connections to this many distinct ports or hosts from one address within a minute look like a scan */
    portScanDistinct: z.number().int().min(3).max(10_000).optional(),
    /** who is told, by role, for each kind of alert */
    recipients: z.object({ safeguarding: z.array(z.enum(roles)).min(1).max(9), security: z.array(z.enum(roles)).min(1).max(9) }).strict().optional(),
    /** unacknowledged alerts go to these roles in turn, one step every `escalateAfterMinutes` */
    escalation: z.object({ safeguarding: z.array(z.enum(roles)).max(9), security: z.array(z.enum(roles)).max(9) }).strict().optional(),
    escalateAfterMinutes: z.number().int().min(1).max(7 * 1440).optional(),
    /** low-severity alerts are sent as one digest this often (minutes); 0 sends them at once */
    lowSeverityDigestMinutes: z.number().int().min(0).max(1440).optional(),
    /** webhooks (Teams, Slack or generic JSON); https to a public address only */
    webhooks: z.array(z.object({ url: z.string().url().max(2000), format: z.enum(['teams', 'slack', 'json']), kinds: z.array(z.enum(['safeguarding', 'security'])).min(1) }).strict()).max(10).optional(),
  })
  .strict();

/** Equipment registers (issue 12): how often things are reviewed and when a device's state is stale. */
const registersSchema = z
  .object({
    /** AS-01: a stock-take of the equipment at least this often. */
    stockTakeEveryMonths: z.number().int().min(1).max(36),
    /** AS-11: anti-virus signatures older than this many days are stale. */
    antivirusStaleDays: z.number().int().min(1).max(90),
    /** AS-12: a critical update pending longer than this many days is overdue (Cyber Essentials: 14). */
    criticalPatchDays: z.number().int().min(1).max(90),
    /** AS-13: a device not seen (inventory check-in or on the network) for this many days is flagged. */
    deviceUnseenDays: z.number().int().min(1).max(365),
    /** AS-06: a licence expiring within this many days shows on the overview. */
    licenceExpiryWarnDays: z.number().int().min(1).max(365),
  })
  .strict();

export const profileFileSchema = z
  .object({
    name: z.string().min(1).max(200),
    description: z.string().max(4000).optional(),
    /** Where the rules come from (a policy and its sections). */
    source: z.string().max(1000).optional(),
    extends: z.string().max(500).optional(),
    trustedNetworks: z.array(cidr).optional(),
    terms: z.array(term).optional(),
    /** The school's time zone: where "end of the day" and term dates are. */
    timeZone: z.string().refine(validTimeZone, 'must be an IANA time zone such as Europe/London').optional(),
    /** AC-02: how often senior leaders review access rights. */
    accessReview: z.object({ everyMonths: z.number().int().min(1).max(36) }).strict().optional(),
    /** AC-05: guest access ends at the stated time or this local time, whichever is first; visitor details are wiped this long after. */
    guests: z.object({ endOfDay: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time like 17:30'), retentionDays: z.number().int().min(0).max(3650) }).strict().optional(),
    /** PW-12: how often a shared secret is rotated when the register does not say. */
    sharedSecrets: z.object({ rotation: z.union([z.literal('termly'), z.object({ days: z.number().int().min(1).max(3650) }).strict()]) }).strict().optional(),
    /** FI-02, FI-03, FI-05, MO-01: filtering. */
    filtering: filteringSchema.optional(),
    /** FI-06, FI-07, FI-08, FI-12, AU-03: change control. */
    governance: governanceSchema.optional(),
    /** filter exceptions (issue 11, IN-06): the only sites a quarantined device may reach. */
    quarantine: z.object({ remediationSites: z.array(z.string().min(1).max(253)).max(100) }).strict().optional(),
    // issue 11: safeguarding alerts
    alerts: alertsSchema.optional(),
    defaults: partialSettings.optional(),
    groups: z.object(Object.fromEntries(groups.map((g) => [g, partialSettings.optional()]))).strict().optional(),
    // equipment registers (issue 12: AS-01, AS-06, AS-11, AS-12, AS-13)
    registers: registersSchema.optional(),
  })
  .strict();

export type ProfileFile = z.infer<typeof profileFileSchema>;

export interface Term {
  name: string;
  starts: string;
  ends: string;
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export interface Profile {
  timeZone: string;
  accessReview: { everyMonths: number };
  guests: { endOfDay: string; retentionDays: number };
  sharedSecrets: { rotation: 'termly' | { days: number } };
  filtering: {
    activityRetentionDays: number;
    staleAfterSchedules: number;
    captiveUntil: string;
    policies: Record<FilterPolicyGroup, FilterPolicySettings>;
  };
  governance: {
    changeApprovers: Role[];
    emergencyEscalateAfterHours: number;
    lessonAllowanceMaxMinutes: number;
    filterOffMaxHours: number;
    /** Issue 11: change control */
    changeControl: 'required' | 'off';
  };
  /** filter exceptions (issue 11, IN-06) */
  quarantine: { remediationSites: string[] };
  // issue 11: safeguarding alerts
  alerts: Required<z.infer<typeof alertsSchema>>;
  // equipment registers (issue 12)
  registers: z.infer<typeof registersSchema>;
  name: string;
  description: string | undefined;
  source: string | undefined;
  /** The chain of profiles this one was built from, base first. */
  lineage: string[];
  trustedNetworks: string[];
  terms: Term[];
  groups: Record<Group, GroupSettings>;
}

function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (over === null || typeof over !== 'object' || Array.isArray(over) || base === null || typeof base !== 'object') return over as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) {
    // A composition or expiry is replaced whole: its shape decides its meaning.
    out[k] = k === 'composition' || k === 'expiry' || k === 'expiryExemption' ? v : merge((base as Record<string, unknown>)[k], v);
  }
  return out as T;
}

export const PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'profiles');

export function shippedProfiles(): string[] {
  return ['ncsc', 'p0', 'p1', 'p2', 'p3', 'p4'];
}

function locate(reference: string, from: string | undefined): string {
  if (/^[a-z0-9-]+$/.test(reference)) return path.join(PROFILES_DIR, `${reference}.yaml`);
  return path.resolve(from ? path.dirname(from) : process.cwd(), reference);
}

function readProfileFile(file: string): ProfileFile {
  if (!existsSync(file)) throw new ConfigError(`profile ${file}: no such file`);
  let data: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    data = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(`profile ${file}: cannot be read (${(error as Error).message})`);
  }
  const parsed = profileFileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new ConfigError(`profile ${file} is not valid:\n${problems.join('\n')}`);
  }
  return parsed.data as ProfileFile;
}

/** Loads a profile by shipped name or file path, resolving `extends` and group overrides. */
export function loadProfile(reference: string, from?: string, seen: string[] = []): Profile {
  const file = locate(reference, from);
  if (seen.includes(file)) throw new ConfigError(`profile ${file}: extends itself (${[...seen, file].join(' → ')})`);
  const data = readProfileFile(file);
  const base = data.extends ? loadProfile(data.extends, file, [...seen, file]) : undefined;
  const resolved = {} as Record<Group, GroupSettings>;
  for (const group of groups) {
    // A profile that extends nothing must say everything (profiles/ncsc.yaml does).
    let settings = (base ? base.groups[group] : {}) as GroupSettings;
    settings = merge(settings, data.defaults);
    settings = merge(settings, data.groups?.[group]);
    const checked = settingsSchema.safeParse(settings);
    if (!checked.success) {
      const problems = checked.error.issues.map((i) => `  - groups.${group}.${i.path.join('.')}: ${i.message}`);
      throw new ConfigError(`profile ${file} is not valid once resolved:\n${problems.join('\n')}`);
    }
    const p = checked.data.passwords;
    if (p.minLength > p.maxLength) throw new ConfigError(`profile ${file}: groups.${group}.passwords.minLength is above maxLength`);
    if (typeof p.composition === 'object' && 'atLeast' in p.composition && p.composition.atLeast > p.composition.of.length) {
      throw new ConfigError(`profile ${file}: groups.${group}.passwords.composition asks for ${p.composition.atLeast} of ${p.composition.of.length} classes`);
    }
    // AC-10 (issue 10, finding 6): a member of staff's password unlocks personal data; one stolen
    // phone or one read code must not be enough to take it over.
    const r = checked.data.resets;
    if (group === 'staff' && r.selfService && !(r.selfServiceFactors.includes('authenticator') && r.selfServiceFactors.includes('email'))) {
      throw new ConfigError(`profile ${file}: groups.staff.resets.selfServiceFactors must be [authenticator, email] while staff may reset their own password: two factors of different kinds (set selfService: false to have every staff reset approved by a second person instead)`);
    }
    resolved[group] = checked.data;
  }
  const terms = data.terms ?? base?.terms ?? [];
  for (const group of groups) {
    if (resolved[group].passwords.expiry.every === 'term' && terms.length === 0) {
      throw new ConfigError(`profile ${file}: groups.${group} expires passwords termly, but the profile lists no term dates (terms:)`);
    }
  }
  const inherited = <K extends 'timeZone' | 'accessReview' | 'guests' | 'sharedSecrets' | 'quarantine' | 'registers'>(key: K): NonNullable<ProfileFile[K]> => {
    const value = data[key] ?? base?.[key];
    if (value === undefined) throw new ConfigError(`profile ${file}: ${key} is not set (the baseline profile sets it)`);
    return value as NonNullable<ProfileFile[K]>;
  };
  const sharedSecrets = inherited('sharedSecrets');
  if (sharedSecrets.rotation === 'termly' && terms.length === 0) {
    throw new ConfigError(`profile ${file}: shared secrets rotate termly, but the profile lists no term dates (terms:)`);
  }
  const filtering = { ...base?.filtering, ...data.filtering, policies: { ...base?.filtering.policies, ...data.filtering?.policies } };
  for (const key of ['activityRetentionDays', 'staleAfterSchedules', 'captiveUntil'] as const) {
    if (filtering[key] === undefined) throw new ConfigError(`profile ${file}: filtering.${key} is not set (the baseline profile sets it)`);
  }
  for (const group of filterPolicyGroups) {
    if (!filtering.policies[group]) throw new ConfigError(`profile ${file}: filtering.policies.${group} is not set (the baseline profile sets it)`);
  }
  const governance = { ...base?.governance, ...data.governance };
  for (const key of ['changeApprovers', 'emergencyEscalateAfterHours', 'lessonAllowanceMaxMinutes', 'filterOffMaxHours'] as const) {
    if (governance[key] === undefined) throw new ConfigError(`profile ${file}: governance.${key} is not set (the baseline profile sets it)`);
  }
  // Issue 11: change control
  if (governance.changeControl === undefined) throw new ConfigError(`profile ${file}: governance.changeControl is not set (the baseline profile sets it)`);
  // issue 11: safeguarding alerts
  const alerts = { ...base?.alerts, ...data.alerts };
  for (const key of ['concernCategories', 'repeated', 'circumventionCategories', 'circumventionSeverity', 'watchList', 'portScanDistinct', 'recipients', 'escalation', 'escalateAfterMinutes', 'lowSeverityDigestMinutes', 'webhooks'] as const) {
    if (alerts[key] === undefined) throw new ConfigError(`profile ${file}: alerts.${key} is not set (the baseline profile sets it)`);
  }
  return {
    alerts: alerts as Profile['alerts'],
    timeZone: inherited('timeZone'),
    filtering: filtering as Profile['filtering'],
    governance: governance as Profile['governance'],
    // filter exceptions (issue 11, IN-06)
    quarantine: inherited('quarantine'),
    accessReview: inherited('accessReview'),
    guests: inherited('guests'),
    sharedSecrets: sharedSecrets as Profile['sharedSecrets'],
    // equipment registers (issue 12)
    registers: inherited('registers'),
    name: data.name,
    description: data.description ?? base?.description,
    source: data.source,
    lineage: [...(base?.lineage ?? []), data.name],
    trustedNetworks: data.trustedNetworks ?? base?.trustedNetworks ?? [],
    terms: [...terms].sort((a, b) => a.starts.localeCompare(b.starts)),
    groups: resolved,
  };
}
