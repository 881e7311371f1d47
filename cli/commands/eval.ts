// `tabzero eval`: score a model (optionally with a run's or a PEFT folder's adapter) on an eval set,
// greedy, on the WebGPU engine — or on onnxruntime for an ONNX export folder (`--backend onnx`).
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, EVAL_SET_NAMES, type EvalItem, type EvalSetName } from '../../src/config.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import type { LoadedModel } from '../../src/model/model-folder.ts';
import { evaluate, type EvalMode, type EvalReport } from '../../src/selfplay/evaluate.ts';
import { EvalFileError, parseEvalFile } from '../../src/selfplay/eval-file.ts';
import { checkSameModel } from '../../src/store/identity.ts';
import type { CheckpointTensor, RunReader } from '../../src/store/types.ts';
import { isFullCheckpoint, loadFullWeights } from '../../src/trainer/full-weights.ts';
import { readFile } from 'node:fs/promises';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { checkpointAdapter } from '../../src/trainer/engine-trainer.ts';
import { resolveModelArg } from '../model-arg.ts';
import { closeFolders, loadEngine, loadFolder, parseIntArg } from '../engine-load.ts';
import type { HostLora } from '../../src/model/lora.ts';

interface EvalArgs {
  model: string;
  adapter?: string;
  evalSet: string;
  evalFile?: string;
  mode: string;
  limit?: string;
  backend: string;
  json?: boolean;
}

/** `--adapter`: a run folder (opened and checked before the model loads) or a PEFT adapter folder. */
type AdapterArg = { run: RunReader; path: string } | { peft: string };

async function openAdapterArg(path: string): Promise<AdapterArg> {
  if (existsSync(join(path, 'run.json')))
    return { run: await new NodeRunStore(process.cwd()).readRun(path), path };
  return { peft: path };
}

/**
 * The adapter's weights for `model`, read and checked before the engine loads: a run folder's latest
 * checkpoint (its adapter, or its fully fine-tuned weights) on the model it was trained on (the SHA-256
 * decides), or a PEFT adapter folder whose shapes fit the model.
 */
async function readAdapter(
  arg: AdapterArg,
  model: LoadedModel,
): Promise<{ lora: HostLora } | { full: CheckpointTensor[] }> {
  if ('run' in arg) {
    const { run, path } = arg;
    checkSameModel(
      await run.meta(),
      model.identity,
      'Evaluate it with the model it was trained on (--model).',
    );
    const last = (await run.checkpoints()).at(-1);
    if (!last) throw new Error(`${path}: the run has no checkpoint yet`);
    const cp = await run.loadCheckpoint(last.step);
    if (isFullCheckpoint(cp.engineState)) return { full: cp.tensors };
    return { lora: checkpointAdapter(cp.tensors, cp.engineState).lora }; // separate adapters: the solver's
  }
  const { readPeftAdapterFolder } = await import('../../src/onnx/node.ts');
  return { lora: (await readPeftAdapterFolder(arg.peft, model.config)) as HostLora };
}

function table(r: EvalReport): string {
  const pct = (a: { accuracy: number; correct: number; n: number }) =>
    `${(a.accuracy * 100).toFixed(1).padStart(5)}%  (${a.correct}/${a.n})`;
  const lines = [`overall      ${pct(r)}   format failures ${(r.formatFailureRate * 100).toFixed(1)}%`];
  for (const [k, v] of Object.entries(r.perTier)) lines.push(`  ${k.padEnd(10)} ${pct(v)}`);
  for (const [k, v] of Object.entries(r.perOp)) lines.push(`  op ${k.padEnd(7)} ${pct(v)}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('score a model (plus an optional adapter) on an eval set, greedy')
    .requiredOption('--model <dir|tiny|workshop>', 'model folder (an ONNX export folder with --backend onnx)')
    .option('--adapter <dir>', 'a run folder (its latest checkpoint) or a PEFT adapter folder')
    .option('--eval-set <name>', EVAL_SET_NAMES.join(' | '), 'arith_eval_200')
    .option('--eval-file <file.jsonl>', 'your own eval items (the JSONL form `tabzero eval-set` writes)')
    .option('--mode <mode>', 'raw (morgan parity) or chat (the solver format)', 'raw')
    .option('--limit <n>', 'first N items only')
    .option('--backend <name>', 'webgpu or onnx', 'webgpu')
    .option('--json', 'print the whole report as JSON')
    .action(async (a: EvalArgs) => {
      if (!EVAL_SET_NAMES.includes(a.evalSet as EvalSetName))
        throw new Error(`--eval-set must be one of ${EVAL_SET_NAMES.join(', ')}`);
      if (a.mode !== 'raw' && a.mode !== 'chat') throw new Error('--mode must be raw or chat');
      if (a.backend !== 'webgpu' && a.backend !== 'onnx') throw new Error('--backend must be webgpu or onnx');
      const mode = a.mode as EvalMode;
      const limit = parseIntArg('--limit', a.limit, 0, 1);
      // The schema's eval lengths, the same with and without --adapter, so a base and a run compare.
      const config = defaultConfig();
      const maxNew = mode === 'raw' ? config.evalMaxNewRaw : config.evalMaxNewChat;
      let set: EvalSetName | EvalItem[] = a.evalSet as EvalSetName;
      if (a.evalFile) {
        try {
          set = parseEvalFile(await readFile(a.evalFile, 'utf8'), a.evalFile);
        } catch (e) {
          if (!(e instanceof EvalFileError)) throw e;
          // One line per bad line, nothing on stdout, nothing scored.
          process.stderr.write(e.message + '\n');
          process.exitCode = 1;
          return;
        }
      }
      if (a.backend === 'onnx' && a.adapter)
        throw new Error('--backend onnx evaluates an exported folder; merge the adapter at export');
      try {
        // A run folder's run.json is checked before the model loads, its model before the engine.
        const adapter = a.adapter ? await openAdapterArg(a.adapter) : null;
        const dir = await resolveModelArg(a.model);
        const model = await loadFolder(dir);
        let report: EvalReport;
        if (a.backend === 'onnx') {
          const { loadOnnxNode } = await import('../../src/onnx/node.ts');
          const { OnnxGenerator } = await import('../../src/onnx/generator.ts');
          const lm = await loadOnnxNode(dir, 'fp32');
          report = await evaluate(new OnnxGenerator(lm, model.tokenizer), model.tokenizer, set, mode, {
            limit,
            maxNew,
          });
        } else {
          const trained = adapter ? await readAdapter(adapter, model) : null;
          const engine = await loadEngine(model, { maxBatch: 16, maxSeqLen: 512 });
          if (trained) {
            if ('full' in trained) loadFullWeights(engine, trained.full);
            else
              engine.setLora(
                GpuLora.create(engine.ctx.device, engine.ledger, model.config, trained.lora).weights,
              );
          }
          report = await evaluate(engine, model.tokenizer, set, mode, { limit, maxNew });
        }
        if (a.json) process.stdout.write(JSON.stringify(report, null, 1) + '\n');
        else
          process.stdout.write(
            `${a.evalFile ?? a.evalSet} (${mode}${limit ? `, first ${limit}` : ''})\n${table(report)}\n`,
          );
      } finally {
        await closeFolders();
      }
    });
}
