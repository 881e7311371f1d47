// Log-probability of chosen tokens at temperature T: with z = logits[r, :] / T,
// out[outOff + r] = z[target[r]] − logsumexp(z) (T = 1: the plain log-softmax, bit for bit).
// One workgroup per row, over the full vocabulary (rows of the bounded logits scratch).
// Backward (below): LmLossKernel, the policy-gradient loss on these log-probs and dL/dlogits.
//
// Reference: chosenLogprobs (src/engine/reference/ops.ts; tempered: qwen2CompletionLogprobs,
//   src/engine/reference/qwen2.ts); LmLossKernel: policyGradientLoss (src/engine/reference/loss.ts).
// Tests: tests/gpu/forward-kernels.test.ts (log-prob of chosen tokens), tests/gpu/backward-kernels.test.ts
//   (LM-head loss + dlogits); in the whole model tests/gpu/train-grads.test.ts.
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { gridRows } from './rmsnorm.ts';
import { laneInit, laneParams, REDUCE_WG, reduceWgsl, ROW_LOGSUMEXP_WGSL } from './reduce-wgsl.ts';
import { enables } from './weights-wgsl.ts';

const shader = (subgroups: boolean) => /* wgsl */ `${enables(false, subgroups)}
struct Params { R: u32, V: u32, ldl: u32, outOff: u32, invT: f32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${reduceWgsl(subgroups)}
${ROW_LOGSUMEXP_WGSL}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let base = r * p.ldl;
  let lse = rowMaxLogSumExp(li, base, p.invT).y;
  if (li == 0u) { out[p.outOff + r] = p.invT * logits[base + targets[r]] - lse; }
}`;

export interface LogprobArgs {
  logits: GPUBuffer;
  targets: GPUBuffer;
  out: GPUBuffer;
  R: number;
  V: number;
  /** Row stride of logits (default V). */
  ldl?: number;
  outOff?: number;
  /** Sampling temperature the log-probs are taken at (default 1). */
  temperature?: number;
}

