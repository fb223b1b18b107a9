import argon2 from 'argon2';
import { unavailable } from '../core/errors.js';

export interface HashingParameters {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/**
 * argon2id with explicit parameters (PW-09). Hashing runs on libuv's thread pool; a semaphore keeps
 * a flood of sign-ins from queueing unbounded work: beyond the queue limit callers get a 503 at
 * once instead of a CPU stall for everyone.
 */
export class PasswordHasher {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly parameters: HashingParameters,
    private readonly concurrency = 4,
    private readonly maxQueue = 2000,
  ) {}

  private get options() {
    return {
      type: argon2.argon2id,
      memoryCost: this.parameters.memoryKiB,
      timeCost: this.parameters.iterations,
      parallelism: this.parameters.parallelism,
    } as const;
  }

  async hash(password: string): Promise<string> {
    return this.limited(() => argon2.hash(password, this.options));
  }

  async verify(hash: string, password: string): Promise<boolean> {
    return this.limited(async () => {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    });
  }

  /**
   * For an unknown username: spend the same work as a real check, so the answer and its timing do
   * not tell whether the account exists.
   */
  async verifyNothing(password: string): Promise<false> {
    this.dummyHash ??= argon2.hash('gatehouse-timing-equaliser', this.options);
    await this.verify(await this.dummyHash, password);
    return false;
  }

  /** True when a stored hash was made with other parameters (rehash after a good sign-in). */
  needsRehash(hash: string): boolean {
    try {
      return argon2.needsRehash(hash, {
        memoryCost: this.parameters.memoryKiB,
        timeCost: this.parameters.iterations,
        parallelism: this.parameters.parallelism,
      } as never);
    } catch {
      return true;
    }
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) {
        throw unavailable('The server is busy. Please try again in a moment.', 'busy');
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
