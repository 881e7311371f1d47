// `tabzero bench --tune`: times the matmul template's tile candidates at the model's real training shapes
// on this adapter, against a register-only FMA probe of the same adapter in the same run (issue 18), so
// the committed tile table (kernels/matmul.ts MATMUL_TILES, one tile per adapter kind, never per batch
// size) can be chosen by measurement. It prints the candidates' GFLOP/s per shape, their geometric
// mean as a fraction of the FMA peak, the best candidate, and whether it is the committed one.
import { Dispatcher, computePipeline, type Kernel } from '../src/engine/dispatch.ts';
import type { AdapterKind, ShaderFeatures } from '../src/engine/gpu.ts';
import {
  MATMUL_TILES,
  MatmulGradKernel,
  MatmulKernel,
  type MatmulGradArgs,
  type MatmulTile,
} from '../src/engine/kernels/matmul.ts';
import type { Qwen2Config } from '../src/model/qwen2-config.ts';

/** Tiles worth timing: the measured neighbourhood of both committed entries (kernels/matmul.ts). */
export const TUNE_CANDIDATES: readonly MatmulTile[] = [
  { TM: 64, TN: 64, TK: 16, WX: 16, WY: 8, staged: true },
  { TM: 64, TN: 64, TK: 16, WX: 8, WY: 4, staged: true },
  { TM: 64, TN: 64, TK: 16, WX: 8, WY: 8, staged: true },
  { TM: 32, TN: 32, TK: 16, WX: 8, WY: 8, staged: true },
  { TM: 128, TN: 64, TK: 16, WX: 16, WY: 8, staged: true },
  { TM: 64, TN: 64, TK: 16, WX: 8, WY: 4, staged: false },
  { TM: 64, TN: 64, TK: 16, WX: 8, WY: 2, staged: false },
  { TM: 32, TN: 64, TK: 16, WX: 8, WY: 4, staged: false },
];

export interface TuneShape {
  /** What the product is in the model (forward projection, or which gradient). */
  name: string;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

/**
 * The linear layers' products of one training micro-batch of `tokens` tokens at the model's shape:
 * the forward x·Wᵀ of the fused q|k|v, gate|up and down projections, and the backward's dX = dY·W and
 * dW = dYᵀ·X of the widest one.
 */
export function trainingShapes(c: Qwen2Config, tokens: number): TuneShape[] {
  const h = c.hiddenSize;
  const qkv = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim;
  const mlp = c.intermediateSize;
  return [
    { name: 'qkv x·Wᵀ', transA: false, transB: true, M: tokens, N: qkv, K: h },
    { name: 'gate|up x·Wᵀ', transA: false, transB: true, M: tokens, N: 2 * mlp, K: h },
    { name: 'down x·Wᵀ', transA: false, transB: true, M: tokens, N: h, K: mlp },
    { name: 'gate|up dX = dY·W', transA: false, transB: false, M: tokens, N: h, K: 2 * mlp },
    { name: 'gate|up dW = dYᵀ·X', transA: true, transB: false, M: 2 * mlp, N: h, K: tokens },
  ];
}

/** Whether the device can run a tile: its invocations, its workgroup memory, whole output blocks. */
export function tileFits(t: MatmulTile, limits: GPUSupportedLimits): boolean {
  const invocations = t.WX * t.WY;
  const sharedBytes = t.staged ? (t.TK * (t.TM + 4) + t.TK * (t.TN + 4)) * 4 : 0;
  return (
    t.TM % t.WY === 0 &&
    t.TN % t.WX === 0 &&
    invocations <= limits.maxComputeInvocationsPerWorkgroup &&
    t.WX <= limits.maxComputeWorkgroupSizeX &&
    t.WY <= limits.maxComputeWorkgroupSizeY &&
    sharedBytes <= limits.maxComputeWorkgroupStorageSize
  );
}

export const tileName = (t: MatmulTile) =>
  `${t.TM}x${t.TN}/${t.WX}x${t.WY}${t.staged ? ' staged' : ' direct'}`;

// ---- The FMA probe: no memory traffic, only register FMAs (the adapter's arithmetic peak) ----

const FMA_WG = 64;
const FMA_CHAINS = 8; // independent vec4 accumulators per invocation (hides the FMA latency)
const FMA_ITERS = 2048;
/** FLOPs per invocation: FMA_ITERS × FMA_CHAINS × 4 lanes × (multiply + add). */
const FMA_FLOPS_PER_INVOCATION = FMA_ITERS * FMA_CHAINS * 4 * 2;

const FMA_SHADER = `
struct P { seed: f32, groups: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${FMA_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = p.seed + f32(gid.x) * 1e-7;
  let m = vec4<f32>(0.9999, 1.0001, 0.99995, 1.00005);
  let c = vec4<f32>(s, s * 0.5, s * 0.25, s * 0.125);
${Array.from({ length: FMA_CHAINS }, (_, k) => `  var a${k} = c + vec4<f32>(${k}.0);`).join('\n')}
  for (var i = 0u; i < ${FMA_ITERS}u; i++) {
${Array.from({ length: FMA_CHAINS }, (_, k) => `    a${k} = a${k} * m + c;`).join('\n')}
  }
  let r = ${Array.from({ length: FMA_CHAINS }, (_, k) => `a${k}`).join(' + ')};
  // Written only when the sum is impossible, so the loop cannot be dropped and nothing is stored.
  if (r.x == -1.2345e30) { out[gid.x] = r.x + r.y + r.z + r.w; }
}`;

interface FmaArgs {
  out: GPUBuffer;
  groups: number;
}

class FmaProbeKernel implements Kernel<FmaArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, FMA_SHADER, 'fma peak probe');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: FmaArgs): ArrayBuffer {
    const buf = new ArrayBuffer(16);
    new Float32Array(buf, 0, 1)[0] = 0.5;
    new Uint32Array(buf, 4, 1)[0] = a.groups;
    return buf;
  }
  buffers(a: FmaArgs): GPUBuffer[] {
    return [a.out];
  }
  workgroups(a: FmaArgs): [number, number, number] {
    return [a.groups, 1, 1];
  }
}

