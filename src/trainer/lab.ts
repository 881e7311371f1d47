// The Lab: everything the trainer worker's API does, independent of where it runs. The worker (browser)
// and the tests (Node + Dawn) give it a platform: how to get a GPU device, open a model, store runs and
// start the verifier. It owns the one Engine and at most one training session at a time.
import type { RunConfig } from '../config.ts';
import { ONNX_CHECK_DEFAULTS, resolveConfig } from '../config.ts';
import { DeviceLostError, Engine } from '../engine/engine.ts';
import type { GpuContext } from '../engine/gpu.ts';
import { checkMatmulOnDevice } from '../engine/matmul-check.ts';
import type { DownloadProgress } from '../model/hub-client.ts';
import { loadModelFolder, type LoadedModel } from '../model/model-folder.ts';
import type { ModelSource } from '../model/model-source.ts';
import type { ByteStore } from '../model/byte-store.ts';
import { DEFAULT_HUB_ENDPOINT, hubDownloadSize, storeKey } from '../model/hub-client.ts';
import { parameterCount, parseQwen2Config, qwen2_0_5bConfigJson } from '../model/qwen2-config.ts';
import type { Policy } from '../policy.ts';
import type {
  CachedModel,
  ChatRequest,
  CheckpointInfo,
  EvalRecord,
  EvalRequest,
  ExportedFile,
  ExportFormat,
  GpuRequest,
  GpuStatus,
  LoadProgress,
  MatmulCheck,
  MemoryReport,
  ModelChoice,
  ModelInfo,
  DecodeBenchRequest,
  EngineDecodeBench,
  OnnxCheckReport,
  OnnxExportFiles,
  OnnxCheckRequest,
  OnnxExportInfo,
  OnnxProgress,
  OnnxVariantChoice,
  RunComparison,
  RunStatus,
  RunSummary,
  SampleFilter,
  StorageInfo,
  TrainerEvent,
  UserError,
} from '../protocol.ts';
import { evaluate } from '../selfplay/evaluate.ts';
import { compareRuns, comparisonCurves, loadRunData, xAxisLabel, type XAxis } from '../experiments/index.ts';
import { runPromptTemplates } from '../export/templates.ts';
import { renderPrompt } from '../selfplay/prompts.ts';
import type { GenerationRecord, StepMetrics } from '../selfplay/types.ts';
import type { TaskEntry, TaskType } from '../selfplay/types.ts';
import { createWorkerVerifier, type VerifierWorkerFactory } from '../selfplay/verifier.ts';
import { StoreFullError } from '../store/errors.ts';
import type { CheckpointTensor, RunMeta, RunStore, RunWriter, JsonValue } from '../store/types.ts';
import type { OnnxCausalLM } from '../onnx/runner.ts';
import type { OnnxVariant } from '../onnx/qwen2-graph.ts';
import type { MemoryExport } from './onnx-bridge.ts';
import { encodeCheckpoint } from '../store/checkpoint-codec.ts';
import { encodeSeedSet, parseSeedSet } from '../store/seed-set.ts';
import { ARCHIVE_EXTENSION, readRunArchive, runArchiveBlob } from '../store/archive.ts';
import { blobSink } from '../export/blob-sink.ts';
import { ZipWriter } from '../export/zip-writer.ts';
import { exportRunFolder } from './run-export.ts';
import { checkpointAdapter } from './engine-trainer.ts';
import { blobSource } from '../model/byte-source.ts';
import { engineShapeFor, estimateMemory } from './memory-estimate.ts';
import {
  evalName,
  parseEvalName,
  TrainingSession,
  type SessionEvent,
  type TrainableState,
} from './session.ts';

export const TABZERO_VERSION = '0.1.0';

/** The training half of the engine, bound to one loaded model: Policy.step + checkpointable state. */
export interface Trainer {
  policy: Policy;
  trainable: TrainableState;
  /** The frozen base for the KL term (klBeta > 0); absent where the trainer keeps none (full fine-tuning). */
  referencePolicy?: Pick<Policy, 'logprobs'>;
  /** Run with the adapter disabled (the base model) or enabled. */
  setAdapterEnabled(on: boolean): void;
  dispose(): void;
}

export type TrainerFactory = (engine: Engine, config: RunConfig) => Promise<Trainer>;

export interface LabPlatform {
  acquireDevice(req: GpuRequest): Promise<GpuContext>;
  /** Where hub downloads are kept (OPFS in the browser). */
  modelStore(): ByteStore;
  openModel(
    choice: ModelChoice,
    opts: { onDownload: (p: DownloadProgress) => void; signal: AbortSignal },
  ): Promise<ModelSource>;
  store(): Promise<RunStore>;
  verifierFactory: VerifierWorkerFactory;
  storageInfo(): Promise<StorageInfo>;
  createTrainer: TrainerFactory;
  /** URL prefix of onnxruntime-web's WASM files (the app's `/ort/`); default: beside its module (Node). */
  onnxWasmPaths?: string;
}

