// Skinny matmul for decode (a few token rows × a weight matrix): out[M, N] = a[M, K] · Wᵀ (+ bias),
// W [N, K] in f32 or packed f16/bf16. Decode is bandwidth-bound, so each workgroup streams 4 weight rows
// once and applies them to MB token rows; its 64 invocations split K (two elements per word-sized step)
// and a fixed tree adds their partial sums. Every (row, column) result runs the same sequence of
// operations whatever M or MB is, so batched and one-at-a-time decoding agree bit for bit.
// Same epilogue and uniform block as matmul.ts (column window, accumulate, alpha). K must be even.
//
// Narrow weights (K ≤ NARROW_K, e.g. the LM head of a tiny model: 151,936 × 64) take a second shader:
// each invocation owns one output column and runs the whole K loop itself. Splitting a short K over 64
// invocations leaves most of them idle and pays a 6-level barrier tree per 4 columns, which on CPU
// adapters (lavapipe) made the tiny model's LM head ~15× slower. The choice depends on K only, so
// batch invariance holds on both paths.
//
// Arithmetic (weights-wgsl.ts weightArithmetic): f32, or for f16 weights on a `shader-f16` device, f16:
// weights are read as native vec2<f16> (the same words), the activation pair is rounded to f16, and
// each pair's dot product (two f16 products, one f16 add) is folded into the f32 accumulator. Error
// against f32 arithmetic on the same weights, per output: at most 3·2^-11·Σ_k |a_k·w_k| (the rounding of
// a, of each product, of the pair's sum); typically ~2^-11·√(Σ_k (a_k·w_k)²).
//
// The partial sums of the 64 invocations meet in a fixed tree in workgroup memory, or where `subgroups`
// exists, in subgroupAdd within each subgroup and then one slot per subgroup added in subgroup order
// (reduce-wgsl.ts: any subgroup size in [4, 128]). Either way the order is fixed per output.
//
// LoRA epilogue (decode with an adapter, no extra dispatch): for a projection whose output columns are
// sub-projections side by side (q|k|v, gate|up, or one), the kernel also binds Acat [S·r, K] (their A
// stacked) and Bcat [N, r] (their B stacked along the output rows, so row n is column n's), and adds
// scale · Σ_j Bcat[n, j] · t[m, seg(n)·r + j] with t[m, :] = a[m, :] · Acatᵀ. Each workgroup computes
// the t it needs (its rows, the segments its columns touch) into workgroup memory itself: redundant
// across workgroups, r·K multiply-adds per row and segment against the workgroup's own NB_LORA·K (wide
// shader, 16 columns: the LoRA variant takes 4× the plain shader's columns to divide this) or 64·K
// (narrow). A is small and stays in cache, and the epilogue saves the two dispatches per adapted
// projection of separate x·Aᵀ and ·Bᵀ matmuls — a trade that pays where dispatches cost more than the
// arithmetic: small batches on GPUs. At large batches the arithmetic grows with M·N/NB_LORA; the engine
// can take the separate path instead (qwen2-forward.ts LoraDecode). Every t element is summed by a team
// of invocations (its size set by the rank) over fixed strides of K, then the team's partial sums are
// added in a fixed order, whatever M, the row block or the workgroup: batched and one-at-a-time decoding
// still agree bit for bit.
//
// With `lora.t` given (loraDecode 'separate', the default), t is not recomputed: the caller has run one
// split-K GEMV over Acat (this kernel with f32 weights: t[M, S·r] = a · Acatᵀ) just before, and the
// epilogue reads t[m, seg(n)·r + j] from that buffer (A is not bound; the plain shader's 4 columns per
// workgroup). One extra dispatch per site, no redundant arithmetic, and still batch-invariant: t's sums
// are the GEMV's, whose order does not depend on M.
//
// Reference: linear (src/engine/reference/ops.ts); the LoRA epilogue against linear plus scale·(x·Aᵀ)·Bᵀ.
// Tests: tests/gpu/forward-kernels.test.ts (gemv), tests/gpu/gemv-lora.test.ts (LoRA epilogue, t computed
//   in the workgroup or precomputed); in decoding
//   tests/gpu/generate.test.ts and tests/gpu/generate-lora.test.ts (batched = one at a time).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { matmulParamsData, type MatmulKernelArgs } from './matmul.ts';
import { laneDecls, laneInit, laneParams, MIN_SUBGROUP_SIZE, subgroupCount } from './reduce-wgsl.ts';
import {
  enables,
  WEIGHT_DTYPE_BYTES,
  weightArithmetic,
  type Arithmetic,
  type WeightDType,
} from './weights-wgsl.ts';

