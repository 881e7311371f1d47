// The tiled matmul template: out[M,N] (=|+=) alpha · op(A)·op(B) (+ bias), one WGSL template for the
// forward's linear layers and every backward product:
//   forward      out = x·Wᵀ (+ bias)                 NT, W [out, in] in the weights' dtype (HF Linear)
//                out = x·W                           NN (tests; LoRA's ·Bᵀ is NT over an f32 B)
//   backward     dX = dY·W (NN)   dW += dYᵀ·X (TN)   LoRA: h = X·Aᵀ (NT), dB += s·dYᵀ·h (TN),
//                dh = s·dY·B (NN), dA += dhᵀ·X (TN), dX += dh·A (NN); LM head dhidden += dlogits·E (NN)
// A(m,k) = transA ? a[aOff + k·lda + m] : a[aOff + m·lda + k];  B(k,n) = transB ? b[bOff + n·ldb + k]
// : b[bOff + k·ldb + n]; out[oOff + m·ldo + n] (a column window of a wider output: fused QKV / gate-up,
// the LM head's vocabulary chunks). A is f32; B may be f32 or 16-bit (f16 / bf16 packed two per u32,
// weights-wgsl.ts), staged through workgroup memory as f32 (or f16, below).
//
// Each workgroup computes a TM×TN output tile; per K-step of TK it stages op(A) as [k][m] and op(B) as
// [k][n] tiles (padded rows), each loaded so that consecutive invocations read consecutive addresses of
// the operand's contiguous dimension (the NT weight tile is transposed on load; a packed 16-bit word
// gives both of its halves in one load). Invocation (x, y) of the WX×WY workgroup owns the outputs
// (y + i·WY, x + j·WX): strided, so the invocations of a row read consecutive tile elements and write
// consecutive outputs. On software adapters (MatmulTile.staged false) nothing is staged: each
// invocation reads its rows and columns straight from the buffers, its output block unrolled with
// constant indices (2x faster on lavapipe). Tile sizes come from MATMUL_TILES by adapter kind (never
// by batch size).
// Split-K: workgroup z sums k in [z·kPerSplit, (z+1)·kPerSplit) into a partial buffer [splits, M, N];
// MatmulSplitReduceKernel adds the slices in a fixed order and applies the epilogue. Every output's sum
// runs in a fixed order that depends only on K and the split count, never on M: a row's result does
// not depend on the other rows of the batch (batch invariance).
//
// Arithmetic (weights-wgsl.ts weightArithmetic): f32, or for f16 weights on a `shader-f16` device (the
// forward only), f16: both tiles are staged as f16 (a rounded to f16 once, the weights read natively),
// the products and sums of F16_FOLD consecutive k run in f16, and each such partial sum is folded into
// the f32 accumulator. Error against f32 arithmetic on the same f16 weights, per output: a's rounding
// (2^-11 relative per element), each product's (2^-11) and F16_FOLD − 1 f16 additions — at most
// (F16_FOLD + 1)·2^-11·Σ_k |a_k·w_k|, typically ~2^-11·√(Σ_k (a_k·w_k)²); tests/gpu/forward-kernels.test.ts
// measures it. Activations must stay within f16's range (|a| < 65,504): matmul inputs are normed or
// gated activations, the residual stream itself stays f32.
//
// Reference: matmul (src/engine/reference/matmul.ts) and linear (src/engine/reference/ops.ts);
//   MatmulGradKernel: op(A)·op(B) computed inline in its test, and linearBackward
//   (src/engine/reference/ops-backward.ts) in the whole model.
// Tests: tests/gpu/matmul.test.ts (every layout, weight dtype, tile table, split-K, epilogue, at shapes
//   that are not tile multiples), tests/gpu/forward-kernels.test.ts (linear, f16 arithmetic),
//   tests/gpu/backward-kernels.test.ts (strided and split-K matmul); in the whole model
//   tests/gpu/train-grads.test.ts, tests/gpu/qwen2-forward.test.ts.

import { computePipeline, type Dispatcher, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type AdapterKind, type ShaderFeatures } from '../gpu.ts';
import { enables, weightArithmetic, type Arithmetic, type WeightDType } from './weights-wgsl.ts';

/** A workgroup's output tile TM×TN, its K-step TK and its WX×WY invocations (TM/WY × TN/WX outputs each). */
export interface MatmulTile {
  TM: number;
  TN: number;
  TK: number;
  WX: number;
  WY: number;
  /**
   * Stage the operand tiles through workgroup memory (GPUs). false: every invocation reads its A rows
   * and B columns straight from the storage buffers, one k at a time, its RM×RN block unrolled with
   * constant indices (software adapters, where workgroup memory is ordinary memory behind barriers
   * and dynamically indexed per-invocation arrays become memory too). TK then only rounds split-K
   * slices.
   */
  staged: boolean;
}

