// The LoRA adapter as the forward pass consumes it. The "engine-train" side creates, initialises and
// trains these buffers; the forward (generation, log-probs, training recomputation) only reads them.
// Layout (PEFT): A [rank, in], B [out, rank], f32; y += scale · (x·Aᵀ)·Bᵀ with scale = alpha / rank.
import type { LoraTarget } from '../config.ts';

export interface LoraPairBuffers {
  /** f32 [rank, in]. */
  A: GPUBuffer;
  /** f32 [out, rank]. */
  B: GPUBuffer;
}

export interface LoraWeights {
  rank: number;
  /** alpha / rank. */
  scale: number;
  /** Per layer, the adapted projections (absent = not adapted). */
  layers: Partial<Record<LoraTarget, LoraPairBuffers>>[];
}
