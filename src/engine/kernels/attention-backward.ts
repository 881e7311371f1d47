// Backward of the causal GQA attention forward (attention-decode.ts, attention-prefill.ts).
// Two builds per kernel, by adapter kind (ShaderFeatures.adapterKind): workgroup-cooperative ones for
// GPUs (below), and for 'cpu' adapters (lavapipe, SwiftShader) one invocation per output row — the
// lanes of a SIMD vector walk the same keys (dq) or the same query rows (dkv) together, head_dim is
// compiled in and the loops over it unrolled, no workgroup memory, no barriers.
//
// Reference: attentionBackward (src/engine/reference/ops-backward.ts).
// Tests: tests/gpu/backward-kernels.test.ts (causal GQA attention backward); in the whole model
//   tests/gpu/train-grads.test.ts.
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { DIMS_PER_THREAD, HEAD_ROW, headRowGrid, MAX_HEAD_DIM, WG } from './attention-decode.ts';
import type { KvDType } from './rope-kv.ts';

// Backward of the causal GQA attention above, over the KV-cache layout the training forward
// uses: query row t is token rows[t] = (slot, pos) and attends to cache[slot, 0..pos]; the rows of a
// slot are contiguous from slotRows[slot].x (slotRows[slot].y of them, positions 0, 1, ...). The score
// matrix is never stored; both kernels recompute scores from q, K and the softmax statistics.
//   dq kernel, one workgroup per (row, head): m, l by an online pass (each invocation over its own
//     keys, one exponential per key, then a fixed-order tree of the partial (m, l)), then with
//     P = exp(s − m)/l,
//     dP_j = dO·v_j, Δ = dO·O:  dq = scale Σ_j P_j (dP_j − Δ) k_j;  stores lse = m + log l and Δ.
//   dkv kernel, one workgroup per (slot, key pos, KV head): over the query rows t ≥ pos of its slot and
//     the query heads of its group, dv_j = Σ P dO,  dk_j = scale Σ P (dP − Δ) q.
// K/V are read from an f32 or packed-f16 cache (the forward's); dK/dV are f32 in the cache layout.
// Reference: ops-backward.ts attentionBackward.
const BACKWARD_PARAMS = /* wgsl */ `
struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, scale: f32, nSlots: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
`;

function kvLoad(kv: KvDType): string {
  return kv === 'f32'
    ? 'fn kAt(i: u32) -> f32 { return kCache[i]; }\nfn vAt(i: u32) -> f32 { return vCache[i]; }'
    : 'fn kAt(i: u32) -> f32 { return unpack2x16float(kCache[i >> 1u])[i & 1u]; }\nfn vAt(i: u32) -> f32 { return unpack2x16float(vCache[i >> 1u])[i & 1u]; }';
}

const dqShader = (kv: KvDType) => /* wgsl */ `${BACKWARD_PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(4) var<storage, read> vCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
${kvLoad(kv)}
@group(0) @binding(5) var<storage, read> o: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<vec2<f32>>;

var<workgroup> qs: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> dos: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> ps: array<f32, ${WG}>;
var<workgroup> red: array<f32, ${WG}>;
var<workgroup> redM: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${HEAD_ROW}
  var part = 0.0;
  for (var c = li; c < p.D; c += ${WG}u) {
    qs[c] = q[qBase + c];
    dos[c] = dO[qBase + c];
    part += dO[qBase + c] * o[qBase + c];
  }
  red[li] = part;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let delta = red[0];
  let nKeys = row.y + 1u;
  let stride = p.nKv * p.D;
  let seqBase = row.x * p.maxLen * stride + kh * p.D;
  // Pass 1: softmax statistics. Each invocation folds its own keys j ≡ li (mod ${WG}) into a running
  // (max, sum of exponentials) — one exponential per key, no barrier — then the ${WG} partial pairs are
  // combined by a tree in a fixed order.
  var m = -3.0e38;
  var l = 0.0;
  for (var j = li; j < nKeys; j += ${WG}u) {
    var dot = 0.0;
    for (var c = 0u; c < p.D; c++) { dot = fma(qs[c], kAt(seqBase + j * stride + c), dot); }
    let s = dot * p.scale;
    let nm = max(m, s);
    l = l * exp(m - nm) + exp(s - nm);
    m = nm;
  }
  workgroupBarrier();
  redM[li] = m;
  red[li] = l;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      let m1 = redM[li];
      let m2 = redM[li + s];
      let mm = max(m1, m2);
      red[li] = red[li] * exp(m1 - mm) + red[li + s] * exp(m2 - mm);
      redM[li] = mm;
    }
    workgroupBarrier();
  }
  let lse = redM[0] + log(red[0]);
  // Pass 2: dS_j = P_j (dP_j − Δ), dq += scale Σ dS_j k_j.
  var acc: array<f32, ${DIMS_PER_THREAD}>;
  for (var j0 = 0u; j0 < nKeys; j0 += ${WG}u) {
    let j = j0 + li;
    var ds = 0.0;
    if (j < nKeys) {
      var dot = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < p.D; c++) {
        dot = fma(qs[c], kAt(seqBase + j * stride + c), dot);
        dp = fma(dos[c], vAt(seqBase + j * stride + c), dp);
      }
      ds = exp(dot * p.scale - lse) * (dp - delta);
    }
    ps[li] = ds;
    workgroupBarrier();
    let n = min(${WG}u, nKeys - j0);
    for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
      let c = li + d * ${WG}u;
      if (c < p.D) {
        var a = acc[d];
        for (var k = 0u; k < n; k++) { a = fma(ps[k], kAt(seqBase + (j0 + k) * stride + c), a); }
        acc[d] = a;
      }
    }
    workgroupBarrier();
  }
  for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
    let c = li + d * ${WG}u;
    if (c < p.D) { dq[qBase + c] = acc[d] * p.scale; }
  }
  if (li == 0u) { stats[t * p.nH + h] = vec2<f32>(lse, delta); }
}`;

