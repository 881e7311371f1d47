// Public API of the self-play layer (browser-safe; the Node worker factory lives in verifier-node.ts).
export { Runner, RUNNER_STATE_VERSION, type RunnerDeps, type RunnerState } from './runner.ts';
export type {
  GenerationRecord,
  GroupMetrics,
  RunnerPhase,
  RunnerProgress,
  SeedResult,
  StepMetrics,
  StepResult,
} from './records.ts';
export { SeedingError } from './seeding.ts';
export {
  createWorkerVerifier,
  InlineVerifier,
  webWorkerFactory,
  wireLimits,
  WorkerVerifier,
  type Verifier,
  type VerifierEndpoint,
  type VerifierWorkerFactory,
} from './verifier.ts';
export type { VerifierJob, VerifierVerdict, WireLimits } from './verifier-protocol.ts';
export {
  evaluate,
  scoreCompletion,
  type EvalMode,
  type EvalReport,
  type EvaluateOptions,
} from './evaluate.ts';
export {
  evalCanonicalExpressions,
  generateEvalSetJsonl,
  sha256Hex,
  toEvalItems,
  type EvalItem,
} from './evalsets.ts';
export { generateGrpoTrainSet } from './grpo.ts';
export { renderPrompt } from './prompts.ts';
export { activeTaskTypes, type Role, type TaskEntry, type TaskType } from './types.ts';
export { diversityBonus, programShape, shapeDistance, type DiversityMeasure } from './diversity.ts';
export { rawProposerPrompt, rawSolverPrompt, RAW_EXAMPLE } from './raw-proposer.ts';
export type { PendingProposal } from './azr-step.ts';
