// The engine benchmark (`npm run bench -- ...`): prefill and decode throughput per batch size,
// dispatches and readbacks per decode step, GPU memory by category, and the achieved prefill FLOP/s
// against the best matmul FLOP/s measured on the same adapter in the same run. Prints JSON + a table.
// With timestamp queries it also times every kernel of one prefill and one decode step per batch size
// (src/engine/kernel-profiler.ts), totalled per kernel kind. Given an onnxruntime session of the same
// model, it runs the same decode workload there too (same prompts, same number of new tokens, same batch)
// and reports the engine/onnxruntime ratio. Never part of `npm test`; figures are
// measurements, not assertions. Browser-safe (the in-app bench page can run it).
import { bestMs } from './matmul-tune.ts';
import { Engine } from '../src/engine/engine.ts';
import type { GpuContext, ShaderFeatures } from '../src/engine/gpu.ts';
import { MatmulKernel } from '../src/engine/kernels/matmul.ts';
import type { Arithmetic, WeightDType } from '../src/engine/kernels/weights-wgsl.ts';
import { Dispatcher } from '../src/engine/dispatch.ts';
import {
  KernelProfiler,
  profilingUnavailable,
  timingsByKind,
  type DispatchTiming,
  type KindTiming,
} from '../src/engine/kernel-profiler.ts';
import type { LedgerTotals } from '../src/engine/memory.ts';
import type { Qwen2Config } from '../src/model/qwen2-config.ts';
import type { LoraDecode } from '../src/engine/qwen2-forward.ts';
import type { OnnxVariant } from '../src/onnx/qwen2-graph.ts';
import type { OnnxCausalLM } from '../src/onnx/runner.ts';
import { measureOnnxBatch } from '../src/onnx/speed.ts';

/** The side-by-side baseline: an export of the bench's model, open on some onnxruntime. */
export interface OnnxBaseline {
  lm: OnnxCausalLM;
  /** Which runtime and execution provider produce its figures, e.g. "onnxruntime-web 1.31, WebGPU EP". */
  runtime: string;
  variant: OnnxVariant;
  /** Time of the export, where the bench made it. */
  exportMs?: number;
}

export interface BenchOptions {
  batches: number[];
  promptLen: number;
  newTokens: number;
  /** Square matmul size for the peak-FLOP/s probe. */
  matmulSize: number;
  seed: number;
  /** Time every kernel of one prefill and one decode step per batch size (needs 'timestamp-query'). */
  kernelTimes?: boolean;
  /** Run the same workload on onnxruntime too, per batch size. */
  onnx?: OnnxBaseline;
  /** Progress lines (the CLI writes them to stderr). */
  log?: (msg: string) => void;
}

export interface BatchResult {
  batch: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  dispatchesPerDecodeStep: number;
  readbacksPerDecodeStep: number;
  /**
   * Weight bytes the decode step's dispatches stream ÷ the model's weight-matrix bytes (the adapter's
   * excluded): 1 when every weight is read once per step.
   */
  weightReadRatio: number;
  prefillFlopPerS: number;
  prefillVsMatmul: number;
  /** Mean wall time of a decode step in the timed run, ms. */
  decodeStepMs: number;
  /** The LoRA adapter decode ran with (null: none, or switched off). */
  lora: { rank: number; loraDecode: LoraDecode } | null;
  /** Per-kernel GPU timings (absent when not asked for). */
  kernelTimes?: KernelTimes;
  /** The same workload on onnxruntime (absent when not asked for). */
  onnx?: OnnxBatchResult;
}

export interface OnnxBatchResult {
  prefillTokPerS: number;
  decodeTokPerS: number;
  /** Engine decode tok/s ÷ onnxruntime decode tok/s (> 1: the engine is faster). */
  decodeRatio: number;
  /** Engine prefill tok/s ÷ onnxruntime prefill tok/s. */
  prefillRatio: number;
}

/** GPU time per kernel kind of one phase, from a separate profiled run of the same prompts. */
export interface PhaseProfile {
  /** Dispatches timed (all of the phase's). */
  dispatches: number;
  /** Summed GPU time of those dispatches, ms. */
  gpuMs: number;
  /** Wall time of the profiled phase, ms (slower than unprofiled: one pass and submission per dispatch). */
  wallMs: number;
  kinds: KindTiming[];
}

export type KernelTimes =
  | {
      available: true;
      /** Step of the timestamps as observed (Dawn quantizes them unless told not to), ns. */
      resolutionNs: number;
      /** The prompts' prefill, including the first token's LM head and sampling. */
      prefill: PhaseProfile;
      /** One decode step (null when --new is 1: there is none). */
      decodeStep: PhaseProfile | null;
    }
  | { available: false; reason: string };

