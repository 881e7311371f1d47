// RunStore over IndexedDB (the browser; idb-schema.ts has the stores). The writer's rules are in
// run-writer.ts; here each of its commits (a RunChange) is applied as one readwrite transaction, so
// IndexedDB itself makes it all-or-nothing: a step's rows, the buffer changes and the run's step counter;
// a rollback's deletions and the restored buffers. Values that need hashing, encoding or counting are
// prepared before the transaction opens (a transaction must not wait on anything else). Browser-safe.
import type { IDBPDatabase, IDBPTransaction } from 'idb';
import type { RunnerState } from '../selfplay/types.ts';
import type { TaskEntry } from '../selfplay/types.ts';
import { decodeCheckpoint, checkpointManifestJson, parseCheckpointManifest } from './checkpoint-codec.ts';
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
  type CheckpointData,
  type CheckpointRecord,
  type RunRecord,
  type StoreName,
  type TabzeroDb,
  type TaskRecord,
  type WriterInfo,
} from './idb-schema.ts';
import { latestEvals, latestValidCheckpoint, readableCheckpoints } from './resume-plan.ts';
import { BUFFER_TYPES, emptyBuffers, joinState } from './run-state.ts';
import {
  NO_ROWS_REMOVED,
  StoreRunWriter,
  importChange,
  newRunHead,
  runHeadProblems,
  upgradeRunHead,
  type RemovedRows,
  type RunApplier,
  type RunChange,
  type RunHead,
} from './run-writer.ts';
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
import { defaultLockManager, runLockName, tryAcquireLock, type LockManagerLike } from './web-lock.ts';

type Db = IDBPDatabase<TabzeroDb>;
type WriteTx = IDBPTransaction<TabzeroDb, StoreName[], 'readwrite'>;
const ALL_STORES: StoreName[] = [
  'runs',
  'steps',
  'samples',
  'evals',
  'tasks',
  'checkpoints',
  'checkpointData',
];
const ALL_BUCKETS: Bucket[] = ['ded', 'abd', 'ind', 'seed'];
/** The stores of a run's rows, keyed [runId, step, ...]. */
const ROW_STORES = ['steps', 'samples', 'evals'] as const;

export interface IdbRunStoreOptions {
  /** Database name (default `tabzero`; tests use their own). */
  name?: string;
  /** Web Locks (default navigator.locks). */
  locks?: LockManagerLike | null;
}

function checkRecord(rec: RunRecord | undefined, id: string): RunRecord {
  if (!rec) throw new RunNotFoundError(`no run "${id}" in this browser's TabZero database`);
  checkFormat(rec, RUN_FORMAT, RUN_FORMAT_VERSION, `run "${id}"`);
  const bad = runHeadProblems(rec as unknown as Record<string, unknown>);
  if (bad.length)
    throw new CorruptDataError(
      `run "${id}" is damaged (${bad.join(', ')} missing or of the wrong type in its record), so TabZero ` +
        'cannot open it: delete it, or import it again from an archive of it.',
    );
  return upgradeRunHead(rec);
}

function metaOf(rec: RunRecord): RunMeta {
  const { format: _f, runState: _r, seedSource: _s, taskSeq: _t, writer: _w, ...meta } = rec;
  return meta;
}

function headOf(rec: RunRecord): RunHead {
  return { ...metaOf(rec), runState: rec.runState };
}

function newRecord(head: RunHead, writer: WriterInfo | null): RunRecord {
  return { format: RUN_FORMAT, ...head, seedSource: null, taskSeq: 0, writer };
}

function noBuckets(): Record<Bucket, TaskRecord[]> {
  return { ded: [], abd: [], ind: [], seed: [] };
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
  /** A checkpoint is two records under one key: its manifest and its bytes. */
  putCheckpoint(ck: { manifest: CheckpointRecord; data: CheckpointData }): void {
    this.put('checkpoints', ck.manifest);
    this.put('checkpointData', ck.data);
  }
  deleteCheckpoint(key: [string, number]): void {
    this.delete('checkpoints', key);
    this.delete('checkpointData', key);
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
    // A full disk aborts the transaction itself (its error: QuotaExceededError, in Chromium at commit);
    // the requests still pending reject with a plain AbortError, which is what Promise.all saw first.
    const txError: unknown = await w.tx.done.then(
      () => null,
      (e: unknown) => e,
    );
    if (isQuotaError(err) || isQuotaError(txError)) {
      throw new StoreFullError(
        `The browser's storage for TabZero is full (QuotaExceededError) while saving ${what}; nothing of it was ` +
          `kept and the run is unchanged at step ${step}. Free space (delete old runs or checkpoints, or export ` +
          'this run and delete it), allow persistent storage, then resume.',
        isQuotaError(err) ? err : txError,
      );
    }
    throw err;
  }
}

