// Tiled matmul: out[M,N] = a[M,K] · b (+ bias), b stored [K,N] (NN) or [N,K] (NT: HF Linear weights).
// b (the weights) may be f32 or 16-bit (f16 / bf16 packed two per u32, unpacked in the shader; f32 math).
// The epilogue writes into a column window of a wider output (row stride `ldo`, column offset `colOff`:
// fused QKV / gate-up buffers, the LM head's vocabulary chunks) and can accumulate `out += alpha·acc`
// (LoRA's low-rank update).
// Each workgroup computes a 64×64 output tile from 64×16 / 16×64 tiles staged in workgroup memory;
// each of its 128 invocations (within compatibility mode's limit) accumulates 8×4 outputs in registers.
// The K loop runs in a fixed order for every row, so a row's result never depends on M (batch invariance).

import { weightDecl, weightLoadFn, type WeightDType } from './weights-wgsl.ts';

const TILE_M = 64;
const TILE_N = 64;
const TILE_K = 16;
const WG_X = 16; // columns of invocations → 4 outputs each
const WG_Y = 8; // rows of invocations → 8 outputs each

function shader(transposeB: boolean, withBias: boolean, wdtype: WeightDType): string {
  const loadB = transposeB
    ? // b[n, k]: tile element (k, n)
      `let gn = tileN + n; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = loadW(gn * p.K + gk); }`
    : `let gn = tileN + n; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = loadW(gk * p.N + gn); }`;
  return /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, ldo: u32, colOff: u32, accumulate: u32, alpha: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
${weightDecl(2, 'b', wdtype)}
${weightLoadFn('loadW', 'b', wdtype)}
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}

