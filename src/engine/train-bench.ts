// The training step's benchmark (`npm run bench -- --train ...`): a synthetic batch of the requested
// shape, timed per phase over a few steps, with the FLOPs the step performs and GPU memory by category.
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { TrainBatch } from '../policy.ts';
import type { Engine } from './engine.ts';
import type { LedgerTotals } from './memory.ts';
import { LORA_TARGETS } from '../config.ts';
import { initLora } from '../model/lora.ts';
import { GpuLora } from './lora-gpu.ts';
import { planMicroBatches, GpuTrainer } from './train.ts';
import { uniformSource } from '../random.ts';
import { KernelProfiler, profilingUnavailable } from './kernel-profiler.ts';

export interface TrainBenchOptions {
  sequences: number;
  promptLen: number;
  completionLen: number;
  steps: number;
  seed: number;
}

export interface TrainBenchResult {
  sequences: number;
  promptLen: number;
  completionLen: number;
  /** Completion tokens trained on per step. */
  tokens: number;
  /** Token rows through the layers per step (prompt + completion − 1 per sequence). */
  inputTokens: number;
  microBatches: number;
  /** Best step time and its phases (ms). */
  stepMs: number;
  timeMs: Record<string, number>;
  /** Input tokens per second of a whole step (forward + recompute + backward + update). */
  tokensPerSecond: number;
  flops: { layers: number; attention: number; lmHead: number; lora: number; total: number };
  flopsPerSecond: number;
  /** Same-run matmul peak, when the caller measured it, and the step's fraction of it. */
  peakMatmulFlops: number | null;
  ratioToPeak: number | null;
  memory: LedgerTotals;
  /** GPU time per kernel kind of one profiled step (trainKernelKind), when profiled. */
  kernelTimes?: TrainKernelTimes;
}

export type TrainKernelTimes =
  | { available: false; reason: string }
  | {
      available: true;
      totalMs: number;
      kinds: { kind: string; dispatches: number; ms: number; share: number }[];
    };

/**
 * The kind of a profiled training dispatch (sites from GpuTrainer.setProfiler): "fwd:L3.gemm.qkv" →
 * "fwd qkv" (forward and recomputation), "fwd:L3.q_proj.loraB" → "fwd lora B", "bwd:L3.qkv" → "dX qkv",
 * "bwd:L3.down_proj.dA.split" → "lora dA split", "bwd:lm.dhidden0.reduce" → "lm dhidden reduce".
 */
export function trainKernelKind(site: string): string {
  const [phase, rest] = site.startsWith('fwd:') ? ['fwd', site.slice(4)] : ['bwd', site.slice(4)];
  let op = rest.replace(/^L\d+\./, '').replace(/^gemm\./, '');
  if (phase === 'fwd') {
    if (/^lm\d+/.test(op)) return 'fwd lm head';
    if (/^embed\d*$/.test(op)) return 'fwd embed';
    const lora = /\.lora([AB])$/.exec(op);
    if (lora) return `fwd lora ${lora[1]}`;
    if (/^norm\d$/.test(op)) return 'fwd norm';
    return `fwd ${op}`;
  }
  op = op.replace(/\d+(?=\.|$)/, '');
  const lora = /^[a-z]+_proj\.(.*)$/.exec(op);
  if (lora) return `lora ${lora[1].replace('.', ' ')}`;
  if (['down', 'gateup', 'o', 'qkv'].includes(op)) return `dX ${op}`;
  return op.replace('.', ' ');
}

/** One training step with every dispatch timed (the step's numbers are not used: see setProfiler). */
export async function profileTrainStep(
  engine: Engine,
  trainer: GpuTrainer,
  batch: TrainBatch,
): Promise<TrainKernelTimes> {
  const device = engine.ctx.device;
  const reason = profilingUnavailable(device);
  if (reason) return { available: false, reason };
  const profiler = new KernelProfiler(device);
  trainer.setProfiler(profiler);
  let timings;
  try {
    await trainer.computeGradients(batch);
    trainer.setProfiler(null);
    timings = (await profiler.read()).timings;
  } finally {
    trainer.setProfiler(null);
    profiler.destroy();
  }
  const byKind = new Map<string, { dispatches: number; ns: number }>();
  let total = 0;
  for (const t of timings) {
    const k = trainKernelKind(t.site);
    const e = byKind.get(k) ?? { dispatches: 0, ns: 0 };
    e.dispatches++;
    e.ns += t.ns;
    total += t.ns;
    byKind.set(k, e);
  }
  const kinds = [...byKind.entries()]
    .map(([kind, e]) => ({ kind, dispatches: e.dispatches, ms: e.ns / 1e6, share: total ? e.ns / total : 0 }))
    .sort((a, b) => b.ms - a.ms || a.kind.localeCompare(b.kind));
  return { available: true, totalMs: total / 1e6, kinds };
}

