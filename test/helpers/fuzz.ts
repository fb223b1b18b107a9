import fc from 'fast-check';

/**
 * Fuzzing budget for property runs over the parsers that take hostile input (DNS packets, proxy
 * request heads, SCIM filters, CSV imports). Under `npm test` each property runs for a few seconds
 * (GATEHOUSE_FUZZ_SECONDS, default 4) so the suite stays quick; `bench/fuzz.sh` runs them for minutes
 * with the same code. A failure prints fast-check's seed and path, so it can be replayed exactly with
 * GATEHOUSE_FUZZ_SEED and GATEHOUSE_FUZZ_PATH.
 */
export function fuzzParameters<T>(): fc.Parameters<T> {
  const seconds = Number(process.env.GATEHOUSE_FUZZ_SECONDS ?? 4);
  const seed = process.env.GATEHOUSE_FUZZ_SEED;
  const replayPath = process.env.GATEHOUSE_FUZZ_PATH;
  return {
    // Runs until the time is up (never a fixed small count), and counts as passed when it is.
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
    ...(seed ? { seed: Number(seed) } : {}),
    ...(replayPath ? { path: replayPath } : {}),
  };
}

/** The vitest timeout for one fuzz property: its budget plus room to report. */
export function fuzzTimeoutMs(): number {
  return Number(process.env.GATEHOUSE_FUZZ_SECONDS ?? 4) * 1000 + 30_000;
}

/** Runs counted by a property, for the script's report (printed as "fuzz: NAME RUNS runs"). */
export async function fuzz<T>(name: string, property: fc.IAsyncProperty<T> | fc.IProperty<T>): Promise<void> {
  const started = process.hrtime.bigint();
  const details = await fc.check(property as fc.IAsyncProperty<T>, fuzzParameters<T>());
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (process.env.GATEHOUSE_FUZZ_REPORT) console.log(`fuzz: ${name} ${details.numRuns} runs in ${seconds.toFixed(1)} s`);
  if (details.failed) {
    // The property's own error (an assertion's expected and received) after fast-check's seed and path.
    const cause = details.errorInstance instanceof Error ? `\n${details.errorInstance.message}` : '';
    throw new Error(`${fc.defaultReportMessage(details) ?? `fuzz ${name} failed`}${cause}`);
  }
}