const WG = 64;
const NB = 4;
/**
 * Columns per workgroup of the wide shader's LoRA variant: every workgroup computes t = x·Acatᵀ for its
 * rows, so fewer, wider workgroups divide that redundant arithmetic (a column's sum order does not
 * depend on how many columns share the workgroup).
 */
const NB_LORA = 16;
/** Row-block sizes with a pipeline each; the smallest that covers M is used (M > 8 runs in blocks of 8). */
const ROW_BLOCKS = [1, 2, 4, 8] as const;
/** Largest K served by the column-per-invocation shader. */
export const NARROW_K = 256;

/** The wide shader's reduction slots per output: one per invocation (tree), or per subgroup at most. */
function reductionSlots(subgroups: boolean): number {
  return subgroups ? WG / MIN_SUBGROUP_SIZE : WG;
}
/**
 * Invocations that share one LoRA t element (each sums every team-th pair of K, then they are added in
 * order): enough to keep the workgroup busy at low rank. Depends on the rank only, never on M.
 */
function loraTeam(rank: number): number {
  return Math.max(1, Math.min(16, Math.floor(WG / rank)));
}

/** A LoRA epilogue: out[m, n] += scale · Σ_j B[n, j] · t[m, seg(n)·rank + j], t[m, :] = a[m, :] · Aᵀ. */
export interface GemvLora {
  /** f32 [S·rank, K]: the sub-projections' A stacked (S = segmentStarts.length + 1). */
  A: GPUBuffer;
  /** f32 [N, rank]: their B stacked along the output rows (zero rows for sub-projections not adapted). */
  B: GPUBuffer;
  rank: number;
  /** alpha / rank. */
  scale: number;
  /** First output column of each sub-projection after the first (at most 2: q|k|v). */
  segmentStarts: readonly number[];
  /**
   * f32 [M, S·rank]: t = a·Aᵀ already computed (loraDecode 'split': one split-K GEMV over A, run just
   * before). When given, the epilogue reads t from it and A is not bound; else every workgroup computes
   * the t it needs itself (loraDecode 'fused').
   */
  t?: GPUBuffer;
}

export interface GemvArgs extends MatmulKernelArgs {
  lora?: GemvLora;
  /** `b` is an adapter's matrix (LoRA's stacked A), not a model weight: not counted as weight bytes. */
  adapterWeights?: boolean;
}

/** Shader shape of the LoRA epilogue: segments S and rank r; `pre`: t is read from a buffer. */
interface LoraShape {
  S: number;
  r: number;
  pre: boolean;
}

function loadPair(dtype: WeightDType, arith: Arithmetic): string {
  // Elements i, i+1 of W (i even).
  if (arith === 'f16') return 'fn loadW2(i: u32) -> vec2<f16> { return b[i >> 1u]; }';
  if (dtype === 'f32') return 'fn loadW2(i: u32) -> vec2<f32> { return vec2<f32>(b[i], b[i + 1u]); }';
  if (dtype === 'f16') return 'fn loadW2(i: u32) -> vec2<f32> { return unpack2x16float(b[i >> 1u]); }';
  return `fn loadW2(i: u32) -> vec2<f32> {
  let w = b[i >> 1u];
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}`;
}

