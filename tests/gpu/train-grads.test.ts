// Whole-model LoRA gradients of the GPU training step against the reference (non-zero B, mixed
// lengths, every projection adapted), with and without the clip / entropy / KL terms, and micro-batch
// invariance.
import { describe, expect, it } from 'vitest';
import type { TrainBatch } from '../../src/policy.ts';
import { qwen2PolicyGradient } from '../../src/engine/reference/qwen2-backward.ts';
import { qwen2CompletionLogprobs } from '../../src/engine/reference/qwen2.ts';
import {
  convertLora,
  convertWeights,
  randomRefLora,
  randomRefWeights,
} from '../../src/engine/reference/random.ts';
import { f16ToF32, f32ToF16 } from '../../src/model/dtype.ts';
import type { NodeDeviceOptions } from '../../src/engine/node-gpu.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { engineFromRef, gradRelErr, makeTrainer, tinyConfig } from './train-helpers.ts';

const cfg = tinyConfig();
const w = randomRefWeights(cfg, 5, 'f32');
const lora = randomRefLora(cfg, 6, 4, 8, undefined, 'f32');
const sequences = [
  { promptIds: [256, 72, 105, 33], completionIds: [10, 66, 67, 258, 1], advantage: 0.9 },
  { promptIds: [65], completionIds: [70, 71], advantage: -1.3 },
  { promptIds: [1, 2, 3, 4, 5, 6, 7], completionIds: [8], advantage: 0.4 },
  { promptIds: [100, 101], completionIds: [102, 103, 104], advantage: 0.2 },
];
const errors: Record<string, number> = {};
/** Norm weights and biases stay f32 on the GPU whatever the weight dtype (qwen2-weights.ts). */
const isNormOrBias = (name: string) => name.endsWith('norm.weight') || name.endsWith('.bias');

async function setup(
  maxTokensPerPass: number,
  microBatch?: number,
  splitMinK?: number,
  keepActivations?: boolean,
) {
  const ctx = await getTestContext();
  const engine = await engineFromRef(ctx, cfg, w, { maxBatch: 4, maxSeqLen: 16, maxTokensPerPass });
  return makeTrainer(engine, cfg, lora, { microBatch, splitMinK, keepActivations });
}

