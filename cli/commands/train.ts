// `tabzero train`: a self-play run in Node, on the same Runner, engine and run loop as the app, with
// the run kept in a folder (run.json, steps.jsonl, samples.jsonl, buffers/, checkpoints/). Kill it at
// any point and `--resume` continues from the last checkpoint with nothing lost or duplicated.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseSeedSet } from '../../src/store/seed-set.ts';
import { basename, join } from 'node:path';
import {
  parseSetFlag,
  PRESET_NAMES,
  resolveConfig,
  type EvalFileSet,
  type RunConfig,
} from '../../src/config.ts';
import { sha256Hex } from '../../src/model/sha256.ts';
import { parseEvalFile } from '../../src/selfplay/eval-file.ts';
import type { StepMetrics } from '../../src/selfplay/types.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { engineShape } from '../../src/trainer/engine-shape.ts';
import { newRunRecord, openSession } from '../../src/trainer/run-start.ts';
import { checkSameModel } from '../../src/store/identity.ts';
import { runSummary } from '../../src/trainer/run-library.ts';
import { outputMode, RunProgress } from '../run-progress.ts';
import type { SessionEvent } from '../../src/trainer/session.ts';
import { recordedModelPath, resolveModelArg } from '../model-arg.ts';
import { closeFolders, loadEngine, loadFolder, parseIntArg } from '../engine-load.ts';

export interface TrainOptions {
  model: string;
  preset: string;
  set: string[];
  steps?: number;
  out: string;
  resume: boolean;
  checkpointEverySteps?: number;
  /** A seed set (seed.jsonl of another run, spec 4.8) to seed a new run from instead of proposing. */
  seedSet?: string;
  /** Your own eval files (JSONL), copied into a new run's config (evalFiles). */
  evalFiles?: string[];
  /** Where lines go (stdout by default). */
  log?: (line: string) => void;
  /** Print protocol.ts's events as JSON lines on stdout (the human lines go to stderr). */
  json?: boolean;
}

function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

/** One line per step: rewards per group, valid rate, generated tokens/s, time. */
export function stepLine(m: StepMetrics, wallMs: number, totalSteps: number): string {
  const g = m.groups;
  const groups = (['abd', 'ded', 'ind'] as const)
    .map((t) => `${t} P ${fmt(g[`${t}:propose`]?.meanReward)} S ${fmt(g[`${t}:solve`]?.meanReward)}`)
    .join(' | ');
  const proposals = (['abd', 'ded', 'ind'] as const).map((t) => g[`${t}:propose`]?.validRate ?? null);
  const valid = proposals.filter((v): v is number => v !== null);
  const validRate = valid.length ? valid.reduce((a, b) => a + b, 0) / valid.length : null;
  const tokPerS = (m.generatedTokens / wallMs) * 1000;
  return (
    `step ${m.step}/${totalSteps}  ${groups}  valid ${fmt(validRate)}  ` +
    `loss ${fmt(m.policy.loss, 3)} |g| ${fmt(m.policy.gradNorm, 3)}  ${fmt(tokPerS, 0)} generated tok/s  ` +
    `${(wallMs / 1000).toFixed(1)} s`
  );
}

/** Reads eval files into the config's form (name = the file's base name); every bad line is named. */
export async function readEvalFiles(paths: readonly string[]): Promise<EvalFileSet[]> {
  return Promise.all(
    paths.map(async (path) => {
      const bytes = await readFile(path);
      const items = parseEvalFile(bytes.toString('utf8'), path);
      return { name: basename(path), sha256: sha256Hex(bytes), items };
    }),
  );
}

