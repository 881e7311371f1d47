// RunStore over IndexedDB (the browser; idb-schema.ts has the stores). Every change of a run is one
// readwrite transaction, so IndexedDB itself makes it all-or-nothing: a step's rows, the buffer changes
// and the run's step counter; a rollback's deletions and the restored buffers. Values that need hashing
// or encoding are prepared before the transaction opens (a transaction must not wait on anything else).
// Browser-safe.
import type { IDBPDatabase, IDBPTransaction } from 'idb';
import type { RunnerState } from '../selfplay/types.ts';
import type { TaskEntry } from '../selfplay/types.ts';
import { decodeCheckpoint, encodeCheckpoint, manifestJson, parseManifest } from './checkpoint-codec.ts';
import {
  CorruptDataError,
  RunLockedError,
  RunNotFoundError,
  StoreError,
  StoreFullError,
  isQuotaError,
} from './errors.ts';
import { RUN_FORMAT, RUN_FORMAT_VERSION, checkFormat, nowIso } from './format.ts';
import {
  bucketRange,
  openTabzeroDb,
  runRange,
  wholeRunRange,
  type Bucket,
  type CheckpointRecord,
  type RunRecord,
  type StoreName,
  type TabzeroDb,
  type TaskRecord,
} from './idb-schema.ts';
import { chooseCheckpoint, checkCheckpointStep, checkNextStep, latestEvals } from './resume-plan.ts';
import {
  BUFFER_TYPES,
  checkBufferIds,
  emptyBuffers,
  joinState,
  seedEntriesOf,
  splitState,
} from './run-state.ts';
import type {
  BufferSnapshot,
  CheckpointBlob,
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
import { defaultLockManager, runLockName, tryAcquireLock, type LockManagerLike } from './web-lock.ts';

type Db = IDBPDatabase<TabzeroDb>;
type WriteTx = IDBPTransaction<TabzeroDb, StoreName[], 'readwrite'>;
const ALL_STORES: StoreName[] = ['runs', 'steps', 'samples', 'evals', 'tasks', 'checkpoints'];
const ALL_BUCKETS: Bucket[] = ['ded', 'abd', 'ind', 'seed'];

export interface IdbRunStoreOptions {
  /** Database name (default `tabzero`; tests use their own). */
  name?: string;
  /** Web Locks (default navigator.locks). */
  locks?: LockManagerLike | null;
}

function checkRecord(rec: RunRecord | undefined, id: string): RunRecord {
  if (!rec) throw new RunNotFoundError(`no run "${id}" in this browser's TabZero database`);
  checkFormat(rec, RUN_FORMAT, RUN_FORMAT_VERSION, `run "${id}"`);
  return rec;
}

function metaOf(rec: RunRecord): RunMeta {
  const { format: _f, runState: _r, seedSource: _s, taskSeq: _t, writer: _w, ...meta } = rec;
  return meta;
}

function strip<T extends { runId: string }>(row: T): Omit<T, 'runId'> {
  const { runId: _r, ...rest } = row;
  return rest;
}

/** Issues requests into a transaction and keeps their promises, so none is left unhandled. */
class TxWriter {
  readonly ops: Promise<unknown>[] = [];
  constructor(readonly tx: WriteTx) {}
  put<N extends StoreName>(store: N, value: TabzeroDb[N]['value']): void {
    this.ops.push(this.tx.objectStore(store).put(value));
  }
  add<N extends StoreName>(store: N, value: TabzeroDb[N]['value']): void {
    this.ops.push(this.tx.objectStore(store).add(value));
  }
  delete<N extends StoreName>(store: N, key: TabzeroDb[N]['key'] | IDBKeyRange): void {
    this.ops.push(this.tx.objectStore(store).delete(key));
  }
}

/**
 * Runs one readwrite transaction: `fn` issues its requests (and awaits nothing else). Any failure aborts
 * the whole transaction; a full quota becomes StoreFullError.
 */
async function writeTx(db: Db, what: string, step: number, fn: (w: TxWriter) => void): Promise<void> {
  const w = new TxWriter(db.transaction(ALL_STORES, 'readwrite'));
  try {
    fn(w);
    await Promise.all([...w.ops, w.tx.done]);
  } catch (err) {
    for (const op of w.ops) op.catch(() => undefined);
    try {
      w.tx.abort();
    } catch {
      // already finished or aborted
    }
    await w.tx.done.catch(() => undefined);
    if (isQuotaError(err)) {
      throw new StoreFullError(
        `The browser's storage for TabZero is full (QuotaExceededError) while saving ${what}; nothing of it was ` +
          `kept and the run is unchanged at step ${step}. Free space (delete old runs or checkpoints, or export ` +
          'this run and delete it), allow persistent storage, then resume.',
        err,
      );
    }
    throw err;
  }
}

async function readBuckets(db: Db, runId: string): Promise<Record<Bucket, TaskRecord[]>> {
  const out = { ded: [], abd: [], ind: [], seed: [] } as Record<Bucket, TaskRecord[]>;
  for (const b of ALL_BUCKETS)
    out[b] = (await db.getAll('tasks', bucketRange(runId, b))).sort((x, y) => x.seq - y.seq);
  return out;
}

function buffersOf(buckets: Record<Bucket, TaskRecord[]>): BufferSnapshot {
  const out = emptyBuffers();
  for (const t of BUFFER_TYPES) out[t] = buckets[t].map((r) => r.entry);
  return out;
}

async function checkpointBlob(rec: CheckpointRecord, what: string): Promise<CheckpointBlob> {
  const info = parseManifest(rec.manifest, what);
  return {
    info,
    weights: new Uint8Array(await rec.weights.arrayBuffer()),
    state: new Uint8Array(await rec.state.arrayBuffer()),
  };
}

function toBlob(bytes: Uint8Array): Blob {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]);
}

