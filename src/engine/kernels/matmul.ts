// Tiled matmul: out[M,N] = a[M,K] · b (+ bias), b stored [K,N] (NN) or [N,K] (NT: HF Linear weights).
// b (the weights) may be f32 or 16-bit (f16 / bf16, two per 32-bit word; weights-wgsl.ts).
// The epilogue writes into a column window of a wider output (row stride `ldo`, column offset `colOff`:
// fused QKV / gate-up buffers, the LM head's vocabulary chunks) and can accumulate `out += alpha·acc`
// (LoRA's low-rank update).
// Each workgroup computes a 64×64 output tile from 64×16 / 16×64 tiles staged in workgroup memory;
// each of its 128 invocations (within compatibility mode's limit) accumulates 8×4 outputs in registers.
// The K loop runs in a fixed order for every row, so a row's result never depends on M (batch invariance).
//
// Arithmetic (weights-wgsl.ts weightArithmetic): f32, or for f16 weights on a `shader-f16` device, f16:
// both tiles are staged as f16 (a rounded to f16 once, the weights read natively), the products and
// sums of F16_FOLD consecutive k run in f16 (vec4<f16> FMAs), and each such partial sum is folded into
// the f32 accumulator. Error against f32 arithmetic on the same f16 weights, per output: a's rounding
// (2^-11 relative per element), each product's (2^-11) and F16_FOLD − 1 f16 additions — at most
// (F16_FOLD + 1)·2^-11·Σ_k |a_k·w_k|, typically ~2^-11·√(Σ_k (a_k·w_k)²); tests/gpu/forward-kernels.test.ts
// measures it. Activations must stay within f16's range (|a| < 65,504): matmul inputs are normed or
// gated activations, the residual stream itself stays f32.

// Backward (below): MatmulGradKernel, the strided/transposed matmul of every backward product, with split-K.
//
// Reference: matmul (src/engine/reference/matmul.ts) and linear (src/engine/reference/ops.ts);
//   MatmulGradKernel: op(A)·op(B) computed inline in its test, and linearBackward
//   (src/engine/reference/ops-backward.ts) in the whole model.
// Tests: tests/gpu/matmul.test.ts, tests/gpu/forward-kernels.test.ts (linear),
//   tests/gpu/backward-kernels.test.ts (strided and split-K matmul); in the whole model
//   tests/gpu/train-grads.test.ts.

