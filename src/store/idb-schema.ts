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
export const DB_SCHEMA_VERSION = 2;

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

/**
 * A checkpoint's manifest. Its bytes are a CheckpointData record of their own (schema 2): listing
 * checkpoints must not hand out Blobs, since Chromium keeps a deleted record's blob files — and counts
 * them against the quota — for as long as any Blob read from it is alive (until garbage collection), so
 * deleting a run to free space would free nothing.
 */
export interface CheckpointRecord {
  runId: string;
  step: number;
  /** The manifest: `{format, ...CheckpointInfo}`. */
  manifest: Record<string, unknown>;
}

/** A checkpoint's bytes, under the same key as its CheckpointRecord. */
export interface CheckpointData {
  runId: string;
  step: number;
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
  checkpointData: { key: [string, number]; value: CheckpointData };
}

export type StoreName = 'runs' | 'steps' | 'samples' | 'evals' | 'tasks' | 'checkpoints' | 'checkpointData';

export async function openTabzeroDb(name = DB_NAME): Promise<IDBPDatabase<TabzeroDb>> {
  try {
    const db = await openDB<TabzeroDb>(name, DB_SCHEMA_VERSION, {
      async upgrade(db, oldVersion, _newVersion, tx) {
        if (oldVersion < 1) {
          db.createObjectStore('runs', { keyPath: 'id' });
          db.createObjectStore('steps', { keyPath: ['runId', 'step'] });
          db.createObjectStore('samples', { keyPath: ['runId', 'step', 'i'] });
          db.createObjectStore('evals', { keyPath: ['runId', 'step', 'name'] });
          db.createObjectStore('tasks', { keyPath: ['runId', 'bucket', 'id'] });
          db.createObjectStore('checkpoints', { keyPath: ['runId', 'step'] });
        }
        if (oldVersion < 2) {
          // A checkpoint's bytes move out of its manifest record (see CheckpointRecord).
          db.createObjectStore('checkpointData', { keyPath: ['runId', 'step'] });
          const data = tx.objectStore('checkpointData');
          const checkpoints = tx.objectStore('checkpoints');
          for (let c = await checkpoints.openCursor(); c; c = await c.continue()) {
            const { weights, state, ...manifest } = c.value as CheckpointRecord & Partial<CheckpointData>;
            if (weights && state) {
              await data.put({ runId: manifest.runId, step: manifest.step, weights, state });
              await c.update(manifest);
            }
          }
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
