// RoPE (rotate-half) on the fused q|k|v projection output, then k and v written into the KV cache.
// qkv [T, (nH + 2·nKv)·D] (bias already added by the matmul epilogue); row t is token `pos` of cache
// slot `slot` (rows[t] = (slot, pos)). Writes q [T, nH·D] and cache[slot, pos, kvHead, :] for k and v.
// cos/sin come from a table computed on the host in f32 exactly as the reference (HF) computes them.
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 64;

const SHADER = /* wgsl */ `
struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> cosSin: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<f32>;
@group(0) @binding(6) var<storage, read_write> vCache: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  let half = p.D / 2u;
  let head = gid.x / half;
  let i = gid.x % half;
  if (t >= p.T || head >= p.nH + 2u * p.nKv) { return; }
  let row = rows[t];
  let width = (p.nH + 2u * p.nKv) * p.D;
  let src = t * width + head * p.D + i;
  let x1 = qkv[src];
  let x2 = qkv[src + half];
  let cacheRow = (row.x * p.maxLen + row.y) * p.nKv * p.D;
  if (head >= p.nH + p.nKv) {
    let dst = cacheRow + (head - p.nH - p.nKv) * p.D + i;
    vCache[dst] = x1;
    vCache[dst + half] = x2;
    return;
  }
  let cs = cosSin[row.y * half + i];
  let r1 = x1 * cs.x - x2 * cs.y;
  let r2 = x2 * cs.x + x1 * cs.y;
  if (head < p.nH) {
    let dst = t * p.nH * p.D + head * p.D + i;
    q[dst] = r1;
    q[dst + half] = r2;
  } else {
    let dst = cacheRow + (head - p.nH) * p.D + i;
    kCache[dst] = r1;
    kCache[dst + half] = r2;
  }
}`;

export interface RopeKvArgs {
  qkv: GPUBuffer;
  rows: GPUBuffer;
  cosSin: GPUBuffer;
  q: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  T: number;
  nH: number;
  nKv: number;
  D: number;
  maxLen: number;
}

export class RopeKvKernel implements Kernel<RopeKvArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, SHADER, 'rope+kv');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: RopeKvArgs): ArrayBuffer {
    return new Uint32Array([a.T, a.nH, a.nKv, a.D, a.maxLen, 0, 0, 0]).buffer;
  }
  buffers(a: RopeKvArgs): GPUBuffer[] {
    return [a.qkv, a.rows, a.cosSin, a.q, a.kCache, a.vCache];
  }
  workgroups(a: RopeKvArgs): [number, number, number] {
    return [Math.ceil(((a.nH + 2 * a.nKv) * a.D) / 2 / WG), a.T, 1];
  }
}

/**
 * cos/sin of pos · invFreq_i for pos < maxLen, i < D/2, interleaved [pos][i](cos, sin), rounded the way
 * the reference (and HF, in f32) rounds: invFreq in f32, angle in f32, cos/sin in f32.
 */
export function ropeTable(maxLen: number, headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(maxLen * half * 2);
  for (let i = 0; i < half; i++) {
    const inv = Math.fround(1 / Math.pow(theta, (2 * i) / headDim));
    for (let pos = 0; pos < maxLen; pos++) {
      const angle = Math.fround(pos * inv);
      out[(pos * half + i) * 2] = Math.fround(Math.cos(angle));
      out[(pos * half + i) * 2 + 1] = Math.fround(Math.sin(angle));
    }
  }
  return out;
}
