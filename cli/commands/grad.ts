// `tabzero grad`: the gradient of the plain token-mean policy-gradient loss (ratio 1, no entropy, no KL)
// with respect to every tensor of a PEFT LoRA adapter, for checking the engine against outside code:
//   L = −Σ_j Σ_t A_j log p(y_jt | prefix) / (completion tokens in the batch)
// Writes each gradient under its PEFT name (f32) and a tensor `loss` [1].
import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { loadModelFolder, type LoadedModel } from '../../src/model/model-folder.ts';
import { nodeFolderSource } from '../../src/model/node-folder.ts';
import { qwen2TensorShapes } from '../../src/model/qwen2-config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { encodePeftTensors, loadPeftLora, type HostLora } from '../../src/model/lora.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';
import type { FloatArray } from '../../src/engine/reference/ops.ts';
import { GpuTrainer } from '../../src/engine/train.ts';
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

interface GradResult {
  loss: number;
  tokens: number;
  grads: Record<string, { A: FloatArray; B: FloatArray; rank: number }>;
}

/** The f64 reference on the CPU (weights as stored, or rounded to f16). */
async function cpuGrad(
  model: LoadedModel,
  batch: PgBatchSequence[],
  lora: HostLora,
  f16: boolean,
): Promise<GradResult> {
  const cfg = model.config;
  const weights = await loadRefWeights(
    model.weights,
    qwen2TensorShapes(cfg).map((t) => t.name),
    { dtype: 'f64', roundToF16: f16 },
  );
  const l64 = convertLora(lora, 'f64');
  const res = qwen2PolicyGradient(cfg, weights, l64, batch, { clipEps: 0, entropyCoef: 0, klBeta: 0 });
  const grads = Object.fromEntries(
    Object.entries(res.grads.lora).map(([mod, g]) => [mod, { A: g.dA, B: g.dB, rank: lora[mod].rank }]),
  );
  return { loss: res.loss, tokens: res.tokens, grads };
}

/** The GPU training step's gradient pass (no optimizer step), all sequences in one micro-batch when they fit. */
async function webgpuGrad(
  model: LoadedModel,
  batch: PgBatchSequence[],
  lora: HostLora,
  f16: boolean,
): Promise<GradResult> {
  const ctx = await acquireNodeDevice();
  try {
    const lens = batch.map((s) => s.promptIds.length + s.completionIds.length - 1);
    const engine = await Engine.load(ctx, model.config, model.weights, null, {
      maxBatch: Math.min(batch.length, GPU_MAX_SLOTS),
      maxSeqLen: Math.max(...lens) + 1,
      maxTokensPerPass: Math.max(
        ...lens,
        Math.min(
          lens.reduce((a, b) => a + b, 0),
          GPU_MAX_TOKENS,
        ),
      ),
      dtype: f16 ? 'f16' : 'f32',
      kvDType: 'f32',
    });
    const gpuLora = GpuLora.create(ctx.device, engine.ledger, model.config, lora);
    // The optimizer settings are unused: only gradients are computed.
    const trainer = new GpuTrainer(engine, gpuLora, {
      lr: 0,
      beta1: 0,
      beta2: 0,
      eps: 1,
      weightDecay: 0,
      maxGradNorm: 0,
      warmupSteps: 0,
    });
    const res = await trainer.computeGradients({
      sequences: batch.map((b) => ({
        promptIds: b.promptIds,
        completionIds: b.completionIds,
        advantage: b.advantage,
      })),
      clipEps: 0,
      entropyCoef: 0,
      klBeta: 0,
    });
    const g = await gpuLora.downloadGrads();
    const grads = Object.fromEntries(
      Object.entries(g).map(([mod, x]) => [mod, { A: x.dA, B: x.dB, rank: gpuLora.rank }]),
    );
    return { loss: res.loss, tokens: res.tokens, grads };
  } finally {
    ctx.device.destroy();
  }
}

/** KV slots and tokens per pass of the webgpu backend (larger batches run in several micro-batches). */
const GPU_MAX_SLOTS = 16;
const GPU_MAX_TOKENS = 4096;

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
    .option('--backend <name>', 'webgpu (the engine) or cpu (the f64 reference)', 'webgpu')
    .option('--dtype <dtype>', 'weight precision: f32, or f16 (cpu: weights rounded to f16)', 'f32')
    .action(async (args: GradArgs) => {
      if (args.backend !== 'cpu' && args.backend !== 'webgpu')
        throw new Error(`--backend must be webgpu or cpu, not "${args.backend}"`);
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
        const lora = await loadPeftLora(await readFile(args.lora), alpha, cfg, args.lora);
        const f16 = args.dtype === 'f16';
        const res =
          args.backend === 'cpu'
            ? await cpuGrad(model, batch, lora, f16)
            : await webgpuGrad(model, batch, lora, f16);
        const grads = res.grads;
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