async function readBuckets(db: Db, runId: string): Promise<Record<Bucket, TaskRecord[]>> {
  const out = noBuckets();
  for (const b of ALL_BUCKETS)
    out[b] = (await db.getAll('tasks', bucketRange(runId, b))).sort((x, y) => x.seq - y.seq);
  return out;
}

function buffersOf(buckets: Record<Bucket, TaskRecord[]>): BufferSnapshot {
  const out = emptyBuffers();
  for (const t of BUFFER_TYPES) out[t] = buckets[t].map((r) => r.entry);
  return out;
}

async function checkpointBlob(
  rec: CheckpointRecord,
  data: CheckpointData | undefined,
  what: string,
): Promise<CheckpointBlob> {
  const info = parseCheckpointManifest(rec.manifest, what);
  if (!data) throw new CorruptDataError(`${what}: its bytes are missing`);
  return {
    info,
    weights: new Uint8Array(await data.weights.arrayBuffer()),
    state: new Uint8Array(await data.state.arrayBuffer()),
  };
}

function toBlob(bytes: Uint8Array): Blob {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]);
}

class IdbRunReader implements RunReader {
  constructor(
    private readonly db: Db,
    readonly id: string,
    /** The writer's committed record; without one, each read reads the record. */
    private readonly committed?: () => RunRecord,
  ) {}

  private async record(): Promise<RunRecord> {
    return this.committed?.() ?? checkRecord(await this.db.get('runs', this.id), this.id);
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
    return readableCheckpoints(await this.db.getAll('checkpoints', runRange(this.id)), (rec) =>
      parseCheckpointManifest(rec.manifest, `checkpoint at step ${rec.step}`),
    );
  }

  private async checkpointBlob(step: number): Promise<CheckpointBlob> {
    const what = `run "${this.id}" checkpoint at step ${step}`;
    const tx = this.db.transaction(['checkpoints', 'checkpointData'], 'readonly');
    const [rec, data] = await Promise.all([
      tx.objectStore('checkpoints').get([this.id, step]),
      tx.objectStore('checkpointData').get([this.id, step]),
      tx.done,
    ]);
    if (!rec) throw new CorruptDataError(`${what}: missing`);
    return checkpointBlob(rec, data, what);
  }

  async loadCheckpoint(step: number): Promise<LoadedCheckpoint> {
    return decodeCheckpoint(await this.checkpointBlob(step), `run "${this.id}" checkpoint at step ${step}`);
  }