/**
 * Tile per adapter kind. Measured with this template on lavapipe (Mesa 25, 2 shared cores, load 0.4–1.3:
 * ranges are repeat runs), GFLOP/s at 512³ NT / 1008×768×128 NT / 1008×128×768 NN / 768×128×1008 TN:
 * 64×64 over 16×8 invocations (4×8 each, the previous kernel's geometry) 2.8 / 2.5 / 2.1–2.9 / 3.0;
 * 64×64 over 8×4 (8×16 each) 3.5–4.4 / 3.6–4.3 / 4.3–4.6 / 3.3–4.0; 8×8 invocations 3.7 / 2.8 / 3.0 / 3.0;
 * 128×64 over 8×4 1.7; 32×32 over 8×8 2.2 / 1.7 / 1.7. Not staged (direct loads, unrolled block):
 * 64×64 over 8×4 5.6–7.0 / 6.9 / 7.3–7.8 / 8.4–9.9 (256×8192×64 NT, the LM head: 5.6); over 8×2 7.2 /
 * 4.9 / 7.5 / 6.7; 32×64 over 8×4 4.8 / 4.7 / 5.2 / 3.4; 64×64 over 8×8 4.2 / 6.2 / 5.1 / 3.8. A CPU
 * lane has no register file to fill, so more outputs per invocation amortise the loads. 'gpu' keeps 128 invocations (compatibility
 * mode's limit) of 4×8 outputs: not measured on a real GPU (none was used when this was tuned).
 * `tabzero bench --tune` times these candidates (bench/matmul-tune.ts) at the real training shapes
 * against a register-only FMA probe: run it on a new adapter kind and commit its best here.
 */
export const MATMUL_TILES: Readonly<Record<AdapterKind, MatmulTile>> = {
  cpu: { TM: 64, TN: 64, TK: 16, WX: 8, WY: 4, staged: false },
  gpu: { TM: 64, TN: 64, TK: 16, WX: 16, WY: 8, staged: true },
};

/** Workgroup-memory row padding of the staged tiles (elements). */
const PAD = 4;

/**
 * k-steps summed in f16 before folding into the f32 accumulator (f16 arithmetic; divides TK).
 * Measured on lavapipe (16×64 outputs, a ≈ N(0, 1), w ≈ 0.025·N(0, 1) rounded to f16; largest error
 * over the output rms): fold 1 (each f16 product added in f32) 1.0e-3 at K = 896 and 8.5e-4 at
 * K = 4,864; fold 4 1.5e-3 / 1.7e-3; fold 16 2.3e-3 / 2.8e-3. Rounding a to f16 dominates; 4 keeps the
 * error within 1.7× of fold 1's.
 */
export const F16_FOLD = 4;

export interface MatmulShaderSpec {
  transA: boolean;
  transB: boolean;
  /** Element type of B: f32, or 16-bit (read natively as f16 with f16 arithmetic, else packed u32). */
  bdtype: WeightDType;
  arithmetic: Arithmetic;
  bias: boolean;
  tile: MatmulTile;
}

