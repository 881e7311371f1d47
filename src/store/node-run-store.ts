// RunStore over run folders (Node only; the CLI's `--out RUN_DIR`). The writer's rules are in
// run-writer.ts; here each of its commits (a RunChange) becomes one run-folder commit. Layout and commit
// protocol: node-run-folder.ts; checkpoints: node-checkpoints.ts; the writer lock: node-lock.ts.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { RunnerState } from '../selfplay/types.ts';
import { encodeBufferFile, parseBufferFile } from './buffer-file.ts';
import { CorruptDataError, RunNotFoundError, StoreError } from './errors.ts';
import { RUN_FORMAT, fromUtf8, parseJsonl, toJsonl, utf8 } from './format.ts';
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
  BUFFER_SNAPSHOT_FILES,
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
} from './node-run-folder.ts';
import { latestEvals, latestValidCheckpoint, readableCheckpoints } from './resume-plan.ts';
import { BUFFER_TYPES, emptyBuffers, joinState } from './run-state.ts';
import {
  NO_ROWS_REMOVED,
  StoreRunWriter,
  importChange,
  newRunHead,
  type RemovedRows,
  type RunApplier,
  type RunChange,
} from './run-writer.ts';
import { encodeSeedSet, parseSeedSet } from './seed-set.ts';
import type {
  BufferSnapshot,
  CheckpointBlob,
  CheckpointInfo,
  EvalRow,
  LoadedCheckpoint,
  NewRun,
  RunExport,
  RunMeta,
  RunReader,
  RunStore,
  RunWriter,
  SampleRow,
  SeedSet,
  StepRow,
} from './types.ts';

export interface NodeRunStoreOptions {
  /** Fault injection for tests: called before every mutating file operation. */
  fault?: FaultHook;
}