const dkvShader = (kv: KvDType) => /* wgsl */ `${BACKWARD_PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> slotRows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(4) var<storage, read> vCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
${kvLoad(kv)}
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

var<workgroup> ks: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> vs: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> pw: array<f32, ${WG}>;
var<workgroup> dsw: array<f32, ${WG}>;
var<workgroup> qoff: array<u32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let kh = wg.x % p.nKv;
  let j = wg.x / p.nKv;
  let slot = wg.y;
  let sr = slotRows[slot];
  if (j >= sr.y) { return; }
  let group = p.nH / p.nKv;
  let stride = p.nKv * p.D;
  let kBase = (slot * p.maxLen + j) * stride + kh * p.D;
  for (var c = li; c < p.D; c += ${WG}u) { ks[c] = kAt(kBase + c); vs[c] = vAt(kBase + c); }
  workgroupBarrier();
  let nPairs = (sr.y - j) * group;
  var accK: array<f32, ${DIMS_PER_THREAD}>;
  var accV: array<f32, ${DIMS_PER_THREAD}>;
  for (var i0 = 0u; i0 < nPairs; i0 += ${WG}u) {
    let i = i0 + li;
    var pr = 0.0; var ds = 0.0; var off = 0u;
    if (i < nPairs) {
      let t = sr.x + j + i / group;
      let h = kh * group + i % group;
      off = t * p.nH * p.D + h * p.D;
      var dot = 0.0; var dp = 0.0;
      for (var c = 0u; c < p.D; c++) { dot = fma(q[off + c], ks[c], dot); dp = fma(dO[off + c], vs[c], dp); }
      let st = stats[t * p.nH + h];
      pr = exp(dot * p.scale - st.x);
      ds = pr * (dp - st.y);
    }
    pw[li] = pr; dsw[li] = ds; qoff[li] = off;
    workgroupBarrier();
    let n = min(${WG}u, nPairs - i0);
    for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
      let c = li + d * ${WG}u;
      if (c < p.D) {
        var ak = accK[d]; var av = accV[d];
        for (var k = 0u; k < n; k++) {
          ak = fma(dsw[k], q[qoff[k] + c], ak);
          av = fma(pw[k], dO[qoff[k] + c], av);
        }
        accK[d] = ak; accV[d] = av;
      }
    }
    workgroupBarrier();
  }
  for (var d = 0u; d < ${DIMS_PER_THREAD}u; d++) {
    let c = li + d * ${WG}u;
    if (c < p.D) { dk[kBase + c] = accK[d] * p.scale; dv[kBase + c] = accV[d]; }
  }
}`;

/** Invocations per workgroup of the per-row ('cpu') kernels. */
const LANES = 64;

/** Unrolled `body(c, value)` over the D elements of a K/V row at `base` (f16: two per word). */
function unrolledKv(
  kv: KvDType,
  buf: string,
  base: string,
  D: number,
  body: (c: number, v: string) => string,
) {
  const lines: string[] = [];
  if (kv === 'f32') for (let c = 0; c < D; c++) lines.push(body(c, `${buf}[${base} + ${c}u]`));
  else
    for (let c = 0; c < D; c += 2) {
      lines.push(
        `{ let w = unpack2x16float(${buf}[(${base} + ${c}u) >> 1u]);`,
        body(c, 'w.x'),
        body(c + 1, 'w.y'),
        '}',
      );
    }
  return lines.join('\n    ');
}
const unrolled = (D: number, body: (c: number) => string) =>
  Array.from({ length: D }, (_, c) => body(c)).join(' ');

