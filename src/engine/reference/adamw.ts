// Reference global grad-norm clipping and AdamW (PyTorch's torch.optim.AdamW semantics): the oracle
// for the GPU optimizer kernels.
//   g ← g · min(1, maxNorm / (‖g‖₂ + 1e-6))          (torch.nn.utils.clip_grad_norm_)
//   θ ← θ − lr·wd·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   θ ← θ − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)

import type { FloatArray } from './ops.ts';
import { CLIP_NORM_EPS, type AdamWOptions } from '../lr-schedule.ts';

/** ‖g‖₂ over every tensor together (f64 accumulation). */
export function globalGradNorm(grads: readonly FloatArray[]): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  return Math.sqrt(ss);
}

/** The factor clip_grad_norm_ scales by: min(1, maxNorm / (norm + 1e-6)); maxNorm ≤ 0 disables it. */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (norm + CLIP_NORM_EPS));
}

/** One AdamW update of a tensor in place; `step` is 1-based; `gradScale` applies the clip factor. */
export function adamwStep(
  param: FloatArray,
  grad: FloatArray,
  m: FloatArray,
  v: FloatArray,
  step: number,
  gradScale: number,
  o: AdamWOptions,
): void {
  const bc1 = 1 - Math.pow(o.beta1, step);
  const bc2 = 1 - Math.pow(o.beta2, step);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * gradScale;
    let p = param[i] * (1 - o.lr * o.weightDecay);
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
    p -= (o.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + o.eps);
    param[i] = p;
  }
}
