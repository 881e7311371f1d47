// Causal GQA attention against the KV cache, for decode (and, until attention-prefill.ts has its own
// kernel, for prefill and the training forward too): query row t (slot, pos)
// attends to cache[slot, 0..pos]. One workgroup per (query head, row); keys are taken 64 at a time:
// each invocation scores one key, then an online softmax (running max and sum) folds the block in,
// each invocation accumulating the output for its own head dimensions. Every sum runs in a fixed
// order, so a row's result never depends on the other rows of the batch. The T×T score matrix is
// never stored. Query head h reads KV head h / (nH / nKv). The cache is f32 or f16: packed pairs in u32
// words, or with `shader-f16` native vec2<f16> loads of the same bytes (f32 arithmetic either way, so both
// f16 readings give identical results). Where `subgroups` exists, each key block's max and sum of
// exponentials come from reduce-wgsl.ts's subgroup reductions instead of every invocation re-reading
// the block's 64 scores from workgroup memory (the sum's order changes; still fixed per row).
// Prefill/training: attention-prefill.ts. Backward: attention-backward.ts (AttentionDqKernel then
// AttentionDkvKernel, recomputing the scores).
//
// Reference: attention (src/engine/reference/ops.ts).
// Tests: tests/gpu/forward-kernels.test.ts (rope + KV cache + attention); in the whole model
//   tests/gpu/qwen2-forward.test.ts and tests/gpu/generate.test.ts (batch invariance).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { laneInit, laneParams, reduceWgsl } from './reduce-wgsl.ts';
import type { KvDType } from './rope-kv.ts';
import { enables } from './weights-wgsl.ts';

export const WG = 64;
/** Head dimensions per invocation: head_dim ≤ 4·64 = 256 (Qwen2 uses 64). */
export const DIMS_PER_THREAD = 4;
export const MAX_HEAD_DIM = WG * DIMS_PER_THREAD;

/**
 * Workgroup (query head h, row t) of the forward and the backward's dq kernel: t's slot/position, its KV
 * head kh and the offset qBase of its q/out/dq slice.
 */
export const HEAD_ROW = /* wgsl */ `let h = wg.x % p.nH;
  let t = wg.x / p.nH + wg.y * (65535u / p.nH);
  if (t >= p.T) { return; }
  let row = rows[t];
  let kh = h / (p.nH / p.nKv);
  let qBase = t * p.nH * p.D + h * p.D;`;

/** One workgroup per (row, head) pair along x, rows folded into y beyond 65,535 workgroups. */
export function headRowGrid(T: number, nH: number): [number, number, number] {
  const rowsPerY = Math.floor(65535 / nH);
  if (T <= rowsPerY) return [T * nH, 1, 1];
  return [rowsPerY * nH, Math.ceil(T / rowsPerY), 1];
}

/**
 * One key block's softmax statistics: bm = max(m, block scores), corr = exp(m − bm), ps[k] = exp(s_k −
 * bm) for the block's n keys (0 beyond), bl = Σ ps. Every invocation holds its own key's score `s`.
 */
function blockSoftmax(subgroups: boolean): string {
  if (subgroups) {
    return /* wgsl */ `let bm = max(m, reduceMax(li, s));
    let corr = exp(m - bm);
    var e = 0.0;
    if (li < n) { e = exp(s - bm); }
    ps[li] = e;
    let bl = reduceSum(li, e); // its barrier also publishes ps`;
  }
  return /* wgsl */ `ps[li] = s;
    workgroupBarrier();
    var bm = m;
    for (var k = 0u; k < n; k++) { bm = max(bm, ps[k]); }
    let corr = exp(m - bm);
    workgroupBarrier();
    if (li < n) { ps[li] = exp(ps[li] - bm); }
    workgroupBarrier();
    var bl = 0.0;
    for (var k = 0u; k < n; k++) { bl += ps[k]; }`;
}

