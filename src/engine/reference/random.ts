// Deterministic random Qwen2 weights and LoRA pairs for tests (f32 or f64), by HF tensor name.
// Scales follow model/tiny-model's reasoning: 1/sqrt(fan_in) weights keep activations O(1).

import {
  moduleName,
  projectionShape,
  PROJECTIONS,
  type HostLora,
  type Projection,
} from '../../model/lora.ts';
import { uniformSource } from '../../random.ts';
import type { FloatArray } from './ops.ts';
import type { RefModelConfig, RefWeights } from './qwen2.ts';

export type RefDType = 'f32' | 'f64';

export function allocFloat(dtype: RefDType, n: number): FloatArray {
  return dtype === 'f64' ? new Float64Array(n) : new Float32Array(n);
}

function filled(dtype: RefDType, n: number, next: () => number, scale: number, offset = 0): FloatArray {
  const a = allocFloat(dtype, n);
  for (let i = 0; i < n; i++) a[i] = offset + scale * next();
  return a;
}

/** Every tensor of a Qwen2 model with random values (norm weights 1 ± 0.25, biases ± 0.1). */
export function randomRefWeights(cfg: RefModelConfig, seed: number, dtype: RefDType = 'f32'): RefWeights {
  const next = uniformSource(seed);
  const C = cfg.hiddenSize;
  const w: RefWeights = {};
  w['model.embed_tokens.weight'] = filled(dtype, cfg.vocabSize * C, next, (1 / Math.sqrt(C)) * Math.sqrt(3));
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    w[`${p}input_layernorm.weight`] = filled(dtype, C, next, 0.25, 1);
    w[`${p}post_attention_layernorm.weight`] = filled(dtype, C, next, 0.25, 1);
    for (const proj of PROJECTIONS) {
      const [out, inp] = projectionShape(cfg, proj);
      w[`${p}${proj}.weight`] = filled(dtype, out * inp, next, Math.sqrt(3 / inp));
      if (proj === 'self_attn.q_proj' || proj === 'self_attn.k_proj' || proj === 'self_attn.v_proj') {
        w[`${p}${proj}.bias`] = filled(dtype, out, next, 0.1);
      }
    }
  }
  w['model.norm.weight'] = filled(dtype, C, next, 0.25, 1);
  if (!cfg.tieWordEmbeddings) w['lm_head.weight'] = filled(dtype, cfg.vocabSize * C, next, Math.sqrt(3 / C));
  return w;
}

/** Random LoRA pairs on the given projections of every layer; B is non-zero (tests need its gradient path). */
export function randomRefLora(
  cfg: RefModelConfig,
  seed: number,
  rank: number,
  alpha: number,
  targets: readonly Projection[] = PROJECTIONS,
  dtype: RefDType = 'f32',
): HostLora {
  const next = uniformSource(seed);
  const lora: HostLora = {};
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    for (const proj of targets) {
      const [out, inp] = projectionShape(cfg, proj);
      lora[moduleName(l, proj)] = {
        A: filled(dtype, rank * inp, next, Math.sqrt(3 / inp)),
        B: filled(dtype, out * rank, next, Math.sqrt(3 / rank) * 0.5),
        rank,
        scale: alpha / rank,
      };
    }
  }
  return lora;
}

/** Copies weights or LoRA to the other precision. */
export function convertWeights(w: RefWeights, dtype: RefDType): RefWeights {
  const out: RefWeights = {};
  for (const [k, v] of Object.entries(w))
    out[k] = dtype === 'f64' ? Float64Array.from(v) : Float32Array.from(v);
  return out;
}

export function convertLora(lora: HostLora, dtype: RefDType): HostLora {
  const out: HostLora = {};
  for (const [k, p] of Object.entries(lora)) {
    const conv = (a: FloatArray) => (dtype === 'f64' ? Float64Array.from(a) : Float32Array.from(a));
    out[k] = { A: conv(p.A), B: conv(p.B), rank: p.rank, scale: p.scale };
  }
  return out;
}
