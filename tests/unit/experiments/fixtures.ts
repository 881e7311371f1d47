// Synthetic run folders for comparison tests: real NodeRunStore runs whose steps and evals are committed
// with hand-chosen metrics, so every number of a comparison can be computed by hand.
import { resolveConfig, type RunConfig } from '../../../src/config.ts';
import type { GroupMetrics, StepMetrics } from '../../../src/selfplay/types.ts';
import type { RunnerState } from '../../../src/selfplay/types.ts';
import type { TaskType } from '../../../src/selfplay/types.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';

export interface SyntheticStep {
  /** Solver accuracy per task type (a type left out has no solver group). */
  solve: Partial<Record<TaskType, number>>;
  /** Proposer valid rate, the same for every type present in `solve`. */
  valid: number;
  proposerReward: number;
  generated: number;
}

function group(meanReward: number, solveRate: number | null, validRate: number | null): GroupMetrics {
  return {
    count: 4,
    meanReward,
    validRate,
    formatRate: 1,
    solveRate,
    advMean: 0,
    advStd: 1,
    zeroVariance: false,
  };
}

export function syntheticMetrics(step: number, s: SyntheticStep): StepMetrics {
  const groups: StepMetrics['groups'] = {};
  for (const [type, acc] of Object.entries(s.solve) as [TaskType, number][]) {
    groups[`${type}:solve`] = group(acc, acc, null);
    groups[`${type}:propose`] = group(s.proposerReward, null, s.valid);
  }
  return {
    step,
    mode: 'azr',
    groups,
    zeroVarianceFraction: 0,
    bufferSizes: { ded: 8, abd: 8, ind: 8 },
    validProposals: 0,
    insertedProposals: 0,
    distinctPrograms: 0,
    meanBinaryOps: null,
    meanAbsOutput: null,
    evalContamination: 0,
    generatedSequences: s.generated,
    generatedTokens: s.generated * 20,
    estimationRollouts: 0,
    trainedSequences: 0,
    trainedTokens: 0,
    notZeroData: false,
    policy: { loss: 0, gradNorm: 0, clipFactor: 1, tokens: 0, entropy: NaN, timeMs: {} },
    timeMs: {},
  };
}

function state(step: number): RunnerState {
  return {
    version: 1,
    step,
    rngState: 1,
    seeded: true,
    notZeroData: false,
    nextTaskId: 1,
    buffers: { ded: [], abd: [], ind: [] },
  };
}

export async function writeSyntheticRun(
  root: string,
  id: string,
  overrides: Partial<RunConfig>,
  steps: SyntheticStep[],
  evals: { step: number; name: string; accuracy: number }[],
  opts: { finish?: boolean } = {},
): Promise<void> {
  const store = new NodeRunStore(root);
  const writer = await store.createRun(id, {
    config: resolveConfig('browser', overrides),
    model: { repo: 'tabzero/tiny', revision: 'main', sha256: 'ab'.repeat(32) },
    tabzeroVersion: '0.0.0-test',
  });
  const evalsAt = (step: number) =>
    evals.filter((e) => e.step === step).map((e) => ({ name: e.name, result: { accuracy: e.accuracy } }));
  for (const e of evalsAt(0)) await writer.commitEval({ ...e, step: 0, time: '2026-01-01T00:00:00.000Z' });
  for (let k = 0; k < steps.length; k++) {
    const step = k + 1;
    await writer.commitStep({
      step,
      metrics: syntheticMetrics(step, steps[k]),
      samples: [],
      state: state(step),
      evals: evalsAt(step),
    });
  }
  await writer.setStatus(opts.finish === false ? 'paused' : 'finished');
  await writer.close();
}

/** Two runs with hand-computed comparison numbers (see compare.test.ts). */
export async function writeTwoRuns(root: string): Promise<void> {
  const all = (v: number) => ({ abd: v, ded: v, ind: v });
  await writeSyntheticRun(
    root,
    'six',
    { totalSteps: 3, baselines: 6 },
    [
      { solve: all(0.2), valid: 0.5, proposerReward: -0.5, generated: 10 },
      { solve: all(0.4), valid: 0.75, proposerReward: 0, generated: 20 },
      { solve: all(0.6), valid: 1, proposerReward: 0.5, generated: 30 },
    ],
    [
      { step: 0, name: 'arith_eval_200:raw', accuracy: 0.1 },
      { step: 2, name: 'arith_eval_200:raw', accuracy: 0.3 },
      { step: 3, name: 'arith_eval_200:raw', accuracy: 0.25 },
    ],
  );
  await writeSyntheticRun(
    root,
    'two',
    { totalSteps: 2, baselines: 2, seed: 9 },
    [
      { solve: { abd: 0.1, ded: 0.3, ind: 0.5 }, valid: 0.2, proposerReward: -1, generated: 40 },
      { solve: all(0.6), valid: 0.4, proposerReward: 0.25, generated: 40 },
    ],
    [
      { step: 0, name: 'arith_eval_200:raw', accuracy: 0.1 },
      { step: 2, name: 'arith_eval_200:raw', accuracy: 0.35 },
    ],
  );
}
