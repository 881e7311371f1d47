import { uniformSource } from '../../../src/random.ts';
// Central finite differences in f64 for the reference backward tests.

export const FD_STEP = 1e-5;

/**
 * Largest normalised error |analytic − fd| / (1e-6 + |fd|) over the probed indices (all of them when
 * the tensor is small, else `probes` spread pseudo-randomly). Central differences in f64 with step
 * 1e-5 are accurate to ~1e-9 relative here; a wrong gradient gives errors of order 1.
 */
export function fdError(
  f: () => number,
  param: Float64Array,
  analytic: ArrayLike<number>,
  probes = 24,
  seed = 1,
  step = FD_STEP,
): number {
  const idx: number[] = [];
  if (param.length <= probes) for (let i = 0; i < param.length; i++) idx.push(i);
  else {
    const next = uniformSource(seed);
    for (let i = 0; i < probes; i++) idx.push(Math.floor(((next() + 1) / 2) * param.length));
  }
  let worst = 0;
  for (const i of idx) {
    const keep = param[i];
    param[i] = keep + step;
    const up = f();
    param[i] = keep - step;
    const down = f();
    param[i] = keep;
    const fd = (up - down) / (2 * step);
    worst = Math.max(worst, Math.abs(analytic[i] - fd) / (1e-6 + Math.abs(fd)));
  }
  return worst;
}

/** Σ out ⊙ r: a scalar whose gradient with respect to out is r (a random probe of every output). */
export function project(out: ArrayLike<number>, r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * r[i];
  return s;
}

export function randF64(n: number, seed: number, scale = 1): Float64Array {
  const next = uniformSource(seed);
  return Float64Array.from({ length: n }, () => next() * scale);
}
