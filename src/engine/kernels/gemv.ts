// Skinny matmul for decode (a few token rows × a weight matrix): out[M, N] = a[M, K] · Wᵀ (+ bias),
// W [N, K] in f32 or packed f16/bf16. Decode is bandwidth-bound, so each workgroup streams 4 weight rows
// once and applies them to MB token rows; its 64 invocations split K (two elements per word-sized step)
// and a fixed tree adds their partial sums. Every (row, column) result runs the same sequence of
// operations whatever M or MB is, so batched and one-at-a-time decoding agree bit for bit.
// Same epilogue and uniform block as matmul.ts (column window, accumulate, alpha). K must be even.
import { computePipeline, type Kernel } from '../dispatch.ts';
import { matmulParamsData, type MatmulKernelArgs } from './matmul.ts';
import type { WeightDType } from './weights-wgsl.ts';

const WG = 64;
const NB = 4;
/** Row-block sizes with a pipeline each; the smallest that covers M is used (M > 8 runs in blocks of 8). */
const ROW_BLOCKS = [1, 2, 4, 8] as const;

function loadPair(dtype: WeightDType): string {
  // Elements i, i+1 of W (i even).
  if (dtype === 'f32') return 'fn loadW2(i: u32) -> vec2<f32> { return vec2<f32>(b[i], b[i + 1u]); }';
  if (dtype === 'f16') return 'fn loadW2(i: u32) -> vec2<f32> { return unpack2x16float(b[i >> 1u]); }';
  return `fn loadW2(i: u32) -> vec2<f32> {
  let w = b[i >> 1u];
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}`;
}

function shader(dtype: WeightDType, MB: number, withBias: boolean): string {
  return /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, ldo: u32, colOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<${dtype === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
${loadPair(dtype)}

var<workgroup> red: array<f32, ${WG * MB * NB}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n0 = wg.x * ${NB}u;
  let m0 = wg.y * ${MB}u;
  var acc: array<array<f32, ${NB}>, ${MB}>;
  for (var k = li * 2u; k < p.K; k += ${WG * 2}u) {
    var w: array<vec2<f32>, ${NB}>;
    for (var j = 0u; j < ${NB}u; j++) {
      let n = min(n0 + j, p.N - 1u);
      w[j] = loadW2(n * p.K + k);
    }
    for (var i = 0u; i < ${MB}u; i++) {
      let m = min(m0 + i, p.M - 1u);
      let x = vec2<f32>(a[m * p.K + k], a[m * p.K + k + 1u]);
      for (var j = 0u; j < ${NB}u; j++) {
        acc[i][j] = fma(x.y, w[j].y, fma(x.x, w[j].x, acc[i][j]));
      }
    }
  }
  for (var i = 0u; i < ${MB}u; i++) {
    for (var j = 0u; j < ${NB}u; j++) { red[li * ${MB * NB}u + i * ${NB}u + j] = acc[i][j]; }
  }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var o = 0u; o < ${MB * NB}u; o++) {
        red[li * ${MB * NB}u + o] = red[li * ${MB * NB}u + o] + red[(li + s) * ${MB * NB}u + o];
      }
    }
    workgroupBarrier();
  }
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

export class GemvKernel implements Kernel<MatmulKernelArgs> {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    device: GPUDevice,
    readonly weightDType: WeightDType,
  ) {
    for (const MB of ROW_BLOCKS) {
      for (const withBias of [false, true]) {
        this.pipelines.set(
          `${MB}${withBias}`,
          computePipeline(device, shader(weightDType, MB, withBias), `gemv ${weightDType} rows ${MB}`),
        );
      }
    }
  }

  private rowBlock(M: number): number {
    return ROW_BLOCKS.find((mb) => mb >= M) ?? ROW_BLOCKS[ROW_BLOCKS.length - 1];
  }

  pipelineFor(args: MatmulKernelArgs): GPUComputePipeline {
    if (args.K % 2 !== 0) throw new Error(`gemv needs an even K, got ${args.K}`);
    return this.pipelines.get(`${this.rowBlock(args.M)}${Boolean(args.bias)}`)!;
  }

  params(args: MatmulKernelArgs): ArrayBuffer {
    return matmulParamsData(args.M, args.N, args.K, args);
  }

  buffers(args: MatmulKernelArgs): GPUBuffer[] {
    return args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
  }

  workgroups(args: MatmulKernelArgs): [number, number, number] {
    return [Math.ceil(args.N / NB), Math.ceil(args.M / this.rowBlock(args.M)), 1];
  }
}
