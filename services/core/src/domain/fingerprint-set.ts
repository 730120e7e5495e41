/** Seeds of the two 32-bit halves of a fingerprint (FNV-1a and a murmur-style mix). */
const H1_SEED = 0x811c9dc5;
const H2_SEED = 0x9747b28c;

/**
 * A set of 64-bit string fingerprints in flat typed arrays: 8 bytes per slot instead of a JS
 * string per entry, so the duplicate check of a million custom_ids stays a small fraction of what a
 * Set of strings would hold. Two distinct strings collide with probability ~n²/2^65.
 *
 * The table is sized to the entries expected (`reserve`), at any capacity rather than a power of
 * two, and grows by half when a guess was short: the duplicate check is the one part of
 * validation that grows with the file, so it should not also carry a half-empty table or the old
 * table of a doubling.
 */
export class FingerprintSet {
  /** Fill above which the table grows; linear probing stays short below it. */
  private static readonly MAX_LOAD = 0.75;
  private hi: Uint32Array;
  private lo: Uint32Array;
  private size = 0;

  constructor(expected = 1024) {
    const cap = FingerprintSet.capacityFor(expected);
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
  }

  /** Makes room for `expected` entries in all at once, so the table is allocated once at its final size. */
  reserve(expected: number): void {
    const cap = FingerprintSet.capacityFor(expected);
    if (cap > this.hi.length) this.rehash(cap);
  }

  /** Adds `s`; returns false when it (or its fingerprint) was already present. */
  add(s: string): boolean {
    let h1 = H1_SEED;
    let h2 = H2_SEED;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    return this.addHash(h1, h2, s.length);
  }

  /**
   * Adds the string whose UTF-8 bytes are `b[start, end)`, exactly as `add` would add the decoded
   * text, without decoding it when it is ASCII (a byte is then its UTF-16 unit).
   */
  addUtf8(b: Buffer, start: number, end: number): boolean {
    let h1 = H1_SEED;
    let h2 = H2_SEED;
    for (let i = start; i < end; i++) {
      const c = b[i]!;
      if (c >= 0x80) return this.add(b.toString("utf8", start, end));
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    return this.addHash(h1, h2, end - start);
  }

  private addHash(h1: number, h2: number, length: number): boolean {
    h1 = (h1 ^ (h1 >>> 16)) >>> 0;
    h2 = (Math.imul(h2 ^ length, 0x85ebca6b) ^ (h2 >>> 13)) >>> 0;
    // 0/0 marks an empty slot, so never store it.
    if (h1 === 0 && h2 === 0) h2 = 1;
    if (this.size + 1 > this.hi.length * FingerprintSet.MAX_LOAD) this.rehash(Math.ceil(this.hi.length * 1.5));
    return this.insert(h1, h2);
  }

  private static capacityFor(entries: number): number {
    return Math.max(16, Math.ceil(entries / FingerprintSet.MAX_LOAD) + 1);
  }

  private insert(h1: number, h2: number): boolean {
    const cap = this.hi.length;
    // Multiply-shift range reduction: uniform over any capacity; x / 2^32 < 1, so i < cap.
    let i = Math.floor((((h1 ^ Math.imul(h2, 0x27d4eb2d)) >>> 0) / 4294967296) * cap);
    for (;;) {
      const a = this.hi[i]!;
      const b = this.lo[i]!;
      if (a === 0 && b === 0) {
        this.hi[i] = h1;
        this.lo[i] = h2;
        this.size++;
        return true;
      }
      if (a === h1 && b === h2) return false;
      if (++i === cap) i = 0;
    }
  }

  private rehash(cap: number): void {
    const { hi, lo } = this;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.size = 0;
    for (let i = 0; i < hi.length; i++) {
      if (hi[i] !== 0 || lo[i] !== 0) this.insert(hi[i]!, lo[i]!);
    }
  }
}