/**
 * FLOPs of one LoRA training step with per-layer recomputation: the layer matmuls run three times
 * (forward, recompute, dX in the backward; no base dW with LoRA), attention about 4.5 times its forward
 * (forward, recompute, and the backward's five score-sized products), the LM head twice (logits and
 * dL/dhidden) on completion rows only, LoRA ~5 products of rank r per adapted projection and token.
 * Full fine-tuning (`full`) adds each weight's dW: the layer matmuls run four times, the LM head three
 * (its tied embedding's gradient), and there are no LoRA products. Without recomputation (`recompute`
 * false: the trainer kept the activations) the forward's layer matmuls, attention and LoRA products
 * run once fewer.
 */
export function trainStepFlops(
  c: Qwen2Config,
  lens: readonly { prompt: number; completion: number }[],
  lora: { rank: number; inOutSum: number },
  full = false,
  recompute = true,
): TrainBenchResult['flops'] {
  const C = c.hiddenSize;
  const Q = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim;
  const perTokenLayer = 2 * C * (Q + C + 3 * c.intermediateSize);
  let tokens = 0;
  let completion = 0;
  let attnPairs = 0;
  for (const l of lens) {
    const n = l.prompt + l.completion - 1;
    tokens += n;
    completion += l.completion;
    attnPairs += (n * (n + 1)) / 2;
  }
  const L = c.numHiddenLayers;
  const once = recompute ? 0 : 1;
  const layers = ((full ? 4 : 3) - once) * L * tokens * perTokenLayer;
  const attention = (4.5 - once) * L * attnPairs * 2 * 2 * c.numAttentionHeads * c.headDim;
  const lmHead = (full ? 3 : 2) * 2 * completion * c.vocabSize * C;
  const loraFlops = (6 - once) * 2 * L * tokens * lora.rank * lora.inOutSum;
  return { layers, attention, lmHead, lora: loraFlops, total: layers + attention + lmHead + loraFlops };
}

export async function benchTrainStep(
  engine: Engine,
  trainer: GpuTrainer,
  opts: TrainBenchOptions,
  peakMatmulFlops: number | null = null,
  kernelTimes = false,
): Promise<TrainBenchResult> {
  const c = engine.config;
  const next = uniformSource(opts.seed);
  const tok = () => Math.floor(((next() + 1) / 2) * Math.min(c.vocabSize, 150000));
  const batch: TrainBatch = {
    sequences: Array.from({ length: opts.sequences }, (_, j) => ({
      promptIds: Array.from({ length: opts.promptLen }, tok),
      completionIds: Array.from({ length: opts.completionLen }, tok),
      advantage: j % 2 ? 1 : -1,
    })),
    clipEps: 0.2,
    entropyCoef: 0,
    klBeta: 0,
  };
  let best: { ms: number; timeMs: Record<string, number>; tokens: number } | null = null;
  for (let s = 0; s < opts.steps; s++) {
    const t0 = performance.now();
    const stats = await trainer.step(batch);
    const ms = performance.now() - t0;
    if (!best || ms < best.ms) best = { ms, timeMs: stats.timeMs, tokens: stats.tokens };
  }
  const microBatches = planMicroBatches(
    batch.sequences,
    engine.forward.limits,
    trainer.opts.microBatch,
  ).length;
  const lens = batch.sequences.map(() => ({ prompt: opts.promptLen, completion: opts.completionLen }));
  const inOutSum = (trainer.lora?.pairs ?? [])
    .filter((p) => p.layer === 0)
    .reduce((n, p) => n + (p.A.n + p.B.n) / (trainer.lora?.rank ?? 1), 0);
  const flops = trainStepFlops(
    c,
    lens,
    { rank: trainer.lora?.rank ?? 0, inOutSum },
    trainer.lora === null,
    !trainer.keepsActivations,
  );
  const stepMs = best!.ms;
  const inputTokens = opts.sequences * (opts.promptLen + opts.completionLen - 1);
  const flopsPerSecond = flops.total / (stepMs / 1000);
  return {
    sequences: opts.sequences,
    promptLen: opts.promptLen,
    completionLen: opts.completionLen,
    tokens: best!.tokens,
    inputTokens,
    microBatches,
    stepMs,
    timeMs: best!.timeMs,
    tokensPerSecond: inputTokens / (stepMs / 1000),
    flops,
    flopsPerSecond,
    peakMatmulFlops,
    ratioToPeak: peakMatmulFlops ? flopsPerSecond / peakMatmulFlops : null,
    memory: engine.memory(),
    ...(kernelTimes ? { kernelTimes: await profileTrainStep(engine, trainer, batch) } : {}),
  };
}

