// The run loop shared by the trainer worker and `tabzero train`: resume from the last checkpoint,
// seed, step, commit each step's results all-or-nothing, checkpoint on a timer / every N steps / on
// pause, stop and hidden tab, and evaluate at step 0 and every N steps. It sees the engine through
// `Policy` and `TrainableState`, the store through `RunWriter`.
import { EVAL_SET_NAMES, type RunConfig } from '../config.ts';
import type { Policy, Tokenizer } from '../policy.ts';
import type { RunPhase } from '../protocol.ts';
import {
  evaluateConfigured,
  hasConfiguredEvals,
  type EvalMode,
  type EvalReport,
} from '../selfplay/evaluate.ts';
import type { GenerationRecord, RunnerProgress, StepResult } from '../selfplay/types.ts';
import { Runner } from '../selfplay/runner.ts';
import type { Verifier } from '../selfplay/verifier.ts';
import type { TaskEntry, TaskType } from '../selfplay/types.ts';
import { canonicalExpressions, evalCanonicalExpressions } from '../selfplay/evalsets.ts';
import type {
  CheckpointInfo,
  CheckpointReason,
  CheckpointTensor,
  EvalRow,
  JsonValue,
  RunWriter,
  SeedSet,
} from '../store/types.ts';

/** The engine's trainable state (LoRA or full weights + AdamW), as a checkpoint sees it. */
export interface TrainableState {
  save(): Promise<{ tensors: CheckpointTensor[]; state: JsonValue }>;
  load(tensors: CheckpointTensor[], state: JsonValue): Promise<void>;
  /** Back to the run's initial trainable weights (fresh LoRA init from the run seed; base weights). */
  reset(seed: number): Promise<void>;
}

export type SessionEvent =
  | { type: 'phase'; progress: SessionProgress }
  | { type: 'step'; result: StepResult; wallMs: number }
  | { type: 'samples'; records: GenerationRecord[] }
  | { type: 'eval'; row: EvalRow; set: string; mode: EvalMode; report: EvalReport }
  | { type: 'checkpoint'; info: CheckpointInfo }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

/** A phase of the run as it starts: the runner's phases, and the session's eval and checkpoint. */
export interface SessionProgress {
  step: number;
  phase: RunPhase;
  message?: string;
}

export interface SessionDeps {
  writer: RunWriter;
  policy: Policy;
  tokenizer: Tokenizer;
  verifier: Verifier;
  trainable: TrainableState;
  /** The frozen reference for the KL term (klBeta > 0): Trainer.referencePolicy. */
  referencePolicy?: Pick<Policy, 'logprobs'>;
  onEvent?: (e: SessionEvent) => void;
  /**
   * Seed the buffers from this set (spec 4.8: a seed set exported from another run) instead of
   * proposing; used only while the run is not yet seeded. Labels the run not zero-data unless the set
   * came from a zero-data run.
   */
  seedSet?: SeedSet;
  /** Clock in ms (tests). */
  now?: () => number;
}

export type SessionEnd = 'finished' | 'paused' | 'stopped';

export function evalName(set: string, mode: EvalMode): string {
  return `${set}:${mode}`;
}

/** The set and mode of a stored eval's name (a file's name may itself hold a ':'). */
export function parseEvalName(name: string): { set: string; mode: EvalMode } {
  const at = name.lastIndexOf(':');
  return { set: name.slice(0, at), mode: name.slice(at + 1) as EvalMode };
}

/** Every eval the config asks for, on the policy's current weights, as store rows. */
export async function runConfiguredEvals(
  policy: Policy,
  tokenizer: Tokenizer,
  config: RunConfig,
): Promise<Omit<EvalRow, 'step'>[]> {
  const time = new Date().toISOString();
  return (await evaluateConfigured(policy, tokenizer, config)).map((report) => ({
    name: evalName(report.set, report.mode),
    result: report as unknown as JsonValue,
    time,
  }));
}

/**
 * Imitation's stopping rule (imitationStopAccuracy > 0): the raw accuracy on imitationStopSet when this
 * step's evals reach it, else null. It stops where the solver is partly right, leaving self-play room.
 */
