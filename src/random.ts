// Seeded randomness, shared by every layer: a run's draws (self-play), the engine's self-checks and the
// reference's test weights. mulberry32 exactly as spec 5.2 (uint32 wrap-around), with its state exposed
// as one number so a run can be checkpointed and resumed bit-for-bit.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private a: number;

  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  /** Uniform in [0, 1); the same sequence as mulberry32(seed). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [lo, hi] (spec 5.2's randInt). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Draws a number even from a one-element list (spec 5.3: the golden hashes depend on it). */
  choice<T>(arr: readonly T[]): T {
    return arr[Math.floor(this.next() * arr.length)];
  }

  /** A fresh uint32, e.g. the seed of one generate call. */
  uint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  /** Fisher–Yates in place, i = len−1..1 (spec 5.2). */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [arr[i], arr[j]] = [arr[j], arr[i]];
    }
    return arr;
  }

  /** k distinct elements (k ≤ arr.length) by partial Fisher–Yates on a copy. */
  sample<T>(arr: readonly T[], k: number): T[] {
    const copy = arr.slice();
    const n = Math.min(k, copy.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.next() * (copy.length - i));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.slice(0, n);
  }

  get state(): number {
    return this.a;
  }

  set state(s: number) {
    this.a = s >>> 0;
  }
}

/** Uniform floats in [−1, 1) from mulberry32. */
export function uniformSource(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
}
