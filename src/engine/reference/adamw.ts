// Reference global grad-norm clipping and AdamW (PyTorch's torch.optim.AdamW semantics): the oracle
// for the GPU optimizer kernels.
//   g ← g · min(1, maxNorm / (‖g‖₂ + 1e-6))          (torch.nn.utils.clip_grad_norm_)
//   θ ← θ − lr·wd·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   θ ← θ − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)

import type { FloatArray } from './ops.ts';

/** clip_grad_norm_'s guard against division by zero. */
export const CLIP_NORM_EPS = 1e-6;

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

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

/** Decay after the warm-up: cosine or linear from lr to minRatio·lr at optimizer step `totalSteps`. */
export interface LrDecay {
  kind: 'cosine' | 'linear';
  totalSteps: number;
  minRatio: number;
}

/**
 * Learning rate at optimizer step t (1-based): linear warm-up over `warmupSteps`, then constant, or
 * decaying (cosine / linear) to minRatio·lr at `decay.totalSteps` and held there after it.
 */
export function learningRate(base: number, step: number, warmupSteps: number, decay?: LrDecay): number {
  if (warmupSteps > 0 && step < warmupSteps) return (base * step) / warmupSteps;
  if (!decay) return base;
  const span = Math.max(1, decay.totalSteps - warmupSteps);
  const p = Math.min(1, Math.max(0, (step - warmupSteps) / span));
  const shape = decay.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * p)) : 1 - p;
  return base * (decay.minRatio + (1 - decay.minRatio) * shape);
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
