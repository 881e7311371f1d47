// Weight gradients of the small f32 parameters, for full fine-tuning. Column-parallel: each invocation
// owns one column and walks the rows in order, so no two invocations write the same element (no
// atomics) and the sums run in a fixed order.
//   norm   dw[c]   += Σ_t dy[t, c] · x[xrow(t), c] · s_t   (s_t = rsqrt(mean x² + eps), RMSNorm weight)
//   colsum db[c]   += Σ_t dy[t, c]                          (biases)
//   embed  dE[ids[t], c] += dx[t, c]                        (embedding rows, one table chunk)
//
// Reference: the dw of rmsnormBackward, the dbias of linearBackward, embeddingBackward
//   (src/engine/reference/ops-backward.ts).
// Tests: tests/gpu/train-full.test.ts (every base weight's gradient); no kernel-level test of its own.
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 64;

export type ParamGradMode = 'norm' | 'normScatter' | 'colsum' | 'embed';

function shader(mode: ParamGradMode): string {
  const head = /* wgsl */ `
struct Params { R: u32, C: u32, eps: f32, rowStart: u32, rowEnd: u32, ld: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;`;
  if (mode === 'colsum')
    return `${head}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var s = 0.0;
  for (var t = 0u; t < p.R; t++) { s += dy[t * p.ld + c]; }
  g[c] = g[c] + s;
}`;
  if (mode === 'embed')
    return `${head}
@group(0) @binding(1) var<storage, read> dx: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  for (var t = 0u; t < p.R; t++) {
    let id = ids[t];
    if (id >= p.rowStart && id < p.rowEnd) {
      let o = (id - p.rowStart) * p.C + c;
      g[o] = g[o] + dx[t * p.C + c];
    }
  }
}`;
  const scatter = mode === 'normScatter';
  // One workgroup of WG invocations per block of WG columns: the row's rsqrt is reduced together.
  return `${head}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
${scatter ? '@group(0) @binding(4) var<storage, read> rowIdx: array<u32>;' : ''}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x * ${WG}u + li;
  var acc = 0.0;
  for (var t = 0u; t < p.R; t++) {
    let xb = ${scatter ? 'rowIdx[t]' : 't'} * p.C;
    var ss = 0.0;
    for (var k = li; k < p.C; k += ${WG}u) { ss = fma(x[xb + k], x[xb + k], ss); }
    red[li] = ss;
    workgroupBarrier();
    for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
      if (li < s) { red[li] += red[li + s]; }
      workgroupBarrier();
    }
    let rs = inverseSqrt(red[0] / f32(p.C) + p.eps);
    workgroupBarrier();
    if (c < p.C) { acc += dy[t * p.C + c] * x[xb + c] * rs; }
  }
  if (c < p.C) { g[c] = g[c] + acc; }
}`;
}

export interface ParamGradArgs {
  /** norm: the norm's input; embed: unused. */
  x?: GPUBuffer;
  /** norm/colsum: output gradient [R, C]; embed: the embedding output gradient [R, C]. */
  dy: GPUBuffer;
  /** Accumulated parameter gradient. */
  g: GPUBuffer;
  rowIdx?: GPUBuffer;
  ids?: GPUBuffer;
  R: number;
  C: number;
  eps?: number;
  /** colsum: row stride of dy (default C). */
  ld?: number;
  /** embed: the table chunk's rows. */
  rowStart?: number;
  rowEnd?: number;
}

export class ParamGradKernel implements Kernel<ParamGradArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(
    device: GPUDevice,
    readonly mode: ParamGradMode,
  ) {
    this.pipeline = computePipeline(device, shader(mode), `param grad ${mode}`);
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: ParamGradArgs): ArrayBuffer {
    const buf = new ArrayBuffer(32);
    new Uint32Array(buf).set([a.R, a.C, 0, a.rowStart ?? 0, a.rowEnd ?? 0, a.ld ?? a.C]);
    new Float32Array(buf)[2] = a.eps ?? 0;
    return buf;
  }
  buffers(a: ParamGradArgs): GPUBuffer[] {
    const need = (b: GPUBuffer | undefined, what: string) => {
      if (!b) throw new Error(`param grad ${this.mode} needs ${what}`);
      return b;
    };
    switch (this.mode) {
      case 'colsum':
        return [a.dy, a.g];
      case 'embed':
        return [a.dy, need(a.ids, 'ids'), a.g];
      case 'norm':
        return [need(a.x, 'x'), a.dy, a.g];
      case 'normScatter':
        return [need(a.x, 'x'), a.dy, a.g, need(a.rowIdx, 'rowIdx')];
    }
  }
  workgroups(a: ParamGradArgs): [number, number, number] {
    return [Math.ceil(a.C / WG), 1, 1];
  }
}
