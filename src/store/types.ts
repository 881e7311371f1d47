// The store's one interface (DESIGN.md "Data and files"), implemented by IndexedDB (idb-store.ts) and by
// a run folder in Node (node-run-store.ts), with one RunWriter for both (run-writer.ts). A step's results are committed all-or-nothing; a run
// resumes from its last valid checkpoint and everything recorded after that checkpoint's step is
// rolled back in the same commit, so weights, optimizer state, buffers and history always agree.
import type { RunConfig } from '../config.ts';
import type { GenerationRecord, StepMetrics } from '../selfplay/types.ts';
import type { RunnerState } from '../selfplay/types.ts';
import type { TaskEntry, TaskType } from '../selfplay/types.ts';
import type { ModelIdentity } from '../model/model-folder.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The base model a run trains (model-folder.ts's identity): enough to refuse resuming on other weights. */
export type { ModelIdentity };

export type RunStatus = 'created' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed';

export interface NewRun {
  config: RunConfig;
  model: ModelIdentity;
  /** TabZero's version (package.json) that created the run. */
  tabzeroVersion: string;
  /** The run's prompt templates, carried by every export (spec 4.4). */
  templates?: Record<string, string>;
  /** A person's name for the run (the id when absent). */
  name?: string;
  /** The preset the config started from. */
  preset?: string;
  /** Where the base model was loaded from, when the CLI trains (`--model`: tiny, workshop or a folder). */
  modelPath?: string;
}

/** What every reader sees of a run (run.json in Node, the `runs` record in IndexedDB). */
export interface RunMeta {
  formatVersion: number;
  id: string;
  createdAt: string;
  updatedAt: string;
  config: RunConfig;
  /** The run's seed (= config.seed), recorded on its own for identity. */
  seed: number;
  model: ModelIdentity;
  tabzeroVersion: string;
  templates: Record<string, string>;
  name: string;
  preset: string;
  status: RunStatus;
  statusMessage: string | null;
  /** Last committed step; 0 before step 1 (seeding, if done, is part of step 0). */
  step: number;
  seeded: boolean;
  notZeroData: boolean;
  /** Where the base model was loaded from (runs the CLI created); exports find it there. */
  modelPath?: string;
}

/** One line of steps.jsonl: the 1-based step and its metrics. */
export interface StepRow {
  step: number;
  metrics: StepMetrics;
}

/** A generation (sample table row) with its index within its step. */
export type SampleRow = GenerationRecord & { i: number };

/** One eval result, e.g. `arith_eval_200` in raw mode on the weights of `step`. */
export interface EvalRow {
  step: number;
  /** Unique within a step (e.g. `arith_eval_200:raw`); recording the same name again replaces it. */
  name: string;
  result: JsonValue;
  time: string;
}

export type BufferSnapshot = Record<TaskType, TaskEntry[]>;

/** A seed set (spec 4.8) as stored in seed.jsonl and exported/imported on its own. */
export interface SeedSet {
  /** The run it came from, its model and whether it was zero-data (imported sets make a run "not zero-data"). */
  source: { runId: string; model: ModelIdentity; zeroData: boolean; createdAt: string };
  entries: TaskEntry[];
}

export interface SeedingCommit {
  /** Runner state after seeding (step 0, seeded, buffers filled). */
  state: RunnerState;
  samples: GenerationRecord[];
  /** The seed set; default: the seed entries of the ded and ind buffers. */
  seedSet?: TaskEntry[];
}

export interface StepCommit {
  /** Must be the committed step + 1. */
  step: number;
  metrics: StepMetrics;
  samples: GenerationRecord[];
  /** Runner state after the step, buffers included (the store keeps the buffers as a snapshot). */
  state: RunnerState;
  /** Evals on this step's weights, committed with it. */
  evals?: { name: string; result: JsonValue; time?: string }[];
}

export interface CheckpointTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export type CheckpointReason = 'timer' | 'steps' | 'pause' | 'stop' | 'hidden' | 'seeded' | 'manual';

export interface CheckpointInput {
  /** Must be the committed step: a checkpoint is taken at a step boundary, after commitStep. */
  step: number;
  /** LoRA (or full) weights and AdamW moments as named f32 tensors. */
  tensors: CheckpointTensor[];
  /** Engine-side state that is not a tensor (AdamW step count, sampling RNG, LoRA config...). */
  engineState?: JsonValue;
  reason: CheckpointReason;
}

