// The typed API of workers/trainer.worker.ts (comlink) and the events it sends: the single source of
// truth for messages between the UI and the worker that owns the GPU device. Types only.
import type { EvalFileSet, RunConfig, EvalSetName } from './config.ts';
import type { AdapterReport } from './engine/gpu.ts';
import type { GenerationRecord, RunnerPhase, StepMetrics } from './selfplay/types.ts';
import type { EvalMode, EvalReport } from './selfplay/evaluate.ts';
import type { Comparison, XAxis } from './experiments/compare.ts';
import type { CurveSet } from './experiments/curves.ts';
import type { TaskEntry, TaskType } from './selfplay/types.ts';
import type { PromptParity } from './onnx/parity.ts';
import type { DecodeTiming } from './onnx/speed.ts';
import type { RunStatus } from './store/types.ts';

/** What the GPU panel shows: the adapter the worker's device came from, or why there is none. */
export type GpuStatus = { ok: true; report: AdapterReport } | { ok: false; error: string; help: string };

export interface GpuRequest {
  /** Ask for a compatibility-mode adapter (WebGPU compat: GL / D3D11). */
  compatibility?: boolean;
}

/** Result of the in-worker matmul self-test (the first real kernel, checked against the reference). */
export interface MatmulCheck {
  M: number;
  N: number;
  K: number;
  maxAbsError: number;
  /** GPU wall time of the dispatch, including the readback. */
  ms: number;
}

// ---- models ---------------------------------------------------------------------------------------

export type ModelChoice =
  /** Generated in place (no download): `tabzero tiny-model` defaults with this seed (0 = the built-in one). */
  | { kind: 'tiny'; seed?: number }
  /** The shipped workshop model, served by the app's own origin (public/models/tabzero-workshop). */
  | { kind: 'workshop' }
  /** A Hugging Face repo (or a mirror: `endpoint`, e.g. a classroom's `tabzero serve-model`). Cached in OPFS. */
  | { kind: 'hub'; repo: string; revision?: string; endpoint?: string }
  /** Files chosen in a picker or dropped as a folder (config.json, model.safetensors, tokenizer files). */
  | { kind: 'files'; files: File[] };

export interface ModelInfo {
  /** `repo@revision` or `tiny-seed-N` or `local:<name>`. */
  id: string;
  repo: string;
  revision: string;
  sha256: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  parameters: number;
  /** dtype of the file, and the dtype the engine runs the weights in. */
  fileDtype: string;
  runDtype: 'f32' | 'f16';
  weightBytes: number;
}

export interface CachedModel {
  repo: string;
  revision: string;
  bytes: number;
  complete: boolean;
}

/** GPU memory, in bytes, for a model and run config (estimate before, measured after loading). */
/** The parts of a run's training state (f32 bytes); `training` is their sum. */
export interface TrainingMemory {
  /** Trainable tensors beside the weights: the LoRA A and B (0 for full fine-tuning: the weights train in place). */
  parameters: number;
  gradients: number;
  /** AdamW's first moment. */
  adamM: number;
  /** AdamW's second moment. */
  adamV: number;
  /** Each layer's input per micro-batch token, kept for the backward's recomputation. */
  savedInputs: number;
  /** Full fine-tuning with klBeta > 0: the frozen copy of the base model the KL is taken against. */
  klReference: number;
}

export interface MemoryReport {
  weights: number;
  kvCache: number;
  activations: number;
  training: number;
  /** The estimate's itemised training state (a measured report books it as one figure). */
  trainingParts?: TrainingMemory;
  scratch: number;
  total: number;
  /** The adapter's largest buffer / binding, for the "will it fit" warning. */
  maxBufferSize: number;
  fits: boolean;
  note?: string;
}

// ---- runs -----------------------------------------------------------------------------------------

/**
 * A run's status as the page shows it: the store's words (created, running, paused, stopped, finished,
 * failed), plus 'seeding' while a session seeds, and 'interrupted' for a run stored as running that no
 * session here runs (a closed tab, a killed browser): it stopped at its last committed step and resumes.
 */
export type RunSummaryStatus = RunStatus | 'seeding' | 'interrupted';

