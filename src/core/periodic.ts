import type { Logger } from 'pino';

export interface Periodic {
  /** stops the timer and waits for a run under way, so the database is not closed under it */
  stop(): Promise<void>;
}

/**
 * Scheduled work inside `serve`: runs `work` every `everyMs` (and once `firstAfterMs` after start),
 * never two runs at once, errors logged rather than thrown; the timers do not keep the process alive.
 */
export function schedulePeriodic(logger: Logger, name: string, work: () => Promise<void>, options: { everyMs: number; firstAfterMs: number }): Periodic {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    if (running || stopped) return;
    running = work()
      .catch((error: unknown) => logger.error({ err: error }, `${name} failed`))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, options.everyMs);
  timer.unref();
  const first = setTimeout(run, options.firstAfterMs);
  first.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(first);
      await running;
    },
  };
}
