// The app's state: everything the views show, fed by the trainer worker's events and calls. Holds no
// model logic — it only asks the worker and remembers the answers. One instance, `lab`, for the page.
import * as Comlink from 'comlink';
import { ConfigError, resolveConfig, type RunConfig } from '../config.ts';
import type {
  CheckpointSummary,
  EvalRecord,
  GpuStatus,
  LoadProgress,
  MemoryReport,
  ModelChoice,
  ModelInfo,
  OnnxProgress,
  PhaseProgress,
  RunSummary,
  TrainerEvent,
  UserError,
} from '../protocol.ts';
import type { GenerationRecord } from '../selfplay/types.ts';
import { getTrainer } from './trainer.ts';
import { toUserError, withTimeout } from './lib/errors.ts';
import { mergeEval, mergeRun, mergeStep, modelChoiceForRun } from './lib/history.ts';
import { stepWallMs, type StepPoint } from './lib/series.ts';
import { runEtaSeconds } from './lib/eta.ts';
import { decodeShare, diffFromPreset } from './lib/share.ts';
import { holdPoint, wantsCompat } from './lib/page.ts';
import { recipeConfig } from '../trainer/workshop-recipe.ts';

export type View = 'model' | 'train' | 'samples' | 'buffers' | 'eval' | 'runs' | 'chat' | 'bench';

/** Calls that only read state must answer quickly; a stuck worker must not leave a spinner forever. */
const QUICK_CALL_MS = 20_000;
/** Live samples kept in memory for the streaming feed and the learnability histogram. */
const LIVE_SAMPLES = 400;
const NOTICES = 30;
/** Generations of each replayed step shown in the live feed. */
const REPLAY_SAMPLES = 24;
const ENDPOINT_KEY = 'tabzero.hubEndpoint';
const PRESENTATION_KEY = 'tabzero.presentation';

export interface Notice {
  id: number;
  level: 'info' | 'warn' | 'error';
  text: string;
}

export type ShownError = UserError & { id: number };

let nextId = 1;

export class LabView {
  view = $state<View>('model');
  presentation = $state(false);
  howItWorks = $state(false);

  model = $state<ModelInfo | null>(null);
  loading = $state(false);
  loadProgress = $state<LoadProgress | null>(null);
  memory = $state<MemoryReport | null>(null);
  /** The ONNX Runtime check's or ONNX eval's progress (export, load, prompt i of n, eval item). */
  onnxProgress = $state<OnnxProgress | null>(null);

  preset = $state('browser');
  config = $state<RunConfig>(resolveConfig('browser'));
  shareProblems = $state<string[]>([]);

  runs = $state<RunSummary[]>([]);
  run = $state<RunSummary | null>(null);
  points = $state.raw<StepPoint[]>([]);
  evals = $state.raw<EvalRecord[]>([]);
  phase = $state<PhaseProgress | null>(null);
  live = $state.raw<GenerationRecord[]>([]);
  lastCheckpoint = $state<CheckpointSummary | null>(null);
  /** A run call is in flight (start/pause/stop): buttons wait for the answer. */
  busy = $state(false);

  /** Set by a click on a chart point: the samples view opens filtered to this step. */
  sampleStep = $state<number | null>(null);

  errors = $state<ShownError[]>([]);
  notices = $state<Notice[]>([]);
  deviceMessage = $state<{ text: string; recovering: boolean } | null>(null);
  hiddenSince = $state<number | null>(null);
  hiddenNote = $state<string | null>(null);

  replay = $state<{
    runId: string;
    step: number;
    last: number;
    stepsPerSecond: number;
    playing: boolean;
  } | null>(null);

  /** The run this page asked the worker to execute (a stored 'running' status after a reload is stale). */
  executing = $state<string | null>(null);

  /** Whether the shown run is one the worker is executing now (not a finished, stored or replayed one). */
  active = $derived(
    this.run !== null &&
      this.executing === this.run.id &&
      (this.run.status === 'running' || this.run.status === 'seeding') &&
      this.replay === null,
  );

