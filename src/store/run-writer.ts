// The one RunWriter of both backends. It keeps the rules: one call at a time in call order, what each
// call must be given (the next step, a checkpoint at the committed step, unique buffer ids), which
// checkpoints to prune, what a resume rolls back to; and it turns each call into a RunChange, a
// backend-neutral description of one commit. A backend (IndexedDB: idb-store.ts, a run folder:
// node-run-store.ts) only applies changes, each all or nothing, as its own storage allows. Browser-safe.
import { withAddedKnobDefaults, type RunConfig } from '../config.ts';
import { encodeCheckpoint } from './checkpoint-codec.ts';
import { StoreError } from './errors.ts';
import { RUN_FORMAT_VERSION, isJsonObject, nowIso } from './format.ts';
import { chooseCheckpoint, checkCheckpointStep, checkNextStep } from './resume-plan.ts';
import {
  checkBufferIds,
  emptyBuffers,
  joinState,
  seedEntriesOf,
  splitState,
  type RunnerStateRest,
} from './run-state.ts';
import type {
  BufferSnapshot,
  CheckpointBlob,
  CheckpointInfo,
  CheckpointInput,
  EvalRow,
  NewRun,
  ResumePoint,
  RunExport,
  RunMeta,
  RunReader,
  RunStatus,
  RunWriter,
  SampleRow,
  SeedingCommit,
  SeedSet,
  StepCommit,
  StepRow,
} from './types.ts';

/** A run's committed head: its metadata and the runner state without the buffers. */
export interface RunHead extends RunMeta {
  runState: RunnerStateRest | null;
}

/** One commit, all or nothing. Absent parts are unchanged. */
export interface RunChange {
  /** What is saved, for messages: "step 3", "the rollback to step 2". */
  what: string;
  /** The run's head after the commit. */
  head: RunHead;
  /** Rows to add. */
  steps?: StepRow[];
  samples?: SampleRow[];
  evals?: EvalRow[];
  /** The buffers after the commit; null: no buffers (no runner state). */
  buffers?: BufferSnapshot | null;
  /** The seed set after the commit; null: none. */
  seedSet?: SeedSet | null;
  /** Rollback: the step, sample and eval rows past this step are removed (-1: all of them). */
  cutAfter?: number;
  /** Checkpoints to remove with the rollback (corrupt ones, ones past the committed step). */
  dropCheckpoints?: number[];
  /** A checkpoint that comes with the commit (an imported run's). */
  checkpoint?: CheckpointBlob;
}

/** How many rows a rollback removed. */
export type RemovedRows = Omit<ResumePoint['removed'], 'checkpoints'>;

export const NO_ROWS_REMOVED: Readonly<RemovedRows> = Object.freeze({ steps: 0, samples: 0, evals: 0 });

/** What a backend does for the writer. */
export interface RunApplier {
  /** The run in messages: `run "a"`, `run /runs/a`. */
  readonly label: string;
  /** Set when a commit is durable but what follows it failed: the writer must be reopened. */
  readonly broken?: string | null;
  /** Applies `change` all or nothing (StoreFullError when storage is full: nothing of it kept). */
  apply(change: RunChange): Promise<RemovedRows>;
  /** Steps of the checkpoints present, ascending (not verified). */
  checkpointSteps(): Promise<number[]>;
  /** Stores `blob` and then removes the checkpoints at `prune`: a failed save removes none. */
  saveCheckpoint(blob: CheckpointBlob, prune: number[], what: string): Promise<CheckpointInfo>;
  /** Releases the writer lock. */
  close(): Promise<void>;
}

/** The head of a new run. */
export function newRunHead(id: string, init: NewRun): RunHead {
  const now = nowIso();
  return {
    formatVersion: RUN_FORMAT_VERSION,
    id,
    createdAt: now,
    updatedAt: now,
    config: init.config,
    seed: init.config.seed,
    model: init.model,
    tabzeroVersion: init.tabzeroVersion,
    templates: init.templates ?? {},
    name: init.name ?? id,
    preset: init.preset ?? '',
    status: 'created',
    statusMessage: null,
    step: 0,
    seeded: false,
    notZeroData: false,
    ...(init.modelPath ? { modelPath: init.modelPath } : {}),
    runState: null,
  };
}

