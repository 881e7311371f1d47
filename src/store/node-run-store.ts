// RunStore over run folders (Node only; the CLI's `--out RUN_DIR`). Layout and commit protocol:
// node-run-folder.ts; checkpoints: node-checkpoints.ts; the writer lock: node-lock.ts.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { RunnerState } from '../selfplay/types.ts';
import { encodeBufferFile, parseBufferFile } from './buffer-file.ts';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec.ts';
import { CorruptDataError, RunNotFoundError, StoreError } from './errors.ts';
import { RUN_FORMAT, RUN_FORMAT_VERSION, fromUtf8, nowIso, parseJsonl, toJsonl, utf8 } from './format.ts';
import {
  cleanCheckpointLeftovers,
  checkpointSteps,
  loadCheckpointDir,
  readCheckpointBlob,
  readCheckpointInfo,
  removeCheckpointDir,
  writeCheckpointDir,
} from './node-checkpoints.ts';
import { NodeFs, exists, type FaultHook } from './node-fs.ts';
import { LOCK_FILE, NodeRunLock } from './node-lock.ts';
import {
  APPEND_FILES,
  BUFFER_FILES,
  RUN_JSON,
  SEED_FILE,
  commitRun,
  cutAfterStep,
  metaOf,
  readAppendFile,
  readRunJson,
  readSnapshot,
  settleRun,
  type AppendFile,
  type CommitChanges,
  type RunJson,
  type SnapshotFile,
} from './node-run-folder.ts';
import { chooseCheckpoint, checkCheckpointStep, checkNextStep, latestEvals } from './resume-plan.ts';
import {
  BUFFER_TYPES,
  checkBufferIds,
  emptyBuffers,
  joinState,
  seedEntriesOf,
  splitState,
} from './run-state.ts';
import { encodeSeedSet, parseSeedSet } from './seed-set.ts';
import type {
  BufferSnapshot,
  CheckpointInfo,
  CheckpointInput,
  EvalRow,
  LoadedCheckpoint,
  NewRun,
  ResumePoint,
  RunExport,
  RunMeta,
  RunReader,
  RunStatus,
  RunStore,
  RunWriter,
  SampleRow,
  SeedingCommit,
  SeedSet,
  StepCommit,
  StepRow,
} from './types.ts';

export interface NodeRunStoreOptions {
  /** Fault injection for tests: called before every mutating file operation. */
  fault?: FaultHook;
}

function newRunJson(id: string, init: NewRun): RunJson {
  const now = nowIso();
  return {
    format: RUN_FORMAT,
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
    runState: null,
    files: { 'steps.jsonl': 0, 'samples.jsonl': 0, 'evals.jsonl': 0 },
    snapshots: {
      'buffers/ded.jsonl': null,
      'buffers/abd.jsonl': null,
      'buffers/ind.jsonl': null,
      'seed.jsonl': null,
    },
  };
}

async function readBuffers(dir: string, run: RunJson): Promise<BufferSnapshot> {
  const out = emptyBuffers();
  for (const type of BUFFER_TYPES) {
    const name = BUFFER_FILES[type];
    const bytes = await readSnapshot(dir, name, run.snapshots[name]);
    if (bytes) out[type] = parseBufferFile(bytes, path.join(dir, name));
  }
  return out;
}

async function readSeedSet(dir: string, run: RunJson): Promise<SeedSet | null> {
  const bytes = await readSnapshot(dir, SEED_FILE, run.snapshots[SEED_FILE]);
  return bytes ? parseSeedSet(fromUtf8(bytes, SEED_FILE), path.join(dir, SEED_FILE)) : null;
}

async function readRows<T>(dir: string, run: RunJson, name: AppendFile): Promise<T[]> {
  return parseJsonl<T>(await readAppendFile(dir, run, name), path.join(dir, name));
}

/** How often a reader retries when a writer in another process commits under it. */
const READ_ATTEMPTS = 5;

/** Reads the committed state of a run folder. Each call re-reads run.json, so it sees later commits. */
class NodeRunReader implements RunReader {
  constructor(
    readonly dir: string,
    readonly id: string,
  ) {}

