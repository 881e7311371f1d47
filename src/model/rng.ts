// Deterministic pseudo-random numbers for the tiny-model generator. Each tensor gets its own stream,
// seeded from (seed, tensor name), so its values do not depend on chunk sizes or tensor order.
// Browser-safe.

/** 32-bit FNV-1a of a string, mixed with a seed. */
export function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Fold the high half of a 53-bit seed in too, so seeds above 2^32 still differ.
  h ^= Math.floor(seed / 2 ** 32) >>> 0;
  return Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
}

/** sfc32: small, fast, passes PractRand to 2^40+; plenty for random weights. */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = seed >>> 0;
    for (let i = 0; i < 12; i++) this.nextU32(); // warm up past the weak initial state
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [-1, 1). */
  nextSigned(): number {
    return this.nextU32() / 2 ** 31 - 1;
  }

  /** Fills `out` with uniform values in [center - halfWidth, center + halfWidth). */
  fillUniform(out: Float32Array, center: number, halfWidth: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = center + halfWidth * this.nextSigned();
    return out;
  }
}
