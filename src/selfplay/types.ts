// The self-play layer's data: task types, buffer entries, what a step reports and what a run persists
// (spec 4.2, 4.8). Types and constants only, so the store and the app can import it without the runner.
import type { StepStats } from '../policy.ts';

export type TaskType = 'ded' | 'abd' | 'ind';
export type Role = 'propose' | 'solve';
export const TASK_TYPES: readonly TaskType[] = ['abd', 'ded', 'ind'];

/** A task in a buffer: a triplet (ded/abd: one input) or an induction task (N inputs + message). */
export interface TaskEntry {
  id: string;
  type: TaskType;
  /** Canonical program (`f(x) = …`). */
  program: string;
  arity: number;
  /** One tuple for ded/abd, N tuples for ind. */
  inputs: number[][];
  outputs: number[];
  /** Canonical closed expression per input (`p[i]`), what the deduction solver sees. */
  closed: string[];
  message?: string;
  /** Binary operators in the program (a logged complexity measure). */
  binaryOps: number;
  /** Step at which it was added (0 = seeding). */
  step: number;
  /** Seed entries are never evicted. */
  seed: boolean;
  /** Learnability s estimated when it was proposed (difficulty tiers); absent for seeds. */
  estimatedSolveRate?: number | null;
  /** Where the task came from: the model, or a seed template (then the run is not zero-data). */
  origin: 'model' | 'identity_seed' | 'template';
}

/** Why a proposal is invalid (spec 4.3, 4.5). */
export type InvalidReason =
  | 'no_answer'
  | 'no_program'
  | 'no_input'
  | 'bad_input'
  | 'too_few_inputs'
  | 'no_message'
  | 'syntax'
  | 'unsafe'
  | 'limit'
  | 'arity'
  | 'div0'
  | 'overflow'
  | 'nondeterministic'
  | 'timeout'
  | 'crashed'
  | 'input_range'
  | 'output_range'
  | 'constant_program'
  | 'example_copy'
  | 'duplicate_inputs'
  | 'hint_leak'
  | 'not_closed'
  /** excludeEvalItems: a deduction task whose closed expression is an eval item (kept out of training). */
  | 'eval_item';

/** A proposal of step t waiting for its "solver improvement" reward at step t + 1 (plain JSON). */
export interface PendingProposal {
  type: TaskType;
  step: number;
  prompt: string;
  promptIds: number[];
  response: string;
  completionIds: number[];
  stopReason: string;
  fmt: boolean;
  valid: boolean;
  invalidReason?: InvalidReason;
  task?: TaskEntry;
  /** Learnability estimated before the update. */
  before: number | null;
  /** Unweighted diversity bonus (0 when off). */
  diversity: number;
}

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

/** Bumped when RunnerState changes shape (the store refuses other versions). */
export const RUNNER_STATE_VERSION = 1;

export interface RunnerState {
  version: number;
  step: number;
  rngState: number;
  seeded: boolean;
  notZeroData: boolean;
  nextTaskId: number;
  buffers: Record<TaskType, TaskEntry[]>;
  /** learnabilityReward = 'improvement': last step's proposals, trained at the next step (issue 10). */
  pendingProposals?: PendingProposal[];
}
