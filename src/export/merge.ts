// The LoRA merge of one block of rows: W'[n, :] = W[n, :] + scale · Σ_j B[n, j] · A[j, :] (PEFT layout:
// A [rank, in], B [out, rank], scale = alpha / rank). Each row's delta is accumulated in f64 and added
// to W in f64, so the merged f32 weight is W + ΔW rounded once. Browser-safe.

import type { LoraPair } from '../engine/reference/ops.ts';

/**
 * Adds the LoRA delta to `rows` in place: `rows` holds rows [rowStart, rowStart + rows.length / inDim)
 * of the [out, inDim] weight. `acc` is scratch of at least inDim values (reused across blocks).
 */
export function addLoraDelta(
  rows: Float32Array,
  rowStart: number,
  inDim: number,
  pair: LoraPair,
  acc: Float64Array = new Float64Array(inDim),
): void {
  const { A, B, rank, scale } = pair;
  const n = rows.length / inDim;
  for (let i = 0; i < n; i++) {
    acc.fill(0, 0, inDim);
    const bRow = (rowStart + i) * rank;
    for (let j = 0; j < rank; j++) {
      const b = B[bRow + j];
      if (b === 0) continue;
      const a0 = j * inDim;
      for (let k = 0; k < inDim; k++) acc[k] += b * A[a0 + k];
    }
    const w0 = i * inDim;
    for (let k = 0; k < inDim; k++) rows[w0 + k] = rows[w0 + k] + scale * acc[k];
  }
}