export function imitationStopReached(
  config: Pick<RunConfig, 'mode' | 'imitationStopAccuracy' | 'imitationStopSet'>,
  evals: readonly Omit<EvalRow, 'step'>[],
): number | null {
  if (config.mode !== 'imitation' || config.imitationStopAccuracy <= 0) return null;
  const row = evals.find((e) => e.name === evalName(config.imitationStopSet, 'raw'));
  const acc = (row?.result as { accuracy?: number } | undefined)?.accuracy;
  return typeof acc === 'number' && acc >= config.imitationStopAccuracy ? acc : null;
}

/**
 * The eval expressions a run keeps out of its training data (and counts as contamination): imitation
 * excludes every eval set's (the dev set's too: the stopping rule reads it), self-play those it evaluates.
 */
export function runEvalExpressions(config: Pick<RunConfig, 'mode' | 'evalSets' | 'evalFiles'>): Set<string> {
  const sets = config.mode === 'imitation' ? EVAL_SET_NAMES : config.evalSets;
  const out = new Set(sets.flatMap((s) => [...evalCanonicalExpressions(s)]));
  // Your own eval files are held out too (contamination count, excludeEvalItems).
  for (const f of config.evalFiles) for (const e of canonicalExpressions(f.items)) out.add(e);
  return out;
}

export class TrainingSession {
  private control: 'run' | 'pause' | 'stop' = 'run';
  private hiddenCheckpoint = false;
  private runner: Runner | null = null;
  private lastCheckpointAt = 0;
  private lastCheckpointStep = -1;
  private readonly now: () => number;