export class LogprobKernel implements Kernel<LogprobArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice, features: ShaderFeatures = PORTABLE_SHADERS) {
    this.pipeline = computePipeline(
      device,
      shader(features.subgroups),
      `logprob${features.subgroups ? ' subgroups' : ''}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: LogprobArgs): ArrayBuffer {
    const buf = new ArrayBuffer(32);
    new Uint32Array(buf).set([a.R, a.V, a.ldl ?? a.V, a.outOff ?? 0]);
    new Float32Array(buf)[4] = 1 / (a.temperature ?? 1);
    return buf;
  }
  buffers(a: LogprobArgs): GPUBuffer[] {
    return [a.logits, a.targets, a.out];
  }
  workgroups(a: LogprobArgs): [number, number, number] {
    return gridRows(a.R);
  }
}

// ---- backward ----

// The spec 4.7 policy-gradient loss on a block of completion rows' logits (the log-probs above), and its gradient written in
// place over those logits (reference: reference/loss.ts). One workgroup per row, over the vocabulary, on the
// tempered row u = z / T, with the row's sequence weight w:
//   lse, logπ(y), H = −Σ p log p;  ρ = exp(logπ − old) (1 without old logprobs);
//   g = w·(dℓ/dlogπ + β·(1 − exp(ref − logπ))) / N;  du_v = g·(1[v = y] − p_v) + (w·c/N)·p_v·(log p_v + H);
//   dz_v = du_v / T.  At T = 1 and w = 1 every product is by 1.0: the untempered, unweighted loss bit for bit.
// The caller runs this on at most `lmRows` rows at a time (bounded scratch: the logits of the whole
// batch never exist at once), then multiplies the gradient back through the LM head.
const lmLossShader = (subgroups: boolean) => /* wgsl */ `${enables(false, subgroups)}
struct Params { R: u32, V: u32, ldl: u32, flags: u32, invN: f32, clipEps: f32, entCoef: f32, klBeta: f32,
                rowOff: u32, invT: f32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> rowData: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> rowOut: array<vec4<f32>>;
${reduceWgsl(subgroups)}
${ROW_LOGSUMEXP_WGSL}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32${laneParams(subgroups)}) {
  ${laneInit(subgroups)}
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let base = r * p.ldl;
  let lse = rowMaxLogSumExp(li, base, p.invT).y;
  var H = 0.0;
  if (p.entCoef != 0.0) {
    var h = 0.0;
    for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
      let lp = p.invT * logits[base + i] - lse;
      h -= exp(lp) * lp;
    }
    H = reduceSum(li, h);
  }
  let y = targets[p.rowOff + r];
  let lpy = p.invT * logits[base + y] - lse;
  let rd = rowData[p.rowOff + r];
  let A = rd.x;
  let w = rd.w;
  var loss = -A;
  var g = -A;
  var clipped = 0.0;
  if ((p.flags & 1u) != 0u) {
    let rho = exp(lpy - rd.y);
    let un = -A * rho;
    let cl = -A * clamp(rho, 1.0 - p.clipEps, 1.0 + p.clipEps);
    if (un >= cl) { loss = un; g = -A * rho; } else { loss = cl; g = 0.0; clipped = 1.0; }
  }
  if ((p.flags & 2u) != 0u) {
    let dr = rd.z - lpy;
    loss += p.klBeta * (exp(dr) - dr - 1.0);
    g += p.klBeta * (1.0 - exp(dr));
  }
  loss -= p.entCoef * H;
  loss *= w;
  g = w * g * p.invN;
  let ce = w * p.entCoef * p.invN;
  workgroupBarrier();
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) {
    let lp = p.invT * logits[base + i] - lse;
    let pv = exp(lp);
    var d = -g * pv + ce * pv * (lp + H);
    if (i == y) { d += g; }
    logits[base + i] = p.invT * d;
  }
  if (li == 0u) { rowOut[p.rowOff + r] = vec4<f32>(loss, lpy, H, clipped); }
}`;

export interface LmLossArgs {
  /** [R, ldl] logits in, dL/dlogits out. */
  logits: GPUBuffer;
  targets: GPUBuffer;
  /** vec4<f32> [R]: (advantage, old logprob, ref logprob, sequence weight). */
  rowData: GPUBuffer;
  /** vec4<f32> [R]: (w·(ℓ + β·k3 − c·H) unnormalised, logπ(y), H, clipped). */
  rowOut: GPUBuffer;
  R: number;
  V: number;
  ldl?: number;
  /** targets, rowData and rowOut are read/written from this row on (logits rows start at 0). */
  rowOff?: number;
  /** 1 / global completion-token count. */
  invN: number;
  clipEps: number;
  entropyCoef: number;
  klBeta: number;
  /** Sampling temperature: the loss is taken on logits / T (default 1). */
  temperature?: number;
  hasOld: boolean;
  hasRef: boolean;
}

export class LmLossKernel implements Kernel<LmLossArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice, features: ShaderFeatures = PORTABLE_SHADERS) {
    this.pipeline = computePipeline(
      device,
      lmLossShader(features.subgroups),
      `lm loss${features.subgroups ? ' subgroups' : ''}`,
    );
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: LmLossArgs): ArrayBuffer {
    const buf = new ArrayBuffer(48);
    new Uint32Array(buf).set([a.R, a.V, a.ldl ?? a.V, (a.hasOld ? 1 : 0) | (a.hasRef ? 2 : 0)]);
    new Float32Array(buf).set([a.invN, a.clipEps, a.entropyCoef, a.klBeta], 4);
    new Uint32Array(buf)[8] = a.rowOff ?? 0;
    new Float32Array(buf)[9] = 1 / (a.temperature ?? 1);
    return buf;
  }
  buffers(a: LmLossArgs): GPUBuffer[] {
    return [a.logits, a.targets, a.rowData, a.rowOut];
  }
  workgroups(a: LmLossArgs): [number, number, number] {
    return gridRows(a.R);
  }
}