/** The weights a call runs with: a run's checkpoint (its adapter), or none (the base model). */
interface WeightsCheckpoint {
  runId: string;
  step: number;
  tensors: CheckpointTensor[];
  engineState: JsonValue;
}

/** The ONNX export of the loaded weights, open in onnxruntime-web: one at a time, reused while they stay. */
interface OnnxState {
  key: string;
  lm: OnnxCausalLM;
  info: Omit<OnnxExportInfo, 'reused'>;
}

interface LoadedState {
  choice: ModelChoice;
  source: ModelSource;
  model: LoadedModel;
  engine: Engine;
  info: ModelInfo;
}

interface ActiveRun {
  runId: string;
  writer: RunWriter;
  session: TrainingSession;
  trainer: Trainer;
  done: Promise<void>;
}

/** The model the app offers first. */
export const DEFAULT_MODEL_REPO = 'Qwen/Qwen2-0.5B-Instruct';

/** The engine's KV-cache shape for the loaded model: enough for every preset's longest sequence. */
const ENGINE_MAX_BATCH = 32;
const ENGINE_MAX_SEQ_LEN = 1024;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A UserError an Error carries (e.g. the ONNX check's memory error), shown as is. */
export function carriedUserError(err: unknown): UserError | null {
  if (!(err instanceof Error) || !('userError' in err)) return null;
  const u = err.userError as Partial<UserError> | null;
  return u && typeof u.title === 'string' && typeof u.message === 'string' && typeof u.action === 'string'
    ? (u as UserError)
    : null;
}

export function userError(err: unknown): UserError {
  const carried = carriedUserError(err);
  if (carried) return carried;
  if (err instanceof StoreFullError)
    return {
      title: 'Storage is full',
      message: err.message,
      action:
        'The run is paused at its last committed step. Delete old runs or export and remove them, then resume.',
    };
  if (err instanceof DeviceLostError)
    return {
      title: 'The GPU device was lost',
      message: err.message,
      action:
        'TabZero re-acquires the device and resumes from the last checkpoint; if this repeats, close other GPU-heavy tabs.',
    };
  const message = errorText(err);
  if (/out of memory|OutOfMemory|allocation/i.test(message))
    return {
      title: 'Out of GPU memory',
      message,
      action: 'Choose a smaller preset (workshop or smoke), a smaller batch, or close other GPU-heavy tabs.',
    };
  return {
    title: 'Something went wrong',
    message,
    action: 'Check the message; the run stays at its last committed step.',
  };
}

export class Lab {
  private ctx: Promise<GpuContext> | null = null;
  private loaded: LoadedState | null = null;
  private active: ActiveRun | null = null;
  private loadAbort: AbortController | null = null;
  private readonly listeners: ((e: TrainerEvent) => void)[] = [];
  private storePromise: Promise<RunStore> | null = null;
  private readonly hubChoices: Extract<ModelChoice, { kind: 'hub' }>[] = [];
  private onnx: OnnxState | null = null;
  /** The tail of the ONNX calls: one at a time, as they share the one open export. */
  private onnxQueue: Promise<unknown> = Promise.resolve();

  constructor(private readonly platform: LabPlatform) {}

  subscribe(listener: (e: TrainerEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(e: TrainerEvent): void {
    for (const l of this.listeners) l(e);
  }

  private store(): Promise<RunStore> {
    this.storePromise ??= this.platform.store();
    return this.storePromise;
  }

  private device(req: GpuRequest = {}): Promise<GpuContext> {
    if (!this.ctx) {
      const ctx = this.platform.acquireDevice(req);
      this.ctx = ctx;
      ctx.then(
        (c) => c.device.lost.then((info) => this.onDeviceLost(c, info)),
        () => (this.ctx = null),
      );
    }
    return this.ctx;
  }

  // ---- GPU --------------------------------------------------------------------------------------

  async gpuStatus(req?: GpuRequest): Promise<GpuStatus> {
    try {
      return { ok: true, report: (await this.device(req)).report };
    } catch (err) {
      return { ok: false, error: errorText(err), help: '' };
    }
  }

  async checkMatmul(M: number, N: number, K: number, seed: number): Promise<MatmulCheck> {
    return checkMatmulOnDevice((await this.device()).device, M, N, K, seed);
  }

  private async onDeviceLost(lostCtx: GpuContext, info: GPUDeviceLostInfo): Promise<void> {
    if (info.reason === 'destroyed') return; // we destroyed it ourselves
    if (this.ctx && (await this.ctx.catch(() => null)) === lostCtx) this.ctx = null;
    const loaded = this.loaded;
    const runId = this.active?.runId ?? null;
    this.emit({
      type: 'device-lost',
      reason: info.reason,
      message: `The GPU device was lost (${info.message || info.reason}).`,
      recovering: loaded !== null,
    });
    if (!loaded) return;
    try {
      if (this.active) await this.active.done.catch(() => undefined);
      this.loaded = null;
      await this.loadModel(loaded.choice);
      this.emit({
        type: 'device-recovered',
        message: 'A new GPU device was acquired and the model reloaded.',
      });
      if (runId) await this.startRun(runId);
    } catch (err) {
      this.emit({ type: 'error', error: userError(err) });
    }
  }

  // ---- models -----------------------------------------------------------------------------------

  private progress(p: LoadProgress): void {
    this.emit({ type: 'load-progress', progress: p });
  }

  async loadModel(choice: ModelChoice): Promise<ModelInfo> {
    if (this.active) throw new Error('A run is training; pause or stop it before loading another model.');
    this.loadAbort?.abort();
    const abort = new AbortController();
    this.loadAbort = abort;
    const ctx = await this.device();
    if (choice.kind === 'tiny') this.progress({ phase: 'generate', loaded: 0, total: 1 });
    if (choice.kind === 'hub') this.hubChoices.push(choice);
    const source = await this.platform.openModel(choice, {
      signal: abort.signal,
      onDownload: (p) =>
        this.progress({
          phase: 'download',
          file: p.file,
          loaded: p.bytes,
          total: p.total ?? 0,
          rate: p.bytesPerSecond,
          etaSeconds: p.etaSeconds ?? undefined,
        }),
    });
    const model = await loadModelFolder(source, {
      onHashProgress: (done, total) =>
        this.progress({ phase: 'read', file: 'model.safetensors', loaded: done, total }),
    });
    const old = this.loaded;
    this.loaded = null;
    await this.releaseOnnx();
    old?.engine.destroy();
    const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
      maxBatch: ENGINE_MAX_BATCH,
      maxSeqLen: Math.min(ENGINE_MAX_SEQ_LEN, model.config.maxPositionEmbeddings),
      onProgress: (done, total, name) => this.progress({ phase: 'upload', file: name, loaded: done, total }),
    });
    const info = modelInfo(model, engine);
    this.loaded = { choice, source, model, engine, info };
    this.emit({ type: 'memory', memory: this.measuredMemory(engine) });
    return info;
  }

  async modelDownloadSize(
    repo: string,
    revision = 'main',
    endpoint = DEFAULT_HUB_ENDPOINT,
  ): Promise<number | null> {
    const size = await hubDownloadSize({ endpoint, repo, revision }, this.platform.modelStore());
    return size?.remaining ?? null;
  }

  /** Hub models in the local cache: the default model and whatever was loaded from the hub this session. */
  async listCachedModels(): Promise<CachedModel[]> {
    const store = this.platform.modelStore();
    const repos = new Map<string, { repo: string; revision: string }>([
      [`${DEFAULT_MODEL_REPO}@main`, { repo: DEFAULT_MODEL_REPO, revision: 'main' }],
    ]);
    for (const c of this.hubChoices)
      repos.set(`${c.repo}@${c.revision ?? 'main'}`, { repo: c.repo, revision: c.revision ?? 'main' });
    const out: CachedModel[] = [];
    for (const { repo, revision } of repos.values()) {
      const key = storeKey({ endpoint: DEFAULT_HUB_ENDPOINT, repo, revision, file: 'model.safetensors' });
      const meta = await store.readMeta(key);
      const bytes = await store.size(key);
      if (meta || bytes) out.push({ repo, revision, bytes: bytes ?? 0, complete: meta?.complete ?? false });
    }
    return out;
  }

  async cancelLoad(): Promise<void> {
    this.loadAbort?.abort();
  }

  private measuredMemory(engine: Engine): MemoryReport {
    const m = engine.memory();
    const maxBufferSize = engine.ctx.report.limits.maxBufferSize;
    return {
      weights: m.weights,
      kvCache: m.kvCache,
      activations: m.activations,
      training: m.lora,
      scratch: m.scratch,
      total: m.total,
      maxBufferSize,
      fits: true,
      note: 'measured: buffers allocated on the device',
    };
  }

  async memoryEstimate(config: RunConfig): Promise<MemoryReport> {
    const ctx = await this.device();
    // Before a model is loaded, estimate for the real Qwen2-0.5B shape (what the app downloads by default).
    const qwen = this.loaded?.model.config ?? parseQwen2Config(qwen2_0_5bConfigJson());
    const bytes = (this.loaded?.engine.weights.dtype ?? 'f16') === 'f32' ? 4 : 2;
    return estimateMemory(qwen, config, engineShapeFor(config, bytes), ctx.report.limits.maxBufferSize);
  }

  private requireModel(): LoadedState {
    if (!this.loaded)
      throw new Error('No model is loaded. Load Qwen2-0.5B-Instruct, local files or the tiny model first.');
    return this.loaded;
  }

  // ---- runs -------------------------------------------------------------------------------------

  async listRuns(): Promise<RunSummary[]> {
    const store = await this.store();
    const metas = await store.listRuns();
    return Promise.all(
      metas.map(async (m) => ({ ...this.summary(m), bytesUsed: await checkpointBytes(store, m.id) })),
    );
  }

  private summary(m: RunMeta): RunSummary {
    // The store's status is the truth once a session ended; a run still marked running with no active
    // session was interrupted (a closed tab, a lost device) and is shown as paused, ready to resume.
    const active = this.active?.runId === m.id;
    const status: RunStatus =
      m.status === 'finished'
        ? 'done'
        : m.status === 'failed'
          ? 'error'
          : m.status === 'running'
            ? active
              ? 'running'
              : 'paused'
            : m.status;
    return {
      id: m.id,
      name: m.name ?? m.id,
      status,
      step: m.step,
      totalSteps: m.config.totalSteps,
      preset: m.preset ?? '',
      config: m.config,
      model: m.model,
      createdAt: m.createdAt,
      updatedAt: m.updatedAt,
      notZeroData: m.notZeroData,
      bytesUsed: 0,
      ...(m.statusMessage ? { error: m.statusMessage } : {}),
    };
  }

  async createRun(config: RunConfig, name?: string, preset = ''): Promise<RunSummary> {
    const { model } = this.requireModel();
    const checked = resolveConfig('browser', config);
    const id = `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.floor(Math.random() * 1e6)}`;
    const writer = await (
      await this.store()
    ).createRun(id, {
      config: checked,
      model: model.identity,
      tabzeroVersion: TABZERO_VERSION,
      templates: runPromptTemplates(checked),
      name: name ?? id,
      preset,
    });
    const meta = await writer.meta();
    await writer.close();
    const s = this.summary(meta);
    this.emit({ type: 'run-status', run: s });
    return s;
  }

  async startRun(runId: string, seedSet?: Blob): Promise<void> {
    if (this.active) throw new Error(`Run ${this.active.runId} is training; pause or stop it first.`);
    const { engine, model } = this.requireModel();
    const store = await this.store();
    const writer = await store.openRun(runId);
    let trainer: Trainer | null = null;
    try {
      const meta = await writer.meta();
      if (meta.model.sha256 !== model.identity.sha256) {
        throw new Error(
          `Run ${runId} was trained on ${meta.model.repo}@${meta.model.revision} (sha256 ${meta.model.sha256.slice(0, 12)}…), ` +
            `but the loaded model is ${model.identity.repo} (sha256 ${model.identity.sha256.slice(0, 12)}…). Load the run's model to resume it.`,
        );
      }
      trainer = await this.platform.createTrainer(engine, meta.config);
      const verifier = createWorkerVerifier(this.platform.verifierFactory, meta.config);
      const session = new TrainingSession({
        writer,
        seedSet: seedSet ? parseSeedSet(await seedSet.text(), 'the seed set file') : undefined,
        policy: trainer.policy,
        referencePolicy: trainer.referencePolicy,
        tokenizer: model.tokenizer,
        verifier,
        trainable: trainer.trainable,
        onEvent: (e) => this.onSessionEvent(runId, e),
      });
      const t = trainer;
      const done = session
        .run()
        .then(async () => {
          this.emit({ type: 'run-status', run: this.summary(await writer.meta()) });
        })
        .catch(async (err) => {
          const error = userError(err);
          if (!(err instanceof DeviceLostError)) {
            await writer
              .setStatus(err instanceof StoreFullError ? 'paused' : 'failed', error.message)
              .catch(() => undefined);
          }
          this.emit({ type: 'error', runId, error });
          this.emit({ type: 'run-status', run: this.summary(await writer.meta()) });
        })
        .finally(async () => {
          verifier.close();
          t.dispose();
          if (this.active?.runId === runId) this.active = null;
          await writer.close();
        });
      this.active = { runId, writer, session, trainer, done };
      this.emit({ type: 'run-status', run: { ...this.summary(meta), status: 'running' } });
    } catch (err) {
      trainer?.dispose();
      await writer.close();
      throw err;
    }
  }

  private onSessionEvent(runId: string, e: SessionEvent): void {
    switch (e.type) {
      case 'phase':
        this.emit({
          type: 'phase',
          progress: { runId, step: e.progress.step, phase: e.progress.phase, message: e.progress.message },
        });
        return;
      case 'step':
        this.emit({ type: 'step', runId, metrics: e.result.metrics, wallMs: e.wallMs });
        return;
      case 'samples':
        this.emit({ type: 'samples', runId, records: e.records });
        return;
      case 'eval':
        this.emit({
          type: 'eval',
          record: {
            runId,
            step: e.row.step,
            set: e.set,
            mode: e.mode,
            limit: e.report.n,
            report: e.report,
            at: e.row.time,
          },
        });
        return;
      case 'checkpoint':
        this.emit({
          type: 'checkpoint',
          runId,
          checkpoint: checkpointInfo(e.info),
        });
        return;
      case 'log':
        this.emit({ type: 'log', level: e.level, message: e.message });
    }
  }

  async pauseRun(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.session.requestPause();
    await a.done;
  }

  async stopRun(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.session.requestStop();
    await a.done;
  }

  async tabHidden(): Promise<void> {
    this.active?.session.requestCheckpoint();
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.active?.runId === runId) throw new Error('This run is training; stop it before deleting it.');
    await (await this.store()).deleteRun(runId);
  }

  async getSteps(runId: string): Promise<StepMetrics[]> {
    return (await (await (await this.store()).readRun(runId)).steps()).map((r) => r.metrics);
  }

  async getEvals(runId: string): Promise<EvalRecord[]> {
    const rows = await (await (await this.store()).readRun(runId)).evals();
    return rows.map((r) => {
      const { set, mode } = parseEvalName(r.name);
      const report = r.result as unknown as EvalRecord['report'];
      return {
        runId,
        step: r.step,
        set,
        mode,
        limit: report.n,
        report,
        at: r.time,
      };
    });
  }

  async getSamples(runId: string, f: SampleFilter): Promise<{ total: number; records: GenerationRecord[] }> {
    const rows = await (await (await this.store()).readRun(runId)).samples(f.step);
    const kept = rows.filter(
      (r) =>
        (f.type === undefined || r.type === f.type) &&
        (f.role === undefined || r.role === f.role) &&
        (f.kind === undefined || r.kind === f.kind) &&
        (f.valid === undefined || r.valid === f.valid) &&
        (f.minReward === undefined || (r.reward ?? -Infinity) >= f.minReward) &&
        (f.maxReward === undefined || (r.reward ?? Infinity) <= f.maxReward),
    );
    const offset = f.offset ?? 0;
    return { total: kept.length, records: kept.slice(offset, offset + (f.limit ?? 200)) };
  }

  async getBuffers(runId: string): Promise<Record<TaskType, TaskEntry[]>> {
    return (await (await this.store()).readRun(runId)).buffers();
  }

  async listCheckpoints(runId: string): Promise<CheckpointInfo[]> {
    return (await (await (await this.store()).readRun(runId)).checkpoints()).map(checkpointInfo);
  }

  /**
   * Continues from an earlier checkpoint without destroying history: a new run holding the history up
   * to that checkpoint's step and the checkpoint itself (named "… from step N").
   */
  async restoreCheckpoint(runId: string, step: number): Promise<RunSummary> {
    const store = await this.store();
    const reader = await store.readRun(runId);
    const data = await reader.exportData();
    const cp = await reader.loadCheckpoint(step);
    const meta = data.meta;
    const blob = await encodeCheckpoint(
      meta,
      { step, tensors: cp.tensors, engineState: cp.engineState, reason: 'manual' },
      cp.runnerState,
    );
    const id = `${runId}-from-${step}-${Date.now().toString(36)}`;
    const name = `${meta.name ?? runId} from step ${step}`;
    const imported = await store.importRun(id, {
      meta: {
        ...meta,
        id,
        step,
        status: 'paused',
        statusMessage: null,
        name,
      },
      state: cp.runnerState,
      steps: data.steps.filter((r) => r.step <= step),
      samples: data.samples.filter((r) => r.step <= step),
      evals: data.evals.filter((r) => r.step <= step),
      seedSet: data.seedSet,
      checkpoint: blob,
    });
    const s = this.summary(imported);
    this.emit({ type: 'run-status', run: s });
    return s;
  }

  /** An export of a run as one file: folders (HF, PEFT, JSONL, ONNX) come as a zip, the archive as a tar. */
  async exportRun(runId: string, format: ExportFormat): Promise<ExportedFile> {
    const reader = await (await this.store()).readRun(runId);
    const meta = await reader.meta();
    const base = `${meta.name ?? runId}`.replace(/[^\w.-]+/g, '_');
    if (format === 'seed-set') {
      const set = await reader.seedSet();
      if (!set) throw new Error(`Run ${runId} has no seed set yet: it is written when seeding finishes.`);
      return {
        filename: `${base}-seed.jsonl`,
        blob: new Blob([encodeSeedSet(set)], { type: 'application/jsonl' }),
      };
    }
    if (format === 'archive') {
      const blob = await runArchiveBlob(await reader.exportData(), `tabzero ${TABZERO_VERSION}`);
      return { filename: `${base}${ARCHIVE_EXTENSION}`, blob };
    }
    const sink = blobSink('application/zip');
    const zip = new ZipWriter(sink, { prefix: `${base}-${format}/` });
    await exportRunFolder(reader, format, zip, {
      base: this.loaded ? { source: this.loaded.source, model: this.loaded.model } : undefined,
      tabzeroVersion: TABZERO_VERSION,
      onProgress: (done, total, name) => this.progress({ phase: 'read', file: name, loaded: done, total }),
    });
    await zip.finish();
    return { filename: `${base}-${format}.zip`, blob: sink.blob() };
  }

  async importArchive(file: Blob): Promise<RunSummary> {
    const store = await this.store();
    const data = await readRunArchive(blobSource(file, 'run archive'));
    const id = `${data.meta.id}-imported-${Date.now().toString(36)}`;
    const meta = await store.importRun(id, { ...data, meta: { ...data.meta, id } });
    const s = this.summary(meta);
    this.emit({ type: 'run-status', run: s });
    return s;
  }

  async compareRuns(runIds: string[], x: XAxis): Promise<RunComparison> {
    if (new Set(runIds).size < 2) throw new Error('Pick two or more different runs to compare.');
    if (x !== 'steps' && x !== 'sequences') throw new Error(`Unknown x axis "${String(x)}".`);
    const store = await this.store();
    const loaded = await Promise.all(
      runIds.map(async (id) => {
        const reader = await store.readRun(id);
        return loadRunData(reader, (await reader.meta()).name ?? id);
      }),
    );
    // Legends need one label per run: imported copies of a run share its name.
    const seen = new Map<string, number>();
    const runs = loaded.map((run) => {
      const n = (seen.get(run.label) ?? 0) + 1;
      seen.set(run.label, n);
      return n === 1 ? run : { ...run, label: `${run.label} (${n})` };
    });
    return {
      runIds: [...runIds],
      labels: runs.map((r) => r.label),
      xLabel: xAxisLabel(x),
      comparison: compareRuns(runs, x),
      curves: comparisonCurves(runs, x),
    };
  }

  async storageInfo(): Promise<StorageInfo> {
    return this.platform.storageInfo();
  }

  // ---- weights for eval and chat ----------------------------------------------------------------

  /**
   * Runs `fn` with the weights a request names: the base (adapter off), or a run's adapter as of a
   * checkpoint (the latest when no step is given). Not while a run trains: one engine, one set of weights.
   */
  private async withWeights<T>(
    req: { runId?: string; checkpointStep?: number },
    fn: (policy: Policy, step: number, checkpoint: WeightsCheckpoint | null) => Promise<T>,
  ): Promise<T> {
    if (this.active)
      throw new Error('A run is training; pause it to evaluate or chat (one GPU, one set of weights).');
    const { engine } = this.requireModel();
    const store = await this.store();
    const config = req.runId
      ? (await (await store.readRun(req.runId)).meta()).config
      : resolveConfig('browser');
    const trainer = await this.platform.createTrainer(engine, config);
    try {
      if (!req.runId) {
        trainer.setAdapterEnabled(false);
        return await fn(trainer.policy, 0, null);
      }
      const reader = await store.readRun(req.runId);
      const cps = await reader.checkpoints();
      const step = req.checkpointStep ?? cps.at(-1)?.step;
      if (step === undefined) {
        trainer.setAdapterEnabled(false);
        return await fn(trainer.policy, 0, null);
      }
      const cp = await reader.loadCheckpoint(step);
      await trainer.trainable.load(cp.tensors, cp.engineState);
      return await fn(trainer.policy, step, {
        runId: req.runId,
        step,
        tensors: cp.tensors,
        engineState: cp.engineState,
      });
    } finally {
      trainer.dispose();
    }
  }

  async runEval(req: EvalRequest): Promise<EvalRecord> {
    const backend = req.backend ?? 'engine';
    if (backend === 'onnx') return this.oneOnnxCallAtATime(() => this.evaluateOn(req, backend));
    if (backend !== 'engine') throw new Error(`Unknown eval backend "${String(backend)}".`);
    return this.evaluateOn(req, backend);
  }

  private async evaluateOn(req: EvalRequest, backend: 'engine' | 'onnx'): Promise<EvalRecord> {
    const { model } = this.requireModel();
    return this.withWeights(req, async (enginePolicy, step, checkpoint) => {
      let policy: Pick<Policy, 'generate'> = enginePolicy;
      if (backend === 'onnx') {
        const bridge = await import('./onnx-bridge.ts');
        const { lm } = await this.onnxFor(checkpoint, req.onnxVariant);
        policy = bridge.onnxEvalPolicy(lm, model.tokenizer, (done, total) =>
          this.onnxProgress('eval', done, total, `Evaluating on ONNX Runtime: item ${done} of ${total}`),
        );
      }
      const { name: setName, items } =
        typeof req.set === 'string' ? { name: req.set, items: req.set } : req.set;
      if (items.length === 0) throw new Error(`${setName}: the eval file has no items`);
      const report = await evaluate(policy, model.tokenizer, items, req.mode, {
        limit: req.limit ?? 0,
        maxNew: req.mode === 'raw' ? 16 : 256,
      });
      const at = new Date().toISOString();
      const record: EvalRecord = {
        runId: req.runId ?? '',
        ...(backend === 'onnx' ? { backend } : {}),
        step,
        set: setName,
        mode: req.mode,
        limit: report.n,
        report,
        at,
      };
      // The run's eval history is the engine's: an ONNX eval checks the runtime, not training progress.
      if (req.runId && backend === 'engine') {
        const writer = await (await this.store()).openRun(req.runId);
        try {
          await writer.commitEval({
            step,
            name: evalName(setName, req.mode),
            result: report as unknown as JsonValue,
            time: at,
          });
        } finally {
          await writer.close();
        }
      }
      // The page charts 'eval' events as the run's history, which is the engine's.
      if (backend === 'engine') this.emit({ type: 'eval', record });
      return record;
    });
  }

  // ---- ONNX Runtime bridge (issue 9) --------------------------------------------------------------

  private onnxProgress(phase: OnnxProgress['phase'], done: number, total: number, message: string): void {
    this.emit({ type: 'onnx-progress', progress: { phase, done, total, message } });
  }

  private oneOnnxCallAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.onnxQueue.then(fn, fn);
    this.onnxQueue = run.catch(() => undefined);
    return run;
  }

  private async releaseOnnx(): Promise<void> {
    const old = this.onnx;
    this.onnx = null;
    await old?.lm.release().catch(() => undefined);
  }

  /**
   * The loaded weights (with `checkpoint`'s adapter merged) exported to ONNX in memory and opened in
   * onnxruntime-web: reused while the model, the checkpoint and the variant stay the same.
   */
  private async onnxFor(
    checkpoint: WeightsCheckpoint | null,
    choice: OnnxVariantChoice | undefined,
  ): Promise<{ lm: OnnxCausalLM; info: OnnxExportInfo }> {
    const { model } = this.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const { variant, reason } = bridge.chooseOnnxVariant(model.config, choice);
    const key = [model.identity.sha256, checkpoint?.runId ?? '', checkpoint?.step ?? 0, variant].join('|');
    if (this.onnx?.key === key) return { lm: this.onnx.lm, info: { ...this.onnx.info, reused: true } };
    await this.releaseOnnx();
    const { exported, weights } = await this.exportOnnxInMemory(variant, checkpoint);
    try {
      this.onnxProgress('load', 0, 1, 'Loading the export into ONNX Runtime (WASM)');
      const started = performance.now();
      const lm = await bridge.openOnnxWasm(exported.files, this.platform.onnxWasmPaths);
      const info = {
        variant,
        variantReason: reason,
        weights,
        runId: checkpoint?.runId ?? '',
        step: checkpoint?.step ?? 0,
        modelBytes: exported.files.model.byteLength,
        dataBytes: exported.files.data.byteLength,
        exportMs: exported.exportMs,
        loadMs: performance.now() - started,
      };
      this.onnxProgress('load', 1, 1, 'Loaded into ONNX Runtime');
      this.onnx = { key, lm, info };
      return { lm, info: { ...info, reused: false } };
    } catch (err) {
      throw bridge.asMemoryError(err, variant, exported.files.data.byteLength);
    }
  }

  /**
   * The loaded model (with `checkpoint`'s adapter merged) exported to ONNX in memory, with progress
   * events; refused up front where it cannot fit, and an allocation failure told as a memory error.
   */
  private async exportOnnxInMemory(
    variant: OnnxVariant,
    checkpoint: WeightsCheckpoint | null,
  ): Promise<{ exported: MemoryExport; weights: string }> {
    const { source, model } = this.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    bridge.checkOnnxFits(model.config, variant);
    const adapter = checkpoint ? checkpointAdapter(checkpoint.tensors, checkpoint.engineState) : null;
    const weights = adapter
      ? `${model.identity.repo} with run ${checkpoint!.runId}'s ${adapter.name} at step ${checkpoint!.step} merged`
      : `${model.identity.repo} (base)`;
    try {
      const exported = await bridge.exportOnnxToMemory(
        source,
        model,
        variant,
        adapter?.lora ?? null,
        checkpoint ? { 'tabzero.run': checkpoint.runId, 'tabzero.step': String(checkpoint.step) } : {},
        (done, total, name) =>
          this.onnxProgress('export', done, total, `Exporting ${variant} to ONNX: ${name}`),
      );
      return { exported, weights };
    } catch (err) {
      throw bridge.asMemoryError(err, variant, bridge.onnxDataBytes(model.config, variant));
    }
  }

  async checkOnnx(req: OnnxCheckRequest): Promise<OnnxCheckReport> {
    return this.oneOnnxCallAtATime(() => this.runOnnxCheck(req));
  }

  private async runOnnxCheck(req: OnnxCheckRequest): Promise<OnnxCheckReport> {
    const { engine, model } = this.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const prompts = bridge.checkPrompts(model.tokenizer, req.prompts);
    const maxNewTokens = req.maxNewTokens ?? ONNX_CHECK_DEFAULTS.maxNewTokens;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
      throw new Error(`The check needs at least 1 new token per prompt, not ${maxNewTokens}.`);
    const maxLen = engine.forward.limits.maxLen;
    const longest = prompts.reduce((m, p) => Math.max(m, p.ids.length), 0);
    if (longest + maxNewTokens > maxLen)
      throw new Error(
        `A prompt of ${longest} tokens plus ${maxNewTokens} new tokens exceeds the engine's ${maxLen} positions: ` +
          'use a shorter prompt or fewer new tokens.',
      );
    return this.withWeights(req, async (_policy, _step, checkpoint) => {
      const { lm, info } = await this.onnxFor(checkpoint, req.variant);
      const engineKv = engine.forward.limits.kvDType;
      const tolerance = bridge.parityTolerance(info.variant, engineKv);
      const results = await bridge.checkPromptsParity(
        engine,
        lm,
        model.tokenizer,
        prompts,
        { maxNewTokens, tolerance },
        (done, total, label) =>
          this.onnxProgress(
            'prompt',
            done,
            total,
            done < total ? `Prompt ${done + 1} of ${total}: ${label}` : 'Done',
          ),
      );
      return {
        export: info,
        engineKv,
        tolerance,
        maxNewTokens,
        prompts: results,
        pass: results.every((p) => p.pass),
        at: new Date().toISOString(),
      };
    });
  }

  // ---- the bench page (issue 9): the engine's side, and the export onnxruntime-web WebGPU runs --------

  /**
   * One greedy decode of the bench workload on the loaded base model, after a short warm-up that compiles
   * the pipelines. Not while a run trains: the bench must have the GPU to itself to mean anything.
   */
  async benchDecode(req: DecodeBenchRequest): Promise<EngineDecodeBench> {
    if (this.active) throw new Error('A run is training; pause it to bench (the GPU is busy).');
    const { engine } = this.requireModel();
    if (req.promptIds.length === 0 || req.newTokens < 1)
      throw new Error('The bench needs a non-empty prompt and at least one new token.');
    const opts = { temperature: 0, seed: 0, stopTokens: [] };
    engine.loraEnabled = false;
    await engine.generate([req.promptIds.slice(0, 4)], { ...opts, maxNew: 2 });
    engine.resetStats();
    // maxNew counts the token the prefill picks: one more than the decode steps.
    const [c] = await engine.generate([req.promptIds], { ...opts, maxNew: req.newTokens + 1 });
    const st = engine.stats;
    const r = engine.ctx.report;
    return {
      adapter: [r.vendor, r.architecture, r.description].filter(Boolean).join(' ') || 'unknown adapter',
      weightDType: engine.weights.dtype,
      kvDType: engine.forward.limits.kvDType,
      promptTokens: req.promptIds.length,
      decodeSteps: st.decodeSteps,
      prefillMs: st.prefillMs,
      decodeMs: st.decodeMs,
      prefillTokensPerSecond: req.promptIds.length / (st.prefillMs / 1000),
      decodeTokensPerSecond: st.decodeSteps ? st.decodeTokens / (st.decodeMs / 1000) : 0,
      dispatchesPerStep: st.decodeSteps ? st.decodeDispatches / st.decodeSteps : 0,
      readbacksPerStep: st.decodeSteps ? st.decodeReadbacks / st.decodeSteps : 0,
      ids: c.ids,
    };
  }

  /** The loaded base model as ONNX bytes in memory (the bench page opens them on its own device). */
  async exportOnnxFiles(choice: OnnxVariantChoice): Promise<OnnxExportFiles> {
    if (this.active) throw new Error('A run is training; pause it to bench (the GPU is busy).');
    const { model } = this.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const { variant, reason } = bridge.chooseOnnxVariant(model.config, choice);
    const { exported } = await this.exportOnnxInMemory(variant, null);
    const { model: bytes, data } = exported.files;
    return { variant, variantReason: reason, model: bytes, data, exportMs: exported.exportMs };
  }

  async chat(req: ChatRequest): Promise<string> {
    const { model } = this.requireModel();
    return this.withWeights(req, async (policy) => {
      const ids = model.tokenizer.encode(renderPrompt(model.tokenizer, req.prompt).replace(/<think>$/, ''));
      const [c] = await policy.generate([ids], {
        maxNew: req.maxNew,
        temperature: req.temperature,
        seed: req.seed ?? 0,
      });
      return c.text;
    });
  }
}

