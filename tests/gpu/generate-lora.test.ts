// Decode with a LoRA adapter fused into the GEMV epilogue (lora-fused.ts, kernels/gemv.ts): the same
// tokens and log-probs as the reference and as recomputing the prefix, batch-invariant, and no dispatch
// added; and the same on the default 'separate' path (qwen2-forward.ts LoraDecode), with its dispatch
// count. (That decoding follows a training step, i.e. the packed copies are refreshed, is tested in
// train-learning.test.ts, where the training pipelines are compiled anyway.)
import { describe, expect, it } from 'vitest';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import { logSumExp } from '../../src/engine/reference/ops.ts';
import { qwen2Logits } from '../../src/engine/reference/qwen2.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { randomLora, refConfig, refWeights, tinyEngine, tinyModel } from './tiny-engine.ts';

// Same tolerances as generate.test.ts: decode vs the reference's f32/f64 recomputation, and vs the
// engine's own teacher-forced (tiled matmul, two-dispatch LoRA) path.
const LP_ATOL = 1e-3;
const TF_ATOL = 1e-4;

/** Dispatches of one decode step (from the engine's counters) and of each layer's decode encoding. */
async function decodeDispatches(
  engine: Engine,
  prompts: number[][],
): Promise<{ step: number; layer: number[] }> {
  engine.resetStats();
  await engine.generate(prompts, { maxNew: 3, temperature: 0, seed: 0, stopTokens: [] });
  const step = engine.stats.decodeDispatches / engine.stats.decodeSteps;
  const f = engine.forward;
  const enc = engine.ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const layer: number[] = [];
  for (let l = 0; l < f.config.numHiddenLayers; l++) {
    const before = f.dispatcher.dispatches;
    f.encodeLayer(pass, l, prompts.length, 'gemv');
    layer.push(f.dispatcher.dispatches - before);
  }
  pass.end();
  enc.finish(); // recorded for counting only, never submitted
  return { step, layer };
}

describe('decode with LoRA fused into the GEMV', async () => {
  // The tiny shape decodes on the narrow GEMV shader (K ≤ 256); gemv-lora.test.ts covers the split-K one.
  const model = await tinyModel(31, 'F32');
  const cfg = refConfig(model);
  const engine = await tinyEngine(model, {
    maxBatch: 4,
    maxSeqLen: 32,
    maxTokensPerPass: 16,
    loraDecode: 'fused',
  });
  const host = randomLora(cfg, 4, 500, { 0: 'up_proj', 1: 'k_proj' });
  const gpuLora = GpuLora.create(engine.ctx.device, engine.ledger, cfg, host);
  engine.setLora(gpuLora.weights);
  const prompts = [
    [1, 2, 3, 4, 5],
    [100, 101],
    [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
  ];
  const greedy = { maxNew: 6, temperature: 0, seed: 1, stopTokens: [] as number[] };

  it('greedy decoding equals the reference and recomputing the prefix (LoRA on all seven targets)', async () => {
    const out = await engine.generate(prompts, greedy);
    const w = await refWeights(model);
    const V = cfg.vocabSize;
    let moved = 0;
    for (const c of out) {
      const p = prompts[c.promptIndex];
      const seq = [...p, ...c.ids.slice(0, -1)];
      const { logits } = qwen2Logits(cfg, w, [{ ids: seq }], host);
      const base = qwen2Logits(cfg, w, [{ ids: seq }]).logits;
      c.ids.forEach((tok, j) => {
        const at = (p.length - 1 + j) * V;
        const row = logits.subarray(at, at + V);
        expect(Math.abs(c.logprobs[j] - (row[tok] - logSumExp(row, 0, V)))).toBeLessThan(LP_ATOL);
        let best = 0;
        for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
        expect(row[best] - row[tok]).toBeLessThan(LP_ATOL);
        for (let i = 0; i < V; i++) moved = Math.max(moved, Math.abs(row[i] - base[at + i]));
      });
    }
    expect(moved).toBeGreaterThan(0.05); // the adapter matters
    const tf = await engine.completionLogprobs(
      out.map((c) => ({ promptIds: prompts[c.promptIndex], completionIds: c.ids })),
    );
    out.forEach((c, i) =>
      c.logprobs.forEach((lp, j) => expect(Math.abs(lp - tf[i][j])).toBeLessThan(TF_ATOL)),
    );
  });

  it('batched greedy equals one-at-a-time, bit for bit', async () => {
    const batched = await engine.generate(prompts, greedy);
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await engine.generate([prompts[i]], greedy);
      expect(alone.ids).toEqual(batched[i].ids);
      expect(Array.from(alone.logprobs)).toEqual(Array.from(batched[i].logprobs));
    }
  });

  it('LoRA adds no dispatch to a decode step: ≤ 10 per layer, the same count as without', async () => {
    const withLora = await decodeDispatches(engine, prompts);
    engine.loraEnabled = false;
    const without = await decodeDispatches(engine, prompts);
    engine.loraEnabled = true;
    console.log(
      `decode dispatches per step: ${withLora.step} with LoRA, ${without.step} without; per layer ${withLora.layer}`,
    );
    for (const n of withLora.layer) expect(n).toBeLessThanOrEqual(10);
    expect(withLora.layer).toEqual(without.layer);
    expect(withLora.step).toBe(without.step);
  });
});

describe("decode on the default LoRA path, 'separate' (x·Aᵀ as one split-K GEMV per site, ·Bᵀ in the epilogue)", async () => {
  const model = await tinyModel(31, 'F32');
  const cfg = refConfig(model);
  const engine = await tinyEngine(model, {
    maxBatch: 4,
    maxSeqLen: 32,
    maxTokensPerPass: 16,
  });
  const host = randomLora(cfg, 4, 500, { 0: 'up_proj', 1: 'k_proj' });
  engine.setLora(GpuLora.create(engine.ctx.device, engine.ledger, cfg, host).weights);
  const prompts = [
    [1, 2, 3, 4, 5],
    [100, 101],
  ];
  const greedy = { maxNew: 5, temperature: 0, seed: 1, stopTokens: [] as number[] };

  it('matches the reference, is batch-invariant, and adds 1 dispatch per adapted site', async () => {
    const out = await engine.generate(prompts, greedy);
    const w = await refWeights(model);
    const V = cfg.vocabSize;
    for (const c of out) {
      const p = prompts[c.promptIndex];
      const { logits } = qwen2Logits(cfg, w, [{ ids: [...p, ...c.ids.slice(0, -1)] }], host);
      c.ids.forEach((tok, j) => {
        const at = (p.length - 1 + j) * V;
        const row = logits.subarray(at, at + V);
        expect(Math.abs(c.logprobs[j] - (row[tok] - logSumExp(row, 0, V)))).toBeLessThan(LP_ATOL);
      });
    }
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await engine.generate([prompts[i]], greedy);
      expect(alone.ids).toEqual(out[i].ids);
      expect(Array.from(alone.logprobs)).toEqual(Array.from(out[i].logprobs));
    }
    // Six of the seven targets adapted in each layer, so every site (q|k|v, o, gate|up, down) has an
    // adapted sub-projection: 9 + 4 (was 9 + 2·6 with two matmuls per adapted projection).
    expect((await decodeDispatches(engine, prompts)).layer).toEqual([13, 13]);
  });
});