class IdbRunReader implements RunReader {
  constructor(
    protected readonly db: Db,
    readonly id: string,
  ) {}

  protected async record(): Promise<RunRecord> {
    return checkRecord(await this.db.get('runs', this.id), this.id);
  }

  async meta(): Promise<RunMeta> {
    return metaOf(await this.record());
  }

  async state(): Promise<RunnerState | null> {
    const rec = await this.record();
    return joinState(rec.runState, await this.buffers());
  }

  async steps(): Promise<StepRow[]> {
    return (await this.db.getAll('steps', runRange(this.id))).map(strip);
  }

  async samples(step?: number): Promise<SampleRow[]> {
    const range =
      step === undefined ? runRange(this.id) : IDBKeyRange.bound([this.id, step], [this.id, step, []]);
    return (await this.db.getAll('samples', range)).map(strip) as SampleRow[];
  }

  async evals(): Promise<EvalRow[]> {
    return latestEvals((await this.db.getAll('evals', runRange(this.id))).map(strip));
  }

  async buffers(): Promise<BufferSnapshot> {
    return buffersOf(await readBuckets(this.db, this.id));
  }

  async seedSet(): Promise<SeedSet | null> {
    const rec = await this.record();
    if (!rec.seedSource) return null;
    const entries = (await this.db.getAll('tasks', bucketRange(this.id, 'seed'))).sort(
      (a, b) => a.seq - b.seq,
    );
    return { source: rec.seedSource, entries: entries.map((r) => r.entry) };
  }

  async checkpoints(): Promise<CheckpointInfo[]> {
    const out: CheckpointInfo[] = [];
    for (const rec of await this.db.getAll('checkpoints', runRange(this.id))) {
      try {
        out.push(parseManifest(rec.manifest, `checkpoint at step ${rec.step}`));
      } catch (err) {
        if (!(err instanceof CorruptDataError)) throw err;
      }
    }
    return out;
  }

  protected async checkpointSteps(): Promise<number[]> {
    return (await this.db.getAllKeys('checkpoints', runRange(this.id))).map((k) => k[1]);
  }

  protected async checkpointBlob(step: number): Promise<CheckpointBlob> {
    const what = `run "${this.id}" checkpoint at step ${step}`;
    const rec = await this.db.get('checkpoints', [this.id, step]);
    if (!rec) throw new CorruptDataError(`${what}: missing`);
    return checkpointBlob(rec, what);
  }

