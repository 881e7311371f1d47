// `tabzero bench` (= `npm run bench -- ...`): engine throughput, dispatch/readback counts and memory,
// as JSON + a table. `--shape qwen2-0.5b` uses random weights of the real shape (no download).
import type { Command } from 'commander';
import { benchTable, matmulPeak, runBench } from '../../bench/engine-bench.ts';
import { fmaPeak, runMatmulTune, trainingShapes, tuneTable } from '../../bench/matmul-tune.ts';
import {
  ONNX_RUNTIMES,
  openOnnxBaseline,
  type OnnxRuntimeChoice,
  type OpenedOnnxBaseline,
} from '../../bench/onnx-baseline.ts';
import { createBenchTrainer, runTrainBench, trainBenchTable } from '../../src/engine/train-bench.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { LoraDecode } from '../../src/engine/qwen2-forward.ts';
import { initLora } from '../../src/model/lora.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import { LORA_TARGETS } from '../../src/config.ts';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';
import { shaderFeatures } from '../../src/engine/gpu.ts';
import { parseQwen2Config, qwen2_0_5bConfigJson } from '../../src/model/qwen2-config.ts';
import { closeFolders, loadEngine, loadFolder, parseIntArg, parseWeightDType } from '../engine-load.ts';

// Dawn rounds timestamps down to 65,536 ns by default (a timing-attack guard meant for web pages),
// coarser than most kernels of a small model; the bench's own device asks for full resolution.
const BENCH_DAWN_OPTIONS = ['disable-dawn-features=timestamp_quantization'];

