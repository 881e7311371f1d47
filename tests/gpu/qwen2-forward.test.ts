import { describe, expect, it } from 'vitest';
import { uploadF32 } from '../../src/engine/buffers.ts';
import type { LoraWeights } from '../../src/engine/lora-types.ts';
import { qwen2CompletionLogprobs, qwen2Logits } from '../../src/engine/reference/qwen2.ts';
import type { LoraTarget } from '../../src/config.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { refConfig, refWeights, tinyEngine, tinyModel } from './tiny-engine.ts';
import { moduleName, type Projection, type HostLora } from '../../src/model/lora.ts';

// Whole-model logits: f32 weights, O(1) activations over 2 layers; the kernels' f32 sums run in another
// order than the reference's f64/f32 loops, so logits agree to ~1e-5; 1e-3 leaves margin, and any
// semantic slip (RoPE convention, GQA mapping, a missing bias) moves logits by O(0.1).
const LOGIT_ATOL_F32 = 1e-3;
// f16 arithmetic (f16 weights with shader-f16): every matmul input is rounded to f16 (2^-11 relative)
// and its products summed in short f16 runs, so each projection carries ~2^-11 relative error; over 2
// layers of O(1) activations and O(3) logits that moves logits by ~1e-3..1e-2. 3e-2 bounds it; a wrong
// load or index moves them by O(1).
const LOGIT_ATOL_F16 = 3e-2;

