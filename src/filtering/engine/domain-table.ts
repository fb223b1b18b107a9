/**
 * A hash set of domain names in typed arrays, built for the filter's hot path (after uBlock
 * Origin's hntrie and Ghostery's "hash every parent domain in one backward pass"):
 *
 * - A domain is keyed by two independent 32-bit hashes of its characters (64 bits together), so no
 *   strings are kept: ~12 bytes a slot instead of ~110 bytes a string in a Set, and a false match
 *   needs a 64-bit collision (about one in 10^12 lookups against 3 million names).
 * - Hashes run right to left, so one backward pass over "www.games.example.com" yields the keys of
 *   "com", "example.com", "games.example.com" and "www.games.example.com" as it reaches each dot,
 *   and each is probed without allocating a substring.
 * - Open addressing with linear probing; each slot's value is an index the caller gives meaning to
 *   (here: a set of categories). Value 0 means an empty slot.
 */

export const FNV_OFFSET = 0x811c9dc5 | 0;
export const H2_SEED = 0x2f8b1a3d | 0;

/** One character into both hashes (upper-case ASCII folded to lower case). */
export function step1(h: number, c: number): number {
  return Math.imul(h ^ c, 0x01000193);
}
export function step2(h: number, c: number): number {
  const x = Math.imul(h ^ c, 0x5bd1e995);
  return x ^ (x >>> 15);
}

/** Both hashes of s[start, end), folded to lower case, right to left (as the backward walk computes them). */
export function hashRange(s: string, start: number, end: number): [number, number] {
  let h1 = FNV_OFFSET;
  let h2 = H2_SEED;
  for (let i = end - 1; i >= start; i--) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c |= 32;
    h1 = step1(h1, c);
    h2 = step2(h2, c);
  }
  return [h1, h2];
}

/** Final mix so that similar names spread over the table. */
export function slotOf(h1: number, h2: number, mask: number): number {
  const x = h2 ^ Math.imul(h1, 0x9e3779b1);
  return (x ^ (x >>> 16)) & mask;
}

export class DomainTable {
  // Read directly by the hot path (FilterSnapshot.decide); written only while building.
  keys1: Int32Array;
  keys2: Int32Array;
  values: Uint32Array;
  mask: number;
  /**
   * A small bit filter over h1 (2 MB for 16M bits, cache-friendly): most names are not listed, and a
   * clear bit answers "not here" without touching the 50 MB of slots.
   */
  filter: Int32Array;
  filterShift: number;
  size = 0;

  constructor(expected: number) {
    let capacity = 1024;
    while (capacity * 0.7 < expected) capacity *= 2;
    this.keys1 = new Int32Array(capacity);
    this.keys2 = new Int32Array(capacity);
    this.values = new Uint32Array(capacity);
    this.mask = capacity - 1;
    let bits = 1 << 16;
    while (bits < expected * 8 && bits < 1 << 27) bits *= 2;
    this.filter = new Int32Array(bits / 32);
    this.filterShift = 32 - Math.log2(bits);
  }

  /** May the key be here? (false: certainly not) */
  mayHave(h1: number): boolean {
    const bit = h1 >>> this.filterShift;
    return (this.filter[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  get bytes(): number {
    return this.keys1.byteLength + this.keys2.byteLength + this.values.byteLength + this.filter.byteLength;
  }

  /** The value stored for this key, or 0. */
  get(h1: number, h2: number): number {
    if (!this.mayHave(h1)) return 0;
    const mask = this.mask;
    let slot = slotOf(h1, h2, mask);
    for (;;) {
      const v = this.values[slot]!;
      if (v === 0) return 0;
      if (this.keys1[slot] === h1 && this.keys2[slot] === h2) return v;
      slot = (slot + 1) & mask;
    }
  }

  /**
   * Sets the value for a key; `merge(old, incoming)` decides the value when the key is there
   * already (e.g. a domain in two categories).
   */
  set(h1: number, h2: number, value: number, merge: (old: number, incoming: number) => number): void {
    if ((this.size + 1) > (this.mask + 1) * 0.75) this.grow();
    const bit = h1 >>> this.filterShift;
    this.filter[bit >>> 5]! |= 1 << (bit & 31);
    const mask = this.mask;
    let slot = slotOf(h1, h2, mask);
    for (;;) {
      const v = this.values[slot]!;
      if (v === 0) {
        this.keys1[slot] = h1;
        this.keys2[slot] = h2;
        this.values[slot] = value;
        this.size++;
        return;
      }
      if (this.keys1[slot] === h1 && this.keys2[slot] === h2) {
        this.values[slot] = merge(v, value);
        return;
      }
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const { keys1, keys2, values } = this;
    const capacity = (this.mask + 1) * 2;
    this.keys1 = new Int32Array(capacity);
    this.keys2 = new Int32Array(capacity);
    this.values = new Uint32Array(capacity);
    this.mask = capacity - 1;
    this.size = 0;
    for (let i = 0; i < values.length; i++) {
      if (values[i] !== 0) this.set(keys1[i]!, keys2[i]!, values[i]!, (a) => a);
    }
  }
}