  async loadCheckpoint(step: number): Promise<LoadedCheckpoint> {
    return decodeCheckpoint(await this.checkpointBlob(step), `run "${this.id}" checkpoint at step ${step}`);
  }

  /** One readonly transaction, so a writer in another tab cannot commit halfway through the export. */
  async exportData(): Promise<RunExport> {
    const tx = this.db.transaction(ALL_STORES, 'readonly');
    const [found, steps, samples, evals, tasks, checkpoints] = await Promise.all([
      tx.objectStore('runs').get(this.id),
      tx.objectStore('steps').getAll(runRange(this.id)),
      tx.objectStore('samples').getAll(runRange(this.id)),
      tx.objectStore('evals').getAll(runRange(this.id)),
      tx.objectStore('tasks').getAll(wholeRunRange(this.id)),
      tx.objectStore('checkpoints').getAll(runRange(this.id)),
    ]);
    await tx.done;
    const rec = checkRecord(found, this.id);
    const buckets = { ded: [], abd: [], ind: [], seed: [] } as Record<Bucket, TaskRecord[]>;
    for (const t of tasks) buckets[t.bucket].push(t);
    for (const b of ALL_BUCKETS) buckets[b].sort((x, y) => x.seq - y.seq);
    let checkpoint: CheckpointBlob | null = null;
    for (const ck of checkpoints.reverse()) {
      if (ck.step > rec.step) continue;
      try {
        const blob = await checkpointBlob(ck, `checkpoint at step ${ck.step}`);
        await decodeCheckpoint(blob, `checkpoint at step ${ck.step}`);
        checkpoint = blob;
        break;
      } catch (err) {
        if (!(err instanceof CorruptDataError)) throw err;
      }
    }
    return {
      meta: metaOf(rec),
      state: joinState(rec.runState, buffersOf(buckets)),
      steps: steps.map(strip),
      samples: samples.map(strip) as SampleRow[],
      evals: latestEvals(evals.map(strip)),
      seedSet: rec.seedSource ? { source: rec.seedSource, entries: buckets.seed.map((r) => r.entry) } : null,
      checkpoint,
    };
  }
}

/** Committed order of a bucket's entries, mirrored in memory so a commit can write only the changes. */
type Mirror = Record<Bucket, { id: string; seq: number }[]>;

interface BucketChange {
  puts: TaskRecord[];
  deletes: string[];
  mirror: { id: string; seq: number }[];
}

/**
 * Entries are immutable and keep their relative order (TaskBuffer appends and evicts), so a snapshot is
 * the committed entries minus evictions plus new ones at the end. Anything else is rewritten whole.
 */
function diffBucket(
  runId: string,
  bucket: Bucket,
  current: { id: string; seq: number }[],
  entries: readonly TaskEntry[],
  nextSeq: () => number,
): BucketChange {
  const seqOf = new Map(current.map((x) => [x.id, x.seq]));
  let ordered = true;
  let sawNew = false;
  let last = -1;
  for (const e of entries) {
    const s = seqOf.get(e.id);
    if (s === undefined) sawNew = true;
    else {
      if (sawNew || s < last) ordered = false;
      last = s;
    }
  }
  const keep = ordered ? new Set(entries.map((e) => e.id)) : new Set<string>();
  const deletes = current.filter((x) => !keep.has(x.id)).map((x) => x.id);
  const puts: TaskRecord[] = [];
  const mirror = entries.map((entry) => {
    const known = ordered ? seqOf.get(entry.id) : undefined;
    if (known !== undefined) return { id: entry.id, seq: known };
    const rec: TaskRecord = { runId, bucket, id: entry.id, seq: nextSeq(), entry };
    puts.push(rec);
    return { id: rec.id, seq: rec.seq };
  });
  return { puts, deletes, mirror };
}

