// Reference forward ops (plain TypeScript, llm.c style: one function per op, output arrays passed in).
// Generic over Float32Array | Float64Array: the f32 path is the oracle for the WGSL kernels, the f64
// path is what central finite differences run on. Activations are packed row-major [T, C] over all
// tokens of a batch; sequence boundaries are given by `offsets` (see attention).

import { matmul, type FloatArray } from './matmul.ts';
import type { LoraPair } from '../../model/lora.ts';

export type { FloatArray } from './matmul.ts';

/** Allocates an array of the same precision as `like`. */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

/** Rounds to the precision of `like` (Math.fround for f32, identity for f64). */
export function roundLike(like: FloatArray): (x: number) => number {
  return like instanceof Float64Array ? (x: number) => x : Math.fround;
}

/** out[t, :] = wte[ids[t], :] (wte [V, C]). */
export function embedding(out: FloatArray, wte: FloatArray, ids: ArrayLike<number>, C: number): void {
  for (let t = 0; t < ids.length; t++) {
    const base = ids[t] * C;
    for (let c = 0; c < C; c++) out[t * C + c] = wte[base + c];
  }
}

/**
 * HF Qwen2RMSNorm: x / sqrt(mean(x²) + eps), then · weight. Writes `rstd[t]` (1/sqrt(mean+eps)) when
 * given: the backward needs it.
 */
export function rmsnorm(
  out: FloatArray,
  rstd: FloatArray | null,
  x: FloatArray,
  weight: FloatArray,
  T: number,
  C: number,
  eps: number,
): void {
  const r = roundLike(out);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[t * C + c] * x[t * C + c];
    const s = r(1 / Math.sqrt(ss / C + eps));
    if (rstd) rstd[t] = s;
    // HF: hidden_states * rsqrt(...) in f32, then weight * hidden (two roundings in f32).
    for (let c = 0; c < C; c++) out[t * C + c] = weight[c] * r(x[t * C + c] * s);
  }
}

/**
 * HF nn.Linear with optional bias and optional LoRA: out[T, N] = x[T, K] · Wᵀ + bias + scale·(x Aᵀ) Bᵀ,
 * W [N, K]. When `loraHidden` is given it receives x Aᵀ [T, r] (the backward needs it).
 */
export function linear(
  out: FloatArray,
  x: FloatArray,
  W: FloatArray,
  bias: FloatArray | null,
  T: number,
  N: number,
  K: number,
  lora: LoraPair | null = null,
  loraHidden: FloatArray | null = null,
): void {
  matmul(out, x, W, bias, T, N, K, true);
  if (!lora) return;
  const r = lora.rank;
  const h = loraHidden ?? allocLike(out, T * r);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[t * K + k] * lora.A[j * K + k];
      h[t * r + j] = acc;
    }
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += h[t * r + j] * lora.B[n * r + j];
      out[t * N + n] += lora.scale * acc;
    }
  }
}

/** HF's inverse frequencies 1 / theta^(2i/d), i < d/2 (computed in f32 by torch; rounded like `like`). */
export function ropeInvFreq(headDim: number, theta: number, like: FloatArray): number[] {
  const r = roundLike(like);
  const out: number[] = [];
  for (let i = 0; i < headDim / 2; i++) out.push(r(1 / Math.pow(theta, (2 * i) / headDim)));
  return out;
}

/**
 * RoPE, rotate-half (non-interleaved) convention, in place on x [T, nHeads·headDim]:
 * for i < d/2, (x_i, x_{i+d/2}) ← (x_i cos − x_{i+d/2} sin, x_{i+d/2} cos + x_i sin), angle = pos·invFreq_i.
 * `inverse` rotates by −angle (the backward of RoPE is RoPE with the opposite angle).
 */
