// Separate proposer and solver adapters (config.separateAdapters): a role's sequences train only its
// adapter, each adapter's gradient is the reference gradient of its own sequences under the whole
// batch's token mean, generate samples with the role's adapter, and checkpoints round-trip exactly.
import { describe, expect, it } from 'vitest';
import { defaultConfig, type RunConfig } from '../../src/config.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { qwen2PolicyGradient } from '../../src/engine/reference/qwen2-backward.ts';
import {
  convertLora,
  convertWeights,
  randomRefLora,
  randomRefWeights,
} from '../../src/engine/reference/random.ts';
import type { GpuTrainer as EngineTrainer } from '../../src/engine/train.ts';
import type { TrainSequence } from '../../src/policy.ts';
import {
  checkpointAdapter,
  createEngineTrainer,
  loraFromCheckpoint,
  lorasFromCheckpoint,
} from '../../src/trainer/engine-trainer.ts';
import { separateAdapterPolicy, type AdapterRole } from '../../src/trainer/separate-adapters.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { engineFromRef, gradRelErr, makeTrainer, tinyConfig } from './train-helpers.ts';

const cfg = tinyConfig();
const w = randomRefWeights(cfg, 5, 'f32');
const loras = {
  propose: randomRefLora(cfg, 6, 4, 8, undefined, 'f32'),
  solve: randomRefLora(cfg, 7, 4, 8, undefined, 'f32'),
};
const proposeSeqs: TrainSequence[] = [
  { promptIds: [256, 72, 105, 33], completionIds: [10, 66, 67, 258, 1], advantage: 0.9, role: 'propose' },
  { promptIds: [1, 2, 3, 4, 5, 6, 7], completionIds: [8], advantage: 0.4, role: 'propose' },
];
const solveSeqs: TrainSequence[] = [
  { promptIds: [65], completionIds: [70, 71], advantage: -1.3, role: 'solve' },
  { promptIds: [100, 101], completionIds: [102, 103, 104], advantage: 0.2 }, // no role = solve
];
const opts = { clipEps: 0.2, entropyCoef: 0, klBeta: 0 };
const limits = { maxBatch: 4, maxSeqLen: 16, maxTokensPerPass: 64 };

async function setup() {
  const engine = await engineFromRef(await getTestContext(), cfg, w, limits);
  const trainers: Record<AdapterRole, EngineTrainer> = {
    propose: makeTrainer(engine, cfg, loras.propose),
    solve: makeTrainer(engine, cfg, loras.solve),
  };
  return { engine, trainers, policy: separateAdapterPolicy(engine, trainers) };
}

const params = async (t: EngineTrainer) => Object.values((await t.exportState()).tensors).map((x) => x.param);
const grads = async (t: EngineTrainer) =>
  Object.values(await t.lora!.downloadGrads()).flatMap((g) => [...g.dA, ...g.dB]);

describe('separate proposer and solver adapters', () => {
  for (const [role, other, seqs] of [
    ['propose', 'solve', proposeSeqs],
    ['solve', 'propose', solveSeqs],
  ] as const) {
    it(`a ${role}-only batch trains only the ${role} adapter`, async () => {
      const { trainers, policy } = await setup();
      const before = { [role]: await params(trainers[role]), [other]: await params(trainers[other]) };
      const stats = await policy.step({ sequences: seqs, ...opts });
      expect(stats.tokens).toBe(seqs.reduce((n, s) => n + s.completionIds.length, 0));
      expect(trainers[role].optimizer.step).toBe(1);
      expect(trainers[other].optimizer.step).toBe(0);
      expect(await params(trainers[other])).toEqual(before[other]);
      expect((await grads(trainers[other])).every((g) => g === 0)).toBe(true);
      const after = await params(trainers[role]);
      expect(after.some((p, i) => p.some((x, k) => x !== before[role][i][k]))).toBe(true);
    });
  }

  it('mixed batch: each adapter gets the reference gradient of its own sequences under the global token mean', async () => {
    const { trainers, policy } = await setup();
    const sequences = [proposeSeqs[0], solveSeqs[0], proposeSeqs[1], solveSeqs[1]];
    const totalTokens = 11;
    const stats = await policy.step({ sequences, ...opts });
    expect(stats.tokens).toBe(totalTokens);
    const w64 = convertWeights(w, 'f64');
    let loss = 0;
    const errs: Record<string, number> = {};
    for (const [role, seqs] of [
      ['propose', proposeSeqs],
      ['solve', solveSeqs],
    ] as const) {
      const want = qwen2PolicyGradient(cfg, w64, convertLora(loras[role], 'f64'), seqs, {
        ...opts,
        totalTokens,
      });
      loss += want.loss;
      errs[role] = gradRelErr(await trainers[role].lora!.downloadGrads(), want.grads.lora);
      expect(errs[role]).toBeLessThan(1e-4);
      expect(trainers[role].optimizer.step).toBe(1);
    }
    expect(stats.loss).toBeCloseTo(loss, 5);
    console.info('two-adapter gradient errors (max |gpu − ref| / max |ref|):', JSON.stringify(errs));
  });

  it('logprobs route each sequence to its role’s adapter, in batch order', async () => {
    const { engine, policy } = await setup();
    const sequences = [proposeSeqs[0], solveSeqs[0], proposeSeqs[1], solveSeqs[1]];
    const got = await policy.logprobs({ sequences, ...opts });
    const one = async (role: AdapterRole, s: TrainSequence) =>
      (await policy.logprobs({ sequences: [{ ...s, role }], ...opts }))[0];
    expect(got[0]).toEqual(await one('propose', sequences[0]));
    expect(got[1]).toEqual(await one('solve', sequences[1]));
    expect(got[0]).not.toEqual(await one('solve', sequences[0]));
    expect(engine.loraEnabled).toBe(true);
  });
});

