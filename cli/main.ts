// tabzero: the headless twin of the app. Each subcommand lives in cli/commands/<name>.ts and exports
// `register(program)`; add it to the list below.
import { Command, CommanderError } from 'commander';
import { register as arith } from './commands/arith.ts';
import { register as compare } from './commands/compare.ts';
import { register as sweep } from './commands/sweep.ts';
import { register as checkOnnx } from './commands/check-onnx.ts';
import { register as evalSet } from './commands/eval-set.ts';
import { register as exportOnnx } from './commands/export-onnx.ts';
import { register as bench } from './commands/bench.ts';
import { register as generate } from './commands/generate.ts';
import { register as gpu } from './commands/gpu.ts';
import { register as logits } from './commands/logits.ts';
import { register as grad } from './commands/grad.ts';
import { register as serveModel } from './commands/serve-model.ts';
import { register as tinyModel } from './commands/tiny-model.ts';
import { register as tokenize } from './commands/tokenize.ts';
import { register as train } from './commands/train.ts';
import { register as pretrain } from './commands/pretrain.ts';
import { register as evalCmd } from './commands/eval.ts';
import { register as exportCmd } from './commands/export.ts';
import { register as importCmd } from './commands/import.ts';
import { filterDawnWarnings } from '../src/engine/node-gpu.ts';
import { TABZERO_VERSION } from '../src/version.ts';

const commands: ((program: Command) => void)[] = [
  gpu,
  tinyModel,
  tokenize,
  serveModel,
  generate,
  logits,
  arith,
  evalSet,
  train,
  pretrain,
  evalCmd,
  exportCmd,
  importCmd,
  compare,
  sweep,
  grad,
  bench,
  exportOnnx,
  checkOnnx,
];

export function buildProgram(): Command {
  const program = new Command('tabzero')
    .description('Absolute Zero self-play for Qwen2 on WebGPU, headless (Node + Dawn).')
    .version(TABZERO_VERSION)
    .option('--verbose', "also print the GPU driver's own warnings (Dawn's, filtered out by default)")
    .exitOverride();
  for (const add of commands) add(program);
  return program;
}

/** Runs the CLI; returns the exit code. Bad arguments give a one-line reason and a non-zero code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // --verbose is global: accepted before or after the command's name.
  filterDawnWarnings(!argv.includes('--verbose'));
  try {
    await program.parseAsync(
      argv.filter((a) => a !== '--verbose'),
      { from: 'user' },
    );
    // A command that reported its own failure (e.g. every bad line of an eval file) set the exit code.
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`tabzero: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] && /cli[/\\]main\.ts$/.test(process.argv[1]);
if (isEntry) {
  const code = await main(process.argv.slice(2));
  // Dawn keeps the event loop alive; exit explicitly once the command is done.
  process.exit(code);
}
