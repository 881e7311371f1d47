// Causal GQA attention for prefill, teacher-forced log-probs and the training forward (many query rows
// per pass): query row t (slot, pos) attends to cache[slot, 0..pos], query head h reads KV head
// h / (nH / nKv), the cache f32 or f16 (packed pairs in u32 words; f32 arithmetic).
//   'gpu' adapters: the decode kernel itself (attention-decode.ts: one workgroup per (query head, row),
//     keys 64 at a time with an online softmax).
//   'cpu' adapters (lavapipe, SwiftShader; ShaderFeatures.adapterKind): one invocation per (row, head),
//     consecutive invocations the consecutive rows of one head, so the lanes of a SIMD vector walk the
//     same keys together. Each invocation keeps q and its output in registers (head_dim is compiled in,
//     the loops over it unrolled) and runs the online softmax over its keys alone: no workgroup memory,
//     no barriers, one exponential per key (plus one per new maximum).
// Either way every sum runs in a fixed order that depends only on the row: a row's result never
// depends on the other rows of the batch. The T×T score matrix is never stored.
// Backward: attention-backward.ts.
//
// Reference: attention (src/engine/reference/ops.ts).
// Tests: tests/gpu/forward-kernels.test.ts (rope + KV cache + attention, both adapter kinds); in the
//   whole model tests/gpu/qwen2-forward.test.ts, tests/gpu/train-grads.test.ts.
import { computePipeline, type Kernel } from '../dispatch.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../gpu.ts';
import {
  DecodeAttentionKernel,
  MAX_HEAD_DIM,
  attentionParams,
  type AttentionArgs,
} from './attention-decode.ts';
import type { KvDType } from './rope-kv.ts';

export type { AttentionArgs } from './attention-decode.ts';

/** Invocations per workgroup of the per-row ('cpu') kernel: consecutive rows of one head. */
const ROWS_PER_GROUP = 64;

function perRowShader(kv: KvDType, D: number): string {
  const elem = kv === 'f32' ? 'f32' : 'u32';
  // f16 caches: two dimensions per word (D is even; a head's slice starts on a word boundary).
  const pairs = (buf: string, base: string, body: (c: number, v: string) => string) => {
    const lines: string[] = [];
    if (kv === 'f32') for (let c = 0; c < D; c++) lines.push(body(c, `${buf}[${base} + ${c}u]`));
    else
      for (let c = 0; c < D; c += 2) {
        lines.push(`{ let w = unpack2x16float(${buf}[(${base} + ${c}u) >> 1u]);`);
        lines.push(body(c, 'w.x'), body(c + 1, 'w.y'), '}');
      }
    return lines.join('\n      ');
  };
  const qLoad = Array.from({ length: D }, (_, c) => `qv[${c}] = q[qBase + ${c}u] * p.scale;`).join('\n  ');
  const store = Array.from({ length: D }, (_, c) => `out[qBase + ${c}u] = acc[${c}] * inv;`).join('\n  ');
  return /* wgsl */ `
struct Params { T: u32, nH: u32, nKv: u32, D: u32, maxLen: u32, scale: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kCache: array<${elem}>;
@group(0) @binding(4) var<storage, read> vCache: array<${elem}>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${ROWS_PER_GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = wg.x * ${ROWS_PER_GROUP}u + li;
  let h = wg.y;
  if (t >= p.T) { return; }
  let row = rows[t];
  let kh = h / (p.nH / p.nKv);
  let qBase = t * p.nH * ${D}u + h * ${D}u;
  var qv = array<f32, ${D}>();
  ${qLoad}
  var acc = array<f32, ${D}>();
  var m = -3.0e38;
  var l = 0.0;
  let stride = p.nKv * ${D}u;
  let seqBase = row.x * p.maxLen * stride + kh * ${D}u;
  for (var j = 0u; j <= row.y; j++) {
    let kb = seqBase + j * stride;
    var s = 0.0;
    ${pairs('kCache', 'kb', (c, v) => `s = fma(qv[${c}], ${v}, s);`)}
    if (s > m) {
      let corr = exp(m - s);
      l *= corr;
      ${Array.from({ length: D }, (_, c) => `acc[${c}] *= corr;`).join(' ')}
      m = s;
    }
    let e = exp(s - m);
    l += e;
    ${pairs('vCache', 'kb', (c, v) => `acc[${c}] = fma(e, ${v}, acc[${c}]);`)}
  }
  let inv = 1.0 / l;
  ${store}
}`;
}

export class PrefillAttentionKernel implements Kernel<AttentionArgs> {
  private readonly gpu: DecodeAttentionKernel | null;
  private readonly perRow = new Map<number, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    readonly kvDType: KvDType = 'f32',
    features: ShaderFeatures = PORTABLE_SHADERS,
  ) {
    this.gpu = features.adapterKind === 'cpu' ? null : new DecodeAttentionKernel(device, kvDType, features);
  }

  /** The per-row pipeline for head_dim D (compiled in), on first use. */
  pipelineFor(a: AttentionArgs): GPUComputePipeline {
    if (this.gpu) return this.gpu.pipelineFor();
    let p = this.perRow.get(a.D);
    if (!p) {
      p = computePipeline(
        this.device,
        perRowShader(this.kvDType, a.D),
        `prefill attention ${this.kvDType} D${a.D}`,
      );
      this.perRow.set(a.D, p);
    }
    return p;
  }

  params(a: AttentionArgs): ArrayBuffer {
    if (this.gpu) return this.gpu.params(a);
    if (a.D > MAX_HEAD_DIM || a.D % 2)
      throw new Error(`head_dim ${a.D} is not supported (even, ≤ ${MAX_HEAD_DIM})`);
    return attentionParams(a);
  }

  buffers(a: AttentionArgs): GPUBuffer[] {
    return [a.q, a.rows, a.kCache, a.vCache, a.out];
  }

  workgroups(a: AttentionArgs): [number, number, number] {
    if (this.gpu) return this.gpu.workgroups(a);
    return [Math.ceil(a.T / ROWS_PER_GROUP), a.nH, 1];
  }
}