  protected async run(): Promise<RunJson> {
    return readRunJson(this.dir);
  }

  /**
   * Reads against one run.json. A writer in another process may commit meanwhile (renaming snapshot
   * files, cutting append files on rollback): then the read fails its checks and is retried against the
   * new run.json. A failure with run.json unchanged is real damage.
   */
  protected async read<T>(fn: (run: RunJson) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const run = await this.run();
      try {
        return await fn(run);
      } catch (err) {
        if (!(err instanceof CorruptDataError) || attempt >= READ_ATTEMPTS) throw err;
        if (JSON.stringify(await this.run()) === JSON.stringify(run)) throw err;
      }
    }
  }

  async meta(): Promise<RunMeta> {
    return metaOf(await this.run());
  }

  async state(): Promise<RunnerState | null> {
    return this.read(async (run) => joinState(run.runState, await readBuffers(this.dir, run)));
  }

  async steps(): Promise<StepRow[]> {
    return this.read((run) => readRows<StepRow>(this.dir, run, 'steps.jsonl'));
  }

  async samples(step?: number): Promise<SampleRow[]> {
    const rows = await this.read((run) => readRows<SampleRow>(this.dir, run, 'samples.jsonl'));
    return step === undefined ? rows : rows.filter((r) => r.step === step);
  }

  async evals(): Promise<EvalRow[]> {
    return latestEvals(await this.read((run) => readRows<EvalRow>(this.dir, run, 'evals.jsonl')));
  }

  async buffers(): Promise<BufferSnapshot> {
    return this.read((run) => readBuffers(this.dir, run));
  }

  async seedSet(): Promise<SeedSet | null> {
    return this.read((run) => readSeedSet(this.dir, run));
  }

  async checkpoints(): Promise<CheckpointInfo[]> {
    const out: CheckpointInfo[] = [];
    for (const step of await checkpointSteps(this.dir)) {
      try {
        out.push(await readCheckpointInfo(this.dir, step));
      } catch (err) {
        if (!(err instanceof CorruptDataError)) throw err;
      }
    }
    return out;
  }

  async loadCheckpoint(step: number): Promise<LoadedCheckpoint> {
    return loadCheckpointDir(this.dir, step);
  }

  async exportData(): Promise<RunExport> {
    return this.read(async (run) => {
      const buffers = await readBuffers(this.dir, run);
      let checkpoint: RunExport['checkpoint'] = null;
      for (const step of (await checkpointSteps(this.dir)).reverse()) {
        if (step > run.step) continue;
        try {
          const blob = await readCheckpointBlob(this.dir, step);
          await decodeCheckpoint(blob, `checkpoint at step ${step}`);
          checkpoint = blob;
          break;
        } catch (err) {
          if (!(err instanceof CorruptDataError)) throw err;
        }
      }
      return {
        meta: metaOf(run),
        state: joinState(run.runState, buffers),
        steps: await readRows<StepRow>(this.dir, run, 'steps.jsonl'),
        samples: await readRows<SampleRow>(this.dir, run, 'samples.jsonl'),
        evals: latestEvals(await readRows<EvalRow>(this.dir, run, 'evals.jsonl')),
        seedSet: await readSeedSet(this.dir, run),
        checkpoint,
      };
    });
  }
}

/** The one writer of a run folder: holds run.lock; every change is one commit (node-run-folder.ts). */
class NodeRunWriter extends NodeRunReader implements RunWriter {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Set when a commit's after-steps failed: the folder is fine, but this writer must be reopened. */
  private broken: string | null = null;

  constructor(
    dir: string,
    id: string,
    private readonly fs: NodeFs,
    private readonly lock: NodeRunLock,
    private committed: RunJson,
    private committedBuffers: BufferSnapshot,
  ) {
    super(dir, id);
  }

  protected override async run(): Promise<RunJson> {
    return this.committed;
  }

