// The run memory estimate at the real Qwen2-0.5B shape: the training state itemised (LoRA tensors or none,
// gradients, both AdamW moments, saved inputs, full fine-tuning's frozen KL copy), its parts summing to
// the total.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.ts';
import {
  parseQwen2Config,
  qwen2_0_5bConfigJson,
  qwen2TensorShapes,
} from '../../../src/model/qwen2-config.ts';
import { engineShape } from '../../../src/trainer/engine-shape.ts';
import { estimateMemory } from '../../../src/trainer/memory-estimate.ts';

const qwen = parseQwen2Config(qwen2_0_5bConfigJson());
const params = qwen2TensorShapes(qwen).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
const estimate = (preset: Parameters<typeof resolveConfig>[0], over = {}, bytes: 2 | 4 = 4) => {
  const config = resolveConfig(preset, over);
  return estimateMemory(qwen, config, engineShape(config, bytes), 2 ** 30);
};

describe('memory estimate', () => {
  it('full fine-tuning: f32 weights train in place, with gradients and both moments of every weight', () => {
    const m = estimate('azr-parity');
    expect(params).toBeGreaterThan(490e6); // Qwen2-0.5B, tied embeddings
    expect(m.weights).toBe(params * 4);
    expect(m.trainingParts).toMatchObject({
      parameters: 0,
      gradients: params * 4,
      adamM: params * 4,
      adamV: params * 4,
      klReference: 0,
    });
    const parts = Object.values(m.trainingParts!).reduce((a, b) => a + b, 0);
    expect(m.training).toBe(parts);
    expect(m.total).toBe(m.weights + m.kvCache + m.activations + m.training + m.scratch);
    expect(m.fits).toBe(false); // ~8 GiB: over the 4 GiB a laptop tab gets
  });

  it('full fine-tuning with klBeta > 0 counts the frozen copy: a second engine of the same shape', () => {
    const m = estimate('azr-parity', { klBeta: 0.1 });
    expect(m.trainingParts!.klReference).toBe(m.weights + m.kvCache + m.activations);
    expect(m.training).toBe(estimate('azr-parity').training + m.trainingParts!.klReference);
  });

  it('LoRA: r·(in + out) per adapted projection in f32, and no copy for the KL (the adapter switches off)', () => {
    const m = estimate('journal-grpo', {}, 2);
    const C = qwen.hiddenSize;
    const kv = qwen.numKeyValueHeads * qwen.headDim;
    const I = qwen.intermediateSize;
    const perLayer = 16 * (2 * (C + C) + 2 * (C + kv) + 3 * (C + I));
    expect(m.trainingParts!.parameters).toBe(perLayer * qwen.numHiddenLayers * 4);
    expect(m.trainingParts!.gradients).toBe(m.trainingParts!.parameters);
    expect(m.trainingParts!.klReference).toBe(0);
    expect(m.weights).toBe(params * 2);
  });
});
