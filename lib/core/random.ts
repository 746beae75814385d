/**
 * Seeded pseudo-random numbers. The core never touches global randomness: every
 * random choice (election timeouts) comes from a {@link Random} the caller injects,
 * so a run is a pure function of its inputs and its seed.
 *
 * @packageDocumentation
 */

/** The randomness the core consumes. */
export interface Random {
  /** A uniformly distributed integer in `[0, bound)`; `bound` is a positive safe integer ≤ 2^32. */
  int(bound: number): number;
}

/**
 * xoshiro128** seeded through splitmix32: small, fast, good enough for timeouts and
 * simulation choices. Not cryptographic.
 */
export class SeededRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** @param seed any integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  int(bound: number): number {
    if (!Number.isSafeInteger(bound) || bound <= 0 || bound > 0x1_0000_0000) {
      throw new RangeError(`SeededRandom.int: bound must be an integer in [1, 2^32], got ${bound}`);
    }
    // Multiply-shift: bias below 2^-32 per draw is irrelevant here.
    return Math.floor((this.nextU32() / 0x1_0000_0000) * bound);
  }

  /** True with probability `p` (0..1). */
  chance(p: number): boolean {
    return this.nextU32() / 0x1_0000_0000 < p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