  /** A stored run that says it is running while this page is not running it: the tab was closed mid-run. */
  interrupted = $derived(
    this.run !== null &&
      this.executing !== this.run.id &&
      (this.run.status === 'running' || this.run.status === 'seeding'),
  );

  configError = $derived.by(() => {
    try {
      resolveConfig(this.preset, diffFromPreset(this.preset, $state.snapshot(this.config) as RunConfig));
      return null;
    } catch (err) {
      return err instanceof ConfigError ? err.message : String(err);
    }
  });

  /** Points shown in the charts: all of them, or the replay's prefix. */
  shownPoints = $derived(
    this.replay ? this.points.filter((p) => p.metrics.step <= this.replay!.step) : this.points,
  );
  shownEvals = $derived(this.replay ? this.evals.filter((r) => r.step <= this.replay!.step) : this.evals);

  etaSeconds = $derived.by(() => {
    if (!this.run) return null;
    const ms = this.points.map(stepWallMs).filter((t): t is number => t !== null);
    return runEtaSeconds(ms, this.run.step, this.run.totalSteps);
  });

  hubEndpoint = $state('');

  private subscribed = false;
  private replayTimer: ReturnType<typeof setInterval> | null = null;

  private gpuStatusPromise: Promise<GpuStatus> | null = null;

  get trainer() {
    return getTrainer();
  }

  /**
   * The worker's device, acquired once: the first request decides core or compatibility mode
   * (`?compat=1`), so every other call waits for this one to be made first.
   */
  gpuStatus(): Promise<GpuStatus> {
    this.gpuStatusPromise ??= this.trainer.gpuStatus({
      compatibility: wantsCompat(location.search),
    });
    return this.gpuStatusPromise;
  }

  /** Subscribes to worker events, restores preferences and the shared link, lists stored runs. */
  async start(): Promise<void> {
    if (this.subscribed) return;
    this.subscribed = true;
    this.hubEndpoint = localStorage.getItem(ENDPOINT_KEY) ?? '';
    this.presentation = localStorage.getItem(PRESENTATION_KEY) === '1';
    this.applyShareHash(location.hash);
    const hold = holdPoint(location.search);
    if (hold) void this.trainer.setHoldPoint(hold);
    try {
      await withTimeout(
        this.trainer.subscribe(Comlink.proxy((e: TrainerEvent) => this.onEvent(e))),
        QUICK_CALL_MS,
        'Connecting to the trainer worker',
      );
    } catch (err) {
      this.fail(err, 'Connecting to the trainer worker');
      return;
    }
    document.addEventListener('visibilitychange', () => this.onVisibility());
    await this.refreshRuns(true);
  }

  applyShareHash(hash: string): void {
    const shared = decodeShare(hash);
    if (!shared) return;
    this.preset = shared.preset;
    this.config = resolveConfig(shared.preset, shared.overrides);
    this.shareProblems = shared.problems;
  }

  setPreset(name: string): void {
    this.preset = name;
    this.config = resolveConfig(name);
  }

  /**
   * The Train tab's phase: "Imitation first" (the workshop recipe's pretraining: imitation of verifier-
   * made records, with its loss chart) or self-play with the workshop preset.
   */
  setImitationPhase(on: boolean): void {
    this.preset = 'workshop';
    this.config = on ? recipeConfig('workshop') : resolveConfig('workshop');
  }

  setPresentation(on: boolean): void {
    this.presentation = on;
    localStorage.setItem(PRESENTATION_KEY, on ? '1' : '0');
  }

  setHubEndpoint(url: string): void {
    this.hubEndpoint = url.trim();
    localStorage.setItem(ENDPOINT_KEY, this.hubEndpoint);
  }

  // ---- errors and notices ----------------------------------------------------------------------

  fail(err: unknown, what: string): void {
    this.showError(toUserError(err, what));
  }

  showError(error: UserError): void {
    const shown = { ...error, id: nextId++ };
    // The same error twice in a row (e.g. a retry) is shown once.
    if (this.errors.some((e) => e.title === error.title && e.message === error.message)) return;
    this.errors = [...this.errors, shown];
  }

