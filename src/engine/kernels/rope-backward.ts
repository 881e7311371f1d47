// Backward of RoPE + KV-cache write (kernels/rope-kv.ts): gathers dq [T, nH·D] and the cache-layout
// dK/dV [slot, pos, nKv·D] back into the fused dqkv [T, (nH + 2·nKv)·D], rotating q and k gradients by
// the opposite angle (a rotation's transpose): (d1, d2) → (d1·cos + d2·sin, d2·cos − d1·sin).
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 64;

const SHADER = /* wgsl */ `
struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dq: array<f32>;
@group(0) @binding(2) var<storage, read> dk: array<f32>;
@group(0) @binding(3) var<storage, read> dv: array<f32>;
@group(0) @binding(4) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> cosSin: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> dqkv: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  let half = p.D / 2u;
  let head = gid.x / half;
  let i = gid.x % half;
  if (t >= p.T || head >= p.nH + 2u * p.nKv) { return; }
  let row = rows[t];
  let dst = t * (p.nH + 2u * p.nKv) * p.D + head * p.D + i;
  let cacheRow = (row.x * p.maxLen + row.y) * p.nKv * p.D;
  if (head >= p.nH + p.nKv) {
    let src = cacheRow + (head - p.nH - p.nKv) * p.D + i;
    dqkv[dst] = dv[src];
    dqkv[dst + half] = dv[src + half];
    return;
  }
  var d1 = 0.0; var d2 = 0.0;
  if (head < p.nH) {
    let src = t * p.nH * p.D + head * p.D + i;
    d1 = dq[src]; d2 = dq[src + half];
  } else {
    let src = cacheRow + (head - p.nH) * p.D + i;
    d1 = dk[src]; d2 = dk[src + half];
  }
  let cs = cosSin[row.y * half + i];
  dqkv[dst] = d1 * cs.x + d2 * cs.y;
  dqkv[dst + half] = d2 * cs.x - d1 * cs.y;
}`;

export interface RopeBackwardArgs {
  dq: GPUBuffer;
  dk: GPUBuffer;
  dv: GPUBuffer;
  rows: GPUBuffer;
  cosSin: GPUBuffer;
  dqkv: GPUBuffer;
  T: number;
  nH: number;
  nKv: number;
  D: number;
  maxLen: number;
}

export class RopeBackwardKernel implements Kernel<RopeBackwardArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, SHADER, 'rope backward');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: RopeBackwardArgs): ArrayBuffer {
    return new Uint32Array([a.T, a.nH, a.nKv, a.D, a.maxLen, 0, 0, 0]).buffer;
  }
  buffers(a: RopeBackwardArgs): GPUBuffer[] {
    return [a.dq, a.dk, a.dv, a.rows, a.cosSin, a.dqkv];
  }
  workgroups(a: RopeBackwardArgs): [number, number, number] {
    return [Math.ceil(((a.nH + 2 * a.nKv) * a.D) / 2 / WG), a.T, 1];
  }
}
