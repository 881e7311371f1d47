// The training step on a WebGPU compatibility-mode adapter (Dawn's GL ES backend on llvmpipe: no
// shader-f16, no subgroups), the mode the browser e2e flows run in: LoRA gradients against the
// reference with the same bound as on the core adapter, f16 weights unpacked in the shader.
import { describe, expect, it } from 'vitest';
import { qwen2PolicyGradient } from '../../src/engine/reference/qwen2-backward.ts';
import {
  convertLora,
  convertWeights,
  randomRefLora,
  randomRefWeights,
} from '../../src/engine/reference/random.ts';
import { f16ToF32, f32ToF16 } from '../../src/model/dtype.ts';
import type { TrainBatch } from '../../src/policy.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { engineFromRef, gradRelErr, makeTrainer, tinyConfig } from './train-helpers.ts';

describe('training step in compatibility mode (GL ES)', () => {
  it('LoRA gradients (f16 weights, f32 KV cache) match the reference', async () => {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const ctx = await getTestContext({ compatibility: true, dawnOptions: ['backend=opengles'] });
    expect(ctx.report.featureLevel).toBe('compatibility');
    const cfg = tinyConfig();
    const w = randomRefWeights(cfg, 41, 'f32');
    const lora = randomRefLora(cfg, 42, 4, 8, undefined, 'f32');
    const engine = await engineFromRef(
      ctx,
      cfg,
      w,
      { maxBatch: 3, maxSeqLen: 16, maxTokensPerPass: 32 },
      { dtype: 'f16', kvDType: 'f32' },
    );
    const trainer = makeTrainer(engine, cfg, lora);
    const sequences = [
      { promptIds: [256, 72, 105], completionIds: [10, 66, 67], advantage: 0.7 },
      { promptIds: [65, 3], completionIds: [70], advantage: -1.1 },
    ];
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0.01, klBeta: 0 };
    await trainer.computeGradients(batch);
    const keepF32 = (name: string) => name.endsWith('norm.weight') || name.endsWith('.bias');
    const rounded = Object.fromEntries(
      Object.entries(w).map(([k, v]) => [k, keepF32(k) ? v : f16ToF32(f32ToF16(Float32Array.from(v)))]),
    );
    const want = qwen2PolicyGradient(
      cfg,
      convertWeights(rounded, 'f64'),
      convertLora(lora, 'f64'),
      sequences,
      {
        clipEps: 0.2,
        entropyCoef: 0.01,
        klBeta: 0,
      },
    );
    const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
    console.info(`compat-mode LoRA gradient error: ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });
});