  dismissError(id: number): void {
    this.errors = this.errors.filter((e) => e.id !== id);
  }

  notice(level: Notice['level'], text: string): void {
    this.notices = [...this.notices, { id: nextId++, level, text }].slice(-NOTICES);
  }

  /** Runs a worker call; on failure shows an actionable error and returns undefined. */
  async call<T>(what: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T | undefined> {
    try {
      await this.gpuStatus().catch(() => undefined);
      return await (timeoutMs ? withTimeout(fn(), timeoutMs, what) : fn());
    } catch (err) {
      this.fail(err, what);
      return undefined;
    }
  }

  quick<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    return this.call(what, fn, QUICK_CALL_MS);
  }

  // ---- events ------------------------------------------------------------------------------------

  onEvent(e: TrainerEvent): void {
    switch (e.type) {
      case 'load-progress':
        this.loadProgress = e.progress;
        break;
      case 'memory':
        this.memory = e.memory;
        break;
      case 'onnx-progress':
        this.onnxProgress = e.progress;
        break;
      case 'run-status':
        this.runs = mergeRun(this.runs, e.run);
        if (
          !this.run ||
          this.run.id === e.run.id ||
          e.run.status === 'running' ||
          e.run.status === 'seeding'
        ) {
          if (this.run?.id !== e.run.id) this.adoptRun(e.run);
          this.run = e.run;
        }
        if (e.run.status !== 'running' && e.run.status !== 'seeding') {
          if (this.phase?.runId === e.run.id) this.phase = null;
          if (this.executing === e.run.id) this.executing = null;
        } else if (this.executing === null) {
          // A run the worker reports as running is being executed, whoever started it.
          this.executing = e.run.id;
        }
        break;
      case 'phase':
        if (!this.run || e.progress.runId === this.run.id) this.phase = e.progress;
        break;
      case 'step':
        if (this.run?.id === e.runId) {
          this.points = mergeStep(this.points, { metrics: e.metrics, wallMs: e.wallMs });
          this.run = { ...this.run, step: e.metrics.step };
        }
        break;
      case 'samples':
        if (!this.run || this.run.id === e.runId)
          this.live = [...this.live, ...e.records].slice(-LIVE_SAMPLES);
        break;
      case 'eval':
        if (this.run?.id === e.record.runId) this.evals = mergeEval(this.evals, e.record);
        break;
      case 'checkpoint':
        if (this.run?.id === e.runId) this.lastCheckpoint = e.checkpoint;
        break;
      case 'error':
        this.showError(e.error);
        break;
      case 'log':
        this.notice(e.level, e.message);
        break;
      case 'device-lost':
        this.deviceMessage = { text: e.message, recovering: e.recovering };
        if (!e.recovering) {
          this.showError({
            title: 'The GPU device was lost',
            message: e.message,
            action: 'Reload the page; the run resumes from its last checkpoint.',
          });
        }
        break;
      case 'device-recovered':
        this.deviceMessage = null;
        this.notice('info', e.message);
        break;
    }
  }

  private onVisibility(): void {
    if (document.visibilityState === 'hidden') {
      if (this.active) {
        this.hiddenSince = performance.now();
        // Hidden tabs are throttled and may be discarded: checkpoint now.
        void this.call('Checkpointing the hidden tab', () => this.trainer.tabHidden());
      }
    } else if (this.hiddenSince !== null) {
      const seconds = (performance.now() - this.hiddenSince) / 1000;
      this.hiddenSince = null;
      this.hiddenNote = `This tab was hidden for ${Math.round(seconds)} s while training. Browsers slow down hidden tabs, so steps during that time took longer (see the step wall time chart).`;
    }
  }

  // ---- models ------------------------------------------------------------------------------------