  constructor(private readonly deps: SessionDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  /** Pause at the next safe point (after the current step commits); a checkpoint is taken. */
  requestPause(): void {
    if (this.control === 'run') this.control = 'pause';
  }

  requestStop(): void {
    this.control = 'stop';
  }

  /** The tab was hidden: checkpoint at the next step boundary. */
  requestCheckpoint(): void {
    this.hiddenCheckpoint = true;
  }

  get step(): number {
    return this.runner?.step ?? 0;
  }

  private emit(e: SessionEvent): void {
    this.deps.onEvent?.(e);
  }

  private async checkpoint(reason: CheckpointReason): Promise<void> {
    this.emit({ type: 'phase', progress: { step: this.step, phase: 'checkpointing', message: reason } });
    const { tensors, state } = await this.deps.trainable.save();
    const info = await this.deps.writer.saveCheckpoint({
      step: this.step,
      tensors,
      engineState: state,
      reason,
    });
    this.lastCheckpointAt = this.now();
    this.lastCheckpointStep = info.step;
    this.emit({ type: 'checkpoint', info });
  }

  /** Runs until `config.totalSteps`, a pause or a stop. Errors propagate (the store stays consistent). */
  async run(): Promise<SessionEnd> {
    const { writer, policy, tokenizer, verifier, trainable } = this.deps;
    const meta = await writer.meta();
    const config = meta.config;
    const resume = await writer.resume();
    for (const w of resume.warnings) this.emit({ type: 'log', level: 'warn', message: w });
    const runnerDeps = {
      policy,
      referencePolicy: this.deps.referencePolicy,
      tokenizer,
      verifier,
      config,
      onProgress: (progress: RunnerProgress) => this.emit({ type: 'phase', progress }),
      evalExpressions: runEvalExpressions(config),
    };
    if (resume.checkpoint) {
      await trainable.load(resume.checkpoint.tensors, resume.checkpoint.engineState);
      this.emit({
        type: 'log',
        level: 'info',
        message: `resumed from the checkpoint at step ${resume.step}`,
      });
    } else {
      await trainable.reset(config.seed);
    }
    this.runner = resume.state ? Runner.fromState(runnerDeps, resume.state) : new Runner(runnerDeps);
    const runner = this.runner;
    await writer.setStatus('running');
    this.lastCheckpointAt = this.now();

    if (config.mode === 'azr' && !runner.seeded && this.deps.seedSet) {
      const set = this.deps.seedSet;
      const byType: Record<TaskType, TaskEntry[]> = { ded: [], abd: [], ind: [] };
      for (const e of set.entries) byType[e.type].push(e);
      // A seed set holds the triplets once (as ded) plus the induction tasks: spec 4.8 initialises both
      // D_ded and D_abd from the same triplets.
      if (byType.abd.length === 0) byType.abd = byType.ded.map((e) => ({ ...e, type: 'abd' as const }));
      runner.importSeedSet(byType, { fromZeroDataRun: set.source.zeroData });
      this.emit({
        type: 'log',
        level: 'info',
        message: `seeded from an imported seed set of ${set.entries.length} tasks (run ${set.source.runId})`,
      });
      await writer.commitSeeding({ state: runner.getState(), samples: [] });
      await this.checkpoint('seeded');
    } else if (config.mode === 'azr' && !runner.seeded) {
      const seed = await runner.seed();
      for (const line of seed.log) this.emit({ type: 'log', level: 'info', message: line });
      this.emit({ type: 'samples', records: seed.generations });
      await writer.commitSeeding({ state: runner.getState(), samples: seed.generations });
      await this.checkpoint('seeded');
    }
    if (runner.step === 0 && hasConfiguredEvals(config) && !(await this.hasEval(0))) {
      await this.evalNow(0);
    }

    let stopRule = false;
    while (runner.step < config.totalSteps && this.control === 'run' && !stopRule) {
      const t0 = this.now();
      const result = await runner.runStep();
      this.emit({ type: 'samples', records: result.generations });
      const evalDue =
        config.evalEvery > 0 && result.step % config.evalEvery === 0 && hasConfiguredEvals(config);
      if (evalDue) this.emit({ type: 'phase', progress: { step: result.step, phase: 'evaluating' } });
      const evals = evalDue ? await runConfiguredEvals(policy, tokenizer, config) : [];
      await writer.commitStep({
        step: result.step,
        metrics: result.metrics,
        samples: result.generations,
        state: runner.getState(),
        evals,
      });
      this.emit({ type: 'step', result, wallMs: this.now() - t0 });
      for (const row of evals) this.emitEval({ ...row, step: result.step });
      const reached = imitationStopReached(config, evals);
      if (reached !== null) {
        stopRule = true;
        this.emit({
          type: 'log',
          level: 'info',
          message: `stopping rule: ${config.imitationStopSet} raw accuracy ${(reached * 100).toFixed(1)}% ≥ ${(config.imitationStopAccuracy * 100).toFixed(1)}% at step ${result.step}`,
        });
      }

      const byTimer =
        config.checkpointEverySeconds > 0 &&
        this.now() - this.lastCheckpointAt >= config.checkpointEverySeconds * 1000;
      const bySteps = config.checkpointEverySteps > 0 && result.step % config.checkpointEverySteps === 0;
      if (this.hiddenCheckpoint || byTimer || bySteps) {
        await this.checkpoint(this.hiddenCheckpoint ? 'hidden' : bySteps ? 'steps' : 'timer');
        this.hiddenCheckpoint = false;
      }
    }

    const end: SessionEnd =
      runner.step >= config.totalSteps || stopRule
        ? 'finished'
        : this.control === 'stop'
          ? 'stopped'
          : 'paused';
    if (this.lastCheckpointStep !== runner.step) await this.checkpoint(end === 'paused' ? 'pause' : 'stop');
    await writer.setStatus(end);
    return end;
  }

  private async hasEval(step: number): Promise<boolean> {
    return (await this.deps.writer.evals()).some((e) => e.step === step);
  }

  private emitEval(row: EvalRow): void {
    const { set, mode } = parseEvalName(row.name);
    this.emit({ type: 'eval', row, set, mode, report: row.result as unknown as EvalReport });
  }

  /** Evaluates the current weights now and records the result at the committed step. */
  async evalNow(step: number): Promise<void> {
    this.emit({ type: 'phase', progress: { step, phase: 'evaluating' } });
    const meta = await this.deps.writer.meta();
    const rows = await runConfiguredEvals(this.deps.policy, this.deps.tokenizer, meta.config);
    for (const r of rows) {
      const row = { ...r, step };
      await this.deps.writer.commitEval(row);
      this.emitEval(row);
    }
  }
}
