import { describe, expect, it } from 'vitest';
import {
  encodeMatmulGrad,
  F16_FOLD,
  MATMUL_TILES,
  MatmulGradKernel,
  MatmulKernel,
  MatmulSplitReduceKernel,
} from '../../src/engine/kernels/matmul.ts';
import { Dispatcher } from '../../src/engine/dispatch.ts';
import { PORTABLE_SHADERS, type AdapterKind } from '../../src/engine/gpu.ts';
import type { WeightDType } from '../../src/engine/kernels/weights-wgsl.ts';
import { decodeFloats, encodeFloats } from '../../src/model/dtype.ts';
import { checkMatmulOnDevice } from '../../src/engine/matmul-check.ts';
import { matmul } from '../../src/engine/reference/matmul.ts';
import { readF32, storageBuffer, uploadF32 } from '../../src/engine/buffers.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { runKernel, uploadBytes } from './kernel-harness.ts';

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

// The template at every layout, B dtype and tile of the table, with odd offsets and strides (a 16-bit
// B whose pairs straddle words), column windows, accumulate + alpha, and split-K, at shapes that are no
// tile multiple. Reference: op(A)·op(B) in f64 over the same (rounded) B values. 16-bit B in the layouts
// the weights are used in (NN: dX = dY·W, NT: the forward).
describe('matmul template: layouts × B dtypes × tiles × split-K', () => {
  const tileKinds = Object.keys(MATMUL_TILES) as AdapterKind[];
  const layouts = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const;
  const dims: [number, number, number][] = [
    [7, 13, 5],
    [65, 63, 17],
    [130, 70, 300],
  ];
  for (const kind of tileKinds)
    for (const bdtype of ['f32', 'f16', 'bf16'] as WeightDType[])
      for (const [transA, transB] of layouts.filter(([tA]) => bdtype === 'f32' || !tA))
        it(`${kind} tile, ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}, ${bdtype} B`, async () => {
          const device = await getTestDevice();
          const features = { ...PORTABLE_SHADERS, adapterKind: kind };
          const kernel = new MatmulGradKernel(device, bdtype, features);
          const reduce = new MatmulSplitReduceKernel(device);
          for (const [M, N, K] of dims)
            for (const splits of [1, 3]) {
              const lda = (transA ? M : K) + 3;
              const ldb = (transB ? K : N) + 1; // odd: 16-bit pairs alternate between aligned and not
              const aOff = 2;
              const bOff = 1;
              const ldo = N + 7;
              const oOff = 5;
              const a = randomF32(aOff + (transA ? K : M) * lda, 1 + M);
              const bRaw = randomF32(bOff + (transB ? N : K) * ldb, 2 + N);
              const file = bdtype === 'f16' ? 'F16' : 'BF16';
              const bBytes =
                bdtype === 'f32' ? new Uint8Array(bRaw.buffer.slice(0)) : encodeFloats(bRaw, file).slice();
              const b = bdtype === 'f32' ? bRaw : decodeFloats(bBytes, file);
              const out0 = randomF32(oOff + M * ldo + 3, 3);
              const want = Float64Array.from(out0);
              for (let m = 0; m < M; m++)
                for (let n = 0; n < N; n++) {
                  let acc = 0;
                  for (let k = 0; k < K; k++) {
                    const av = transA ? a[aOff + k * lda + m] : a[aOff + m * lda + k];
                    const bv = transB ? b[bOff + n * ldb + k] : b[bOff + k * ldb + n];
                    acc += av * bv;
                  }
                  want[oOff + m * ldo + n] += 0.5 * acc;
                }
              const out = uploadF32(device, out0);
              const partial = storageBuffer(device, splits * M * N * 4);
              const d = new Dispatcher(device);
              const enc = device.createCommandEncoder();
              const pass = enc.beginComputePass();
              const args = {
                a: uploadF32(device, a),
                b: uploadBytes(device, bBytes),
                out,
                M,
                N,
                K,
                transA,
                transB,
                lda,
                ldb,
                ldo,
                aOff,
                bOff,
                oOff,
                accumulate: true,
                alpha: 0.5,
              };
              encodeMatmulGrad(d, pass, 'mm', kernel, reduce, args, splits, partial);
              pass.end();
              device.queue.submit([enc.finish()]);
              const got = await readF32(device, out, want.length);
              // Outside the window (columns ≥ N of each row, the words before oOff and after): untouched.
              expect(
                maxAbsDiff(got, Float32Array.from(want)),
                `M=${M} N=${N} K=${K} splits=${splits}`,
              ).toBeLessThan(ATOL);
            }
        });

  it('the forward kernel on each tile: NN and NT with bias and a column window; bf16, and f16 in f16 math', async () => {
    const device = await getTestDevice();
    for (const kind of tileKinds)
      for (const transposeB of [true, false])
        for (const dtype of ['bf16', 'f16'] as const) {
          const [M, N, K] = [67, 45, 33];
          const a = randomF32(M * K, 7);
          const file = dtype === 'f16' ? 'F16' : 'BF16';
          const bytes = encodeFloats(randomF32(N * K, 8), file).slice();
          const b = decodeFloats(bytes, file);
          const bias = randomF32(N, 9);
          const want = new Float32Array(M * N);
          matmul(want, a, b, bias, M, N, K, transposeB);
          const absSum = new Float32Array(M * N);
          matmul(absSum, a.map(Math.abs), b.map(Math.abs), null, M, N, K, transposeB);
          const ldo = N + 4;
          const out = uploadF32(device, new Float32Array(M * ldo).fill(7));
          // f16 weights on a shader-f16 device multiply in f16 (matmul.ts: ≤ (F16_FOLD + 1)·2^-11·Σ|a·w|).
          const features = { f16: dtype === 'f16', subgroups: false, adapterKind: kind };
          const k = new MatmulKernel(device, transposeB, dtype, features);
          expect(k.arithmetic).toBe(dtype === 'f16' ? 'f16' : 'f32');
          const rel = dtype === 'f16' ? (F16_FOLD + 1) * 2 ** -11 : 0;
          await runKernel(device, k, {
            a: uploadF32(device, a),
            b: uploadBytes(device, bytes),
            out,
            bias: uploadF32(device, bias),
            M,
            N,
            K,
            ldo,
            colOff: 2,
          });
          const got = await readF32(device, out, M * ldo);
          let worst = 0;
          for (let m = 0; m < M; m++)
            for (let j = 0; j < ldo; j++) {
              const g = got[m * ldo + j];
              if (j < 2 || j >= 2 + N) {
                expect(g).toBe(7);
                continue;
              }
              const i = m * N + j - 2;
              worst = Math.max(worst, Math.abs(g - want[i]) / (ATOL + rel * absSum[i]));
            }
          expect(worst, `${kind} ${transposeB ? 'NT' : 'NN'} ${dtype}`).toBeLessThan(1);
        }
  });
});
