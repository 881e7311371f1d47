// The decoder-only Qwen2 graph with a KV cache, in the input/output names and shapes transformers.js's
// Qwen2ForCausalLM feeds (the layout optimum's "text-generation-with-past" export has):
//   input_ids [batch_size, sequence_length] int64, attention_mask [batch_size, total_sequence_length]
//   int64, position_ids [batch_size, sequence_length] int64, past_key_values.{i}.key|value
//   [batch_size, kv_heads, past_sequence_length, head_dim], num_logits_to_keep [] int64
//   → logits [batch_size, logits_length, vocab] float32, present.{i}.key|value
//   [batch_size, kv_heads, total_sequence_length, head_dim].
// num_logits_to_keep (as in transformers.js, which sets 1 while generating and 0 otherwise): the LM
// head runs on the last k positions only, all of them for 0 — at the real vocabulary the head over
// every prompt position would cost more than a quarter of the prefill.
// transformers.js builds the empty first-step cache from this input metadata (the symbol
// "batch_size" resolved, every other symbol 0), so the names of the symbolic dims matter.
// Standard ops only, plus SimplifiedLayerNormalization (onnxruntime's RMSNorm, registered in the
// default domain by every onnxruntime build, WASM and WebGPU included). Softmax runs in f32 in both
// variants (as HF's eager attention does), and logits are always f32. Browser-safe.

import type { Qwen2Config } from '../model/qwen2-config.ts';
import { GraphBuilder } from './graph-builder.ts';
import {
  DataType,
  ELEM_DATA_TYPE,
  valueInfo,
  type ElemType,
  type ModelProto,
  type TensorProto,
} from './proto.ts';

/** Precision variants, as transformers.js names its files: model.onnx and model_fp16.onnx. */
export type OnnxVariant = 'fp32' | 'fp16';
export const VARIANT_ELEM: Readonly<Record<OnnxVariant, ElemType>> = { fp32: 'float32', fp16: 'float16' };
export const VARIANT_FILE: Readonly<Record<OnnxVariant, string>> = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
};

/** One weight initializer: its ONNX name, the HF tensor it comes from, and whether it is transposed. */
export interface OnnxWeight {
  name: string;
  source: string;
  /** ONNX dims (after the transpose, if any). */
  dims: number[];
  /** HF linear weights are [out, in]; MatMul wants [in, out]. */
  transpose: boolean;
}

const LINEAR_WITH_BIAS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'] as const;
const LINEAR_NO_BIAS = ['self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'] as const;

