// The Lab: the trainer worker's API (protocol.ts's TrainerApi), independent of where it runs. The worker
// (browser) and the tests (Node + Dawn) give it a platform: how to get a GPU device, open a model, store
// runs and start the verifier. It owns the one device, the one Engine and at most one training session;
// store-only work goes to the RunLibrary, ONNX Runtime to the OnnxSession.
import { resolveConfig, type RunConfig } from '../config.ts';
import { DeviceLostError, Engine } from '../engine/engine.ts';
import type { GpuContext } from '../engine/gpu.ts';
import { checkMatmulOnDevice } from '../engine/matmul-check.ts';
import { DEFAULT_HUB_ENDPOINT, hubDownloadSize } from '../model/hub-client.ts';
import { loadModelFolder } from '../model/model-folder.ts';
import { parseQwen2Config, qwen2_0_5bConfigJson } from '../model/qwen2-config.ts';
import type { Policy } from '../policy.ts';
import type {
  CachedModel,
  ChatRequest,
  CheckpointSummary,
  DecodeBenchRequest,
  EngineDecodeBench,
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
  OnnxCheckReport,
  OnnxCheckRequest,
  OnnxExportFiles,
  OnnxVariantChoice,
  RunComparison,
  RunPhase,
  RunSummary,
  SampleFilter,
  StorageInfo,
  TrainerApi,
  TrainerEvent,
} from '../protocol.ts';
import type { XAxis } from '../experiments/compare.ts';
import { evaluate } from '../selfplay/evaluate.ts';
import { renderPrompt } from '../selfplay/prompts.ts';
import type { GenerationRecord, StepMetrics, TaskEntry, TaskType } from '../selfplay/types.ts';
import { StoreFullError } from '../store/errors.ts';
import { parseSeedSet } from '../store/seed-set.ts';
import type { RunStore } from '../store/types.ts';
import { benchDecode } from './decode-bench.ts';
import { APP_ENGINE_SHAPE, engineShape } from './engine-shape.ts';
import { estimateMemory } from './memory-estimate.ts';
import { cachedHubModels, measuredMemory, modelInfo } from './model-info.ts';
import { OnnxSession } from './onnx-session.ts';
import { RunLibrary } from './run-library.ts';
import { newRunRecord, openSession, trainerEvent, type OpenSession } from './run-start.ts';
import type { LabPlatform, LoadedState, WeightsCheckpoint } from './types.ts';
import { messageOf, userError, withUserErrors } from './user-error.ts';

interface ActiveRun {
  runId: string;
  open: OpenSession;
  done: Promise<void>;
}

/** The model the app offers first. */
export const DEFAULT_MODEL_REPO = 'Qwen/Qwen2-0.5B-Instruct';

export class Lab implements TrainerApi {
  private ctx: Promise<GpuContext> | null = null;
  private loaded: LoadedState | null = null;
  private active: ActiveRun | null = null;
  private loadAbort: AbortController | null = null;
  private readonly listeners: ((e: TrainerEvent) => void)[] = [];
  private storePromise: Promise<RunStore> | null = null;
  private readonly hubChoices: Extract<ModelChoice, { kind: 'hub' }>[] = [];
  private readonly runs: RunLibrary;
  private hold: RunPhase | null = null;
  private readonly onnx: OnnxSession;

