// What a runner step reports: progress events, per-step metrics and every generation (sample tables).
import type { StepStats } from '../policy.ts';
import type { Role, TaskEntry, TaskType } from './types.ts';

export type RunnerPhase = 'seeding' | 'proposing' | 'validating' | 'estimating' | 'solving' | 'updating';

export interface RunnerProgress {
  step: number;
  phase: RunnerPhase;
  message?: string;
}

export interface GenerationRecord {
  step: number;
  kind: 'seed' | 'propose' | 'estimate' | 'solve' | 'grpo';
  type: TaskType;
  role: Role;
  /** The rendered prompt (chat template + prefill). */
  prompt: string;
  response: string;
  tokens: number;
  stopReason: string;
  fmt: boolean;
  /** Proposals: validity, the reason when invalid, the parsed task when valid, learnability s. */
  valid?: boolean;
  invalidReason?: string;
  task?: Omit<TaskEntry, 'id' | 'step' | 'seed' | 'origin'>;
  learnability?: number | null;
  /** Solver and estimation rollouts: the task solved and the verdict. */
  taskId?: string;
  correct?: boolean;
  reward?: number;
  advantage?: number;
  /** Proposals: the unweighted diversity bonus when the diversity variant is on (issue 10). */
  diversityBonus?: number;
  /** Whether this sequence went into policy.step (estimation rollouts never do). */
  trained: boolean;
}

export interface GroupMetrics {
  count: number;
  meanReward: number;
  /** Proposer groups only (null for solvers). */
  validRate: number | null;
  formatRate: number;
  /** Solvers: fraction correct; proposers: mean learnability s over estimated proposals (null if none). */
  solveRate: number | null;
  advMean: number;
  advStd: number;
  /** All rewards equal: the group contributes no gradient. */
  zeroVariance: boolean;
}

export type GroupKey = `${TaskType}:${Role}`;

export interface StepMetrics {
  step: number;
  mode: 'azr' | 'grpo' | 'imitation';
  groups: Partial<Record<GroupKey, GroupMetrics>>;
  /** Fraction of groups with zero reward variance this step. */
  zeroVarianceFraction: number;
  bufferSizes: Record<TaskType, number>;
  validProposals: number;
  insertedProposals: number;
  /** Distinct canonical programs among this step's valid proposals. */
  distinctPrograms: number;
  meanBinaryOps: number | null;
  meanAbsOutput: number | null;
  /** Deduction buffer entries whose closed expression is an eval-set expression (spec 5.2). */
  evalContamination: number;
  generatedSequences: number;
  /** Tokens generated in the step (proposals, estimation rollouts, solutions): the throughput measure. */
  generatedTokens: number;
  /** Proposals generated this step (k×3B when oversampling; present since issue 10). */
  proposalsGenerated?: number;
  /** Mean unweighted diversity bonus of this step's scored proposals per type (diversityCoef > 0). */
  diversityBonus?: Partial<Record<TaskType, number | null>>;
  estimationRollouts: number;
  trainedSequences: number;
  trainedTokens: number;
  /** Seeded from templates or an imported file: shown as "not zero-data". */
  notZeroData: boolean;
  /** Imitation steps: −mean logπ of the records' completion tokens before the update. */
  imitationLoss?: number | null;
  policy: StepStats;
  timeMs: Partial<Record<RunnerPhase, number>>;
}

export interface StepResult {
  step: number;
  metrics: StepMetrics;
  generations: GenerationRecord[];
  /** Present on the step that seeded the buffers first (its seeding generations and log). */
  seed?: SeedResult;
}

export interface SeedResult {
  seedSize: number;
  inductionSize: number;
  rounds: { triplet: number; induction: number };
  /** Valid proposals / proposals seen during seeding. */
  validRate: { triplet: number; induction: number };
  usedTemplates: boolean;
  log: string[];
  generations: GenerationRecord[];
}

export function groupMetrics(
  rewards: readonly number[],
  advantages: readonly number[],
  fmt: readonly boolean[],
  valid: readonly boolean[] | null,
  solve: readonly (number | null)[],
): GroupMetrics {
  const n = rewards.length;
  const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const advMean = mean(advantages);
  const solved = solve.filter((s): s is number => s !== null);
  return {
    count: n,
    meanReward: mean(rewards),
    validRate: valid ? valid.filter(Boolean).length / Math.max(1, n) : null,
    formatRate: fmt.filter(Boolean).length / Math.max(1, n),
    solveRate: solved.length ? mean(solved) : null,
    advMean,
    advStd: Math.sqrt(mean(advantages.map((a) => (a - advMean) ** 2))),
    zeroVariance: rewards.every((r) => r === rewards[0]),
  };
}
