// RoPE (rotate-half) on the fused q|k|v projection output, then k and v written into the KV cache.
// qkv [T, (nH + 2·nKv)·D] (bias already added by the matmul epilogue); row t is token `pos` of cache
// slot `slot` (rows[t] = (slot, pos)). Writes q [T, nH·D] and cache[slot, pos, kvHead, :] for k and v.
// The cache holds f32 or f16 pairs: packed into u32 words with pack2x16float, or with `shader-f16` stored
// as native vec2<f16> (the same bytes). cos/sin come from a table computed on the host in f32 exactly as the reference (HF) computes them.
// Backward (below): RopeBackwardKernel, gathering dq/dK/dV back into dqkv.
//
// Reference: rope (src/engine/reference/ops.ts); RopeBackwardKernel: ropeBackward
//   (src/engine/reference/ops-backward.ts).
// Tests: tests/gpu/forward-kernels.test.ts (rope + KV cache + attention), tests/gpu/backward-kernels.test.ts
//   (RoPE backward + gather).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { enables } from './weights-wgsl.ts';

const WG = 64;

/** KV-cache element type: f32, or f16 packed two per u32 (half the memory; needs head_dim % 4 == 0). */
export type KvDType = 'f32' | 'f16';

/** Shared by the forward and backward shaders. */
const PARAMS = /* wgsl */ `struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;`;

// Each invocation rotates two adjacent pairs (i, i+1) with their partners (i+D/2, i+1+D/2), so packed
// f16 cache words are written whole.
function shader(kv: KvDType, nativeF16: boolean): string {
  const cacheElem = kv === 'f32' ? 'f32' : nativeF16 ? 'vec2<f16>' : 'u32';
  const store = (buf: string, idx: string, a: string, b: string) =>
    kv === 'f32'
      ? `${buf}[${idx}] = ${a}; ${buf}[${idx} + 1u] = ${b};`
      : nativeF16
        ? `${buf}[(${idx}) >> 1u] = vec2<f16>(vec2<f32>(${a}, ${b}));`
        : `${buf}[(${idx}) >> 1u] = pack2x16float(vec2<f32>(${a}, ${b}));`;
  return /* wgsl */ `${enables(nativeF16)}${PARAMS}
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> cosSin: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<${cacheElem}>;
@group(0) @binding(6) var<storage, read_write> vCache: array<${cacheElem}>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  let half = p.D / 2u;
  let quarter = half / 2u;
  let head = gid.x / quarter;
  let i = (gid.x % quarter) * 2u;
  if (t >= p.T || head >= p.nH + 2u * p.nKv) { return; }
  let row = rows[t];
  let width = (p.nH + 2u * p.nKv) * p.D;
  let src = t * width + head * p.D + i;
  let a1 = qkv[src]; let b1 = qkv[src + 1u];
  let a2 = qkv[src + half]; let b2 = qkv[src + half + 1u];
  let cacheRow = (row.x * p.maxLen + row.y) * p.nKv * p.D;
  if (head >= p.nH + p.nKv) {
    let dst = cacheRow + (head - p.nH - p.nKv) * p.D + i;
    ${store('vCache', 'dst', 'a1', 'b1')}
    ${store('vCache', 'dst + half', 'a2', 'b2')}
    return;
  }
  let ca = cosSin[row.y * half + i];
  let cb = cosSin[row.y * half + i + 1u];
  let ra1 = a1 * ca.x - a2 * ca.y;
  let ra2 = a2 * ca.x + a1 * ca.y;
  let rb1 = b1 * cb.x - b2 * cb.y;
  let rb2 = b2 * cb.x + b1 * cb.y;
  if (head < p.nH) {
    let dst = t * p.nH * p.D + head * p.D + i;
    q[dst] = ra1; q[dst + 1u] = rb1;
    q[dst + half] = ra2; q[dst + half + 1u] = rb2;
  } else {
    let dst = cacheRow + (head - p.nH) * p.D + i;
    ${store('kCache', 'dst', 'ra1', 'rb1')}
    ${store('kCache', 'dst + half', 'ra2', 'rb2')}
  }
}`;
}

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
  constructor(
    device: GPUDevice,
    readonly kvDType: KvDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    const nativeF16 = kvDType === 'f16' && features.f16;
    this.pipeline = computePipeline(
      device,
      shader(kvDType, nativeF16),
      `rope+kv ${kvDType}${nativeF16 ? ' native' : ''}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: RopeKvArgs): ArrayBuffer {
    if (a.D % 4 !== 0) throw new Error(`head_dim ${a.D} must be a multiple of 4`);
    return new Uint32Array([a.T, a.nH, a.nKv, a.D, a.maxLen, 0, 0, 0]).buffer;
  }
  buffers(a: RopeKvArgs): GPUBuffer[] {
    return [a.qkv, a.rows, a.cosSin, a.q, a.kCache, a.vCache];
  }
  workgroups(a: RopeKvArgs): [number, number, number] {
    return [Math.ceil(((a.nH + 2 * a.nKv) * a.D) / 4 / WG), a.T, 1];
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

// ---- backward ----

// Backward of the RoPE + KV-cache write above: gathers dq [T, nH·D] and the cache-layout
// dK/dV [slot, pos, nKv·D] back into the fused dqkv [T, (nH + 2·nKv)·D], rotating q and k gradients by
// the opposite angle (a rotation's transpose): (d1, d2) → (d1·cos + d2·sin, d2·cos − d1·sin).

const BACKWARD_SHADER = /* wgsl */ `${PARAMS}
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
    this.pipeline = computePipeline(device, BACKWARD_SHADER, 'rope backward');
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
