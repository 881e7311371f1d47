// The IndexedDB database `tabzero` (DESIGN.md "Data and files"): its object stores, keys and schema
// version, with the upgrade path from every older version. Browser-safe.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { TaskEntry } from '../selfplay/types.ts';
import { FormatVersionError } from './errors.ts';
import type { RUN_FORMAT } from './format.ts';
import type { RunHead } from './run-writer.ts';
import type { EvalRow, RunMeta, SampleRow, StepRow } from './types.ts';

export const DB_NAME = 'tabzero';
/** Bump with a new `if (oldVersion < N)` block in upgrade(); never edit an old block. */
export const DB_SCHEMA_VERSION = 1;

/** Where a task entry lives: one of the three buffers or the seed set. */
export type Bucket = 'ded' | 'abd' | 'ind' | 'seed';

export interface WriterInfo {
  /** Random per writer (per tab and open). */
  tab: string;
  since: string;
  agent: string;
}

export interface RunRecord extends RunHead {
  format: typeof RUN_FORMAT;
  /** Seed set header (the entries are tasks in bucket `seed`). */
  seedSource: { runId: string; model: RunMeta['model']; zeroData: boolean; createdAt: string } | null;
  /** Next insertion sequence number for task entries (keeps buffer order). */
  taskSeq: number;
  /** Who holds the writer lock, for the message a second tab gets. */
  writer: WriterInfo | null;
}

export interface TaskRecord {
  runId: string;
  bucket: Bucket;
  id: string;
  seq: number;
  entry: TaskEntry;
}

export interface CheckpointRecord {
  runId: string;
  step: number;
  /** The manifest: `{format, ...CheckpointInfo}`. */
  manifest: Record<string, unknown>;
  weights: Blob;
  state: Blob;
}

export interface TabzeroDb extends DBSchema {
  runs: { key: string; value: RunRecord };
  steps: { key: [string, number]; value: StepRow & { runId: string } };
  samples: { key: [string, number, number]; value: SampleRow & { runId: string } };
  evals: { key: [string, number, string]; value: EvalRow & { runId: string } };
  tasks: { key: [string, Bucket, string]; value: TaskRecord };
  checkpoints: { key: [string, number]; value: CheckpointRecord };
}

export type StoreName = 'runs' | 'steps' | 'samples' | 'evals' | 'tasks' | 'checkpoints';

export async function openTabzeroDb(name = DB_NAME): Promise<IDBPDatabase<TabzeroDb>> {
  try {
    const db = await openDB<TabzeroDb>(name, DB_SCHEMA_VERSION, {
      upgrade(db, oldVersion) {
        if (oldVersion < 1) {
          db.createObjectStore('runs', { keyPath: 'id' });
          db.createObjectStore('steps', { keyPath: ['runId', 'step'] });
          db.createObjectStore('samples', { keyPath: ['runId', 'step', 'i'] });
          db.createObjectStore('evals', { keyPath: ['runId', 'step', 'name'] });
          db.createObjectStore('tasks', { keyPath: ['runId', 'bucket', 'id'] });
          db.createObjectStore('checkpoints', { keyPath: ['runId', 'step'] });
        }
      },
      blocking() {
        // A newer TabZero in another tab wants to upgrade the schema: let it.
        db.close();
      },
    });
    return db;
  } catch (err) {
    if ((err as { name?: string }).name === 'VersionError') {
      throw new FormatVersionError(
        `The TabZero database "${name}" in this browser was upgraded by a newer TabZero (this one knows schema ` +
          `version ${DB_SCHEMA_VERSION}). Reload the page to get the newer TabZero.`,
      );
    }
    throw err;
  }
}

/** All keys of one run in a store keyed [runId, step, ...]: steps from `fromStep` on. */
export function runRange(runId: string, fromStep = -Infinity): IDBKeyRange {
  return IDBKeyRange.bound([runId, fromStep], [runId, []]);
}

export function bucketRange(runId: string, bucket: Bucket): IDBKeyRange {
  return IDBKeyRange.bound([runId, bucket], [runId, bucket, []]);
}

/** Every key of a run, whatever follows the run id. */
export function wholeRunRange(runId: string): IDBKeyRange {
  return IDBKeyRange.bound([runId], [runId, []]);
}