export interface RunSummary {
  id: string;
  name: string;
  status: RunSummaryStatus;
  /** Last committed step (0 before the first). */
  step: number;
  totalSteps: number;
  preset: string;
  config: RunConfig;
  model: { repo: string; revision: string; sha256: string };
  createdAt: string;
  updatedAt: string;
  /** Seeded from templates or an imported seed file. */
  notZeroData: boolean;
  /** Bytes of its checkpoints (weights and optimizer state), as listed; 0 where not known. */
  bytesUsed: number;
  error?: string;
}

export interface EvalRecord {
  runId: string;
  /** Absent in stored records: the engine. */
  backend?: EvalBackend;
  /** The step whose weights were evaluated (0 = the base model). */
  step: number;
  /** A built-in set's name, or the name of your own eval file. */
  set: string;
  mode: EvalMode;
  limit: number;
  report: EvalReport;
  at: string;
}

export interface CheckpointSummary {
  step: number;
  bytes: number;
  at: string;
  reason: 'timer' | 'pause' | 'stop' | 'hidden' | 'steps' | 'manual';
}

export interface SampleFilter {
  step?: number;
  type?: TaskType;
  role?: 'propose' | 'solve';
  kind?: GenerationRecord['kind'];
  minReward?: number;
  maxReward?: number;
  valid?: boolean;
  offset?: number;
  limit?: number;
}

/** Who runs an eval: the WebGPU engine, or onnxruntime-web's WASM backend on an ONNX export. */
export type EvalBackend = 'engine' | 'onnx';

export interface EvalRequest {
  /** Evaluate this run's weights (current, or a checkpoint's); without it, the base model. */
  runId?: string;
  checkpointStep?: number;
  /** A built-in set, or your own eval file's items (parsed on the page by selfplay/eval-file.ts). */
  set: EvalSetName | EvalFileSet;
  mode: EvalMode;
  /** First N items only (0 = all). */
  limit?: number;
  /** Default: the engine. The ONNX backend reuses the export of the last ONNX check of the same weights. */
  backend?: EvalBackend;
  /** ONNX backend: the export's precision (default auto, as in the ONNX check). */
  onnxVariant?: OnnxVariantChoice;
}

// ---- ONNX Runtime bridge (issue 9) ------------------------------------------------------------------

/** auto: fp32 while it fits onnxruntime-web comfortably (ONNX_CHECK_DEFAULTS.fp32MaxBytes), else fp16. */
export type OnnxVariantChoice = 'auto' | 'fp32' | 'fp16';

/** "Check against ONNX Runtime": the loaded weights exported to ONNX in memory, vs the engine. */
export interface OnnxCheckRequest {
  /** This run's weights (its latest checkpoint, or `checkpointStep`'s), merged; without it, the base. */
  runId?: string;
  checkpointStep?: number;
  variant?: OnnxVariantChoice;
  /** The user's own prompts, each rendered as a user message with the chat template; default: eval-set prompts. */
  prompts?: string[];
  /** Greedy tokens per prompt (default ONNX_CHECK_DEFAULTS.maxNewTokens). */
  maxNewTokens?: number;
}

/** The ONNX export the check and the ONNX eval run on (one at a time, kept while the weights stay). */
export interface OnnxExportInfo {
  variant: 'fp32' | 'fp16';
  /** Why this variant (auto's choice, or the user's). */
  variantReason: string;
  /** Which weights: the base, or the adapter merged in. */
  weights: string;
  runId: string;
  /** The checkpoint step merged in (0 = the base model). */
  step: number;
  modelBytes: number;
  dataBytes: number;
  exportMs: number;
  loadMs: number;
  /** True when this call reused an earlier export of the same weights. */
  reused: boolean;
}

/** One prompt of the check: the parity figures (the engine is the oracle) with its verdict. */
export interface OnnxPromptCheck extends Omit<PromptParity, 'tokens'> {
  /** Eval item id, or "your prompt N". */
  label: string;
  /** The engine's greedy continuation, decoded. */
  completion: string;
  /** Every decidable token agrees and the largest logit difference is within the tolerance. */
  pass: boolean;
}

