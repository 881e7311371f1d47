// Fills a weight buffer with seeded uniform values (center ± spread) on the GPU: the bench's random
// weights of the real shape, without generating ~1 GB on the CPU. f32, or f16 / bf16 packed in u32.
//
// Reference: none (the values are random by design: nothing is compared with them).
// Tests: none; only the bench runs it (`tabzero bench --shape qwen2-0.5b`, Qwen2Weights.random).
import { computePipeline, type Kernel } from '../dispatch.ts';
import type { WeightDType } from './weights-wgsl.ts';

const WG = 256;
/** Words per row of the 2-D dispatch grid (keeps each dimension under 65,535 workgroups). */
const WORDS_PER_ROW = WG * 1024;

function shader(dtype: WeightDType): string {
  const value = (idx: string) => `p.center + p.spread * (2.0 * uniform01(p.seed, ${idx}) - 1.0)`;
  const word =
    dtype === 'f32'
      ? `bitcast<u32>(${value('i')})`
      : dtype === 'f16'
        ? `pack2x16float(vec2<f32>(${value('2u * i')}, ${value('2u * i + 1u')}))`
        : `(bitcast<u32>(${value('2u * i')}) >> 16u) | (bitcast<u32>(${value('2u * i + 1u')}) & 0xffff0000u)`;
  return /* wgsl */ `
struct Params { words: u32, seed: u32, center: f32, spread: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

fn hash(a: u32) -> u32 {
  var x = a;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn uniform01(seed: u32, i: u32) -> f32 { return (f32(hash(seed ^ hash(i)) >> 8u) + 0.5) / 16777216.0; }

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * ${WORDS_PER_ROW}u;
  if (i >= p.words) { return; }
  out[i] = ${word};
}`;
}

export interface FillArgs {
  out: GPUBuffer;
  /** u32 words to write. */
  words: number;
  seed: number;
  center: number;
  spread: number;
}

export class FillKernel implements Kernel<FillArgs> {
  private readonly pipeline: GPUComputePipeline;
  constructor(device: GPUDevice, dtype: WeightDType) {
    this.pipeline = computePipeline(device, shader(dtype), `fill ${dtype}`);
  }
  pipelineFor(): GPUComputePipeline {
    return this.pipeline;
  }
  params(a: FillArgs): ArrayBuffer {
    const buf = new ArrayBuffer(16);
    new Uint32Array(buf).set([a.words, a.seed >>> 0]);
    new Float32Array(buf).set([a.center, a.spread], 2);
    return buf;
  }
  buffers(a: FillArgs): GPUBuffer[] {
    return [a.out];
  }
  workgroups(a: FillArgs): [number, number, number] {
    const rows = Math.ceil(a.words / WORDS_PER_ROW);
    return [rows > 1 ? WORDS_PER_ROW / WG : Math.ceil(a.words / WG), rows, 1];
  }
}
