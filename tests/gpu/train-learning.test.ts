// Learning end to end on a tiny model (hidden 32, 2 layers, byte-sized vocabulary, LoRA r 8 on all
// seven projections, starting from B = 0 as PEFT does): a positive advantage on one fixed completion
// raises its log-probability at every step and makes it the greedy generation within MAX_STEPS steps;
// a negative advantage drives it down. The loss value is constant with ratio 1 (spec section 7), so
// learning is judged by log-probabilities, read from each step's own forward pass.
import { describe, expect, it } from 'vitest';
import { initLora } from '../../src/model/lora.ts';
import { qwen2CompletionLogprobs } from '../../src/engine/reference/qwen2.ts';
import type { LoraDecode } from '../../src/engine/qwen2-forward.ts';
import { convertWeights, randomRefWeights } from '../../src/engine/reference/random.ts';
import type { TrainBatch } from '../../src/policy.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { trainablePolicy } from '../../src/engine/train.ts';
import { resolveConfig } from '../../src/config.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { engineFromRef, makeTrainer, tinyConfig } from './train-helpers.ts';

/** Steps within which the target must become the greedy completion (lr 1e-2: 4 on lavapipe; 2× margin). */
const MAX_STEPS = 8;
const prompt = [256, 10, 72, 105];
const target = [50, 51, 52, 53, 54, 55];

async function setup(loraDecode: LoraDecode = 'separate') {
  const cfg = tinyConfig();
  const engine = await engineFromRef(await getTestContext(), cfg, randomRefWeights(cfg, 11, 'f32'), {
    maxBatch: 2,
    maxSeqLen: 16,
    maxTokensPerPass: 32,
    loraDecode,
  });
  const lora = initLora(
    cfg,
    {
      rank: 8,
      alpha: 16,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    },
    3,
  );
  return { engine, trainer: makeTrainer(engine, cfg, lora, { lr: 1e-2 }) };
}

const greedy = async (engine: Awaited<ReturnType<typeof setup>>['engine']) =>
  (await engine.generate([prompt], { maxNew: target.length, temperature: 0, seed: 0, stopTokens: [] }))[0]
    .ids;

const sum = (a: Float32Array) => a.reduce((s, x) => s + x, 0);

