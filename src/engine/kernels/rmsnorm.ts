// RMSNorm (HF Qwen2RMSNorm: x · rsqrt(mean(x²) + eps), then · weight), one workgroup per row, with the
// residual add folded in: `residual` reads x + delta (and writes the sum back to x unless `gather`),
// `gather` normalises only the rows listed in `rowIdx` (the final norm before the LM head runs only
// where logits are used). The reduction order is fixed per row: results never depend on the batch.
// The sum of squares uses reduce-wgsl.ts's reduceSum (subgroup operations where `subgroups` exists).
// Backward (below): RmsNormBackwardKernel (dx; the weight gradient is param-grad.ts's 'norm' mode).
//
// Reference: rmsnorm (src/engine/reference/ops.ts); RmsNormBackwardKernel: rmsnormBackward
//   (src/engine/reference/ops-backward.ts).
// Tests: tests/gpu/forward-kernels.test.ts (plain / residual / residual+gather),
//   tests/gpu/backward-kernels.test.ts (RMSNorm backward).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { laneInit, laneParams, reduceWgsl } from './reduce-wgsl.ts';
import { enables } from './weights-wgsl.ts';

const WG = 64;

export interface RmsNormVariant {
  residual: boolean;
  gather: boolean;
}

function shader(v: RmsNormVariant, subgroups: boolean): string {
  const writeBack = v.residual && !v.gather;
  let b = 1;
  const xDecl = `@group(0) @binding(${b++}) var<storage, ${writeBack ? 'read_write' : 'read'}> x: array<f32>;`;
  const dDecl = v.residual ? `@group(0) @binding(${b++}) var<storage, read> delta: array<f32>;` : '';
  const wDecl = `@group(0) @binding(${b++}) var<storage, read> w: array<f32>;`;
  const oDecl = `@group(0) @binding(${b++}) var<storage, read_write> out: array<f32>;`;
  const iDecl = v.gather ? `@group(0) @binding(${b}) var<storage, read> rowIdx: array<u32>;` : '';
  const load = v.residual ? '(x[src + c] + delta[src + c])' : 'x[src + c]';
  return /* wgsl */ `${enables(false, subgroups)}
struct Params { R: u32, C: u32, eps: f32, outRow0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${xDecl}
${dDecl}
${wDecl}
${oDecl}
${iDecl}
${reduceWgsl(subgroups, WG)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let src = ${v.gather ? 'rowIdx[r]' : 'r'} * p.C;
  var ss = 0.0;
  for (var c = li; c < p.C; c += ${WG}u) {
    let v = ${load};
    ${writeBack ? 'x[src + c] = v;' : ''}
    ss = fma(v, v, ss);
  }
  let rstd = inverseSqrt(reduceSum(li, ss) / f32(p.C) + p.eps);
  for (var c = li; c < p.C; c += ${WG}u) {
    out[(p.outRow0 + r) * p.C + c] = w[c] * (${writeBack ? 'x[src + c]' : load} * rstd);
  }
}`;
}

export interface RmsNormArgs {
  x: GPUBuffer;
  /** Added to x first (residual variants). */
  delta?: GPUBuffer;
  weight: GPUBuffer;
  out: GPUBuffer;
  /** Rows to normalise (gather variants); out row r = norm(x[rowIdx[r]]). */
  rowIdx?: GPUBuffer;
  /** Rows written. */
  R: number;
  /** First output row written (default 0): out row outRow0 + r = norm(row r). */
  outRow0?: number;
  C: number;
  eps: number;
}

export class RmsNormKernel implements Kernel<RmsNormArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(
    device: GPUDevice,
    readonly variant: RmsNormVariant,
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    this.pipeline = computePipeline(
      device,
      shader(variant, features.subgroups),
      `rmsnorm ${JSON.stringify(variant)}${features.subgroups ? ' subgroups' : ''}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: RmsNormArgs): ArrayBuffer {
    const buf = new ArrayBuffer(16);
    new Uint32Array(buf).set([a.R, a.C, 0, a.outRow0 ?? 0]);
    new Float32Array(buf)[2] = a.eps;
    return buf;
  }
  buffers(a: RmsNormArgs): GPUBuffer[] {
    const out = [a.x];
    if (this.variant.residual) out.push(need(a.delta, 'delta'));
    out.push(a.weight, a.out);
    if (this.variant.gather) out.push(need(a.rowIdx, 'rowIdx'));
    return out;
  }
  workgroups(a: RmsNormArgs): [number, number, number] {
    return gridRows(a.R);
  }
}

/** One workgroup per row, folded into 2-D past the 65,535-per-dimension limit. */
export function gridRows(R: number): [number, number, number] {
  return R <= 65535 ? [R, 1, 1] : [65535, Math.ceil(R / 65535), 1];
}

export function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`kernel argument ${what} is required by this variant`);
  return v;
}

// ---- backward ----

// Backward of the RMSNorm above (reference ops-backward.ts rmsnormBackward), one workgroup
// per row, ACCUMULATING into the residual-stream gradient: dx[row] += s·(w⊙dy) − s³/C·x·Σ_c w_c dy_c x_c
// with s = rsqrt(mean(x²) + eps) recomputed from x. The scatter variant maps dy row r to x/dx row
// rowIdx[r] (the final norm, which runs only on completion rows).

function backwardShader(scatter: boolean): string {
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
    this.pipeline = computePipeline(
      device,
      backwardShader(scatter),
      `rmsnorm backward${scatter ? ' scatter' : ''}`,
    );
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
