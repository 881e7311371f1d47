// Skinny matmul for decode (a few token rows × a weight matrix): out[M, N] = a[M, K] · Wᵀ (+ bias),
// W [N, K] in f32 or packed f16/bf16. Decode is bandwidth-bound, so each workgroup streams 4 weight rows
// once and applies them to MB token rows; its 64 invocations split K (two elements per word-sized step)
// and a fixed tree adds their partial sums. Every (row, column) result runs the same sequence of
// operations whatever M or MB is, so batched and one-at-a-time decoding agree bit for bit.
// Same epilogue and uniform block as matmul.ts (column window, accumulate, alpha). K must be even.
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
// Narrow weights (K ≤ NARROW_K, e.g. the LM head of a tiny model: 151,936 × 64) take a second shader:
// each invocation owns one output column and runs the whole K loop itself. Splitting a short K over 64
// invocations leaves most of them idle and pays a 6-level barrier tree per 4 columns, which on CPU
// adapters (lavapipe) made the tiny model's LM head ~15× slower. The choice depends on K only, so
// batch invariance holds on both paths.
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { matmulParamsData, type MatmulKernelArgs } from './matmul.ts';
import { laneDecls, laneInit, laneParams, MIN_SUBGROUP_SIZE, subgroupCount } from './reduce-wgsl.ts';
import { enables, weightArithmetic, type Arithmetic, type WeightDType } from './weights-wgsl.ts';

const WG = 64;
const NB = 4;
/** Row-block sizes with a pipeline each; the smallest that covers M is used (M > 8 runs in blocks of 8). */
const ROW_BLOCKS = [1, 2, 4, 8] as const;
/** Largest K served by the column-per-invocation shader. */
export const NARROW_K = 256;

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

/** The uniform block (matmul.ts's layout), the bindings and the weight loader both shaders share. */
function bindings(dtype: WeightDType, arith: Arithmetic, withBias: boolean, subgroups = false): string {
  const elem = arith === 'f16' ? 'vec2<f16>' : dtype === 'f32' ? 'f32' : 'u32';
  return /* wgsl */ `${enables(arith === 'f16', subgroups)}
struct Params { M: u32, N: u32, K: u32, ldo: u32, colOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<${elem}>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
${loadPair(dtype, arith)}
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
 * Sums the invocations' acc[MB][NB] so that red[o] (o = i·NB + j < MB·NB) holds output o's total for
 * invocation o, which writes it (the epilogue below).
 */
function reduceAcc(MB: number, subgroups: boolean): string {
  const O = MB * NB;
  if (subgroups) {
    return /* wgsl */ `for (var i = 0u; i < ${MB}u; i++) {
    for (var j = 0u; j < ${NB}u; j++) {
      let s = subgroupAdd(acc[i][j]);
      if (sgLane == 0u) { red[(li / sgSize) * ${O}u + i * ${NB}u + j] = s; }
    }
  }
  workgroupBarrier();
  if (li < ${O}u) {
    var t = red[li];
    for (var g = 1u; g < ${subgroupCount(WG)}; g++) { t = t + red[g * ${O}u + li]; }
    red[li] = t;
  }`;
  }
  return /* wgsl */ `for (var i = 0u; i < ${MB}u; i++) {
    for (var j = 0u; j < ${NB}u; j++) { red[li * ${O}u + i * ${NB}u + j] = acc[i][j]; }
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
): string {
  // One slot per invocation for the tree, per subgroup (at most WG / MIN_SUBGROUP_SIZE) otherwise.
  const slots = subgroups ? WG / MIN_SUBGROUP_SIZE : WG;
  return /* wgsl */ `
${bindings(dtype, arith, withBias, subgroups)}
${laneDecls(subgroups)}

var<workgroup> red: array<f32, ${slots * MB * NB}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let n0 = wg.x * ${NB}u;
  let m0 = wg.y * ${MB}u;
  var acc: array<array<f32, ${NB}>, ${MB}>;
  for (var k = li * 2u; k < p.K; k += ${WG * 2}u) {
    var w: array<vec2<${arith}>, ${NB}>;
    for (var j = 0u; j < ${NB}u; j++) {
      let n = min(n0 + j, p.N - 1u);
      w[j] = loadW2(n * p.K + k);
    }
    for (var i = 0u; i < ${MB}u; i++) {
      let m = min(m0 + i, p.M - 1u);
      let x = ${loadX2(arith, 'm * p.K + k')};
      for (var j = 0u; j < ${NB}u; j++) {
        ${pairFma(arith, 'acc[i][j]', 'x', 'w[j]')}
      }
    }
  }
  ${reduceAcc(MB, subgroups)}
  if (li < ${MB * NB}u) {
    let i = li / ${NB}u; let j = li % ${NB}u;
    let m = m0 + i; let n = n0 + j;
    if (m < p.M && n < p.N) {
      let o = m * p.ldo + p.colOff + n;
      let v = p.alpha * red[li]${withBias ? ' + bias[n]' : ''};
      if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
    }
  }
}`;
}

function narrowShader(dtype: WeightDType, arith: Arithmetic, MB: number, withBias: boolean): string {
  return /* wgsl */ `
${bindings(dtype, arith, withBias)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = wg.x * ${WG}u + li;
  let m0 = wg.y * ${MB}u;
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
      let v = p.alpha * acc[i]${withBias ? ' + bias[n]' : ''};
      if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
    }
  }
}`;
}

export class GemvKernel implements Kernel<MatmulKernelArgs> {
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

  private rowBlock(M: number): number {
    return ROW_BLOCKS.find((mb) => mb >= M) ?? ROW_BLOCKS[ROW_BLOCKS.length - 1];
  }

  pipelineFor(args: MatmulKernelArgs): GPUComputePipeline {
    if (args.K % 2 !== 0) throw new Error(`gemv needs an even K, got ${args.K}`);
    // Created on first use (a one-time cost in the first decode steps): of the 8 variants a run
    // needs only those of its batch sizes, and shader compilation is slow on software adapters.
    const MB = this.rowBlock(args.M);
    const narrow = args.K <= NARROW_K;
    const key = `${MB}${Boolean(args.bias)}${narrow}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const bias = Boolean(args.bias);
      p = computePipeline(
        this.device,
        narrow
          ? narrowShader(this.weightDType, this.arithmetic, MB, bias)
          : shader(this.weightDType, this.arithmetic, MB, bias, this.subgroups),
        `gemv ${this.weightDType} (${this.arithmetic} math) rows ${MB}${narrow ? ' narrow' : this.subgroups ? ' subgroups' : ''}`,
      );
      this.pipelines.set(key, p);
    }
    return p;
  }

  params(args: MatmulKernelArgs): ArrayBuffer {
    return matmulParamsData(args.M, args.N, args.K, args);
  }

  buffers(args: MatmulKernelArgs): GPUBuffer[] {
    return args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
  }

  workgroups(args: MatmulKernelArgs): [number, number, number] {
    const columnsPerGroup = args.K <= NARROW_K ? WG : NB;
    return [Math.ceil(args.N / columnsPerGroup), Math.ceil(args.M / this.rowBlock(args.M)), 1];
  }
}
