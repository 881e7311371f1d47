// GPU memory a run needs, estimated from the model's shape and the run config before anything is
// allocated (the UI's "will it fit" warning); the engine's ledger reports the measured figures after.
import type { RunConfig } from '../config.ts';
import { qwen2TensorShapes, type Qwen2Config } from '../model/qwen2-config.ts';
import type { MemoryReport, TrainingMemory } from '../protocol.ts';
import type { EngineShape } from './engine-shape.ts';

/** Browsers do not say how much GPU memory is free; 4 GiB is what a laptop's integrated GPU usually gives. */
export const ASSUMED_GPU_MEMORY = 4 * 2 ** 30;

export function estimateMemory(
  model: Qwen2Config,
  config: RunConfig,
  shape: EngineShape,
  maxBufferSize: number,
): MemoryReport {
  const f32 = 4;
  const params = qwen2TensorShapes(model).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const weights = params * shape.weightBytes;
  const kvPerToken = 2 * model.numHiddenLayers * model.numKeyValueHeads * model.headDim * shape.weightBytes;
  const kvCache = shape.maxBatch * shape.maxSeqLen * kvPerToken;
  const rowsPerPass = shape.maxBatch * 64;
  const activations = rowsPerPass * (6 * model.hiddenSize + 3 * model.intermediateSize) * f32;
  // LoRA: A [r, in] and B [out, r] per adapted projection, f32 with gradients and both AdamW moments. Full
  // fine-tuning trains the (f32) weights in place: gradients and moments of every weight.
  const full = config.fineTune === 'full';
  const trainableBytes = (full ? params : loraParamsPerLayer(model, config) * model.numHiddenLayers) * f32;
  // Micro-batch recomputation keeps each layer's input for the micro-batch's tokens.
  const microTokens = config.microBatch * shape.maxSeqLen;
  const trainingParts: TrainingMemory = {
    parameters: full ? 0 : trainableBytes,
    gradients: trainableBytes,
    adamM: trainableBytes,
    adamV: trainableBytes,
    savedInputs: microTokens * model.hiddenSize * f32 * (model.numHiddenLayers + 8),
    // The KL reference of full fine-tuning is a second engine of the same shape on frozen weights (LoRA's
    // is the base with the adapter off: nothing more).
    klReference: full && config.klBeta > 0 ? weights + kvCache + activations : 0,
  };
  const training = Object.values(trainingParts).reduce((a, b) => a + b, 0);
  const scratch = 16 << 20;
  const total = weights + kvCache + activations + training + scratch;
  return {
    weights,
    kvCache,
    activations,
    training,
    trainingParts,
    scratch,
    total,
    maxBufferSize,
    fits: total <= ASSUMED_GPU_MEMORY,
    note:
      'An estimate. Browsers do not report free GPU memory, so "fits" means within 4 GiB, what a laptop with an ' +
      'integrated GPU can usually give one tab.',
  };
}

function loraParamsPerLayer(m: Qwen2Config, c: RunConfig): number {
  const kv = m.numKeyValueHeads * m.headDim;
  const dims: Record<string, [number, number]> = {
    q_proj: [m.hiddenSize, m.hiddenSize],
    k_proj: [m.hiddenSize, kv],
    v_proj: [m.hiddenSize, kv],
    o_proj: [m.hiddenSize, m.hiddenSize],
    gate_proj: [m.hiddenSize, m.intermediateSize],
    up_proj: [m.hiddenSize, m.intermediateSize],
    down_proj: [m.intermediateSize, m.hiddenSize],
  };
  return c.loraTargets.reduce((n, t) => n + c.loraRank * (dims[t][0] + dims[t][1]), 0);
}
