// `tabzero pretrain`: imitation pretraining of a model TabZero creates itself (the workshop model). The
// folder --out holds the run (run.json, steps.jsonl, checkpoints/ — the same run store as `tabzero train`),
// init/ (the random-weight HF folder the run starts from) and, when the run ends, model/ (the trained HF
// folder: f32 weights, byte tokenizer). Kill it at any point; `--resume` continues from the last checkpoint.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseSetFlag, type RunConfig } from '../../src/config.ts';
import { nodeFolderSink, nodeFolderSource } from '../../src/model/node-folder.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import type { StepMetrics } from '../../src/selfplay/types.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { writeFullModelFolder } from '../../src/trainer/full-weights.ts';
import { engineShape } from '../../src/trainer/engine-shape.ts';
import { newRunRecord, openSession } from '../../src/trainer/run-start.ts';
import { runSummary } from '../../src/trainer/run-library.ts';
import { outputMode, RunProgress } from '../run-progress.ts';
import type { SessionEvent } from '../../src/trainer/session.ts';
import {
  RECIPE_NAMES,
  recipeConfig,
  recipeModelOptions,
  type RecipeName,
} from '../../src/trainer/workshop-recipe.ts';
import { closeFolders, loadEngine, loadFolder, parseIntArg } from '../engine-load.ts';

export interface PretrainOptions {
  recipe: RecipeName;
  out: string;
  steps?: number;
  seed?: number;
  /** `--set key=value` overrides of the recipe's run config (a new run only). */
  set?: string[];
  resume: boolean;
  log?: (line: string) => void;
  /** Print protocol.ts's events as JSON lines on stdout (the human lines go to stderr). */
  json?: boolean;
}

export const INIT_DIR = 'init';
export const MODEL_DIR = 'model';