interface BenchArgs {
  model?: string;
  shape?: string;
  batch: string;
  promptLen: string;
  new: string;
  dtype?: string;
  matmulSize: string;
  json?: boolean;
  memoryOnly?: boolean;
  train?: string;
  full?: boolean;
  kernelTimes: boolean;
  onnx?: boolean;
  onnxVariant?: string;
  onnxDir?: string;
  onnxRuntime: string;
  lora?: string;
  loraDecode: string;
  pipeline: boolean;
  tune?: boolean;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('benchmark the engine: prefill/decode tok/s per batch size, dispatches, readbacks, memory')
    .option('--model <dir>', 'model folder')
    .option('--shape <name>', 'random weights of a known shape instead of a folder: qwen2-0.5b')
    .option('--batch <list>', 'batch sizes, comma-separated', '1,16,64')
    .option('--prompt-len <n>', 'prompt tokens per sequence', '128')
    .option('--new <n>', 'new tokens per sequence', '64')
    .option('--dtype <dtype>', 'weight precision: f32, f16 or bf16 (default: the file; f16 for --shape)')
    .option('--matmul-size <n>', 'square matmul size of the peak-FLOP/s probe', '1024')
    .option('--json', 'print only the JSON')
    .option(
      '--memory-only',
      'allocate everything for the largest batch and report GPU memory, without running',
    )
    .option(
      '--no-kernel-times',
      "skip the per-kernel GPU timings (one profiled prefill + decode step per batch size, or with --train one profiled training step; with 'timestamp-query')",
    )
    .option('--onnx', 'also run the same decode workload on onnxruntime (exports --model to a temp folder)')
    .option('--onnx-variant <v>', 'ONNX precision: fp32 or fp16 (default: fp32 for f32 weights, else fp16)')
    .option('--onnx-dir <dir>', 'use this ONNX export (tabzero export --format onnx) instead; implies --onnx')
    .option(
      '--onnx-runtime <name>',
      `onnxruntime to compare with: ${ONNX_RUNTIMES.join(', ')} (web-webgpu: onnxruntime-web's WebGPU EP, as transformers.js)`,
      'web-webgpu',
    )
    .option(
      '--train <n>',
      'time the LoRA training step instead: n sequences of --prompt-len + --new tokens (r 16, α 32)',
    )
    .option(
      '--full',
      'with --train: full fine-tuning of every weight (f32 weights, tied embeddings) instead of LoRA',
    )
    .option('--lora <rank>', 'decode with a LoRA adapter of this rank on all seven targets (α = 2·rank)')
    .option(
      '--lora-decode <path>',
      "how decode applies the adapter: separate (x·Aᵀ as one split-K GEMV per site, ·Bᵀ in the GEMV's epilogue) or fused (both in the GEMV's epilogue, no extra dispatches)",
      'separate',
    )
    .option('--no-pipeline', 'decode with the plain loop (wait for each step before the next; engine.ts)')
    .option(
      '--tune',
      "time the matmul tile candidates at the model's training shapes (--prompt-len tokens) against an FMA peak probe",
    )
    .action(async (args: BenchArgs) => {
      if (args.tune) {
        const model = args.model ? await loadFolder(args.model) : null;
        const config = model ? model.config : parseQwen2Config(qwen2_0_5bConfigJson());
        await closeFolders();
        const tokens = parseIntArg('--prompt-len', args.promptLen, 128, 1);
        const ctx = await acquireNodeDevice({ dawnOptions: BENCH_DAWN_OPTIONS });
        const tune = await runMatmulTune(
          ctx.device,
          shaderFeatures(ctx.report),
          trainingShapes(config, tokens),
          {
            tokens,
          },
        );
        process.stdout.write(
          JSON.stringify({ model: args.model ?? 'qwen2-0.5b shape', tune }, null, 2) + '\n',
        );
        if (!args.json) process.stdout.write('\n' + tuneTable(tune) + '\n');
        return;
      }
      if (!args.model === !args.shape)
        throw new Error('give exactly one of --model DIR or --shape qwen2-0.5b');
      if (args.shape && args.shape !== 'qwen2-0.5b')
        throw new Error(`unknown --shape "${args.shape}" (qwen2-0.5b)`);
      const batches = args.batch.split(',').map((b) => parseIntArg('--batch', b, 1, 1));
      const promptLen = parseIntArg('--prompt-len', args.promptLen, 128, 1);
      const newTokens = parseIntArg('--new', args.new, 64, 1);
      const matmulSize = parseIntArg('--matmul-size', args.matmulSize, 1024, 16);
      const dtype = parseWeightDType(args.dtype);
      const withOnnx = Boolean(args.onnx || args.onnxDir);
      if (withOnnx && !args.model)
        throw new Error(
          '--onnx compares the engine and onnxruntime on one model: give --model DIR (for the real shape, write ' +
            'random weights to a folder first: tabzero tiny-model --shape qwen2-0.5b --out DIR)',
        );
      if (withOnnx && args.lora)
        throw new Error(
          '--onnx compares the base model: leave out --lora (or export a merged model and bench it)',
        );
      if (withOnnx && newTokens < 2) throw new Error('--onnx compares decode steps: give --new 2 or more');
      if (!(ONNX_RUNTIMES as readonly string[]).includes(args.onnxRuntime))
        throw new Error(
          `--onnx-runtime must be one of ${ONNX_RUNTIMES.join(', ')}, not "${args.onnxRuntime}"`,
        );
      if (args.onnxVariant !== undefined && args.onnxVariant !== 'fp32' && args.onnxVariant !== 'fp16')
        throw new Error(`--onnx-variant must be fp32 or fp16, not "${args.onnxVariant}"`);
      if (args.loraDecode !== 'fused' && args.loraDecode !== 'separate')
        throw new Error(`--lora-decode must be fused or separate, not "${args.loraDecode}"`);
      const loraDecode: LoraDecode = args.loraDecode;
      const maxBatch = Math.max(...batches);
      const t0 = performance.now();
      const maxSeqLen = promptLen + newTokens;
      let engine: Engine;
      let label: string;
      if (args.model) {
        engine = await loadEngine(await loadFolder(args.model), {
          maxBatch,
          maxSeqLen,
          dtype,
          loraDecode,
          dawnOptions: BENCH_DAWN_OPTIONS,
        });
        label = args.model;
        await closeFolders();
      } else {
        const ctx = await acquireNodeDevice({ dawnOptions: BENCH_DAWN_OPTIONS });
        const config = parseQwen2Config(qwen2_0_5bConfigJson());
        engine = Engine.random(ctx, config, dtype ?? 'f16', 1, { maxBatch, maxSeqLen, loraDecode });
        label = 'qwen2-0.5b shape, random weights';
      }
      engine.pipelinedDecode = args.pipeline;
      if (args.lora && !args.train) {
        const rank = parseIntArg('--lora', args.lora, 16, 1);
        const host = initLora(engine.config, { rank, alpha: 2 * rank, targets: LORA_TARGETS }, 1);
        engine.setLora(GpuLora.create(engine.ctx.device, engine.ledger, engine.config, host).weights);
        label += `, LoRA r ${rank} on all seven targets (${loraDecode} decode)`;
      }
      // With --train, --memory-only includes the trainer (LoRA r 16 state, saved layer inputs, scratch).
      if (args.train && args.memoryOnly)
        createBenchTrainer(engine, { loraRank: 16, loraAlpha: 32, seed: 1, full: Boolean(args.full) });
      if (args.memoryOnly) {
        const memory = engine.memory();
        process.stdout.write(
          JSON.stringify(
            { model: label, weightDType: engine.weights.dtype, maxBatch, maxSeqLen, memory },
            null,
            2,
          ) + '\n',
        );
        return;
      }
      if (args.train) {
        const peak = await matmulPeak(
          engine.ctx.device,
          engine.weights.dtype,
          matmulSize,
          engine.forward.features,
        );
        const train = await runTrainBench(engine, {
          sequences: parseIntArg('--train', args.train, 48, 1),
          promptLen,
          completionLen: newTokens,
          steps: 2,
          seed: 1,
          loraRank: 16,
          loraAlpha: 32,
          full: Boolean(args.full),
          peakMatmulFlops: peak,
          kernelTimes: args.kernelTimes,
        });
        // The register-only FMA probe (no memory traffic): the arithmetic peak the kernels are held to.
        const fmaPeakGflops = (await fmaPeak(engine.ctx.device)) / 1e9;
        process.stdout.write(JSON.stringify({ model: label, fmaPeakGflops, train }, null, 2) + '\n');
        if (!args.json)
          process.stdout.write(
            '\n' +
              trainBenchTable(train) +
              `\nFMA peak (register-only probe): ${fmaPeakGflops.toFixed(1)} GFLOP/s\n`,
          );
        return;
      }
      const log = (m: string) =>
        process.stderr.write(`${m} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      let onnx: OpenedOnnxBaseline | null = null;
      try {
        if (withOnnx) {
          onnx = await openOnnxBaseline({
            variant: args.onnxVariant ?? (engine.weights.dtype === 'f32' ? 'fp32' : 'fp16'),
            runtime: args.onnxRuntime as OnnxRuntimeChoice,
            modelDir: args.model,
            onnxDir: args.onnxDir,
            log,
          });
        }
        const result = await runBench(engine, label, {
          batches,
          promptLen,
          newTokens,
          matmulSize,
          seed: 1,
          kernelTimes: args.kernelTimes,
          onnx: onnx?.baseline,
          log,
        });
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        if (!args.json) process.stdout.write('\n' + benchTable(result) + '\n');
      } finally {
        await onnx?.close();
      }
    });
}