function shader(kv: KvDType, nativeF16: boolean, subgroups: boolean): string {
  const cacheElem = kv === 'f32' ? 'f32' : nativeF16 ? 'vec2<f16>' : 'u32';
  // An f16 pair (one 32-bit word) as vec2<f32>.
  const pair = (buf: string, word: string) =>
    nativeF16 ? `vec2<f32>(${buf}[${word}])` : `unpack2x16float(${buf}[${word}])`;
  // Key dot product: f16 caches read two dimensions per word.
  const dot =
    kv === 'f32'
      ? 'for (var c = 0u; c < p.D; c++) { dot = fma(qs[c], kCache[kb + c], dot); }'
      : `for (var c = 0u; c < p.D; c += 2u) {
        let kk = ${pair('kCache', '(kb + c) >> 1u')};
        dot = fma(qs[c], kk.x, dot);
        dot = fma(qs[c + 1u], kk.y, dot);
      }`;
  const loadV = (idx: string) =>
    kv === 'f32' ? `vCache[${idx}]` : `${pair('vCache', `(${idx}) >> 1u`)}[(${idx}) & 1u]`;
  return /* wgsl */ `${enables(nativeF16, subgroups)}
struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, scale: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${cacheElem}>;
@group(0) @binding(4) var<storage, read> vCache: array<${cacheElem}>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> ps: array<f32, ${WG}>;
${subgroups ? reduceWgsl(true, WG) : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  ${HEAD_ROW}
  for (var c = li; c < p.D; c += ${WG}u) { qs[c] = q[qBase + c]; }
  workgroupBarrier();
  let nKeys = row.y + 1u;
  let stride = p.nKv * p.D;
  let seqBase = row.x * p.maxLen * stride + kh * p.D;
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, ${DIMS_PER_THREAD}>;
  for (var j0 = 0u; j0 < nKeys; j0 += ${WG}u) {
    let j = j0 + li;
    var s = -3.0e38;
    if (j < nKeys) {
      let kb = seqBase + j * stride;
      var dot = 0.0;
      ${dot}
      s = dot * p.scale;
    }
    let n = min(${WG}u, nKeys - j0);
    ${blockSoftmax(subgroups)}
    l = l * corr + bl;
    for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
      let c = li + d * ${WG}u;
      if (c < p.D) {
        var a = acc[d] * corr;
        for (var k = 0u; k < n; k++) { a = fma(ps[k], ${loadV('seqBase + (j0 + k) * stride + c')}, a); }
        acc[d] = a;
      }
    }
    m = bm;
    workgroupBarrier();
  }
  for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
    let c = li + d * ${WG}u;
    if (c < p.D) { out[qBase + c] = acc[d] / l; }
  }
}`;
}

export interface AttentionArgs {
  q: GPUBuffer;
  rows: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  out: GPUBuffer;
  T: number;
  nH: number;
  nKv: number;
  D: number;
  maxLen: number;
}

/** The attention kernels' uniform (both files' `struct Params`): T, nH, nKv, D, maxLen, scale. */
export function attentionParams(a: AttentionArgs): ArrayBuffer {
  const buf = new ArrayBuffer(32);
  new Uint32Array(buf).set([a.T, a.nH, a.nKv, a.D, a.maxLen]);
  new Float32Array(buf)[5] = 1 / Math.sqrt(a.D);
  return buf;
}

export class DecodeAttentionKernel implements Kernel<AttentionArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(
    device: GPUDevice,
    readonly kvDType: KvDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    const nativeF16 = kvDType === 'f16' && features.f16;
    this.pipeline = computePipeline(
      device,
      shader(kvDType, nativeF16, features.subgroups),
      `attention ${kvDType}${nativeF16 ? ' native' : ''}${features.subgroups ? ' subgroups' : ''}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: AttentionArgs): ArrayBuffer {
    if (a.D > MAX_HEAD_DIM) throw new Error(`head_dim ${a.D} exceeds the attention kernel's ${MAX_HEAD_DIM}`);
    return attentionParams(a);
  }
  buffers(a: AttentionArgs): GPUBuffer[] {
    return [a.q, a.rows, a.kCache, a.vCache, a.out];
  }
  workgroups(a: AttentionArgs): [number, number, number] {
    return headRowGrid(a.T, a.nH);
  }
}