var<workgroup> As: array<f32, ${TILE_M * TILE_K}>; // [m][k]
var<workgroup> Bs: array<f32, ${TILE_K * TILE_N}>; // [k][n]

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileM = wg.y * ${TILE_M}u;
  let tileN = wg.x * ${TILE_N}u;
  var acc: array<array<f32, 4>, 8>;
  for (var k0 = 0u; k0 < p.K; k0 += ${TILE_K}u) {
    // ${TILE_M * TILE_K} elements per tile, ${WG_X * WG_Y} invocations → 8 loads each.
    for (var e = li; e < ${TILE_M * TILE_K}u; e += ${WG_X * WG_Y}u) {
      let m = e / ${TILE_K}u; let kk = e % ${TILE_K}u;
      let gm = tileM + m; let gk = k0 + kk;
      var v = 0.0; if (gm < p.M && gk < p.K) { v = a[gm * p.K + gk]; }
      As[m * ${TILE_K}u + kk] = v;
    }
    for (var e = li; e < ${TILE_K * TILE_N}u; e += ${WG_X * WG_Y}u) {
      let kk = e / ${TILE_N}u; let n = e % ${TILE_N}u;
      ${loadB}
      Bs[kk * ${TILE_N}u + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      var bv: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk * ${TILE_N}u + lid.x * 4u + j]; }
      for (var i = 0u; i < 8u; i++) {
        let av = As[(lid.y * 8u + i) * ${TILE_K}u + kk];
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let gm = tileM + lid.y * 8u + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = tileN + lid.x * 4u + j;
      if (gn < p.N) {
        let o = gm * p.ldo + p.colOff + gn;
        let v = p.alpha * acc[i][j]${withBias ? ' + bias[gn]' : ''};
        if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
      }
    }
  }
}`;
}

/** Where and how the result is written (defaults: a plain [M, N] output, overwritten, alpha 1). */
export interface MatmulEpilogue {
  /** Row stride of `out` in elements (default N). */
  ldo?: number;
  /** First column of `out` written (default 0). */
  colOff?: number;
  /** out += alpha·a·b instead of out = alpha·a·b (+ bias). */
  accumulate?: boolean;
  alpha?: number;
}

export interface MatmulArgs {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  bias?: GPUBuffer;
  M: number;
  N: number;
  K: number;
  /** A uniform buffer made by `makeParams` for these dims (create once, reuse every step). */
  params: GPUBuffer;
}

export const MATMUL_PARAMS_BYTES = 32;

/** Matmul arguments for the cached dispatch path (params come from the fields, not a buffer). */
export interface MatmulKernelArgs extends MatmulEpilogue {
  a: GPUBuffer;
  b: GPUBuffer;
  out: GPUBuffer;
  bias?: GPUBuffer;
  M: number;
  N: number;
  K: number;
}

export function matmulParamsData(
  M: number,
  N: number,
  K: number,
  epilogue: MatmulEpilogue = {},
): ArrayBuffer {
  const data = new ArrayBuffer(MATMUL_PARAMS_BYTES);
  const u = new Uint32Array(data);
  u.set([M, N, K, epilogue.ldo ?? N, epilogue.colOff ?? 0, epilogue.accumulate ? 1 : 0]);
  new Float32Array(data)[6] = epilogue.alpha ?? 1;
  return data;
}

/** (Re)writes a matmul uniform buffer: lets a pooled params buffer follow a changing row count M. */
export function writeMatmulParams(
  device: GPUDevice,
  buf: GPUBuffer,
  M: number,
  N: number,
  K: number,
  epilogue: MatmulEpilogue = {},
  offset = 0,
): void {
  device.queue.writeBuffer(buf, offset, matmulParamsData(M, N, K, epilogue));
}

export class MatmulKernel {
  private readonly pipelines = new Map<boolean, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    readonly transposeB: boolean,
    /** Element type of `b` (the weights): f32, or f16 / bf16 packed two per u32. */
    readonly weightDType: WeightDType = 'f32',
  ) {}

  /**
   * The with/without-bias pipeline, compiled on first use: software adapters spend seconds per
   * shader, and most call sites only ever need one of the two.
   */
  private pipeline(withBias: boolean): GPUComputePipeline {
    let p = this.pipelines.get(withBias);
    if (!p) {
      const module = this.device.createShaderModule({
        code: shader(this.transposeB, withBias, this.weightDType),
        label: `matmul ${this.transposeB ? 'NT' : 'NN'} ${this.weightDType}`,
      });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(withBias, p);
    }
    return p;
  }

  makeParams(M: number, N: number, K: number, epilogue: MatmulEpilogue = {}): GPUBuffer {
    const buf = this.device.createBuffer({
      size: MATMUL_PARAMS_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'matmul params',
    });
    writeMatmulParams(this.device, buf, M, N, K, epilogue);
    return buf;
  }

  // The Kernel interface (src/engine/dispatch.ts): cached params + bind groups for the hot paths.
  pipelineFor(args: MatmulKernelArgs): GPUComputePipeline {
    return this.pipeline(Boolean(args.bias));
  }

  params(args: MatmulKernelArgs): ArrayBuffer {
    return matmulParamsData(args.M, args.N, args.K, args);
  }

  buffers(args: MatmulKernelArgs): GPUBuffer[] {
    return args.bias ? [args.a, args.b, args.out, args.bias] : [args.a, args.b, args.out];
  }

  workgroups(args: MatmulKernelArgs): [number, number, number] {
    return [Math.ceil(args.N / TILE_N), Math.ceil(args.M / TILE_M), 1];
  }

  encode(pass: GPUComputePassEncoder, args: MatmulArgs): void {
    const pipeline = this.pipeline(Boolean(args.bias));
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: args.params } },
      { binding: 1, resource: { buffer: args.a } },
      { binding: 2, resource: { buffer: args.b } },
      { binding: 3, resource: { buffer: args.out } },
    ];
    if (args.bias) entries.push({ binding: 4, resource: { buffer: args.bias } });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });

    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(args.N / TILE_N), Math.ceil(args.M / TILE_M));
  }

  /** FLOPs of one call (2·M·N·K), for FLOP/s reporting. */
  static flops(M: number, N: number, K: number): number {
    return 2 * M * N * K;
  }
}
