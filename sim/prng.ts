// A small seeded PRNG (mulberry32) so random tests and simulations replay from their seed.

export class Prng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  bool(pTrue = 0.5): boolean {
    return this.float() < pTrue;
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)];
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/**
 * The seed of a random test: SEED=n replays a run, SEED=random explores a new
 * one (printed on failure). Without SEED the seed is fixed, so the suite and CI
 * see the same inputs on every run.
 */
export function seedFromEnv(fixed = 20261127): number {
  const s = typeof process !== 'undefined' ? process.env.SEED : undefined;
  if (s === 'random') return (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
  return s !== undefined && s !== '' ? Number(s) >>> 0 : fixed;
}