function runConfig(overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    ...defaultConfig(),
    loraRank: 4,
    loraAlpha: 8,
    lr: 1e-2,
    warmupSteps: 0,
    separateAdapters: true,
    ...overrides,
  };
}

async function freshEngine(): Promise<Engine> {
  return engineFromRef(await getTestContext(), cfg, w, limits);
}

describe('separate adapters through createEngineTrainer', () => {
  it('generate uses the role’s adapter: after a propose-only step only proposals change', async () => {
    const trainer = await createEngineTrainer(await freshEngine(), runConfig());
    const prompts = [
      [256, 72, 105],
      [65, 66],
    ];
    const gen = (role: AdapterRole) =>
      trainer.policy.generate(prompts, { maxNew: 6, temperature: 0, seed: 1, role, stopTokens: [] });
    const p0 = await gen('propose');
    const s0 = await gen('solve');
    // Fresh adapters (B = 0) both equal the base model.
    expect(p0.map((c) => c.logprobs)).toEqual(s0.map((c) => c.logprobs));
    await trainer.policy.step({ sequences: proposeSeqs, ...opts });
    const p1 = await gen('propose');
    const s1 = await gen('solve');
    expect(s1.map((c) => [c.ids, c.logprobs])).toEqual(s0.map((c) => [c.ids, c.logprobs]));
    expect(p1.map((c) => c.logprobs)).not.toEqual(p0.map((c) => c.logprobs));
    // The default role is the solver.
    const d1 = await trainer.policy.generate(prompts, { maxNew: 6, temperature: 0, seed: 1, stopTokens: [] });
    expect(d1.map((c) => c.logprobs)).toEqual(s1.map((c) => c.logprobs));
  });

  it('checkpoint save/load round trip is bit-identical; layouts must match', async () => {
    const engine = await freshEngine();
    const trainer = await createEngineTrainer(engine, runConfig());
    await trainer.policy.step({ sequences: [...proposeSeqs, ...solveSeqs], ...opts });
    await trainer.policy.step({ sequences: proposeSeqs, ...opts });
    const saved = await trainer.trainable.save();
    expect(saved.state).toMatchObject({ separate: true, optimizerSteps: { propose: 2, solve: 1 } });
    expect(saved.tensors.every((t) => /^(propose|solve)\./.test(t.name))).toBe(true);
    expect(saved.tensors.some((t) => t.name.startsWith('propose.') && t.name.endsWith('.adam_v'))).toBe(true);
    await trainer.trainable.reset(3);
    const cleared = await trainer.trainable.save();
    expect(cleared.state).toMatchObject({ optimizerSteps: { propose: 0, solve: 0 } });
    await trainer.trainable.load(saved.tensors, saved.state);
    const again = await trainer.trainable.save();
    expect(again.state).toEqual(saved.state);
    expect(again.tensors.map((t) => t.name)).toEqual(saved.tensors.map((t) => t.name));
    again.tensors.forEach((t, i) =>
      expect(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)).toEqual(
        new Uint32Array(
          saved.tensors[i].data.buffer,
          saved.tensors[i].data.byteOffset,
          saved.tensors[i].data.length,
        ),
      ),
    );
    const both = lorasFromCheckpoint(saved.tensors, saved.state);
    expect(Object.keys(both.propose).length).toBe(Object.keys(both.solve).length);
    expect(Object.keys(both.solve).length).toBeGreaterThan(0);
    expect(() => loraFromCheckpoint(saved.tensors, saved.state)).toThrow(/separate proposer and solver/);
    // Export and eval take the solver's adapter of such a checkpoint.
    const chosen = checkpointAdapter(saved.tensors, saved.state);
    expect(chosen.name).toBe('solver adapter');
    expect(chosen.lora).toEqual(both.solve);

    const single = await createEngineTrainer(await freshEngine(), runConfig({ separateAdapters: false }));
    await expect(single.trainable.load(saved.tensors, saved.state)).rejects.toThrow(/separateAdapters off/);
    const one = await single.trainable.save();
    expect(Object.keys(loraFromCheckpoint(one.tensors, one.state)).length).toBe(
      Object.keys(both.solve).length,
    );
    expect(() => lorasFromCheckpoint(one.tensors, one.state)).toThrow();
    expect(checkpointAdapter(one.tensors, one.state)).toEqual({
      lora: loraFromCheckpoint(one.tensors, one.state),
      name: 'adapter',
    });
    await expect(trainer.trainable.load(one.tensors, one.state)).rejects.toThrow(/separateAdapters on/);
  });
});
