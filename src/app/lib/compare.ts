// Turns a comparison curve set (one point list per run, each on its own x positions) into what the
// uPlot chart component plots: rows on the union of the x positions, one series per run, null where a
// run has no point (the chart spans the gaps, so every run stays one continuous line).
import type { CurveSet } from '../../experiments/curves.ts';
import { RUN_COLORS } from '../../experiments/svg-plot.ts';
import type { ChartSpec } from './series.ts';

export interface OverlayRow {
  x: number;
  /** One value per run, in run order. */
  values: (number | null)[];
}

export function overlayRows(set: CurveSet): OverlayRow[] {
  const byX = new Map<number, (number | null)[]>();
  set.runs.forEach((run, i) => {
    for (const [x, y] of run.points) {
      if (!byX.has(x))
        byX.set(
          x,
          set.runs.map(() => null),
        );
      byX.get(x)![i] = y;
    }
  });
  return [...byX].sort(([a], [b]) => a - b).map(([x, values]) => ({ x, values }));
}

/** One x range for every chart of a comparison, so a given step (or budget) lines up across them. */
export function sharedXRange(sets: readonly CurveSet[]): [number, number] | undefined {
  const xs = sets.flatMap((s) => s.runs.flatMap((r) => r.points.map((p) => p[0])));
  if (xs.length === 0) return undefined;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo < hi ? [lo, hi] : undefined;
}

export function overlaySpec(
  set: CurveSet,
  labels: readonly string[],
  hint: string,
  xRange?: [number, number],
): ChartSpec<OverlayRow> {
  return {
    id: `compare-${set.id}`,
    title: set.title,
    hint,
    x: (r) => r.x,
    ...(xRange ? { xRange } : {}),
    ...(set.yRange ? { yRange: set.yRange } : {}),
    series: labels.map((label, i) => ({
      label,
      color: RUN_COLORS[i % RUN_COLORS.length],
      value: (r: OverlayRow) => r.values[i] ?? null,
    })),
  };
}

/** A config value as a table cell: scalars as they are, eval files by name, anything else as compact JSON. */
export function configCell(v: unknown): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.some((x) => typeof x === 'object' && x !== null && 'items' in x))
    return (v as { name: string }[]).map((f) => f.name).join(', ');
  return JSON.stringify(v);
}
