import { sql } from 'kysely';
import { groupOf, groups, type Group } from '../core/profile.js';
import { contactRoles } from '../school/service.js';
import { reviewStatus } from '../access/review.js';
import { dueSecrets } from '../registers/shared-secrets.js';
// backups and risk registers (issue 12)
import { currentPlan, lastRestoreTest, listJobs } from '../registers/backups.js';
import { listRisks } from '../registers/risks.js';
import type { Runtime } from '../runtime.js';
import { lastEndedPeriod, periodBounds, periodOf, reportingPeriods } from '../reports/periods.js';
// incidents and breaches (issue 11)
import { breachDecisionsProbe } from '../incidents/probes.js';

/**
 * The automatic evidence behind the compliance view (GV-08): each probe looks at Gatehouse's live
 * data and says whether a clause's condition holds now, what it found, and where to see it. A
 * framework's clause names its probes by id (frameworks/*.yaml); a clause no probe can judge is a
 * manual sign-off instead. Probes never write.
 *
 * Probes share one `Facts` per evaluation: each underlying query runs at most once however many
 * clauses in however many frameworks ask for it, so the whole dashboard costs a handful of
 * aggregate queries (bench/compliance.sh measures it).
 */
export type ProbeStatus = 'met' | 'due_soon' | 'not_met';

export interface EvidenceLink {
  label: string;
  /** a console path, e.g. "/access" or "/audit?action=access.review_signed_off" */
  href: string;
}

export interface ProbeResult {
  status: ProbeStatus;
  /** one line a governor understands: "3 of 4 administrator accounts have a second factor" */
  summary: string;
  evidence: EvidenceLink[];
  /** when it stops being met, if it is a dated record */
  dueAt?: string | null;
}

export interface Probe {
  id: string;
  /** what the probe checks, for the framework page */
  title: string;
  /** automatic: a condition on live settings and data; record: a dated record within a period */
  kind: 'automatic' | 'record';
  /** the requirement IDs it proves (REQUIREMENTS.md) */
  requirements: string[];
  evaluate(facts: Facts): Promise<ProbeResult>;
}

const DAY = 86_400_000;
/** A dated record is "due soon" this long before it lapses. */
export const DUE_SOON_DAYS = 30;

/** Memoised queries for one evaluation. */
export class Facts {
  private readonly cache = new Map<string, Promise<unknown>>();
  readonly now: Date;
  constructor(readonly rt: Runtime) {
    this.now = rt.clock.now();
  }
  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    let hit = this.cache.get(key) as Promise<T> | undefined;
    if (!hit) {
      hit = load();
      this.cache.set(key, hit);
    }
    return hit;
  }
}

interface AccountFact {
  id: string;
  role: string;
  linked: boolean;
  breakGlass: boolean;
  totp: boolean;
  passkeys: number;
}

const activeAccounts = (f: Facts) =>
  f.get('accounts', async (): Promise<AccountFact[]> => {
    const rows = await f.rt.db.kysely
      .selectFrom('account')
      .leftJoin(
        (eb) => eb.selectFrom('passkey').select(['account_id', eb.fn.countAll<number>().as('n')]).groupBy('account_id').as('pk'),
        (join) => join.onRef('pk.account_id', '=', 'account.id'),
      )
      .select(['account.id', 'account.role', 'account.linked_account_id', 'account.is_break_glass', 'account.totp_enrolled_at', 'pk.n'])
      .where('account.status', '=', 'active')
      .where('account.left_at', 'is', null)
      .execute();
    return rows.map((r) => ({ id: r.id, role: r.role, linked: r.linked_account_id !== null, breakGlass: Number(r.is_break_glass) === 1, totp: r.totp_enrolled_at !== null, passkeys: Number(r.n ?? 0) }));
  });

const listSources = (f: Facts) => f.get('lists', () => f.rt.db.kysely.selectFrom('filter_list_source').select(['id', 'name', 'kind', 'enabled', 'schedule_hours', 'current_at', 'last_result']).execute());

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const dateOf = (iso: string) => iso.slice(0, 10);

