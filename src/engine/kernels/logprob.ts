// Log-probability of chosen tokens: out[outOff + r] = logits[r, target[r]] − logsumexp(logits[r, :]).
// One workgroup per row, over the full vocabulary (rows of the bounded logits scratch).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { gridRows } from './rmsnorm.ts';
import { REDUCE_WG, REDUCE_WGSL } from './reduce-wgsl.ts';

const SHADER = /* wgsl */ `
struct Params { R: u32, V: u32, ldl: u32, outOff: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${REDUCE_WGSL}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * 65535u;
  if (r >= p.R) { return; }
  let base = r * p.ldl;
  var m = -3.0e38;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { m = max(m, logits[base + i]); }
  let M = reduceMax(li, m);
  var s = 0.0;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { s += exp(logits[base + i] - M); }
  let S = reduceSum(li, s);
  if (li == 0u) { out[p.outOff + r] = logits[base + targets[r]] - (M + log(S)); }
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
}

export class LogprobKernel implements Kernel<LogprobArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, SHADER, 'logprob');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: LogprobArgs): ArrayBuffer {
    return new Uint32Array([a.R, a.V, a.ldl ?? a.V, a.outOff ?? 0]).buffer;
  }
  buffers(a: LogprobArgs): GPUBuffer[] {
    return [a.logits, a.targets, a.out];
  }
  workgroups(a: LogprobArgs): [number, number, number] {
    return gridRows(a.R);
  }
}
