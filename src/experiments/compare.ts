// Side-by-side comparison of whole runs (issue 10): per run the final and best eval accuracy per
// set/mode, the area under the solver-accuracy curve, the mean valid rate and the sequences generated,
// plus the config knobs on which the runs differ. Reads runs only through RunReader, so it works on run
// folders (Node) and IndexedDB (app) alike. Browser-safe.
import type { RunConfig } from '../config.ts';
import type { StepMetrics } from '../selfplay/types.ts';
import { TASK_TYPES, type TaskType } from '../selfplay/types.ts';
import type { EvalRow, RunMeta, RunReader, StepRow } from '../store/types.ts';

/** What the curves are plotted against: optimizer steps, or sequences generated (equal generation budget). */
export type XAxis = 'steps' | 'sequences';

export interface EvalSummary {
  /** Eval name, `set:mode` (e.g. `arith_eval_200:raw`). */
  name: string;
  final: { step: number; accuracy: number };
  best: { step: number; accuracy: number };
  /** Accuracy at step 0 (the base model), when recorded. */
  base: number | null;
}

export interface RunData {
  /** How the run is named in tables and legends (its folder or id). */
  label: string;
  meta: RunMeta;
  steps: StepRow[];
  evals: EvalRow[];
}

export interface RunOutcome {
  label: string;
  mode: RunConfig['mode'];
  /** Last committed step, and the steps the run was configured for. */
  step: number;
  totalSteps: number;
  status: RunMeta['status'];
  evals: EvalSummary[];
  /** Mean solver accuracy under the curve (trapezoids over the x axis, divided by its span). */
  solverAuc: number | null;
  /** Mean over steps of the proposers' valid rate (mean over the task types present). */
  meanValidRate: number | null;
  /** Sequences sampled over all steps (proposals, estimation rollouts, solver / GRPO completions). */
  sequencesGenerated: number;
  notZeroData: boolean;
}

export interface ConfigDifference {
  key: keyof RunConfig;
  /** One value per run, in run order. */
  values: unknown[];
}

export interface Comparison {
  x: XAxis;
  runs: RunOutcome[];
  configDiff: ConfigDifference[];
}

export async function loadRunData(reader: RunReader, label?: string): Promise<RunData> {
  const [meta, steps, evals] = await Promise.all([reader.meta(), reader.steps(), reader.evals()]);
  return { label: label ?? meta.id, meta, steps: [...steps].sort((a, b) => a.step - b.step), evals };
}

const meanOf = (xs: readonly number[]): number | null =>
  xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;

/** Mean solver accuracy of a step over the task types it trained (GRPO: its one solver group). */
export function stepSolverAccuracy(m: StepMetrics): number | null {
  const rates = TASK_TYPES.map((t) => m.groups[`${t}:solve`]?.solveRate).filter(
    (v): v is number => typeof v === 'number' && Number.isFinite(v),
  );
  return meanOf(rates);
}

export function typeSolverAccuracy(m: StepMetrics, type: TaskType): number | null {
  const v = m.groups[`${type}:solve`];
  return v && v.count > 0 && typeof v.solveRate === 'number' ? v.solveRate : null;
}

/** Mean proposer reward of a step over the task types present. */
export function stepProposerReward(m: StepMetrics): number | null {
  return meanOf(
    TASK_TYPES.map((t) => m.groups[`${t}:propose`])
      .filter((g) => g !== undefined && g.count > 0)
      .map((g) => g!.meanReward),
  );
}

/** Mean valid rate of a step's proposals over the task types present (null for GRPO). */
export function stepValidRate(m: StepMetrics): number | null {
  return meanOf(
    TASK_TYPES.map((t) => m.groups[`${t}:propose`]?.validRate).filter(
      (v): v is number => typeof v === 'number' && Number.isFinite(v),
    ),
  );
}

/** The x position of every committed step: its number, or the sequences generated up to and including it. */
export function stepPositions(steps: readonly StepRow[], x: XAxis): Map<number, number> {
  const out = new Map<number, number>([[0, 0]]);
  let total = 0;
  for (const row of steps) {
    total += row.metrics.generatedSequences;
    out.set(row.step, x === 'steps' ? row.step : total);
  }
  return out;
}

/** Area under a piecewise-linear curve divided by its x span; a single point is its own value. */
export function normalisedArea(points: readonly [number, number][]): number | null {
  if (points.length === 0) return null;
  if (points.length === 1) return points[0][1];
  const span = points[points.length - 1][0] - points[0][0];
  if (span <= 0) return meanOf(points.map((p) => p[1]));
  let area = 0;
  for (let k = 1; k < points.length; k++) {
    area += ((points[k][0] - points[k - 1][0]) * (points[k][1] + points[k - 1][1])) / 2;
  }
  return area / span;
}

export function summariseEvals(evals: readonly EvalRow[]): EvalSummary[] {
  const byName = new Map<string, { step: number; accuracy: number }[]>();
  for (const row of evals) {
    const acc = (row.result as { accuracy?: unknown } | null)?.accuracy;
    if (typeof acc !== 'number') continue;
    if (!byName.has(row.name)) byName.set(row.name, []);
    byName.get(row.name)!.push({ step: row.step, accuracy: acc });
  }
  return [...byName]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, points]) => {
      const sorted = points.sort((a, b) => a.step - b.step);
      // The earliest step wins a tie for best: it reached that accuracy first.
      const best = sorted.reduce((b, p) => (p.accuracy > b.accuracy ? p : b), sorted[0]);
      return {
        name,
        final: sorted[sorted.length - 1],
        best,
        base: sorted[0].step === 0 ? sorted[0].accuracy : null,
      };
    });
}

export function summariseRun(run: RunData, x: XAxis = 'steps'): RunOutcome {
  const pos = stepPositions(run.steps, x);
  const solver = run.steps
    .map((r) => [pos.get(r.step)!, stepSolverAccuracy(r.metrics)] as const)
    .filter((p): p is [number, number] => p[1] !== null);
  return {
    label: run.label,
    mode: run.meta.config.mode,
    step: run.meta.step,
    totalSteps: run.meta.config.totalSteps,
    status: run.meta.status,
    evals: summariseEvals(run.evals),
    solverAuc: normalisedArea(solver),
    meanValidRate: meanOf(
      run.steps.map((r) => stepValidRate(r.metrics)).filter((v): v is number => v !== null),
    ),
    sequencesGenerated: run.steps.reduce((a, r) => a + r.metrics.generatedSequences, 0),
    notZeroData: run.meta.notZeroData,
  };
}

/** Config knobs whose values differ between the runs (compared as JSON), in schema order. */
export function configDifferences(configs: readonly RunConfig[]): ConfigDifference[] {
  if (configs.length === 0) return [];
  const keys = new Set<keyof RunConfig>();
  for (const c of configs) for (const k of Object.keys(c) as (keyof RunConfig)[]) keys.add(k);
  const out: ConfigDifference[] = [];
  for (const key of keys) {
    const values = configs.map((c) => c[key]);
    const first = JSON.stringify(values[0]);
    if (values.some((v) => JSON.stringify(v) !== first)) out.push({ key, values });
  }
  return out;
}

export function compareRuns(runs: readonly RunData[], x: XAxis = 'steps'): Comparison {
  return {
    x,
    runs: runs.map((r) => summariseRun(r, x)),
    configDiff: configDifferences(runs.map((r) => r.meta.config)),
  };
}
