// Sampling on the GPU, one workgroup per row of logits: greedy (argmax, ties → lowest id) or
// temperature + top-k + top-p, seeded. Top-k and top-p become thresholds on the sortable bit pattern
// of l/T: the largest key whose at-or-above count (top-k) or probability mass (top-p) is large enough,
// found by a SAMPLE_FANOUT-ary search (no sort). Each pass over the vocabulary tests SAMPLE_FANOUT − 1
// evenly spaced keys at once, so the 2³² keys take 8 passes instead of a binary search's 32 (search()).
// Every tested key's count or mass is summed in exactly the order the binary search summed it (per
// invocation in index order, then the same workgroup reduction), and both searches return the largest
// key that passes, so the threshold, and the sampled token, are bit-identical to the binary search's
// (tests/gpu/sample-select).
// The token is then drawn by Gumbel-max among the kept ids, which is exact sampling from the
// renormalised distribution. The noise of token i is a hash of (seed, sequence, step, i): the same
// seed gives the same samples whatever else shares the batch.
//
// out[r] = (token id, bits of the base log-prob (T = 1, no top-k/top-p), bits of the log-prob under
// the distribution actually sampled from (0 for greedy: a point mass)).
//
// Reference: the argmax of the reference logits, chosenLogprobs and logSumExp (src/engine/reference/ops.ts).
// Tests: tests/gpu/forward-kernels.test.ts (greedy sampling; top-k draws equal on both reduction builds),
//   tests/gpu/generate.test.ts (seeded sampling, top-k / top-p, both log-probs),
//   tests/gpu/sample-select.test.ts (the same outputs as the binary search, fanout 2).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { gridRows } from './rmsnorm.ts';
import { laneInit, laneParams, REDUCE_WG, reduceWgsl, ROW_LOGSUMEXP_WGSL } from './reduce-wgsl.ts';
import { enables } from './weights-wgsl.ts';

/**
 * Keys tested per pass + 1: 8 passes over 2³² keys. Fanout 2 is the binary search step for step
 * (probe lo + (hi − lo)/2 + 1), which the tests keep as the oracle.
 */
export const SAMPLE_FANOUT = 16;

/**
 * Raises `lo` to the largest key whose at-or-above sum (of each element's `v`, 1 for a count or its
 * probability mass; `element` defines `key` and `v` for element i) reduces to at least `passes`,
 * FANOUT − 1 evenly spaced keys per pass (`lo` must pass). Since the sums are monotone in the key, the
 * tested keys pass up to the `taken`-th, and the range shrinks to the gap after it.
 */
function search(
  FANOUT: number,
  o: { type: 'u32' | 'f32'; element: string; reduce: 'reduceCount' | 'reduceSum'; passes: string },
): string {
  const PROBES = FANOUT - 1;
  const zero = o.type === 'u32' ? '0u' : '0.0';
  return /* wgsl */ `var hi = 0xffffffffu;
    for (var it = 0u; it < 32u; it++) {
      if (lo >= hi) { break; }
      let step = (hi - lo) / ${FANOUT}u + 1u;
      // An explicit initializer: a bare declaration in a loop kept the last pass's sums on lavapipe.
      var acc = array<${o.type}, ${PROBES}>();
      for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
        ${o.element}
        for (var j = 0u; j < ${PROBES}u; j++) { acc[j] += select(${zero}, v, key >= lo + (j + 1u) * step); }
      }
      var taken = 0u;
      for (var j = 1u; j <= ${PROBES}u; j++) {
        let total = ${o.reduce}(li, acc[j - 1u]);
        if (j * step <= hi - lo && total >= ${o.passes}) { taken = j; }
      }
      if (taken < ${PROBES}u && (taken + 1u) * step <= hi - lo) { hi = lo + (taken + 1u) * step - 1u; }
      lo += taken * step;
    }`;
}