export interface OnnxCheckReport {
  export: OnnxExportInfo;
  /** The engine's KV-cache precision (an f16 cache is held to the fp16 tolerance). */
  engineKv: 'f32' | 'f16';
  tolerance: number;
  maxNewTokens: number;
  prompts: OnnxPromptCheck[];
  pass: boolean;
  at: string;
}

export interface OnnxProgress {
  phase: 'export' | 'load' | 'prompt' | 'eval';
  done: number;
  total: number;
  message: string;
}

// ---- the bench page: the engine and onnxruntime-web side by side (issue 9) ----------------------------

/** One decode workload, the same on both sides: a prompt, then greedy tokens, batch 1. */
export interface DecodeBenchRequest {
  promptIds: number[];
  /** Decode steps after the prefill (no stop token ends them early). */
  newTokens: number;
}

/** The engine's side of the bench, measured in the trainer worker on the loaded model. */
export interface EngineDecodeBench extends DecodeTiming {
  adapter: string;
  /** The engine's weight and KV-cache precision, and its arithmetic (f16 only where shader-f16 exists). */
  weightDType: string;
  kvDType: 'f32' | 'f16';
  dispatchesPerStep: number;
  readbacksPerStep: number;
  /** The greedy tokens (the ONNX side's should match where the logits are not near-tied). */
  ids: number[];
}

/** The loaded model's weights exported to ONNX in memory, handed to the page (transferred, not copied). */
export interface OnnxExportFiles {
  variant: 'fp32' | 'fp16';
  variantReason: string;
  model: Uint8Array;
  data: Uint8Array;
  exportMs: number;
}

export type ExportFormat = 'hf' | 'peft' | 'jsonl' | 'archive' | 'onnx' | 'seed-set';

/** A file to hand to the user (the UI turns it into a download). Folders come as a zip. */
export interface ExportedFile {
  filename: string;
  blob: Blob;
}

export interface StorageInfo {
  usage: number;
  quota: number;
  persisted: boolean;
}

export interface ChatRequest {
  /** Weights: the base, or a run's current / checkpointed adapter. */
  runId?: string;
  checkpointStep?: number;
  prompt: string;
  maxNew: number;
  temperature: number;
  seed?: number;
}

/** Stored runs side by side (issue 10): the comparison table, the config knobs that differ and the
 * curves to overlay, all on one x axis (steps, or sequences generated: equal generation budget). */
export interface RunComparison {
  runIds: string[];
  /** Legend labels, in run order (run names, made unique). */
  labels: string[];
  xLabel: string;
  comparison: Comparison;
  curves: CurveSet[];
}

// ---- events ---------------------------------------------------------------------------------------

export interface LoadProgress {
  phase: 'download' | 'read' | 'upload' | 'tokenizer' | 'generate';
  file?: string;
  loaded: number;
  total: number;
  /** Bytes per second (downloads). */
  rate?: number;
  etaSeconds?: number;
}

/** The phases of a step as the page and the CLI show them: the runner's, then the session's eval and checkpoint. */
export type RunPhase = RunnerPhase | 'evaluating' | 'checkpointing';

export interface PhaseProgress {
  runId: string;
  step: number;
  phase: RunPhase;
  /** Sequences done / to do in this phase, when known. */
  done?: number;
  total?: number;
  etaSeconds?: number;
  message?: string;
}

/** What happened, and what the person can do about it. */
export interface UserError {
  title: string;
  message: string;
  action: string;
}

export type TrainerEvent =
  | { type: 'device-lost'; reason: string; message: string; recovering: boolean }
  | { type: 'device-recovered'; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'load-progress'; progress: LoadProgress }
  | { type: 'run-status'; run: RunSummary }
  | { type: 'phase'; progress: PhaseProgress }
  | { type: 'step'; runId: string; metrics: StepMetrics; wallMs: number }
  /** Generations as they happen (seeding proposals stream live for workshops). */
  | { type: 'samples'; runId: string; records: GenerationRecord[] }
  | { type: 'eval'; record: EvalRecord }
  | { type: 'checkpoint'; runId: string; checkpoint: CheckpointSummary }
  | { type: 'memory'; memory: MemoryReport }
  | { type: 'onnx-progress'; progress: OnnxProgress }
  | { type: 'error'; runId?: string; error: UserError };

