// Full fine-tuning: the gradient of every base weight (fused q|k|v and gate|up, biases, norms, the
// tied embedding as input table and LM head; k3 KL term on) against the reference, a step that lowers
// the negative-advantage completion's probability, the frozen GPU copy that is a run's KL reference, and
// a checkpoint resume that continues bit for bit.
import { describe, expect, it } from 'vitest';
import { readF32 } from '../../src/engine/buffers.ts';
import { resolveConfig } from '../../src/config.ts';
import { qwen2PolicyGradient } from '../../src/engine/reference/qwen2-backward.ts';
import { qwen2CompletionLogprobs } from '../../src/engine/reference/qwen2.ts';
import { convertWeights, randomRefWeights } from '../../src/engine/reference/random.ts';
import { GpuTrainer } from '../../src/engine/train.ts';
import type { TrainBatch } from '../../src/policy.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { engineFromRef, tinyConfig } from './train-helpers.ts';

const cfg = tinyConfig();
const w = randomRefWeights(cfg, 21, 'f32');
const sequences = [
  { promptIds: [256, 72, 105, 33], completionIds: [10, 66, 67, 258], advantage: 0.9 },
  { promptIds: [65], completionIds: [70, 71], advantage: -1.3 },
  { promptIds: [1, 2, 3, 4, 5], completionIds: [8], advantage: 0.4 },
];
const opt = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1, warmupSteps: 0 };

function concat(...parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(Array.from(p), o);
    o += p.length;
  }
  return out;
}