/**
 * The uniform block (matmul.ts's layout, plus the LoRA fields), the bindings and the weight loader both
 * shaders share.
 */
function bindings(
  dtype: WeightDType,
  arith: Arithmetic,
  withBias: boolean,
  lora: LoraShape | null,
  subgroups = false,
): string {
  const elem = arith === 'f16' ? 'vec2<f16>' : dtype === 'f32' ? 'f32' : 'u32';
  return /* wgsl */ `${enables(arith === 'f16', subgroups)}
struct Params { M: u32, N: u32, K: u32, ldo: u32, colOff: u32, accumulate: u32, alpha: f32, pad: u32,
  ${lora ? 'seg1: u32, seg2: u32, loraScale: f32, pad2: u32' : ''} }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<${elem}>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
${loadPair(dtype, arith)}
`;
}

/**
 * The LoRA bindings (after bias), t in workgroup memory and the two functions the shaders call: loraT
 * (every invocation, in uniform control flow, before any early return) and loraDot (the epilogue).
 * `cols` is the workgroup's output columns, `MB` its rows.
 */
function loraWgsl(lora: LoraShape, MB: number, cols: number, withBias: boolean): string {
  const { S, r } = lora;
  const at = withBias ? 5 : 4;
  if (lora.pre)
    return /* wgsl */ `
@group(0) @binding(${at}) var<storage, read> lt: array<f32>;
@group(0) @binding(${at + 1}) var<storage, read> lb: array<f32>;
const LS = ${S}u;
const LR = ${r}u;

fn loraSeg(n: u32) -> u32 { return select(0u, 1u, n >= p.seg1) + select(0u, 1u, n >= p.seg2); }

fn loraT(li: u32, m0: u32, n0: u32) {}

// t[m, s·LR + j] at lt[(m·LS + s)·LR + j]; i is the row within the block starting at m0.
fn loraDot(i: u32, n: u32, m0: u32) -> f32 {
  let o = ((m0 + i) * LS + loraSeg(n)) * LR;
  var acc = 0.0;
  for (var j = 0u; j < LR; j++) { acc = fma(lb[n * LR + j], lt[o + j], acc); }
  return acc;
}
`;
  return /* wgsl */ `
@group(0) @binding(${at}) var<storage, read> la: array<f32>;
@group(0) @binding(${at + 1}) var<storage, read> lb: array<f32>;
const LS = ${S}u;
const LR = ${r}u;
const LG = ${loraTeam(r)}u;
// t[i, s·LR + j] at lt[((i·LS + s)·LR + j)·LG] (the other LG − 1 slots hold the team's partial sums).
var<workgroup> lt: array<f32, ${MB * S * r * loraTeam(r)}>;

fn loraSeg(n: u32) -> u32 { return select(0u, 1u, n >= p.seg1) + select(0u, 1u, n >= p.seg2); }

fn loraT(li: u32, m0: u32, n0: u32) {
  let sLo = loraSeg(n0);
  let nSeg = loraSeg(min(n0 + ${cols - 1}u, p.N - 1u)) - sLo + 1u;
  let elems = ${MB}u * nSeg * LR;
  // One work item per (segment, j, team member): it loads each A pair once for all MB rows.
  for (var w = li; w < nSeg * LR * LG; w += ${WG}u) {
    let g = w % LG;
    let j = (w / LG) % LR;
    let s = sLo + w / (LG * LR);
    let aa = (s * LR + j) * p.K;
    // Zeroed explicitly: a declaration inside a loop body was seen to keep the previous iteration's
    // values on lavapipe.
    var acc: array<f32, ${MB}>;
    for (var i = 0u; i < ${MB}u; i++) { acc[i] = 0.0; }
    for (var k = 2u * g; k < p.K; k += 2u * LG) {
      let y = vec2<f32>(la[aa + k], la[aa + k + 1u]);
      for (var i = 0u; i < ${MB}u; i++) {
        let xa = min(m0 + i, p.M - 1u) * p.K;
        acc[i] = fma(a[xa + k + 1u], y.y, fma(a[xa + k], y.x, acc[i]));
      }
    }
    for (var i = 0u; i < ${MB}u; i++) { lt[((i * LS + s) * LR + j) * LG + g] = acc[i]; }
  }
  workgroupBarrier();
  for (var e = li; e < elems; e += ${WG}u) {
    let j = e % LR;
    let s = sLo + (e / LR) % nSeg;
    let i = e / (LR * nSeg);
    let o = ((i * LS + s) * LR + j) * LG;
    var acc = lt[o];
    for (var g = 1u; g < LG; g++) { acc = acc + lt[o + g]; }
    lt[o] = acc;
  }
  workgroupBarrier();
}

fn loraDot(i: u32, n: u32, m0: u32) -> f32 {
  let o = (i * LS + loraSeg(n)) * LR;
  var acc = 0.0;
  for (var j = 0u; j < LR; j++) { acc = fma(lb[n * LR + j], lt[(o + j) * LG], acc); }
  return acc;
}
`;
}

