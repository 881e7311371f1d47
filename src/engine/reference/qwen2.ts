// Reference Qwen2 forward over a packed batch (HF modeling_qwen2 semantics): embedding → per layer
// [RMSNorm → q/k/v (bias) → RoPE → causal GQA attention → o_proj → residual → RMSNorm → gate/up →
// SwiGLU → down → residual] → final RMSNorm → tied (or separate) LM head. Optional LoRA on any of the
// seven projections. The forward keeps every activation in a tape that `qwen2Backward` consumes.

import {
  allocLike,
  attention,
  attentionProbOffsets,
  chosenLogprobs,
  embedding,
  linear,
  residualAdd,
  rmsnorm,
  rope,
  swiglu,
  type FloatArray,
} from './ops.ts';
import { moduleName, type HostLora, type Projection } from '../../model/lora.ts';
import type { Qwen2Config } from '../../model/qwen2-config.ts';

/** The config fields the forward needs (model/qwen2-config's, the same names). */
export type RefModelConfig = Pick<
  Qwen2Config,
  | 'hiddenSize'
  | 'numHiddenLayers'
  | 'numAttentionHeads'
  | 'numKeyValueHeads'
  | 'intermediateSize'
  | 'vocabSize'
  | 'headDim'
  | 'ropeTheta'
  | 'rmsNormEps'
  | 'tieWordEmbeddings'
>;

/** Weights by HF tensor name (`model.layers.0.self_attn.q_proj.weight`, ...), all the same precision. */
export type RefWeights = Record<string, FloatArray>;

/** One sequence of the batch; positions default to 0, 1, ..., ids.length − 1. */
export interface RefSequence {
  ids: readonly number[];
  positions?: readonly number[];
}

/** Everything one layer computed (inputs of each op), kept for the backward. */
export interface LayerTape {
  /** Layer input (residual stream) [T, C]. */
  x: FloatArray;
  xn1: FloatArray;
  rstd1: FloatArray;
  /** q, k after bias and RoPE. */
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  probs: FloatArray;
  /** Attention output before o_proj [T, C]. */
  att: FloatArray;
  /** Residual stream after attention [T, C]. */
  x2: FloatArray;
  xn2: FloatArray;
  rstd2: FloatArray;
  gate: FloatArray;
  up: FloatArray;
  /** silu(gate)·up [T, I]. */
  act: FloatArray;
  /** x·Aᵀ per LoRA'd projection of this layer. */
  loraHidden: Partial<Record<Projection, FloatArray>>;
}

export interface ForwardTape {
  T: number;
  offsets: number[];
  ids: number[];
  positions: number[];
  layers: LayerTape[];
  /** Residual stream after the last layer (input of the final norm) [T, C]. */
  xFinal: FloatArray;
  rstdFinal: FloatArray;
  /** Final-normed hidden states [T, C]: what the LM head reads. */
  hidden: FloatArray;
}

export function weight(w: RefWeights, name: string): FloatArray {
  const t = w[name];
  if (!t) throw new Error(`reference model: missing tensor ${name}`);
  return t;
}

/** The LM head matrix [V, C]: the embedding when tied (Qwen2-0.5B), else lm_head.weight. */
export function lmHeadWeight(cfg: RefModelConfig, w: RefWeights): FloatArray {
  return cfg.tieWordEmbeddings ? weight(w, 'model.embed_tokens.weight') : weight(w, 'lm_head.weight');
}

/** Packs sequences: row offsets, concatenated ids and positions. */
export function packSequences(seqs: readonly RefSequence[]): {
  offsets: number[];
  ids: number[];
  positions: number[];
} {
  const offsets = [0];
  const ids: number[] = [];
  const positions: number[] = [];
  for (const s of seqs) {
    if (s.positions && s.positions.length !== s.ids.length)
      throw new Error('positions and ids differ in length');
    s.ids.forEach((id, i) => {
      ids.push(id);
      positions.push(s.positions ? s.positions[i] : i);
    });
    offsets.push(ids.length);
  }
  return { offsets, ids, positions };
}