  /** One operation at a time, in call order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.closed) throw new StoreError(`run ${this.dir} is closed`);
      if (this.broken) throw new StoreError(`run ${this.dir}: ${this.broken}; reopen the run`);
      return fn();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async commit(
    what: string,
    next: RunJson,
    changes: CommitChanges,
    buffers?: BufferSnapshot,
  ): Promise<void> {
    const committed = await this.fs.guard(what, () =>
      commitRun(this.fs, this.dir, this.committed, next, changes),
    );
    this.committed = committed;
    if (buffers) this.committedBuffers = buffers;
    try {
      await settleRun(this.fs, this.dir, committed);
    } catch (err) {
      this.broken = `${what} was committed, but tidying up after it failed (${String(err)})`;
      throw err;
    }
  }

  private bufferChanges(step: number, buffers: BufferSnapshot): CommitChanges['snapshots'] {
    checkBufferIds(buffers);
    const out: Partial<Record<SnapshotFile, Uint8Array>> = {};
    for (const type of BUFFER_TYPES) out[BUFFER_FILES[type]] = encodeBufferFile(type, step, buffers[type]);
    return out;
  }

  commitSeeding(c: SeedingCommit): Promise<void> {
    return this.serial(async () => {
      const run = this.committed;
      if (run.step !== 0)
        throw new Error(`commitSeeding: the run is at step ${run.step}; seeding belongs to step 0`);
      const { rest, buffers } = splitState(c.state);
      const seed: SeedSet = {
        source: { runId: run.id, model: run.model, zeroData: !c.state.notZeroData, createdAt: nowIso() },
        entries: c.seedSet ?? seedEntriesOf(buffers),
      };
      const samples = c.samples.map((s, i) => ({ ...s, step: 0, i }));
      const next: RunJson = {
        ...run,
        updatedAt: nowIso(),
        seeded: true,
        notZeroData: c.state.notZeroData,
        runState: rest,
      };
      await this.commit(
        'the seeding results',
        next,
        {
          appends: { 'samples.jsonl': utf8(toJsonl(samples)) },
          snapshots: { ...this.bufferChanges(0, buffers), [SEED_FILE]: utf8(encodeSeedSet(seed)) },
        },
        buffers,
      );
    });
  }

  commitStep(c: StepCommit): Promise<void> {
    return this.serial(async () => {
      const run = this.committed;
      checkNextStep(c.step, run.step, c.state.step);
      const { rest, buffers } = splitState(c.state);
      const time = nowIso();
      const evals = (c.evals ?? []).map((e) => ({ ...e, step: c.step, time: e.time ?? time }));
      const next: RunJson = {
        ...run,
        updatedAt: time,
        step: c.step,
        notZeroData: c.state.notZeroData,
        runState: rest,
      };
      await this.commit(
        `step ${c.step}`,
        next,
        {
          appends: {
            'steps.jsonl': utf8(toJsonl([{ step: c.step, metrics: c.metrics }])),
            'samples.jsonl': utf8(toJsonl(c.samples.map((s, i) => ({ ...s, step: c.step, i })))),
            'evals.jsonl': utf8(toJsonl(evals)),
          },
          snapshots: this.bufferChanges(c.step, buffers),
        },
        buffers,
      );
    });
  }

  commitEval(row: EvalRow): Promise<void> {
    return this.serial(async () => {
      const run = this.committed;
      if (row.step > run.step)
        throw new Error(`commitEval: step ${row.step} is past the committed step ${run.step}`);
      await this.commit(
        `the eval ${row.name} at step ${row.step}`,
        { ...run, updatedAt: nowIso() },
        {
          appends: { 'evals.jsonl': utf8(toJsonl([row])) },
        },
      );
    });
  }

  setStatus(status: RunStatus, message: string | null = null): Promise<void> {
    return this.serial(async () => {
      const next = { ...this.committed, status, statusMessage: message, updatedAt: nowIso() };
      await this.commit(`the run's status`, next, {});
    });
  }

  saveCheckpoint(c: CheckpointInput): Promise<CheckpointInfo> {
    return this.serial(async () => {
      const run = this.committed;
      checkCheckpointStep(c.step, run.step);
      const blob = await encodeCheckpoint(metaOf(run), c, joinState(run.runState, this.committedBuffers));
      const info = await this.fs.guard(`the checkpoint at step ${c.step}`, () =>
        writeCheckpointDir(this.fs, this.dir, blob),
      );
      const steps = await checkpointSteps(this.dir);
      const keep = Math.max(1, run.config.keepLastCheckpoints);
      for (const old of steps.slice(0, Math.max(0, steps.length - keep))) {
        await removeCheckpointDir(this.fs, this.dir, old);
      }
      return info;
    });
  }

  resume(): Promise<ResumePoint> {
    return this.serial(async () => {
      const run = this.committed;
      const choice = await chooseCheckpoint(await checkpointSteps(this.dir), run.step, (s) =>
        loadCheckpointDir(this.dir, s),
      );
      const ck = choice.chosen;
      const target = ck ? ck.info.step : 0;
      const rs = ck?.runnerState ?? null;
      const { rest, buffers } = rs ? splitState(rs) : { rest: null, buffers: emptyBuffers() };
      // Without a checkpoint nothing survives, seeding included; with one, rows up to its step do.
      const keepUpTo = ck ? target : -1;
      const truncate: Partial<Record<AppendFile, number>> = {};
      const removed = { steps: 0, samples: 0, evals: 0, checkpoints: choice.discard.length };
      for (const name of APPEND_FILES) {
        const cut = cutAfterStep(
          await readAppendFile(this.dir, run, name),
          keepUpTo,
          path.join(this.dir, name),
        );
        truncate[name] = cut.bytes;
        removed[name.replace('.jsonl', '') as 'steps' | 'samples' | 'evals'] = cut.removed;
      }
      const seeded = rs?.seeded ?? false;
      const next: RunJson = {
        ...run,
        updatedAt: nowIso(),
        step: target,
        seeded,
        notZeroData: rs?.notZeroData ?? false,
        runState: rest,
      };
      await this.commit(
        `the rollback to step ${target}`,
        next,
        {
          truncate,
          snapshots: {
            ...(rs
              ? this.bufferChanges(target, buffers)
              : { 'buffers/ded.jsonl': null, 'buffers/abd.jsonl': null, 'buffers/ind.jsonl': null }),
            ...(seeded ? {} : { [SEED_FILE]: null }),
          },
        },
        buffers,
      );
      for (const step of choice.discard) await removeCheckpointDir(this.fs, this.dir, step);
      return { step: target, checkpoint: ck, state: rs, warnings: choice.warnings, removed };
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      await this.lock.release();
    });
  }
}

export class NodeRunStore implements RunStore {
  readonly backend = 'files' as const;
  private readonly fs: NodeFs;

  /** `root`: the folder runs are listed in and relative ids resolve against (absolute ids work too). */
  constructor(
    readonly root: string,
    opts: NodeRunStoreOptions = {},
  ) {
    this.fs = new NodeFs(opts.fault);
  }