export interface CheckpointInfo {
  formatVersion: number;
  runId: string;
  step: number;
  createdAt: string;
  reason: CheckpointReason;
  model: ModelIdentity;
  seed: number;
  /** safetensors bytes of the tensors, and their SHA-256 (hex), recorded at write. */
  weightsBytes: number;
  weightsSha256: string;
  /** The JSON state file (runner state incl. buffers, engine state): length and SHA-256. */
  stateBytes: number;
  stateSha256: string;
}

/** What a checkpoint's state file holds. */
export interface CheckpointState {
  runnerState: RunnerState | null;
  engineState: JsonValue;
}

export interface LoadedCheckpoint {
  info: CheckpointInfo;
  tensors: CheckpointTensor[];
  runnerState: RunnerState | null;
  engineState: JsonValue;
}

/** A checkpoint as bytes, verified or about to be (exports, imports). */
export interface CheckpointBlob {
  info: CheckpointInfo;
  /** safetensors file. */
  weights: Uint8Array;
  /** JSON of CheckpointState. */
  state: Uint8Array;
}

export interface ResumePoint {
  /** The run's step after the rollback (= the checkpoint's step; 0 without a checkpoint). */
  step: number;
  /** null: no valid checkpoint, the run was rolled back to its creation (start from the base weights). */
  checkpoint: LoadedCheckpoint | null;
  /** Runner state to continue from (the checkpoint's); null to start fresh. */
  state: RunnerState | null;
  /** E.g. "checkpoint at step 12 is corrupt (...); using step 10". Show them to the user. */
  warnings: string[];
  /** What the rollback removed. */
  removed: { steps: number; samples: number; evals: number; checkpoints: number };
}

/** Everything a run holds, for the archive and for moving a run between backends. */
export interface RunExport {
  meta: RunMeta;
  /** Committed runner state, buffers included (null before anything was committed). */
  state: RunnerState | null;
  steps: StepRow[];
  samples: SampleRow[];
  evals: EvalRow[];
  seedSet: SeedSet | null;
  /** The latest valid checkpoint. */
  checkpoint: CheckpointBlob | null;
}

export interface StorageReport {
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
}

export interface RunReader {
  readonly id: string;
  meta(): Promise<RunMeta>;
  /** Committed runner state with buffers (null before seeding / step 1). */
  state(): Promise<RunnerState | null>;
  steps(): Promise<StepRow[]>;
  /** All samples, or those of one step. */
  samples(step?: number): Promise<SampleRow[]>;
  evals(): Promise<EvalRow[]>;
  buffers(): Promise<BufferSnapshot>;
  seedSet(): Promise<SeedSet | null>;
  /** Checkpoints present (not verified), oldest first. */
  checkpoints(): Promise<CheckpointInfo[]>;
  /** Loads and verifies one checkpoint (CorruptDataError when it fails its hash). */
  loadCheckpoint(step: number): Promise<LoadedCheckpoint>;
  /** Everything, with the latest valid checkpoint. */
  exportData(): Promise<RunExport>;
}

export interface RunWriter extends RunReader {
  /** Seeding's results, as part of step 0 (buffers, seed set, seeding generations). */
  commitSeeding(c: SeedingCommit): Promise<void>;
  /** One step's results, all or nothing. StoreFullError when storage is full (nothing written). */
  commitStep(c: StepCommit): Promise<void>;
  /** An eval on the current (committed) weights, or an earlier step's. */
  commitEval(row: EvalRow): Promise<void>;
  setStatus(status: RunStatus, message?: string | null): Promise<void>;
  /** Saves a checkpoint at the committed step and keeps the last `config.keepLastCheckpoints`. */
  saveCheckpoint(c: CheckpointInput): Promise<CheckpointInfo>;
  /**
   * Loads the latest valid checkpoint (falling back past corrupt ones, with a warning) and rolls back
   * everything recorded after its step, in one commit.
   */
  resume(): Promise<ResumePoint>;
  /** Releases the writer lock. */
  close(): Promise<void>;
}

export interface RunStore {
  readonly backend: 'indexeddb' | 'files';
  /** A new run; `id` is a run id (IndexedDB) or a folder (Node, relative to the store's root). */
  createRun(id: string, init: NewRun): Promise<RunWriter>;
  /** The one writer of a run (RunLockedError when another tab or process has it). */
  openRun(id: string): Promise<RunWriter>;
  /** A read-only view of the committed state; takes no lock. */
  readRun(id: string): Promise<RunReader>;
  listRuns(): Promise<RunMeta[]>;
  deleteRun(id: string): Promise<void>;
  /** Writes a whole run (from an archive or another backend) under `id`, which must not exist. */
  importRun(id: string, data: RunExport): Promise<RunMeta>;
  close(): Promise<void>;
}
