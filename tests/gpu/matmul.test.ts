import { describe, expect, it } from 'vitest';
import { MatmulKernel } from '../../src/engine/kernels/matmul.ts';
import { checkMatmulOnDevice } from '../../src/engine/matmul-check.ts';
import { matmul } from '../../src/engine/reference/matmul.ts';
import { readF32, storageBuffer, uploadF32 } from '../../src/engine/buffers.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { runKernel } from './kernel-harness.ts';

// f32 accumulation in a different order than the reference: the error grows like √K·ε·|a||b|.
// Inputs in [-1, 1): |terms| ≤ 1, K ≤ 300 → 1e-4 absolute is ~20× the expected worst case.
const ATOL = 1e-4;

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [64, 64, 16],
  [1, 96, 64],
  [7, 13, 5],
  [65, 63, 17],
  [130, 70, 300],
];

describe('tiled f32 matmul vs reference', () => {
  for (const transposeB of [true, false]) {
    for (const withBias of [false, true]) {
      for (const [M, N, K] of shapes) {
        it(`${transposeB ? 'NT' : 'NN'}${withBias ? '+bias' : ''} M=${M} N=${N} K=${K}`, async () => {
          const device = await getTestDevice();
          const a = randomF32(M * K, 1 + M);
          const b = randomF32(N * K, 2 + N);
          const bias = withBias ? randomF32(N, 3 + K) : null;
          const want = new Float32Array(M * N);
          matmul(want, a, b, bias, M, N, K, transposeB);

          const kernel = new MatmulKernel(device, transposeB);
          const out = storageBuffer(device, M * N * 4);
          await runKernel(device, kernel, {
            a: uploadF32(device, a),
            b: uploadF32(device, b),
            out,
            bias: bias ? uploadF32(device, bias) : undefined,
            M,
            N,
            K,
          });
          const got = await readF32(device, out, M * N);
          expect(maxAbsDiff(got, want)).toBeLessThan(ATOL);
        });
      }
    }
  }
});

describe('the GPU panel matmul check', () => {
  it('reports a max error within the tolerance at the panel shape (129 × 67 × 257)', async () => {
    const r = await checkMatmulOnDevice(await getTestDevice(), 129, 67, 257, 1);
    expect(r).toMatchObject({ M: 129, N: 67, K: 257 });
    expect(r.maxAbsError).toBeLessThan(ATOL);
    expect(r.ms).toBeGreaterThan(0);
  });
});