/**
 * dq per (row t, head h), invocations = consecutive rows of one head: pass 1 the online (max, sum) over
 * the row's keys, pass 2 dq = scale Σ_j P_j (dP_j − Δ) k_j; stores (lse, Δ) for the dkv kernel.
 */
const dqLaneShader = (kv: KvDType, D: number) => /* wgsl */ `${BACKWARD_PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(4) var<storage, read> vCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(5) var<storage, read> o: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<vec2<f32>>;

@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = wg.x * ${LANES}u + li;
  let h = wg.y;
  if (t >= p.T) { return; }
  let row = rows[t];
  let kh = h / (p.nH / p.nKv);
  let qBase = t * p.nH * ${D}u + h * ${D}u;
  var qv = array<f32, ${D}>();
  var dov = array<f32, ${D}>();
  var acc = array<f32, ${D}>();
  var delta = 0.0;
  ${unrolled(D, (c) => `qv[${c}] = q[qBase + ${c}u]; dov[${c}] = dO[qBase + ${c}u]; delta = fma(dov[${c}], o[qBase + ${c}u], delta);`)}
  let stride = p.nKv * ${D}u;
  let seqBase = row.x * p.maxLen * stride + kh * ${D}u;
  var m = -3.0e38;
  var l = 0.0;
  for (var j = 0u; j <= row.y; j++) {
    let kb = seqBase + j * stride;
    var dot = 0.0;
    ${unrolledKv(kv, 'kCache', 'kb', D, (c, v) => `dot = fma(qv[${c}], ${v}, dot);`)}
    let s = dot * p.scale;
    if (s > m) {
      l *= exp(m - s);
      m = s;
    }
    l += exp(s - m);
  }
  let lse = m + log(l);
  for (var j = 0u; j <= row.y; j++) {
    let kb = seqBase + j * stride;
    var dot = 0.0;
    var dp = 0.0;
    ${unrolledKv(kv, 'kCache', 'kb', D, (c, v) => `dot = fma(qv[${c}], ${v}, dot);`)}
    ${unrolledKv(kv, 'vCache', 'kb', D, (c, v) => `dp = fma(dov[${c}], ${v}, dp);`)}
    let ds = exp(dot * p.scale - lse) * (dp - delta);
    ${unrolledKv(kv, 'kCache', 'kb', D, (c, v) => `acc[${c}] = fma(ds, ${v}, acc[${c}]);`)}
  }
  ${unrolled(D, (c) => `dq[qBase + ${c}u] = acc[${c}] * p.scale;`)}
  stats[t * p.nH + h] = vec2<f32>(lse, delta);
}`;

/**
 * dk, dv per (slot, key j, KV head), invocations = consecutive keys of one slot: the query rows are
 * walked from the slot's last down to j, so every lane reads the same row at the same step.
 */
const dkvLaneShader = (kv: KvDType, D: number) => /* wgsl */ `${BACKWARD_PARAMS}
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> slotRows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(4) var<storage, read> vCache: array<${kv === 'f32' ? 'f32' : 'u32'}>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let j = wg.x * ${LANES}u + li;
  let slot = wg.y;
  let kh = wg.z;
  let sr = slotRows[slot];
  if (j >= sr.y) { return; }
  let group = p.nH / p.nKv;
  let stride = p.nKv * ${D}u;
  let kBase = (slot * p.maxLen + j) * stride + kh * ${D}u;
  var kv = array<f32, ${D}>();
  var vv = array<f32, ${D}>();
  ${unrolledKv(kv, 'kCache', 'kBase', D, (c, v) => `kv[${c}] = ${v};`)}
  ${unrolledKv(kv, 'vCache', 'kBase', D, (c, v) => `vv[${c}] = ${v};`)}
  var accK = array<f32, ${D}>();
  var accV = array<f32, ${D}>();
  for (var r = sr.y; r > j; r--) {
    let t = sr.x + r - 1u;
    for (var g = 0u; g < group; g++) {
      let h = kh * group + g;
      let off = t * p.nH * ${D}u + h * ${D}u;
      var dot = 0.0;
      var dp = 0.0;
      ${unrolled(D, (c) => `dot = fma(q[off + ${c}u], kv[${c}], dot); dp = fma(dO[off + ${c}u], vv[${c}], dp);`)}
      let st = stats[t * p.nH + h];
      let pr = exp(dot * p.scale - st.x);
      let ds = pr * (dp - st.y);
      ${unrolled(D, (c) => `accK[${c}] = fma(ds, q[off + ${c}u], accK[${c}]); accV[${c}] = fma(pr, dO[off + ${c}u], accV[${c}]);`)}
    }
  }
  ${unrolled(D, (c) => `dk[kBase + ${c}u] = accK[${c}] * p.scale; dv[kBase + ${c}u] = accV[${c}];`)}
}`;