/** The template (see the header). */
export function matmulShader(s: MatmulShaderSpec): string {
  const { TM, TN, TK, WX, WY } = s.tile;
  if (TM % WY || TN % WX || TK % 2 || (s.arithmetic === 'f16' && TK % F16_FOLD))
    throw new Error(`matmul tile ${JSON.stringify(s.tile)} does not divide evenly`);
  const RM = TM / WY;
  const RN = TN / WX;
  const NT = WX * WY;
  const LA = TM + PAD;
  const LB = TN + PAD;
  const f16 = s.arithmetic === 'f16';
  const T = f16 ? 'f16' : 'f32';
  const zero = f16 ? '0.0h' : '0.0';
  const packed = s.bdtype !== 'f32' && !f16;
  const bElem = s.bdtype === 'f32' ? 'f32' : packed ? 'u32' : 'f16';
  const aIdx = s.transA ? 'p.aOff + gk * p.lda + gm' : 'p.aOff + gm * p.lda + gk';
  const bIdx = s.transB ? 'p.bOff + gn * p.ldb + gk' : 'p.bOff + gk * p.ldb + gn';
  const row = (i: string) => `lid.y + ${i} * ${WY}u`;
  const col = (j: string) => `lid.x + ${j} * ${WX}u`;
  // A packed word holds elements 2w (low half) and 2w + 1 (high half).
  const unpack =
    s.bdtype === 'bf16'
      ? 'fn unpackW(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }'
      : 'fn unpackW(w: u32) -> vec2<f32> { return unpack2x16float(w); }';
  // B tile: consecutive invocations walk B's contiguous dimension (k for NT, n for NN). Packed 16-bit B
  // is loaded as element pairs along it: one word when the pair is word-aligned, else two.
  const bCoord = (e: string) =>
    s.transB
      ? `let n = ${e} / ${TK}u; let kk = ${e} % ${TK}u;`
      : `let kk = ${e} / ${TN}u; let n = ${e} % ${TN}u;`;
  const loadB = packed
    ? /* wgsl */ `for (var e2 = li; e2 < ${(TK * TN) / 2}u; e2 += ${NT}u) {
      let e = e2 * 2u;
      ${bCoord('e')}
      let gn = tileN + n; let gk = k0 + kk;
      var v = vec2<f32>(0.0, 0.0);
      ${s.transB ? 'let inRow = gn < p.N; let has0 = gk < kEnd; let has1 = gk + 1u < kEnd;' : 'let inRow = gk < kEnd; let has0 = gn < p.N; let has1 = gn + 1u < p.N;'}
      if (inRow && has0) {
        let g = ${bIdx};
        if ((g & 1u) == 0u) {
          v = unpackW(b[g >> 1u]);
          if (!has1) { v.y = 0.0; }
        } else {
          v.x = unpackW(b[g >> 1u]).y;
          if (has1) { v.y = unpackW(b[(g + 1u) >> 1u]).x; }
        }
      }
      Bs[kk * ${LB}u + n] = v.x;
      Bs[${s.transB ? '(kk + 1u)' : 'kk'} * ${LB}u + ${s.transB ? 'n' : 'n + 1u'}] = v.y;
    }`
    : /* wgsl */ `for (var e = li; e < ${TK * TN}u; e += ${NT}u) {
      ${bCoord('e')}
      let gn = tileN + n; let gk = k0 + kk;
      var v = ${zero}; if (gn < p.N && gk < kEnd) { v = ${T}(b[${bIdx}]); }
      Bs[kk * ${LB}u + n] = v;
    }`;
  const fmaLoop = f16
    ? /* wgsl */ `for (var k1 = 0u; k1 < ${TK}u; k1 += ${F16_FOLD}u) {
      // Explicitly zeroed: lavapipe (Mesa 25) did not re-zero an uninitialised var declared in a loop.
      var part = array<array<f16, ${RN}>, ${RM}>();
      for (var kk = k1; kk < k1 + ${F16_FOLD}u; kk++) {
        var bv = array<f16, ${RN}>();
        for (var j = 0u; j < ${RN}u; j++) { bv[j] = Bs[kk * ${LB}u + ${col('j')}]; }
        for (var i = 0u; i < ${RM}u; i++) {
          let av = As[kk * ${LA}u + ${row('i')}];
          for (var j = 0u; j < ${RN}u; j++) { part[i][j] = fma(av, bv[j], part[i][j]); }
        }
      }
      for (var i = 0u; i < ${RM}u; i++) {
        for (var j = 0u; j < ${RN}u; j++) { acc[i][j] += f32(part[i][j]); }
      }
    }`
    : /* wgsl */ `for (var kk = 0u; kk < ${TK}u; kk++) {
      var bv = array<f32, ${RN}>();
      for (var j = 0u; j < ${RN}u; j++) { bv[j] = Bs[kk * ${LB}u + ${col('j')}]; }
      for (var i = 0u; i < ${RM}u; i++) {
        let av = As[kk * ${LA}u + ${row('i')}];
        for (var j = 0u; j < ${RN}u; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
      }
    }`;
  // Direct (unstaged) variant: clamped row/column indices keep every load in bounds without branches
  // (the clamped rows' and columns' outputs are never written).
  const loadElem = (idx: string) =>
    s.bdtype === 'f32' || !packed
      ? `${T}(b[${idx}])`
      : s.bdtype === 'bf16'
        ? `bf16At(${idx})`
        : `unpack2x16float(b[(${idx}) >> 1u])[(${idx}) & 1u]`;
  const directIdx = {
    a: (m: string, k: string) => (s.transA ? `p.aOff + ${k} * p.lda + ${m}` : `p.aOff + ${m} * p.lda + ${k}`),
    b: (n: string, k: string) => (s.transB ? `p.bOff + ${n} * p.ldb + ${k}` : `p.bOff + ${k} * p.ldb + ${n}`),
  };
  const directStep = (k: string, target: string) => {
    const lines: string[] = [];
    for (let j = 0; j < RN; j++) lines.push(`let b${j} = ${loadElem(directIdx.b(`n${j}`, k))};`);
    for (let i = 0; i < RM; i++) {
      lines.push(`{ let av = ${T}(a[${directIdx.a(`m${i}`, k)}]);`);
      for (let j = 0; j < RN; j++)
        lines.push(`  ${target}[${i}][${j}] = fma(av, b${j}, ${target}[${i}][${j}]);`);
      lines.push('}');
    }
    return lines.join('\n      ');
  };
  const clamp: string[] = [];
  for (let i = 0; i < RM; i++) clamp.push(`let m${i} = min(tileM + ${row(`${i}u`)}, p.M - 1u);`);
  for (let j = 0; j < RN; j++) clamp.push(`let n${j} = min(tileN + ${col(`${j}u`)}, p.N - 1u);`);
  const directLoop = f16
    ? /* wgsl */ `for (var k1 = kBegin; k1 < kEnd; k1 += ${F16_FOLD}u) {
    // Explicitly zeroed: lavapipe (Mesa 25) did not re-zero an uninitialised var declared in a loop.
    var part = array<array<f16, ${RN}>, ${RM}>();
    for (var k = k1; k < min(k1 + ${F16_FOLD}u, kEnd); k++) {
      ${directStep('k', 'part')}
    }
    for (var i = 0u; i < ${RM}u; i++) {
      for (var j = 0u; j < ${RN}u; j++) { acc[i][j] += f32(part[i][j]); }
    }
  }`
    : /* wgsl */ `for (var k = kBegin; k < kEnd; k++) {
      ${directStep('k', 'acc')}
  }`;
  const mainLoop = s.tile.staged
    ? /* wgsl */ `for (var k0 = kBegin; k0 < kEnd; k0 += ${TK}u) {
    for (var e = li; e < ${TM * TK}u; e += ${NT}u) {
      ${s.transA ? `let kk = e / ${TM}u; let m = e % ${TM}u;` : `let m = e / ${TK}u; let kk = e % ${TK}u;`}
      let gm = tileM + m; let gk = k0 + kk;
      var v = ${zero}; if (gm < p.M && gk < kEnd) { v = ${T}(a[${aIdx}]); }
      As[kk * ${LA}u + m] = v;
    }
    ${loadB}
    workgroupBarrier();
    ${fmaLoop}
    workgroupBarrier();
  }`
    : `${clamp.join('\n  ')}
  ${directLoop}`;
  const bf16At =
    'fn bf16At(i: u32) -> f32 { let w = b[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }';
  return /* wgsl */ `${enables(f16)}
struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldo: u32, aOff: u32, bOff: u32,
                oOff: u32, accumulate: u32, alpha: f32, kPerSplit: u32, splitStride: u32,
                pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<${bElem}>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${s.bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
${packed && s.tile.staged ? unpack : ''}
${packed && !s.tile.staged && s.bdtype === 'bf16' ? bf16At : ''}
${
  s.tile.staged
    ? `var<workgroup> As: array<${T}, ${TK * LA}>; // [k][m]
var<workgroup> Bs: array<${T}, ${TK * LB}>; // [k][n]`
    : ''
}

