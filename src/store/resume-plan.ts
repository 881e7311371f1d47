// Backend-independent choices of checkpoints and rows: which checkpoint to resume from (the newest that
// passes its integrity check; corrupt ones are reported and discarded), which one an export carries,
// which ones a listing shows, and how eval rows are ordered. Browser-safe.
import { decodeCheckpoint } from './checkpoint-codec.ts';
import { CorruptDataError } from './errors.ts';
import type { CheckpointBlob, CheckpointInfo, EvalRow, LoadedCheckpoint } from './types.ts';

export interface CheckpointChoice {
  chosen: LoadedCheckpoint | null;
  /** Checkpoints to delete in the rollback: corrupt ones and any past the committed step. */
  discard: number[];
  warnings: string[];
}

export async function chooseCheckpoint(
  steps: readonly number[],
  committedStep: number,
  load: (step: number) => Promise<LoadedCheckpoint>,
): Promise<CheckpointChoice> {
  const discard: number[] = [];
  const warnings: string[] = [];
  for (const step of [...steps].sort((a, b) => b - a)) {
    if (step > committedStep) {
      // Only an interrupted rollback leaves one: checkpoints are taken at the committed step.
      discard.push(step);
      warnings.push(`checkpoint at step ${step} is past the committed step ${committedStep}; removed`);
      continue;
    }
    try {
      const chosen = await load(step);
      return { chosen, discard, warnings };
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
      discard.push(step);
      warnings.push(
        `checkpoint at step ${step} is corrupt and was removed (${err.message}); using an earlier one`,
      );
    }
  }
  if (committedStep > 0 || discard.length) {
    warnings.push(
      `no valid checkpoint: the run restarts from its beginning (${committedStep} steps rolled back)`,
    );
  }
  return { chosen: null, discard, warnings };
}

/** The newest checkpoint at or before the committed step that passes its integrity check, or null. */
export async function latestValidCheckpoint(
  steps: readonly number[],
  committedStep: number,
  read: (step: number) => Promise<CheckpointBlob>,
): Promise<CheckpointBlob | null> {
  for (const step of [...steps].sort((a, b) => b - a)) {
    if (step > committedStep) continue;
    try {
      const blob = await read(step);
      await decodeCheckpoint(blob, `checkpoint at step ${step}`);
      return blob;
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
    }
  }
  return null;
}

/** The manifests of the checkpoints, in order, leaving out those that do not read (resume reports them). */
export async function readableCheckpoints<T>(
  items: readonly T[],
  manifest: (item: T) => CheckpointInfo | Promise<CheckpointInfo>,
): Promise<CheckpointInfo[]> {
  const out: CheckpointInfo[] = [];
  for (const item of items) {
    try {
      out.push(await manifest(item));
    } catch (err) {
      if (!(err instanceof CorruptDataError)) throw err;
    }
  }
  return out;
}

/** Evals in step order; a later row with the same step and name replaces an earlier one. */
export function latestEvals(rows: readonly EvalRow[]): EvalRow[] {
  const byKey = new Map<string, EvalRow>();
  for (const r of rows) {
    const key = `${r.step}\n${r.name}`;
    byKey.delete(key);
    byKey.set(key, r);
  }
  return [...byKey.values()].sort((a, b) => a.step - b.step);
}

export function checkCheckpointStep(step: number, committed: number): void {
  if (step !== committed) {
    throw new Error(
      `checkpoint for step ${step} refused: checkpoints are taken at a step boundary, after commitStep (committed step is ${committed})`,
    );
  }
}

export function checkNextStep(step: number, committed: number, stateStep: number): void {
  if (step !== committed + 1) {
    throw new Error(
      `commitStep(${step}) out of order: the committed step is ${committed}, expected ${committed + 1}`,
    );
  }
  if (stateStep !== step) throw new Error(`commitStep(${step}): runner state is at step ${stateStep}`);
}
