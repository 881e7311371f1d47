// A small, dependency-free SVG renderer for run comparisons: one panel per curve set, one path per run in
// each panel (same colour per run everywhere), a shared legend, min/max ticks. Text is XML-escaped so a
// run label can hold any character. Browser-safe.
import type { CurveSet, Point } from './curves.ts';

/** Okabe–Ito: colour-blind safe, readable on white. */
export const RUN_COLORS = [
  '#0072b2',
  '#d55e00',
  '#009e73',
  '#cc79a7',
  '#e69f00',
  '#56b4e9',
  '#000000',
  '#f0e442',
];

const PANEL_W = 420;
const PANEL_H = 220;
const COLUMNS = 2;
const MARGIN = { left: 52, right: 14, top: 28, bottom: 34 };
const LEGEND_ROW = 18;
const TICKS = 4;

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Shortest decimal text of a tick value. */
export function tickText(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10_000) return v.toExponential(1);
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(3)).toString();
}

function extent(values: number[], fixed?: [number, number]): [number, number] {
  if (fixed) return fixed;
  if (values.length === 0) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  return [lo, hi];
}

const num = (v: number) => (Math.round(v * 100) / 100).toString();

function panel(set: CurveSet, ox: number, oy: number, xLabel: string, xRange: [number, number]): string[] {
  const all = set.runs.flatMap((r) => r.points);
  const [x0, x1] = xRange;
  const [y0, y1] = extent(
    all.map((p) => p[1]),
    set.yRange,
  );
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const left = ox + MARGIN.left;
  const top = oy + MARGIN.top;
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number) => top + h - ((Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * h;
  const out: string[] = [`<g class="panel" data-curve="${escapeXml(set.id)}">`];
  out.push(
    `<text x="${num(ox + PANEL_W / 2)}" y="${num(oy + 16)}" text-anchor="middle" font-weight="bold">${escapeXml(set.title)}</text>`,
    `<rect x="${num(left)}" y="${num(top)}" width="${num(w)}" height="${num(h)}" fill="none" stroke="#999"/>`,
  );
  for (let k = 0; k <= TICKS; k++) {
    const xv = x0 + ((x1 - x0) * k) / TICKS;
    const yv = y0 + ((y1 - y0) * k) / TICKS;
    out.push(
      `<text x="${num(sx(xv))}" y="${num(top + h + 14)}" text-anchor="middle" font-size="10">${escapeXml(tickText(xv))}</text>`,
      `<text x="${num(left - 4)}" y="${num(sy(yv) + 3)}" text-anchor="end" font-size="10">${escapeXml(tickText(yv))}</text>`,
      `<line x1="${num(left)}" y1="${num(sy(yv))}" x2="${num(left + w)}" y2="${num(sy(yv))}" stroke="#eee"/>`,
    );
  }
  out.push(
    `<text x="${num(left + w / 2)}" y="${num(top + h + 28)}" text-anchor="middle" font-size="10">${escapeXml(xLabel)}</text>`,
  );
  set.runs.forEach((run, i) => {
    if (run.points.length === 0) return;
    const d = run.points
      .map((p: Point, k) => `${k === 0 ? 'M' : 'L'}${num(sx(p[0]))} ${num(sy(p[1]))}`)
      .join(' ');
    // A lone point is drawn as a dot (a zero-length segment with round caps).
    const dot = run.points.length === 1 ? ' h0.01' : '';
    out.push(
      `<path class="run-curve" data-run="${i}" d="${d}${dot}" fill="none" stroke="${RUN_COLORS[i % RUN_COLORS.length]}" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"><title>${escapeXml(run.label)}</title></path>`,
    );
  });
  out.push('</g>');
  return out;
}

/** The whole figure: legend on top, then the panels in a grid. */
export function renderComparisonSvg(
  sets: readonly CurveSet[],
  opts: { labels: string[]; xLabel: string },
): string {
  const rows = Math.ceil(sets.length / COLUMNS);
  const legendH = 10 + LEGEND_ROW * opts.labels.length;
  const width = PANEL_W * Math.min(COLUMNS, Math.max(1, sets.length));
  const height = legendH + PANEL_H * rows;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    '<g class="legend">',
  ];
  opts.labels.forEach((label, i) => {
    const y = 10 + LEGEND_ROW * i;
    const color = RUN_COLORS[i % RUN_COLORS.length];
    out.push(
      `<line x1="12" y1="${y + 6}" x2="36" y2="${y + 6}" stroke="${color}" stroke-width="3"/>`,
      `<text x="42" y="${y + 10}">${escapeXml(label)}</text>`,
    );
  });
  out.push('</g>');
  // One x range for every panel, so a given step (or budget) lines up across the whole figure.
  const xRange = extent(sets.flatMap((set) => set.runs.flatMap((r) => r.points.map((p) => p[0]))));
  sets.forEach((set, k) => {
    const ox = (k % COLUMNS) * PANEL_W;
    out.push(...panel(set, ox, legendH + Math.floor(k / COLUMNS) * PANEL_H, opts.xLabel, xRange));
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
