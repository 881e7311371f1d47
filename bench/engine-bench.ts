// The engine benchmark (`npm run bench -- ...`): prefill and decode throughput per batch size,
// dispatches and readbacks per decode step, GPU memory by category, and the achieved prefill FLOP/s
// against the best matmul FLOP/s measured on the same adapter in the same run. Prints JSON + a table.
// Never part of `npm test`; figures are measurements, not assertions.
import { Engine } from '../src/engine/engine.ts';
import type { GpuContext, ShaderFeatures } from '../src/engine/gpu.ts';
import { MatmulKernel } from '../src/engine/kernels/matmul.ts';
import type { Arithmetic, WeightDType } from '../src/engine/kernels/weights-wgsl.ts';
import { Dispatcher } from '../src/engine/dispatch.ts';
import type { MemoryReport } from '../src/engine/memory.ts';
import type { Qwen2Config } from '../src/model/qwen2-config.ts';

export interface BenchOptions {
  batches: number[];
  promptLen: number;
  newTokens: number;
  /** Square matmul size for the peak-FLOP/s probe. */
  matmulSize: number;
  seed: number;
  /** Progress lines (the CLI writes them to stderr). */
  log?: (msg: string) => void;
}

export interface BatchResult {
  batch: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  dispatchesPerDecodeStep: number;
  readbacksPerDecodeStep: number;
  prefillFlopPerS: number;
  prefillVsMatmul: number;
}

export interface BenchResult {
  adapter: GpuContext['report'];
  model: string;
  weightDType: WeightDType;
  /** What the weight matmuls multiply in (f16: f16 weights on a `shader-f16` device). */
  arithmetic: Arithmetic;
  layers: number;
  matmulFlopPerS: number;
  memory: MemoryReport;
  results: BatchResult[];
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
  let best = Infinity;
  for (let rep = 0; rep < 4; rep++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    d.dispatch(pass, 'peak', k, { a, b, out, M: n, N: n, K: n });
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (rep > 0) best = Math.min(best, performance.now() - t0); // rep 0 warms up
  }
  for (const buf of [a, b, out]) buf.destroy();
  d.clear();
  return MatmulKernel.flops(n, n, n) / (best / 1000);
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
    engine.resetStats();
    log(`batch ${B}: ${B}×${opts.promptLen} prompt tokens, ${opts.newTokens} new...`);
    await engine.generate(prompts, { maxNew: opts.newTokens, temperature: 0, seed: 0, stopTokens: [] });
    const st = engine.stats;
    const prefillFlopPerS = prefillFlops(c, B, opts.promptLen) / (st.prefillMs / 1000);
    results.push({
      batch: B,
      prefillTokPerS: (B * opts.promptLen) / (st.prefillMs / 1000),
      decodeTokPerS: st.decodeSteps ? st.decodeTokens / (st.decodeMs / 1000) : 0,
      dispatchesPerDecodeStep: st.decodeSteps ? st.decodeDispatches / st.decodeSteps : 0,
      readbacksPerDecodeStep: st.decodeSteps ? st.decodeReadbacks / st.decodeSteps : 0,
      prefillFlopPerS,
      prefillVsMatmul: prefillFlopPerS / matmulFlopPerS,
    });
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
  };
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const g = (x: number) => (x / 1e9).toFixed(2);

export function benchTable(r: BenchResult): string {
  const lines = [
    `model ${r.model} (${r.weightDType} weights, ${r.layers} layers) on ${r.adapter.vendor} ${r.adapter.architecture} ${r.adapter.description}`,
    `matmul peak (same run, ${r.weightDType} weights): ${g(r.matmulFlopPerS)} GFLOP/s`,
    'batch | prefill tok/s | decode tok/s | dispatches/step | readbacks/step | prefill GFLOP/s | vs matmul',
    '----- | ------------- | ------------ | --------------- | -------------- | --------------- | ---------',
    ...r.results.map(
      (x) =>
        `${String(x.batch).padStart(5)} | ${x.prefillTokPerS.toFixed(1).padStart(13)} | ${x.decodeTokPerS
          .toFixed(1)
          .padStart(12)} | ${x.dispatchesPerDecodeStep.toFixed(1).padStart(15)} | ${x.readbacksPerDecodeStep
          .toFixed(1)
          .padStart(
            14,
          )} | ${g(x.prefillFlopPerS).padStart(15)} | ${(100 * x.prefillVsMatmul).toFixed(0).padStart(8)}%`,
    ),
    `GPU memory (MiB): weights ${mib(r.memory.weights)}, KV cache ${mib(r.memory.kvCache)}, activations ${mib(
      r.memory.activations,
    )}, scratch ${mib(r.memory.scratch)}, LoRA ${mib(r.memory.lora)}, total ${mib(r.memory.total)}`,
  ];
  return lines.join('\n');
}
