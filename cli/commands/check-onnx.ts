// `tabzero check-onnx`: the same prompts through TabZero's forward and through onnxruntime (the model
// exported on the fly, or an existing export): greedy-token agreement and the largest logit difference
// per prompt. TabZero's side is the WebGPU engine (Dawn), or with `--backend cpu` the plain-TS f32
// reference forward, which recomputes every step (fine for small models, minutes at the real shape).
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.ts';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';
import { loadRefWeights } from '../../src/engine/reference/load.ts';
import { loadModelFolder, type LoadedModel } from '../../src/model/model-folder.ts';
import { nodeFolderSource } from '../../src/model/node-folder.ts';
import { exportOnnx, type OnnxLora } from '../../src/onnx/export.ts';
import { loadOnnxNode, nodeOnnxTarget, readPeftAdapterFolder } from '../../src/onnx/node.ts';
import { EngineOracle } from '../../src/onnx/engine-oracle.ts';
import {
  LOGIT_TOLERANCE,
  promptParity,
  type GreedyOracle,
  type PromptParity,
} from '../../src/onnx/parity.ts';
import type { OnnxVariant } from '../../src/onnx/qwen2-graph.ts';
import { ReferenceOracle } from '../../src/onnx/reference-oracle.ts';
import { resolveModelArg } from '../model-arg.ts';
import { positiveInt } from './tiny-model.ts';

interface CheckOnnxArgs {
  model: string;
  prompts: string;
  onnx?: string;
  adapter?: string;
  variant: OnnxVariant;
  backend: 'webgpu' | 'cpu';
  kvDtype?: 'f32' | 'f16';
  maxNewTokens: number;
  tolerance?: number;
  chat?: boolean;
  json?: boolean;
}

