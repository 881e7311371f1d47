// Reference matmul (plain TypeScript, the oracle for kernels/matmul.ts).
// out[M,N] = a[M,K] · b + bias, with b stored [K,N] (NN) or [N,K] (NT, the layout of HF Linear weights).

import type { FloatArray } from '../../model/dtype.ts';

export type { FloatArray };

export function matmul(
  out: FloatArray,
  a: FloatArray,
  b: FloatArray,
  bias: FloatArray | null,
  M: number,
  N: number,
  K: number,
  transposeB: boolean,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = bias ? bias[j] : 0;
      for (let k = 0; k < K; k++) acc += a[i * K + k] * (transposeB ? b[j * K + k] : b[k * N + j]);
      out[i * N + j] = acc;
    }
  }
}