  async loadModel(choice: ModelChoice): Promise<boolean> {
    this.loading = true;
    this.loadProgress = null;
    try {
      await this.gpuStatus().catch(() => undefined);
      this.model = await this.trainer.loadModel(choice);
      this.notice('info', `Loaded ${this.model.id}.`);
      void this.estimateMemory();
      return true;
    } catch (err) {
      this.fail(err, 'Loading the model');
      return false;
    } finally {
      this.loading = false;
    }
  }

  async cancelLoad(): Promise<void> {
    await this.quick('Cancelling the download', () => this.trainer.cancelLoad());
  }

  async estimateMemory(): Promise<void> {
    if (this.configError) return;
    const config = $state.snapshot(this.config) as RunConfig;
    const report = await this.quick('Estimating GPU memory', () => this.trainer.memoryEstimate(config));
    if (report) this.memory = report;
  }

  // ---- runs --------------------------------------------------------------------------------------

  async refreshRuns(openLatest = false): Promise<void> {
    const runs = await this.quick('Listing stored runs', () => this.trainer.listRuns());
    if (!runs) return;
    this.runs = [...runs].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    if (openLatest && !this.run && this.runs.length) await this.openRun(this.runs[0].id);
  }

  private adoptRun(run: RunSummary): void {
    this.run = run;
    this.points = [];
    this.evals = [];
    this.live = [];
    this.phase = null;
    this.lastCheckpoint = null;
  }

  /** Shows a stored run's history (charts, evals) without starting it. */
  async openRun(runId: string): Promise<void> {
    this.stopReplay();
    const run = this.runs.find((r) => r.id === runId);
    if (!run) return;
    this.adoptRun(run);
    const [steps, evals] = await Promise.all([
      this.quick('Reading the run’s steps', () => this.trainer.getSteps(runId)),
      this.quick('Reading the run’s evals', () => this.trainer.getEvals(runId)),
    ]);
    if (this.run?.id !== runId) return;
    if (steps) this.points = steps.map((metrics) => ({ metrics }));
    if (evals) this.evals = [...evals].sort((a, b) => a.step - b.step);
  }

  /** `seedSet`: another run's exported seed set, to seed from instead of proposing (spec 4.8). */
  async startNewRun(name: string, seedSet?: File): Promise<void> {
    if (this.configError) {
      this.showError({
        title: 'The run settings are not valid',
        message: this.configError,
        action: 'Fix the highlighted setting in the run form.',
      });
      return;
    }
    if (!this.model) {
      this.showError({
        title: 'No model is loaded',
        message: 'A run trains the loaded model.',
        action: 'Load a model in the Model tab first (the built-in tiny model needs no download).',
      });
      return;
    }
    this.busy = true;
    try {
      const config = $state.snapshot(this.config) as RunConfig;
      const run = await this.call('Creating the run', () =>
        this.trainer.createRun(config, name || undefined, this.preset),
      );
      if (!run) return;
      this.stopReplay();
      this.runs = mergeRun(this.runs, run);
      this.adoptRun(run);
      this.launch(run.id, seedSet);
    } finally {
      this.busy = false;
    }
  }

  /** startRun may only settle when the run pauses or ends: never await it in the UI flow. */
  private launch(runId: string, seedSet?: File): void {
    this.executing = runId;
    this.trainer.startRun(runId, seedSet).catch((err: unknown) => {
      if (this.executing === runId) this.executing = null;
      this.fail(err, 'Running the run');
    });
  }

  async resume(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.busy = true;
    try {
      if (!this.model || this.model.sha256 !== run.model.sha256) {
        const choice = modelChoiceForRun(run, this.hubEndpoint || undefined);
        if (!choice) {
          this.showError({
            title: 'This run’s model is not loaded',
            message: `The run trains ${run.model.repo}, which came from local files.`,
            action: 'Choose the same model files again in the Model tab, then resume.',
          });
          return;
        }
        this.notice('info', `Loading ${run.model.repo} to resume the run…`);
        if (!(await this.loadModel(choice))) return;
      }
      this.stopReplay();
      this.launch(run.id);
    } finally {
      this.busy = false;
    }
  }

