// Reference backward of the whole Qwen2 forward (qwen2.ts) from a gradient on the final hidden
// states, and the full policy-gradient gradient of a (micro-)batch: forward → completion-row LM head →
// spec 4.7 loss → backward. Produces LoRA A/B gradients and, optionally, every base weight's gradient.

import { allocLike, type FloatArray } from './ops.ts';
import {
  attentionBackward,
  embeddingBackward,
  linearBackward,
  residualBackward,
  rmsnormBackward,
  ropeBackward,
  swigluBackward,
} from './ops-backward.ts';
import { policyGradientLoss, type PgLossOptions, type PgSequence } from './loss.ts';
import {
  completionRows,
  lmHead,
  lmHeadWeight,
  qwen2Forward,
  weight,
  type ForwardTape,
  type PromptCompletion,
  type RefModelConfig,
  type RefWeights,
} from './qwen2.ts';
import { moduleName, type Projection, type HostLora } from '../../model/lora.ts';

export interface LoraGrad {
  dA: FloatArray;
  dB: FloatArray;
}

export interface RefGrads {
  /** By module name, like HostLora. */
  lora: Record<string, LoraGrad>;
  /** By HF tensor name; null unless asked for (full fine-tuning). */
  weights: RefWeights | null;
}

export function zeroGrads(w: RefWeights, lora: HostLora | null, withWeights: boolean): RefGrads {
  const g: RefGrads = { lora: {}, weights: null };
  for (const [name, p] of Object.entries(lora ?? {})) {
    g.lora[name] = { dA: allocLike(p.A, p.A.length), dB: allocLike(p.B, p.B.length) };
  }
  if (withWeights) {
    g.weights = {};
    for (const [name, t] of Object.entries(w)) g.weights[name] = allocLike(t, t.length);
  }
  return g;
}

/**
 * Adds dL/dhidden (at the given rows) to `dHidden` and dL/dWlm to the grads from logits gradients:
 * dhidden[row] += dlogits·Wlm, dWlm += dlogitsᵀ·hidden[row].
 */