export async function runTrainCommand(opts: TrainOptions): Promise<void> {
  const progress = new RunProgress(outputMode(opts.json ?? false), opts.out, 0);
  const log = opts.log ?? ((l: string) => progress.line(l));
  if (opts.resume && opts.evalFiles?.length)
    throw new Error('--eval-file names the eval files of a new run; a resumed run keeps its own');
  // Every input is checked before anything is written: the eval files and the seed set, the run to
  // resume (run.json) before the model loads, the model against the run's before the run is opened.
  const evalFiles = await readEvalFiles(opts.evalFiles ?? []);
  const seedSet = opts.seedSet ? parseSeedSet(await readFile(opts.seedSet, 'utf8'), opts.seedSet) : undefined;
  const store = new NodeRunStore(process.cwd());
  const hasRun = existsSync(join(opts.out, 'run.json'));
  if (hasRun && !opts.resume) {
    throw new Error(`${opts.out} already holds a run: add --resume to continue it, or choose another --out`);
  }
  const resumed = hasRun ? await (await store.readRun(opts.out)).meta() : null;
  const modelDir = await resolveModelArg(opts.model);
  const model = await loadFolder(modelDir);
  try {
    if (resumed) checkSameModel(resumed, model.identity);
    let writer;
    if (hasRun) {
      writer = await store.openRun(opts.out);
      const meta = await writer.meta();
      log(`resuming ${opts.out} at step ${meta.step} of ${meta.config.totalSteps}`);
    } else {
      const overrides: Partial<RunConfig> = Object.assign({}, ...opts.set.map(parseSetFlag));
      if (opts.steps !== undefined) overrides.totalSteps = opts.steps;
      if (opts.checkpointEverySteps !== undefined) overrides.checkpointEverySteps = opts.checkpointEverySteps;
      if (evalFiles.length) overrides.evalFiles = evalFiles;
      const config = resolveConfig(opts.preset, overrides);
      writer = await store.createRun(
        opts.out,
        newRunRecord(config, model.identity, {
          name: opts.out,
          preset: opts.preset,
          modelPath: recordedModelPath(opts.model),
        }),
      );
      log(`new run ${opts.out}: preset ${opts.preset}, ${config.totalSteps} steps, seed ${config.seed}`);
    }
    const config = (await writer.meta()).config;
    let engine;
    try {
      const shape = engineShape(config, 2, model.config.maxPositionEmbeddings);
      engine = await loadEngine(model, { maxBatch: shape.maxBatch, maxSeqLen: shape.maxSeqLen });
    } catch (err) {
      await writer.close(); // openSession closes it from here on
      throw err;
    }
    progress.setTotalSteps(config.totalSteps);
    const onEvent = (e: SessionEvent) => {
      progress.event(e);
      if (e.type === 'step') log(stepLine(e.result.metrics, e.wallMs, config.totalSteps));
      else if (e.type === 'log') log(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
      else if (e.type === 'eval')
        log(
          `eval ${e.set} ${e.mode} at step ${e.row.step}: ${(e.report.accuracy * 100).toFixed(1)}% of ${e.report.n}`,
        );
      else if (e.type === 'checkpoint') log(`checkpoint at step ${e.info.step} (${e.info.reason})`);
    };
    const { session, close } = await openSession({
      engine,
      model,
      writer,
      createTrainer: createEngineTrainer,
      verifierFactory: nodeWorkerFactory(),
      seedSet,
      onEvent,
    });
    const stop = () => session.requestStop();
    process.once('SIGINT', stop);
    try {
      const end = await session.run();
      progress.done();
      progress.json({ type: 'run-status', run: runSummary(await writer.meta(), false) });
      log(`run ${end} at step ${session.step}`);
    } finally {
      progress.done();
      process.off('SIGINT', stop);
      await close();
    }
  } finally {
    await closeFolders();
  }
}

interface TrainArgs {
  model: string;
  preset: string;
  set: string[];
  steps?: string;
  out: string;
  resume?: boolean;
  checkpointEverySteps?: string;
  seedSet?: string;
  evalFile: string[];
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('train')
    .description('run Absolute Zero self-play (or the GRPO baseline) in Node, resumable')
    .requiredOption(
      '--model <dir|tiny|workshop>',
      'model folder, "tiny" (the built-in tiny model) or "workshop" (the shipped workshop model)',
    )
    .option('--preset <name>', `one of ${PRESET_NAMES.join(', ')}`, 'browser')
    .option(
      '--set <key=value>',
      'override a config knob (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--steps <n>', "the run's total number of steps")
    .requiredOption('--out <dir>', 'run folder')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--checkpoint-every-steps <n>', 'also checkpoint every N steps (tests)')
    .option(
      '--seed-set <file>',
      "seed a new run from a seed set (another run's seed.jsonl) instead of proposing",
    )
    .option(
      '--eval-file <file.jsonl>',
      'also evaluate your own eval file (repeatable; the JSONL form `tabzero eval-set` writes)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--json', "print the run's events (protocol.ts) as JSON lines on stdout")
    .action(async (a: TrainArgs) => {
      if (!PRESET_NAMES.includes(a.preset as never))
        throw new Error(`--preset must be one of ${PRESET_NAMES.join(', ')}`);
      await runTrainCommand({
        model: a.model,
        preset: a.preset,
        set: a.set,
        steps: a.steps === undefined ? undefined : parseIntArg('--steps', a.steps, 0, 1),
        out: a.out,
        resume: Boolean(a.resume),
        seedSet: a.seedSet,
        evalFiles: a.evalFile,
        json: Boolean(a.json),
        checkpointEverySteps:
          a.checkpointEverySteps === undefined
            ? undefined
            : parseIntArg('--checkpoint-every-steps', a.checkpointEverySteps, 0, 1),
      });
    });
}
