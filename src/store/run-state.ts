// The runner state as the store keeps it: the buffers apart (a snapshot per task type, as entries) and
// the rest (rng, step, counters) as one small JSON value committed with every step. Browser-safe.
import type { RunnerState } from '../selfplay/types.ts';
import { TASK_TYPES } from '../selfplay/types.ts';
import type { TaskEntry, TaskType } from '../selfplay/types.ts';
import type { BufferSnapshot } from './types.ts';

export type RunnerStateRest = Omit<RunnerState, 'buffers'>;

export function emptyBuffers(): BufferSnapshot {
  return { ded: [], abd: [], ind: [] };
}

export function splitState(state: RunnerState): { rest: RunnerStateRest; buffers: BufferSnapshot } {
  const { buffers, ...rest } = state;
  return { rest, buffers: { ded: buffers.ded ?? [], abd: buffers.abd ?? [], ind: buffers.ind ?? [] } };
}

export function joinState(rest: RunnerStateRest | null, buffers: BufferSnapshot): RunnerState | null {
  return rest ? { ...rest, buffers } : null;
}

/** Task ids must be unique within a buffer: the store keys entries by them. */
export function checkBufferIds(buffers: BufferSnapshot): void {
  for (const type of TASK_TYPES) {
    const seen = new Set<string>();
    for (const e of buffers[type]) {
      if (typeof e.id !== 'string' || e.id === '') throw new Error(`buffer ${type}: an entry has no id`);
      if (seen.has(e.id)) throw new Error(`buffer ${type}: id "${e.id}" appears twice`);
      seen.add(e.id);
    }
  }
}

/** The seed set of a freshly seeded run: the seed entries of D_ded (= D_abd, spec 4.8) and D_ind. */
export function seedEntriesOf(buffers: BufferSnapshot): TaskEntry[] {
  return [...buffers.ded.filter((e) => e.seed), ...buffers.ind.filter((e) => e.seed)];
}

export const BUFFER_TYPES: readonly TaskType[] = ['ded', 'abd', 'ind'];