class IdbRunWriter extends IdbRunReader implements RunWriter {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    db: Db,
    id: string,
    private readonly release: () => void,
    private committed: RunRecord,
    private mirror: Mirror,
  ) {
    super(db, id);
  }

  protected override async record(): Promise<RunRecord> {
    return this.committed;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.closed) throw new StoreError(`run "${this.id}" is closed`);
      return fn();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Buffer (and seed) changes against the committed mirror; `rec.taskSeq` advances. */
  private changes(rec: RunRecord, snapshot: Partial<Record<Bucket, readonly TaskEntry[]>>) {
    const all: Partial<Record<Bucket, BucketChange>> = {};
    for (const b of ALL_BUCKETS) {
      const entries = snapshot[b];
      if (entries) all[b] = diffBucket(this.id, b, this.mirror[b], entries, () => rec.taskSeq++);
    }
    return all;
  }

  private issue(w: TxWriter, all: Partial<Record<Bucket, BucketChange>>): void {
    for (const [bucket, ch] of Object.entries(all) as [Bucket, BucketChange][]) {
      for (const id of ch.deletes) w.delete('tasks', [this.id, bucket, id]);
      for (const r of ch.puts) w.put('tasks', r);
    }
  }

  private adopt(rec: RunRecord, all: Partial<Record<Bucket, BucketChange>>): void {
    this.committed = rec;
    for (const [bucket, ch] of Object.entries(all) as [Bucket, BucketChange][])
      this.mirror[bucket] = ch.mirror;
  }

  commitSeeding(c: SeedingCommit): Promise<void> {
    return this.serial(async () => {
      const prev = this.committed;
      if (prev.step !== 0)
        throw new Error(`commitSeeding: the run is at step ${prev.step}; seeding belongs to step 0`);
      const { rest, buffers } = splitState(c.state);
      checkBufferIds(buffers);
      const rec: RunRecord = {
        ...prev,
        updatedAt: nowIso(),
        seeded: true,
        notZeroData: c.state.notZeroData,
        runState: rest,
        seedSource: {
          runId: prev.id,
          model: prev.model,
          zeroData: !c.state.notZeroData,
          createdAt: nowIso(),
        },
      };
      const all = this.changes(rec, { ...buffers, seed: c.seedSet ?? seedEntriesOf(buffers) });
      await writeTx(this.db, 'the seeding results', prev.step, (w) => {
        this.issue(w, all);
        c.samples.forEach((s, i) => w.put('samples', { ...s, step: 0, i, runId: this.id }));
        w.put('runs', rec);
      });
      this.adopt(rec, all);
    });
  }

  commitStep(c: StepCommit): Promise<void> {
    return this.serial(async () => {
      const prev = this.committed;
      checkNextStep(c.step, prev.step, c.state.step);
      const { rest, buffers } = splitState(c.state);
      checkBufferIds(buffers);
      const time = nowIso();
      const rec: RunRecord = {
        ...prev,
        updatedAt: time,
        step: c.step,
        notZeroData: c.state.notZeroData,
        runState: rest,
      };
      const all = this.changes(rec, buffers);
      await writeTx(this.db, `step ${c.step}`, prev.step, (w) => {
        w.put('steps', { runId: this.id, step: c.step, metrics: c.metrics });
        c.samples.forEach((s, i) => w.put('samples', { ...s, step: c.step, i, runId: this.id }));
        for (const e of c.evals ?? [])
          w.put('evals', { ...e, time: e.time ?? time, step: c.step, runId: this.id });
        this.issue(w, all);
        w.put('runs', rec);
      });
      this.adopt(rec, all);
    });
  }

  commitEval(row: EvalRow): Promise<void> {
    return this.serial(async () => {
      const prev = this.committed;
      if (row.step > prev.step)
        throw new Error(`commitEval: step ${row.step} is past the committed step ${prev.step}`);
      await writeTx(this.db, `the eval ${row.name} at step ${row.step}`, prev.step, (w) =>
        w.put('evals', { ...row, runId: this.id }),
      );
    });
  }

  setStatus(status: RunStatus, message: string | null = null): Promise<void> {
    return this.serial(async () => {
      const rec = { ...this.committed, status, statusMessage: message, updatedAt: nowIso() };
      await writeTx(this.db, `the run's status`, rec.step, (w) => w.put('runs', rec));
      this.committed = rec;
    });
  }

  saveCheckpoint(c: CheckpointInput): Promise<CheckpointInfo> {
    return this.serial(async () => {
      const rec = this.committed;
      checkCheckpointStep(c.step, rec.step);
      const state = joinState(rec.runState, buffersOf(await readBuckets(this.db, this.id)));
      const blob = await encodeCheckpoint(metaOf(rec), c, state);
      const keep = Math.max(1, rec.config.keepLastCheckpoints);
      const steps = [...new Set([...(await this.checkpointSteps()), c.step])].sort((a, b) => a - b);
      const prune = steps.slice(0, Math.max(0, steps.length - keep));
      const value: CheckpointRecord = {
        runId: this.id,
        step: c.step,
        manifest: manifestJson(blob.info),
        weights: toBlob(blob.weights),
        state: toBlob(blob.state),
      };
      await writeTx(this.db, `the checkpoint at step ${c.step}`, rec.step, (w) => {
        w.put('checkpoints', value);
        for (const s of prune) w.delete('checkpoints', [this.id, s]);
      });
      return blob.info;
    });
  }

  resume(): Promise<ResumePoint> {
    return this.serial(async () => {
      const prev = this.committed;
      const choice = await chooseCheckpoint(await this.checkpointSteps(), prev.step, (s) =>
        this.loadCheckpoint(s),
      );
      const ck = choice.chosen;
      const target = ck ? ck.info.step : 0;
      const rs = ck?.runnerState ?? null;
      const { rest, buffers } = rs ? splitState(rs) : { rest: null, buffers: emptyBuffers() };
      const from = (ck ? target : -1) + 1;
      const [steps, samples, evals] = await Promise.all([
        this.db.count('steps', runRange(this.id, from)),
        this.db.count('samples', runRange(this.id, from)),
        this.db.count('evals', runRange(this.id, from)),
      ]);
      const seeded = rs?.seeded ?? false;
      const rec: RunRecord = {
        ...prev,
        updatedAt: nowIso(),
        step: target,
        seeded,
        notZeroData: rs?.notZeroData ?? false,
        runState: rest,
        seedSource: seeded ? prev.seedSource : null,
      };
      const all = this.changes(rec, { ...buffers, ...(seeded ? {} : { seed: [] }) });
      await writeTx(this.db, `the rollback to step ${target}`, prev.step, (w) => {
        w.delete('steps', runRange(this.id, from));
        w.delete('samples', runRange(this.id, from));
        w.delete('evals', runRange(this.id, from));
        for (const s of choice.discard) w.delete('checkpoints', [this.id, s]);
        this.issue(w, all);
        w.put('runs', rec);
      });
      this.adopt(rec, all);
      return {
        step: target,
        checkpoint: ck,
        state: rs,
        warnings: choice.warnings,
        removed: { steps, samples, evals, checkpoints: choice.discard.length },
      };
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      try {
        const rec = { ...this.committed, writer: null };
        await writeTx(this.db, 'the writer release', rec.step, (w) => w.put('runs', rec));
      } finally {
        this.release();
      }
    });
  }
}

