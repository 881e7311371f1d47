// Issue 10's experiment variants: each changes exactly what it says. Rewards and groupings on
// hand-computed values, then each switch through a runner step against a scripted policy.
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig, type RunConfig } from '../../../src/config.ts';
import {
  diversityBonus,
  programShape,
  shapeDistance,
  shapeTokens,
  tokenEditDistance,
} from '../../../src/selfplay/diversity.ts';
import { selectKept } from '../../../src/selfplay/azr-step.ts';
import {
  draftRawProposal,
  judgeRawProposal,
  rawProposerPrompt,
  rawSolverCorrect,
} from '../../../src/selfplay/raw-proposer.ts';
import type { GenerationRecord } from '../../../src/selfplay/types.ts';
import {
  BASELINE_GROUPINGS,
  binaryProposerReward,
  difficultyTier,
  groupedAdvantages,
  improvementProposerReward,
  proposerReward,
  stepAdvantages,
  tieredAdvantages,
  withTiers,
  type ScoredSequence,
} from '../../../src/selfplay/rewards.ts';
import { Runner } from '../../../src/selfplay/runner.ts';
import type { TaskEntry } from '../../../src/selfplay/types.ts';
import { InlineVerifier } from '../../../src/selfplay/verifier.ts';
import { runJob, toArithLimits } from '../../../src/selfplay/verifier-protocol.ts';
import { wireLimits } from '../../../src/selfplay/verifier.ts';
import { arithmeticScript, ChatMLTestTokenizer, ScriptedPolicy, type Script } from './helpers.ts';

const tokenizer = new ChatMLTestTokenizer();

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

function makeRunner(config: RunConfig, script: Script = arithmeticScript()) {
  const policy = new ScriptedPolicy(tokenizer, script);
  const runner = new Runner({ policy, tokenizer, verifier: new InlineVerifier(config), config });
  return { runner, policy };
}

const trainedOf = (gens: GenerationRecord[], role: 'propose' | 'solve') =>
  gens.filter((g) => g.trained && g.role === role);

describe('learnability variants (hand-computed)', () => {
  it('1 − s with extremes −0.5 (default) or 0 (paper)', () => {
    expect(proposerReward(true, true, 0.25, -0.5)).toBe(0.75);
    expect(proposerReward(true, true, 0, -0.5)).toBe(-0.5);
    expect(proposerReward(true, true, 1, 0)).toBe(0);
    expect(proposerReward(false, true, 0.5, 0)).toBe(-1);
  });
  it('binary: 1 inside (0, 1), 0 at the extremes, −1 invalid or unformatted', () => {
    expect(binaryProposerReward(true, true, 0.25)).toBe(1);
    expect(binaryProposerReward(true, true, 0.75)).toBe(1);
    expect(binaryProposerReward(true, true, 0)).toBe(0);
    expect(binaryProposerReward(true, true, 1)).toBe(0);
    expect(binaryProposerReward(true, false, 0.5)).toBe(-1);
    expect(binaryProposerReward(false, true, 0.5)).toBe(-1);
  });
  it('improvement: s_after − s_before; −1 invalid; 0 without an estimate', () => {
    expect(improvementProposerReward(true, true, 0.25, 0.75)).toBe(0.5);
    expect(improvementProposerReward(true, true, 0.5, 0.25)).toBe(-0.25);
    expect(improvementProposerReward(true, true, null, 0.5)).toBe(0);
    expect(improvementProposerReward(false, true, 0.25, 0.75)).toBe(-1);
  });
});