/**
 * The fields of a run's head (a parsed run.json, an IndexedDB record, an archive's run.json) that the
 * store and its readers rely on and that are missing or of the wrong type, in field order; [] when none.
 */
export function runHeadProblems(value: Record<string, unknown>): string[] {
  const bad: string[] = [];
  const m = value.model;
  const step = value.step;
  if (typeof value.id !== 'string') bad.push('id');
  if (!isJsonObject(value.config)) bad.push('config');
  if (
    !isJsonObject(m) ||
    typeof m.repo !== 'string' ||
    typeof m.revision !== 'string' ||
    typeof m.sha256 !== 'string'
  )
    bad.push('model');
  if (typeof value.status !== 'string') bad.push('status');
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) bad.push('step');
  if (typeof value.seeded !== 'boolean') bad.push('seeded');
  if (value.modelPath !== undefined && typeof value.modelPath !== 'string') bad.push('modelPath');
  if (value.runState !== null && !isJsonObject(value.runState)) bad.push('runState');
  return bad;
}

/**
 * A checked run head as this TabZero reads it: a run written before some knobs existed gets their
 * defaults, which do what it ran with (config.ts withAddedKnobDefaults). Mutates and returns `value`.
 */
export function upgradeRunHead<T extends { config: RunConfig }>(value: T): T {
  value.config = withAddedKnobDefaults(value.config);
  return value;
}

/** The commit that writes an exported run (archive, other backend) as run `id` of a new, empty run. */
export function importChange(id: string, data: RunExport, what: string): RunChange {
  const split = data.state ? splitState(data.state) : null;
  const ck = data.checkpoint;
  return {
    what,
    head: {
      ...newRunHead(id, data.meta),
      ...data.meta,
      formatVersion: RUN_FORMAT_VERSION,
      id,
      updatedAt: nowIso(),
      runState: split?.rest ?? null,
    },
    steps: data.steps,
    samples: data.samples,
    evals: data.evals,
    buffers: split?.buffers ?? null,
    seedSet: data.seedSet,
    ...(ck ? { checkpoint: { ...ck, info: { ...ck.info, runId: id } } } : {}),
  };
}