/** Bytes of a run's checkpoints (weights and optimizer state): most of what a run stores. 0 if unreadable. */
async function checkpointBytes(store: RunStore, runId: string): Promise<number> {
  try {
    const cps = await (await store.readRun(runId)).checkpoints();
    return cps.reduce((n, c) => n + c.weightsBytes + c.stateBytes, 0);
  } catch {
    return 0; // a run the list shows but cannot read: its row says '—'
  }
}

function checkpointInfo(i: import('../store/types.ts').CheckpointInfo): CheckpointInfo {
  return {
    step: i.step,
    bytes: i.weightsBytes + i.stateBytes,
    at: i.createdAt,
    reason: i.reason === 'seeded' ? 'steps' : i.reason,
  };
}

function modelInfo(model: LoadedModel, engine: Engine): ModelInfo {
  const c = model.config;
  const weights = model.weights;
  const dtypes = new Set(weights.tensors.map((t) => t.dtype));
  return {
    id: `${model.identity.repo}@${model.identity.revision}`,
    repo: model.identity.repo,
    revision: model.identity.revision,
    sha256: model.identity.sha256,
    layers: c.numHiddenLayers,
    hidden: c.hiddenSize,
    heads: c.numAttentionHeads,
    kvHeads: c.numKeyValueHeads,
    vocab: c.vocabSize,
    parameters: parameterCount(c),
    fileDtype: [...dtypes].join('+'),
    runDtype: engine.weights.dtype === 'f32' ? 'f32' : 'f16',
    weightBytes: engine.memory().weights,
  };
}