export interface RunTrainBenchOptions extends TrainBenchOptions {
  loraRank: number;
  loraAlpha: number;
  /** Full fine-tuning of every weight (f32 weights) instead of a LoRA adapter. */
  full?: boolean;
  /** Same-run matmul peak (FLOP/s), measured by the caller. */
  peakMatmulFlops: number | null;
  /** Also time every kernel of one more (profiled) step. */
  kernelTimes?: boolean;
}

/** Puts a fresh LoRA adapter (all seven projections) and a trainer on the engine and times the step. */
export async function runTrainBench(engine: Engine, o: RunTrainBenchOptions): Promise<TrainBenchResult> {
  return benchTrainStep(engine, createBenchTrainer(engine, o), o, o.peakMatmulFlops, o.kernelTimes);
}

/**
 * The bench's trainer: a fresh LoRA adapter on all seven projections, or with `full` every weight
 * (memory is booked on creation).
 */
export function createBenchTrainer(
  engine: Engine,
  o: { loraRank: number; loraAlpha: number; seed: number; full?: boolean },
): GpuTrainer {
  const cfg = engine.config;
  const gpu = o.full
    ? null
    : GpuLora.create(
        engine.ctx.device,
        engine.ledger,
        cfg,
        initLora(cfg, { rank: o.loraRank, alpha: o.loraAlpha, targets: LORA_TARGETS }, o.seed),
      );
  return new GpuTrainer(engine, gpu, {
    lr: 2e-5,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    maxGradNorm: 1,
    warmupSteps: 0,
  });
}

/** A small text table of a training-step bench. */
export function trainBenchTable(r: TrainBenchResult): string {
  const gb = (b: number) => (b / 2 ** 30).toFixed(2);
  const rows = [
    ['sequences × (prompt + completion)', `${r.sequences} × (${r.promptLen} + ${r.completionLen})`],
    ['micro-batches', String(r.microBatches)],
    ['step (ms)', r.stepMs.toFixed(0)],
    ...Object.entries(r.timeMs).map(([k, v]) => [`  ${k} (ms)`, v.toFixed(0)]),
    ['tokens/s (input rows)', r.tokensPerSecond.toFixed(1)],
    ['GFLOP per step', (r.flops.total / 1e9).toFixed(1)],
    ['GFLOP/s achieved', (r.flopsPerSecond / 1e9).toFixed(2)],
    ['matmul peak GFLOP/s', r.peakMatmulFlops ? (r.peakMatmulFlops / 1e9).toFixed(2) : '—'],
    ['ratio to peak', r.ratioToPeak ? `${(100 * r.ratioToPeak).toFixed(1)} %` : '—'],
    ...Object.entries(r.memory).map(([k, v]) => [`GPU memory ${k} (GiB)`, gb(v)]),
  ];
  const kt = r.kernelTimes;
  if (kt?.available) {
    rows.push([`GPU time per kernel kind (ms, profiled step)`, kt.totalMs.toFixed(0)]);
    for (const k of kt.kinds)
      rows.push([`  ${k.kind} ×${k.dispatches}`, `${k.ms.toFixed(1)}  (${(100 * k.share).toFixed(1)} %)`]);
  } else if (kt) rows.push(['per-kernel times', kt.reason]);
  const w = Math.max(...rows.map((x) => x[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
