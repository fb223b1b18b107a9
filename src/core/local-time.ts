/**
 * Wall-clock time in the school's time zone (the profile's `timeZone`), with Intl only. "18:00 today"
 * is 17:00Z in British Summer Time and 18:00Z in winter; these helpers get that right on either side
 * of a clock change, so code never assumes an offset.
 */

export interface LocalDate {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

function wallClock(instant: Date, timeZone: string) {
  const parts: Record<string, number> = {};
  for (const p of partsFormatter(timeZone).formatToParts(instant)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

/** How far the zone's wall clock is ahead of UTC at this instant, in milliseconds (BST: +3,600,000). */
export function zoneOffsetMs(instant: Date, timeZone: string): number {
  const w = wallClock(instant, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The calendar date in the zone at this instant. */
export function localDate(instant: Date, timeZone: string): LocalDate {
  const w = wallClock(instant, timeZone);
  return { year: w.year, month: w.month, day: w.day };
}

/** Parses "17:30" into hours and minutes; throws on anything else. */
export function parseClockTime(hhmm: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (!m) throw new Error(`"${hhmm}" is not a time like 17:30`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/**
 * The instant at which the zone's wall clock shows `hhmm` on `date`. A time that does not exist
 * (skipped when the clocks go forward) comes out as the same number of minutes after the change;
 * a time that happens twice (when they go back) is its first occurrence.
 */
export function atLocalTime(date: LocalDate, hhmm: string, timeZone: string): Date {
  const { hour, minute } = parseClockTime(hhmm);
  const wall = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  // The offset before and after the wall time: try the earlier one first, so a repeated hour
  // resolves to its first occurrence.
  const offsets = [zoneOffsetMs(new Date(wall - 86_400_000), timeZone), zoneOffsetMs(new Date(wall + 86_400_000), timeZone)];
  const [first, second] = offsets[0]! >= offsets[1]! ? offsets : [offsets[1]!, offsets[0]!];
  for (const offset of [first!, second!]) {
    const candidate = new Date(wall - offset);
    if (zoneOffsetMs(candidate, timeZone) === offset) return candidate;
  }
  // In the gap when clocks go forward: the wall time never shows; use the offset in force before.
  return new Date(wall - Math.min(first!, second!));
}

/** `hhmm` on the zone's calendar day that contains `instant` (e.g. "18:00 today"). */
export function localTimeOnSameDay(instant: Date, hhmm: string, timeZone: string): Date {
  return atLocalTime(localDate(instant, timeZone), hhmm, timeZone);
}

/** The instant the zone's calendar day containing `instant` began (local midnight). */
export function startOfLocalDay(instant: Date, timeZone: string): Date {
  return localTimeOnSameDay(instant, '00:00', timeZone);
}

/** "18:00 on Monday 7 September 2026" in the zone, for people (CLI output, messages). */
export function describeLocal(instant: Date, timeZone: string): string {
  const time = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(instant);
  // From parts: ICU versions differ on the comma after the weekday.
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).formatToParts(instant).map((p) => [p.type, p.value]),
  );
  return `${time} on ${parts.weekday} ${parts.day} ${parts.month} ${parts.year}`;
}