/** A dated record: met while the latest is within `months`, due soon in its last DUE_SOON_DAYS. */
export function withinPeriod(now: Date, latest: string | null, months: number, what: string, evidence: EvidenceLink[]): ProbeResult {
  if (!latest) return { status: 'not_met', summary: `No ${what} has been recorded.`, evidence, dueAt: null };
  const due = new Date(latest);
  due.setUTCMonth(due.getUTCMonth() + months);
  const left = due.getTime() - now.getTime();
  if (left <= 0) return { status: 'not_met', summary: `The last ${what} was on ${dateOf(latest)}; another was due by ${dateOf(due.toISOString())}.`, evidence, dueAt: due.toISOString() };
  return { status: left <= DUE_SOON_DAYS * DAY ? 'due_soon' : 'met', summary: `The last ${what} was on ${dateOf(latest)}; the next is due by ${dateOf(due.toISOString())}.`, evidence, dueAt: due.toISOString() };
}

const builtIn: Probe[] = [
  {
    id: 'named-roles',
    title: 'The people the policies name are recorded: headteacher, senior leader for online safety, DSL, DPO, responsible governor, IT provider',
    kind: 'automatic',
    requirements: ['GV-04'],
    async evaluate(f) {
      const rows = await f.get('contacts', () => f.rt.db.kysely.selectFrom('school_contact').select(['role']).execute());
      const have = new Set(rows.map((r) => r.role));
      const missing = (Object.keys(contactRoles) as Array<keyof typeof contactRoles>).filter((r) => !have.has(r)).map((r) => contactRoles[r]);
      return missing.length === 0
        ? { status: 'met', summary: 'Every named role is recorded.', evidence: [{ label: 'School record', href: '/school' }] }
        : { status: 'not_met', summary: `Not recorded: ${missing.join(', ')}.`, evidence: [{ label: 'School record', href: '/school' }] };
    },
  },
  {
    id: 'admin-mfa',
    title: 'Every administrator account has a second factor (authenticator app or passkey)',
    kind: 'automatic',
    requirements: ['AC-07', 'AC-14'],
    async evaluate(f) {
      const admins = (await activeAccounts(f)).filter((a) => a.role === 'administrator');
      const without = admins.filter((a) => !a.totp && a.passkeys === 0);
      const evidence = [{ label: 'Accounts', href: '/accounts?role=administrator' }];
      if (admins.length === 0) return { status: 'not_met', summary: 'There is no active administrator account.', evidence };
      return without.length === 0
        ? { status: 'met', summary: admins.length === 1 ? 'The one administrator account has a second factor.' : `All ${admins.length} administrator accounts have a second factor.`, evidence }
        : { status: 'not_met', summary: `${plural(without.length, 'administrator account')} of ${admins.length} ${without.length === 1 ? 'has' : 'have'} no second factor.`, evidence };
    },
  },
  {
    id: 'admin-separate',
    title: 'Each administrator account is separate from its holder’s everyday account (linked to it), apart from the break-glass account',
    kind: 'automatic',
    requirements: ['AC-07'],
    async evaluate(f) {
      const admins = (await activeAccounts(f)).filter((a) => a.role === 'administrator' && !a.breakGlass);
      const unlinked = admins.filter((a) => !a.linked);
      const evidence = [{ label: 'Accounts', href: '/accounts?role=administrator' }];
      return unlinked.length === 0
        ? { status: 'met', summary: admins.length === 0 ? 'There are no administrator accounts besides the break-glass account.' : admins.length === 1 ? 'The administrator account is linked to an everyday account.' : `All ${admins.length} administrator accounts are linked to an everyday account.`, evidence }
        : { status: 'not_met', summary: `${plural(unlinked.length, 'administrator account')} ${unlinked.length === 1 ? 'is' : 'are'} not linked to an everyday account.`, evidence };
    },
  },
  {
    id: 'break-glass',
    title: 'One break-glass (master) administrator account exists and is active',
    kind: 'automatic',
    requirements: ['AC-08'],
    async evaluate(f) {
      const n = (await activeAccounts(f)).filter((a) => a.breakGlass).length;
      const evidence = [{ label: 'Accounts', href: '/accounts?role=administrator' }];
      if (n === 1) return { status: 'met', summary: 'The break-glass account exists and is active.', evidence };
      return { status: 'not_met', summary: n === 0 ? 'There is no active break-glass account.' : `There are ${n} break-glass accounts; the policy expects one.`, evidence };
    },
  },
  {
    id: 'access-review',
    title: 'The access rights of every group were reviewed and signed off by a senior leader within the review period',
    kind: 'record',
    requirements: ['AC-01', 'AC-02'],
    async evaluate(f) {
      const status = await f.get('access-review', () => reviewStatus(f.rt));
      return withinPeriod(f.now, status.lastSignedOffAt, status.everyMonths, 'signed-off access review', [{ label: 'Access reviews', href: '/access' }]);
    },
  },
  {
    id: 'aup-required',
    title: 'Every group must accept the current Acceptable Use Policy before access, and a version is published for each',
    kind: 'automatic',
    requirements: ['AC-06', 'GV-05'],
    async evaluate(f) {
      const published = new Set((await f.get('aups', () => f.rt.db.kysely.selectFrom('aup_version').select('audience').distinct().execute())).map((r) => r.audience));
      const notRequired = groups.filter((g) => !f.rt.profile.groups[g].aup.required);
      const unpublished = groups.filter((g) => f.rt.profile.groups[g].aup.required && !published.has(g));
      const evidence = [{ label: 'Acceptable Use Policy', href: '/policy' }];
      if (notRequired.length === 0 && unpublished.length === 0) return { status: 'met', summary: 'Each group accepts its current Acceptable Use Policy before access.', evidence };
      const parts = [notRequired.length > 0 ? `not required for ${notRequired.join(', ')}` : '', unpublished.length > 0 ? `no version published for ${unpublished.join(', ')}` : ''].filter(Boolean);
      return { status: 'not_met', summary: `Acceptable Use Policy: ${parts.join('; ')}.`, evidence };
    },
  },
  {
    id: 'aup-accepted',
    title: 'Everyone who has signed in has accepted the current Acceptable Use Policy of their group',
    kind: 'automatic',
    requirements: ['AC-06', 'GV-05'],
    async evaluate(f) {
      // Accounts that have signed in since the current version was published but not accepted it:
      // a pending acceptance is normal (it is asked at the next sign-in), an active session without one is not.
      const current = await f.get('aup-current', () =>
        f.rt.db.kysely.selectFrom('aup_version as v').select(['v.id', 'v.audience', 'v.version']).where((eb) => eb('v.version', '=', eb.selectFrom('aup_version as w').select((w) => w.fn.max('w.version').as('m')).whereRef('w.audience', '=', 'v.audience'))).execute(),
      );
      const accounts = await activeAccounts(f);
      const accepted = await f.get('aup-accepted', async () =>
        new Set((await f.rt.db.kysely.selectFrom('aup_acceptance').select(['account_id', 'aup_version_id']).where('aup_version_id', 'in', current.length > 0 ? current.map((c) => c.id) : ['-']).execute()).map((r) => `${r.account_id}/${r.aup_version_id}`)),
      );
      const byAudience = new Map(current.map((c) => [c.audience as Group, c.id]));
      let due = 0;
      let done = 0;
      for (const a of accounts) {
        const version = byAudience.get(groupOf(a.role as never));
        if (!version || !f.rt.profile.groups[groupOf(a.role as never)].aup.required) continue;
        due++;
        if (accepted.has(`${a.id}/${version}`)) done++;
      }
      const evidence = [{ label: 'Acceptable Use Policy', href: '/policy' }];
      if (due === 0) return { status: 'not_met', summary: 'No Acceptable Use Policy is published for any group that requires one.', evidence };
      // Everyone is asked at their next sign-in; the share who have accepted is the evidence.
      return { status: done === due ? 'met' : 'due_soon', summary: `${done} of ${due} people have accepted the current version for their group; the rest are asked at their next sign-in.`, evidence };
    },
  },
  {
    id: 'mfa-offsite',
    title: 'Staff and administrators use multi-factor authentication away from the school’s networks',
    kind: 'automatic',
    requirements: ['AC-14'],
    async evaluate(f) {
      const weak = (['staff', 'administrators'] as const).filter((g) => !f.rt.profile.groups[g].mfa.always && !f.rt.profile.groups[g].mfa.offsite);
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: 'The profile requires a second factor off site for staff and administrators.', evidence } : { status: 'not_met', summary: `The profile does not require a second factor off site for ${weak.join(' and ')}.`, evidence };
    },
  },
  {
    id: 'password-length',
    title: 'Passwords are at least 12 characters, or at least 8 with the common and breached password list checked',
    kind: 'automatic',
    requirements: ['PW-01', 'PW-10'],
    async evaluate(f) {
      const weak = groups.filter((g) => {
        const p = f.rt.profile.groups[g].passwords;
        return !(p.minLength >= 12 || (p.minLength >= 8 && p.compromisedList));
      });
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: 'Every group’s password rules meet the length and deny-list rule.', evidence } : { status: 'not_met', summary: `Too weak for ${weak.join(', ')}: fewer than 12 characters without the deny list, or fewer than 8.`, evidence };
    },
  },
  {
    id: 'lockout',
    title: 'Guessing passwords is stopped: accounts lock after at most 10 failed attempts',
    kind: 'automatic',
    requirements: ['PW-07'],
    async evaluate(f) {
      const weak = groups.filter((g) => {
        const after = f.rt.profile.groups[g].lockout.after;
        return after === null || after > 10;
      });
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: `Accounts lock after ${[...new Set(groups.map((g) => f.rt.profile.groups[g].lockout.after))].join(' or ')} failed attempts.`, evidence } : { status: 'not_met', summary: `No lockout within 10 attempts for ${weak.join(', ')}.`, evidence };
    },
  },
  {
    id: 'illegal-list',
    title: 'An illegal-content list (IWF or equivalent) is configured, switched on and up to date',
    kind: 'automatic',
    requirements: ['FI-03'],
    async evaluate(f) {
      const lists = (await listSources(f)).filter((l) => l.kind === 'illegal' && Number(l.enabled) === 1);
      const evidence = [{ label: 'Filter lists', href: '/filtering/lists' }];
      if (lists.length === 0) return { status: 'not_met', summary: 'No illegal-content list is configured.', evidence };
      const stale = lists.filter((l) => !l.current_at || f.now.getTime() - new Date(l.current_at).getTime() > 2 * l.schedule_hours * 3_600_000);
      return stale.length === 0 ? { status: 'met', summary: `${plural(lists.length, 'illegal-content list')}, updated on schedule.`, evidence } : { status: 'not_met', summary: `Out of date: ${stale.map((l) => l.name).join(', ')}.`, evidence };
    },
  },
  {
    id: 'lists-fresh',
    title: 'Every filter list in use has been updated on its schedule',
    kind: 'automatic',
    requirements: ['FI-04'],
    async evaluate(f) {
      const lists = (await listSources(f)).filter((l) => Number(l.enabled) === 1 && l.schedule_hours > 0 && (l.kind === 'category' || l.kind === 'illegal'));
      const evidence = [{ label: 'Filter lists', href: '/filtering/lists' }];
      if (lists.length === 0) return { status: 'not_met', summary: 'No category or illegal-content list is in use.', evidence };
      const stale = lists.filter((l) => !l.current_at || f.now.getTime() - new Date(l.current_at).getTime() > 2 * l.schedule_hours * 3_600_000);
      return stale.length === 0 ? { status: 'met', summary: `All ${plural(lists.length, 'list')} updated on schedule.`, evidence } : { status: 'not_met', summary: `Out of date: ${stale.map((l) => l.name).join(', ')}.`, evidence };
    },
  },
  {
    id: 'filtering-in-use',
    title: 'Filtering is in use: the resolver or proxy recorded activity in the last 24 hours',
    kind: 'automatic',
    requirements: ['FI-01', 'MO-01'],
    async evaluate(f) {
      const since = new Date(f.now.getTime() - DAY).toISOString();
      const row = await f.get('activity-latest', () => f.rt.db.kysely.selectFrom('filter_activity').select('at').where('at', '>=', since).orderBy('at', 'desc').limit(1).executeTakeFirst());
      const evidence = [{ label: 'Filtering activity', href: '/filtering/activity' }];
      return row ? { status: 'met', summary: `Activity was last recorded at ${row.at.slice(0, 16).replace('T', ' ')} UTC.`, evidence } : { status: 'not_met', summary: 'No filtering activity was recorded in the last 24 hours: check that devices use the school’s resolver or proxy.', evidence };
    },
  },
  {
    id: 'audit-checkpointed',
    title: 'The audit trail is signed: a checkpoint covers it within the last day',
    kind: 'automatic',
    requirements: ['AU-01', 'AU-02'],
    async evaluate(f) {
      const [head, cp] = await Promise.all([
        f.get('audit-head', () => f.rt.db.kysely.selectFrom('audit_event').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst()),
        f.get('audit-checkpoint', () => f.rt.db.kysely.selectFrom('audit_checkpoint').select(['seq', 'at']).orderBy('seq', 'desc').limit(1).executeTakeFirst()),
      ]);
      const evidence = [{ label: 'Audit trail', href: '/audit' }];
      if (!cp) return { status: 'not_met', summary: 'The audit trail has no signed checkpoint.', evidence };
      const age = f.now.getTime() - new Date(cp.at).getTime();
      const behind = Number(head?.seq ?? 0) - Number(cp.seq);
      if (age > DAY && behind > 0) return { status: 'not_met', summary: `The last checkpoint (event ${cp.seq}) was signed on ${dateOf(cp.at)}; ${plural(behind, 'event')} since are not yet covered.`, evidence };
      return { status: 'met', summary: `Checkpoint signed at event ${cp.seq} on ${dateOf(cp.at)}.`, evidence };
    },
  },
  {
    id: 'shared-secrets-rotated',
    title: 'No shared secret (Wi-Fi keys, master passwords) is overdue for rotation',
    kind: 'automatic',
    requirements: ['PW-12', 'AC-13'],
    async evaluate(f) {
      const due = await f.get('secrets-due', () => dueSecrets(f.rt, 0));
      // Overdue, or flagged because someone who knew it left (AC-13): either way it must change now.
      const overdue = due.filter((s) => s.overdue || s.flaggedAt !== null);
      const evidence = [{ label: 'Shared secrets', href: '/secrets' }];
      return overdue.length === 0 ? { status: 'met', summary: 'Every shared secret is within its rotation period.', evidence } : { status: 'not_met', summary: `To change now (overdue, or a holder left): ${overdue.map((s) => s.name).join(', ')}.`, evidence };
    },
  },
  {
    id: 'leavers-closed',
    title: 'Leavers’ checklists are completed within 14 days of leaving',
    kind: 'automatic',
    requirements: ['AC-13'],
    async evaluate(f) {
      const before = new Date(f.now.getTime() - 14 * DAY).toISOString().slice(0, 10);
      const open = await f.get('leavers-open', () => f.rt.db.kysely.selectFrom('leaver_checklist').select(['account_id', 'left_on']).where('completed_at', 'is', null).where('left_on', '<', before).execute());
      const evidence = [{ label: 'Leavers', href: '/leavers' }];
      return open.length === 0 ? { status: 'met', summary: 'No leaver checklist is open more than 14 days after the leaving date.', evidence } : { status: 'not_met', summary: `${plural(open.length, 'leaver checklist')} still open more than 14 days after leaving.`, evidence };
    },
  },
  {
    id: 'guests-ended',
    title: 'Every guest visit past its end has been ended and its account wiped',
    kind: 'automatic',
    requirements: ['AC-05'],
    async evaluate(f) {
      const open = await f.get('guests-past-end', () => f.rt.db.kysely.selectFrom('guest_allocation').select('id').where('ended_at', 'is', null).where('ends_at', '<', f.now.toISOString()).execute());
      const evidence = [{ label: 'Guests', href: '/guests' }];
      return open.length === 0 ? { status: 'met', summary: 'No guest account is still allocated past its end.', evidence } : { status: 'not_met', summary: `${plural(open.length, 'guest visit')} past its end not yet ended.`, evidence };
    },
  },
  {
    id: 'sessions-lock',
    title: 'Sessions end when left unattended (idle limit of 30 minutes or less for staff and administrators)',
    kind: 'automatic',
    requirements: ['AC-15'],
    async evaluate(f) {
      const weak = (['staff', 'administrators'] as const).filter((g) => f.rt.profile.groups[g].sessions.idleMinutes > 30);
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: `Idle sessions end after ${Math.max(...(['staff', 'administrators'] as const).map((g) => f.rt.profile.groups[g].sessions.idleMinutes))} minutes at most.`, evidence } : { status: 'not_met', summary: `Idle sessions last longer than 30 minutes for ${weak.join(' and ')}.`, evidence };
    },
  },
  {
    id: 'password-personal-info',
    title: 'Passwords may not contain the username, the person’s names or other recorded details',
    kind: 'automatic',
    requirements: ['PW-03'],
    async evaluate(f) {
      const weak = groups.filter((g) => !f.rt.profile.groups[g].passwords.forbidPersonalInfo);
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: 'Refused for every group.', evidence } : { status: 'not_met', summary: `Allowed for ${weak.join(', ')}.`, evidence };
    },
  },
  {
    id: 'password-reuse',
    title: 'Recent passwords cannot be used again',
    kind: 'automatic',
    requirements: ['PW-05'],
    async evaluate(f) {
      const weak = groups.filter((g) => f.rt.profile.groups[g].passwords.reuse.last < 1 && f.rt.profile.groups[g].passwords.reuse.withinDays < 1);
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: `Refused: ${[...new Set(groups.map((g) => `the last ${f.rt.profile.groups[g].passwords.reuse.last}`))].join(' or ')}.`, evidence } : { status: 'not_met', summary: `Reuse is allowed for ${weak.join(', ')}.`, evidence };
    },
  },
  {
    id: 'password-deny-list',
    title: 'Common and breached passwords are refused',
    kind: 'automatic',
    requirements: ['PW-10'],
    async evaluate(f) {
      const weak = groups.filter((g) => !f.rt.profile.groups[g].passwords.compromisedList);
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return weak.length === 0 ? { status: 'met', summary: 'Checked for every group.', evidence } : { status: 'not_met', summary: `Not checked for ${weak.join(', ')}.`, evidence };
    },
  },
  {
    id: 'sign-in-banner',
    title: 'Each group is told the policy when signing in (a sign-in message is set)',
    kind: 'automatic',
    requirements: ['AC-16'],
    async evaluate(f) {
      const missing = groups.filter((g) => !f.rt.profile.groups[g].banner?.trim());
      const evidence = [{ label: 'Policy profile', href: '/policy' }];
      return missing.length === 0 ? { status: 'met', summary: 'Every group sees a sign-in message.', evidence } : { status: 'not_met', summary: `No sign-in message for ${missing.join(', ')}.`, evidence };
    },
  },
  {
    id: 'filtering-checks',
    title: 'The filtering and monitoring were checked this term, recorded with who, what, where and the resulting actions',
    kind: 'record',
    requirements: ['GV-03', 'AU-04'],
    async evaluate(f) {
      const { profile, timeZone } = { profile: f.rt.profile, timeZone: f.rt.profile.timeZone };
      const evidence = [{ label: 'Filtering checks', href: '/reports/checks' }];
      const periods = reportingPeriods(profile, f.now, 2);
      const current = periodOf(profile, f.now) ?? periods[0] ?? null;
      if (!current) return { status: 'not_met', summary: 'The profile lists no term that has started.', evidence, dueAt: null };
      const bounds = periodBounds(current, timeZone);
      const checks = await f.get('filtering-checks', () => f.rt.db.kysely.selectFrom('filtering_check').select(['checked_at', 'outcome', 'actions', 'checked_by_name']).orderBy('checked_at', 'desc').limit(200).execute());
      const unactioned = checks.filter((c) => c.outcome === 'fail' && c.actions === '');
      if (unactioned.length > 0) return { status: 'not_met', summary: `${unactioned.length} check${unactioned.length === 1 ? '' : 's'} found problems and no action is recorded (latest ${dateOf(unactioned[0]!.checked_at)}).`, evidence, dueAt: null };
      const inTerm = checks.filter((c) => c.checked_at >= bounds.start.toISOString() && c.checked_at < bounds.end.toISOString());
      if (inTerm.length > 0) return { status: 'met', summary: `${inTerm.length} check${inTerm.length === 1 ? '' : 's'} recorded in ${current.name}; the latest on ${dateOf(inTerm[0]!.checked_at)} by ${inTerm[0]!.checked_by_name}.`, evidence, dueAt: bounds.end.toISOString() };
      const latest = checks[0];
      if (latest) return { status: 'due_soon', summary: `No check yet in ${current.name}; the last was on ${dateOf(latest.checked_at)}. One is due by ${dateOf(bounds.end.toISOString())}.`, evidence, dueAt: bounds.end.toISOString() };
      return { status: 'not_met', summary: 'No check of the filtering and monitoring has been recorded.', evidence, dueAt: null };
    },
  },
  {
    id: 'termly-report',
    title: 'The termly monitoring report for the term just ended was issued to senior leaders and governors',
    kind: 'record',
    requirements: ['MO-05'],
    async evaluate(f) {
      const evidence = [{ label: 'Termly report', href: '/reports' }];
      const ended = lastEndedPeriod(f.rt.profile, f.now);
      const current = periodOf(f.rt.profile, f.now);
      const nextDue = current ? periodBounds(current, f.rt.profile.timeZone).end.toISOString() : null;
      if (!ended) return { status: 'due_soon', summary: `No term has ended yet; the first report is due${nextDue ? ` by ${dateOf(nextDue)}` : ' at the end of term'}.`, evidence, dueAt: nextDue };
      const issued = await f.get(`termly-report:${ended.from}`, () => f.rt.db.kysely.selectFrom('monitoring_report').select(['issued_at', 'issued_by_name']).where('period_from', '=', ended.from).orderBy('issued_at').limit(1).executeTakeFirst());
      if (!issued) return { status: 'not_met', summary: `The report for ${ended.name} has not been issued.`, evidence, dueAt: periodBounds(ended, f.rt.profile.timeZone).end.toISOString() };
      return { status: 'met', summary: `The report for ${ended.name} was issued on ${dateOf(issued.issued_at)} by ${issued.issued_by_name}.`, evidence, dueAt: nextDue };
    },
  },
  // incidents and breaches (issue 11)
  breachDecisionsProbe,
  // backups and risk registers (issue 12): records that make these clauses automatically checkable
  {
    id: 'restore-tested',
    title: 'A test restore of the backups passed within the last 12 months',
    kind: 'record',
    requirements: ['BK-03'],
    async evaluate(f) {
      const evidence = [{ label: 'Backups', href: '/backups' }];
      const last = await f.get('restore-tested', () => lastRestoreTest(f.rt));
      if (!last) return { status: 'not_met', summary: 'No passed test restore is recorded.', evidence, dueAt: null };
      const left = Date.parse(last.dueAt) - f.now.getTime();
      if (left <= 0) return { status: 'not_met', summary: `The last passed test restore was on ${dateOf(last.testedAt)}, more than 12 months ago.`, evidence, dueAt: last.dueAt };
      return { status: left < DUE_SOON_DAYS * DAY ? 'due_soon' : 'met', summary: `A test restore passed on ${dateOf(last.testedAt)}; the next is due by ${dateOf(last.dueAt)}.`, evidence, dueAt: last.dueAt };
    },
  },
  {
    id: 'continuity-plan',
    title: 'The business continuity and disaster recovery plan, with the ransomware response, is within its review date',
    kind: 'record',
    requirements: ['BK-05'],
    async evaluate(f) {
      const evidence = [{ label: 'Backups', href: '/backups' }];
      const plan = await f.get('continuity-plan', () => currentPlan(f.rt));
      if (!plan) return { status: 'not_met', summary: 'No continuity and disaster recovery plan is recorded.', evidence, dueAt: null };
      const left = Date.parse(plan.nextReviewAt) - f.now.getTime();
      if (left <= 0) return { status: 'not_met', summary: `“${plan.title}” was due for review on ${dateOf(plan.nextReviewAt)}.`, evidence, dueAt: plan.nextReviewAt };
      return { status: left < DUE_SOON_DAYS * DAY ? 'due_soon' : 'met', summary: `“${plan.title}” was reviewed on ${dateOf(plan.reviewedAt)}; next review by ${dateOf(plan.nextReviewAt)}.`, evidence, dueAt: plan.nextReviewAt };
    },
  },
  {
    id: 'backups-fresh',
    title: 'Every backup job has checked in successfully on schedule',
    kind: 'automatic',
    requirements: ['BK-01', 'BK-02'],
    async evaluate(f) {
      const evidence = [{ label: 'Backups', href: '/backups' }];
      const jobs = await f.get('backup-jobs', () => listJobs(f.rt));
      if (jobs.length === 0) return { status: 'not_met', summary: 'No backup job is registered.', evidence };
      const bad = jobs.filter((j) => j.state !== 'ok');
      if (bad.length > 0) return { status: 'not_met', summary: `${bad.length} of ${jobs.length} backup jobs have missed, failed or not yet checked in (${bad.map((j) => j.name).join(', ')}).`, evidence };
      return { status: 'met', summary: `All ${jobs.length} backup jobs checked in on schedule.`, evidence };
    },
  },
  {
    id: 'risk-register-reviewed',
    title: 'The risk register has risks and none is past its review date',
    kind: 'record',
    requirements: ['GV-01'],
    async evaluate(f) {
      const evidence = [{ label: 'Risks', href: '/risks' }];
      const risks = await f.get('risks', () => listRisks(f.rt));
      if (risks.length === 0) return { status: 'not_met', summary: 'The risk register is empty.', evidence, dueAt: null };
      const overdue = risks.filter((r) => r.overdue);
      if (overdue.length > 0) return { status: 'not_met', summary: `${overdue.length} of ${risks.length} risks are past their review date.`, evidence, dueAt: null };
      const next = risks.map((r) => r.reviewAt).sort()[0]!;
      return { status: Date.parse(next) - f.now.getTime() < DUE_SOON_DAYS * DAY ? 'due_soon' : 'met', summary: `${risks.length} risks, all within their review dates; the next review is by ${dateOf(next)}.`, evidence, dueAt: next };
    },
  },
];

const registry = new Map<string, Probe>(builtIn.map((p) => [p.id, p]));

/** Other modules add their probes here (registers, incidents, change control …). */
export function registerProbe(probe: Probe): void {
  if (registry.has(probe.id)) throw new Error(`compliance probe ${probe.id} is registered twice`);
  registry.set(probe.id, probe);
}

export function probe(id: string): Probe | undefined {
  return registry.get(id);
}

export function allProbes(): Probe[] {
  return [...registry.values()];
}

/** For the bench and tests: the raw SQL count of audit events (a cheap sanity figure). */
export async function auditEventCount(rt: Runtime): Promise<number> {
  const row = await sql<{ n: number }>`select count(*) as n from audit_event`.execute(rt.db.kysely);
  return Number(row.rows[0]?.n ?? 0);
}
