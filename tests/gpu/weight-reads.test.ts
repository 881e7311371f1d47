// The weight bytes a decode step streams (Dispatcher.weightBytes, from each dispatch's grid × its
// kernel's bytes per workgroup) against a formula from the model's shape alone: every weight matrix
// [N, K] is read once per row block of the batch (1, 2, 4 or 8 rows), in whole column groups (64 columns
// per workgroup for K ≤ NARROW_K, 4 above). An adapter's matrices do not count, and the LoRA x·Aᵀ GEMV
// of the 'separate' decode path adds nothing.
import { describe, expect, it } from 'vitest';
import { NARROW_K } from '../../src/engine/kernels/gemv.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { randomLora, refConfig, tinyEngine, tinyModel, TINY } from './tiny-engine.ts';

const shape = { ...TINY, intermediate: 288 }; // down_proj's K above NARROW_K: the wide shader too

function expectedBytes(engine: Engine, M: number): number {
  const c = engine.forward.config;
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const qkv = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim;
  const matrices: [number, number][] = [
    [qkv, C],
    [C, C],
    [2 * I, C],
    [C, I],
  ];
  const block = [1, 2, 4, 8].find((b) => b >= M) ?? 8;
  const reads = (N: number, K: number) => {
    const cols = K <= NARROW_K ? 64 : 4;
    return Math.ceil(M / block) * Math.ceil(N / cols) * cols * K * 4; // f32 weights
  };
  const layer = matrices.reduce((a, [N, K]) => a + reads(N, K), 0);
  return c.numHiddenLayers * layer + reads(c.vocabSize, C);
}

async function stepBytes(engine: Engine, M: number): Promise<number> {
  engine.resetStats();
  const prompts = Array.from({ length: M }, (_, i) => [1 + i, 2, 3 + (i % 5)]);
  await engine.generate(prompts, { maxNew: 3, temperature: 0, seed: 0, stopTokens: [] });
  return engine.stats.decodeWeightBytes / engine.stats.decodeSteps;
}

describe('weight bytes streamed per decode step', async () => {
  const model = await tinyModel(41, 'F32', shape);
  const engine = await tinyEngine(model, { maxBatch: 9, maxSeqLen: 16, maxTokensPerPass: 32 });

  it('equal the shape formula at batch 1, 3 and 9 (two row blocks)', async () => {
    for (const M of [1, 3, 9]) expect(await stepBytes(engine, M)).toBe(expectedBytes(engine, M));
    // At batch 1 the only excess over the matrices' bytes is the column groups' ragged end.
    const ratio = (await stepBytes(engine, 1)) / engine.forward.weights.matrixBytes;
    expect(ratio).toBeGreaterThanOrEqual(1);
    expect(ratio).toBeLessThan(1.25);
  });

  it('with a LoRA adapter (separate decode path): the same bytes as without', async () => {
    const lora = GpuLora.create(
      engine.ctx.device,
      engine.ledger,
      refConfig(model),
      randomLora(refConfig(model), 4, 7),
    );
    engine.setLora(lora.weights);
    expect(engine.forward.limits.loraDecode).toBe('separate');
    expect(await stepBytes(engine, 3)).toBe(expectedBytes(engine, 3));
    engine.loraEnabled = false;
    expect(await stepBytes(engine, 3)).toBe(expectedBytes(engine, 3));
    engine.loraEnabled = true;
  });
});