  async pause(): Promise<void> {
    await this.settle('Pausing', () => this.trainer.pauseRun());
  }

  async stop(): Promise<void> {
    await this.settle('Stopping', () => this.trainer.stopRun());
  }

  /** Pause and stop resolve once the run has come to rest: then the stored status is the truth. */
  private async settle(what: string, fn: () => Promise<void>): Promise<void> {
    const runId = this.run?.id;
    this.busy = true;
    try {
      await this.call(what, fn);
      await this.refreshRuns();
      const stored = this.runs.find((r) => r.id === runId);
      const shown = this.run;
      if (stored && shown && shown.id === runId) {
        this.run = { ...stored, step: Math.max(stored.step, shown.step) };
        if (stored.status !== 'running' && stored.status !== 'seeding') {
          if (this.executing === runId) this.executing = null;
          this.phase = null;
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** Space bar: pause a running run, resume a paused one. */
  togglePause(): void {
    if (this.busy || !this.run || this.replay) return;
    if (this.active) void this.pause();
    else if (
      this.run.status === 'paused' ||
      this.run.status === 'interrupted' ||
      this.run.status === 'created' ||
      this.interrupted
    )
      void this.resume();
  }

  async deleteRun(runId: string): Promise<void> {
    const ok = await this.call('Deleting the run', () => this.trainer.deleteRun(runId).then(() => true));
    if (!ok) return;
    this.runs = this.runs.filter((r) => r.id !== runId);
    if (this.run?.id === runId) {
      this.run = null;
      this.points = [];
      this.evals = [];
    }
  }

  // ---- replay: a stored run (e.g. an imported archive) unfolds step by step ---------------------

  async startReplay(runId: string, stepsPerSecond: number): Promise<void> {
    await this.openRun(runId);
    const last = this.points.at(-1)?.metrics.step ?? 0;
    if (last === 0) {
      this.showError({
        title: 'Nothing to replay',
        message: 'This run has no recorded steps.',
        action: 'Import a run archive that contains steps, or pick another run.',
      });
      return;
    }
    this.replay = { runId, step: 0, last, stepsPerSecond, playing: true };
    this.view = 'train';
    this.tickReplay();
  }

  setReplaySpeed(stepsPerSecond: number): void {
    if (!this.replay) return;
    this.replay.stepsPerSecond = stepsPerSecond;
    if (this.replay.playing) this.tickReplay();
  }

  toggleReplay(): void {
    if (!this.replay) return;
    this.replay.playing = !this.replay.playing;
    if (this.replay.playing) {
      if (this.replay.step >= this.replay.last) this.replay.step = 0;
      this.tickReplay();
    } else if (this.replayTimer) clearInterval(this.replayTimer);
  }

  private tickReplay(): void {
    if (this.replayTimer) clearInterval(this.replayTimer);
    const r = this.replay;
    if (!r) return;
    this.replayTimer = setInterval(() => {
      if (!this.replay) return;
      this.replay.step = Math.min(this.replay.last, this.replay.step + 1);
      void this.replaySamples(this.replay.runId, this.replay.step);
      if (this.replay.step >= this.replay.last) {
        this.replay.playing = false;
        if (this.replayTimer) clearInterval(this.replayTimer);
      }
    }, 1000 / r.stepsPerSecond);
  }

  /** The replayed step's generations stream into the live feed, as they did during the run. */
  async replaySamples(runId: string, step: number): Promise<void> {
    const res = await this.quick('Reading the replayed step’s samples', () =>
      this.trainer.getSamples(runId, { step, limit: REPLAY_SAMPLES }),
    );
    if (res && this.replay?.runId === runId) this.live = [...this.live, ...res.records].slice(-LIVE_SAMPLES);
  }

  stopReplay(): void {
    if (this.replayTimer) clearInterval(this.replayTimer);
    this.replayTimer = null;
    this.replay = null;
  }

  /** Click-through from a chart point. */
  showSamplesOf(step: number): void {
    this.sampleStep = step;
    this.view = 'samples';
  }
}

export const lab = new LabView();
