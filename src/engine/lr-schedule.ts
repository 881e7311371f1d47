// The optimizer's schedule and constants, shared by the GPU optimizer (adamw.ts) and its oracle
// (reference/adamw.ts): linear warm-up then constant, cosine or linear decay; clip_grad_norm_'s epsilon.

/** clip_grad_norm_'s guard against division by zero. */
export const CLIP_NORM_EPS = 1e-6;

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
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
