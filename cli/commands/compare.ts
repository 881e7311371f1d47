// `tabzero compare RUN_DIR RUN_DIR ...`: the run comparison of issue 10 as text tables (final and best eval
// accuracy, solver-accuracy AUC, valid rate, sequences generated, config differences) and, with
// `--plot FILE.svg`, a chart of the overlaid curves aligned by step or by sequences generated.
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  compareRuns,
  loadRunData,
  type Comparison,
  type RunData,
  type XAxis,
} from '../../src/experiments/compare.ts';
import { comparisonCurves, xAxisLabel } from '../../src/experiments/curves.ts';
import { renderComparisonSvg } from '../../src/experiments/svg-plot.ts';
import { comparisonText } from '../../src/experiments/table.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';

export interface CompareOptions {
  runs: string[];
  x: XAxis;
  /** An .svg file to write the chart to. */
  plot?: string;
  log?: (text: string) => void;
}

function parseX(value: string): XAxis {
  if (value !== 'steps' && value !== 'sequences')
    throw new InvalidArgumentError('expected steps or sequences');
  return value;
}

/** Labels: the folder names, or the paths as given when two folders share a name. */
function runLabels(dirs: string[]): string[] {
  const names = dirs.map((d) => path.basename(path.resolve(d)));
  return new Set(names).size === names.length ? names : dirs;
}

export async function loadRunDirs(dirs: string[]): Promise<RunData[]> {
  const labels = runLabels(dirs);
  return Promise.all(
    dirs.map(async (dir, i) => {
      const abs = path.resolve(dir);
      if (!existsSync(path.join(abs, 'run.json'))) throw new Error(`${dir}: not a run folder (no run.json)`);
      const reader = await new NodeRunStore(path.dirname(abs)).readRun(abs);
      return loadRunData(reader, labels[i]);
    }),
  );
}

export function checkPlotPath(file: string): void {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.png') {
    throw new Error(`--plot ${file}: PNG needs a rasteriser TabZero does not ship; write an .svg instead`);
  }
  if (ext !== '.svg') throw new Error(`--plot ${file}: expected a file ending in .svg`);
}

export async function runCompareCommand(opts: CompareOptions): Promise<Comparison> {
  const log = opts.log ?? ((t: string) => process.stdout.write(t));
  if (opts.runs.length < 2)
    throw new Error(`compare needs at least two run folders (got ${opts.runs.length})`);
  if (opts.plot) checkPlotPath(opts.plot);
  const runs = await loadRunDirs(opts.runs);
  const comparison = compareRuns(runs, opts.x);
  log(comparisonText(comparison));
  if (opts.plot) {
    const svg = renderComparisonSvg(comparisonCurves(runs, opts.x), {
      labels: runs.map((r) => r.label),
      xLabel: xAxisLabel(opts.x),
    });
    await writeFile(opts.plot, svg);
    log(`chart → ${opts.plot}\n`);
  }
  return comparison;
}

export function register(program: Command): void {
  program
    .command('compare')
    .description(
      'compare two or more runs: eval accuracy, solver-accuracy AUC, valid rate, budget, config diff',
    )
    .argument('<runDirs...>', 'run folders (as written by tabzero train --out)')
    .option('--plot <file.svg>', 'write an SVG chart of the overlaid curves')
    .option('--x <axis>', 'align curves by steps or by sequences generated', parseX, 'steps' as XAxis)
    .action(async (runDirs: string[], opts: { plot?: string; x: XAxis }) => {
      await runCompareCommand({ runs: runDirs, x: opts.x, plot: opts.plot });
    });
}
