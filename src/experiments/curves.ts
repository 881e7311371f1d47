// The curves a run comparison overlays (issue 10): solver accuracy per task type, proposer reward, valid
// rate and eval accuracy, each as one point list per run on a shared x axis (steps or sequences
// generated). Shared by the SVG plot and, through the same functions, any chart view. Browser-safe.
import { TASK_TYPES } from '../selfplay/types.ts';
import {
  stepPositions,
  stepProposerReward,
  stepValidRate,
  summariseEvals,
  typeSolverAccuracy,
  type RunData,
  type XAxis,
} from './compare.ts';

export type Point = [x: number, y: number];

export interface CurveSet {
  id: string;
  title: string;
  /** Fixed y range for rates and accuracies; auto when absent. */
  yRange?: [number, number];
  /** One entry per run, in run order (an empty list when the run has no such data). */
  runs: { label: string; points: Point[] }[];
}

const TYPE_NAMES = { abd: 'abduction', ded: 'deduction', ind: 'induction' } as const;

export function xAxisLabel(x: XAxis): string {
  return x === 'steps' ? 'step' : 'sequences generated';
}

/** Every curve set with data in at least one run, in a fixed order. */
export function comparisonCurves(runs: readonly RunData[], x: XAxis): CurveSet[] {
  const positions = runs.map((r) => stepPositions(r.steps, x));
  const fromSteps = (pick: (r: RunData['steps'][number]) => number | null) =>
    runs.map((run, i) => ({
      label: run.label,
      points: run.steps
        .map((row) => [positions[i].get(row.step)!, pick(row)] as const)
        .filter((p): p is Point => p[1] !== null && Number.isFinite(p[1])),
    }));
  const sets: CurveSet[] = [
    ...TASK_TYPES.map((t) => ({
      id: `solver-accuracy-${t}`,
      title: `Solver accuracy: ${TYPE_NAMES[t]}`,
      yRange: [0, 1] as [number, number],
      runs: fromSteps((row) => typeSolverAccuracy(row.metrics, t)),
    })),
    {
      id: 'proposer-reward',
      title: 'Proposer reward (mean over task types)',
      runs: fromSteps((row) => stepProposerReward(row.metrics)),
    },
    {
      id: 'valid-rate',
      title: 'Valid proposals (mean over task types)',
      yRange: [0, 1],
      runs: fromSteps((row) => stepValidRate(row.metrics)),
    },
  ];
  const evalNames = [...new Set(runs.flatMap((r) => summariseEvals(r.evals).map((e) => e.name)))].sort();
  for (const name of evalNames) {
    sets.push({
      id: `eval-${name.replace(/[^a-zA-Z0-9_-]/g, '-')}`,
      title: `Eval accuracy: ${name}`,
      yRange: [0, 1],
      runs: runs.map((run, i) => ({
        label: run.label,
        points: run.evals
          .filter((e) => e.name === name && positions[i].has(e.step))
          .map((e) => [positions[i].get(e.step)!, (e.result as { accuracy?: unknown })?.accuracy] as const)
          .filter((p): p is Point => typeof p[1] === 'number')
          .sort((a, b) => a[0] - b[0]),
      })),
    });
  }
  return sets.filter((s) => s.runs.some((r) => r.points.length > 0));
}