/** Whole-model forward to the final-normed hidden states, keeping the tape for the backward. */
export function qwen2Forward(
  cfg: RefModelConfig,
  w: RefWeights,
  seqs: readonly RefSequence[],
  lora: HostLora | null = null,
): ForwardTape {
  const { offsets, ids, positions } = packSequences(seqs);
  const T = ids.length;
  const C = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const d = cfg.headDim;
  const Ckv = cfg.numKeyValueHeads * d;
  const wte = weight(w, 'model.embed_tokens.weight');
  const like = wte;
  let x = allocLike(like, T * C);
  embedding(x, wte, ids, C);
  const layers: LayerTape[] = [];
  const shape = { nHeads: cfg.numAttentionHeads, nKvHeads: cfg.numKeyValueHeads, headDim: d };
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    const loraHidden: LayerTape['loraHidden'] = {};
    const proj = (
      out: FloatArray,
      input: FloatArray,
      name: Projection,
      N: number,
      K: number,
      bias: boolean,
    ) => {
      const pair = lora?.[moduleName(l, name)] ?? null;
      const h = pair ? allocLike(like, T * pair.rank) : null;
      if (h) loraHidden[name] = h;
      linear(
        out,
        input,
        weight(w, `${p}${name}.weight`),
        bias ? weight(w, `${p}${name}.bias`) : null,
        T,
        N,
        K,
        pair,
        h,
      );
    };
    const xn1 = allocLike(like, T * C);
    const rstd1 = allocLike(like, T);
    rmsnorm(xn1, rstd1, x, weight(w, `${p}input_layernorm.weight`), T, C, cfg.rmsNormEps);
    const q = allocLike(like, T * C);
    const k = allocLike(like, T * Ckv);
    const v = allocLike(like, T * Ckv);
    proj(q, xn1, 'self_attn.q_proj', C, C, true);
    proj(k, xn1, 'self_attn.k_proj', Ckv, C, true);
    proj(v, xn1, 'self_attn.v_proj', Ckv, C, true);
    rope(q, positions, T, cfg.numAttentionHeads, d, cfg.ropeTheta);
    rope(k, positions, T, cfg.numKeyValueHeads, d, cfg.ropeTheta);
    const probs = allocLike(like, attentionProbOffsets(offsets, cfg.numAttentionHeads)[offsets.length - 1]);
    const att = allocLike(like, T * C);
    attention(att, q, k, v, offsets, shape, probs);
    const o = allocLike(like, T * C);
    proj(o, att, 'self_attn.o_proj', C, C, false);
    const x2 = allocLike(like, T * C);
    residualAdd(x2, x, o, T * C);
    const xn2 = allocLike(like, T * C);
    const rstd2 = allocLike(like, T);
    rmsnorm(xn2, rstd2, x2, weight(w, `${p}post_attention_layernorm.weight`), T, C, cfg.rmsNormEps);
    const gate = allocLike(like, T * I);
    const up = allocLike(like, T * I);
    proj(gate, xn2, 'mlp.gate_proj', I, C, false);
    proj(up, xn2, 'mlp.up_proj', I, C, false);
    const act = allocLike(like, T * I);
    swiglu(act, gate, up, T * I);
    const down = allocLike(like, T * C);
    proj(down, act, 'mlp.down_proj', C, I, false);
    const x3 = allocLike(like, T * C);
    residualAdd(x3, x2, down, T * C);
    layers.push({ x, xn1, rstd1, q, k, v, probs, att, x2, xn2, rstd2, gate, up, act, loraHidden });
    x = x3;
  }
  const hidden = allocLike(like, T * C);
  const rstdFinal = allocLike(like, T);
  rmsnorm(hidden, rstdFinal, x, weight(w, 'model.norm.weight'), T, C, cfg.rmsNormEps);
  return { T, offsets, ids, positions, layers, xFinal: x, rstdFinal, hidden };
}

/** Logits [rows.length, V] of the given packed rows of `hidden` (the LM head runs only there). */
export function lmHead(
  cfg: RefModelConfig,
  w: RefWeights,
  hidden: FloatArray,
  rows: readonly number[],
): FloatArray {
  const C = cfg.hiddenSize;
  const V = cfg.vocabSize;
  const x = allocLike(hidden, rows.length * C);
  rows.forEach((r, i) => x.set(hidden.subarray(r * C, (r + 1) * C), i * C));
  const logits = allocLike(hidden, rows.length * V);
  linear(logits, x, lmHeadWeight(cfg, w), null, rows.length, V, C);
  return logits;
}

/** Full logits [T, V] of every position of every sequence (packed rows). */
export function qwen2Logits(
  cfg: RefModelConfig,
  w: RefWeights,
  seqs: readonly RefSequence[],
  lora: HostLora | null = null,
): { logits: FloatArray; offsets: number[] } {
  const tape = qwen2Forward(cfg, w, seqs, lora);
  const rows = Array.from({ length: tape.T }, (_, i) => i);
  return { logits: lmHead(cfg, w, tape.hidden, rows), offsets: tape.offsets };
}

/** A prompt and the completion scored after it (training and teacher-forced logprobs). */
export interface PromptCompletion {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/**
 * The packed forward input of prompt+completion pairs (the last completion token is never an input)
 * and, per completion token, the row whose logits predict it.
 */
export function completionRows(batch: readonly PromptCompletion[]): {
  seqs: RefSequence[];
  rows: number[];
  targets: number[];
  /** Start of each sequence's completion tokens in `rows` (length batch.length + 1). */
  tokenOffsets: number[];
} {
  const seqs: RefSequence[] = [];
  const rows: number[] = [];
  const targets: number[] = [];
  const tokenOffsets = [0];
  let base = 0;
  for (const b of batch) {
    if (b.promptIds.length === 0) throw new Error('every sequence needs at least one prompt token');
    const ids = [...b.promptIds, ...b.completionIds.slice(0, Math.max(0, b.completionIds.length - 1))];
    seqs.push({ ids });
    b.completionIds.forEach((tok, t) => {
      rows.push(base + b.promptIds.length - 1 + t);
      targets.push(tok);
    });
    tokenOffsets.push(rows.length);
    base += ids.length;
  }
  return { seqs, rows, targets, tokenOffsets };
}

/** Teacher-forced log p(completion token | prefix), one array per sequence (reference for `logprobs`). */
export function qwen2CompletionLogprobs(
  cfg: RefModelConfig,
  w: RefWeights,
  batch: readonly PromptCompletion[],
  lora: HostLora | null = null,
  temperature = 1,
): FloatArray[] {
  const { seqs, rows, targets, tokenOffsets } = completionRows(batch);
  const tape = qwen2Forward(cfg, w, seqs, lora);
  const logits = lmHead(cfg, w, tape.hidden, rows);
  if (temperature !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  const lp = allocLike(logits, rows.length);
  chosenLogprobs(lp, logits, targets, rows.length, cfg.vocabSize);
  return batch.map((_, j) => lp.slice(tokenOffsets[j], tokenOffsets[j + 1]));
}
