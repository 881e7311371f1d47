// The forward on a WebGPU compatibility-mode adapter (Dawn's GL ES backend on llvmpipe: no shader-f16,
// no subgroups): the mode the browser e2e flows run in. Same tolerances as on the core adapter.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import { qwen2Logits } from '../../src/engine/reference/qwen2.ts';
import { getTestContext, maxAbsDiff } from '../helpers/gpu.ts';
import { randomLora, refConfig, refWeights, tinyModel } from './tiny-engine.ts';

describe('forward in compatibility mode (GL ES)', () => {
  it('whole-model logits (bf16 weights) and batch-invariant greedy decoding, also with LoRA', async () => {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const ctx = await getTestContext({ compatibility: true, dawnOptions: ['backend=opengles'] });
    expect(ctx.report.featureLevel).toBe('compatibility');
    const model = await tinyModel(31, 'BF16');
    const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
      maxBatch: 3,
      maxSeqLen: 40,
      kvDType: 'f32',
      loraDecode: 'fused',
    });
    const seqs = [
      [1, 2, 3, 4, 5, 6],
      [40, 41],
    ];
    const got = await engine.allLogits(seqs);
    const want = qwen2Logits(
      refConfig(model),
      await refWeights(model),
      seqs.map((ids) => ({ ids })),
    ).logits;
    // Same bound as the core-mode whole-model test (f32 math on the same bf16 values).
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-3);
    const opts = { maxNew: 6, temperature: 0, seed: 0, stopTokens: [] as number[] };
    const batched = await engine.generate(seqs, opts);
    const alone = await engine.generate([seqs[1]], opts);
    expect(alone[0].ids).toEqual(batched[1].ids);
    // With a LoRA adapter (decode applies it in the GEMV epilogue): still batch-invariant, and decode's
    // log-probs equal the teacher-forced ones (tiled matmul path).
    const lora = GpuLora.create(ctx.device, engine.ledger, model.config, randomLora(model.config, 4, 40));
    engine.setLora(lora.weights);
    const withLora = await engine.generate(seqs, opts);
    const loraAlone = await engine.generate([seqs[1]], opts);
    expect(loraAlone[0].ids).toEqual(withLora[1].ids);
    expect(Array.from(loraAlone[0].logprobs)).toEqual(Array.from(withLora[1].logprobs));
    const tf = await engine.completionLogprobs(
      withLora.map((c) => ({ promptIds: seqs[c.promptIndex], completionIds: c.ids })),
    );
    withLora.forEach((c, i) =>
      c.logprobs.forEach((lp, j) => expect(Math.abs(lp - tf[i][j])).toBeLessThan(1e-4)),
    );
  });
});