describe('full fine-tuning on the GPU', () => {
  it('every base weight gradient matches the reference (k3 KL term on)', async () => {
    const engine = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const trainer = new GpuTrainer(engine, null, opt);
    const base = qwen2CompletionLogprobs(cfg, convertWeights(w, 'f64'), sequences);
    const withRef = sequences.map((s, j) => ({
      ...s,
      refLogprobs: Float32Array.from(base[j], (x, t) => x - 0.2 + 0.1 * t),
    }));
    const batch: TrainBatch = { sequences: withRef, clipEps: 0.2, entropyCoef: 0.01, klBeta: 0.1 };
    await trainer.computeGradients(batch);
    const want = qwen2PolicyGradient(cfg, convertWeights(w, 'f64'), null, withRef, {
      clipEps: 0.2,
      entropyCoef: 0.01,
      klBeta: 0.1,
      weightGrads: true,
    }).grads.weights!;
    const expected = new Map<string, Float64Array>();
    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`;
      const g = (n: string) => want[p + n];
      expected.set(`${l}.inputNorm`, concat(g('input_layernorm.weight')));
      expected.set(`${l}.postNorm`, concat(g('post_attention_layernorm.weight')));
      expected.set(
        `${l}.qkv`,
        concat(g('self_attn.q_proj.weight'), g('self_attn.k_proj.weight'), g('self_attn.v_proj.weight')),
      );
      expected.set(
        `${l}.qkvBias`,
        concat(g('self_attn.q_proj.bias'), g('self_attn.k_proj.bias'), g('self_attn.v_proj.bias')),
      );
      expected.set(`${l}.o`, concat(g('self_attn.o_proj.weight')));
      expected.set(`${l}.gateUp`, concat(g('mlp.gate_proj.weight'), g('mlp.up_proj.weight')));
      expected.set(`${l}.down`, concat(g('mlp.down_proj.weight')));
    }
    expected.set('finalNorm', concat(want['model.norm.weight']));
    expected.set('embed0', concat(want['model.embed_tokens.weight']));
    const errors: Record<string, number> = {};
    for (const t of trainer.trainables) {
      const ref = expected.get(t.name)!;
      expect(ref, t.name).toBeDefined();
      const got = await readF32(engine.ctx.device, t.grad, t.n);
      let m = 0;
      let s = 0;
      for (let i = 0; i < t.n; i++) {
        m = Math.max(m, Math.abs(got[i] - ref[i]));
        s = Math.max(s, Math.abs(ref[i]));
      }
      errors[t.name] = m / s;
      expect(m / s, t.name).toBeLessThan(1e-4);
    }
    console.info('full fine-tuning gradient errors (max |gpu − ref| / max |ref|):', JSON.stringify(errors));
    // Per-layer recomputation instead of the kept activations: the same gradients, bit for bit.
    const engine2 = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const recompute = new GpuTrainer(engine2, null, { ...opt, keepActivations: false });
    await recompute.computeGradients(batch);
    for (const [i, t] of trainer.trainables.entries()) {
      const t2 = recompute.trainables[i];
      expect(t2.name).toBe(t.name);
      const a = await readF32(engine.ctx.device, t.grad, t.n);
      const b = await readF32(engine2.ctx.device, t2.grad, t2.n);
      expect(Array.from(b), t.name).toEqual(Array.from(a));
    }
  });

  it('a step with a negative advantage lowers the completion logprob', async () => {
    const engine = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const trainer = new GpuTrainer(engine, null, opt);
    const batch: TrainBatch = {
      sequences: [{ ...sequences[0], advantage: -1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    };
    const before = (await trainer.step(batch)).logprobs[0].reduce((a, b) => a + b, 0);
    const after = (await engine.logprobs(batch))[0].reduce((a, b) => a + b, 0);
    expect(after).toBeLessThan(before - 0.1);
  });

  it("a run's KL reference is a frozen GPU copy of the base weights; dispose puts the base back", async () => {
    const engine = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const trainer = await createEngineTrainer(engine, resolveConfig('azr-parity', { klBeta: 0.1, lr: 1e-2 }));
    const ref = trainer.referencePolicy!;
    const seq = sequences[0];
    const batch: TrainBatch = { sequences: [seq], clipEps: 0.2, entropyCoef: 0, klBeta: 0.1 };
    const ref0 = (await ref.logprobs(batch))[0];
    const want = qwen2CompletionLogprobs(cfg, convertWeights(w, 'f64'), [seq])[0];
    ref0.forEach((x, t) => expect(x).toBeCloseTo(want[t], 4)); // f32 kernels vs the f64 reference
    // Before any update the policy is the reference: the KL (advantage 0, KL only) is exactly 0.
    const klOnly = { ...batch, sequences: [{ ...seq, advantage: 0, refLogprobs: ref0 }] };
    expect(await trainer.policy.step(klOnly)).toMatchObject({ loss: 0, kl: 0 });
    for (let k = 0; k < 2; k++)
      await trainer.policy.step({ ...batch, sequences: [{ ...seq, refLogprobs: ref0 }] });
    const ref1 = (await ref.logprobs(batch))[0];
    expect(Array.from(ref1)).toEqual(Array.from(ref0)); // the copy did not move with the trained weights
    const moved = (await trainer.policy.logprobs(batch))[0];
    expect(moved.reduce((a, b) => a + b, 0)).toBeGreaterThan(ref0.reduce((a, b) => a + b, 0) + 0.1);
    const after = await trainer.policy.step(klOnly);
    expect(after.kl).toBeGreaterThan(0);
    expect(after.loss).toBeCloseTo(0.1 * after.kl!, 6); // advantage 0: the loss is β · mean k3
    trainer.dispose();
    expect(Array.from((await engine.logprobs(batch))[0])).toEqual(Array.from(ref0));
  });

  it('a resumed full fine-tuning trainer continues bit for bit', async () => {
    const engine = await engineFromRef(await getTestContext(), cfg, w, {
      maxBatch: 4,
      maxSeqLen: 16,
      maxTokensPerPass: 64,
    });
    const config = resolveConfig('azr-parity', { lr: 1e-2 });
    const step = (k: number): TrainBatch => ({
      sequences: [{ ...sequences[k % 3], advantage: k % 2 ? -0.5 : 1 }],
      clipEps: 0.2,
      entropyCoef: 0.001,
      klBeta: 0,
    });
    const probe: TrainBatch = { sequences, clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
    const first = await createEngineTrainer(engine, config);
    await first.policy.step(step(0));
    const saved = await first.trainable.save();
    await first.policy.step(step(1));
    await first.policy.step(step(2));
    const straight = await engine.logprobs(probe);
    first.dispose();
    // A new run trainer on the same engine (the base weights back), resumed from the checkpoint.
    const resumed = await createEngineTrainer(engine, config);
    await resumed.trainable.load(saved.tensors, saved.state);
    await resumed.policy.step(step(1));
    await resumed.policy.step(step(2));
    const again = await engine.logprobs(probe);
    straight.forEach((lp, j) => expect(Array.from(again[j])).toEqual(Array.from(lp)));
    resumed.dispose();
  });
});
