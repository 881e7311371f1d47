// SwiGLU on the fused gate/up output: act[t, i] = silu(gu[t, i]) · gu[t, I + i], gu [T, 2I].
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 64;

const SHADER = /* wgsl */ `
struct Params { T: u32, I: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
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
