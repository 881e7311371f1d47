// The self-play Runner (spec 4.8–4.11): seeding, one AZR step (batched in the normative order of 4.9),
// and the GRPO baseline step. It sees the model only through Policy and Tokenizer, keeps all of its
// state in plain JSON (buffers, rng state, step) and draws every random choice from one seeded rng. The
// step functions see it as a StepContext (context.ts).
import type { EvalItem, RunConfig } from '../config.ts';
import type { StepContext, StepDeps } from './context.ts';
import { runAzrStep } from './azr-step.ts';
import { activeTaskTypes, TaskBuffer, type BufferOptions } from './buffers.ts';
import { evalCanonicalExpressions } from './evalsets.ts';
import { generateGrpoTrainSet, runGrpoStep } from './grpo.ts';
import { runImitationStep } from './imitation.ts';
import { Rng } from '../random.ts';
import { seedBuffers } from './seeding.ts';
import {
  RUNNER_STATE_VERSION,
  type PendingProposal,
  type RunnerPhase,
  type RunnerProgress,
  type RunnerState,
  type SeedResult,
  type StepResult,
  type TaskEntry,
  type TaskType,
} from './types.ts';

export interface RunnerDeps extends StepDeps {
  config: RunConfig;
  onProgress?: (p: RunnerProgress) => void;
  /** Canonical eval expressions for the contamination count (default: arith_eval_200 + config.evalSets). */
  evalExpressions?: ReadonlySet<string>;
}

export class Runner implements StepContext {
  readonly rng: Rng;
  buffers: Record<TaskType, TaskBuffer>;
  step = 0;
  seeded = false;
  notZeroData = false;
  /** Proposals awaiting their "solver improvement" reward (learnabilityReward = 'improvement'). */
  pending: PendingProposal[] = [];
  private nextTaskId = 1;
  private grpoItems: readonly EvalItem[] | null = null;

  /** Canonical eval expressions watched for contamination (spec 5.2). */
  readonly evalExpressions: ReadonlySet<string>;

  constructor(readonly deps: RunnerDeps) {
    if (deps.config.klBeta > 0 && !deps.referencePolicy)
      throw new Error(
        `klBeta = ${deps.config.klBeta} needs a frozen reference policy for its KL term, and this trainer has none: ` +
          'set klBeta = 0',
      );
    this.rng = new Rng(deps.config.seed);
    this.evalExpressions =
      deps.evalExpressions ??
      new Set(
        (['arith_eval_200', ...deps.config.evalSets] as const).flatMap((name) => [
          ...evalCanonicalExpressions(name),
        ]),
      );
    const opts = this.bufferOptions();
    this.buffers = {
      ded: new TaskBuffer('ded', opts),
      abd: new TaskBuffer('abd', opts),
      ind: new TaskBuffer('ind', opts),
    };
  }

  get config(): RunConfig {
    return this.deps.config;
  }

  bufferOptions(): BufferOptions {
    const { maxBuffer, bufferEviction, dedupBuffer } = this.deps.config;
    return { maxBuffer, bufferEviction, dedupBuffer };
  }

  progress(phase: RunnerPhase, message?: string): void {
    this.deps.onProgress?.({
      step: this.step + (phase === 'seeding' ? 0 : 1),
      phase,
      ...(message ? { message } : {}),
    });
  }

  grpoTrainSet(): readonly EvalItem[] {
    this.grpoItems ??= generateGrpoTrainSet(this.config.grpoTrainSize, this.config.grpoTrainSeed);
    return this.grpoItems;
  }

  newTaskId(type: TaskType): string {
    return `${type}-${this.nextTaskId++}`;
  }

  /** Fill the three buffers before step 1 (spec 4.8). Throws SeedingError when it cannot. */
  async seed(): Promise<SeedResult> {
    const result = await seedBuffers(this);
    this.seeded = true;
    return result;
  }