// ---- the API ---------------------------------------------------------------------------------------

export interface TrainerApi {
  /** Acquire (or return) the worker's one GPU device and report it. */
  gpuStatus(req?: GpuRequest): Promise<GpuStatus>;
  /** Run the tiled f32 matmul on the worker's device against the reference, on seeded random inputs. */
  checkMatmul(M: number, N: number, K: number, seed: number): Promise<MatmulCheck>;
  /** Register a callback for events (a comlink proxy on the UI side). */
  subscribe(listener: (event: TrainerEvent) => void): void;

  /** Load a model onto the device (progress arrives as `load-progress` events). */
  loadModel(choice: ModelChoice): Promise<ModelInfo>;
  /** Abort a download in progress (what is downloaded stays cached and resumes later). */
  cancelLoad(): Promise<void>;
  /** Bytes still to download before a hub model loads (0 when cached; HEAD requests; null when offline). */
  modelDownloadSize(repo: string, revision?: string, endpoint?: string): Promise<number | null>;
  listCachedModels(): Promise<CachedModel[]>;
  /** GPU memory a config needs with the loaded model (or the real Qwen2-0.5B shape when none is loaded). */
  memoryEstimate(config: RunConfig): Promise<MemoryReport>;

  listRuns(): Promise<RunSummary[]>;
  createRun(config: RunConfig, name?: string, preset?: string): Promise<RunSummary>;
  /**
   * Start or resume (from the last checkpoint) a run with the loaded model. A seed set file (another
   * run's `seed-set` export, spec 4.8) seeds a run that has not seeded yet instead of proposing.
   */
  startRun(runId: string, seedSet?: Blob): Promise<void>;
  /**
   * Tests only (`?hold=PHASE`, issue 19's kill tests): the next run started holds, forever, the first
   * time it reaches this phase's GPU, verifier or checkpoint work, and logs that it holds there.
   */
  setHoldPoint(phase: RunPhase | null): Promise<void>;
  /** Pause at the next safe point (a checkpoint is taken). */
  pauseRun(): Promise<void>;
  /** Stop at the next safe point (a checkpoint is taken). */
  stopRun(): Promise<void>;
  deleteRun(runId: string): Promise<void>;
  getSteps(runId: string): Promise<StepMetrics[]>;
  getEvals(runId: string): Promise<EvalRecord[]>;
  getSamples(runId: string, filter: SampleFilter): Promise<{ total: number; records: GenerationRecord[] }>;
  getBuffers(runId: string): Promise<Record<TaskType, TaskEntry[]>>;
  /** Engine evals of a run's weights are stored with the run; ONNX evals are returned only. */
  runEval(req: EvalRequest): Promise<EvalRecord>;
  /**
   * Exports the weights to ONNX in memory and runs the same prompts through the engine and onnxruntime-web
   * (WASM, in this worker); progress arrives as `onnx-progress` events. Not while a run trains.
   */
  checkOnnx(req: OnnxCheckRequest): Promise<OnnxCheckReport>;
  /** The bench page's engine side: one greedy decode of `req` on the loaded base model. Not while a run trains. */
  benchDecode(req: DecodeBenchRequest): Promise<EngineDecodeBench>;
  /** The loaded base model exported to ONNX in memory, for the bench page's onnxruntime-web WebGPU side. */
  exportOnnxFiles(variant: OnnxVariantChoice): Promise<OnnxExportFiles>;
  listCheckpoints(runId: string): Promise<CheckpointSummary[]>;
  restoreCheckpoint(runId: string, step: number): Promise<RunSummary>;
  exportRun(runId: string, format: ExportFormat): Promise<ExportedFile>;
  importArchive(file: Blob): Promise<RunSummary>;
  /** Two or more stored runs compared on one x axis (plain data: table, config differences, curves). */
  compareRuns(runIds: string[], x: XAxis): Promise<RunComparison>;
  chat(req: ChatRequest): Promise<string>;
  storageInfo(): Promise<StorageInfo>;
  /** The tab was hidden: checkpoint now (browsers throttle and may discard hidden tabs). */
  tabHidden(): Promise<void>;
}
