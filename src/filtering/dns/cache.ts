import type { AnswerShape } from './wire.js';

/**
 * Upstream answers kept for as long as their TTLs allow: positive answers for the smallest TTL in
 * the answer section, negative ones (NXDOMAIN, NODATA) for min(SOA TTL, SOA minimum) as RFC 2308
 * says, and neither for longer than the configured caps. Bounded in entries, least recently used
 * evicted first (a Map keeps insertion order: a hit moves its entry to the end). A hit on an entry
 * moved within the last quarter of the bound's worth of moves does not move it again: that spares
 * two Map operations on most hits of a busy name, and such an entry is still far from the oldest end.
 *
 * Only upstream answers are cached: what a client is *told* depends on its policy and is decided
 * afresh for every query, so a change of policy or lists applies at once.
 */

export interface CacheEntry {
  shape: AnswerShape;
  storedAt: number;
  expiresAt: number;
  /** the cache's use counter when this entry was last moved to the recent end */
  movedAt: number;
}

export interface CacheOptions {
  maxEntries: number;
  /** longest a positive answer is kept, seconds */
  maxTtl: number;
  /** longest a negative answer is kept, seconds (RFC 2308 suggests one to three hours) */
  maxNegativeTtl: number;
}

export class AnswerCache {
  private readonly entries = new Map<string, CacheEntry>();
  /** counts moves to the recent end; an entry moved within the last quarter of the bound is recent */
  private uses = 0;
  private readonly recent: number;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(private readonly options: CacheOptions) {
    this.recent = Math.max(1, Math.floor(options.maxEntries / 4));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The live entry for a key, or undefined (an expired entry is removed). */
  get(key: string, now: number): CacheEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    if (now >= entry.expiresAt) {
      this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    // Least recently used order: move to the end (unless it is already among the recent).
    if (this.uses - entry.movedAt >= this.recent) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      entry.movedAt = ++this.uses;
    }
    this.hits++;
    return entry;
  }

  /** Keeps an answer if it may be cached; returns whether it was kept. */
  set(key: string, shape: AnswerShape, now: number): boolean {
    if (shape.cacheTtl <= 0 || this.options.maxEntries <= 0) return false;
    const negative = shape.an === 0;
    const cap = negative ? this.options.maxNegativeTtl : this.options.maxTtl;
    const ttl = Math.min(shape.cacheTtl, cap);
    if (ttl <= 0) return false;
    // Records never say they live longer than we keep them.
    for (let i = 0; i < shape.ttls.length; i++) {
      if (shape.ttls[i]! > cap) {
        shape.ttls[i] = cap;
        shape.body.writeUInt32BE(cap, shape.ttlOffsets[i]!);
      }
    }
    this.entries.delete(key);
    this.entries.set(key, { shape, storedAt: now, expiresAt: now + ttl * 1000, movedAt: ++this.uses });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.evictions++;
    }
    return true;
  }

  clear(): void {
    this.entries.clear();
  }
}