/** Tokens each prompt is decoded for when --max-new-tokens is not given. */
const DEFAULT_NEW_TOKENS = 16;

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/** Prompts: one per non-empty line. */
async function readPrompts(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--prompts ${file}: cannot read (${err.code ?? err.message})`);
  });
  const prompts = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (prompts.length === 0) throw new Error(`--prompts ${file}: no prompts (one per line)`);
  return prompts;
}

function promptLine(i: number, p: PromptParity): string {
  const diverge =
    p.firstDivergence === null ? 'greedy identical' : `greedy differs from step ${p.firstDivergence}`;
  return (
    `prompt ${i + 1} (${p.promptTokens} tokens): agree ${p.agree}/${p.steps}, ` +
    `decidable ${p.agreeDecidable}/${p.decidable}, ${diverge}, max |Δlogit| ${p.maxLogitDiff.toExponential(2)}\n`
  );
}

function kvDType(args: CheckOnnxArgs): 'f32' | 'f16' {
  return args.kvDtype ?? (args.variant === 'fp32' ? 'f32' : 'f16');
}

async function makeOracle(
  args: CheckOnnxArgs,
  model: LoadedModel,
  lora: OnnxLora | null,
  maxSeqLen: number,
): Promise<GreedyOracle> {
  if (args.backend === 'cpu') {
    const names = model.weights.tensors.map((t) => t.name);
    return new ReferenceOracle(
      model.config,
      await loadRefWeights(model.weights, names, { dtype: 'f32' }),
      lora,
    );
  }
  if (lora) throw new Error('--adapter with --backend webgpu is not supported yet (use --backend cpu)');
  const engine = await Engine.load(await acquireNodeDevice(), model.config, model.weights, model.tokenizer, {
    maxBatch: 1,
    maxSeqLen,
    kvDType: kvDType(args),
  });
  return new EngineOracle(engine);
}

export function register(program: Command): void {
  program
    .command('check-onnx')
    .description(
      "Run prompts through TabZero's forward and onnxruntime; report greedy agreement and max logit difference",
    )
    .requiredOption('--model <dir>', 'model folder, or "tiny"')
    .requiredOption('--prompts <file>', 'text file, one prompt per line')
    .option(
      '--onnx <dir>',
      'an existing export of the model to check (default: export to a temporary folder)',
    )
    .option('--adapter <dir>', 'PEFT LoRA adapter: applied to the reference, merged into the export')
    .addOption(
      new Option('--variant <v>', 'ONNX precision variant').choices(['fp32', 'fp16']).default('fp32'),
    )
    .addOption(
      new Option('--backend <name>', "TabZero's side: the WebGPU engine, or the CPU reference forward")
        .choices(['webgpu', 'cpu'])
        .default('webgpu'),
    )
    .addOption(
      new Option(
        '--kv-dtype <dtype>',
        "engine KV cache precision (default: f32 for fp32, f16 for fp16, like the export's)",
      ).choices(['f32', 'f16']),
    )
    .option('--max-new-tokens <n>', 'greedy tokens per prompt', positiveInt, DEFAULT_NEW_TOKENS)
    .option(
      '--tolerance <x>',
      "logit tolerance (default: the variant's, see src/onnx/parity.ts)",
      positiveNumber,
    )
    .option('--chat', 'render each prompt as a user message with the chat template')
    .option('--json', 'print one JSON object per prompt instead of text')
    .action(async (args: CheckOnnxArgs) => {
      const prompts = await readPrompts(args.prompts);
      const tolerance = args.tolerance ?? LOGIT_TOLERANCE[args.variant];
      const source = nodeFolderSource(await resolveModelArg(args.model));
      let tmp: string | null = null;
      try {
        const model = await loadModelFolder(source);
        const lora = args.adapter ? await readPeftAdapterFolder(args.adapter, model.config) : null;
        let onnxDir = args.onnx;
        if (!onnxDir) {
          tmp = await mkdtemp(join(tmpdir(), 'tabzero-check-onnx-'));
          onnxDir = tmp;
          await exportOnnx(source, model, await nodeOnnxTarget(onnxDir), { variants: [args.variant], lora });
        }
        const promptIds = prompts.map((text) =>
          model.tokenizer.encode(
            args.chat
              ? model.tokenizer.applyChatTemplate([{ role: 'user', content: text }], {
                  addGenerationPrompt: true,
                })
              : text,
          ),
        );
        const longest = Math.max(...promptIds.map((p) => p.length));
        const oracle = await makeOracle(args, model, lora, longest + args.maxNewTokens);
        const lm = await loadOnnxNode(onnxDir, args.variant);
        const results: PromptParity[] = [];
        try {
          for (const [i, ids] of promptIds.entries()) {
            const p = await promptParity(oracle, lm, ids, {
              maxNewTokens: args.maxNewTokens,
              tolerance,
              eosIds: model.tokenizer.eosTokenIds,
            });
            results.push(p);
            process.stdout.write(
              args.json ? JSON.stringify({ prompt: i + 1, ...p }) + '\n' : promptLine(i, p),
            );
          }
        } finally {
          await lm.release();
        }
        const sum = (f: (p: PromptParity) => number) => results.reduce((n, p) => n + f(p), 0);
        const maxDiff = Math.max(...results.map((p) => p.maxLogitDiff));
        const ok = sum((p) => p.decidable - p.agreeDecidable) === 0 && maxDiff <= tolerance;
        const summary =
          `${args.variant} vs ${args.backend === 'cpu' ? 'reference (f32, TypeScript)' : `engine (WebGPU, ${kvDType(args)} KV)`}: agreement ${sum((p) => p.agree)}/${sum((p) => p.steps)}, ` +
          `decidable ${sum((p) => p.agreeDecidable)}/${sum((p) => p.decidable)}, ` +
          `max |Δlogit| ${maxDiff.toExponential(2)} (tolerance ${tolerance})`;
        if (!args.json) process.stdout.write(`${summary}: ${ok ? 'PASS' : 'FAIL'}\n`);
        if (!ok) throw new Error(`ONNX parity check failed: ${summary}`);
      } finally {
        await source.close();
        if (tmp) await rm(tmp, { recursive: true, force: true });
      }
    });
}