export interface BenchResult {
  adapter: GpuContext['report'];
  model: string;
  weightDType: WeightDType;
  /** What the weight matmuls multiply in (f16: f16 weights on a `shader-f16` device). */
  arithmetic: Arithmetic;
  layers: number;
  matmulFlopPerS: number;
  memory: LedgerTotals;
  results: BatchResult[];
  /** The side-by-side baseline's runtime (absent when not asked for). */
  onnx?: { runtime: string; variant: OnnxVariant; exportMs?: number };
}

/** FLOPs of a prefill of `tokens` positions of length `len` each, LM head on the last row only. */
export function prefillFlops(c: Qwen2Config, seqs: number, len: number): number {
  const C = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  const perTokenLinear = 2 * (C * (C + 2 * kv) + C * C + 3 * C * c.intermediateSize);
  // Causal attention: Σ_pos (pos+1) keys × (QKᵀ + PV) × heads × D × 2 FLOPs.
  const attn = 2 * 2 * c.numAttentionHeads * c.headDim * ((len * (len + 1)) / 2);
  return seqs * (c.numHiddenLayers * (len * perTokenLinear + attn) + 2 * C * c.vocabSize);
}

/**
 * Best-of-3 FLOP/s of the engine's own weight matmul: activations f32, weights `dtype`, and the same
 * shader variant (f16 or f32 arithmetic) the engine picked from the device's `features`.
 */
export async function matmulPeak(
  device: GPUDevice,
  dtype: WeightDType,
  n: number,
  features: ShaderFeatures,
): Promise<number> {
  const k = new MatmulKernel(device, true, dtype, features);
  const d = new Dispatcher(device);
  const bytes = dtype === 'f32' ? 4 : 2;
  const mk = (size: number) =>
    device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const a = mk(n * n * 4);
  const b = mk(n * n * bytes);
  const out = mk(n * n * 4);
  const best = await bestMs(
    device,
    (pass) => d.dispatch(pass, 'peak', k, { a, b, out, M: n, N: n, K: n }),
    3,
  );
  for (const buf of [a, b, out]) buf.destroy();
  d.clear();
  return MatmulKernel.flops(n, n, n) / (best / 1000);
}

function phase(timings: readonly DispatchTiming[], wallMs: number): PhaseProfile {
  return {
    dispatches: timings.length,
    gpuMs: timings.reduce((sum, t) => sum + t.ns, 0) / 1e6,
    wallMs,
    kinds: timingsByKind(timings),
  };
}

/**
 * Generates from `prompts` once more with every dispatch timed: the prefill and (for `newTokens` ≥ 2)
 * one decode step. Resets the engine's stats (read them first).
 */
export async function profileKernels(
  engine: Engine,
  prompts: number[][],
  newTokens: number,
): Promise<KernelTimes> {
  const device = engine.ctx.device;
  const reason = profilingUnavailable(device);
  if (reason) return { available: false, reason };
  const profiler = new KernelProfiler(device);
  const dispatcher = engine.forward.dispatcher;
  engine.resetStats();
  dispatcher.profiler = profiler;
  let read: Awaited<ReturnType<KernelProfiler['read']>>;
  try {
    const maxNew = Math.min(2, newTokens);
    await engine.generate(prompts, { maxNew, temperature: 0, seed: 0, stopTokens: [] });
    dispatcher.profiler = null;
    read = await profiler.read();
  } finally {
    dispatcher.profiler = null;
    profiler.destroy();
  }
  const { timings, resolutionNs } = read;
  const st = engine.stats;
  // The decode step's dispatches are the last ones recorded; everything before is the prefill.
  const split = timings.length - st.decodeDispatches;
  return {
    available: true,
    resolutionNs,
    prefill: phase(timings.slice(0, split), st.prefillMs),
    decodeStep: st.decodeSteps === 1 ? phase(timings.slice(split), st.decodeMs) : null,
  };
}