  /** One readonly transaction, so a writer in another tab cannot commit halfway through the export. */
  async exportData(): Promise<RunExport> {
    const tx = this.db.transaction(ALL_STORES, 'readonly');
    const [found, steps, samples, evals, tasks, checkpoints, data] = await Promise.all([
      tx.objectStore('runs').get(this.id),
      tx.objectStore('steps').getAll(runRange(this.id)),
      tx.objectStore('samples').getAll(runRange(this.id)),
      tx.objectStore('evals').getAll(runRange(this.id)),
      tx.objectStore('tasks').getAll(wholeRunRange(this.id)),
      tx.objectStore('checkpoints').getAll(runRange(this.id)),
      tx.objectStore('checkpointData').getAll(runRange(this.id)),
    ]);
    await tx.done;
    const rec = checkRecord(found, this.id);
    const buckets = noBuckets();
    for (const t of tasks) buckets[t.bucket].push(t);
    for (const b of ALL_BUCKETS) buckets[b].sort((x, y) => x.seq - y.seq);
    const checkpoint = await latestValidCheckpoint(
      checkpoints.map((ck) => ck.step),
      rec.step,
      (step) =>
        checkpointBlob(
          checkpoints.find((ck) => ck.step === step)!,
          data.find((d) => d.step === step),
          `checkpoint at step ${step}`,
        ),
    );
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

function mirrorOf(buckets: Record<Bucket, TaskRecord[]>): Mirror {
  const mirror = {} as Mirror;
  for (const b of ALL_BUCKETS) mirror[b] = buckets[b].map((r) => ({ id: r.id, seq: r.seq }));
  return mirror;
}

function checkpointRecords(
  runId: string,
  blob: CheckpointBlob,
): { manifest: CheckpointRecord; data: CheckpointData } {
  const step = blob.info.step;
  return {
    manifest: { runId, step, manifest: checkpointManifestJson(blob.info) },
    data: { runId, step, weights: toBlob(blob.weights), state: toBlob(blob.state) },
  };
}

/** Applies a run's commits, each as one readwrite transaction (`release`: the writer lock, if held). */
class IdbRunApplier implements RunApplier {
  readonly label: string;

  constructor(
    private readonly db: Db,
    private readonly id: string,
    private readonly release: (() => void) | null,
    /** The committed record and the order of its task entries. */
    public committed: RunRecord,
    private mirror: Mirror,
  ) {
    this.label = `run "${id}"`;
  }

  async apply(c: RunChange): Promise<RemovedRows> {
    const prev = this.committed;
    const rec: RunRecord = {
      ...prev,
      ...c.head,
      seedSource: c.seedSet === undefined ? prev.seedSource : (c.seedSet?.source ?? null),
    };
    // Buffer (and seed) changes against the committed mirror; `rec.taskSeq` advances.
    const snapshot: Partial<Record<Bucket, readonly TaskEntry[]>> = {};
    if (c.buffers !== undefined) for (const t of BUFFER_TYPES) snapshot[t] = c.buffers?.[t] ?? [];
    if (c.seedSet !== undefined) snapshot.seed = c.seedSet?.entries ?? [];
    const tasks: Partial<Record<Bucket, BucketChange>> = {};
    for (const b of ALL_BUCKETS) {
      const entries = snapshot[b];
      if (entries) tasks[b] = diffBucket(this.id, b, this.mirror[b], entries, () => rec.taskSeq++);
    }
    const from = c.cutAfter === undefined ? null : c.cutAfter + 1;
    let removed = NO_ROWS_REMOVED;
    if (from !== null) {
      const [steps, samples, evals] = await Promise.all(
        ROW_STORES.map((s) => this.db.count(s, runRange(this.id, from))),
      );
      removed = { steps, samples, evals };
    }
    const ck = c.checkpoint && checkpointRecords(this.id, c.checkpoint);
    await writeTx(this.db, c.what, prev.step, (w) => {
      if (from !== null) for (const s of ROW_STORES) w.delete(s, runRange(this.id, from));
      for (const s of c.dropCheckpoints ?? []) w.deleteCheckpoint([this.id, s]);
      for (const s of c.steps ?? []) w.put('steps', { ...s, runId: this.id });
      for (const s of c.samples ?? []) w.put('samples', { ...s, runId: this.id });
      for (const e of c.evals ?? []) w.put('evals', { ...e, runId: this.id });
      for (const [bucket, ch] of Object.entries(tasks) as [Bucket, BucketChange][]) {
        for (const id of ch.deletes) w.delete('tasks', [this.id, bucket, id]);
        for (const r of ch.puts) w.put('tasks', r);
      }
      if (ck) w.putCheckpoint(ck);
      w.put('runs', rec);
    });
    this.committed = rec;
    for (const [bucket, ch] of Object.entries(tasks) as [Bucket, BucketChange][])
      this.mirror[bucket] = ch.mirror;
    return removed;
  }

  async checkpointSteps(): Promise<number[]> {
    return (await this.db.getAllKeys('checkpoints', runRange(this.id))).map((k) => k[1]);
  }

  async saveCheckpoint(blob: CheckpointBlob, prune: number[], what: string): Promise<CheckpointInfo> {
    const value = checkpointRecords(this.id, blob);
    await writeTx(this.db, what, this.committed.step, (w) => {
      w.putCheckpoint(value);
      for (const s of prune) w.deleteCheckpoint([this.id, s]);
    });
    return blob.info;
  }

  async close(): Promise<void> {
    try {
      const rec = { ...this.committed, writer: null };
      await writeTx(this.db, 'the writer release', rec.step, (w) => w.put('runs', rec));
    } finally {
      this.release?.();
    }
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

  /** The writer over a committed record and its task entries. */
  private writer(rec: RunRecord, buckets: Record<Bucket, TaskRecord[]>, release: () => void): RunWriter {
    const applier = new IdbRunApplier(this.db, rec.id, release, rec, mirrorOf(buckets));
    const reader = new IdbRunReader(this.db, rec.id, () => applier.committed);
    return new StoreRunWriter(reader, applier, headOf(rec), buffersOf(buckets));
  }

  async createRun(id: string, init: NewRun): Promise<RunWriter> {
    const release = await this.lock(id);
    try {
      const rec = newRecord(newRunHead(id, init), this.writerInfo());
      await writeTx(this.db, `the new run "${id}"`, 0, (w) => w.add('runs', rec)).catch((err) => {
        if ((err as { name?: string }).name === 'ConstraintError')
          throw new StoreError(`a run "${id}" already exists`);
        throw err;
      });
      return this.writer(rec, noBuckets(), release);
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
      return this.writer(rec, await readBuckets(this.db, id), release);
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
        for (const s of ['steps', 'samples', 'evals', 'tasks', 'checkpoints', 'checkpointData'] as const)
          w.delete(s, wholeRunRange(id));
      });
    } finally {
      release();
    }
  }

  /** One transaction: the run record, its rows, task entries and checkpoint. */
  async importRun(id: string, data: RunExport): Promise<RunMeta> {
    const release = await this.lock(id);
    try {
      if (await this.db.get('runs', id)) throw new StoreError(`a run "${id}" already exists`);
      const change = importChange(id, data, `the imported run "${id}"`);
      const empty = newRecord(newRunHead(id, change.head), null);
      const applier = new IdbRunApplier(this.db, id, null, empty, mirrorOf(noBuckets()));
      await applier.apply(change);
      return metaOf(applier.committed);
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