const shader = (subgroups: boolean, FANOUT: number) => /* wgsl */ `${enables(false, subgroups)}
struct Params {
  R: u32, V: u32, ldl: u32, topK: u32,
  temperature: f32, topP: f32, seed: u32, step: u32,
  greedy: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> rowSeq: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
${reduceWgsl(subgroups)}
${ROW_LOGSUMEXP_WGSL}

fn sortKey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn hash(a: u32) -> u32 {
  var x = a;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn uniform01(seed: u32, seq: u32, step: u32, i: u32) -> f32 {
  let h = hash(seed ^ hash(seq ^ hash(step ^ hash(i ^ 0x9e3779b9u))));
  return (f32(h >> 8u) + 0.5) / 16777216.0;
}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let base = r * p.ldl;
  let maxLse = rowMaxLogSumExp(li, base, 1.0);
  let M = maxLse.x;
  let logZ = maxLse.y;

  if (p.greedy != 0u) {
    var bv = -3.0e38; var bi = 0xffffffffu;
    for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
      let v = logits[base + i];
      if (v > bv) { bv = v; bi = i; }
    }
    let tok = reduceArgmax(li, bv, bi);
    if (li == 0u) {
      out[r * 3u] = tok;
      out[r * 3u + 1u] = bitcast<u32>(logits[base + tok] - logZ);
      out[r * 3u + 2u] = bitcast<u32>(0.0);
    }
    return;
  }

  let invT = 1.0 / p.temperature;
  let Mz = M * invT;
  // Top-k: the largest key κ with at least k values at or above it.
  var lo = 0u;
  if (p.topK > 0u && p.topK < p.V) {
    ${search(FANOUT, {
      type: 'u32',
      element: 'let key = sortKey(logits[base + i] * invT); let v = 1u;',
      reduce: 'reduceCount',
      passes: 'p.topK',
    })}
  }
  // Top-p on what top-k kept: the largest key whose at-or-above mass is at least topP of the kept mass.
  if (p.topP < 1.0) {
    var zk = 0.0;
    for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
      let z = logits[base + i] * invT;
      if (sortKey(z) >= lo) { zk += exp(z - Mz); }
    }
    let wantMass = p.topP * reduceSum(li, zk);
    ${search(FANOUT, {
      type: 'f32',
      element: 'let z = logits[base + i] * invT; let key = sortKey(z); let v = exp(z - Mz);',
      reduce: 'reduceSum',
      passes: 'wantMass',
    })}
  }
  let seq = rowSeq[r];
  var zf = 0.0;
  var bv = -3.0e38; var bi = 0xffffffffu;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
    let z = logits[base + i] * invT;
    if (sortKey(z) >= lo) {
      zf += exp(z - Mz);
      let g = z - log(-log(uniform01(p.seed, seq, p.step, i)));
      if (g > bv) { bv = g; bi = i; }
    }
  }
  let logZf = Mz + log(reduceSum(li, zf));
  let tok = reduceArgmax(li, bv, bi);
  if (li == 0u) {
    out[r * 3u] = tok;
    out[r * 3u + 1u] = bitcast<u32>(logits[base + tok] - logZ);
    out[r * 3u + 2u] = bitcast<u32>(logits[base + tok] * invT - logZf);
  }
}`;

export interface SampleParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
  /** Decode step (the noise differs per step). */
  step: number;
}

export interface SampleArgs extends SampleParams {
  logits: GPUBuffer;
  /** Per row: the id of its sequence's random stream (e.g. the completion index). */
  rowSeq: GPUBuffer;
  out: GPUBuffer;
  R: number;
  V: number;
  ldl?: number;
}

export class SampleKernel implements Kernel<SampleArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice, features: ShaderFeatures = PORTABLE_SHADERS, fanout = SAMPLE_FANOUT) {
    if (!Number.isInteger(fanout) || fanout < 2 || fanout > 32)
      throw new Error(`sampler fanout ${fanout}: expected an integer in [2, 32]`);
    this.pipeline = computePipeline(
      device,
      shader(features.subgroups, fanout),
      `sample${features.subgroups ? ' subgroups' : ''}${fanout === SAMPLE_FANOUT ? '' : ` fanout ${fanout}`}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: SampleArgs): ArrayBuffer {
    const buf = new ArrayBuffer(48);
    const u = new Uint32Array(buf);
    const f = new Float32Array(buf);
    const greedy = a.temperature <= 0;
    u.set([a.R, a.V, a.ldl ?? a.V, a.topK > 0 ? a.topK : 0]);
    f[4] = greedy ? 1 : a.temperature;
    f[5] = a.topP > 0 && a.topP < 1 ? a.topP : 1;
    u[6] = a.seed >>> 0;
    u[7] = a.step >>> 0;
    u[8] = greedy ? 1 : 0;
    return buf;
  }
  buffers(a: SampleArgs): GPUBuffer[] {
    return [a.logits, a.rowSeq, a.out];
  }
  workgroups(a: SampleArgs): [number, number, number] {
    return gridRows(a.R);
  }
}