export interface AttentionBackwardArgs {
  /** Rotated queries [T, nH·D] and the forward's output O [T, nH·D]. */
  q: GPUBuffer;
  o: GPUBuffer;
  /** Gradient on O. */
  dO: GPUBuffer;
  rows: GPUBuffer;
  /** vec2<u32> [nSlots]: (first row, row count) of each slot. */
  slotRows: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** f32 [T, nH·D]. */
  dq: GPUBuffer;
  /** Cache layout [nSlots, maxLen, nKv·D], written for the keys each slot uses. */
  dk: GPUBuffer;
  dv: GPUBuffer;
  /** vec2<f32> [T·nH] scratch: (lse, Δ). */
  stats: GPUBuffer;
  T: number;
  nH: number;
  nKv: number;
  D: number;
  maxLen: number;
  nSlots: number;
  /** Longest slot (bounds the dkv grid). */
  maxRows: number;
}

function backwardParams(a: AttentionBackwardArgs): ArrayBuffer {
  if (a.D > MAX_HEAD_DIM) throw new Error(`head_dim ${a.D} exceeds ${MAX_HEAD_DIM}`);
  const buf = new ArrayBuffer(32);
  new Uint32Array(buf).set([a.T, a.nH, a.nKv, a.D, a.maxLen, 0, a.nSlots, 0]);
  new Float32Array(buf)[5] = 1 / Math.sqrt(a.D);
  return buf;
}

/** Pipelines of one backward kernel: the GPU build, or per head_dim the per-row ('cpu') build. */
class BackwardPipelines {
  private gpu: GPUComputePipeline | null = null;
  private readonly perRow = new Map<number, GPUComputePipeline>();
  constructor(
    private readonly device: GPUDevice,
    private readonly kv: KvDType,
    readonly cpu: boolean,
    private readonly name: string,
    private readonly gpuShader: (kv: KvDType) => string,
    private readonly laneShader: (kv: KvDType, D: number) => string,
  ) {}
  get(D: number): GPUComputePipeline {
    if (!this.cpu) {
      this.gpu ??= computePipeline(this.device, this.gpuShader(this.kv), `${this.name} ${this.kv}`);
      return this.gpu;
    }
    let p = this.perRow.get(D);
    if (!p) {
      if (D % 2) throw new Error(`head_dim ${D} must be even`);
      p = computePipeline(this.device, this.laneShader(this.kv, D), `${this.name} ${this.kv} per row D${D}`);
      this.perRow.set(D, p);
    }
    return p;
  }
}

export class AttentionDqKernel implements Kernel<AttentionBackwardArgs> {
  private readonly pipelines: BackwardPipelines;
  constructor(device: GPUDevice, kvDType: KvDType = 'f32', features: ShaderFeatures = PORTABLE_SHADERS) {
    const cpu = features.adapterKind === 'cpu';
    this.pipelines = new BackwardPipelines(
      device,
      kvDType,
      cpu,
      'attention backward dq',
      dqShader,
      dqLaneShader,
    );
  }
  pipelineFor(a: AttentionBackwardArgs): GPUComputePipeline {
    return this.pipelines.get(a.D);
  }
  params = backwardParams;
  buffers(a: AttentionBackwardArgs): GPUBuffer[] {
    return [a.q, a.rows, a.kCache, a.vCache, a.o, a.dO, a.dq, a.stats];
  }
  workgroups(a: AttentionBackwardArgs): [number, number, number] {
    return this.pipelines.cpu ? [Math.ceil(a.T / LANES), a.nH, 1] : headRowGrid(a.T, a.nH);
  }
}

/** Run after AttentionDqKernel (reads its lse/Δ stats). */
export class AttentionDkvKernel implements Kernel<AttentionBackwardArgs> {
  private readonly pipelines: BackwardPipelines;
  constructor(device: GPUDevice, kvDType: KvDType = 'f32', features: ShaderFeatures = PORTABLE_SHADERS) {
    const cpu = features.adapterKind === 'cpu';
    this.pipelines = new BackwardPipelines(
      device,
      kvDType,
      cpu,
      'attention backward dkv',
      dkvShader,
      dkvLaneShader,
    );
  }
  pipelineFor(a: AttentionBackwardArgs): GPUComputePipeline {
    return this.pipelines.get(a.D);
  }
  params = backwardParams;
  buffers(a: AttentionBackwardArgs): GPUBuffer[] {
    return [a.q, a.slotRows, a.kCache, a.vCache, a.stats, a.dO, a.dk, a.dv];
  }
  workgroups(a: AttentionBackwardArgs): [number, number, number] {
    return this.pipelines.cpu
      ? [Math.ceil(a.maxRows / LANES), a.nSlots, a.nKv]
      : [a.maxRows * a.nKv, a.nSlots, 1];
  }
}