describe('GPU training step: whole-model LoRA gradients vs reference', () => {
  const w64 = convertWeights(w, 'f64');
  const l64 = convertLora(lora, 'f64');

  it('plain policy-gradient loss (ratio 1): gradients, loss and logprobs', async () => {
    const trainer = await setup(64);
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
    const res = await trainer.computeGradients(batch);
    const want = qwen2PolicyGradient(cfg, w64, l64, sequences, { clipEps: 0.2, entropyCoef: 0, klBeta: 0 });
    expect(res.tokens).toBe(11);
    expect(res.microBatches).toBe(1);
    expect(res.loss).toBeCloseTo(want.loss, 5);
    res.logprobs.forEach((lp, j) => lp.forEach((x, t) => expect(x).toBeCloseTo(want.logprobs[j][t], 4)));
    const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
    errors.plain = err;
    expect(err).toBeLessThan(1e-4);
  });

  it('PPO clip with old logprobs, entropy bonus and k3 KL', async () => {
    const trainer = await setup(64);
    const lp0 = qwen2CompletionLogprobs(cfg, w64, sequences, l64);
    const seqs = sequences.map((s, j) => ({
      ...s,
      oldLogprobs: Float32Array.from(lp0[j], (x, t) => x + (t % 2 ? 0.5 : -0.05)),
      refLogprobs: Float32Array.from(lp0[j], (x, t) => x - 0.2 + 0.1 * t),
    }));
    const opts = { clipEps: 0.2, entropyCoef: 0.01, klBeta: 0.1 };
    const res = await trainer.computeGradients({ sequences: seqs, ...opts });
    const want = qwen2PolicyGradient(cfg, w64, l64, seqs, opts);
    expect(res.clipped).toBeGreaterThan(0);
    expect(res.loss).toBeCloseTo(want.loss, 5);
    expect(res.entropySum).toBeCloseTo(want.entropySum, 3);
    const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
    errors.clipEntropyKl = err;
    expect(err).toBeLessThan(1e-4);
  });

  it('tempered (T 0.7) log-probs, per-sequence weights, entropy and k3 KL', async () => {
    const engine = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const trainer = makeTrainer(engine, cfg, lora);
    const T = 0.7;
    const lp0 = qwen2CompletionLogprobs(cfg, w64, sequences, l64, T);
    const weights = [2.2, 0.5, 1, 0.15];
    const seqs = sequences.map((s, j) => ({
      ...s,
      weight: weights[j],
      refLogprobs: Float32Array.from(lp0[j], (x, t) => x - 0.2 + 0.1 * t),
    }));
    const opts = { clipEps: 0.2, entropyCoef: 0.01, klBeta: 0.1, temperature: T };
    const res = await trainer.computeGradients({ sequences: seqs, ...opts });
    const want = qwen2PolicyGradient(cfg, w64, l64, seqs, opts);
    expect(res.loss).toBeCloseTo(want.loss, 5);
    expect(res.entropySum).toBeCloseTo(want.entropySum, 3);
    res.logprobs.forEach((lp, j) => lp.forEach((x, t) => expect(x).toBeCloseTo(lp0[j][t], 4)));
    const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
    errors.temperedWeighted = err;
    expect(err).toBeLessThan(1e-4);
    // The engine's teacher-forced log-probs at the batch's temperature (the KL reference's path).
    const engineLp = await engine.logprobs({ sequences: seqs, ...opts });
    engineLp.forEach((lp, j) => lp.forEach((x, t) => expect(x).toBeCloseTo(lp0[j][t], 4)));
  });

  it('micro-batches (1 sequence each, and token-bounded) give the same gradients as one pass', async () => {
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
    const whole = await setup(64);
    await whole.computeGradients(batch);
    const g0 = await whole.lora!.downloadGrads();
    const one = await setup(64, 1);
    const r1 = await one.computeGradients(batch);
    expect(r1.microBatches).toBe(4);
    const byTokens = await setup(10);
    const r2 = await byTokens.computeGradients(batch);
    expect(r2.microBatches).toBeGreaterThan(1);
    const e1 = gradRelErr(await one.lora!.downloadGrads(), g0);
    const e2 = gradRelErr(await byTokens.lora!.downloadGrads(), g0);
    errors.microBatch = Math.max(e1, e2);
    // Only the summation order of f32 accumulations differs.
    expect(e1).toBeLessThan(1e-5);
    expect(e2).toBeLessThan(1e-5);
  });

  it('one wait per step: every micro-batch and the optimizer step are submitted before any readback', async () => {
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
    const trainer = await setup(64, 1);
    const queue = trainer.engine.ctx.device.queue;
    const submit = queue.submit.bind(queue);
    const workDone = queue.onSubmittedWorkDone.bind(queue);
    let submits = 0;
    let waits = 0;
    queue.submit = (b) => {
      submits++;
      submit(b);
    };
    queue.onSubmittedWorkDone = () => {
      waits++;
      return workDone();
    };
    try {
      const pending = trainer.step(batch);
      // Synchronously, before step() yields: zeroing, per micro-batch a forward, an LM head, its
      // row readback and a backward, then the optimizer and its readback.
      const submitted = submits;
      const stats = await pending;
      expect(submitted).toBe(submits);
      expect(submitted).toBeGreaterThanOrEqual(1 + 4 * 4 + 2);
      expect(waits).toBe(0);
      expect(stats.tokens).toBe(11);
      expect(Object.keys(stats.timeMs).sort()).toEqual(['encode', 'gpu']);
    } finally {
      queue.submit = submit;
      queue.onSubmittedWorkDone = workDone;
    }
  });

  it('kept activations and per-layer recomputation give the same gradients, bit for bit', async () => {
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0.01, klBeta: 0 };
    const grads = [];
    for (const keep of [true, false]) {
      const trainer = await setup(10, undefined, undefined, keep);
      const r = await trainer.computeGradients(batch);
      expect(r.microBatches).toBeGreaterThan(1);
      grads.push(await trainer.lora!.downloadGrads());
    }
    for (const [mod, g] of Object.entries(grads[0]))
      for (const k of ['dA', 'dB'] as const)
        expect(Array.from(grads[1][mod][k]), `${mod} ${k}`).toEqual(Array.from(g[k]));
  });

  it('split-K reductions (forced: K-slices of 4) give the reference gradients', async () => {
    const trainer = await setup(64, undefined, 4);
    const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
    await trainer.computeGradients(batch);
    const want = qwen2PolicyGradient(cfg, w64, l64, sequences, { clipEps: 0.2, entropyCoef: 0, klBeta: 0 });
    const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
    errors.splitK = err;
    expect(err).toBeLessThan(1e-4);
  });

  // f16 weights run two ways: packed words unpacked to f32 (no shader-f16) with f32 arithmetic, which
  // meets the f32 tolerance; and with shader-f16, where the forward (recomputed per layer, and shared
  // with generation so rollouts and training see the same policy) multiplies in f16. There each of the
  // ~10 projections between a LoRA parameter and the loss rounds its input to f16 and sums products in
  // short f16 runs: ≤ (F16_FOLD + 1)·2^-11 ≈ 2.4e-3 relative each in the worst case, ~2e-2 through the
  // 2 layers' chain (measured: ~6e-3). A wrong gradient is off by O(1).
  const paths: [string, NodeDeviceOptions, number][] = [
    ['packed, unpacked in the shader', { disableFeatures: ['shader-f16'] }, 1e-4],
    ['shader-f16: f16 arithmetic', {}, 2e-2],
  ];
  for (const [path, device, tol] of paths) {
    it(`f16 weights (${path}) against the reference on f16-rounded weights`, async () => {
      const ctx = await getTestContext(device);
      const engine = await engineFromRef(
        ctx,
        cfg,
        w,
        { maxBatch: 4, maxSeqLen: 16, maxTokensPerPass: 64 },
        { dtype: 'f16', kvDType: 'f32' },
      );
      expect(engine.info.arithmetic).toBe(path.startsWith('shader-f16') ? 'f16' : 'f32');
      const trainer = makeTrainer(engine, cfg, lora);
      const batch: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
      await trainer.computeGradients(batch);
      const rounded = convertWeights(
        Object.fromEntries(
          Object.entries(w).map(([k, v]) => [
            k,
            isNormOrBias(k) ? v : f16ToF32(f32ToF16(Float32Array.from(v))),
          ]),
        ),
        'f64',
      );
      const want = qwen2PolicyGradient(cfg, rounded, l64, sequences, {
        clipEps: 0.2,
        entropyCoef: 0,
        klBeta: 0,
      });
      const err = gradRelErr(await trainer.lora!.downloadGrads(), want.grads.lora);
      errors[`f16Weights ${path}`] = err;
      expect(err).toBeLessThan(tol);
    });
  }

  it('prints the gradient errors', () => {
    console.info(
      'whole-model LoRA gradient errors (max |gpu − ref| / max |ref| per tensor):',
      JSON.stringify(errors),
    );
    expect(Object.keys(errors).length).toBeGreaterThan(0);
  });
});