describe('baseline grouping (hand-computed)', () => {
  const bounds = { tierHardBelow: 1 / 3, tierEasyAbove: 2 / 3 };
  it('tiers by estimated solve rate (nEst = 4 values)', () => {
    expect([0, 0.25, 0.5, 0.75, 1].map((s) => difficultyTier(s, bounds))).toEqual([
      'hard',
      'hard',
      'medium',
      'easy',
      'easy',
    ]);
    expect(difficultyTier(null, bounds)).toBe('unrated');
    expect(difficultyTier(undefined, bounds)).toBe('unrated');
  });
  const seqs: ScoredSequence[] = [
    { type: 'ded', role: 'propose', reward: 1, length: 3, tier: 'easy' },
    { type: 'abd', role: 'propose', reward: 0, length: 3, tier: 'easy' },
    { type: 'ded', role: 'propose', reward: -1, length: 3, tier: 'hard' },
    { type: 'ind', role: 'propose', reward: 1, length: 3, tier: 'hard' },
    { type: 'ind', role: 'propose', reward: -1, length: 3, tier: 'unrated' },
  ];
  const opts = (baselineTiers: boolean) => ({
    baselines: 2 as const,
    baselineTiers,
    advNorm: 'sequence' as const,
  });
  it('role × tier normalises each tier on its own; unrated sequences against the whole role', () => {
    const adv = stepAdvantages(seqs, opts(true));
    // [1, 0]: μ = 0.5, σ² = 0.5 → ±0.70711; [−1, 1]: μ = 0, σ² = 2 → ∓0.70711;
    // the unrated −1 against [1, 0, −1, 1, −1]: μ = 0, σ² = 4/4 = 1 → −1.
    const r = Math.SQRT1_2;
    [r, -r, -r, r, -1].forEach((v, k) => expect(adv[k]).toBeCloseTo(v, 6));
    expect(tieredAdvantages(seqs, BASELINE_GROUPINGS[2], 'sequence')).toEqual(adv);
  });
  it('role only pools the tiers: [1, 0, −1, 1, −1] with μ = 0, σ² = 1', () => {
    const adv = stepAdvantages(seqs, opts(false));
    [1, 0, -1, 1, -1].forEach((v, k) => expect(adv[k]).toBeCloseTo(v, 6));
  });
  it('type × role and global keys; tiers compose with any grouping', () => {
    expect(BASELINE_GROUPINGS[6](seqs[0])).toBe('ded:propose');
    expect(BASELINE_GROUPINGS[1](seqs[0])).toBe('all');
    expect(withTiers(BASELINE_GROUPINGS[1])(seqs[2])).toBe('all|hard');
    expect(withTiers(BASELINE_GROUPINGS[2])({ type: 'ded', role: 'solve' })).toBe('solve|unrated');
  });
});