  dirOf(id: string): string {
    return path.resolve(this.root, id);
  }

  async createRun(id: string, init: NewRun): Promise<RunWriter> {
    const dir = this.dirOf(id);
    if (await exists(path.join(dir, RUN_JSON))) {
      throw new StoreError(`${dir} already holds a run; resume it (--resume) or choose another folder`);
    }
    await this.fs.guard('the new run folder', () => this.fs.mkdir(dir));
    const lock = await NodeRunLock.acquire(this.fs, dir);
    try {
      const run = newRunJson(path.basename(dir), init);
      await this.fs.guard('the new run', async () => {
        for (const name of APPEND_FILES) await this.fs.writeFile(path.join(dir, name), '');
        await this.fs.replaceFile(path.join(dir, RUN_JSON), JSON.stringify(run, null, 1));
      });
      return new NodeRunWriter(dir, run.id, this.fs, lock, run, emptyBuffers());
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  async openRun(id: string): Promise<RunWriter> {
    const dir = this.dirOf(id);
    if (!(await exists(path.join(dir, RUN_JSON))))
      throw new RunNotFoundError(`${dir}: no run here (no ${RUN_JSON})`);
    const lock = await NodeRunLock.acquire(this.fs, dir);
    try {
      const run = await readRunJson(dir);
      await settleRun(this.fs, dir, run);
      await cleanCheckpointLeftovers(this.fs, dir);
      return new NodeRunWriter(dir, run.id, this.fs, lock, run, await readBuffers(dir, run));
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  async readRun(id: string): Promise<RunReader> {
    const dir = this.dirOf(id);
    if (!(await exists(path.join(dir, RUN_JSON))))
      throw new RunNotFoundError(`${dir}: no run here (no ${RUN_JSON})`);
    const run = await readRunJson(dir);
    return new NodeRunReader(dir, run.id);
  }

  async listRuns(): Promise<RunMeta[]> {
    const out: RunMeta[] = [];
    let names: string[];
    try {
      names = await fsp.readdir(this.root);
    } catch {
      return out;
    }
    for (const n of names.sort()) {
      const dir = path.join(this.root, n);
      if (await exists(path.join(dir, RUN_JSON))) out.push(metaOf(await readRunJson(dir)));
    }
    return out;
  }

  async deleteRun(id: string): Promise<void> {
    const dir = this.dirOf(id);
    if (!(await exists(path.join(dir, RUN_JSON)))) throw new RunNotFoundError(`${dir}: no run here`);
    const lock = await NodeRunLock.acquire(this.fs, dir);
    try {
      // run.json first: from then on the folder is no run, whatever else is left.
      await this.fs.remove(path.join(dir, RUN_JSON));
      for (const n of await fsp.readdir(dir)) if (n !== LOCK_FILE) await this.fs.remove(path.join(dir, n));
    } finally {
      await lock.release();
    }
    await fsp.rmdir(dir).catch(() => undefined);
  }

  async importRun(id: string, data: RunExport): Promise<RunMeta> {
    const dir = this.dirOf(id);
    if (await exists(path.join(dir, RUN_JSON))) throw new StoreError(`${dir} already holds a run`);
    const parent = path.dirname(dir);
    const tmp = path.join(parent, `.${path.basename(dir)}.import-${process.pid}-${Date.now()}`);
    const fs = this.fs;
    await fs.guard(`the imported run ${dir}`, async () => {
      try {
        await fs.mkdir(tmp);
        const meta: RunMeta = { ...data.meta, id: path.basename(dir), updatedAt: nowIso() };
        const base = newRunJson(meta.id, {
          config: meta.config,
          model: meta.model,
          tabzeroVersion: meta.tabzeroVersion,
        });
        for (const name of APPEND_FILES) await fs.writeFile(path.join(tmp, name), '');
        const { rest, buffers } = data.state
          ? splitState(data.state)
          : { rest: null, buffers: emptyBuffers() };
        const next: RunJson = {
          ...base,
          ...meta,
          format: RUN_FORMAT,
          formatVersion: RUN_FORMAT_VERSION,
          runState: rest,
        };
        const snapshots: CommitChanges['snapshots'] = {};
        if (data.state) {
          for (const type of BUFFER_TYPES)
            snapshots[BUFFER_FILES[type]] = encodeBufferFile(type, meta.step, buffers[type]);
        }
        if (data.seedSet) snapshots[SEED_FILE] = utf8(encodeSeedSet(data.seedSet));
        const committed = await commitRun(fs, tmp, base, next, {
          appends: {
            'steps.jsonl': utf8(toJsonl(data.steps)),
            'samples.jsonl': utf8(toJsonl(data.samples)),
            'evals.jsonl': utf8(toJsonl(data.evals)),
          },
          snapshots,
        });
        await settleRun(fs, tmp, committed);
        if (data.checkpoint) {
          const info = { ...data.checkpoint.info, runId: meta.id };
          await writeCheckpointDir(fs, tmp, { ...data.checkpoint, info });
        }
        if (await exists(dir)) await fsp.rmdir(dir); // only an empty folder may be imported into
        await fs.rename(tmp, dir);
        await fs.syncDir(parent);
      } catch (err) {
        await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
        throw err;
      }
    });
    return metaOf(await readRunJson(dir));
  }

  async close(): Promise<void> {}
}