export function lmHeadBackward(
  cfg: RefModelConfig,
  w: RefWeights,
  grads: RefGrads,
  dHidden: FloatArray,
  hidden: FloatArray,
  rows: readonly number[],
  dlogits: FloatArray,
): void {
  const C = cfg.hiddenSize;
  const V = cfg.vocabSize;
  const Wlm = lmHeadWeight(cfg, w);
  const dWlm = grads.weights
    ? grads.weights[cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight']
    : null;
  rows.forEach((r, i) => {
    linearBackward(
      { dx: dHidden.subarray(r * C, (r + 1) * C), dW: dWlm, dbias: null },
      dlogits.subarray(i * V, (i + 1) * V),
      hidden.subarray(r * C, (r + 1) * C),
      Wlm,
      1,
      V,
      C,
    );
  });
}

/** Backpropagates dL/dhidden (final-normed hidden states, [T, C]) through the model into `grads`. */
export function qwen2Backward(
  cfg: RefModelConfig,
  w: RefWeights,
  tape: ForwardTape,
  dHidden: FloatArray,
  lora: HostLora | null,
  grads: RefGrads,
): void {
  const { T, offsets, positions } = tape;
  const C = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const d = cfg.headDim;
  const Ckv = cfg.numKeyValueHeads * d;
  const gw = grads.weights;
  const like = dHidden;
  const shape = { nHeads: cfg.numAttentionHeads, nKvHeads: cfg.numKeyValueHeads, headDim: d };
  // dx: gradient on the residual stream flowing down.
  let dx = allocLike(like, T * C);
  rmsnormBackward(
    dx,
    gw?.['model.norm.weight'] ?? null,
    dHidden,
    tape.xFinal,
    weight(w, 'model.norm.weight'),
    tape.rstdFinal,
    T,
    C,
  );
  for (let l = cfg.numHiddenLayers - 1; l >= 0; l--) {
    const L = tape.layers[l];
    const p = `model.layers.${l}.`;
    const projBack = (
      dIn: FloatArray,
      dOut: FloatArray,
      input: FloatArray,
      name: Projection,
      N: number,
      K: number,
      bias: boolean,
    ) => {
      const mod = moduleName(l, name);
      const pair = lora?.[mod] ?? null;
      linearBackward(
        {
          dx: dIn,
          dW: gw?.[`${p}${name}.weight`] ?? null,
          dbias: bias ? (gw?.[`${p}${name}.bias`] ?? null) : null,
          dA: grads.lora[mod]?.dA ?? null,
          dB: grads.lora[mod]?.dB ?? null,
        },
        dOut,
        input,
        weight(w, `${p}${name}.weight`),
        T,
        N,
        K,
        pair,
        L.loraHidden[name] ?? null,
      );
    };
    // x3 = x2 + down(act): dx2 = dx3, ddown = dx3.
    const dx2 = allocLike(like, T * C);
    const dDown = allocLike(like, T * C);
    residualBackward(dx2, dDown, dx, T * C);
    const dAct = allocLike(like, T * I);
    projBack(dAct, dDown, L.act, 'mlp.down_proj', C, I, false);
    const dGate = allocLike(like, T * I);
    const dUp = allocLike(like, T * I);
    swigluBackward(dGate, dUp, dAct, L.gate, L.up, T * I);
    const dxn2 = allocLike(like, T * C);
    projBack(dxn2, dGate, L.xn2, 'mlp.gate_proj', I, C, false);
    projBack(dxn2, dUp, L.xn2, 'mlp.up_proj', I, C, false);
    rmsnormBackward(
      dx2,
      gw?.[`${p}post_attention_layernorm.weight`] ?? null,
      dxn2,
      L.x2,
      weight(w, `${p}post_attention_layernorm.weight`),
      L.rstd2,
      T,
      C,
    );
    // x2 = x + o(att): dx = dx2, do = dx2.
    const dxIn = allocLike(like, T * C);
    const dO = allocLike(like, T * C);
    residualBackward(dxIn, dO, dx2, T * C);
    const dAtt = allocLike(like, T * C);
    projBack(dAtt, dO, L.att, 'self_attn.o_proj', C, C, false);
    const dq = allocLike(like, T * C);
    const dk = allocLike(like, T * Ckv);
    const dv = allocLike(like, T * Ckv);
    attentionBackward(dq, dk, dv, dAtt, L.q, L.k, L.v, L.probs, offsets, shape);
    ropeBackward(dq, positions, T, cfg.numAttentionHeads, d, cfg.ropeTheta);
    ropeBackward(dk, positions, T, cfg.numKeyValueHeads, d, cfg.ropeTheta);
    const dxn1 = allocLike(like, T * C);
    projBack(dxn1, dq, L.xn1, 'self_attn.q_proj', C, C, true);
    projBack(dxn1, dk, L.xn1, 'self_attn.k_proj', Ckv, C, true);
    projBack(dxn1, dv, L.xn1, 'self_attn.v_proj', Ckv, C, true);
    rmsnormBackward(
      dxIn,
      gw?.[`${p}input_layernorm.weight`] ?? null,
      dxn1,
      L.x,
      weight(w, `${p}input_layernorm.weight`),
      L.rstd1,
      T,
      C,
    );
    dx = dxIn;
  }
  if (gw) embeddingBackward(gw['model.embed_tokens.weight'], dx, tape.ids, C);
}

/** One sequence of a policy-gradient batch (policy.ts's TrainSequence, minus the role). */
export type PgBatchSequence = PromptCompletion & PgSequence;

export interface PgGradResult {
  loss: number;
  grads: RefGrads;
  /** logπ of each completion token, one array per sequence. */
  logprobs: FloatArray[];
  tokens: number;
  entropySum: number;
  klSum: number;
}

/**
 * The spec 4.7 loss and its gradient for a (micro-)batch, accumulated into `grads` when given.
 * `opts.totalTokens` is the global completion-token count (defaults to this batch's own).
 */
export function qwen2PolicyGradient(
  cfg: RefModelConfig,
  w: RefWeights,
  lora: HostLora | null,
  batch: readonly PgBatchSequence[],
  opts: Omit<PgLossOptions, 'totalTokens'> & {
    totalTokens?: number;
    weightGrads?: boolean;
    grads?: RefGrads;
  },
): PgGradResult {
  const { seqs, rows, targets, tokenOffsets } = completionRows(batch);
  const tape = qwen2Forward(cfg, w, seqs, lora);
  const logits = lmHead(cfg, w, tape.hidden, rows);
  const totalTokens = opts.totalTokens ?? rows.length;
  const res = policyGradientLoss(logits, targets, tokenOffsets, batch, cfg.vocabSize, {
    ...opts,
    totalTokens,
  });
  const grads = opts.grads ?? zeroGrads(w, lora, opts.weightGrads ?? false);
  const dHidden = allocLike(tape.hidden, tape.hidden.length);
  lmHeadBackward(cfg, w, grads, dHidden, tape.hidden, rows, res.dlogits);
  qwen2Backward(cfg, w, tape, dHidden, lora, grads);
  return {
    loss: res.loss,
    grads,
    logprobs: batch.map((_, j) => res.logprobs.slice(tokenOffsets[j], tokenOffsets[j + 1])),
    tokens: rows.length,
    entropySum: res.entropySum,
    klSum: res.klSum,
  };
}