describe('diversity bonus (hand-computed)', () => {
  it('shape replaces literals; distance is the normalised token edit distance', () => {
    expect(programShape('f(x) = x * 3 + (-12)')).toBe('f(x) = x * n + (-n)');
    expect(shapeTokens('f(x, y) = x // n')).toEqual(['f', '(', 'x', ',', 'y', ')', '=', 'x', '//', 'n']);
    expect(tokenEditDistance(['a', 'b', 'c'], ['a', 'c'])).toBe(1);
    // 10 tokens vs 8 tokens, two deletions.
    expect(shapeDistance('f(x) = x * n + n', 'f(x) = x * n')).toBeCloseTo(0.2, 12);
    expect(shapeDistance('f(x) = x * n', 'f(x) = x * n')).toBe(0);
  });
  it('novel_shape: 1 only for a shape the buffer lacks; distance: min over the references', () => {
    const shapes = new Set(['f(x) = x * n']);
    expect(diversityBonus('novel_shape', 'f(x) = x * 7', shapes, [])).toBe(0);
    expect(diversityBonus('novel_shape', 'f(x) = x * 7 + 1', shapes, [])).toBe(1);
    expect(
      diversityBonus('distance', 'f(x) = x * 7 + 1', shapes, ['f(x) = x * 2', 'f(x) = x % 9']),
    ).toBeCloseTo(0.2, 12);
    expect(diversityBonus('distance', 'f(x) = x', shapes, [])).toBe(1);
  });
  it('adds coef × bonus to valid proposals in a step and logs the bonus separately', async () => {
    const config = small({ diversityCoef: 0.5, diversityMeasure: 'novel_shape' });
    const { runner } = makeRunner(config);
    await runner.seed();
    const shapesBefore = {
      ded: new Set(runner.buffers.ded.entries.map((e) => programShape(e.program))),
      abd: new Set(runner.buffers.abd.entries.map((e) => programShape(e.program))),
    };
    const r = await runner.runStep();
    const proposals = trainedOf(r.generations, 'propose');
    let checked = 0;
    for (const g of proposals) {
      const base = proposerReward(!!g.valid, g.fmt, g.learnability ?? null, config.extremeReward);
      if (g.type === 'ind' || !g.valid || !g.fmt) {
        expect(g.reward).toBe(base);
        continue;
      }
      const expected = shapesBefore[g.type as 'ded' | 'abd'].has(programShape(g.task!.program)) ? 0 : 1;
      expect(g.diversityBonus).toBe(expected);
      expect(g.reward).toBeCloseTo(base + 0.5 * expected, 12);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    expect(r.metrics.diversityBonus?.ded).not.toBeUndefined();
  });
});

/** Proposer: valid iff promptIndex % 3 ≠ 1, the program names its prompt index; rest as arithmeticScript. */
function indexedProposerScript(): Script {
  const base = arithmeticScript();
  return (prompt, ctx) => {
    if (!prompt.includes('## Task: Create a new arithmetic function')) return base(prompt, ctx);
    if (ctx.promptIndex % 3 === 1) return 'no answer here';
    const k = ctx.promptIndex + 2 + 100 * ctx.callIndex;
    return `ok</think>\n<answer>\nf(x) = x * ${k} - 1\ninput: ${ctx.promptIndex}\n</answer>`;
  };
}

describe('oversampling', () => {
  it('generates k×B proposals per type and trains on the first B valid ones', async () => {
    const config = small({ oversample: true, oversampleFactor: 2, seedFallback: 'templates' });
    const { runner, policy } = makeRunner(config, indexedProposerScript());
    await runner.seed();
    const calls = policy.generateCalls.length;
    const r = await runner.runStep();
    const B = config.batchPerGroup;
    expect(policy.generateCalls[calls].prompts).toHaveLength(3 * 2 * B);
    expect(policy.stepBatches[0].sequences.filter((s) => s.role === 'propose')).toHaveLength(3 * B);
    // abd occupies prompt indices 0..7: valid 0, 2, 3, 5, 6 → the update keeps 0, 2, 3, 5.
    const abd = r.generations.filter((g) => g.kind === 'propose' && g.type === 'abd');
    const inputOf = (g: GenerationRecord) => Number(/input: (-?\d+)/.exec(g.response)?.[1] ?? -1);
    expect(abd.filter((g) => g.trained).map(inputOf)).toEqual([0, 2, 3, 5]);
    expect(abd.filter((g) => !g.trained).map(inputOf)).toEqual([-1, -1, 6, -1]);
    expect(r.metrics.groups['abd:propose']!.validRate).toBe(5 / 8);
    expect(r.metrics.groups['abd:propose']!.count).toBe(B);
    expect(r.metrics.proposalsGenerated).toBe(24);
    // Only the kept valid proposals are estimated and inserted.
    expect(r.metrics.estimationRollouts).toBe(config.nEst * r.metrics.validProposals);
  });
  it('fills a group short of valid proposals with the earliest invalid ones', () => {
    expect(selectKept([false, true, false, false, true, false], 3)).toEqual([
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
    expect(selectKept([true, true, true, true], 2)).toEqual([true, true, false, false]);
  });
});

describe('tiered baselines in a step', () => {
  it('normalises the recorded rewards within role × tier', async () => {
    const config = small({ baselines: 2, baselineTiers: true });
    const { runner } = makeRunner(config);
    await runner.runStep();
    const byId = new Map<string, TaskEntry>();
    for (const type of ['ded', 'abd', 'ind'] as const)
      for (const e of runner.buffers[type].entries) byId.set(e.id, e);
    const r = await runner.runStep();
    const trained = r.generations.filter((g) => g.trained);
    const seqs: ScoredSequence[] = trained.map((g) => ({
      type: g.type,
      role: g.role,
      reward: g.reward!,
      length: g.tokens,
      tier:
        g.role === 'propose'
          ? difficultyTier(g.valid && g.fmt ? (g.learnability ?? null) : null, config)
          : difficultyTier(byId.get(g.taskId!)?.estimatedSolveRate, config),
    }));
    expect(new Set(seqs.filter((s) => s.role === 'solve').map((s) => s.tier)).size).toBeGreaterThan(1);
    const expected = tieredAdvantages(seqs, BASELINE_GROUPINGS[2], 'sequence');
    trained.forEach((g, k) => expect(g.advantage).toBeCloseTo(expected[k], 9));
    const untiered = groupedAdvantages(seqs, BASELINE_GROUPINGS[2], 'sequence');
    expect(untiered.some((a, k) => Math.abs(a - expected[k]) > 1e-6)).toBe(true);
  });
});

describe('learnability variants in a step', () => {
  it('binary gives proposer rewards in {−1, 0, 1}', async () => {
    const { runner } = makeRunner(small({ learnabilityReward: 'binary' }));
    const r = await runner.runStep();
    for (const g of trainedOf(r.generations, 'propose')) {
      expect(g.reward).toBe(binaryProposerReward(!!g.valid, g.fmt, g.learnability ?? null));
    }
  });
  it('improvement trains step t proposals at step t + 1 with s_after − s_before, resumably', async () => {
    const config = small({ learnabilityReward: 'improvement' });
    const { runner, policy } = makeRunner(config);
    const r1 = await runner.runStep();
    expect(policy.stepBatches[0].sequences.filter((s) => s.role === 'propose')).toHaveLength(0);
    const pending1 = r1.generations.filter((g) => g.kind === 'propose');
    expect(pending1).toHaveLength(3 * config.batchPerGroup);
    expect(pending1.every((g) => !g.trained)).toBe(true);
    const state = JSON.parse(JSON.stringify(runner.getState()));
    expect(state.pendingProposals).toHaveLength(3 * config.batchPerGroup);

    const r2 = await runner.runStep();
    const trained2 = trainedOf(r2.generations, 'propose');
    expect(trained2.map((g) => g.response)).toEqual(pending1.map((g) => g.response));
    let estimated = 0;
    trained2.forEach((g, k) => {
      const before = pending1[k].learnability ?? null;
      if (!g.valid || !g.fmt) return expect(g.reward).toBe(-1);
      expect(g.reward).toBeCloseTo(improvementProposerReward(true, true, before, g.learnability ?? null), 12);
      estimated++;
    });
    expect(estimated).toBeGreaterThan(0);
    // Re-estimation rollouts of last step's tasks go with this step's estimation.
    const fresh = r2.generations.filter((g) => g.kind === 'propose' && !g.trained && g.valid && g.fmt);
    const again = trained2.filter((g) => g.valid && g.fmt);
    expect(r2.metrics.estimationRollouts).toBe(config.nEst * (fresh.length + again.length));

    const resumed = Runner.fromState(
      {
        policy: new ScriptedPolicy(tokenizer, arithmeticScript()),
        tokenizer,
        verifier: new InlineVerifier(config),
        config,
      },
      state,
    );
    const r2b = await resumed.runStep();
    const timeless = (x: unknown) => JSON.stringify(x, (key, v) => (key === 'timeMs' ? undefined : v));
    expect(timeless(r2b)).toBe(timeless(r2));
  });
});

/** Raw mode: proposals `a + b = `, the first of each call invalid; solvers answer right half the time, with trailing words. */
function rawScript(): Script {
  return (prompt, { rng, promptIndex }) => {
    if (prompt.startsWith('Generate arithmetic: ')) {
      if (promptIndex === 0) return 'hello there = ';
      return `${rng.int(0, 30)} ${rng.choice(['+', '-', '*'])} ${rng.int(0, 30)} = `;
    }
    const m = /^Calculate: (.*) = $/.exec(prompt);
    if (!m) return 'unexpected prompt';
    const job = runJob({ program: m[1], inputs: [[]] }, toArithLimits(wireLimits(small())));
    const value = job.ok && job.results[0].ok ? job.results[0].value : '0';
    return rng.next() < 0.5 ? `${value} apples\n` : `${Number(value) + 1}\n`;
  };
}

describe('few-shot raw proposer prompts', () => {
  it('prompt, parsing and journal scoring', () => {
    const ref = { closed: ['12 * 4'] } as TaskEntry;
    expect(rawProposerPrompt([ref])).toBe(
      'Generate arithmetic: Calculate: 5 + 3 = \nGenerate arithmetic: Calculate: 12 * 4 = \nGenerate arithmetic: Calculate: ',
    );
    const draft = draftRawProposal(' 7 *(2+1) = 21');
    expect(draft).toMatchObject({ ok: true, job: { program: '7 *(2+1)', inputs: [[]] } });
    expect(draftRawProposal(' = 5')).toMatchObject({ ok: false, reason: 'no_answer' });
    const limits = toArithLimits(wireLimits(small()));
    const c = small();
    expect(judgeRawProposal(runJob({ program: '7 *(2+1)', inputs: [[]] }, limits), c)).toMatchObject({
      valid: true,
      task: { program: '7 * (2 + 1)', arity: 0, outputs: [21], closed: ['7 * (2 + 1)'] },
    });
    expect(judgeRawProposal(runJob({ program: 'x + 1', inputs: [[]] }, limits), c)).toMatchObject({
      valid: false,
    });
    expect(judgeRawProposal(runJob({ program: '5+3', inputs: [[]] }, limits), c)).toEqual({
      valid: false,
      reason: 'example_copy',
    });
    expect(judgeRawProposal(runJob({ program: '1 // 0', inputs: [[]] }, limits), c)).toEqual({
      valid: false,
      reason: 'div0',
    });
    expect(rawSolverCorrect({ outputs: [21] }, ' 21 is the answer')).toBe(true);
    expect(rawSolverCorrect({ outputs: [21] }, 'the answer is 21')).toBe(false);
  });
  it('runs deduction only, closed-expression tasks, no chat template and no format check', async () => {
    const config = small({ proposerPrompts: 'raw', seedFallback: 'templates' });
    const { runner, policy } = makeRunner(config, rawScript());
    const r = await runner.runStep();
    const B = config.batchPerGroup;
    expect(Object.keys(r.metrics.groups).sort()).toEqual(['ded:propose', 'ded:solve']);
    expect(policy.stepBatches[0].sequences).toHaveLength(2 * B);
    expect(runner.buffers.abd.size + runner.buffers.ind.size).toBe(0);
    expect(runner.buffers.ded.entries.every((e) => e.arity === 0 && e.closed[0] === e.program)).toBe(true);
    const stepCalls = policy.generateCalls.slice(-2);
    expect(stepCalls[0].opts.stopStrings).toEqual(['=', '\n']);
    expect(stepCalls[1].opts.stopStrings).toEqual(['\n']);
    for (const call of stepCalls)
      for (const p of call.prompts) expect(p.includes('<|im_start|>')).toBe(false);
    for (const g of r.generations.filter((x) => x.kind === 'solve')) {
      expect(g.fmt).toBe(true);
      expect(g.reward).toBe(g.correct ? 1 : -0.5);
    }
    expect(r.generations.filter((x) => x.kind === 'solve' && x.correct).length).toBeGreaterThan(0);
    const proposals = r.generations.filter((x) => x.kind === 'propose');
    expect(proposals.some((g) => !g.valid && g.reward === -1)).toBe(true);
    expect(proposals.some((g) => g.valid)).toBe(true);
  });
});

describe('separate proposer and solver adapters', () => {
  it('is a LoRA-only option; every trained sequence and every generate call carries its role', async () => {
    expect(() => resolveConfig('browser', { separateAdapters: true, fineTune: 'full' })).toThrow(ConfigError);
    const { runner, policy } = makeRunner(small({ separateAdapters: true }));
    const r = await runner.runStep();
    const roles = policy.stepBatches[0].sequences.map((s) => s.role);
    expect(roles).toEqual(r.generations.filter((g) => g.trained).map((g) => g.role));
    expect(new Set(roles)).toEqual(new Set(['propose', 'solve']));
    // Every generate call is single-role and says which policy samples it: seeding and proposals with
    // the proposer, estimation and solving with the solver.
    const callRoles = policy.generateCalls.map((c) => (c.opts as { role?: string }).role);
    expect(callRoles.slice(-2)).toEqual(['propose', 'solve']);
    expect(callRoles.slice(0, -2).every((r) => r === 'propose')).toBe(true);
  });
});

describe('seed sets and raw proposer prompts', () => {
  it('a raw run exports and imports a ded-only seed set; a chat run refuses it', async () => {
    const rawConfig = small({ proposerPrompts: 'raw', seedFallback: 'templates' });
    const { runner } = makeRunner(rawConfig, rawScript());
    await runner.seed();
    const seed = runner.exportSeedSet();
    expect(seed.ded.length).toBe(rawConfig.batchPerGroup * rawConfig.seedFactor);
    expect(seed.abd.length + seed.ind.length).toBe(0);
    const fresh = makeRunner(rawConfig, rawScript()).runner;
    fresh.importSeedSet(seed, { fromZeroDataRun: false });
    expect(fresh.buffers.ded.size).toBe(seed.ded.length);
    const chat = makeRunner(small()).runner;
    expect(() =>
      chat.importSeedSet({ ...seed, abd: seed.ded, ind: seed.ded }, { fromZeroDataRun: true }),
    ).toThrow(/closed expressions/);
  });
});