/** The activation pair a[i], a[i + 1] in the kernel's arithmetic (rounded once to f16 for f16). */
function loadX2(arith: Arithmetic, i: string): string {
  const x = `vec2<f32>(a[${i}], a[${i} + 1u])`;
  return arith === 'f16' ? `vec2<f16>(${x})` : x;
}

/** acc (f32) += x·w for an activation pair x and a weight pair w, both in the kernel's arithmetic. */
function pairFma(arith: Arithmetic, acc: string, x: string, w: string): string {
  return arith === 'f16'
    ? `${acc} = ${acc} + f32(dot(${x}, ${w}));`
    : `${acc} = fma(${x}.y, ${w}.y, fma(${x}.x, ${w}.x, ${acc}));`;
}

/**
 * Sums the invocations' acc[MB][nb] so that red[o] (o = i·nb + j < MB·nb) holds output o's total for
 * invocations o, o + WG, ..., which write them (the epilogue below).
 */
function reduceAcc(MB: number, nb: number, subgroups: boolean): string {
  const O = MB * nb;
  if (subgroups) {
    return /* wgsl */ `for (var i = 0u; i < ${MB}u; i++) {
    for (var j = 0u; j < ${nb}u; j++) {
      let s = subgroupAdd(acc[i][j]);
      if (sgLane == 0u) { red[(li / sgSize) * ${O}u + i * ${nb}u + j] = s; }
    }
  }
  workgroupBarrier();
  for (var o = li; o < ${O}u; o += ${WG}u) {
    var t = red[o];
    for (var g = 1u; g < ${subgroupCount(WG)}; g++) { t = t + red[g * ${O}u + o]; }
    red[o] = t;
  }`;
  }
  return /* wgsl */ `for (var i = 0u; i < ${MB}u; i++) {
    for (var j = 0u; j < ${nb}u; j++) { red[li * ${O}u + i * ${nb}u + j] = acc[i][j]; }
  }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var o = 0u; o < ${O}u; o++) {
        red[li * ${O}u + o] = red[li * ${O}u + o] + red[(li + s) * ${O}u + o];
      }
    }
    workgroupBarrier();
  }`;
}

