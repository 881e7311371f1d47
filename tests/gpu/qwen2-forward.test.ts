import { describe, expect, it } from 'vitest';
import { qwen2Logits, qwen2CompletionLogprobs } from '../../src/engine/reference/qwen2.ts';
import { maxAbsDiff } from '../helpers/gpu.ts';
import { refConfig, refWeights, tinyEngine, tinyModel } from './tiny-engine.ts';

// Whole-model logits: f32 weights, O(1) activations over 2 layers; the kernels' f32 sums run in another
// order than the reference's f64/f32 loops, so logits agree to ~1e-5; 1e-3 leaves margin, and any
// semantic slip (RoPE convention, GQA mapping, a missing bias) moves logits by O(0.1).
const LOGIT_ATOL_F32 = 1e-3;

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
});
