// The backward's matmul: out[M,N] (=|+=) alpha · op(A)·op(B) over explicit strides and offsets, so one
// kernel serves every layout the backward needs without copies:
//   dX  = dY·W        (NN; W [out, in] in the weights' dtype)      dW  = dYᵀ·X   (TN)
//   LoRA: h = X·Aᵀ (NT), dB += s·dYᵀ·h (TN), dh = s·dY·B (NN), dA += dhᵀ·X (TN), dX += dh·A (NN)
//   LM head: dhidden += dlogits[:, chunk]·E_chunk (NN over a column window of the logits)
// A(m,k) = transA ? a[aOff + k·lda + m] : a[aOff + m·lda + k];  B(k,n) = transB ? b[bOff + n·ldb + k]
// : b[bOff + k·ldb + n]. Same tiling as kernels/matmul.ts (64×64 tiles, K-steps of 16, 128 invocations
// with 8×4 outputs each); B may be 16-bit (packed, unpacked to f32). Reductions run in a fixed order.
import { computePipeline, type Dispatcher, type Kernel } from '../dispatch.ts';
import { weightDecl, weightLoadFn, type WeightDType } from './weights-wgsl.ts';

const TILE_M = 64;
const TILE_N = 64;
const TILE_K = 16;
const WG_X = 16;
const WG_Y = 8;

function shader(transA: boolean, transB: boolean, bdtype: WeightDType): string {
  const aIdx = transA ? 'p.aOff + gk * p.lda + gm' : 'p.aOff + gm * p.lda + gk';
  const bIdx = transB ? 'p.bOff + gn * p.ldb + gk' : 'p.bOff + gk * p.ldb + gn';
  return /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldo: u32, aOff: u32, bOff: u32,
                oOff: u32, accumulate: u32, alpha: f32, kPerSplit: u32, splitStride: u32,
                pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
${weightDecl(2, 'b', bdtype)}
${weightLoadFn('loadB', 'b', bdtype)}
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> As: array<f32, ${TILE_M * TILE_K}>;
var<workgroup> Bs: array<f32, ${TILE_K * TILE_N}>;

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileM = wg.y * ${TILE_M}u;
  let tileN = wg.x * ${TILE_N}u;
  var acc: array<array<f32, 4>, 8>;
  // Split-K: workgroup z reduces k in [kBegin, kEnd) and writes its partial tile (see MatmulSplitReduce).
  let kBegin = wg.z * p.kPerSplit;
  let kEnd = min(p.K, kBegin + p.kPerSplit);
  for (var k0 = kBegin; k0 < kEnd; k0 += ${TILE_K}u) {
    for (var e = li; e < ${TILE_M * TILE_K}u; e += ${WG_X * WG_Y}u) {
      ${transA ? `let kk = e / ${TILE_M}u; let m = e % ${TILE_M}u;` : `let m = e / ${TILE_K}u; let kk = e % ${TILE_K}u;`}
      let gm = tileM + m; let gk = k0 + kk;
      var v = 0.0; if (gm < p.M && gk < kEnd) { v = a[${aIdx}]; }
      As[m * ${TILE_K}u + kk] = v;
    }
    for (var e = li; e < ${TILE_K * TILE_N}u; e += ${WG_X * WG_Y}u) {
      ${transB ? `let n = e / ${TILE_K}u; let kk = e % ${TILE_K}u;` : `let kk = e / ${TILE_N}u; let n = e % ${TILE_N}u;`}
      let gn = tileN + n; let gk = k0 + kk;
      var v = 0.0; if (gn < p.N && gk < kEnd) { v = loadB(${bIdx}); }
      Bs[kk * ${TILE_N}u + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      var bv: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk * ${TILE_N}u + lid.x * 4u + j]; }
      for (var i = 0u; i < 8u; i++) {
        let av = As[(lid.y * 8u + i) * ${TILE_K}u + kk];
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let gm = tileM + lid.y * 8u + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = tileN + lid.x * 4u + j;
      if (gn < p.N && p.splitStride != 0u) {
        out[wg.z * p.splitStride + gm * p.N + gn] = acc[i][j];
      } else if (gn < p.N) {
        let o = p.oOff + gm * p.ldo + gn;
        let v = p.alpha * acc[i][j];
        if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
      }
    }
  }
}`;
}

export interface MatmulGradArgs {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** Row strides (elements); defaults: the dense layout of op's operand. */
  lda?: number;
  ldb?: number;
  ldo?: number;
  aOff?: number;
  bOff?: number;
  oOff?: number;
  accumulate?: boolean;
  alpha?: number;
  /**
   * Split-K (> 1): workgroup z sums its K slice into `out` = a partial buffer [splits, M, N] (epilogue
   * fields ignored); MatmulSplitReduceKernel then applies the epilogue. See encodeMatmulGrad.
   */
  splits?: number;
}

/** One pipeline per (transA, transB) for B in `bdtype` (the weights' dtype, or f32 for activations). */
export class MatmulGradKernel implements Kernel<MatmulGradArgs> {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    readonly bdtype: WeightDType = 'f32',
  ) {}

  /** Pipelines compile on first use (lavapipe takes seconds per variant; a run uses three). */
  pipelineFor(a: MatmulGradArgs): GPUComputePipeline {
    const key = `${a.transA}${a.transB}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const name = `matmul-grad ${a.transA ? 'T' : 'N'}${a.transB ? 'T' : 'N'} ${this.bdtype}`;
      p = computePipeline(this.device, shader(a.transA, a.transB, this.bdtype), name);
      this.pipelines.set(key, p);
    }
    return p;
  }

  params(a: MatmulGradArgs): ArrayBuffer {
    const splits = a.splits ?? 1;
    const buf = new ArrayBuffer(64);
    const u = new Uint32Array(buf);
    u.set([
      a.M,
      a.N,
      a.K,
      a.lda ?? (a.transA ? a.M : a.K),
      a.ldb ?? (a.transB ? a.K : a.N),
      a.ldo ?? a.N,
      a.aOff ?? 0,
      a.bOff ?? 0,
      a.oOff ?? 0,
      a.accumulate ? 1 : 0,
      0,
      Math.ceil(a.K / splits / 16) * 16,
      splits > 1 ? a.M * a.N : 0,
    ]);
    new Float32Array(buf)[10] = a.alpha ?? 1;
    return buf;
  }

  buffers(a: MatmulGradArgs): GPUBuffer[] {
    return [a.a, a.b, a.out];
  }

  workgroups(a: MatmulGradArgs): [number, number, number] {
    return [Math.ceil(a.N / TILE_N), Math.ceil(a.M / TILE_M), a.splits ?? 1];
  }
}