  constructor(private readonly platform: LabPlatform) {
    this.runs = new RunLibrary(
      () => this.store(),
      (runId) => this.active?.runId === runId,
    );
    this.onnx = new OnnxSession({
      requireModel: () => this.requireModel(),
      emit: (e) => this.emit(e),
      wasmPaths: platform.onnxWasmPaths,
    });
  }

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
      return { ok: false, error: messageOf(err), help: this.platform.noGpuHelp ?? '' };
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
    await this.onnx.release();
    old?.engine.destroy();
    const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
      maxBatch: APP_ENGINE_SHAPE.maxBatch,
      maxSeqLen: Math.min(APP_ENGINE_SHAPE.maxSeqLen, model.config.maxPositionEmbeddings),
      onProgress: (done, total, name) => this.progress({ phase: 'upload', file: name, loaded: done, total }),
    });
    const info = modelInfo(model, engine);
    this.loaded = { choice, source, model, engine, info };
    this.emit({ type: 'memory', memory: measuredMemory(engine) });
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
  listCachedModels(): Promise<CachedModel[]> {
    return cachedHubModels(this.platform.modelStore(), [
      { repo: DEFAULT_MODEL_REPO, revision: 'main' },
      ...this.hubChoices.map((c) => ({ repo: c.repo, revision: c.revision ?? 'main' })),
    ]);
  }

  async cancelLoad(): Promise<void> {
    this.loadAbort?.abort();
  }

  async memoryEstimate(config: RunConfig): Promise<MemoryReport> {
    const ctx = await this.device();
    // Before a model is loaded, estimate for the real Qwen2-0.5B shape (what the app downloads by default).
    const qwen = this.loaded?.model.config ?? parseQwen2Config(qwen2_0_5bConfigJson());
    const bytes = (this.loaded?.engine.weights.dtype ?? 'f16') === 'f32' ? 4 : 2;
    return estimateMemory(qwen, config, engineShape(config, bytes), ctx.report.limits.maxBufferSize);
  }

  private requireModel(): LoadedState {
    if (!this.loaded)
      throw new Error('No model is loaded. Load Qwen2-0.5B-Instruct, local files or the tiny model first.');
    return this.loaded;
  }

  private requireIdle(what: string): void {
    if (this.active) throw new Error(`A run is training; pause it to ${what} (one GPU, one set of weights).`);
  }

  // ---- runs: training ---------------------------------------------------------------------------

  async createRun(config: RunConfig, name?: string, preset = ''): Promise<RunSummary> {
    const { model } = this.requireModel();
    const checked = resolveConfig('browser', config);
    const id = `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.floor(Math.random() * 1e6)}`;
    const store = await this.store();
    const writer = await store.createRun(
      id,
      newRunRecord(checked, model.identity, { name: name ?? id, preset }),
    );
    const meta = await writer.meta();
    await writer.close();
    return this.announce(this.runs.summary(meta));
  }

  async startRun(runId: string, seedSet?: Blob): Promise<void> {
    if (this.active) throw new Error(`Run ${this.active.runId} is training; pause or stop it first.`);
    const { engine, model } = this.requireModel();
    // Before the run is opened: a file that is not a seed set must not leave the run's writer open.
    const seeds = seedSet ? parseSeedSet(await seedSet.text(), 'the seed set file') : undefined;
    const writer = await (await this.store()).openRun(runId);
    const open = await openSession({
      engine,
      model,
      writer,
      createTrainer: this.platform.createTrainer,
      verifierFactory: this.platform.verifierFactory,
      seedSet: seeds,
      onEvent: (e) => this.emit(trainerEvent(runId, e)),
      hold: this.hold ?? undefined,
    });
    const done = open.session
      .run()
      .then(async () => {
        this.emit({ type: 'run-status', run: this.runs.summary(await writer.meta()) });
      })
      .catch(async (err) => {
        const error = userError(err);
        const summary = this.runs.summary(await writer.meta());
        let ended = summary;
        if (!(err instanceof DeviceLostError)) {
          const status = err instanceof StoreFullError ? 'paused' : 'failed';
          // On a full quota this small write can be refused too: the run still stopped (stored as
          // 'running' with no session, it is listed as interrupted after a reload, and resumes the same).
          const stored = await writer.setStatus(status, error.message).then(
            () => true,
            () => false,
          );
          ended = stored ? this.runs.summary(await writer.meta()) : { ...summary, status };
        }
        this.emit({ type: 'error', runId, error });
        this.emit({ type: 'run-status', run: ended });
      })
      .finally(async () => {
        if (this.active?.runId === runId) this.active = null;
        await open.close();
      });
    this.active = { runId, open, done };
    this.emit({ type: 'run-status', run: { ...this.runs.summary(await writer.meta()), status: 'running' } });
  }

  async setHoldPoint(phase: RunPhase | null): Promise<void> {
    this.hold = phase;
  }

  async pauseRun(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.open.session.requestPause();
    await a.done;
  }

  async stopRun(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.open.session.requestStop();
    await a.done;
  }

  async tabHidden(): Promise<void> {
    this.active?.open.session.requestCheckpoint();
  }

  // ---- runs: the store (RunLibrary) -------------------------------------------------------------

  private announce(run: RunSummary): RunSummary {
    this.emit({ type: 'run-status', run });
    return run;
  }

  listRuns(): Promise<RunSummary[]> {
    return this.runs.listRuns();
  }

  async deleteRun(runId: string): Promise<void> {
    if (this.active?.runId === runId) throw new Error('This run is training; stop it before deleting it.');
    await this.runs.deleteRun(runId);
  }

  getSteps(runId: string): Promise<StepMetrics[]> {
    return this.runs.getSteps(runId);
  }

  getEvals(runId: string): Promise<EvalRecord[]> {
    return this.runs.getEvals(runId);
  }

  getSamples(runId: string, f: SampleFilter): Promise<{ total: number; records: GenerationRecord[] }> {
    return this.runs.getSamples(runId, f);
  }

  getBuffers(runId: string): Promise<Record<TaskType, TaskEntry[]>> {
    return this.runs.getBuffers(runId);
  }

  listCheckpoints(runId: string): Promise<CheckpointSummary[]> {
    return this.runs.listCheckpoints(runId);
  }

  async restoreCheckpoint(runId: string, step: number): Promise<RunSummary> {
    return this.announce(await this.runs.restoreCheckpoint(runId, step));
  }

  exportRun(runId: string, format: ExportFormat): Promise<ExportedFile> {
    return this.runs.exportRun(runId, format, {
      base: this.loaded ? { source: this.loaded.source, model: this.loaded.model } : undefined,
      onProgress: (done, total, name) => this.progress({ phase: 'read', file: name, loaded: done, total }),
    });
  }

  async importArchive(file: Blob): Promise<RunSummary> {
    return this.announce(await this.runs.importArchive(file));
  }

  compareRuns(runIds: string[], x: XAxis): Promise<RunComparison> {
    return this.runs.compareRuns(runIds, x);
  }

  storageInfo(): Promise<StorageInfo> {
    return this.platform.storageInfo();
  }

  // ---- weights for eval, chat, the ONNX check and the bench -------------------------------------

  /**
   * Runs `fn` with the weights a request names: the base (adapter off), or a run's adapter as of a
   * checkpoint (the latest when no step is given). Not while a run trains: one engine, one set of weights.
   */
  private async withWeights<T>(
    req: { runId?: string; checkpointStep?: number },
    fn: (policy: Policy, step: number, checkpoint: WeightsCheckpoint | null, config: RunConfig) => Promise<T>,
  ): Promise<T> {
    this.requireIdle('evaluate or chat');
    const { engine } = this.requireModel();
    const store = await this.store();
    const reader = req.runId ? await store.readRun(req.runId) : null;
    const config = reader ? (await reader.meta()).config : resolveConfig('browser');
    const trainer = await this.platform.createTrainer(engine, config);
    try {
      const step = reader ? (req.checkpointStep ?? (await reader.checkpoints()).at(-1)?.step) : undefined;
      if (!reader || !req.runId || step === undefined) {
        trainer.setAdapterEnabled(false);
        return await fn(trainer.policy, 0, null, config);
      }
      const cp = await reader.loadCheckpoint(step);
      await trainer.trainable.load(cp.tensors, cp.engineState);
      const checkpoint = { runId: req.runId, step, tensors: cp.tensors, engineState: cp.engineState };
      return await fn(trainer.policy, step, checkpoint, config);
    } finally {
      trainer.dispose();
    }
  }

  async runEval(req: EvalRequest): Promise<EvalRecord> {
    const backend = req.backend ?? 'engine';
    if (backend === 'onnx') return withUserErrors(this.onnx.oneAtATime(() => this.evaluateOn(req, backend)));
    if (backend !== 'engine') throw new Error(`Unknown eval backend "${String(backend)}".`);
    return withUserErrors(this.evaluateOn(req, backend));
  }

  private async evaluateOn(req: EvalRequest, backend: 'engine' | 'onnx'): Promise<EvalRecord> {
    const { model } = this.requireModel();
    return this.withWeights(req, async (enginePolicy, step, checkpoint, config) => {
      let policy: Pick<Policy, 'generate'> = enginePolicy;
      if (backend === 'onnx') {
        const bridge = await import('./onnx-bridge.ts');
        const { lm } = await this.onnx.openFor(checkpoint, req.onnxVariant);
        policy = bridge.onnxEvalPolicy(lm, model.tokenizer, (done, total) =>
          this.onnx.progress('eval', done, total, `Evaluating on ONNX Runtime: item ${done} of ${total}`),
        );
      }
      const { name: setName, items } =
        typeof req.set === 'string' ? { name: req.set, items: req.set } : req.set;
      if (items.length === 0) throw new Error(`${setName}: the eval file has no items`);
      const report = await evaluate(policy, model.tokenizer, items, req.mode, {
        limit: req.limit ?? 0,
        maxNew: req.mode === 'raw' ? config.evalMaxNewRaw : config.evalMaxNewChat,
      });
      const record: EvalRecord = {
        runId: req.runId ?? '',
        ...(backend === 'onnx' ? { backend } : {}),
        step,
        set: setName,
        mode: req.mode,
        limit: report.n,
        report,
        at: new Date().toISOString(),
      };
      // The run's eval history (and the page's eval chart) is the engine's: an ONNX eval checks the
      // runtime, not training progress.
      if (backend === 'engine') {
        if (req.runId) await this.runs.commitEval(req.runId, step, setName, record);
        this.emit({ type: 'eval', record });
      }
      return record;
    });
  }

  async checkOnnx(req: OnnxCheckRequest): Promise<OnnxCheckReport> {
    return withUserErrors(
      this.onnx.oneAtATime(() => this.onnx.check(req, (r, fn) => this.withWeights(r, fn))),
    );
  }

  async benchDecode(req: DecodeBenchRequest): Promise<EngineDecodeBench> {
    this.requireIdle('bench');
    return benchDecode(this.requireModel().engine, req);
  }

  /** The loaded base model as ONNX bytes in memory (the bench page opens them on its own device). */
  async exportOnnxFiles(choice: OnnxVariantChoice): Promise<OnnxExportFiles> {
    this.requireIdle('bench');
    const files = await withUserErrors(this.onnx.exportFiles(choice));
    // Moved, not copied: the page holds the only copy while onnxruntime-web loads it.
    return this.platform.transfer?.(files, [files.model.buffer, files.data.buffer]) ?? files;
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
