/**
 * Per-address throttling in front of password hashing (PW-07's companion): after too many failed
 * sign-ins from one address in a window, further attempts from it are refused before any argon2id
 * work is done, so a flood cannot exhaust the CPU. Counts failures only, so a whole school behind
 * one NAT address signing in at 8:30 is not slowed; in memory, per node.
 */
export class AddressThrottle {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Seconds to wait before this address may try again, or 0. */
  retryAfter(address: string | null): number {
    if (!address) return 0;
    const w = this.windows.get(address);
    if (!w) return 0;
    const elapsed = this.now() - w.start;
    if (elapsed >= this.windowMs) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.limit ? Math.ceil((this.windowMs - elapsed) / 1000) : 0;
  }

  /**
   * Counts an attempt before it is checked, so that attempts sent together cannot all pass the
   * limit while none has failed yet: returns the seconds to wait (the attempt is refused and not
   * counted) or 0 (counted as a failure until `release` gives it back). Synchronous, so atomic
   * within this process.
   */
  reserve(address: string | null): number {
    if (!address) return 0;
    const wait = this.retryAfter(address);
    if (wait > 0) return wait;
    this.recordFailure(address);
    return 0;
  }

  /** A reserved attempt that succeeded (or was never checked): its count is given back. */
  release(address: string | null): void {
    if (!address) return;
    const w = this.windows.get(address);
    if (w && w.failures > 0) w.failures--;
  }

  recordFailure(address: string | null): void {
    if (!address) return;
    const t = this.now();
    const w = this.windows.get(address);
    if (!w || t - w.start >= this.windowMs) this.windows.set(address, { start: t, failures: 1 });
    else w.failures++;
    if (this.windows.size > 50_000) this.prune(t);
  }

  private prune(t: number): void {
    for (const [address, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(address);
  }
}