const REDUCE_WG = 64;
const REDUCE = /* wgsl */ `
struct Params { M: u32, N: u32, splits: u32, ldo: u32, oOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x; let m = gid.y;
  if (n >= p.N || m >= p.M) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) { s += partial[(z * p.M + m) * p.N + n]; }
  let o = p.oOff + m * p.ldo + n;
  if (p.accumulate != 0u) { out[o] = out[o] + p.alpha * s; } else { out[o] = p.alpha * s; }
}`;

interface SplitReduceArgs {
  partial: GPUBuffer;
  out: GPUBuffer;
  M: number;
  N: number;
  splits: number;
  ldo: number;
  oOff: number;
  accumulate: boolean;
  alpha: number;
}

/** Sums split-K partials [splits, M, N] in a fixed order and applies the matmul's epilogue. */
export class MatmulSplitReduceKernel implements Kernel<SplitReduceArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, REDUCE, 'matmul split-K reduce');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: SplitReduceArgs): ArrayBuffer {
    const buf = new ArrayBuffer(32);
    new Uint32Array(buf).set([a.M, a.N, a.splits, a.ldo, a.oOff, a.accumulate ? 1 : 0]);
    new Float32Array(buf)[6] = a.alpha;
    return buf;
  }
  buffers(a: SplitReduceArgs): GPUBuffer[] {
    return [a.partial, a.out];
  }
  workgroups(a: SplitReduceArgs): [number, number, number] {
    return [Math.ceil(a.N / REDUCE_WG), a.M, 1];
  }
}

/**
 * K-slices for a matmul whose output tiles alone cannot fill the GPU (long reductions with a small
 * output: the LM head's dL/dhidden over the vocabulary, LoRA's dA/dB over the tokens): about
 * `targetGroups` workgroups in all, each slice at least `minK` long, at most `maxSplits`.
 */
export function chooseSplits(
  M: number,
  N: number,
  K: number,
  targetGroups = 256,
  minK = 256,
  maxSplits = 32,
): number {
  const tiles = Math.ceil(M / TILE_M) * Math.ceil(N / TILE_N);
  return Math.max(1, Math.min(maxSplits, Math.floor(K / minK), Math.ceil(targetGroups / tiles)));
}

/**
 * Records out (=|+=) alpha·op(A)·op(B), through split-K partials in `partial` (≥ splits·M·N floats)
 * when `splits` > 1. The site name must identify the buffers (dispatcher bind-group cache).
 */
export function encodeMatmulGrad(
  d: Dispatcher,
  pass: GPUComputePassEncoder,
  site: string,
  mm: MatmulGradKernel,
  reduce: MatmulSplitReduceKernel,
  args: MatmulGradArgs,
  splits: number,
  partial: GPUBuffer,
  /** Dispatcher's dynamic mode (one uniform per site, rewritten when the shape changes). */
  dynamic = false,
): void {
  if (splits <= 1) {
    d.dispatch(pass, site, mm, { ...args, splits: 1 }, dynamic);
    return;
  }
  d.dispatch(pass, site + '.split', mm, { ...args, out: partial, splits }, dynamic);
  d.dispatch(
    pass,
    site + '.reduce',
    reduce,
    {
      partial,
      out: args.out,
      M: args.M,
      N: args.N,
      splits,
      ldo: args.ldo ?? args.N,
      oOff: args.oOff ?? 0,
      accumulate: args.accumulate ?? false,
      alpha: args.alpha ?? 1,
    },
    dynamic,
  );
}