function shader(
  dtype: WeightDType,
  arith: Arithmetic,
  MB: number,
  withBias: boolean,
  subgroups: boolean,
  lora: LoraShape | null,
): string {
  const nb = lora && !lora.pre ? NB_LORA : NB;
  return /* wgsl */ `
${bindings(dtype, arith, withBias, lora, subgroups)}
${laneDecls(subgroups)}
${lora ? loraWgsl(lora, MB, nb, withBias) : ''}

var<workgroup> red: array<f32, ${reductionSlots(subgroups) * MB * nb}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let n0 = wg.x * ${nb}u;
  let m0 = wg.y * ${MB}u;
  ${lora ? 'loraT(li, m0, n0);' : ''}
  var acc: array<array<f32, ${nb}>, ${MB}>;
  for (var k = li * 2u; k < p.K; k += ${WG * 2}u) {
    var w: array<vec2<${arith}>, ${nb}>;
    for (var j = 0u; j < ${nb}u; j++) {
      let n = min(n0 + j, p.N - 1u);
      w[j] = loadW2(n * p.K + k);
    }
    for (var i = 0u; i < ${MB}u; i++) {
      let m = min(m0 + i, p.M - 1u);
      let x = ${loadX2(arith, 'm * p.K + k')};
      for (var j = 0u; j < ${nb}u; j++) {
        ${pairFma(arith, 'acc[i][j]', 'x', 'w[j]')}
      }
    }
  }
  ${reduceAcc(MB, nb, subgroups)}
  for (var r = li; r < ${MB * nb}u; r += ${WG}u) {
    let i = r / ${nb}u; let j = r % ${nb}u;
    let m = m0 + i; let n = n0 + j;
    if (m < p.M && n < p.N) {
      let o = m * p.ldo + p.colOff + n;
      let v = p.alpha * red[r]${withBias ? ' + bias[n]' : ''}${lora ? ' + p.loraScale * loraDot(i, n, m0)' : ''};
      if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
    }
  }
}`;
}

function narrowShader(
  dtype: WeightDType,
  arith: Arithmetic,
  MB: number,
  withBias: boolean,
  lora: LoraShape | null,
): string {
  return /* wgsl */ `
${bindings(dtype, arith, withBias, lora)}
${lora ? loraWgsl(lora, MB, WG, withBias) : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = wg.x * ${WG}u + li;
  let m0 = wg.y * ${MB}u;
  ${lora ? `loraT(li, m0, wg.x * ${WG}u);` : ''}
  if (n >= p.N) { return; }
  var acc: array<f32, ${MB}>;
  for (var k = 0u; k < p.K; k += 2u) {
    let w = loadW2(n * p.K + k);
    for (var i = 0u; i < ${MB}u; i++) {
      let m = min(m0 + i, p.M - 1u);
      let x = ${loadX2(arith, 'm * p.K + k')};
      ${pairFma(arith, 'acc[i]', 'x', 'w')}
    }
  }
  for (var i = 0u; i < ${MB}u; i++) {
    let m = m0 + i;
    if (m < p.M) {
      let o = m * p.ldo + p.colOff + n;
      let v = p.alpha * acc[i]${withBias ? ' + bias[n]' : ''}${lora ? ' + p.loraScale * loraDot(i, n, m0)' : ''};
      if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
    }
  }
}`;
}

export class GemvKernel implements Kernel<GemvArgs> {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  /** f16 for f16 weights on a `shader-f16` device (see the header), else f32. */
  readonly arithmetic: Arithmetic;

  /** Whether the wide shader's reduction uses subgroup operations. */
  readonly subgroups: boolean;

  constructor(
    private readonly device: GPUDevice,
    readonly weightDType: WeightDType,
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    this.arithmetic = weightArithmetic(weightDType, features);
    this.subgroups = features.subgroups;
  }

  /**
   * The row block: the smallest that covers M, and with a LoRA epilogue also one whose t fits the
   * device's workgroup memory beside the reduction tree (a high rank runs in smaller row blocks; the
   * results do not depend on the block).
   */
  private rowBlock(args: GemvArgs): number {
    const cover = ROW_BLOCKS.find((mb) => mb >= args.M) ?? ROW_BLOCKS[ROW_BLOCKS.length - 1];
    const lora = loraShape(args);
    if (!lora || lora.pre) return cover;
    const budget = this.device.limits.maxComputeWorkgroupStorageSize;
    const narrow = args.K <= NARROW_K;
    // Floats per row of the block: the wide shader's reduction slots, and t.
    const perRow =
      (narrow ? 0 : reductionSlots(this.subgroups) * NB_LORA) + lora.S * lora.r * loraTeam(lora.r);
    const bytes = (mb: number) => 4 * mb * perRow;
    const fit = ROW_BLOCKS.filter((mb) => mb <= cover && bytes(mb) <= budget);
    if (fit.length === 0)
      throw new Error(
        `LoRA rank ${lora.r} needs ${bytes(1)} bytes of workgroup memory in the decode matmul, more than ` +
          `this device's ${budget}: use a lower rank`,
      );
    return fit[fit.length - 1];
  }

