// out = a + b over n floats (the training step materialises a layer's input x + proj, which the
// forward only forms inside its fused residual norm).
//
// Reference: residualAdd (src/engine/reference/ops.ts).
// Tests: tests/gpu/train-grads.test.ts and tests/gpu/train-full.test.ts (the training step's layer inputs);
//   no kernel-level test of its own.
import { computePipeline, type Kernel } from '../dispatch.ts';

const WG = 256;

const SHADER = /* wgsl */ `
struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i < p.n) { out[i] = a[i] + b[i]; }
}`;

export interface ResidualAddArgs {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  n: number;
}

export class ResidualAddKernel implements Kernel<ResidualAddArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice) {
    this.pipeline = computePipeline(device, SHADER, 'residual add');
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: ResidualAddArgs): ArrayBuffer {
    return new Uint32Array([a.n, 0, 0, 0]).buffer;
  }
  buffers(a: ResidualAddArgs): GPUBuffer[] {
    return [a.a, a.b, a.out];
  }
  workgroups(a: ResidualAddArgs): [number, number, number] {
    const groups = Math.ceil(a.n / WG);
    return groups <= 65535 ? [groups, 1, 1] : [65535, Math.ceil(groups / 65535), 1];
  }
}
