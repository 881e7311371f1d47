// Plain-text tables of a run comparison, as `tabzero compare` prints them. Browser-safe.
import type { Comparison } from './compare.ts';

/** Columns padded to their widest cell; the header is underlined. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const percent = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(1)}%`;

function valueText(v: unknown): string {
  // evalFiles: the files' names (their items are in the runs).
  if (Array.isArray(v))
    return v.map((x) => (typeof x === 'object' && x && 'name' in x ? x.name : x)).join(',');
  return String(v);
}

/** The runs table: one row per run. */
export function runsTable(c: Comparison): string {
  const evalNames = [...new Set(c.runs.flatMap((r) => r.evals.map((e) => e.name)))].sort();
  const headers = [
    'run',
    'steps',
    'status',
    ...evalNames.flatMap((n) => [`${n} final`, `${n} best (step)`]),
    `solver AUC (${c.x})`,
    'valid rate',
    'sequences',
  ];
  const rows = c.runs.map((r) => {
    const evals = evalNames.flatMap((n) => {
      const e = r.evals.find((x) => x.name === n);
      return e ? [percent(e.final.accuracy), `${percent(e.best.accuracy)} (${e.best.step})`] : ['–', '–'];
    });
    return [
      r.label + (r.notZeroData ? ' *' : ''),
      `${r.step}/${r.totalSteps}`,
      r.status,
      ...evals,
      percent(r.solverAuc),
      percent(r.meanValidRate),
      String(r.sequencesGenerated),
    ];
  });
  return renderTable(headers, rows);
}

/** The config knobs that differ, one row per knob, one column per run. */
export function configDiffTable(c: Comparison): string {
  if (c.configDiff.length === 0) return 'The runs have the same config.';
  return renderTable(
    ['knob', ...c.runs.map((r) => r.label)],
    c.configDiff.map((d) => [String(d.key), ...d.values.map(valueText)]),
  );
}

export function comparisonText(c: Comparison): string {
  const notZero = c.runs.some((r) => r.notZeroData)
    ? '\n* not zero-data (seeded from templates or an imported seed set)'
    : '';
  return `${runsTable(c)}${notZero}\n\nConfig differences:\n${configDiffTable(c)}\n`;
}
