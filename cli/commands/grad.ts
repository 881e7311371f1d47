// `tabzero grad`: the gradient of the plain token-mean policy-gradient loss (ratio 1, no entropy, no KL)
// with respect to every tensor of a PEFT LoRA adapter, for checking the engine against outside code:
//   L = −Σ_j Σ_t A_j log p(y_jt | prefix) / (completion tokens in the batch)
// Writes each gradient under its PEFT name (f32) and a tensor `loss` [1].
import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { loadModelFolder } from '../../src/model/model-folder.ts';
import { nodeFolderSource } from '../../src/model/node-folder.ts';
import { qwen2TensorShapes } from '../../src/model/qwen2-config.ts';
import { encodePeftTensors, loadPeftLora } from '../../src/engine/lora.ts';
import { loadRefWeights } from '../../src/engine/reference/load.ts';
import { qwen2PolicyGradient, type PgBatchSequence } from '../../src/engine/reference/qwen2-backward.ts';
import { convertLora } from '../../src/engine/reference/random.ts';

interface GradArgs {
  model: string;
  batch: string;
  lora: string;
  loraAlpha: string;
  out: string;
  backend: string;
  dtype: string;
}

/** Parses and checks BATCH.json: a non-empty list of {prompt_ids, completion_ids, advantage}. */
export function parseGradBatch(text: string, vocabSize: number): PgBatchSequence[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('--batch: not valid JSON');
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new Error('--batch: expected a non-empty JSON list');
  const ids = (v: unknown, what: string, i: number, minLen: number): number[] => {
    if (
      !Array.isArray(v) ||
      v.length < minLen ||
      !v.every((x) => Number.isSafeInteger(x) && x >= 0 && x < vocabSize)
    )
      throw new Error(`--batch[${i}].${what}: expected at least ${minLen} token ids below ${vocabSize}`);
    return v as number[];
  };
  return raw.map((e: unknown, i) => {
    const o = e as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) throw new Error(`--batch[${i}]: expected an object`);
    if (typeof o.advantage !== 'number' || !Number.isFinite(o.advantage))
      throw new Error(`--batch[${i}].advantage: expected a number`);
    return {
      promptIds: ids(o.prompt_ids, 'prompt_ids', i, 1),
      completionIds: ids(o.completion_ids, 'completion_ids', i, 1),
      advantage: o.advantage,
    };
  });
}

export function register(program: Command): void {
  program
    .command('grad')
    .description('write the policy-gradient loss gradient of every LoRA tensor (PEFT names, f32) and `loss`')
    .requiredOption('--model <dir>', 'model folder')
    .requiredOption(
      '--batch <file>',
      'JSON list of {"prompt_ids": [...], "completion_ids": [...], "advantage": x}',
    )
    .requiredOption('--lora <file>', 'PEFT-named LoRA safetensors (any subset of modules, any rank)')
    .requiredOption('--lora-alpha <alpha>', 'LoRA alpha (scale = alpha / rank)')
    .requiredOption('--out <file>', 'output safetensors')
    .option('--backend <name>', 'cpu (the f64 reference)', 'cpu')
    .option('--dtype <dtype>', 'weights as f32, or rounded to f16', 'f32')
    .action(async (args: GradArgs) => {
      if (args.backend !== 'cpu') throw new Error(`--backend must be cpu, not "${args.backend}"`);
      if (args.dtype !== 'f32' && args.dtype !== 'f16')
        throw new Error(`--dtype must be f32 or f16, not "${args.dtype}"`);
      const alpha = Number(args.loraAlpha);
      if (!Number.isFinite(alpha) || alpha <= 0)
        throw new Error(`--lora-alpha must be a positive number, not "${args.loraAlpha}"`);
      const source = nodeFolderSource(args.model);
      try {
        const model = await loadModelFolder(source);
        const cfg = model.config;
        const batch = parseGradBatch(await readFile(args.batch, 'utf8'), cfg.vocabSize);
        const lora = convertLora(await loadPeftLora(await readFile(args.lora), alpha, cfg, args.lora), 'f64');
        const weights = await loadRefWeights(
          model.weights,
          qwen2TensorShapes(cfg).map((t) => t.name),
          { dtype: 'f64', roundToF16: args.dtype === 'f16' },
        );
        const res = qwen2PolicyGradient(cfg, weights, lora, batch, { clipEps: 0, entropyCoef: 0, klBeta: 0 });
        const grads = Object.fromEntries(
          Object.entries(res.grads.lora).map(([mod, g]) => [mod, { A: g.dA, B: g.dB, rank: lora[mod].rank }]),
        );
        const bytes = await encodePeftTensors(cfg, grads, [
          { name: 'loss', data: Float32Array.of(res.loss), shape: [1] },
        ]);
        await writeFile(args.out, bytes);
        process.stdout.write(
          JSON.stringify({ loss: res.loss, tokens: res.tokens, tensors: Object.keys(grads).length * 2 }) +
            '\n',
        );
      } finally {
        await source.close();
      }
    });
}