function duration(s: number): string {
  if (!Number.isFinite(s)) return '–';
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)} h ${m % 60} min`
    : m > 0
      ? `${m} min ${Math.round(s % 60)} s`
      : `${Math.round(s)} s`;
}

/** One progress line: step, loss, tokens/s, ETA. */
export function pretrainLine(m: StepMetrics, wallMs: number, total: number, etaS: number): string {
  const loss = m.imitationLoss ?? NaN;
  const tokPerS = ((m.policy.tokens ?? m.trainedTokens) / wallMs) * 1000;
  return (
    `step ${m.step}/${total}  loss ${loss.toFixed(4)}  |g| ${m.policy.gradNorm.toFixed(3)}  ` +
    `${tokPerS.toFixed(0)} trained tok/s  ${(wallMs / 1000).toFixed(1)} s  ETA ${duration(etaS)}`
  );
}

async function nonEmpty(dir: string): Promise<boolean> {
  return existsSync(dir) && (await readdir(dir)).length > 0;
}

export async function runPretrainCommand(opts: PretrainOptions): Promise<void> {
  const progress = new RunProgress(outputMode(opts.json ?? false), opts.out, 0);
  const log = opts.log ?? ((l: string) => progress.line(l));
  const out = resolve(opts.out);
  const initDir = join(out, INIT_DIR);
  const store = new NodeRunStore(process.cwd());
  if (opts.resume) {
    const checkpoints = join(out, 'checkpoints');
    if (!existsSync(join(out, 'run.json')) || !(await nonEmpty(checkpoints)))
      throw new Error(`${opts.out} has no pretraining checkpoint to resume: start it without --resume`);
  } else if (await nonEmpty(out)) {
    throw new Error(
      `${opts.out} is not empty: add --resume to continue its pretraining, or choose an empty --out`,
    );
  }
  if (!opts.resume)
    await generateTinyModel(await nodeFolderSink(initDir), recipeModelOptions(opts.recipe, opts.seed));
  const model = await loadFolder(initDir);
  try {
    let writer;
    if (opts.resume) {
      writer = await store.openRun(out);
      log(`resuming ${opts.out} at step ${(await writer.meta()).step}`);
    } else {
      const overrides: Partial<RunConfig> = Object.assign({}, ...(opts.set ?? []).map(parseSetFlag));
      if (opts.steps !== undefined) overrides.totalSteps = opts.steps;
      if (opts.seed !== undefined) overrides.seed = opts.seed;
      const config = recipeConfig(opts.recipe, overrides);
      writer = await store.createRun(
        out,
        newRunRecord(config, model.identity, {
          name: `pretrain ${opts.recipe}`,
          preset: `recipe:${opts.recipe}`,
          templates: {},
        }),
      );
      log(
        `pretraining ${opts.recipe} in ${opts.out}: ${model.config.numHiddenLayers} layers × ${model.config.hiddenSize}, ` +
          `${config.totalSteps} steps at most, seed ${config.seed}, stop at ${config.imitationStopSet} ≥ ${config.imitationStopAccuracy}`,
      );
    }
    const config = (await writer.meta()).config;
    const shape = engineShape(config, 4, model.config.maxPositionEmbeddings);
    const engine = await loadEngine(model, {
      maxBatch: shape.maxBatch,
      maxSeqLen: shape.maxSeqLen,
      dtype: 'f32',
    });
    const started = performance.now();
    let stepsThisRun = 0;
    let lastStep = 0;
    progress.setTotalSteps(config.totalSteps);
    const onEvent = (e: SessionEvent) => {
      progress.event(e);
      if (e.type === 'step') {
        stepsThisRun++;
        lastStep = e.result.step;
        const perStep = (performance.now() - started) / 1000 / stepsThisRun;
        log(
          pretrainLine(
            e.result.metrics,
            e.wallMs,
            config.totalSteps,
            perStep * (config.totalSteps - lastStep),
          ),
        );
      } else if (e.type === 'log') log(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
      else if (e.type === 'eval') {
        const tiers = Object.entries(e.report.perTier)
          .map(([t, r]) => `${t} ${(r.accuracy * 100).toFixed(0)}%`)
          .join(' ');
        log(
          `eval ${e.set} at step ${e.row.step}: ${(e.report.accuracy * 100).toFixed(1)}% of ${e.report.n}` +
            `  format failures ${(e.report.formatFailureRate * 100).toFixed(0)}%  ${tiers}`,
        );
      } else if (e.type === 'checkpoint') log(`checkpoint at step ${e.info.step} (${e.info.reason})`);
    };
    const { session, trainer, close } = await openSession({
      engine,
      model,
      writer,
      createTrainer: createEngineTrainer,
      verifierFactory: nodeWorkerFactory(),
      onEvent,
    });
    const stop = () => session.requestStop();
    process.once('SIGINT', stop);
    try {
      const end = await session.run();
      progress.done();
      progress.json({ type: 'run-status', run: runSummary(await writer.meta(), false) });
      log(`pretraining ${end} at step ${session.step}`);
      if (end === 'finished') {
        const { tensors } = await trainer.trainable.save();
        const source = nodeFolderSource(initDir);
        try {
          const written = await writeFullModelFolder(
            source,
            model.config,
            tensors,
            await nodeFolderSink(join(out, MODEL_DIR)),
            { generator: `tabzero pretrain --recipe ${opts.recipe}`, step: String(session.step) },
          );
          log(
            `model written to ${join(opts.out, MODEL_DIR)} (${written.bytes} bytes, sha256 ${written.sha256})`,
          );
        } finally {
          await source.close();
        }
      }
    } finally {
      progress.done();
      process.off('SIGINT', stop);
      await close();
    }
  } finally {
    await closeFolders();
  }
}

interface PretrainArgs {
  recipe: string;
  out: string;
  steps?: string;
  seed?: string;
  resume?: boolean;
  set: string[];
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('pretrain')
    .description(
      'imitation-pretrain a model TabZero creates from random weights (the workshop model), resumable',
    )
    .option('--recipe <name>', `one of ${RECIPE_NAMES.join(', ')}`, 'workshop')
    .requiredOption(
      '--out <dir>',
      'an empty folder (or, with --resume, the folder of an earlier pretraining)',
    )
    .option('--steps <n>', 'most steps (the stopping rule may end it sooner)')
    .option('--seed <n>', "the model's and the run's seed")
    .option('--resume', 'continue the pretraining in --out from its last checkpoint')
    .option(
      '--set <key=value>',
      "override a knob of the recipe's run config (repeatable; a new pretraining only)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--json', "print the run's events (protocol.ts) as JSON lines on stdout")
    .action(async (a: PretrainArgs) => {
      if (!RECIPE_NAMES.includes(a.recipe as RecipeName))
        throw new Error(`--recipe must be one of ${RECIPE_NAMES.join(', ')}`);
      await runPretrainCommand({
        json: Boolean(a.json),
        recipe: a.recipe as RecipeName,
        out: a.out,
        steps: a.steps === undefined ? undefined : parseIntArg('--steps', a.steps, 0, 1),
        seed: a.seed === undefined ? undefined : parseIntArg('--seed', a.seed, 0, 0),
        resume: Boolean(a.resume),
        set: a.set,
      });
    });
}
