// What a step function (AZR, GRPO, imitation, seeding) may use of its run: the config, the policy and
// its tokenizer, the verifier, the run's rng, buffers and step counter. The Runner implements it; the step
// functions import this type, never the Runner, so the layer has no import circle.
import type { EvalItem, RunConfig } from '../config.ts';
import type { Policy, Tokenizer } from '../policy.ts';
import type { Rng } from '../random.ts';
import type { TaskBuffer } from './buffers.ts';
import type { PendingProposal, RunnerPhase, TaskType } from './types.ts';
import type { Verifier } from './verifier.ts';

export interface StepDeps {
  policy: Policy;
  tokenizer: Tokenizer;
  verifier: Verifier;
  /** Frozen reference for the k3 KL: required when klBeta > 0 (its log-probs go with every trained sequence). */
  referencePolicy?: Pick<Policy, 'logprobs'>;
  /**
   * Tests only: replaces each GRPO training reward (its completion text and the verifier's reward in), so
   * an untrained model's all-zero rewards can vary and an update move the policy away from its reference.
   */
  testGrpoReward?: (text: string, reward: number) => number;
}

export interface StepContext {
  readonly deps: StepDeps;
  readonly config: RunConfig;
  readonly rng: Rng;
  readonly buffers: Record<TaskType, TaskBuffer>;
  /** Steps completed (the step being run is step + 1). */
  readonly step: number;
  /** Canonical eval expressions watched for contamination (spec 5.2). */
  readonly evalExpressions: ReadonlySet<string>;
  /** Seeded from templates or an imported file: the run is not zero-data. */
  notZeroData: boolean;
  /** Proposals awaiting their "solver improvement" reward (learnabilityReward = 'improvement'). */
  pending: PendingProposal[];
  newTaskId(type: TaskType): string;
  progress(phase: RunnerPhase, message?: string): void;
  /** The GRPO baseline's training prompts: built from the config's seed and size, never stored. */
  grpoTrainSet(): readonly EvalItem[];
}
