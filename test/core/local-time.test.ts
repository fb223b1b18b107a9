import { describe, expect, it } from 'vitest';
import { atLocalTime, describeLocal, localDate, localTimeOnSameDay, startOfLocalDay, zoneOffsetMs } from '../../src/core/local-time.js';

const LONDON = 'Europe/London';

describe('local time in the school’s time zone', () => {
  it('knows the offset in British Summer Time and in winter', () => {
    expect(zoneOffsetMs(new Date('2026-09-07T12:00:00Z'), LONDON)).toBe(3_600_000);
    expect(zoneOffsetMs(new Date('2026-12-07T12:00:00Z'), LONDON)).toBe(0);
    expect(zoneOffsetMs(new Date('2026-12-07T12:00:00Z'), 'Asia/Kolkata')).toBe(5.5 * 3_600_000);
  });

  it('puts 18:00 local at 17:00Z in summer and 18:00Z in winter', () => {
    expect(localTimeOnSameDay(new Date('2026-09-07T08:00:00Z'), '18:00', LONDON).toISOString()).toBe('2026-09-07T17:00:00.000Z');
    expect(localTimeOnSameDay(new Date('2026-12-07T08:00:00Z'), '18:00', LONDON).toISOString()).toBe('2026-12-07T18:00:00.000Z');
  });

  it('takes the local calendar day, not the UTC one', () => {
    // 23:30Z on 6 September is 00:30 BST on 7 September.
    expect(localDate(new Date('2026-09-06T23:30:00Z'), LONDON)).toEqual({ year: 2026, month: 9, day: 7 });
    expect(localTimeOnSameDay(new Date('2026-09-06T23:30:00Z'), '18:00', LONDON).toISOString()).toBe('2026-09-07T17:00:00.000Z');
    expect(startOfLocalDay(new Date('2026-09-07T12:00:00Z'), LONDON).toISOString()).toBe('2026-09-06T23:00:00.000Z');
  });

  it('is right on the days the clocks change', () => {
    // Clocks go forward at 01:00Z on Sunday 29 March 2026 and back at 01:00Z on Sunday 25 October 2026.
    expect(localTimeOnSameDay(new Date('2026-03-29T00:30:00Z'), '18:00', LONDON).toISOString()).toBe('2026-03-29T17:00:00.000Z');
    expect(localTimeOnSameDay(new Date('2026-10-25T00:30:00Z'), '18:00', LONDON).toISOString()).toBe('2026-10-25T18:00:00.000Z');
    // Before the change that day, 00:30 BST on 25 October is 23:30Z the day before.
    expect(startOfLocalDay(new Date('2026-10-25T12:00:00Z'), LONDON).toISOString()).toBe('2026-10-24T23:00:00.000Z');
    expect(startOfLocalDay(new Date('2026-03-29T12:00:00Z'), LONDON).toISOString()).toBe('2026-03-29T00:00:00.000Z');
    // 01:30 does not exist on 29 March: it comes out 30 minutes after the change (02:30 BST).
    expect(atLocalTime({ year: 2026, month: 3, day: 29 }, '01:30', LONDON).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // 01:30 happens twice on 25 October: the first one (BST) is taken.
    expect(atLocalTime({ year: 2026, month: 10, day: 25 }, '01:30', LONDON).toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });

  it('describes an instant in local words', () => {
    expect(describeLocal(new Date('2026-09-07T17:00:00Z'), LONDON)).toBe('18:00 on Monday 7 September 2026');
  });

  it('refuses a time that is not hh:mm', () => {
    expect(() => atLocalTime({ year: 2026, month: 9, day: 7 }, '25:00', LONDON)).toThrow(/not a time/);
  });
});