function newRunJson(id: string, init: NewRun): RunJson {
  return {
    format: RUN_FORMAT,
    ...newRunHead(id, init),
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
    const name = BUFFER_SNAPSHOT_FILES[type];
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
    /** The writer's committed run.json; without one, each read reads run.json. */
    private readonly committed?: () => RunJson,
  ) {}

  private async run(): Promise<RunJson> {
    return this.committed?.() ?? readRunJson(this.dir);
  }

  /**
   * Reads against one run.json. A writer in another process may commit meanwhile (renaming snapshot
   * files, cutting append files on rollback): then the read fails its checks and is retried against the
   * new run.json. A failure with run.json unchanged is real damage.
   */
  private async read<T>(fn: (run: RunJson) => Promise<T>): Promise<T> {
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
    return readableCheckpoints(await checkpointSteps(this.dir), (step) => readCheckpointInfo(this.dir, step));
  }

  async loadCheckpoint(step: number): Promise<LoadedCheckpoint> {
    return loadCheckpointDir(this.dir, step);
  }

  async exportData(): Promise<RunExport> {
    return this.read(async (run) => {
      const buffers = await readBuffers(this.dir, run);
      const checkpoint = await latestValidCheckpoint(await checkpointSteps(this.dir), run.step, (step) =>
        readCheckpointBlob(this.dir, step),
      );
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

/** Applies a run's commits to its folder (node-run-folder.ts); holds run.lock, if given one. */
class NodeRunApplier implements RunApplier {
  readonly label: string;
  /** Set when a commit's after-steps failed: the folder is fine, but this writer must be reopened. */
  broken: string | null = null;

  constructor(
    private readonly fs: NodeFs,
    private readonly dir: string,
    private readonly lock: NodeRunLock | null,
    public committed: RunJson,
  ) {
    this.label = `run ${dir}`;
  }

  async apply(c: RunChange): Promise<RemovedRows> {
    const prev = this.committed;
    const snapshots: CommitChanges['snapshots'] = {};
    if (c.buffers !== undefined) {
      for (const type of BUFFER_TYPES)
        snapshots[BUFFER_SNAPSHOT_FILES[type]] =
          c.buffers && encodeBufferFile(type, c.head.step, c.buffers[type]);
    }
    if (c.seedSet !== undefined) snapshots[SEED_FILE] = c.seedSet && utf8(encodeSeedSet(c.seedSet));
    const changes: CommitChanges = {
      appends: {
        'steps.jsonl': utf8(toJsonl(c.steps ?? [])),
        'samples.jsonl': utf8(toJsonl(c.samples ?? [])),
        'evals.jsonl': utf8(toJsonl(c.evals ?? [])),
      },
      snapshots,
    };
    const removed = { ...NO_ROWS_REMOVED };
    if (c.cutAfter !== undefined) {
      // A rollback: the append files' committed lengths shrink to the rows up to c.cutAfter.
      changes.truncate = {};
      for (const name of APPEND_FILES) {
        const file = path.join(this.dir, name);
        const cut = cutAfterStep(await readAppendFile(this.dir, prev, name), c.cutAfter, file);
        changes.truncate[name] = cut.bytes;
        removed[name.replace('.jsonl', '') as keyof RemovedRows] = cut.removed;
      }
    }
    const next: RunJson = { ...prev, ...c.head };
    this.committed = await this.fs.guard(c.what, () => commitRun(this.fs, this.dir, prev, next, changes));
    try {
      await settleRun(this.fs, this.dir, this.committed);
    } catch (err) {
      this.broken = `${c.what} was committed, but tidying up after it failed (${String(err)})`;
      throw err;
    }
    for (const step of c.dropCheckpoints ?? []) await removeCheckpointDir(this.fs, this.dir, step);
    if (c.checkpoint) await writeCheckpointDir(this.fs, this.dir, c.checkpoint);
    return removed;
  }

  checkpointSteps(): Promise<number[]> {
    return checkpointSteps(this.dir);
  }

  /** The new checkpoint folder first (a valid one at the same step is kept), then the pruned ones go. */
  async saveCheckpoint(blob: CheckpointBlob, prune: number[], what: string): Promise<CheckpointInfo> {
    const info = await this.fs.guard(what, () => writeCheckpointDir(this.fs, this.dir, blob));
    for (const old of prune) await removeCheckpointDir(this.fs, this.dir, old);
    return info;
  }

  async close(): Promise<void> {
    await this.lock?.release();
  }
}

/** The writer of a folder whose run.json is `run` (settled). */
async function folderWriter(fs: NodeFs, dir: string, lock: NodeRunLock, run: RunJson): Promise<RunWriter> {
  const applier = new NodeRunApplier(fs, dir, lock, run);
  const reader = new NodeRunReader(dir, run.id, () => applier.committed);
  const { format: _f, files: _fi, snapshots: _s, ...head } = run;
  return new StoreRunWriter(reader, applier, head, await readBuffers(dir, run));
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
      return await folderWriter(this.fs, dir, lock, run);
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
      return await folderWriter(this.fs, dir, lock, run);
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
      if (!(await exists(path.join(dir, RUN_JSON)))) continue;
      try {
        out.push(metaOf(await readRunJson(dir)));
      } catch (err) {
        // A newer TabZero's run or a damaged run.json: not listed here (opening it says why), as in IndexedDB.
        if (!(err instanceof StoreError)) throw err;
      }
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

  /** Written whole into a temporary folder, which is then renamed into place. */
  async importRun(id: string, data: RunExport): Promise<RunMeta> {
    const dir = this.dirOf(id);
    if (await exists(path.join(dir, RUN_JSON))) throw new StoreError(`${dir} already holds a run`);
    const parent = path.dirname(dir);
    const tmp = path.join(parent, `.${path.basename(dir)}.import-${process.pid}-${Date.now()}`);
    const fs = this.fs;
    const what = `the imported run ${dir}`;
    await fs.guard(what, async () => {
      try {
        await fs.mkdir(tmp);
        const change = importChange(path.basename(dir), data, what);
        for (const name of APPEND_FILES) await fs.writeFile(path.join(tmp, name), '');
        await new NodeRunApplier(fs, tmp, null, newRunJson(change.head.id, change.head)).apply(change);
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