export function rope(
  x: FloatArray,
  positions: ArrayLike<number>,
  T: number,
  nHeads: number,
  headDim: number,
  theta: number,
  inverse = false,
): void {
  const r = roundLike(x);
  const half = headDim / 2;
  const invFreq = ropeInvFreq(headDim, theta, x);
  const C = nHeads * headDim;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = r(positions[t] * invFreq[i]);
      const cos = r(Math.cos(angle));
      const sin = inverse ? -r(Math.sin(angle)) : r(Math.sin(angle));
      for (let h = 0; h < nHeads; h++) {
        const a = t * C + h * headDim + i;
        const x1 = x[a];
        const x2 = x[a + half];
        x[a] = x1 * cos - x2 * sin;
        x[a + half] = x2 * cos + x1 * sin;
      }
    }
  }
}

/** Shape of a grouped-query attention call. */
export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * Causal GQA attention over packed sequences. q [T, nHeads·d], k/v [T, nKv·d], out [T, nHeads·d].
 * Sequence s covers rows offsets[s] .. offsets[s+1]−1 and attends only within itself (causal).
 * Query head h reads KV head floor(h / (nHeads / nKv)). Scale 1/sqrt(d). When `probs` is given it
 * receives the attention weights, laid out per head as [h][t][j] with j the key index within the
 * sequence (size nHeads · Σ len²; offsets into it from `attentionProbOffsets`).
 */
export function attention(
  out: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  offsets: ArrayLike<number>,
  shape: AttentionShape,
  probs: FloatArray | null = null,
): void {
  const { nHeads, nKvHeads, headDim: d } = shape;
  const group = nHeads / nKvHeads;
  const Cq = nHeads * d;
  const Ckv = nKvHeads * d;
  const scale = 1 / Math.sqrt(d);
  const probOff = attentionProbOffsets(offsets, nHeads);
  const nSeq = offsets.length - 1;
  for (let s = 0; s < nSeq; s++) {
    const start = offsets[s];
    const len = offsets[s + 1] - start;
    const p = new Float64Array(len);
    for (let h = 0; h < nHeads; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < len; t++) {
        const qa = (start + t) * Cq + h * d;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          const ka = (start + j) * Ckv + kh * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qa + c] * k[ka + c];
          p[j] = dot * scale;
          if (p[j] > max) max = p[j];
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          p[j] = Math.exp(p[j] - max);
          sum += p[j];
        }
        for (let j = 0; j <= t; j++) p[j] /= sum;
        if (probs) for (let j = 0; j <= t; j++) probs[probOff[s] + (h * len + t) * len + j] = p[j];
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j <= t; j++) acc += p[j] * v[(start + j) * Ckv + kh * d + c];
          out[qa + c] = acc;
        }
      }
    }
  }
}

/** Start of each sequence's block in the `probs` array of `attention` (and its total size, last). */
export function attentionProbOffsets(offsets: ArrayLike<number>, nHeads: number): number[] {
  const out = [0];
  for (let s = 0; s + 1 < offsets.length; s++) {
    const len = offsets[s + 1] - offsets[s];
    out.push(out[s] + nHeads * len * len);
  }
  return out;
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** SwiGLU: out = silu(gate) · up, elementwise over n values. */
export function swiglu(out: FloatArray, gate: FloatArray, up: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = silu(gate[i]) * up[i];
}

/** Residual add: out = a + b over n values (out may alias a). */
export function residualAdd(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/**
 * Log-softmax of each row of logits [T, V] into out (may alias logits). Returns nothing; use
 * `chosenLogprobs` for the logprob of given tokens.
 */
export function logSoftmax(out: FloatArray, logits: FloatArray, T: number, V: number): void {
  for (let t = 0; t < T; t++) {
    const lse = logSumExp(logits, t * V, V);
    for (let i = 0; i < V; i++) out[t * V + i] = logits[t * V + i] - lse;
  }
}

/** log Σ exp(row[i]) for row = x[offset .. offset+n−1], computed stably in f64. */
export function logSumExp(x: FloatArray, offset: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[offset + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[offset + i] - max);
  return max + Math.log(sum);
}

/** out[t] = log softmax(logits[t])[tokens[t]] for logits [T, V]. */
export function chosenLogprobs(
  out: FloatArray,
  logits: FloatArray,
  tokens: ArrayLike<number>,
  T: number,
  V: number,
): void {
  for (let t = 0; t < T; t++) out[t] = logits[t * V + tokens[t]] - logSumExp(logits, t * V, V);
}
