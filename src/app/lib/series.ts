// What each live chart plots, as functions of a step's metrics (or of an eval record), so the chart
// component stays generic and the mapping is testable without a DOM.
import type { EvalRecord } from '../../protocol.ts';
import type { GroupKey, StepMetrics } from '../../selfplay/types.ts';
import type { TaskType } from '../../selfplay/types.ts';

/** A step's metrics plus the wall time the worker measured for it (absent for history from the store). */
export interface StepPoint {
  metrics: StepMetrics;
  wallMs?: number;
}

export interface SeriesSpec<T> {
  label: string;
  color: string;
  /** Dashed line (the second family in a chart, e.g. format rate next to valid rate). */
  dash?: boolean;
  value: (row: T) => number | null;
}

export interface ChartSpec<T> {
  id: string;
  title: string;
  /** One sentence under the title: what a reader should look for. */
  hint: string;
  x: (row: T) => number;
  series: SeriesSpec<T>[];
  /** Fixed y range (rates and accuracies); auto when absent. */
  yRange?: [number, number];
  /** Fixed x range (charts that must share one axis, e.g. a run comparison); auto when absent. */
  xRange?: [number, number];
  /** Shown only when some row has a value (the KL chart of runs with klBeta > 0). */
  optional?: boolean;
}

/** The charts to draw for these rows: an optional chart with no value in any row is left out. */
export function chartsWithData<T>(specs: readonly ChartSpec<T>[], rows: readonly T[]): ChartSpec<T>[] {
  return specs.filter((c) => !c.optional || rows.some((r) => c.series.some((s) => s.value(r) !== null)));
}

export const TASK_LABELS: Record<TaskType, string> = { abd: 'abduction', ded: 'deduction', ind: 'induction' };
// Colour-blind-safe (Okabe–Ito) and readable on white.
export const TASK_COLORS: Record<TaskType, string> = { abd: '#0072b2', ded: '#d55e00', ind: '#009e73' };
const TYPES: TaskType[] = ['abd', 'ded', 'ind'];

const finite = (v: number | null | undefined): number | null =>
  v === null || v === undefined || !Number.isFinite(v) ? null : v;

function group(m: StepMetrics, key: GroupKey) {
  return m.groups[key];
}

/** Sum of the phase times: the step's wall time as the runner measured it. */
export function stepWallMs(p: StepPoint): number | null {
  if (p.wallMs !== undefined) return p.wallMs;
  const times = Object.values(p.metrics.timeMs).filter((t): t is number => typeof t === 'number');
  return times.length ? times.reduce((a, b) => a + b, 0) : null;
}