export async function runBench(engine: Engine, label: string, opts: BenchOptions): Promise<BenchResult> {
  const c = engine.config;
  const device = engine.ctx.device;
  const log = (msg: string) => opts.log?.(msg);
  log(`matmul peak probe (${opts.matmulSize}³)...`);
  const matmulFlopPerS = await matmulPeak(
    device,
    engine.weights.dtype,
    opts.matmulSize,
    engine.forward.features,
  );
  let s = opts.seed;
  const nextId = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % Math.min(c.vocabSize, 32000);
  };
  // Warm-up: compile every pipeline once.
  log('warm-up...');
  await engine.generate([[1, 2, 3]], { maxNew: 2, temperature: 0, seed: 0, stopTokens: [] });
  const results: BatchResult[] = [];
  for (const B of opts.batches) {
    const prompts = Array.from({ length: B }, () => Array.from({ length: opts.promptLen }, nextId));
    // Warm-up at this batch size too: the decode GEMV creates its row-block pipelines on first use,
    // and compiling them inside the timed run made whichever batch first needed them look slow.
    await engine.generate(prompts, { maxNew: 2, temperature: 0, seed: 0, stopTokens: [] });
    engine.resetStats();
    log(`batch ${B}: ${B}×${opts.promptLen} prompt tokens, ${opts.newTokens} new...`);
    await engine.generate(prompts, { maxNew: opts.newTokens, temperature: 0, seed: 0, stopTokens: [] });
    const st = engine.stats;
    const prefillFlopPerS = prefillFlops(c, B, opts.promptLen) / (st.prefillMs / 1000);
    const decodeStepMs = st.decodeSteps ? st.decodeMs / st.decodeSteps : 0;
    const timed: BatchResult = {
      batch: B,
      prefillTokPerS: (B * opts.promptLen) / (st.prefillMs / 1000),
      decodeTokPerS: st.decodeSteps ? st.decodeTokens / (st.decodeMs / 1000) : 0,
      dispatchesPerDecodeStep: st.decodeSteps ? st.decodeDispatches / st.decodeSteps : 0,
      readbacksPerDecodeStep: st.decodeSteps ? st.decodeReadbacks / st.decodeSteps : 0,
      weightReadRatio: st.decodeSteps
        ? st.decodeWeightBytes / st.decodeSteps / engine.forward.weights.matrixBytes
        : 0,
      prefillFlopPerS,
      prefillVsMatmul: prefillFlopPerS / matmulFlopPerS,
      decodeStepMs,
      lora:
        engine.forward.lora && engine.loraEnabled
          ? { rank: engine.forward.lora.rank, loraDecode: engine.forward.limits.loraDecode }
          : null,
    };
    const result: BatchResult = { ...timed };
    if (opts.onnx) result.onnx = await onnxSideBySide(opts.onnx, timed, prompts, opts.newTokens, log);
    if (opts.kernelTimes) {
      log(`batch ${B}: per-kernel timings...`);
      result.kernelTimes = await profileKernels(engine, prompts, opts.newTokens);
    }
    results.push(result);
  }
  return {
    adapter: engine.ctx.report,
    model: label,
    weightDType: engine.weights.dtype,
    arithmetic: engine.info.arithmetic,
    layers: c.numHiddenLayers,
    matmulFlopPerS,
    memory: engine.memory(),
    results,
    ...(opts.onnx
      ? { onnx: { runtime: opts.onnx.runtime, variant: opts.onnx.variant, exportMs: opts.onnx.exportMs } }
      : {}),
  };
}

/**
 * The engine's workload on onnxruntime: the same prompts, then as many greedy decode steps as the
 * engine took (its first new token comes from the prefill, like onnxruntime's). Run twice, timing the
 * second: onnxruntime's WebGPU EP compiles shaders per shape on first use, where the engine creates
 * its pipelines at load and warmed up once.
 */