describe('learning end to end (GPU step, tiny model)', () => {
  it(`a positive advantage raises the completion's logprob every step and makes it greedy within ${MAX_STEPS} steps`, async () => {
    const { engine, trainer } = await setup();
    expect(await greedy(engine)).not.toEqual(target);
    const batch: TrainBatch = {
      sequences: [{ promptIds: prompt, completionIds: target, advantage: 1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    };
    let prev = -Infinity;
    let greedyAt = -1;
    const trace: number[] = [];
    for (let step = 1; step <= MAX_STEPS && greedyAt < 0; step++) {
      const stats = await trainer.step(batch);
      const lp = sum(stats.logprobs[0]); // before this step's update
      trace.push(lp);
      expect(lp, `step ${step}`).toBeGreaterThan(prev);
      expect(stats.loss).toBeCloseTo(-1, 6); // ratio 1: constant −mean A
      expect(stats.tokens).toBe(target.length);
      prev = lp;
      if (JSON.stringify(await greedy(engine)) === JSON.stringify(target)) greedyAt = step;
    }
    const after = sum((await engine.logprobs(batch))[0]);
    expect(after).toBeGreaterThan(prev);
    console.info(
      `positive advantage: greedy after ${greedyAt} steps; logprob trace ${trace.map((x) => x.toFixed(2)).join(' ')} → ${after.toFixed(2)}`,
    );
    expect(greedyAt).toBeGreaterThan(0);
  });

  it('a negative advantage drives the completion probability down every step', async () => {
    const { engine, trainer } = await setup();
    const batch: TrainBatch = {
      sequences: [{ promptIds: prompt, completionIds: target, advantage: -1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    };
    let prev = Infinity;
    const trace: number[] = [];
    for (let step = 1; step <= 6; step++) {
      const lp = sum((await trainer.step(batch)).logprobs[0]);
      trace.push(lp);
      expect(lp, `step ${step}`).toBeLessThan(prev);
      prev = lp;
    }
    const after = sum((await engine.logprobs(batch))[0]);
    expect(after).toBeLessThan(prev);
    expect(after).toBeLessThan(trace[0] - 1);
    console.info(
      `negative advantage: logprob trace ${trace.map((x) => x.toFixed(2)).join(' ')} → ${after.toFixed(2)}`,
    );
  });
});

describe('trainer state (checkpoint / resume)', () => {
  it('a resumed trainer takes the same next step as one that never stopped', async () => {
    const a = await setup();
    const batch: TrainBatch = {
      sequences: [{ promptIds: prompt, completionIds: target, advantage: 1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    };
    await a.trainer.step(batch);
    await a.trainer.step(batch);
    const state = await a.trainer.exportState();
    expect(state.step).toBe(2);
    const b = await setup();
    b.trainer.importState(state);
    await a.trainer.step(batch);
    await b.trainer.step(batch);
    const sa = await a.trainer.exportState();
    const sb = await b.trainer.exportState();
    for (const [name, t] of Object.entries(sa.tensors)) {
      expect(Array.from(sb.tensors[name].param), name).toEqual(Array.from(t.param));
      expect(Array.from(sb.tensors[name].v), name).toEqual(Array.from(t.v));
    }
  });
});

describe('trainablePolicy (Policy = engine generation + trainer step)', () => {
  it('step returns the StepStats fields with encode and GPU times; generation sees the new weights', async () => {
    const { engine, trainer } = await setup();
    const policy = trainablePolicy(engine, trainer);
    const batch: TrainBatch = {
      sequences: [{ promptIds: prompt, completionIds: target, advantage: 1 }],
      clipEps: 0.2,
      entropyCoef: 0.001,
      klBeta: 0,
    };
    const before = sum((await policy.logprobs(batch))[0]);
    const stats = await policy.step(batch);
    expect(Object.keys(stats).sort()).toEqual([
      'clipFactor',
      'entropy',
      'gradNorm',
      'loss',
      'meanLogprob',
      'timeMs',
      'tokens',
    ]);
    expect(stats.tokens).toBe(target.length);
    // meanLogprob is the pre-update mean logπ of the trained tokens (the imitation loss is its negative).
    expect(stats.meanLogprob).toBeCloseTo(before / target.length, 4);
    expect(stats.gradNorm).toBeGreaterThan(0);
    expect(stats.clipFactor).toBeGreaterThan(0);
    expect(stats.clipFactor).toBeLessThanOrEqual(1);
    expect(stats.entropy).toBeGreaterThan(0);
    // One wait per step: host time to encode and submit, then the GPU's (per-kernel times: bench --train).
    expect(Object.keys(stats.timeMs).sort()).toEqual(['encode', 'gpu']);
    expect(stats.timeMs.encode).toBeGreaterThan(0);
    expect(sum((await policy.logprobs(batch))[0])).toBeGreaterThan(before);
  });

  it('after a step, decoding reads the updated adapter (its packed copies are refreshed)', async () => {
    const { engine, trainer } = await setup('fused');
    const policy = trainablePolicy(engine, trainer);
    // Decode reads packed copies of the adapter (lora-fused.ts); teacher-forced log-probs read the
    // per-module buffers AdamW updates in place. They agree only if the copies follow each step.
    const decodeVsTeacherForced = async () => {
      const [c] = await engine.generate([prompt], { maxNew: 4, temperature: 0, seed: 0, stopTokens: [] });
      const [tf] = await engine.completionLogprobs([{ promptIds: prompt, completionIds: c.ids }]);
      return { c, err: Math.max(...c.logprobs.map((lp, j) => Math.abs(lp - tf[j]))) };
    };
    const before = await decodeVsTeacherForced();
    expect(before.err).toBeLessThan(1e-4);
    await policy.step({
      sequences: [{ promptIds: prompt, completionIds: target, advantage: 1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    });
    const after = await decodeVsTeacherForced();
    expect(after.err).toBeLessThan(1e-4);
    // The step moved those log-probs far beyond that tolerance, so stale copies would have failed.
    const [moved] = await engine.completionLogprobs([{ promptIds: prompt, completionIds: before.c.ids }]);
    const shift = Math.max(...moved.map((lp, j) => Math.abs(lp - before.c.logprobs[j])));
    console.log(
      `decode after a step: max |decode − teacher-forced| ${after.err.toExponential(2)}, step moved ${shift.toExponential(2)}`,
    );
    expect(shift).toBeGreaterThan(1e-3);
  });
});

describe('adapter switch (GRPO reference policy for the k3 KL)', () => {
  it('with the adapter disabled, logprobs are the base model’s even after training; enabled, they moved', async () => {
    const { engine, trainer } = await setup();
    const batch: TrainBatch = {
      sequences: [{ promptIds: prompt, completionIds: target, advantage: 1 }],
      clipEps: 0.2,
      entropyCoef: 0,
      klBeta: 0,
    };
    const base = (await engine.logprobs(batch))[0];
    await trainer.step(batch);
    await trainer.step(batch);
    engine.loraEnabled = false;
    const ref = (await engine.logprobs(batch))[0];
    engine.loraEnabled = true;
    const cfg = tinyConfig();
    const want = qwen2CompletionLogprobs(
      cfg,
      convertWeights(randomRefWeights(cfg, 11, 'f32'), 'f64'),
      batch.sequences,
    )[0];
    ref.forEach((x, t) => expect(x).toBeCloseTo(want[t], 4));
    base.forEach((x, t) => expect(x).toBeCloseTo(want[t], 4)); // B = 0 at init: adapter starts as the identity
    expect(sum((await engine.logprobs(batch))[0])).toBeGreaterThan(sum(ref) + 1);
    // A KL step against the disabled-adapter reference runs and reports the KL-bearing loss.
    const kl = await trainer.step({
      ...batch,
      klBeta: 0.1,
      sequences: [{ ...batch.sequences[0], refLogprobs: ref }],
    });
    expect(kl.loss).toBeGreaterThan(-1);
  });

  it("a run trainer's reference policy is the base model before and after updates, and leaves the adapter on", async () => {
    const { engine } = await setup();
    const trainer = await createEngineTrainer(engine, resolveConfig('journal-grpo', { lr: 1e-2 }));
    const cfg = tinyConfig();
    const seq = { promptIds: prompt, completionIds: target, advantage: 1 };
    const batch: TrainBatch = { sequences: [seq], clipEps: 0.2, entropyCoef: 0, klBeta: 0.1 };
    const ref0 = (await trainer.referencePolicy!.logprobs(batch))[0];
    const want = qwen2CompletionLogprobs(
      cfg,
      convertWeights(randomRefWeights(cfg, 11, 'f32'), 'f64'),
      batch.sequences,
    )[0];
    ref0.forEach((x, t) => expect(x).toBeCloseTo(want[t], 4)); // f32 kernels vs the f64 reference
    for (let k = 0; k < 2; k++)
      await trainer.policy.step({ ...batch, sequences: [{ ...seq, refLogprobs: ref0 }] });
    expect(engine.loraEnabled).toBe(true);
    const ref1 = (await trainer.referencePolicy!.logprobs(batch))[0];
    expect(Array.from(ref1)).toEqual(Array.from(ref0)); // same base weights, same kernels: the same bits
    expect(sum((await trainer.policy.logprobs(batch))[0])).toBeGreaterThan(sum(ref1) + 0.1);
    trainer.dispose();
  });
});