/** The writer: reads go to `reader` (which sees what `applier` committed), writes become RunChanges. */
export class StoreRunWriter implements RunWriter {
  readonly id: string;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly reader: RunReader,
    private readonly applier: RunApplier,
    /** The committed head and buffers. */
    private head: RunHead,
    private committedBuffers: BufferSnapshot,
  ) {
    this.id = reader.id;
  }

  meta = () => this.reader.meta();
  state = () => this.reader.state();
  steps = () => this.reader.steps();
  samples = (step?: number) => this.reader.samples(step);
  evals = () => this.reader.evals();
  buffers = () => this.reader.buffers();
  seedSet = () => this.reader.seedSet();
  checkpoints = () => this.reader.checkpoints();
  loadCheckpoint = (step: number) => this.reader.loadCheckpoint(step);
  exportData = () => this.reader.exportData();

  /** One operation at a time, in call order; a failed one does not stop those after it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      const { label, broken } = this.applier;
      if (this.closed) throw new StoreError(`${label} is closed`);
      if (broken) throw new StoreError(`${label}: ${broken}; reopen the run`);
      return fn();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async apply(change: RunChange): Promise<RemovedRows> {
    if (change.buffers) checkBufferIds(change.buffers);
    const removed = await this.applier.apply(change);
    this.head = change.head;
    if (change.buffers !== undefined) this.committedBuffers = change.buffers ?? emptyBuffers();
    return removed;
  }

  commitSeeding(c: SeedingCommit): Promise<void> {
    return this.serial(async () => {
      const prev = this.head;
      if (prev.step !== 0)
        throw new Error(`commitSeeding: the run is at step ${prev.step}; seeding belongs to step 0`);
      const { rest, buffers } = splitState(c.state);
      const now = nowIso();
      await this.apply({
        what: 'the seeding results',
        head: { ...prev, updatedAt: now, seeded: true, notZeroData: c.state.notZeroData, runState: rest },
        samples: c.samples.map((s, i) => ({ ...s, step: 0, i })),
        buffers,
        seedSet: {
          source: { runId: prev.id, model: prev.model, zeroData: !c.state.notZeroData, createdAt: now },
          entries: c.seedSet ?? seedEntriesOf(buffers),
        },
      });
    });
  }

  commitStep(c: StepCommit): Promise<void> {
    return this.serial(async () => {
      const prev = this.head;
      checkNextStep(c.step, prev.step, c.state.step);
      const { rest, buffers } = splitState(c.state);
      const time = nowIso();
      await this.apply({
        what: `step ${c.step}`,
        head: { ...prev, updatedAt: time, step: c.step, notZeroData: c.state.notZeroData, runState: rest },
        steps: [{ step: c.step, metrics: c.metrics }],
        samples: c.samples.map((s, i) => ({ ...s, step: c.step, i })),
        evals: (c.evals ?? []).map((e) => ({ ...e, step: c.step, time: e.time ?? time })),
        buffers,
      });
    });
  }

  commitEval(row: EvalRow): Promise<void> {
    return this.serial(async () => {
      const prev = this.head;
      if (row.step > prev.step)
        throw new Error(`commitEval: step ${row.step} is past the committed step ${prev.step}`);
      await this.apply({
        what: `the eval ${row.name} at step ${row.step}`,
        head: { ...prev, updatedAt: nowIso() },
        evals: [row],
      });
    });
  }

  setStatus(status: RunStatus, message: string | null = null): Promise<void> {
    return this.serial(async () => {
      const head = { ...this.head, status, statusMessage: message, updatedAt: nowIso() };
      await this.apply({ what: `the run's status`, head });
    });
  }

  /** Saves at the committed step, then prunes to the newest `keepLastCheckpoints` (at least one). */
  saveCheckpoint(c: CheckpointInput): Promise<CheckpointInfo> {
    return this.serial(async () => {
      const head = this.head;
      checkCheckpointStep(c.step, head.step);
      const blob = await encodeCheckpoint(head, c, joinState(head.runState, this.committedBuffers));
      const keep = Math.max(1, head.config.keepLastCheckpoints);
      const steps = [...new Set([...(await this.applier.checkpointSteps()), c.step])].sort((a, b) => a - b);
      const prune = steps.slice(0, Math.max(0, steps.length - keep));
      return this.applier.saveCheckpoint(blob, prune, `the checkpoint at step ${c.step}`);
    });
  }

  /**
   * Rolls back to the latest valid checkpoint: rows past its step go, the buffers are its own; without
   * a checkpoint nothing survives, seeding included.
   */
  resume(): Promise<ResumePoint> {
    return this.serial(async () => {
      const prev = this.head;
      const choice = await chooseCheckpoint(await this.applier.checkpointSteps(), prev.step, (s) =>
        this.reader.loadCheckpoint(s),
      );
      const ck = choice.chosen;
      const target = ck ? ck.info.step : 0;
      const rs = ck?.runnerState ?? null;
      const split = rs ? splitState(rs) : null;
      const seeded = rs?.seeded ?? false;
      const removed = await this.apply({
        what: `the rollback to step ${target}`,
        head: {
          ...prev,
          updatedAt: nowIso(),
          step: target,
          seeded,
          notZeroData: rs?.notZeroData ?? false,
          runState: split?.rest ?? null,
        },
        cutAfter: ck ? target : -1,
        buffers: split?.buffers ?? null,
        ...(seeded ? {} : { seedSet: null }),
        dropCheckpoints: choice.discard,
      });
      return {
        step: target,
        checkpoint: ck,
        state: rs,
        warnings: choice.warnings,
        removed: { ...removed, checkpoints: choice.discard.length },
      };
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      await this.applier.close();
    });
  }
}