export class IdbRunStore implements RunStore {
  readonly backend = 'indexeddb' as const;

  private constructor(
    private readonly db: Db,
    private readonly locks: LockManagerLike | null,
  ) {}

  static async open(opts: IdbRunStoreOptions = {}): Promise<IdbRunStore> {
    const locks = opts.locks === undefined ? defaultLockManager() : opts.locks;
    return new IdbRunStore(await openTabzeroDb(opts.name), locks);
  }

  private async lock(id: string): Promise<() => void> {
    if (!this.locks) {
      throw new StoreError(
        'Web Locks (navigator.locks) are not available, so TabZero cannot make sure only one tab writes a run',
      );
    }
    const release = await tryAcquireLock(this.locks, runLockName(id));
    if (release) return release;
    const w = (await this.db.get('runs', id))?.writer;
    const who = w ? `tab ${w.tab} (${w.agent}), since ${w.since}` : 'another tab';
    throw new RunLockedError(
      `Run "${id}" is already being trained in another tab or window: ${who}. Close that tab or stop the run there, then try again.`,
      who,
    );
  }

  private writerInfo(): RunRecord['writer'] {
    const agent =
      (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? 'unknown browser';
    return { tab: Math.random().toString(36).slice(2, 10), since: nowIso(), agent };
  }

  async createRun(id: string, init: NewRun): Promise<RunWriter> {
    const release = await this.lock(id);
    try {
      const now = nowIso();
      const rec: RunRecord = {
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
        seedSource: null,
        taskSeq: 0,
        writer: this.writerInfo(),
      };
      await writeTx(this.db, `the new run "${id}"`, 0, (w) => w.add('runs', rec)).catch((err) => {
        if ((err as { name?: string }).name === 'ConstraintError')
          throw new StoreError(`a run "${id}" already exists`);
        throw err;
      });
      return new IdbRunWriter(this.db, id, release, rec, { ded: [], abd: [], ind: [], seed: [] });
    } catch (err) {
      release();
      throw err;
    }
  }

  async openRun(id: string): Promise<RunWriter> {
    checkRecord(await this.db.get('runs', id), id);
    const release = await this.lock(id);
    try {
      const rec = { ...checkRecord(await this.db.get('runs', id), id), writer: this.writerInfo() };
      await writeTx(this.db, `run "${id}"`, rec.step, (w) => w.put('runs', rec));
      const buckets = await readBuckets(this.db, id);
      const mirror = {} as Mirror;
      for (const b of ALL_BUCKETS) mirror[b] = buckets[b].map((r) => ({ id: r.id, seq: r.seq }));
      return new IdbRunWriter(this.db, id, release, rec, mirror);
    } catch (err) {
      release();
      throw err;
    }
  }

  async readRun(id: string): Promise<RunReader> {
    checkRecord(await this.db.get('runs', id), id);
    return new IdbRunReader(this.db, id);
  }

  async listRuns(): Promise<RunMeta[]> {
    const out: RunMeta[] = [];
    for (const rec of await this.db.getAll('runs')) {
      try {
        out.push(metaOf(checkRecord(rec, rec.id)));
      } catch {
        // A newer TabZero's run: not listed here (opening it says why).
      }
    }
    return out;
  }

  async deleteRun(id: string): Promise<void> {
    checkRecord(await this.db.get('runs', id), id);
    const release = await this.lock(id);
    try {
      await writeTx(this.db, `the deletion of run "${id}"`, 0, (w) => {
        w.delete('runs', id);
        for (const s of ['steps', 'samples', 'evals', 'tasks', 'checkpoints'] as const)
          w.delete(s, wholeRunRange(id));
      });
    } finally {
      release();
    }
  }

  async importRun(id: string, data: RunExport): Promise<RunMeta> {
    const release = await this.lock(id);
    try {
      if (await this.db.get('runs', id)) throw new StoreError(`a run "${id}" already exists`);
      const { rest, buffers } = data.state ? splitState(data.state) : { rest: null, buffers: emptyBuffers() };
      let seq = 0;
      const tasks: TaskRecord[] = [];
      const put = (bucket: Bucket, entries: readonly TaskEntry[]) => {
        for (const entry of entries) tasks.push({ runId: id, bucket, id: entry.id, seq: seq++, entry });
      };
      for (const t of BUFFER_TYPES) put(t, buffers[t]);
      if (data.seedSet) put('seed', data.seedSet.entries);
      const rec: RunRecord = {
        ...data.meta,
        format: RUN_FORMAT,
        formatVersion: RUN_FORMAT_VERSION,
        id,
        updatedAt: nowIso(),
        runState: rest,
        seedSource: data.seedSet?.source ?? null,
        taskSeq: seq,
        writer: null,
      };
      const ck = data.checkpoint;
      const ckRec: CheckpointRecord | null = ck && {
        runId: id,
        step: ck.info.step,
        manifest: manifestJson({ ...ck.info, runId: id }),
        weights: toBlob(ck.weights),
        state: toBlob(ck.state),
      };
      await writeTx(this.db, `the imported run "${id}"`, 0, (w) => {
        for (const s of data.steps) w.put('steps', { ...s, runId: id });
        for (const s of data.samples) w.put('samples', { ...s, runId: id });
        for (const e of data.evals) w.put('evals', { ...e, runId: id });
        for (const t of tasks) w.put('tasks', t);
        if (ckRec) w.put('checkpoints', ckRec);
        w.put('runs', rec);
      });
      return metaOf(rec);
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
