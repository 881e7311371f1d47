// SwiGLU on the fused gate/up output: act[t, i] = silu(gu[t, i]) · gu[t, I + i], gu [T, 2I].
// Backward (below): SwigluBackwardKernel.
//
// Reference: swiglu (src/engine/reference/ops.ts); SwigluBackwardKernel: swigluBackward
//   (src/engine/reference/ops-backward.ts).
// Tests: tests/gpu/forward-kernels.test.ts, tests/gpu/backward-kernels.test.ts (SwiGLU backward).
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 64;

/** Shared by the forward and backward shaders. */
const PARAMS = /* wgsl */ `struct Params { T: u32, I: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;`;

const SHADER = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> act: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; let t = gid.y;
  if (i >= p.I || t >= p.T) { return; }
  let g = gu[t * 2u * p.I + i];
  let u = gu[t * 2u * p.I + p.I + i];
  act[t * p.I + i] = g / (1.0 + exp(-g)) * u;
}`;

export interface SwigluArgs {
  gu: GPUBuffer;
  act: GPUBuffer;
  T: number;
  I: number;
}

export class SwigluKernel implements Kernel<SwigluArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, SHADER, 'swiglu');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: SwigluArgs): ArrayBuffer {
    return new Uint32Array([a.T, a.I, 0, 0]).buffer;
  }
  buffers(a: SwigluArgs): GPUBuffer[] {
    return [a.gu, a.act];
  }
  workgroups(a: SwigluArgs): [number, number, number] {
    return [Math.ceil(a.I / WG), a.T, 1];
  }
}

// ---- backward ----

// Backward of the SwiGLU above, on the fused gate|up layout: act = silu(g)·u with
// gu[t] = [g (I) | u (I)]:  dgu[t, i] = dact·u·silu'(g),  dgu[t, I+i] = dact·silu(g),
// silu'(g) = σ(g)·(1 + g·(1 − σ(g))). Elementwise; dgu is overwritten.

const BACKWARD_SHADER = /* wgsl */ `${PARAMS}
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read> dact: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgu: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x; let t = gid.y;
  if (i >= p.I || t >= p.T) { return; }
  let gi = t * 2u * p.I + i;
  let g = gu[gi];
  let u = gu[gi + p.I];
  let sig = 1.0 / (1.0 + exp(-g));
  let d = dact[t * p.I + i];
  dgu[gi] = d * u * sig * (1.0 + g * (1.0 - sig));
  dgu[gi + p.I] = d * g * sig;
}`;

export interface SwigluBackwardArgs {
  gu: GPUBuffer;
  dact: GPUBuffer;
  dgu: GPUBuffer;
  T: number;
  I: number;
}

export class SwigluBackwardKernel implements Kernel<SwigluBackwardArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, BACKWARD_SHADER, 'swiglu backward');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: SwigluBackwardArgs): ArrayBuffer {
    return new Uint32Array([a.T, a.I, 0, 0]).buffer;
  }
  buffers(a: SwigluBackwardArgs): GPUBuffer[] {
    return [a.gu, a.dact, a.dgu];
  }
  workgroups(a: SwigluBackwardArgs): [number, number, number] {
    return [Math.ceil(a.I / WG), a.T, 1];
  }
}