  pipelineFor(args: GemvArgs): GPUComputePipeline {
    if (args.K % 2 !== 0) throw new Error(`gemv needs an even K, got ${args.K}`);
    // Created on first use (a one-time cost in the first decode steps): of the variants a run needs
    // only those of its batch sizes, and shader compilation is slow on software adapters.
    const MB = this.rowBlock(args);
    const narrow = args.K <= NARROW_K;
    const lora = loraShape(args);
    const key = `${MB}${Boolean(args.bias)}${narrow}${lora ? ` lora ${lora.S}x${lora.r}${lora.pre ? ' t' : ''}` : ''}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const bias = Boolean(args.bias);
      p = computePipeline(
        this.device,
        narrow
          ? narrowShader(this.weightDType, this.arithmetic, MB, bias, lora)
          : shader(this.weightDType, this.arithmetic, MB, bias, this.subgroups, lora),
        `gemv ${this.weightDType} (${this.arithmetic} math) rows ${MB}${narrow ? ' narrow' : this.subgroups ? ' subgroups' : ''}${lora ? (lora.pre ? ' lora t' : ' lora') : ''}`,
      );
      this.pipelines.set(key, p);
    }
    return p;
  }

  params(args: GemvArgs): ArrayBuffer {
    const base = matmulParamsData(args.M, args.N, args.K, args);
    if (!args.lora) return base;
    const data = new ArrayBuffer(base.byteLength + 16);
    new Uint8Array(data).set(new Uint8Array(base));
    const starts = args.lora.segmentStarts;
    // Unused boundaries lie beyond every column.
    new Uint32Array(data, base.byteLength, 2).set([starts[0] ?? 0xffffffff, starts[1] ?? 0xffffffff]);
    new Float32Array(data, base.byteLength + 8, 1)[0] = args.lora.scale;
    return data;
  }

  buffers(args: GemvArgs): GPUBuffer[] {
    const out = args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
    return args.lora ? [...out, args.lora.t ?? args.lora.A, args.lora.B] : out;
  }

  workgroups(args: GemvArgs): [number, number, number] {
    return [Math.ceil(args.N / columnsPerGroup(args)), Math.ceil(args.M / this.rowBlock(args)), 1];
  }

  /**
   * Each workgroup streams its columns' weight rows, whole (the last group's clamped columns re-read
   * the last row), once for its row block: a batch of M rows reads every weight ⌈M / row block⌉ times
   * (row blocks of at most 8).
   */
  weightBytesPerWorkgroup(args: GemvArgs): number {
    if (args.adapterWeights) return 0;
    return columnsPerGroup(args) * args.K * WEIGHT_DTYPE_BYTES[this.weightDType];
  }
}

function columnsPerGroup(args: GemvArgs): number {
  return args.K <= NARROW_K ? WG : args.lora && !args.lora.t ? NB_LORA : NB;
}

function loraShape(args: GemvArgs): LoraShape | null {
  if (!args.lora) return null;
  const starts = args.lora.segmentStarts;
  if (starts.length > 2)
    throw new Error(`gemv's LoRA epilogue takes at most 3 sub-projections, got ${starts.length + 1}`);
  return { S: starts.length + 1, r: args.lora.rank, pre: Boolean(args.lora.t) };
}