function meanOver(
  m: StepMetrics,
  role: 'propose' | 'solve',
  pick: (g: NonNullable<StepMetrics['groups'][GroupKey]>) => number | null,
) {
  const values = TYPES.map((t) => group(m, `${t}:${role}`))
    .filter((g) => g !== undefined && g.count > 0)
    .map((g) => pick(g!))
    .filter((v): v is number => v !== null && Number.isFinite(v));
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

const stepX = (p: StepPoint) => p.metrics.step;

/** The chart of an imitation run ("Imitation first"): the loss on the verifier-made records. */
export const IMITATION_CHARTS: ChartSpec<StepPoint>[] = [
  {
    id: 'imitation-loss',
    title: 'Imitation loss',
    hint: 'Mean negative log-likelihood of the correct completions, before each update: it falls as the model imitates.',
    x: stepX,
    series: [
      { label: 'loss', color: TASK_COLORS.ded, value: (p: StepPoint) => finite(p.metrics.imitationLoss) },
    ],
  },
];

export const STEP_CHARTS: ChartSpec<StepPoint>[] = [
  {
    id: 'solver-accuracy',
    title: 'Solver accuracy per task type',
    hint: 'Fraction of solver answers the verifier marked correct.',
    x: stepX,
    yRange: [0, 1],
    series: TYPES.map((t) => ({
      label: TASK_LABELS[t],
      color: TASK_COLORS[t],
      value: (p: StepPoint) => finite(group(p.metrics, `${t}:solve`)?.solveRate),
    })),
  },
  {
    id: 'proposer-reward',
    title: 'Proposer reward per task type',
    hint: 'High when proposed tasks are solvable sometimes but not always (learnability).',
    x: stepX,
    series: TYPES.map((t) => ({
      label: TASK_LABELS[t],
      color: TASK_COLORS[t],
      value: (p: StepPoint) => finite(group(p.metrics, `${t}:propose`)?.meanReward),
    })),
  },
  {
    id: 'valid-format',
    title: 'Valid proposals and format rate',
    hint: 'Solid: proposals that passed validation; dashed: responses in the <think>/<answer> format.',
    x: stepX,
    yRange: [0, 1],
    series: [
      ...TYPES.map((t) => ({
        label: `valid ${TASK_LABELS[t]}`,
        color: TASK_COLORS[t],
        value: (p: StepPoint) => finite(group(p.metrics, `${t}:propose`)?.validRate),
      })),
      {
        label: 'format (proposer)',
        color: '#6b4c9a',
        dash: true,
        value: (p: StepPoint) => meanOver(p.metrics, 'propose', (g) => g.formatRate),
      },
      {
        label: 'format (solver)',
        color: '#cc79a7',
        dash: true,
        value: (p: StepPoint) => meanOver(p.metrics, 'solve', (g) => g.formatRate),
      },
    ],
  },
  {
    id: 'baselines',
    title: 'TRR++ baselines (mean reward per task × role)',
    hint: 'Each of the six groups is normalised against its own baseline; zero-variance groups teach nothing.',
    x: stepX,
    series: TYPES.flatMap((t) => [
      {
        label: `${TASK_LABELS[t]} propose`,
        color: TASK_COLORS[t],
        dash: true,
        value: (p: StepPoint) => finite(group(p.metrics, `${t}:propose`)?.meanReward),
      },
      {
        label: `${TASK_LABELS[t]} solve`,
        color: TASK_COLORS[t],
        value: (p: StepPoint) => finite(group(p.metrics, `${t}:solve`)?.meanReward),
      },
    ]),
  },
  {
    id: 'learnability',
    title: 'Learnability of proposed tasks',
    hint: 'Mean solve rate of valid proposals per type, and the fraction of groups with zero reward variance.',
    x: stepX,
    yRange: [0, 1],
    series: [
      ...TYPES.map((t) => ({
        label: `solve rate ${TASK_LABELS[t]}`,
        color: TASK_COLORS[t],
        value: (p: StepPoint) => finite(group(p.metrics, `${t}:propose`)?.solveRate),
      })),
      {
        label: 'zero-variance groups',
        color: '#555555',
        dash: true,
        value: (p: StepPoint) => finite(p.metrics.zeroVarianceFraction),
      },
    ],
  },
  {
    id: 'loss',
    title: 'Loss and gradient norm',
    hint: 'Gradient norm before clipping; the loss alone says little with one update per batch.',
    x: stepX,
    series: [
      { label: 'loss', color: '#1b1f24', value: (p: StepPoint) => finite(p.metrics.policy.loss) },
      { label: 'grad norm', color: '#d55e00', value: (p: StepPoint) => finite(p.metrics.policy.gradNorm) },
    ],
  },
  {
    id: 'kl',
    title: 'KL to the reference policy',
    hint: 'Mean k3 KL per trained token to the frozen base, before each update: β pulls it back towards 0.',
    x: stepX,
    optional: true,
    series: [{ label: 'KL (k3)', color: '#6b4c9a', value: (p: StepPoint) => finite(p.metrics.policy.kl) }],
  },
  {
    id: 'diversity',
    title: 'Diversity of proposals',
    hint: 'Distinct canonical programs among valid proposals, and their mean operator count.',
    x: stepX,
    series: [
      {
        label: 'distinct programs',
        color: '#0072b2',
        value: (p: StepPoint) => finite(p.metrics.distinctPrograms),
      },
      { label: 'mean operators', color: '#e69f00', value: (p: StepPoint) => finite(p.metrics.meanBinaryOps) },
    ],
  },
  {
    id: 'speed',
    title: 'Speed',
    hint: 'Generated tokens per second of step wall time, and the wall time of each step (slow when the tab was hidden).',
    x: stepX,
    series: [
      {
        label: 'generated tokens/s',
        color: '#009e73',
        value: (p: StepPoint) => {
          const ms = stepWallMs(p);
          // Runs recorded before generatedTokens existed fall back to the trained tokens.
          return ms ? ((p.metrics.generatedTokens ?? p.metrics.trainedTokens) / ms) * 1000 : null;
        },
      },
      {
        label: 'step wall time (s)',
        color: '#555555',
        dash: true,
        value: (p: StepPoint) => {
          const ms = stepWallMs(p);
          return ms === null ? null : ms / 1000;
        },
      },
    ],
  },
  {
    id: 'buffers',
    title: 'Task buffer sizes',
    hint: 'Tasks in each buffer: seeds plus valid proposals the solver trains on later.',
    x: stepX,
    series: TYPES.map((t) => ({
      label: TASK_LABELS[t],
      color: TASK_COLORS[t],
      value: (p: StepPoint) => finite(p.metrics.bufferSizes[t]),
    })),
  },
];

/** The eval chart's series are the tiers present in the records, named in the order they appear. */
export function evalChart(records: readonly EvalRecord[]): ChartSpec<EvalRecord> {
  const tiers: string[] = [];
  for (const r of records)
    for (const t of Object.keys(r.report.perTier)) if (!tiers.includes(t)) tiers.push(t);
  const palette = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#6b4c9a'];
  return {
    id: 'eval',
    title: 'Eval accuracy per tier',
    hint: 'Held-out arithmetic, greedy decoding, on the weights of each evaluated step.',
    x: (r) => r.step,
    yRange: [0, 1],
    series: [
      { label: 'overall', color: '#1b1f24', value: (r) => finite(r.report.accuracy) },
      ...tiers.map((tier, i) => ({
        label: tier,
        color: palette[i % palette.length],
        dash: true,
        value: (r: EvalRecord) => finite(r.report.perTier[tier]?.accuracy),
      })),
    ],
  };
}

/** Columns for uPlot: x first, then one array per series. Appends rows[from..] to existing columns. */
export function appendColumns<T>(
  spec: ChartSpec<T>,
  columns: (number | null)[][],
  rows: readonly T[],
  from: number,
): void {
  while (columns.length < spec.series.length + 1) columns.push([]);
  for (let i = from; i < rows.length; i++) {
    columns[0].push(spec.x(rows[i]));
    spec.series.forEach((s, k) => columns[k + 1].push(s.value(rows[i])));
  }
}

/** Counts of `values` in `bins` equal-width bins over [0, 1] (solve rates); the last bin includes 1. */
export function histogram01(values: readonly number[], bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    if (!Number.isFinite(v) || v < 0 || v > 1) continue;
    counts[Math.min(bins - 1, Math.floor(v * bins))]++;
  }
  return counts;
}
