import type { Profile } from '../core/profile.js';
import { atLocalTime, localDate } from '../core/local-time.js';

const pad = (n: number) => String(n).padStart(2, '0');
/** The school's calendar day at an instant, YYYY-MM-DD. */
export function schoolDay(now: Date, timeZone: string): string {
  const d = localDate(now, timeZone);
  return `${d.year}-${pad(d.month)}-${pad(d.day)}`;
}

/** The instants a period starts and ends (local midnight before its first day and after its last). */
export function periodBounds(period: Period, timeZone: string): { start: Date; end: Date } {
  const [fy, fm, fd] = period.from.split('-').map(Number) as [number, number, number];
  const after = new Date(Date.UTC(...(period.to.split('-').map(Number) as [number, number, number]).map((v, i) => (i === 1 ? v - 1 : v)) as [number, number, number]) + 86_400_000);
  return { start: atLocalTime({ year: fy, month: fm, day: fd }, '00:00', timeZone), end: atLocalTime({ year: after.getUTCFullYear(), month: after.getUTCMonth() + 1, day: after.getUTCDate() }, '00:00', timeZone) };
}

/**
 * The school's reporting periods (MO-05 "termly", P4 9.18 checks "each term" by default): the term
 * dates the profile lists, or, where it lists none, the three English school terms approximated by
 * the calendar (autumn September-December, spring January-April, summer May-August).
 */
export interface Period {
  /** e.g. "Autumn 2026" */
  name: string;
  /** first and last day, YYYY-MM-DD, in the school's time zone */
  from: string;
  to: string;
}

const SEASONS: Array<{ name: string; from: string; to: string }> = [
  { name: 'Spring', from: '01-01', to: '04-30' },
  { name: 'Summer', from: '05-01', to: '08-31' },
  { name: 'Autumn', from: '09-01', to: '12-31' },
];

function calendarPeriod(day: string): Period {
  const year = day.slice(0, 4);
  const md = day.slice(5);
  const season = SEASONS.find((s) => md >= s.from && md <= s.to)!;
  return { name: `${season.name} term ${year}`, from: `${year}-${season.from}`, to: `${year}-${season.to}` };
}

function previousCalendarPeriod(period: Period): Period {
  const before = new Date(`${period.from}T12:00:00Z`);
  before.setUTCDate(before.getUTCDate() - 1);
  return calendarPeriod(before.toISOString().slice(0, 10));
}

/** Recent periods, newest first: the one `now` falls in (or the next listed term's gap), and earlier ones. */
export function reportingPeriods(profile: Pick<Profile, 'terms' | 'timeZone'>, now: Date, count = 6): Period[] {
  const today = schoolDay(now, profile.timeZone);
  if (profile.terms.length > 0) {
    // A listed term that has started; between terms, the one just ended is the latest.
    return profile.terms
      .filter((t) => t.starts <= today)
      .sort((a, b) => b.starts.localeCompare(a.starts))
      .slice(0, count)
      .map((t) => ({ name: t.name, from: t.starts, to: t.ends }));
  }
  const out: Period[] = [calendarPeriod(today)];
  while (out.length < count) out.push(previousCalendarPeriod(out[out.length - 1]!));
  return out;
}

/** The period a day falls in, or null when the profile's terms do not cover it (a holiday). */
export function periodOf(profile: Pick<Profile, 'terms' | 'timeZone'>, now: Date): Period | null {
  const today = schoolDay(now, profile.timeZone);
  if (profile.terms.length > 0) {
    const term = profile.terms.find((t) => t.starts <= today && today <= t.ends);
    return term ? { name: term.name, from: term.starts, to: term.ends } : null;
  }
  return calendarPeriod(today);
}

/** The latest period that has ended by `now`. */
export function lastEndedPeriod(profile: Pick<Profile, 'terms' | 'timeZone'>, now: Date): Period | null {
  const today = schoolDay(now, profile.timeZone);
  return reportingPeriods(profile, now, 8).find((p) => p.to < today) ?? null;
}