@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileM = wg.y * ${TM}u;
  let tileN = wg.x * ${TN}u;
  var acc = array<array<f32, ${RN}>, ${RM}>();
  let kBegin = wg.z * p.kPerSplit;
  let kEnd = min(p.K, kBegin + p.kPerSplit);
  ${mainLoop}
  for (var i = 0u; i < ${RM}u; i++) {
    let gm = tileM + ${row('i')};
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < ${RN}u; j++) {
      let gn = tileN + ${col('j')};
      if (gn >= p.N) { continue; }
      if (p.splitStride != 0u) {
        out[wg.z * p.splitStride + gm * p.N + gn] = acc[i][j];
      } else {
        let o = p.oOff + gm * p.ldo + gn;
        let v = p.alpha * acc[i][j]${s.bias ? ' + bias[gn]' : ''};
        if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
      }
    }
  }
}`;
}

/** The tile for a device's shader paths (its adapter kind; 'gpu' when unknown). */
export function matmulTile(features: ShaderFeatures): MatmulTile {
  return MATMUL_TILES[features.adapterKind ?? 'gpu'];
}

/** The uniform block of the template (64 bytes). */
function templateParams(a: MatmulGradArgs, TK: number, bias = false): ArrayBuffer {
  const splits = a.splits ?? 1;
  if (splits > 1 && bias) throw new Error('split-K matmul with a bias is not supported');
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
    splits > 1 ? Math.ceil(a.K / splits / TK) * TK : Math.max(1, a.K),
    splits > 1 ? a.M * a.N : 0,
  ]);
  new Float32Array(buf)[10] = a.alpha ?? 1;
  return buf;
}

/** Pipelines of the template per (layout, bias), compiled on first use (software adapters take seconds each). */
class TemplatePipelines {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  constructor(
    private readonly device: GPUDevice,
    readonly bdtype: WeightDType,
    readonly arithmetic: Arithmetic,
    readonly tile: MatmulTile,
  ) {}
  get(transA: boolean, transB: boolean, bias: boolean): GPUComputePipeline {
    const key = `${transA}${transB}${bias}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const t = this.tile;
      const name =
        `matmul ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${bias ? '+bias' : ''} ${this.bdtype} ` +
        `(${this.arithmetic} math, ${t.TM}×${t.TN}×${t.TK} over ${t.WX}×${t.WY})`;
      const { bdtype, arithmetic, tile } = this;
      p = computePipeline(
        this.device,
        matmulShader({ transA, transB, bdtype, arithmetic, bias, tile }),
        name,
      );
      this.pipelines.set(key, p);
    }
    return p;
  }
  workgroups(M: number, N: number, splits = 1): [number, number, number] {
    return [Math.ceil(N / this.tile.TN), Math.ceil(M / this.tile.TM), splits];
  }
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

