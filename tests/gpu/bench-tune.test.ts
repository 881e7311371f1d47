// `bench --tune` (bench/matmul-tune.ts): every tile it may recommend computes the reference product, the
// FMA probe measures something, and a tune run reports each candidate that fits (and skips one that
// does not) with the committed tile marked.
import { describe, expect, it } from 'vitest';
import { fmaPeak, runMatmulTune, tileFits, tileName, TUNE_CANDIDATES } from '../../bench/matmul-tune.ts';
import { readF32, uploadF32 } from '../../src/engine/buffers.ts';
import { Dispatcher } from '../../src/engine/dispatch.ts';
import { PORTABLE_SHADERS } from '../../src/engine/gpu.ts';
import { MATMUL_TILES, MatmulGradKernel } from '../../src/engine/kernels/matmul.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';

// f32 sums in another order than the f64 reference, K = 17, terms in [-1, 1): 1e-4 is far above √K·ε.
const ATOL = 1e-4;

describe('bench --tune', () => {
  // The committed tiles are tested at every layout and dtype in matmul.test.ts; the other candidates here,
  // in the forward's layout (NT) and the weight gradient's (TN).
  it('every other candidate tile computes op(A)·op(B) (NT and TN) at a shape that is no tile multiple', async () => {
    const device = await getTestDevice();
    const [M, N, K] = [65, 63, 17];
    const committed = new Set(Object.values(MATMUL_TILES).map(tileName));
    for (const tile of TUNE_CANDIDATES.filter(
      (t) => tileFits(t, device.limits) && !committed.has(tileName(t)),
    ))
      for (const [transA, transB] of [
        [false, true],
        [true, false],
      ]) {
        const a = randomF32(M * K, 1);
        const b = randomF32(K * N, 2);
        const want = new Float32Array(M * N);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let acc = 0;
            for (let k = 0; k < K; k++)
              acc += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
            want[m * N + n] = acc;
          }
        const out = uploadF32(device, new Float32Array(M * N));
        const d = new Dispatcher(device);
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        const kernel = new MatmulGradKernel(device, 'f32', PORTABLE_SHADERS, tile);
        d.dispatch(pass, 'mm', kernel, {
          a: uploadF32(device, a),
          b: uploadF32(device, b),
          out,
          M,
          N,
          K,
          transA,
          transB,
        });
        pass.end();
        device.queue.submit([enc.finish()]);
        const got = await readF32(device, out, M * N);
        expect(
          maxAbsDiff(got, want),
          `${tileName(tile)} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`,
        ).toBeLessThan(ATOL);
      }
  });

  it('times the candidates that fit against the FMA probe, the committed tile marked', async () => {
    const device = await getTestDevice();
    expect(await fmaPeak(device, 16, 1)).toBeGreaterThan(0);
    const tooBig = { TM: 64, TN: 64, TK: 16, WX: 64, WY: 64, staged: true };
    expect(tileFits(tooBig, device.limits)).toBe(false);
    const features = { ...PORTABLE_SHADERS, adapterKind: 'cpu' as const };
    const shapes = [{ name: 'odd', transA: false, transB: true, M: 9, N: 33, K: 70 }];
    const r = await runMatmulTune(device, features, shapes, {
      tokens: 9,
      reps: 1,
      candidates: [MATMUL_TILES.cpu, TUNE_CANDIDATES[0], tooBig],
    });
    expect(r.candidates.map((c) => c.tile)).toEqual([
      tileName(MATMUL_TILES.cpu),
      tileName(TUNE_CANDIDATES[0]),
    ]);
    expect(r.candidates.map((c) => c.committed)).toEqual([true, false]);
    expect(r.skipped).toEqual([tileName(tooBig)]);
    for (const c of r.candidates) {
      expect(c.gflops[0]).toBeGreaterThan(0);
      expect(c.ofPeak).toBeCloseTo(c.meanGflops / r.fmaPeakGflops, 9);
    }
    expect(r.candidates.map((c) => c.tile)).toContain(r.best);
  });
});