import { computePipeline, type Dispatcher, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import {
  enables,
  weightArithmetic,
  weightDecl,
  weightLoadFn,
  type Arithmetic,
  type WeightDType,
} from './weights-wgsl.ts';

const TILE_M = 64;
const TILE_N = 64;
const TILE_K = 16;
const WG_X = 16; // columns of invocations → 4 outputs each
const WG_Y = 8; // rows of invocations → 8 outputs each
/**
 * k-steps summed in f16 before folding into the f32 accumulator (f16 arithmetic; divides TILE_K).
 * Measured on lavapipe (16×64 outputs, a ≈ N(0, 1), w ≈ 0.025·N(0, 1) rounded to f16; largest error
 * over the output rms): fold 1 (each f16 product added in f32) 1.0e-3 at K = 896 and 8.5e-4 at
 * K = 4,864; fold 4 1.5e-3 / 1.7e-3; fold 16 2.3e-3 / 2.8e-3. Rounding a to f16 dominates; 4 keeps the
 * error within 1.7× of fold 1's while the inner loop runs as vec4<f16> FMAs.
 */
export const F16_FOLD = 4;

/** The staged tiles, A as [m][k] and B as [k][n] (shared by the forward and backward matmuls). */
const tiles = (t: 'f32' | 'f16') => /* wgsl */ `var<workgroup> As: array<${t}, ${TILE_M * TILE_K}>; // [m][k]
var<workgroup> Bs: array<${t}, ${TILE_K * TILE_N}>; // [k][n]`;
const TILES = tiles('f32');

/** One K-step of the register tile: each invocation's 8×4 outputs += the staged A rows · B columns. */
const TILE_FMA = /* wgsl */ `for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      var bv: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk * ${TILE_N}u + lid.x * 4u + j]; }
      for (var i = 0u; i < 8u; i++) {
        let av = As[(lid.y * 8u + i) * ${TILE_K}u + kk];
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
      }
    }`;

/** The f16 K-step: f16 partial sums over F16_FOLD k, folded into the f32 accumulator. */
const TILE_FMA_F16 = /* wgsl */ `for (var k1 = 0u; k1 < ${TILE_K}u; k1 += ${F16_FOLD}u) {
      // Explicitly zeroed: lavapipe (Mesa 25) did not re-zero an uninitialised var declared in a loop.
      var part = array<vec4<f16>, 8>();
      for (var kk = k1; kk < k1 + ${F16_FOLD}u; kk++) {
        let b0 = kk * ${TILE_N}u + lid.x * 4u;
        let bv = vec4<f16>(Bs[b0], Bs[b0 + 1u], Bs[b0 + 2u], Bs[b0 + 3u]);
        for (var i = 0u; i < 8u; i++) {
          part[i] = fma(vec4<f16>(As[(lid.y * 8u + i) * ${TILE_K}u + kk]), bv, part[i]);
        }
      }
      for (var i = 0u; i < 8u; i++) { acc[i] += vec4<f32>(part[i]); }
    }`;

function shader(transposeB: boolean, withBias: boolean, wdtype: WeightDType, arith: Arithmetic): string {
  const f16 = arith === 'f16';
  const zero = f16 ? '0.0h' : '0.0';
  const loadB = transposeB
    ? // b[n, k]: tile element (k, n)
      `let gn = tileN + n; let gk = k0 + kk;
       var v = ${zero}; if (gn < p.N && gk < p.K) { v = ${f16 ? 'b[gn * p.K + gk]' : 'loadW(gn * p.K + gk)'}; }`
    : `let gn = tileN + n; let gk = k0 + kk;
       var v = ${zero}; if (gn < p.N && gk < p.K) { v = ${f16 ? 'b[gk * p.N + gn]' : 'loadW(gk * p.N + gn)'}; }`;
  return /* wgsl */ `${enables(f16)}
struct Params { M: u32, N: u32, K: u32, ldo: u32, colOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
${weightDecl(2, 'b', wdtype, 0, f16)}
${f16 ? '' : weightLoadFn('loadW', 'b', wdtype)}
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}

${tiles(arith)}

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileM = wg.y * ${TILE_M}u;
  let tileN = wg.x * ${TILE_N}u;
  var acc: array<${f16 ? 'vec4<f32>' : 'array<f32, 4>'}, 8>;
  for (var k0 = 0u; k0 < p.K; k0 += ${TILE_K}u) {
    // ${TILE_M * TILE_K} elements per tile, ${WG_X * WG_Y} invocations → 8 loads each.
    for (var e = li; e < ${TILE_M * TILE_K}u; e += ${WG_X * WG_Y}u) {
      let m = e / ${TILE_K}u; let kk = e % ${TILE_K}u;
      let gm = tileM + m; let gk = k0 + kk;
      var v = ${zero}; if (gm < p.M && gk < p.K) { v = ${f16 ? 'f16(a[gm * p.K + gk])' : 'a[gm * p.K + gk]'}; }
      As[m * ${TILE_K}u + kk] = v;
    }
    for (var e = li; e < ${TILE_K * TILE_N}u; e += ${WG_X * WG_Y}u) {
      let kk = e / ${TILE_N}u; let n = e % ${TILE_N}u;
      ${loadB}
      Bs[kk * ${TILE_N}u + n] = v;
    }
    workgroupBarrier();
    ${f16 ? TILE_FMA_F16 : TILE_FMA}
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let gm = tileM + lid.y * 8u + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = tileN + lid.x * 4u + j;
      if (gn < p.N) {
        let o = gm * p.ldo + p.colOff + gn;
        let v = p.alpha * acc[i][j]${withBias ? ' + bias[gn]' : ''};
        if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
      }
    }
  }
}`;
}

/** Where and how the result is written (defaults: a plain [M, N] output, overwritten, alpha 1). */
export interface MatmulEpilogue {
  /** Row stride of `out` in elements (default N). */
  ldo?: number;
  /** First column of `out` written (default 0). */
  colOff?: number;
  /** out += alpha·a·b instead of out = alpha·a·b (+ bias). */
  accumulate?: boolean;
  alpha?: number;
}

const MATMUL_PARAMS_BYTES = 32;

/** Matmul arguments: buffers, dims and epilogue (the Dispatcher writes the uniform block from them). */
export interface MatmulKernelArgs extends MatmulEpilogue {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  bias?: GPUBuffer;
  M: number;
  N: number;
  K: number;
}

export function matmulParamsData(
  M: number,
  N: number,
  K: number,
  epilogue: MatmulEpilogue = {},
): ArrayBuffer {
  const data = new ArrayBuffer(MATMUL_PARAMS_BYTES);
  const u = new Uint32Array(data);
  u.set([M, N, K, epilogue.ldo ?? N, epilogue.colOff ?? 0, epilogue.accumulate ? 1 : 0]);
  new Float32Array(data)[6] = epilogue.alpha ?? 1;
  return data;
}

export class MatmulKernel implements Kernel<MatmulKernelArgs> {
  private readonly pipelines = new Map<boolean, GPUComputePipeline>();
  /** f16 for f16 weights on a `shader-f16` device (see the header), else f32. */
  readonly arithmetic: Arithmetic;

  constructor(
    private readonly device: GPUDevice,
    readonly transposeB: boolean,
    /** Element type of `b` (the weights): f32, or f16 / bf16 two per 32-bit word. */
    readonly weightDType: WeightDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    this.arithmetic = weightArithmetic(weightDType, features);
  }

  /**
   * The with/without-bias pipeline, compiled on first use: software adapters spend seconds per
   * shader, and most call sites only ever need one of the two.
   */
  private pipeline(withBias: boolean): GPUComputePipeline {
    let p = this.pipelines.get(withBias);
    if (!p) {
      const module = this.device.createShaderModule({
        code: shader(this.transposeB, withBias, this.weightDType, this.arithmetic),
        label: `matmul ${this.transposeB ? 'NT' : 'NN'} ${this.weightDType} (${this.arithmetic} math)`,
      });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(withBias, p);
    }
    return p;
  }

  // The Kernel interface (src/engine/dispatch.ts): the Dispatcher caches params + bind groups per site.
  pipelineFor(args: MatmulKernelArgs): GPUComputePipeline {
    return this.pipeline(Boolean(args.bias));
  }

  params(args: MatmulKernelArgs): ArrayBuffer {
    return matmulParamsData(args.M, args.N, args.K, args);
  }

  buffers(args: MatmulKernelArgs): GPUBuffer[] {
    return args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
  }

  workgroups(args: MatmulKernelArgs): [number, number, number] {
    return [Math.ceil(args.N / TILE_N), Math.ceil(args.M / TILE_M), 1];
  }

  /** FLOPs of one call (2·M·N·K), for FLOP/s reporting. */
  static flops(M: number, N: number, K: number): number {
    return 2 * M * N * K;
  }
}

// ---- backward ----

// The backward's matmul: out[M,N] (=|+=) alpha · op(A)·op(B) over explicit strides and offsets, so one
// kernel serves every layout the backward needs without copies:
//   dX  = dY·W        (NN; W [out, in] in the weights' dtype)      dW  = dYᵀ·X   (TN)
//   LoRA: h = X·Aᵀ (NT), dB += s·dYᵀ·h (TN), dh = s·dY·B (NN), dA += dhᵀ·X (TN), dX += dh·A (NN)
//   LM head: dhidden += dlogits[:, chunk]·E_chunk (NN over a column window of the logits)
// A(m,k) = transA ? a[aOff + k·lda + m] : a[aOff + m·lda + k];  B(k,n) = transB ? b[bOff + n·ldb + k]
// : b[bOff + k·ldb + n]. Same tiling as the forward above (64×64 tiles, K-steps of 16, 128 invocations
// with 8×4 outputs each); B may be 16-bit (packed, unpacked to f32). Reductions run in a fixed order.

function gradShader(transA: boolean, transB: boolean, bdtype: WeightDType): string {
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

${TILES}

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
    ${TILE_FMA}
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
      p = computePipeline(this.device, gradShader(a.transA, a.transB, this.bdtype), name);
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

const SPLIT_REDUCE_WG = 64;
const SPLIT_REDUCE_SHADER = /* wgsl */ `
struct Params { M: u32, N: u32, splits: u32, ldo: u32, oOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${SPLIT_REDUCE_WG})
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
    this.pipeline = computePipeline(device, SPLIT_REDUCE_SHADER, 'matmul split-K reduce');
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
    return [Math.ceil(a.N / SPLIT_REDUCE_WG), a.M, 1];
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