/**
 * The forward's matmul: out = a·b (+ bias), b stored [K,N] (NN) or [N,K] (NT: HF Linear weights), with
 * the epilogue of MatmulEpilogue. The template above with A dense [M, K].
 */
export class MatmulKernel implements Kernel<MatmulKernelArgs> {
  private readonly t: TemplatePipelines;
  /** f16 for f16 weights on a `shader-f16` device (see the header), else f32. */
  readonly arithmetic: Arithmetic;

  constructor(
    device: GPUDevice,
    readonly transposeB: boolean,
    /** Element type of `b` (the weights): f32, or f16 / bf16 two per 32-bit word. */
    readonly weightDType: WeightDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
    tile: MatmulTile = matmulTile(features),
  ) {
    this.arithmetic = weightArithmetic(weightDType, features);
    this.t = new TemplatePipelines(device, weightDType, this.arithmetic, tile);
  }

  private grad(a: MatmulKernelArgs): MatmulGradArgs {
    return {
      ...a,
      transA: false,
      transB: this.transposeB,
      ldo: a.ldo ?? a.N,
      oOff: a.colOff ?? 0,
    };
  }

  // The Kernel interface (src/engine/dispatch.ts): the Dispatcher caches params + bind groups per site.
  pipelineFor(args: MatmulKernelArgs): GPUComputePipeline {
    return this.t.get(false, this.transposeB, Boolean(args.bias));
  }

  params(args: MatmulKernelArgs): ArrayBuffer {
    return templateParams(this.grad(args), this.t.tile.TK, Boolean(args.bias));
  }

  buffers(args: MatmulKernelArgs): GPUBuffer[] {
    return args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
  }

  workgroups(args: MatmulKernelArgs): [number, number, number] {
    return this.t.workgroups(args.M, args.N);
  }

  /** FLOPs of one call (2·M·N·K), for FLOP/s reporting. */
  static flops(M: number, N: number, K: number): number {
    return 2 * M * N * K;
  }
}

// ---- backward ----

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

/**
 * The backward's matmul (any layout, explicit strides and offsets, split-K): the template above with B
 * in `bdtype` (the weights' dtype, or f32 for activations), f32 arithmetic.
 */
export class MatmulGradKernel implements Kernel<MatmulGradArgs> {
  private readonly t: TemplatePipelines;

  constructor(
    device: GPUDevice,
    readonly bdtype: WeightDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
    tile: MatmulTile = matmulTile(features),
  ) {
    this.t = new TemplatePipelines(device, bdtype, 'f32', tile);
  }

  pipelineFor(a: MatmulGradArgs): GPUComputePipeline {
    return this.t.get(a.transA, a.transB, false);
  }

  params(a: MatmulGradArgs): ArrayBuffer {
    return templateParams(a, this.t.tile.TK);
  }

  buffers(a: MatmulGradArgs): GPUBuffer[] {
    return [a.a, a.b, a.out];
  }

  workgroups(a: MatmulGradArgs): [number, number, number] {
    return this.t.workgroups(a.M, a.N, a.splits ?? 1);
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
  tile: MatmulTile = MATMUL_TILES.gpu,
): number {
  const tiles = Math.ceil(M / tile.TM) * Math.ceil(N / tile.TN);
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