describe('Qwen2 forward vs reference', () => {
  it('whole-model logits, mixed lengths in one batch (f32 weights)', async () => {
    const model = await tinyModel(7, 'F32');
    const engine = await tinyEngine(model, { maxTokensPerPass: 16 });
    const seqs = [
      [1, 2, 3, 4, 5, 6, 7],
      [200, 100],
      [258, 10, 20, 30, 40, 50, 60, 70, 80, 90, 11, 12, 13],
    ];
    const got = await engine.allLogits(seqs);
    const want = qwen2Logits(
      refConfig(model),
      await refWeights(model),
      seqs.map((ids) => ({ ids })),
    ).logits;
    const err = maxAbsDiff(got, want);
    console.log(`whole-model logits f32: max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(LOGIT_ATOL_F32);
    // From a position on: the same rows, the LM head skipped before them (from = [5, 0, 12]).
    const V = model.config.vocabSize;
    const from = [5, 0, 12];
    const tail = await engine.allLogits(seqs, from);
    const starts = [0, seqs[0].length, seqs[0].length + seqs[1].length];
    const expected = seqs.flatMap((s, i) =>
      Array.from(got.subarray((starts[i] + from[i]) * V, (starts[i] + s.length) * V)),
    );
    expect(tail.length).toBe(expected.length);
    expect(maxAbsDiff(tail, expected)).toBe(0);
  });

  it('teacher-forced logprobs match the reference', async () => {
    const model = await tinyModel(8, 'F32');
    const engine = await tinyEngine(model, { maxTokensPerPass: 8 });
    const batch = [
      { promptIds: [1, 2, 3], completionIds: [4, 5, 6, 7] },
      { promptIds: [9], completionIds: [10] },
      { promptIds: [20, 21, 22, 23, 24], completionIds: [25, 26, 27, 28, 29, 30] },
    ];
    const got = await engine.completionLogprobs(batch);
    const want = qwen2CompletionLogprobs(refConfig(model), await refWeights(model), batch);
    let err = 0;
    got.forEach((g, i) => {
      expect(g.length).toBe(want[i].length);
      err = Math.max(err, maxAbsDiff(g, want[i]));
    });
    console.log(`teacher-forced logprobs f32: max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(LOGIT_ATOL_F32);
  });

  for (const dtype of ['BF16', 'F16'] as const) {
    it(`whole-model logits, ${dtype} weights (16-bit packed path)`, async () => {
      const model = await tinyModel(9, dtype);
      // Without shader-f16 (bf16 never uses it): packed words unpacked to f32, f32 arithmetic.
      const engine = await tinyEngine(model, { kvDType: 'f32' }, { disableFeatures: ['shader-f16'] });
      expect(engine.weights.dtype).toBe(dtype.toLowerCase());
      expect(engine.info.arithmetic).toBe('f32');
      const seqs = [
        [5, 6, 7, 8, 9],
        [258, 1],
      ];
      const got = await engine.allLogits(seqs);
      // The reference reads the same 16-bit values decoded to f32, so the f32 tolerance holds.
      const want = qwen2Logits(
        refConfig(model),
        await refWeights(model),
        seqs.map((ids) => ({ ids })),
      ).logits;
      const err = maxAbsDiff(got, want);
      console.log(`whole-model logits ${dtype}: max abs err ${err.toExponential(2)}`);
      expect(err).toBeLessThan(LOGIT_ATOL_F32);
    });
  }

  it('whole-model logits, F16 weights on the shader-f16 path (f16 arithmetic, native f16 KV cache)', async () => {
    const model = await tinyModel(9, 'F16');
    const engine = await tinyEngine(model, { kvDType: 'f16' });
    expect(engine.info).toMatchObject({ weightDType: 'f16', kvDType: 'f16', arithmetic: 'f16' });
    const seqs = [
      [5, 6, 7, 8, 9, 10, 11],
      [258, 1],
      [40, 41, 42],
    ];
    const got = await engine.allLogits(seqs);
    // The reference reads the same f16 weights (decoded exactly) and, with an f16 KV cache, is still f32:
    // what remains is the f16 arithmetic and the cache's f16 rounding of k/v.
    const want = qwen2Logits(
      refConfig(model),
      await refWeights(model),
      seqs.map((ids) => ({ ids })),
    ).logits;
    const err = maxAbsDiff(got, want);
    console.log(`whole-model logits F16, f16 arithmetic: max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(LOGIT_ATOL_F16);
  });

  it('f32 file run in f16 with an f16 KV cache: logits within f16 rounding of the f32 reference', async () => {
    const model = await tinyModel(10, 'F32');
    const engine = await tinyEngine(model, { dtype: 'f16', kvDType: 'f16' });
    const seqs = [[3, 1, 4, 1, 5, 9, 2, 6]];
    const got = await engine.allLogits(seqs);
    const want = qwen2Logits(
      refConfig(model),
      await refWeights(model),
      seqs.map((ids) => ({ ids })),
    ).logits;
    const err = maxAbsDiff(got, want);
    console.log(`whole-model logits f32 file as f16: max abs err ${err.toExponential(2)}`);
    // f16 weights carry a 2^-11 relative rounding each, and (shader-f16 here) f16 arithmetic another
    // few 2^-11 per projection: the same order as LOGIT_ATOL_F16's reasoning.
    expect(err).toBeLessThan(LOGIT_ATOL_F16);
  });

  it('LoRA on all seven projections matches the reference, and can be switched off', async () => {
    const model = await tinyModel(11, 'F32');
    const engine = await tinyEngine(model);
    const device = await getTestDevice();
    const c = model.config;
    const rank = 4;
    const scale = 16 / rank;
    const dims: Record<LoraTarget, [number, number, Projection]> = {
      q_proj: [c.hiddenSize, c.hiddenSize, 'self_attn.q_proj'],
      k_proj: [c.numKeyValueHeads * c.headDim, c.hiddenSize, 'self_attn.k_proj'],
      v_proj: [c.numKeyValueHeads * c.headDim, c.hiddenSize, 'self_attn.v_proj'],
      o_proj: [c.hiddenSize, c.hiddenSize, 'self_attn.o_proj'],
      gate_proj: [c.intermediateSize, c.hiddenSize, 'mlp.gate_proj'],
      up_proj: [c.intermediateSize, c.hiddenSize, 'mlp.up_proj'],
      down_proj: [c.hiddenSize, c.intermediateSize, 'mlp.down_proj'],
    };
    const ref: HostLora = {};
    const lora: LoraWeights = { rank, scale, layers: [] };
    let seed = 100;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      lora.layers.push({});
      for (const [target, [out, inp, proj]] of Object.entries(dims) as [
        LoraTarget,
        [number, number, Projection],
      ][]) {
        if (l === 1 && target === 'k_proj') continue; // a layer with a projection left un-adapted
        const A = randomF32(rank * inp, seed++, 0.1);
        const B = randomF32(out * rank, seed++, 0.1);
        ref[moduleName(l, proj)] = { A, B, rank, scale };
        lora.layers[l][target] = { A: uploadF32(device, A), B: uploadF32(device, B) };
      }
    }
    const seqs = [
      [1, 2, 3, 4],
      [60, 61, 62, 63, 64, 65],
    ];
    const w = await refWeights(model);
    const base = await engine.allLogits(seqs);
    engine.setLora(lora);
    const got = await engine.allLogits(seqs);
    const want = qwen2Logits(
      refConfig(model),
      w,
      seqs.map((ids) => ({ ids })),
      ref,
    ).logits;
    const err = maxAbsDiff(got, want);
    console.log(
      `whole-model logits with LoRA: max abs err ${err.toExponential(2)}, moved ${maxAbsDiff(got, base).toFixed(3)}`,
    );
    expect(err).toBeLessThan(LOGIT_ATOL_F32);
    expect(maxAbsDiff(got, base)).toBeGreaterThan(0.05);
    engine.loraEnabled = false;
    expect(maxAbsDiff(await engine.allLogits(seqs), base)).toBe(0);
  });
});
