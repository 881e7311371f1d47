// Embedding gather: out[t, :] = table[ids[t] − rowStart, :] for the ids inside this table chunk.
// The 151,936 × 896 embedding exceeds default binding limits, so it lives in row chunks; one dispatch
// per chunk, each writing only the rows whose id falls inside it. With `shader-f16`, an f16 table is
// read as native f16 (the same bytes); the gather is exact on every path.
//
// The pipelined decode loop (engine.ts) keeps sampled ids on the GPU: with `sampled` given, row t's id
// is sampled[ids[t] · 3] — `ids` then holds, per row, its row in the previous step's sampler output
// (sample.ts: id, log-prob bits, log-prob bits per row).
//
// Reference: embedding (src/engine/reference/ops.ts).
// Tests: tests/gpu/forward-kernels.test.ts (embedding gather).
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import { enables, weightDecl, weightLoadFn, type WeightDType } from './weights-wgsl.ts';

const WG = 64;

function shader(dtype: WeightDType, nativeF16: boolean, fromSamples: boolean): string {
  return /* wgsl */ `${enables(nativeF16)}
struct Params { T: u32, C: u32, rowStart: u32, rowEnd: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
${weightDecl(2, 'table', dtype, 0, nativeF16)}
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${fromSamples ? '@group(0) @binding(4) var<storage, read> sampled: array<u32>;' : ''}
${weightLoadFn('loadW', 'table', dtype, nativeF16)}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x; let t = gid.y;
  if (c >= p.C || t >= p.T) { return; }
  let id = ${fromSamples ? 'sampled[ids[t] * 3u]' : 'ids[t]'};
  if (id < p.rowStart || id >= p.rowEnd) { return; }
  out[t * p.C + c] = loadW((id - p.rowStart) * p.C + c);
}`;
}

export interface EmbeddingArgs {
  ids: GPUBuffer;
  table: GPUBuffer;
  out: GPUBuffer;
  T: number;
  C: number;
  rowStart: number;
  rowEnd: number;
  /** The sampler's output: ids[t] is then a row of it (see the header). */
  sampled?: GPUBuffer;
}

export class EmbeddingKernel implements Kernel<EmbeddingArgs> {
  private readonly pipelines: [GPUComputePipeline, GPUComputePipeline];
  constructor(device: GPUDevice, dtype: WeightDType, features: ShaderFeatures = PORTABLE_SHADERS) {
    const nativeF16 = dtype === 'f16' && features.f16;
    const make = (fromSamples: boolean) =>
      computePipeline(
        device,
        shader(dtype, nativeF16, fromSamples),
        `embedding ${dtype}${nativeF16 ? ' native' : ''}${fromSamples ? ' from samples' : ''}`,
      );
    this.pipelines = [make(false), make(true)];
  }
  pipelineFor(a: EmbeddingArgs): GPUComputePipeline {
    return this.pipelines[a.sampled ? 1 : 0];
  }
  params(a: EmbeddingArgs): ArrayBuffer {
    return new Uint32Array([a.T, a.C, a.rowStart, a.rowEnd]).buffer;
  }
  buffers(a: EmbeddingArgs): GPUBuffer[] {
    return a.sampled ? [a.ids, a.table, a.out, a.sampled] : [a.ids, a.table, a.out];
  }
  workgroups(a: EmbeddingArgs): [number, number, number] {
    return [Math.ceil(a.C / WG), a.T, 1];
  }
}
