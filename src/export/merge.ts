import type { LoraPair } from '../model/lora.ts';
// The LoRA merge of one block of rows: W'[n, :] = W[n, :] + scale · Σ_j B[n, j] · A[j, :] (PEFT layout:
// A [rank, in], B [out, rank], scale = alpha / rank). Each row's delta is accumulated in f64 and added
// to W in f64, so the merged f32 weight is W + ΔW rounded once. Browser-safe.

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
    let j = 0;
    // Four ranks per pass over the row: a quarter of the accumulator loads and stores.
    for (; j + 4 <= rank; j += 4) {
      const b0 = B[bRow + j];
      const b1 = B[bRow + j + 1];
      const b2 = B[bRow + j + 2];
      const b3 = B[bRow + j + 3];
      const a0 = j * inDim;
      const a1 = a0 + inDim;
      const a2 = a1 + inDim;
      const a3 = a2 + inDim;
      for (let k = 0; k < inDim; k++)
        acc[k] += b0 * A[a0 + k] + b1 * A[a1 + k] + b2 * A[a2 + k] + b3 * A[a3 + k];
    }
    for (; j < rank; j++) {
      const b = B[bRow + j];
      const a0 = j * inDim;
      for (let k = 0; k < inDim; k++) acc[k] += b * A[a0 + k];
    }
    const w0 = i * inDim;
    for (let k = 0; k < inDim; k++) rows[w0 + k] = rows[w0 + k] + scale * acc[k];
  }
}
