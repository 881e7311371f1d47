// `tabzero sweep --model DIR --preset P --vary key=v1,v2,... [--steps N] --out DIR`: one run per variant,
// one after another, resumable (finished runs are skipped, unfinished ones resumed), then the comparison
// of all of them (table on stdout, chart in OUT/comparison.svg unless --plot says otherwise).
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { PRESET_NAMES } from '../../src/config.ts';
import type { Comparison, XAxis } from '../../src/experiments/compare.ts';
import {
  parseVary,
  planSweep,
  runSweep,
  SweepError,
  type SweepDeps,
  type SweepSpec,
} from '../../src/experiments/sweep.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import type { RunMeta } from '../../src/store/types.ts';
import { checkPlotPath, runCompareCommand } from './compare.ts';

export interface SweepOptions extends SweepSpec {
  model: string;
  x: XAxis;
  /** Chart file; default OUT/comparison.svg. */
  plot?: string;
  log?: (text: string) => void;
}

export async function readRunMeta(dir: string): Promise<RunMeta | null> {
  const abs = path.resolve(dir);
  if (!existsSync(path.join(abs, 'run.json'))) return null;
  return (await new NodeRunStore(path.dirname(abs)).readRun(abs)).meta();
}

export async function runSweepCommand(opts: SweepOptions, train: SweepDeps['train']): Promise<Comparison> {
  const log = opts.log ?? ((t: string) => process.stdout.write(t));
  const plot = opts.plot ?? path.join(opts.out, 'comparison.svg');
  checkPlotPath(plot);
  if (planSweep(opts).length < 2) throw new SweepError('a sweep needs at least two variants to compare');
  await mkdir(opts.out, { recursive: true });
  const variants = await runSweep(opts, opts.model, {
    train,
    readMeta: readRunMeta,
    log: (line) => log(line + '\n'),
  });
  return runCompareCommand({ runs: variants.map((v) => v.dir), x: opts.x, plot, log });
}

function parseSteps(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

function parseX(value: string): XAxis {
  if (value !== 'steps' && value !== 'sequences')
    throw new InvalidArgumentError('expected steps or sequences');
  return value;
}

const collect = (v: string, acc: string[]) => [...acc, v];

interface SweepArgs {
  model: string;
  preset: string;
  vary: string[];
  set: string[];
  steps?: number;
  out: string;
  x: XAxis;
  plot?: string;
}

export function register(program: Command): void {
  program
    .command('sweep')
    .description('train one run per --vary value, one after another (resumable), then compare them')
    .requiredOption(
      '--model <dir|tiny|workshop>',
      'model folder, "tiny" (the built-in tiny model) or "workshop" (the shipped workshop model)',
    )
    .option('--preset <name>', `one of ${PRESET_NAMES.join(', ')}`, 'browser')
    .option(
      '--vary <key=v1,v2,...>',
      'a knob and its values (repeatable: the cartesian product)',
      collect,
      [],
    )
    .option('--set <key=value>', 'a knob shared by every variant (repeatable)', collect, [])
    .option('--steps <n>', "training steps per run (default: the preset's totalSteps)", parseSteps)
    .requiredOption('--out <dir>', 'folder for the run folders and the comparison chart')
    .option('--x <axis>', 'align the chart by steps or by sequences generated', parseX, 'steps' as XAxis)
    .option('--plot <file.svg>', 'chart file (default OUT/comparison.svg)')
    .action(async (args: SweepArgs) => {
      // Loaded on first use, so planning errors come first and `sweep --help` needs no engine.
      const train: SweepDeps['train'] = async (o) => (await import('./train.ts')).runTrainCommand(o);
      await runSweepCommand(
        {
          model: args.model,
          preset: args.preset,
          vary: args.vary.map(parseVary),
          set: args.set,
          steps: args.steps,
          out: args.out,
          x: args.x,
          plot: args.plot,
        },
        train,
      );
    });
}