/** Initializers of the graph, in file order. The embedding [V, C] is stored once even when tied. */
export function qwen2WeightPlan(c: Qwen2Config): OnnxWeight[] {
  const h = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  const out: OnnxWeight[] = [
    {
      name: 'model.embed_tokens.weight',
      source: 'model.embed_tokens.weight',
      dims: [c.vocabSize, h],
      transpose: false,
    },
  ];
  const outDim: Record<string, number> = {
    'self_attn.q_proj': h,
    'self_attn.k_proj': kv,
    'self_attn.v_proj': kv,
    'self_attn.o_proj': h,
    'mlp.gate_proj': c.intermediateSize,
    'mlp.up_proj': c.intermediateSize,
    'mlp.down_proj': h,
  };
  const inDim = (proj: string): number => (proj === 'mlp.down_proj' ? c.intermediateSize : h);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}.`;
    const plain = (name: string, dims: number[]): OnnxWeight => ({
      name: p + name,
      source: p + name,
      dims,
      transpose: false,
    });
    const linear = (proj: string): OnnxWeight => ({
      name: `${p}${proj}.weight_t`,
      source: `${p}${proj}.weight`,
      dims: [inDim(proj), outDim[proj]],
      transpose: true,
    });
    out.push(plain('input_layernorm.weight', [h]));
    for (const proj of LINEAR_WITH_BIAS) out.push(linear(proj), plain(`${proj}.bias`, [outDim[proj]]));
    for (const proj of LINEAR_NO_BIAS) out.push(linear(proj));
    out.push(plain('post_attention_layernorm.weight', [h]));
  }
  out.push({ name: 'model.norm.weight', source: 'model.norm.weight', dims: [h], transpose: false });
  if (!c.tieWordEmbeddings)
    out.push({ name: 'lm_head.weight', source: 'lm_head.weight', dims: [c.vocabSize, h], transpose: false });
  return out;
}

/** Name of the scalar input choosing how many trailing positions get logits (0 = all). */
export const LOGITS_TO_KEEP = 'num_logits_to_keep';
/** Slice's "to the end". */
const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** Most negative finite f32: the additive mask of disallowed keys (finite, so fully masked rows stay NaN-free). */
const F32_LOWEST = -3.4028234663852886e38;

/**
 * The whole model graph. `weights` are the initializers of `qwen2WeightPlan` (external data, in the
 * variant's element type).
 */
export function buildQwen2Graph(
  c: Qwen2Config,
  variant: OnnxVariant,
  weights: readonly TensorProto[],
  metadata: Record<string, string>,
): ModelProto {
  const elem = VARIANT_ELEM[variant];
  const g = new GraphBuilder();
  g.initializers.push(...weights);
  const H = c.numAttentionHeads;
  const KVH = c.numKeyValueHeads;
  const d = c.headDim;
  const C = c.hiddenSize;
  const nRep = H / KVH;
  const f32 = DataType.FLOAT;
  const toElem = ELEM_DATA_TYPE[elem];
  const castTo = (x: string, to: number, from: number): string =>
    to === from ? x : g.op('Cast', [x], { to });

  g.inputs.push(
    valueInfo('input_ids', 'int64', ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', 'int64', ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', 'int64', ['batch_size', 'sequence_length']),
  );
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const kind of ['key', 'value']) {
      g.inputs.push(
        valueInfo(`past_key_values.${i}.${kind}`, elem, ['batch_size', KVH, 'past_sequence_length', d]),
      );
    }
  }
  g.inputs.push(valueInfo(LOGITS_TO_KEEP, 'int64', []));
  g.outputs.push(valueInfo('logits', 'float32', ['batch_size', 'logits_length', c.vocabSize]));
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const kind of ['key', 'value']) {
      g.outputs.push(
        valueInfo(`present.${i}.${kind}`, elem, ['batch_size', KVH, 'total_sequence_length', d]),
      );
    }
  }

  // Additive attention bias [B, 1, S, T] (f32): key j is visible to query s when j <= P + s (causal
  // over cache slots, P = past length) and attention_mask[b, j] = 1 (padding).
  const bias = g.scoped('mask', () => {
    const S = g.op('Shape', ['input_ids'], { start: 1, end: 2 });
    const T = g.op('Shape', ['attention_mask'], { start: 1, end: 2 });
    const zero = g.int64([0], true);
    const one = g.int64([1], true);
    const Ts = g.op('Squeeze', [T, g.int64([0])]);
    const Ps = g.op('Squeeze', [g.op('Sub', [T, S]), g.int64([0])]);
    const keyPos = g.op('Range', [zero, Ts, one]);
    const queryPos = g.op('Range', [Ps, Ts, one]);
    const causal = g.op('LessOrEqual', [
      g.op('Unsqueeze', [keyPos, g.int64([0])]),
      g.op('Unsqueeze', [queryPos, g.int64([1])]),
    ]);
    const keep = g.op('Unsqueeze', [
      g.op('Cast', ['attention_mask'], { to: DataType.BOOL }),
      g.int64([1, 2]),
    ]);
    const allowed = g.op('And', [causal, keep]);
    return g.op('Where', [allowed, g.float(0, 'float32'), g.float(F32_LOWEST, 'float32')]);
  });

  // RoPE tables [B, 1, S, d] in the compute type, from position_ids (angles in f32, as HF does).
  const [cos, sin] = g.scoped('rotary', () => {
    const invFreq = new Float32Array(d / 2);
    for (let i = 0; i < d / 2; i++) invFreq[i] = 1 / Math.pow(c.ropeTheta, (2 * i) / d);
    const pos = g.op('Unsqueeze', [g.op('Cast', ['position_ids'], { to: f32 }), g.int64([-1])]);
    const freqs = g.op('Mul', [pos, g.float32Vector(`inv_freq:${d}:${c.ropeTheta}`, invFreq)]);
    const emb = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], { axis: -1 }), g.int64([1])]);
    return [castTo(g.op('Cos', [emb]), toElem, f32), castTo(g.op('Sin', [emb]), toElem, f32)];
  });
  const rope = (x: string): string => {
    const [x1, x2] = g.ops('Split', [x], { axis: -1 }, { outputs: 2 });
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
  const rmsnorm = (x: string, weight: string): string =>
    g.op('SimplifiedLayerNormalization', [x, weight], { axis: -1, epsilon: { float: c.rmsNormEps } });
  // [B, S, n·d] → [B, n, S, d]
  const heads = (x: string, n: number): string =>
    g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, n, d])])], { perm: [0, 2, 1, 3] });
  // [B, KVH, T, d] → [B, H, T, d]: each KV head serves nRep consecutive query heads (HF repeat_kv).
  const repeatKv = (x: string): string =>
    nRep === 1
      ? x
      : g.op('Reshape', [
          g.op('Expand', [g.op('Unsqueeze', [x, g.int64([2])]), g.int64([1, 1, nRep, 1, 1])]),
          g.int64([0, H, -1, d]),
        ]);

  let x = g.op('Gather', ['model.embed_tokens.weight', 'input_ids'], { axis: 0 });
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}.`;
    x = g.scoped(`layers.${i}`, () => {
      const linear = (input: string, proj: string, withBias: boolean): string => {
        const y = g.op('MatMul', [input, `${p}${proj}.weight_t`]);
        return withBias ? g.op('Add', [y, `${p}${proj}.bias`]) : y;
      };
      const xn = rmsnorm(x, `${p}input_layernorm.weight`);
      const q = rope(heads(linear(xn, 'self_attn.q_proj', true), H));
      const k = rope(heads(linear(xn, 'self_attn.k_proj', true), KVH));
      const v = heads(linear(xn, 'self_attn.v_proj', true), KVH);
      const presentK = g.op('Concat', [`past_key_values.${i}.key`, k], { axis: 2 }, `present.${i}.key`);
      const presentV = g.op('Concat', [`past_key_values.${i}.value`, v], { axis: 2 }, `present.${i}.value`);
      const kT = g.op('Transpose', [repeatKv(presentK)], { perm: [0, 1, 3, 2] });
      const scores = g.op('Mul', [
        castTo(g.op('MatMul', [q, kT]), f32, toElem),
        g.float(1 / Math.sqrt(d), 'float32'),
      ]);
      const probs = castTo(g.op('Softmax', [g.op('Add', [scores, bias])], { axis: -1 }), toElem, f32);
      const att = g.op('MatMul', [probs, repeatKv(presentV)]);
      const merged = g.op('Reshape', [g.op('Transpose', [att], { perm: [0, 2, 1, 3] }), g.int64([0, 0, C])]);
      const x2 = g.op('Add', [x, linear(merged, 'self_attn.o_proj', false)]);
      const xn2 = rmsnorm(x2, `${p}post_attention_layernorm.weight`);
      const gate = linear(xn2, 'mlp.gate_proj', false);
      const act = g.op('Mul', [
        g.op('Mul', [gate, g.op('Sigmoid', [gate])]),
        linear(xn2, 'mlp.up_proj', false),
      ]);
      return g.op('Add', [x2, linear(act, 'mlp.down_proj', false)]);
    });
  }
  g.scoped('lm_head', () => {
    // The last k positions (k = 0: all): Slice from −k to the end of the sequence axis.
    const start = g.op('Neg', [g.op('Unsqueeze', [LOGITS_TO_KEEP, g.int64([0])])]);
    const kept = g.op('Slice', [x, start, g.int64([INT64_MAX]), g.int64([1])]);
    const hidden = rmsnorm(kept, 'model.norm.weight');
    // Gemm with transB reads the [V, C] embedding as stored, so the tied head needs no second copy.
    const rows = g.op('Reshape', [hidden, g.int64([-1, C])]);
    const head = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    const logits = castTo(g.op('Gemm', [rows, head], { transB: 1 }), f32, toElem);
    const batchAndRows = g.op('Shape', [hidden], { start: 0, end: 2 });
    const shape = g.op('Concat', [batchAndRows, g.int64([c.vocabSize])], { axis: 0 });
    g.op('Reshape', [logits, shape], {}, 'logits');
  });
  return g.model('qwen2', 'tabzero', metadata);
}