async function onnxSideBySide(
  onnx: OnnxBaseline,
  engine: BatchResult,
  prompts: number[][],
  newTokens: number,
  log: (msg: string) => void,
): Promise<OnnxBatchResult> {
  const B = prompts.length;
  log(`batch ${B}: onnxruntime warm-up (same workload)...`);
  await measureOnnxBatch(onnx.lm, prompts, newTokens - 1);
  log(`batch ${B}: onnxruntime...`);
  const s = await measureOnnxBatch(onnx.lm, prompts, newTokens - 1);
  return {
    prefillTokPerS: s.prefillTokensPerSecond,
    decodeTokPerS: s.decodeTokensPerSecond,
    decodeRatio: engine.decodeTokPerS / s.decodeTokensPerSecond,
    prefillRatio: engine.prefillTokPerS / s.prefillTokensPerSecond,
  };
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const g = (x: number) => (x / 1e9).toFixed(2);

export function benchTable(r: BenchResult): string {
  const lines = [
    `model ${r.model} (${r.weightDType} weights, ${r.layers} layers) on ${r.adapter.vendor} ${r.adapter.architecture} ${r.adapter.description}`,
    `matmul peak (same run, ${r.weightDType} weights): ${g(r.matmulFlopPerS)} GFLOP/s`,
    `subgroup matrices: ${r.adapter.subgroupMatrix.offered ? `offered (${r.adapter.subgroupMatrix.configs.length} shapes)` : 'not offered'}, matmul path ${r.adapter.subgroupMatrix.matmulPath}`,
    'batch | prefill tok/s | decode tok/s | dispatches/step | readbacks/step | weight reads | prefill GFLOP/s | vs matmul',
    '----- | ------------- | ------------ | --------------- | -------------- | ------------ | --------------- | ---------',
    ...r.results.map(
      (x) =>
        `${String(x.batch).padStart(5)} | ${x.prefillTokPerS.toFixed(1).padStart(13)} | ${x.decodeTokPerS
          .toFixed(1)
          .padStart(12)} | ${x.dispatchesPerDecodeStep.toFixed(1).padStart(15)} | ${x.readbacksPerDecodeStep
          .toFixed(1)
          .padStart(
            14,
          )} | ${`${x.weightReadRatio.toFixed(2)}×`.padStart(12)} | ${g(x.prefillFlopPerS).padStart(15)} | ${(100 * x.prefillVsMatmul).toFixed(0).padStart(8)}%`,
    ),
    `GPU memory (MiB): weights ${mib(r.memory.weights)}, KV cache ${mib(r.memory.kvCache)}, activations ${mib(
      r.memory.activations,
    )}, scratch ${mib(r.memory.scratch)}, LoRA ${mib(r.memory.lora)}, total ${mib(r.memory.total)}`,
  ];
  if (r.onnx) lines.push('', ...onnxTable(r));
  for (const x of r.results) if (x.kernelTimes) lines.push('', ...kernelTable(x));
  return lines.join('\n');
}

function onnxTable(r: BenchResult): string[] {
  const o = r.onnx;
  if (!o) return [];
  const f = (x: number, w: number) => x.toFixed(1).padStart(w);
  const ratio = (x: number, w: number) => `${x.toFixed(2)}×`.padStart(w);
  return [
    `side by side: ${o.runtime}, ${o.variant} ONNX export${
      o.exportMs !== undefined ? ` (exported in ${(o.exportMs / 1000).toFixed(1)} s)` : ''
    }; same prompts and new tokens`,
    'batch | engine decode tok/s | onnx decode tok/s | engine/onnx | engine prefill tok/s | onnx prefill tok/s | engine/onnx',
    '----- | ------------------- | ----------------- | ----------- | -------------------- | ------------------ | -----------',
    ...r.results.flatMap((x) =>
      x.onnx
        ? [
            `${String(x.batch).padStart(5)} | ${f(x.decodeTokPerS, 19)} | ${f(x.onnx.decodeTokPerS, 17)} | ${ratio(
              x.onnx.decodeRatio,
              11,
            )} | ${f(x.prefillTokPerS, 20)} | ${f(x.onnx.prefillTokPerS, 18)} | ${ratio(x.onnx.prefillRatio, 11)}`,
          ]
        : [],
    ),
  ];
}

const ms = (x: number) => x.toFixed(3);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function kernelTable(x: BatchResult): string[] {
  const k = x.kernelTimes;
  if (!k) return [];
  if (!k.available) return [`per-kernel timings, batch ${x.batch}: unavailable (${k.reason})`];
  const d = k.decodeStep;
  const lines = [
    `per-kernel GPU timings, batch ${x.batch} (timestamp resolution ${k.resolutionNs} ns; profiled: one pass per dispatch)`,
    d
      ? `  decode step: ${d.dispatches} dispatches, GPU ${ms(d.gpuMs)} ms, profiled wall ${ms(d.wallMs)} ms, unprofiled wall ${ms(x.decodeStepMs)} ms`
      : '  decode step: none (--new 1)',
    `  prefill:     ${k.prefill.dispatches} dispatches, GPU ${ms(k.prefill.gpuMs)} ms, profiled wall ${ms(k.prefill.wallMs)} ms`,
    '  kernel       | decode ms/step | decode share | prefill ms | prefill share',
    '  ------------ | -------------- | ------------ | ---------- | -------------',
  ];
  const kinds = [...new Set([...(d?.kinds ?? []), ...k.prefill.kinds].map((t) => t.kind))];
  for (const kind of kinds) {
    const dk = d?.kinds.find((t) => t.kind === kind);
    const pk = k.prefill.kinds.find((t) => t.kind === kind);
    lines.push(
      `  ${kind.padEnd(12)} | ${(dk ? ms(dk.ms) : '-').padStart(14)} | ${(dk ? pct(dk.share) : '-').padStart(
        12,
      )} | ${(pk ? ms(pk.ms) : '-').padStart(10)} | ${(pk ? pct(pk.share) : '-').padStart(13)}`,
    );
  }
  return lines;
}
