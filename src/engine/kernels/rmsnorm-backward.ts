// Backward of RMSNorm (kernels/rmsnorm.ts; reference ops-backward.ts rmsnormBackward), one workgroup
// per row, ACCUMULATING into the residual-stream gradient: dx[row] += s·(w⊙dy) − s³/C·x·Σ_c w_c dy_c x_c
// with s = rsqrt(mean(x²) + eps) recomputed from x. The scatter variant maps dy row r to x/dx row
// rowIdx[r] (the final norm, which runs only on completion rows).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { gridRows } from './rmsnorm.ts';

const WG = 64;

function shader(scatter: boolean): string {
  return /* wgsl */ `
struct Params { R: u32, C: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
${scatter ? '@group(0) @binding(5) var<storage, read> rowIdx: array<u32>;' : ''}
var<workgroup> red: array<vec2<f32>, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let xb = ${scatter ? 'rowIdx[r]' : 'r'} * p.C;
  let yb = r * p.C;
  var acc = vec2<f32>(0.0, 0.0); // (Σ x², Σ w·dy·x)
  for (var c = li; c < p.C; c += ${WG}u) {
    let v = x[xb + c];
    acc += vec2<f32>(v * v, w[c] * dy[yb + c] * v);
  }
  red[li] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let s = inverseSqrt(red[0].x / f32(p.C) + p.eps);
  let k = s * s * s * red[0].y / f32(p.C);
  for (var c = li; c < p.C; c += ${WG}u) {
    dx[xb + c] = dx[xb + c] + s * w[c] * dy[yb + c] - k * x[xb + c];
  }
}`;
}

export interface RmsNormBackwardArgs {
  /** The norm's input rows. */
  x: GPUBuffer;
  weight: GPUBuffer;
  /** Gradient on the norm's output [R, C]. */
  dy: GPUBuffer;
  /** Gradient on the input, accumulated. */
  dx: GPUBuffer;
  /** Scatter variant: x/dx row of each dy row. */
  rowIdx?: GPUBuffer;
  R: number;
  C: number;
  eps: number;
}

export class RmsNormBackwardKernel implements Kernel<RmsNormBackwardArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(
    device: GPUDevice,
    readonly scatter: boolean,
  ) {
    this.pipeline = computePipeline(device, shader(scatter), `rmsnorm backward${scatter ? ' scatter' : ''}`);
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: RmsNormBackwardArgs): ArrayBuffer {
    const buf = new ArrayBuffer(16);
    new Uint32Array(buf).set([a.R, a.C]);
    new Float32Array(buf)[2] = a.eps;
    return buf;
  }
  buffers(a: RmsNormBackwardArgs): GPUBuffer[] {
    const out = [a.x, a.weight, a.dy, a.dx];
    if (this.scatter) {
      if (!a.rowIdx) throw new Error('scatter RMSNorm backward needs rowIdx');
      out.push(a.rowIdx);
    }
    return out;
  }
  workgroups(a: RmsNormBackwardArgs): [number, number, number] {
    return gridRows(a.R);
  }
}
