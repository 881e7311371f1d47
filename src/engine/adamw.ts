// Global grad-norm clipping and AdamW on the GPU (reference: reference/adamw.ts, torch semantics).
// Per step: one sum-of-squares dispatch per tensor (each into its own slot, fixed order), one finalize
// dispatch (norm, clip factor = min(1, maxNorm / (norm + 1e-6))), one AdamW dispatch per tensor that
// reads the clip factor on the GPU: the norm never travels to the CPU before the update. Bias
// corrections and the learning rate (warm-up) come from the host in a per-step uniform.
import { Dispatcher, computePipeline, type Kernel } from './dispatch.ts';
import { readF32 } from './buffers.ts';
import { CLIP_NORM_EPS, learningRate, type AdamWOptions, type LrDecay } from './lr-schedule.ts';

const WG = 256;

const STEP_STRUCT = /* wgsl */ `
struct Step { lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, maxNorm: f32 }`;

const SUMSQ = /* wgsl */ `
struct Params { n: u32, slot: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < p.n; i += ${WG}u) { s = fma(g[i], g[i], s); }
  red[li] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) { partial[p.slot] = red[0]; }
}`;

const FINALIZE = /* wgsl */ `${STEP_STRUCT}
struct Params { count: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> st: Step;
@group(0) @binding(2) var<storage, read> partial: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < p.count; i += ${WG}u) { s += partial[i]; }
  red[li] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let norm = sqrt(red[0]);
    var f = 1.0;
    if (st.maxNorm > 0.0) { f = min(1.0, st.maxNorm / (norm + ${CLIP_NORM_EPS})); }
    stats[0] = norm;
    stats[1] = f;
  }
}`;

const UPDATE = /* wgsl */ `${STEP_STRUCT}
struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> st: Step;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> w: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i >= p.n) { return; }
  let gi = g[i] * stats[1];
  let mi = st.beta1 * m[i] + (1.0 - st.beta1) * gi;
  let vi = st.beta2 * v[i] + (1.0 - st.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  w[i] = w[i] * (1.0 - st.lr * st.wd) - st.lr * (mi / st.bc1) / (sqrt(vi / st.bc2) + st.eps);
}`;

/** One trainable tensor: parameters, accumulated gradient and the two moments, all f32 [n]. */
export interface TrainableTensor {
  name: string;
  param: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  n: number;
}

interface SumsqArgs {
  g: GPUBuffer;
  partial: GPUBuffer;
  n: number;
  slot: number;
}
interface FinalizeArgs {
  step: GPUBuffer;
  partial: GPUBuffer;
  stats: GPUBuffer;
  count: number;
}
interface UpdateArgs {
  step: GPUBuffer;
  stats: GPUBuffer;
  t: TrainableTensor;
}

function simple<A>(
  pipeline: GPUComputePipeline,
  params: (a: A) => number[],
  buffers: (a: A) => GPUBuffer[],
  workgroups: (a: A) => [number, number, number],
): Kernel<A> {
  return {
    pipelineFor: () => pipeline,
    params: (a) => new Uint32Array([...params(a), 0, 0, 0, 0].slice(0, 4)).buffer,
    buffers,
    workgroups,
  };
}

export interface OptimizerOptions extends AdamWOptions {
  /** Global grad-norm clip (≤ 0 disables it). */
  maxGradNorm: number;
  /** Linear warm-up steps (0 = constant lr). */
  warmupSteps: number;
  /** Decay after the warm-up (absent = constant). */
  decay?: LrDecay;
}

export class GpuAdamW {
  /** f32 [2]: grad norm before clipping, clip factor. */
  readonly stats: GPUBuffer;
  private readonly partial: GPUBuffer;
  private readonly stepUniform: GPUBuffer;
  private readonly sumsq: Kernel<SumsqArgs>;
  private readonly finalize: Kernel<FinalizeArgs>;
  private readonly update: Kernel<UpdateArgs>;
  /** Optimizer steps taken (1-based bias correction uses step + 1 for the next). */
  step = 0;

  constructor(
    private readonly device: GPUDevice,
    readonly tensors: readonly TrainableTensor[],
    private readonly dispatcher = new Dispatcher(device),
  ) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.stats = device.createBuffer({ size: 16, usage, label: 'adamw stats' });
    this.partial = device.createBuffer({
      size: Math.max(16, tensors.length * 4),
      usage,
      label: 'grad sumsq',
    });
    this.stepUniform = device.createBuffer({
      size: 32,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'adamw step',
    });
    this.sumsq = simple(
      computePipeline(device, SUMSQ, 'grad sumsq'),
      (a) => [a.n, a.slot],
      (a) => [a.g, a.partial],
      () => [1, 1, 1],
    );
    this.finalize = simple(
      computePipeline(device, FINALIZE, 'grad norm'),
      (a) => [a.count],
      (a) => [a.step, a.partial, a.stats],
      () => [1, 1, 1],
    );
    this.update = simple(
      computePipeline(device, UPDATE, 'adamw'),
      (a) => [a.t.n],
      (a) => [a.step, a.stats, a.t.grad, a.t.param, a.t.m, a.t.v],
      (a) => {
        const groups = Math.ceil(a.t.n / WG);
        return groups <= 65535 ? [groups, 1, 1] : [65535, Math.ceil(groups / 65535), 1];
      },
    );
  }

  /** Zeroes every gradient (before the first micro-batch of a step). */
  encodeZeroGrads(encoder: GPUCommandEncoder): void {
    for (const t of this.tensors) encoder.clearBuffer(t.grad, 0, t.n * 4);
  }

  /** Records norm, clip and the AdamW update of every tensor; submit before the next encodeStep. */
  encodeStep(encoder: GPUCommandEncoder, o: OptimizerOptions): void {
    this.step++;
    const lr = learningRate(o.lr, this.step, o.warmupSteps, o.decay);
    const bc1 = 1 - Math.pow(o.beta1, this.step);
    const bc2 = 1 - Math.pow(o.beta2, this.step);
    this.device.queue.writeBuffer(
      this.stepUniform,
      0,
      new Float32Array([lr, o.beta1, o.beta2, o.eps, o.weightDecay, bc1, bc2, o.maxGradNorm]),
    );
    const pass = encoder.beginComputePass({ label: 'optimizer' });
    const d = this.dispatcher;
    this.tensors.forEach((t, slot) =>
      d.dispatch(pass, `sumsq.${t.name}`, this.sumsq, { g: t.grad, partial: this.partial, n: t.n, slot }),
    );
    d.dispatch(pass, 'gradnorm', this.finalize, {
      step: this.stepUniform,
      partial: this.partial,
      stats: this.stats,
      count: this.tensors.length,
    });
    for (const t of this.tensors)
      d.dispatch(pass, `adamw.${t.name}`, this.update, { step: this.stepUniform, stats: this.stats, t });
    pass.end();
  }

  /** Grad norm and clip factor of the last step (one 8-byte readback). */
  async readStats(): Promise<{ gradNorm: number; clipFactor: number }> {
    const s = await readF32(this.device, this.stats, 2);
    return { gradNorm: s[0], clipFactor: s[1] };
  }
}
