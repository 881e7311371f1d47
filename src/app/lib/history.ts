// Merging live events into the history the charts show. A resumed run rolls back to its last
// checkpoint, so a step number can arrive again: it replaces that step and everything after it.
import type { EvalRecord, ModelChoice, RunSummary } from '../../protocol.ts';
import type { StepPoint } from './series.ts';
import { WORKSHOP_MODEL_NAME } from '../../trainer/workshop-recipe.ts';

export function mergeStep(points: readonly StepPoint[], point: StepPoint): StepPoint[] {
  const step = point.metrics.step;
  const last = points.at(-1);
  if (!last || last.metrics.step < step) return [...points, point];
  return [...points.filter((p) => p.metrics.step < step), point];
}

/**
 * Evals are keyed by (step, set, mode, backend): a repeated eval replaces the old one; kept in step order.
 */
export function mergeEval(records: readonly EvalRecord[], record: EvalRecord): EvalRecord[] {
  const same = (r: EvalRecord) =>
    r.step === record.step &&
    r.set === record.set &&
    r.mode === record.mode &&
    (r.backend ?? 'engine') === (record.backend ?? 'engine');
  return [...records.filter((r) => !same(r)), record].sort((a, b) => a.step - b.step);
}

/** Keeps the list's order (newest first by `updatedAt`) with `run` replaced or added. */
export function mergeRun(runs: readonly RunSummary[], run: RunSummary): RunSummary[] {
  return [run, ...runs.filter((r) => r.id !== run.id)].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
}

/**
 * How to load the base model a run was trained on, when it is not the one loaded now. Local files
 * cannot be re-opened without the person choosing them again, so those return null.
 */
export function modelChoiceForRun(run: RunSummary, hubEndpoint?: string): ModelChoice | null {
  const { repo, revision } = run.model;
  // The built-in tiny model is named `local/tiny-seed-N` (generated in place, so it can be made again).
  const tiny = /^(?:local\/)?tiny-seed-(\d+)$/.exec(repo);
  if (tiny) return { kind: 'tiny', seed: Number(tiny[1]) };
  if (repo === `local/${WORKSHOP_MODEL_NAME}`) return { kind: 'workshop' };
  if (repo.startsWith('local/') || repo.startsWith('local:') || repo === '') return null;
  return { kind: 'hub', repo, revision, ...(hubEndpoint ? { endpoint: hubEndpoint } : {}) };
}
