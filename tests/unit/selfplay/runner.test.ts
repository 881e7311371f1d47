// The Runner against a scripted policy: batch composition of one step, determinism, resumable state,
// seeding guards and the GRPO step.
import { describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../../../src/config.ts';
import { THINK_PREFILL } from '../../../src/selfplay/format.ts';
import type { RunnerProgress } from '../../../src/selfplay/types.ts';
import { Runner } from '../../../src/selfplay/runner.ts';
import { SeedingError } from '../../../src/selfplay/seeding.ts';
import { InlineVerifier } from '../../../src/selfplay/verifier.ts';
import { arithmeticScript, ChatMLTestTokenizer, ScriptedPolicy, type Script } from './helpers.ts';

const tokenizer = new ChatMLTestTokenizer();

function makeRunner(config: RunConfig, script: Script = arithmeticScript()) {
  const policy = new ScriptedPolicy(tokenizer, script);
  const verifier = new InlineVerifier(config);
  const progress: RunnerProgress[] = [];
  const runner = new Runner({
    policy,
    referencePolicy: policy,
    tokenizer,
    verifier,
    config,
    onProgress: (p) => progress.push(p),
  });
  return { runner, policy, progress };
}

/** A step's results without wall-clock timings (which legitimately differ between runs). */
const timeless = (x: unknown) => JSON.stringify(x, (k, v) => (k === 'timeMs' ? undefined : v));

const small = (o: Partial<RunConfig> = {}) =>
  resolveConfig('browser', {
    batchPerGroup: 4,
    nEst: 3,
    refs: 2,
    inductionInputs: 4,
    seedFactor: 2,
    seed: 7,
    ...o,
  });

describe('Runner: one AZR step', () => {
  it('trains on exactly the 6B proposer/solver sequences, never on estimation rollouts', async () => {
    const config = small();
    const { runner, policy, progress } = makeRunner(config);
    const seed = await runner.seed();
    expect(seed.seedSize).toBe(8);
    expect(runner.buffers.ded.size).toBe(8);
    expect(runner.buffers.ind.size).toBe(8);
    const callsBefore = policy.generateCalls.length;
    const result = await runner.runStep();
    const B = config.batchPerGroup;

    // Two generate calls: 3B proposals, then estimation rollouts + 3B solver prompts.
    const calls = policy.generateCalls.slice(callsBefore);
    expect(calls).toHaveLength(2);
    expect(calls[0].prompts).toHaveLength(3 * B);
    const estimated = result.generations.filter((g) => g.kind === 'estimate');
    expect(calls[1].prompts).toHaveLength(estimated.length + 3 * B);
    expect(estimated.length).toBe(
      config.nEst * result.generations.filter((g) => g.kind === 'propose' && g.valid && g.fmt).length,
    );
    expect(estimated.length).toBeGreaterThan(0);
    for (const c of calls)
      expect(c.opts).toMatchObject({ n: 1, temperature: 1, topP: 1, stopStrings: ['</answer>'] });
    expect(calls[0].opts.maxNew).toBe(config.maxProposerTokens);
    expect(calls[1].opts.maxNew).toBe(config.maxSolverTokens);

    // One policy.step with 6B sequences: 3B proposer, 3B solver.
    expect(policy.stepBatches).toHaveLength(1);
    const batch = policy.stepBatches[0];
    expect(batch.sequences).toHaveLength(6 * B);
    expect(batch.sequences.filter((s) => s.role === 'propose')).toHaveLength(3 * B);
    expect(batch.sequences.filter((s) => s.role === 'solve')).toHaveLength(3 * B);
    expect(batch).toMatchObject({ clipEps: 0.2, entropyCoef: 0.001, klBeta: 0, temperature: 1 });

    // Prompts end with the <think> prefill; completions are the generated tokens only.
    const prefill = tokenizer.encode(THINK_PREFILL);
    const estimationTexts = new Set(estimated.map((g) => g.prompt));
    for (const s of batch.sequences) {
      expect(s.promptIds.slice(-prefill.length)).toEqual(prefill);
      expect(tokenizer.decode(s.completionIds).startsWith(THINK_PREFILL)).toBe(false);
    }
    const trainedTexts = batch.sequences.map(
      (s) => tokenizer.decode(s.promptIds) + '|' + tokenizer.decode(s.completionIds),
    );
    const estimationPairs = estimated.map((g) => g.prompt + '|' + g.response);
    // A solver prompt may coincide with an estimation prompt; the (prompt, completion) pair is what counts.
    const trainedRecords = result.generations.filter((g) => g.trained);
    expect(trainedRecords).toHaveLength(6 * B);
    expect(result.generations.filter((g) => !g.trained).every((g) => g.kind === 'estimate')).toBe(true);
    for (const pair of estimationPairs) {
      const inTrained = trainedTexts.filter((t) => t === pair).length;
      const inSolverRecords = trainedRecords.filter((g) => g.prompt + '|' + g.response === pair).length;
      expect(inTrained).toBe(inSolverRecords);
    }
    expect(estimationTexts.size).toBeGreaterThan(0);

    // Advantages: TRR++ per (type, role) group — zero mean per group, all zero for constant groups.
    for (const type of ['abd', 'ded', 'ind'] as const) {
      for (const role of ['propose', 'solve'] as const) {
        const g = result.generations.filter((x) => x.trained && x.type === type && x.role === role);
        expect(g).toHaveLength(B);
        const sum = g.reduce((a, x) => a + x.advantage!, 0);
        expect(Math.abs(sum)).toBeLessThan(1e-9);
        const m = result.metrics.groups[`${type}:${role}`]!;
        if (m.zeroVariance) expect(g.every((x) => x.advantage === 0)).toBe(true);
      }
    }
    // Advantages of the batch are those of the records, in the same order.
    expect(batch.sequences.map((s) => s.advantage)).toEqual(trainedRecords.map((g) => g.advantage));

    // Progress phases in order, metrics filled.
    const phases = progress.filter((p) => p.step === 1).map((p) => p.phase);
    expect(phases).toEqual(['proposing', 'validating', 'estimating', 'solving', 'updating']);
    expect(result.metrics.trainedSequences).toBe(6 * B);
    expect(result.metrics.estimationRollouts).toBe(estimated.length);
    expect(result.metrics.generatedSequences).toBe(6 * B + estimated.length);
    expect(result.metrics.validProposals).toBeGreaterThan(0);
    expect(runner.buffers.ded.size + runner.buffers.abd.size + runner.buffers.ind.size).toBe(
      24 + result.metrics.insertedProposals,
    );
  });

  it('keeps proposer rewards in the spec set and solver rewards in {1, −0.5, −1}', async () => {
    const { runner } = makeRunner(small({ extremeReward: 0 }));
    const r = await runner.runStep();
    for (const g of r.generations.filter((x) => x.kind === 'solve'))
      expect([1, -0.5, -1]).toContain(g.reward);
    for (const g of r.generations.filter((x) => x.kind === 'propose')) {
      if (!g.valid || !g.fmt) expect(g.reward).toBe(-1);
      else if (g.learnability! > 0 && g.learnability! < 1)
        expect(g.reward).toBeCloseTo(1 - g.learnability!, 12);
      else expect(g.reward).toBe(0);
    }
  });

  it('baselines = 1 normalises all 6B sequences together', async () => {
    const { runner, policy } = makeRunner(small({ baselines: 1 }));
    await runner.runStep();
    const adv = policy.stepBatches[0].sequences.map((s) => s.advantage);
    expect(Math.abs(adv.reduce((a, b) => a + b, 0))).toBeLessThan(1e-9);
  });
});

describe('Runner: determinism and resumable state', () => {
  it('same seed, config and policy give the same run', async () => {
    const a = makeRunner(small());
    const b = makeRunner(small());
    const ra = [await a.runner.runStep(), await a.runner.runStep()];
    const rb = [await b.runner.runStep(), await b.runner.runStep()];
    expect(timeless(ra) === timeless(rb)).toBe(true);
    const c = makeRunner(small({ seed: 8 }));
    await c.runner.runStep();
    expect(timeless((await c.runner.runStep()).generations) === timeless(ra[1].generations)).toBe(false);
  });

  it('state round-trips through JSON and the resumed run continues identically', async () => {
    const a = makeRunner(small());
    await a.runner.runStep();
    const saved = JSON.parse(JSON.stringify(a.runner.getState()));
    const next = await a.runner.runStep();
    const b = makeRunner(small());
    const resumed = Runner.fromState({ ...b.runner.deps }, saved);
    expect(resumed.step).toBe(1);
    const again = await resumed.runStep();
    expect(timeless(again) === timeless(next)).toBe(true);
    expect(timeless(resumed.getState()) === timeless(a.runner.getState())).toBe(true);
  });
});

describe('Runner: seeding (spec 4.8, 6.8)', () => {
  const garbage: Script = () => 'The answer is probably a function.';

  it('aborts with a clear message after maxSeedRounds when the seed set is smaller than B', async () => {
    const { runner, policy } = makeRunner(small({ maxSeedRounds: 3 }), garbage);
    const err = await runner.seed().catch((e) => e);
    expect(err).toBeInstanceOf(SeedingError);
    expect(err.message).toMatch(/only 1 of 8 tasks after maxSeedRounds = 3/);
    expect(err.message).toMatch(/valid rate 0\.0% of 12 proposals/);
    expect(err.message).toMatch(/seedFallback='templates'/);
    expect(policy.generateCalls).toHaveLength(3);
  });

  it("fills from templates with seedFallback='templates' and labels the run not zero-data", async () => {
    const { runner } = makeRunner(small({ maxSeedRounds: 1, seedFallback: 'templates' }), garbage);
    const seed = await runner.seed();
    expect(seed.usedTemplates).toBe(true);
    expect(runner.notZeroData).toBe(true);
    for (const type of ['ded', 'abd', 'ind'] as const) expect(runner.buffers[type].size).toBe(8);
    expect(runner.buffers.ded.entries.filter((e) => e.origin === 'template').length).toBe(7);
    expect(runner.buffers.ded.entries[0]).toMatchObject({
      program: 'f(x) = x',
      inputs: [[7]],
      origin: 'identity_seed',
    });
    const step = await runner.runStep();
    expect(step.metrics.notZeroData).toBe(true);
  });

  it('goes on with at least B tasks when B·S is not reached', async () => {
    let calls = 0;
    const few: Script = (prompt, ctx) => (calls++ < 3 ? arithmeticScript(1)(prompt, ctx) : 'nothing');
    const { runner } = makeRunner(small({ maxSeedRounds: 1, batchPerGroup: 2, seedFactor: 4 }), few);
    const seed = await runner.seed();
    expect(seed.seedSize).toBeGreaterThanOrEqual(2);
    expect(seed.seedSize).toBeLessThan(8);
    expect(seed.log.join('\n')).toMatch(/going on with/);
  });
});

describe('Runner: GRPO baseline mode', () => {
  it('samples G completions per prompt, group-normalises, one policy.step', async () => {
    const config = resolveConfig('journal-grpo', {
      grpoPromptsPerStep: 3,
      grpoGroupSize: 4,
      grpoTrainSize: 200,
    });
    const { runner, policy } = makeRunner(config);
    const r = await runner.runStep();
    expect(policy.generateCalls).toHaveLength(1);
    expect(policy.generateCalls[0].opts).toMatchObject({
      n: 4,
      temperature: 0.7,
      maxNew: 16,
      stopStrings: [],
    });
    expect(policy.generateCalls[0].prompts.every((p) => p.startsWith('Calculate: '))).toBe(true);
    const seqs = policy.stepBatches[0].sequences;
    expect(seqs).toHaveLength(12);
    expect(policy.stepBatches[0].klBeta).toBe(0.1);
    expect(seqs.every((s) => s.refLogprobs?.length === s.completionIds.length)).toBe(true);
    for (let g = 0; g < 12; g += 4) {
      const adv = seqs.slice(g, g + 4).map((s) => s.advantage);
      expect(Math.abs(adv.reduce((a, b) => a + b, 0))).toBeLessThan(1e-9);
    }
    expect(r.metrics.mode).toBe('grpo');
    expect(r.generations.every((g) => g.reward === 0 || g.reward === 1)).toBe(true);
  });
});

describe('Runner: the KL reference', () => {
  it('refuses klBeta > 0 without a reference policy, in words that say what to change', () => {
    const config = resolveConfig('journal-grpo');
    const policy = new ScriptedPolicy(tokenizer, arithmeticScript());
    expect(() => new Runner({ policy, tokenizer, verifier: new InlineVerifier(config), config })).toThrow(
      /klBeta = 0.1 needs a frozen reference policy .*set klBeta = 0/,
    );
  });

  it('an AZR step with klBeta > 0 sends reference log-probs with every trained sequence', async () => {
    const { runner, policy } = makeRunner(small({ klBeta: 0.05 }));
    await runner.seed();
    await runner.runStep();
    const { sequences, klBeta } = policy.stepBatches[0];
    expect(klBeta).toBe(0.05);
    expect(sequences.length).toBeGreaterThan(0);
    expect(sequences.every((s) => s.refLogprobs?.length === s.completionIds.length)).toBe(true);
  });
});

describe('Runner: seed sets', () => {
  it('exports the seed set and imports it into a fresh run (not zero-data unless it was)', async () => {
    const a = makeRunner(small({ maxSeedRounds: 1, seedFallback: 'templates' }));
    await a.runner.seed();
    const seed = JSON.parse(JSON.stringify(a.runner.exportSeedSet()));
    expect(seed.ded).toHaveLength(8);
    const b = makeRunner(small());
    b.runner.importSeedSet(seed, { fromZeroDataRun: true });
    expect(b.runner.notZeroData).toBe(a.runner.notZeroData);
    expect(b.runner.buffers.ind.entries.map((e) => e.program)).toEqual(
      a.runner.buffers.ind.entries.map((e) => e.program),
    );
    await b.runner.runStep();
    expect(b.policy.generateCalls).toHaveLength(2); // no seeding rounds
    const c = makeRunner(small());
    const modelOnly = {
      ded: seed.ded.filter((e: { origin: string }) => e.origin !== 'template'),
      abd: seed.abd.filter((e: { origin: string }) => e.origin !== 'template'),
      ind: seed.ind.filter((e: { origin: string }) => e.origin !== 'template'),
    };
    c.runner.importSeedSet(modelOnly, { fromZeroDataRun: false });
    expect(c.runner.notZeroData).toBe(true);
  });
});

describe('Runner: smoke preset on an untrained model', () => {
  it('seeds from templates, trains on all-(−1) proposer groups with zero advantages, and evaluates', async () => {
    const config = resolveConfig('smoke');
    const babble: Script = (_p, { rng }) => 'zq'.repeat(rng.int(1, 30));
    const { runner, policy } = makeRunner(config, babble);
    const first = await runner.runStep();
    expect(first.seed?.usedTemplates).toBe(true);
    expect(first.seed?.rounds).toEqual({ triplet: 1, induction: 1 });
    const second = await runner.runStep();
    for (const r of [first, second]) {
      expect(r.metrics.notZeroData).toBe(true);
      expect(r.metrics.trainedSequences).toBe(12);
      expect(r.metrics.estimationRollouts).toBe(0);
      for (const type of ['abd', 'ded', 'ind'] as const) {
        expect(r.metrics.groups[`${type}:propose`]).toMatchObject({
          meanReward: -1,
          validRate: 0,
          zeroVariance: true,
        });
      }
    }
    for (const call of policy.generateCalls) expect(call.opts.maxNew).toBe(24);
    expect(policy.stepBatches.flatMap((b) => b.sequences).every((s) => s.completionIds.length <= 24)).toBe(
      true,
    );
    expect(policy.stepBatches.every((b) => b.entropyCoef === 0)).toBe(true);
    const { evaluateConfigured } = await import('../../../src/selfplay/evaluate.ts');
    const reports = await evaluateConfigured(policy, tokenizer, config);
    expect(reports.map((r) => [r.set, r.mode, r.n])).toEqual([['arith_eval_200', 'raw', 20]]);
    expect(policy.generateCalls.at(-1)!.opts).toMatchObject({ maxNew: 8, temperature: 0 });
  });

  it('counts eval expressions that appear as deduction tasks', async () => {
    const config = small();
    const { runner } = makeRunner(config);
    await runner.seed();
    const entry = runner.buffers.ded.entries[0];
    runner.buffers.ded.insert({
      ...entry,
      id: 'x',
      program: 'f(x) = x + 56',
      inputs: [[70]],
      closed: ['70 + 56'],
      seed: false,
    });
    const r = await runner.runStep();
    expect(r.metrics.evalContamination).toBeGreaterThanOrEqual(1);
  });
});

describe('Runner: options', () => {
  it("solverOrder='same_step' solves this step's valid proposals first", async () => {
    const { runner } = makeRunner(small({ solverOrder: 'same_step' }));
    const r = await runner.runStep();
    const proposed = new Set(
      r.generations.filter((g) => g.kind === 'estimate').map((g) => g.taskId), // ids of this step's valid proposals
    );
    const solvedNow = r.generations.filter((g) => g.kind === 'solve' && proposed.has(g.taskId));
    expect(proposed.size).toBeGreaterThan(0);
    expect(solvedNow.length).toBeGreaterThanOrEqual(Math.min(proposed.size, 3));
  });

  it("lossAggregation='sequence_mean' weights each self-play sequence Σ L / (n · L_i); the rest of the step is unchanged", async () => {
    const token = makeRunner(small());
    const seq = makeRunner(small({ lossAggregation: 'sequence_mean' }));
    await token.runner.runStep();
    await seq.runner.runStep();
    const a = token.policy.stepBatches[0].sequences;
    const b = seq.policy.stepBatches[0].sequences;
    expect(b.length).toBeGreaterThan(0);
    expect(new Set(b.map((s) => s.completionIds.length)).size).toBeGreaterThan(1); // lengths differ
    const total = b.reduce((s, x) => s + x.completionIds.length, 0);
    expect(a.every((s) => s.weight === undefined)).toBe(true);
    b.forEach((s, k) => {
      expect(s.advantage).toBe(a[k].advantage);
      expect(s.completionIds).toEqual(a[k].completionIds);
      expect(((s.weight ?? NaN) * s.completionIds.length) / total).toBeCloseTo(1 / b.length, 12);
    });
    expect(() => resolveConfig('journal-grpo', { lossAggregation: 'sequence_mean' })).toThrow(/grpoLossType/);
  });

  it("grpoLossType='grpo' weights each sequence Σ L / (n · L_i), the advantages unchanged", async () => {
    const base = { grpoPromptsPerStep: 2, grpoGroupSize: 4, grpoTrainSize: 100, klBeta: 0 };
    const dapo = makeRunner(resolveConfig('journal-grpo', { ...base, grpoLossType: 'dapo' }));
    const grpo = makeRunner(resolveConfig('journal-grpo', { ...base, grpoLossType: 'grpo' }));
    await dapo.runner.runStep();
    await grpo.runner.runStep();
    const a = dapo.policy.stepBatches[0].sequences;
    const b = grpo.policy.stepBatches[0].sequences;
    const total = b.reduce((s, x) => s + x.completionIds.length, 0);
    expect(a.every((s) => s.weight === undefined)).toBe(true);
    // The loss is taken at the sampling temperature (journal-grpo: 0.7).
    expect(grpo.policy.stepBatches[0].temperature).toBe(0.7);
    b.forEach((s, k) => {
      expect(s.advantage).toBe(a[k].advantage);
      // Σ_t w·ℓ / ΣL over sequence k's tokens = its token mean / n: the mean of per-sequence means.
      expect(((s.weight ?? NaN) * s.completionIds.length) / total).toBeCloseTo(1 / b.length, 12);
    });
  });
});
