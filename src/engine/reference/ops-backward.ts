// Reference backward of every forward op in ops.ts (llm.c style). Every gradient output is
// ACCUMULATED (+=) so that one tensor can receive contributions from several places (the residual
// stream, a tied embedding, micro-batches); callers zero them first. Null gradient outputs are skipped.

import { allocLike, attentionProbOffsets, rope, type AttentionShape, type FloatArray } from './ops.ts';
import type { LoraPair } from '../../model/lora.ts';

/** dwte[ids[t], :] += dout[t, :]. */
export function embeddingBackward(
  dwte: FloatArray,
  dout: FloatArray,
  ids: ArrayLike<number>,
  C: number,
): void {
  for (let t = 0; t < ids.length; t++) {
    const base = ids[t] * C;
    for (let c = 0; c < C; c++) dwte[base + c] += dout[t * C + c];
  }
}

/**
 * y = w ⊙ x·s with s = (mean(x²) + eps)^(−1/2):
 * dx = s·(w⊙dy) − s³/C · x · Σ_c(w_c dy_c x_c);  dw += Σ_t dy ⊙ x·s.
 */
export function rmsnormBackward(
  dx: FloatArray | null,
  dw: FloatArray | null,
  dout: FloatArray,
  x: FloatArray,
  w: FloatArray,
  rstd: FloatArray,
  T: number,
  C: number,
): void {
  for (let t = 0; t < T; t++) {
    const s = rstd[t];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c] * dout[t * C + c] * x[t * C + c];
    const k = (s * s * s * dot) / C;
    for (let c = 0; c < C; c++) {
      const i = t * C + c;
      if (dx) dx[i] += s * w[c] * dout[i] - k * x[i];
      if (dw) dw[c] += dout[i] * x[i] * s;
    }
  }
}

/** Gradient outputs of `linear`; any may be null. */
export interface LinearGrads {
  dx: FloatArray | null;
  dW: FloatArray | null;
  dbias: FloatArray | null;
  /** LoRA A [r, K] and B [N, r] gradients (only with a LoRA pair). */
  dA?: FloatArray | null;
  dB?: FloatArray | null;
}

/**
 * Backward of out = x Wᵀ + bias + scale·h Bᵀ with h = x Aᵀ (`loraHidden` = h from the forward):
 * dx += dy W + scale·(dy B) A;  dW += dyᵀ x;  dbias += Σ_t dy;  dB += scale·dyᵀ h;  dA += (scale·dy B)ᵀ x.
 */
export function linearBackward(
  g: LinearGrads,
  dout: FloatArray,
  x: FloatArray,
  W: FloatArray,
  T: number,
  N: number,
  K: number,
  lora: LoraPair | null = null,
  loraHidden: FloatArray | null = null,
): void {
  const { dx, dW, dbias } = g;
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const dy = dout[t * N + n];
      if (dy === 0) continue;
      if (dbias) dbias[n] += dy;
      if (dx) for (let k = 0; k < K; k++) dx[t * K + k] += dy * W[n * K + k];
      if (dW) for (let k = 0; k < K; k++) dW[n * K + k] += dy * x[t * K + k];
    }
  }
  if (!lora) return;
  if (!loraHidden) throw new Error('linearBackward: LoRA needs the forward x·Aᵀ');
  const r = lora.rank;
  const dh = allocLike(dout, r);
  for (let t = 0; t < T; t++) {
    dh.fill(0);
    for (let n = 0; n < N; n++) {
      const dy = lora.scale * dout[t * N + n];
      for (let j = 0; j < r; j++) {
        dh[j] += dy * lora.B[n * r + j];
        if (g.dB) g.dB[n * r + j] += dy * loraHidden[t * r + j];
      }
    }
    for (let j = 0; j < r; j++) {
      for (let k = 0; k < K; k++) {
        if (g.dA) g.dA[j * K + k] += dh[j] * x[t * K + k];
        if (dx) dx[t * K + k] += dh[j] * lora.A[j * K + k];
      }
    }
  }
}

/** RoPE is a rotation: its backward rotates the gradient by the opposite angle (in place). */
export function ropeBackward(
  dx: FloatArray,
  positions: ArrayLike<number>,
  T: number,
  nHeads: number,
  headDim: number,
  theta: number,
): void {
  rope(dx, positions, T, nHeads, headDim, theta, true);
}

/**
 * Backward of causal GQA attention from the forward's probabilities P:
 * dv_j += Σ_t P_tj do_t;  dP_tj = do_t·v_j;  dS_tj = P_tj (dP_tj − Σ_j' P_tj' dP_tj');
 * dq_t += scale Σ_j dS_tj k_j;  dk_j += scale Σ_t dS_tj q_t. KV gradients sum over the query heads of a group.
 */
export function attentionBackward(
  dq: FloatArray,
  dk: FloatArray,
  dv: FloatArray,
  dout: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  probs: FloatArray,
  offsets: ArrayLike<number>,
  shape: AttentionShape,
): void {
  const { nHeads, nKvHeads, headDim: d } = shape;
  const group = nHeads / nKvHeads;
  const Cq = nHeads * d;
  const Ckv = nKvHeads * d;
  const scale = 1 / Math.sqrt(d);
  const probOff = attentionProbOffsets(offsets, nHeads);
  for (let s = 0; s + 1 < offsets.length; s++) {
    const start = offsets[s];
    const len = offsets[s + 1] - start;
    const dp = new Float64Array(len);
    for (let h = 0; h < nHeads; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < len; t++) {
        const qa = (start + t) * Cq + h * d;
        const pRow = probOff[s] + (h * len + t) * len;
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          const va = (start + j) * Ckv + kh * d;
          let acc = 0;
          for (let c = 0; c < d; c++) {
            acc += dout[qa + c] * v[va + c];
            dv[va + c] += probs[pRow + j] * dout[qa + c];
          }
          dp[j] = acc;
          sum += probs[pRow + j] * acc;
        }
        for (let j = 0; j <= t; j++) {
          const ds = probs[pRow + j] * (dp[j] - sum) * scale;
          const ka = (start + j) * Ckv + kh * d;
          for (let c = 0; c < d; c++) {
            dq[qa + c] += ds * k[ka + c];
            dk[ka + c] += ds * q[qa + c];
          }
        }
      }
    }
  }
}

/** d silu(g)/dg = σ(g)·(1 + g·(1 − σ(g))). */
export function siluGrad(g: number): number {
  const s = 1 / (1 + Math.exp(-g));
  return s * (1 + g * (1 - s));
}

/** out = silu(gate)·up: dgate += dy·up·silu'(gate), dup += dy·silu(gate). */
export function swigluBackward(
  dgate: FloatArray,
  dup: FloatArray,
  dout: FloatArray,
  gate: FloatArray,
  up: FloatArray,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    dgate[i] += dout[i] * up[i] * siluGrad(g);
    dup[i] += (dout[i] * g) / (1 + Math.exp(-g));
  }
}

/** out = a + b: both inputs receive dout (accumulated). */
export function residualBackward(da: FloatArray, db: FloatArray, dout: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}
