// The decode GEMV's LoRA epilogue against the reference x·Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ, per sub-projection
// of a concatenated output (q|k|v-like: three segments, the middle one not adapted), on both shaders,
// and each row bit-identical whatever M (batch invariance).
import { describe, expect, it } from 'vitest';
import { readF32 } from '../../src/engine/buffers.ts';
import { GemvKernel, NARROW_K } from '../../src/engine/kernels/gemv.ts';
import { linear } from '../../src/engine/reference/ops.ts';
import { decodeFloats, encodeFloats } from '../../src/model/dtype.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { runKernel, storageBuffer, uploadBytes, uploadF32 } from './kernel-harness.ts';

// f32 sums in another order than the reference's: √K·ε growth on O(1)·√K values (K ≤ 300).
const ATOL = 1e-4;
const N = 37; // odd, and not a multiple of the 4-, 16- or 64-column workgroups
// Segments [0,15) [15,26) [26,37): boundaries inside a workgroup, so some workgroups span two.
const STARTS = [15, 26] as const;
const COVERED = [true, false, true];
const RANK = 3;
const SCALE = 1.5;
const M_MAX = 9; // 9 rows: two row blocks of the 8-row pipeline

/** Reference: base linear, plus the LoRA of each covered segment on that segment's columns. */
function reference(
  x: Float32Array,
  W: Float32Array,
  bias: Float32Array,
  A: Float32Array,
  B: Float32Array,
  K: number,
) {
  const out = new Float32Array(M_MAX * N);
  linear(out, x, W, bias, M_MAX, N, K);
  const bounds = [0, ...STARTS, N];
  for (let s = 0; s < 3; s++) {
    if (!COVERED[s]) continue;
    for (let m = 0; m < M_MAX; m++) {
      const t: number[] = [];
      for (let j = 0; j < RANK; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += x[m * K + k] * A[(s * RANK + j) * K + k];
        t.push(acc);
      }
      for (let n = bounds[s]; n < bounds[s + 1]; n++) {
        let acc = 0;
        for (let j = 0; j < RANK; j++) acc += B[n * RANK + j] * t[j];
        out[m * N + n] += SCALE * acc;
      }
    }
  }
  return out;
}

describe('gemv LoRA epilogue (decode, adapter fused into the weight matmul)', () => {
  // K = 64 takes the narrow (column-per-invocation) shader, K = 300 the split-K one.
  // The wide shader also with its subgroup reduction (the test device has 'subgroups').
  // split: t = x·Aᵀ by the f32 split-K GEMV first (loraDecode 'split'), the epilogue reading it; K odd
  // is not served (gemv needs an even K), so the awkward K are 66 (narrow) and 302 (wide, 64·4 + 46).
  const cases = [
    { K: 64, subgroups: false, split: false },
    { K: 300, subgroups: false, split: false },
    { K: 300, subgroups: true, split: false },
    { K: 66, subgroups: false, split: true },
    { K: 302, subgroups: false, split: true },
    { K: 302, subgroups: true, split: true },
  ];
  for (const { K, subgroups, split } of cases) {
    it(`${K <= NARROW_K ? 'narrow' : 'wide'} shader K=${K}${subgroups ? ', subgroups' : ''}${split ? ', t precomputed (split)' : ''}: vs reference for M = 1..${M_MAX}, rows independent of M`, async () => {
      const device = await getTestDevice();
      const W = randomF32(N * K, 71);
      const bias = randomF32(N, 72);
      const A = randomF32(3 * RANK * K, 73, 0.2);
      // B rows of the uncovered segment are zero, as the packed copies leave them.
      const B = randomF32(N * RANK, 74, 0.5);
      B.fill(0, STARTS[0] * RANK, STARTS[1] * RANK);
      const x = randomF32(M_MAX * K, 75);
      const k = new GemvKernel(device, 'bf16', { f16: false, subgroups });
      const kA = new GemvKernel(device, 'f32', { f16: false, subgroups });
      const wBytes = encodeFloats(W, 'BF16').slice();
      const wb = uploadBytes(device, wBytes);
      const Wf = decodeFloats(wBytes, 'BF16'); // the reference reads the same rounded weights
      const lora = {
        A: uploadF32(device, A),
        B: uploadF32(device, B),
        rank: RANK,
        scale: SCALE,
        segmentStarts: STARTS,
      };
      const bb = uploadF32(device, bias);
      const want = reference(x, Wf, bias, A, B, K);
      const rowsOf = async (M: number) => {
        const out = storageBuffer(device, M * N * 4);
        const a = uploadF32(device, x.subarray(0, M * K));
        let t: GPUBuffer | undefined;
        if (split) {
          t = storageBuffer(device, M * 3 * RANK * 4);
          await runKernel(device, kA, { a, b: lora.A, out: t, M, N: 3 * RANK, K });
        }
        await runKernel(device, k, { a, b: wb, out, bias: bb, M, N, K, lora: { ...lora, t } });
        return readF32(device, out, M * N);
      };
      const all = await rowsOf(M_MAX);
      const err = maxAbsDiff(all, want);
      console.log(`gemv + LoRA K=${K}: max abs err ${err.toExponential(2)}`);
      expect(err).toBeLessThan(ATOL);
      // The LoRA term is not negligible here (a dropped segment would fail the tolerance).
      const base = new Float32Array(M_MAX * N);
      linear(base, x, Wf, bias, M_MAX, N, K);
      expect(maxAbsDiff(base, want)).toBeGreaterThan(0.1);
      for (let M = 1; M < M_MAX; M++) {
        const got = await rowsOf(M);
        expect(Array.from(got), `M=${M}`).toEqual(Array.from(all.subarray(0, M * N)));
      }
    });
  }
});