/** Best wall time of `reps` submissions of `encode` (one warm-up first), in ms. */
export async function bestMs(device: GPUDevice, encode: (pass: GPUComputePassEncoder) => void, reps: number) {
  let best = Infinity;
  for (let rep = 0; rep <= reps; rep++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (rep > 0) best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** FLOP/s of register-only f32 FMAs over `groups` workgroups of 64 invocations (the arithmetic peak). */
export async function fmaPeak(device: GPUDevice, groups = 512, reps = 3): Promise<number> {
  const d = new Dispatcher(device);
  const k = new FmaProbeKernel(device);
  const out = device.createBuffer({ size: groups * FMA_WG * 4, usage: GPUBufferUsage.STORAGE });
  try {
    const ms = await bestMs(device, (pass) => d.dispatch(pass, 'fma', k, { out, groups }), reps);
    return (groups * FMA_WG * FMA_FLOPS_PER_INVOCATION) / (ms / 1000);
  } finally {
    out.destroy();
    d.clear();
  }
}

export interface TuneResult {
  adapterKind: AdapterKind;
  fmaPeakGflops: number;
  tokens: number;
  shapes: TuneShape[];
  candidates: {
    tile: string;
    committed: boolean;
    gflops: number[];
    /** Geometric mean over the shapes, GFLOP/s. */
    meanGflops: number;
    /** meanGflops ÷ the FMA peak. */
    ofPeak: number;
  }[];
  skipped: string[];
  best: string;
  bestIsCommitted: boolean;
}

/** Times every candidate that fits the device at every shape (f32 operands: the training products). */
export async function runMatmulTune(
  device: GPUDevice,
  features: ShaderFeatures,
  shapes: readonly TuneShape[],
  opts: { tokens: number; reps?: number; candidates?: readonly MatmulTile[] },
): Promise<TuneResult> {
  const reps = opts.reps ?? 2;
  const kind = features.adapterKind ?? 'gpu';
  const committed = MATMUL_TILES[kind];
  const peak = await fmaPeak(device);
  const mk = (floats: number) =>
    device.createBuffer({
      size: Math.max(16, floats * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
  const size = (s: TuneShape) => ({ a: s.M * s.K, b: s.K * s.N, out: s.M * s.N });
  const most = (f: 'a' | 'b' | 'out') => Math.max(...shapes.map((s) => size(s)[f]));
  const a = mk(most('a'));
  const b = mk(most('b'));
  const out = mk(most('out'));
  const candidates: TuneResult['candidates'] = [];
  const skipped: string[] = [];
  const d = new Dispatcher(device);
  try {
    for (const tile of opts.candidates ?? TUNE_CANDIDATES) {
      if (!tileFits(tile, device.limits)) {
        skipped.push(tileName(tile));
        continue;
      }
      const k = new MatmulGradKernel(device, 'f32', features, tile);
      const gflops: number[] = [];
      for (const s of shapes) {
        const args: MatmulGradArgs = {
          a,
          b,
          out,
          M: s.M,
          N: s.N,
          K: s.K,
          transA: s.transA,
          transB: s.transB,
        };
        const ms = await bestMs(
          device,
          (pass) => d.dispatch(pass, `tune.${tileName(tile)}.${s.name}`, k, args),
          reps,
        );
        gflops.push(MatmulKernel.flops(s.M, s.N, s.K) / (ms / 1000) / 1e9);
      }
      const meanGflops = Math.exp(gflops.reduce((x, g) => x + Math.log(g), 0) / gflops.length);
      candidates.push({
        tile: tileName(tile),
        committed: tileName(tile) === tileName(committed),
        gflops,
        meanGflops,
        ofPeak: meanGflops / (peak / 1e9),
      });
      d.clear();
    }
  } finally {
    for (const buf of [a, b, out]) buf.destroy();
    d.clear();
  }
  const best = candidates.reduce((x, y) => (y.meanGflops > x.meanGflops ? y : x));
  return {
    adapterKind: kind,
    fmaPeakGflops: peak / 1e9,
    tokens: opts.tokens,
    shapes: [...shapes],
    candidates,
    skipped,
    best: best.tile,
    bestIsCommitted: best.committed,
  };
}

export function tuneTable(r: TuneResult): string {
  const head = ['tile', ...r.shapes.map((s) => `${s.name} ${s.M}×${s.N}×${s.K}`), 'geomean', '% of FMA peak'];
  const rows = r.candidates.map((c) => [
    c.tile + (c.committed ? ' (committed)' : ''),
    ...c.gflops.map((g) => g.toFixed(1)),
    c.meanGflops.toFixed(1),
    (c.ofPeak * 100).toFixed(1),
  ]);
  const lines = [head, ...rows].map((r) => r.join(' | '));
  return [
    `matmul tiles on a '${r.adapterKind}' adapter, GFLOP/s (f32, ${r.tokens} tokens); FMA peak ${r.fmaPeakGflops.toFixed(1)} GFLOP/s`,
    ...lines,
    `best: ${r.best}${r.bestIsCommitted ? ' — the committed tile' : ` — not the committed tile (kernels/matmul.ts MATMUL_TILES.${r.adapterKind})`}`,
    ...(r.skipped.length ? [`skipped (does not fit this device): ${r.skipped.join(', ')}`] : []),
  ].join('\n');
}