  /** The seed entries of the three buffers, to persist as a seed set and reuse across runs (spec 4.8). */
  exportSeedSet(): Record<TaskType, TaskEntry[]> {
    const pick = (t: TaskType) => this.buffers[t].entries.filter((e) => e.seed).map((e) => ({ ...e }));
    return { ded: pick('ded'), abd: pick('abd'), ind: pick('ind') };
  }

  /**
   * Use an imported seed set instead of seeding. Unless it came from a zero-data run, the run is labelled
   * not zero-data; so is any set holding template tasks.
   */
  importSeedSet(seed: Record<TaskType, TaskEntry[]>, opts: { fromZeroDataRun: boolean }): void {
    const opts2 = this.bufferOptions();
    // Closed-expression tasks belong to raw proposer prompts only (spec 4.1 forbids them elsewhere).
    const raw = this.config.proposerPrompts === 'raw';
    const misfit = Object.values(seed)
      .flat()
      .find((e) => (e.arity === 0) !== raw);
    if (misfit) {
      throw new Error(
        `imported seed set holds ${misfit.arity === 0 ? 'closed expressions' : 'programs with variables'} ` +
          `(e.g. ${misfit.program}), which ${raw ? 'raw' : 'chat'} proposer prompts cannot use`,
      );
    }
    for (const type of ['ded', 'abd', 'ind'] as const) {
      const entries = seed[type].map((e) => ({ ...e, type, step: 0, seed: true, id: this.newTaskId(type) }));
      this.buffers[type] = TaskBuffer.fromJSON(type, opts2, []);
      for (const e of entries) this.buffers[type].insert(e, { dedup: true });
      if (this.buffers[type].size === 0 && activeTaskTypes(this.config).includes(type))
        throw new Error(`imported seed set has no ${type} tasks`);
    }
    const templated = Object.values(seed).some((list) => list.some((e) => e.origin === 'template'));
    this.notZeroData = this.notZeroData || !opts.fromZeroDataRun || templated;
    this.seeded = true;
  }

  /** One training step; seeds first if needed (AZR mode). */
  async runStep(): Promise<StepResult> {
    if (this.config.mode === 'imitation') {
      const r = await runImitationStep(this);
      this.step = r.step;
      return r;
    }
    if (this.config.mode === 'grpo') {
      const r = await runGrpoStep(this);
      this.step = r.step;
      return r;
    }
    const seed = this.seeded ? undefined : await this.seed();
    const r = await runAzrStep(this);
    this.step = r.step;
    return seed ? { ...r, seed } : r;
  }

  getState(): RunnerState {
    return {
      version: RUNNER_STATE_VERSION,
      step: this.step,
      rngState: this.rng.state,
      seeded: this.seeded,
      notZeroData: this.notZeroData,
      nextTaskId: this.nextTaskId,
      buffers: {
        ded: this.buffers.ded.toJSON().map((e) => ({ ...e })),
        abd: this.buffers.abd.toJSON().map((e) => ({ ...e })),
        ind: this.buffers.ind.toJSON().map((e) => ({ ...e })),
      },
      ...(this.pending.length ? { pendingProposals: structuredClone(this.pending) } : {}),
    };
  }

  static fromState(deps: RunnerDeps, state: RunnerState): Runner {
    if (state.version !== RUNNER_STATE_VERSION) {
      throw new Error(
        `runner state version ${state.version} is not supported (expected ${RUNNER_STATE_VERSION})`,
      );
    }
    const r = new Runner(deps);
    r.step = state.step;
    r.rng.state = state.rngState;
    r.seeded = state.seeded;
    r.notZeroData = state.notZeroData;
    r.nextTaskId = state.nextTaskId;
    r.pending = structuredClone(state.pendingProposals ?? []);
    const opts = r.bufferOptions();
    for (const type of ['ded', 'abd', 'ind'] as const) {
      r.buffers[type] = TaskBuffer.fromJSON(type, opts, state.buffers[type]);
    }
    return r;
  }
}
