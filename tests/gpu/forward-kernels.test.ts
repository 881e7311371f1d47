import { describe, expect, it } from 'vitest';
import { readF32 } from '../../src/engine/buffers.ts';
import { AttentionKernel } from '../../src/engine/kernels/attention.ts';
import { EmbeddingKernel } from '../../src/engine/kernels/embedding.ts';
import { GemvKernel } from '../../src/engine/kernels/gemv.ts';
import { LogprobKernel } from '../../src/engine/kernels/logprob.ts';
import { MatmulKernel } from '../../src/engine/kernels/matmul.ts';
import { RmsNormKernel } from '../../src/engine/kernels/rmsnorm.ts';
import { RopeKvKernel, ropeTable } from '../../src/engine/kernels/rope-kv.ts';
import { SampleKernel } from '../../src/engine/kernels/sample.ts';
import { SwigluKernel } from '../../src/engine/kernels/swiglu.ts';
import type { WeightDType } from '../../src/engine/kernels/weights-wgsl.ts';
import {
  attention,
  chosenLogprobs,
  embedding,
  linear,
  rmsnorm,
  rope,
  swiglu,
} from '../../src/engine/reference/ops.ts';
import { decodeFloats, encodeFloats } from '../../src/model/dtype.ts';
import { getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { readU32, runKernel, storageBuffer, uploadBytes, uploadF32, uploadU32 } from './kernel-harness.ts';

/** Weights rounded to a 16-bit dtype, as stored bytes and as the f32 values the reference uses. */
function asDType(values: Float32Array, dtype: WeightDType): { bytes: Uint8Array; f32: Float32Array } {
  if (dtype === 'f32') return { bytes: new Uint8Array(values.buffer.slice(0)), f32: values };
  const file = dtype === 'f16' ? 'F16' : 'BF16';
  const bytes = encodeFloats(values, file).slice();
  return { bytes, f32: decodeFloats(bytes, file) };
}

const report: Record<string, number> = {};
function record(name: string, err: number): number {
  report[name] = Math.max(report[name] ?? 0, err);
  return err;
}

describe('forward kernels vs reference', () => {
  // The reference reads the same 16-bit-rounded weights, so every dtype meets the f32 tolerance: the
  // only difference left is f32 summation order (√K·ε growth; K ≤ 200 here).
  const MATMUL_ATOL = 1e-4;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const [M, N, K] of [
      [1, 96, 64],
      [7, 13, 6],
      [65, 70, 130],
    ] as const) {
      it(`linear ${dtype} M=${M} N=${N} K=${K} (+bias, column window, accumulate)`, async () => {
        const device = await getTestDevice();
        const x = randomF32(M * K, 11 + M);
        const w = asDType(randomF32(N * K, 12 + N), dtype);
        const bias = randomF32(N, 13);
        const want = new Float32Array(M * N);
        linear(want, x, w.f32, bias, M, N, K);
        // Into columns [3, 3+N) of a [M, N+5] output whose other columns must stay untouched.
        const ldo = N + 5;
        const out = uploadF32(device, new Float32Array(M * ldo).fill(7));
        const k = new MatmulKernel(device, true, dtype);
        await runKernel(device, k, {
          a: uploadF32(device, x),
          b: uploadBytes(device, w.bytes),
          out,
          bias: uploadF32(device, bias),
          M,
          N,
          K,
          ldo,
          colOff: 3,
        });
        const got = await readF32(device, out, M * ldo);
        const win = new Float32Array(M * N);
        let untouched = true;
        for (let m = 0; m < M; m++)
          for (let j = 0; j < ldo; j++) {
            if (j >= 3 && j < 3 + N) win[m * N + j - 3] = got[m * ldo + j];
            else untouched &&= got[m * ldo + j] === 7;
          }
        expect(untouched).toBe(true);
        expect(record(`linear ${dtype}`, maxAbsDiff(win, want))).toBeLessThan(MATMUL_ATOL);
        // accumulate: out += 0.5 · x·Wᵀ (no bias): the LoRA update path.
        await runKernel(device, k, {
          a: uploadF32(device, x),
          b: uploadBytes(device, w.bytes),
          out,
          M,
          N,
          K,
          ldo,
          colOff: 3,
          accumulate: true,
          alpha: 0.5,
        });
        const got2 = await readF32(device, out, M * ldo);
        const noBias = new Float32Array(M * N);
        linear(noBias, x, w.f32, null, M, N, K);
        let err = 0;
        for (let m = 0; m < M; m++)
          for (let j = 0; j < N; j++)
            err = Math.max(
              err,
              Math.abs(got2[m * ldo + 3 + j] - (want[m * N + j] + 0.5 * noBias[m * N + j])),
            );
        expect(record(`linear ${dtype} accumulate`, err)).toBeLessThan(MATMUL_ATOL);
      });
    }
  }

  // K = 130 takes the narrow (column-per-invocation) shader, K = 300 the split-K one (NARROW_K = 256).
  for (const [dtype, K] of [
    ['f32', 130],
    ['f16', 130],
    ['bf16', 130],
    ['f32', 300],
    ['bf16', 300],
  ] as const) {
    it(`gemv (decode matmul) ${dtype} K=${K}: vs reference, and each row independent of M`, async () => {
      const device = await getTestDevice();
      const N = 37;
      const w = asDType(randomF32(N * K, 61, 1), dtype);
      const bias = randomF32(N, 62);
      const k = new GemvKernel(device, dtype);
      const wb = uploadBytes(device, w.bytes);
      const bb = uploadF32(device, bias);
      const x = randomF32(13 * K, 63);
      const rowsOf = async (M: number) => {
        const out = storageBuffer(device, M * N * 4);
        await runKernel(device, k, {
          a: uploadF32(device, x.subarray(0, M * K)),
          b: wb,
          out,
          bias: bb,
          M,
          N,
          K,
        });
        return readF32(device, out, M * N);
      };
      const all = await rowsOf(13);
      const want = new Float32Array(13 * N);
      linear(want, x, w.f32, bias, 13, N, K);
      expect(record(`gemv ${dtype} K=${K}`, maxAbsDiff(all, want))).toBeLessThan(MATMUL_ATOL);
      for (const M of [1, 2, 3, 8]) {
        const got = await rowsOf(M);
        expect(Array.from(got)).toEqual(Array.from(all.subarray(0, M * N)));
      }
    });
  }

  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    it(`embedding gather ${dtype} across two table chunks`, async () => {
      const device = await getTestDevice();
      const V = 37;
      const C = 20;
      const table = asDType(randomF32(V * C, 5), dtype);
      const ids = [0, 36, 17, 18, 5, 36];
      const want = new Float32Array(ids.length * C);
      embedding(want, table.f32, ids, C);
      const out = storageBuffer(device, ids.length * C * 4);
      const split = 18; // even: chunks of packed 16-bit rows stay word-aligned
      const bpe = dtype === 'f32' ? 4 : 2;
      const k = new EmbeddingKernel(device, dtype);
      const idBuf = uploadU32(device, ids);
      for (const [r0, r1] of [
        [0, split],
        [split, V],
      ]) {
        const part = uploadBytes(device, table.bytes.subarray(r0 * C * bpe, r1 * C * bpe));
        await runKernel(device, k, {
          ids: idBuf,
          table: part,
          out,
          T: ids.length,
          C,
          rowStart: r0,
          rowEnd: r1,
        });
      }
      expect(record(`embedding ${dtype}`, maxAbsDiff(await readF32(device, out, ids.length * C), want))).toBe(
        0,
      );
    });
  }

  // rsqrt of a mean over ≤ 100 values in f32: relative error ~1e-6 on O(1) outputs.
  const NORM_ATOL = 1e-5;
  for (const C of [8, 64, 100]) {
    it(`rmsnorm plain / residual / residual+gather C=${C}`, async () => {
      const device = await getTestDevice();
      const T = 5;
      const eps = 1e-6;
      const x = randomF32(T * C, 21 + C, 2);
      const delta = randomF32(T * C, 22 + C);
      const w = randomF32(C, 23, 1.5);
      const k1 = new RmsNormKernel(device, { residual: false, gather: false });
      const want = new Float32Array(T * C);
      rmsnorm(want, null, x, w, T, C, eps);
      const out = storageBuffer(device, T * C * 4);
      const xb = uploadF32(device, x);
      await runKernel(device, k1, { x: xb, weight: uploadF32(device, w), out, R: T, C, eps });
      expect(record('rmsnorm', maxAbsDiff(await readF32(device, out, T * C), want))).toBeLessThan(NORM_ATOL);

      const sum = x.map((v, i) => v + delta[i]);
      rmsnorm(want, null, sum, w, T, C, eps);
      const k2 = new RmsNormKernel(device, { residual: true, gather: false });
      await runKernel(device, k2, {
        x: xb,
        delta: uploadF32(device, delta),
        weight: uploadF32(device, w),
        out,
        R: T,
        C,
        eps,
      });
      expect(record('rmsnorm residual', maxAbsDiff(await readF32(device, out, T * C), want))).toBeLessThan(
        NORM_ATOL,
      );
      expect(maxAbsDiff(await readF32(device, xb, T * C), sum)).toBe(0);

      // Gather rows 4 and 1 of x + delta (x is the original again) into output rows 1, 2.
      const rows = [4, 1];
      const k3 = new RmsNormKernel(device, { residual: true, gather: true });
      const out2 = uploadF32(device, new Float32Array(3 * C));
      await runKernel(device, k3, {
        x: uploadF32(device, x),
        delta: uploadF32(device, delta),
        weight: uploadF32(device, w),
        out: out2,
        rowIdx: uploadU32(device, rows),
        R: 2,
        C,
        eps,
        outRow0: 1,
      });
      const got = await readF32(device, out2, 3 * C);
      const wantG = new Float32Array(3 * C);
      rows.forEach((r, i) => wantG.set(want.subarray(r * C, (r + 1) * C), (i + 1) * C));
      expect(record('rmsnorm gather', maxAbsDiff(got, wantG))).toBeLessThan(NORM_ATOL);
    });
  }

  // RoPE uses the reference's own f32 cos/sin (host table): only the rotation's rounding differs.
  const ROPE_ATOL = 1e-6;
  // Softmax-weighted sums of ≤ 70 values in f32 against the reference's f64 softmax.
  const ATT_ATOL = 1e-5;
  for (const [nH, nKv, D, lens, kv] of [
    [4, 2, 16, [5, 1, 70], 'f32'],
    [2, 1, 8, [3, 9], 'f32'],
    [3, 3, 64, [66], 'f32'],
    [4, 2, 16, [5, 1, 70], 'f16'],
    [7, 1, 64, [2, 33], 'f16'],
  ] as const) {
    it(`rope + KV cache (${kv}) + attention nH=${nH} nKv=${nKv} D=${D} lengths ${lens.join(',')}`, async () => {
      const device = await getTestDevice();
      const theta = 10000;
      const T = lens.reduce((a, b) => a + b, 0);
      const width = (nH + 2 * nKv) * D;
      const qkv = randomF32(T * width, 31 + D);
      const offsets = [0];
      const slots: number[] = [];
      const positions: number[] = [];
      lens.forEach((len, s) => {
        offsets.push(offsets[s] + len);
        for (let p = 0; p < len; p++) {
          slots.push(lens.length - 1 - s); // slots in reverse: the cache layout is independent of row order
          positions.push(p);
        }
      });
      const q = new Float32Array(T * nH * D);
      const kk = new Float32Array(T * nKv * D);
      const v = new Float32Array(T * nKv * D);
      for (let t = 0; t < T; t++) {
        q.set(qkv.subarray(t * width, t * width + nH * D), t * nH * D);
        kk.set(qkv.subarray(t * width + nH * D, t * width + (nH + nKv) * D), t * nKv * D);
        v.set(qkv.subarray(t * width + (nH + nKv) * D, (t + 1) * width), t * nKv * D);
      }
      rope(q, positions, T, nH, D, theta);
      rope(kk, positions, T, nKv, D, theta);
      // An f16 cache stores k (after RoPE) and v rounded to f16: the reference reads the same values.
      const round = (a: Float32Array) => (kv === 'f16' ? decodeFloats(encodeFloats(a, 'F16'), 'F16') : a);
      const want = new Float32Array(T * nH * D);
      attention(want, q, round(kk), round(v), offsets, { nHeads: nH, nKvHeads: nKv, headDim: D });

      const maxLen = 80;
      const cacheBytes = lens.length * maxLen * nKv * D * (kv === 'f16' ? 2 : 4);
      const kCache = storageBuffer(device, cacheBytes);
      const vCache = storageBuffer(device, cacheBytes);
      const rows = uploadU32(
        device,
        slots.flatMap((s, i) => [s, positions[i]]),
      );
      const qOut = storageBuffer(device, T * nH * D * 4);
      await runKernel(device, new RopeKvKernel(device, kv), {
        qkv: uploadF32(device, qkv),
        rows,
        cosSin: uploadF32(device, ropeTable(maxLen, D, theta)),
        q: qOut,
        kCache,
        vCache,
        T,
        nH,
        nKv,
        D,
        maxLen,
      });
      expect(record('rope', maxAbsDiff(await readF32(device, qOut, T * nH * D), q))).toBeLessThan(ROPE_ATOL);
      const out = storageBuffer(device, T * nH * D * 4);
      await runKernel(device, new AttentionKernel(device, kv), {
        q: qOut,
        rows,
        kCache,
        vCache,
        out,
        T,
        nH,
        nKv,
        D,
        maxLen,
      });
      // With an f16 cache the reference reads the same rounded k/v, so the f32 tolerance still holds.
      const got = await readF32(device, out, T * nH * D);
      expect(record(`attention (${kv} cache)`, maxAbsDiff(got, want))).toBeLessThan(ATT_ATOL);
    });
  }

  it('swiglu on the fused gate|up layout', async () => {
    const device = await getTestDevice();
    const T = 3;
    const I = 70;
    const gu = randomF32(T * 2 * I, 41, 4);
    const gate = new Float32Array(T * I);
    const up = new Float32Array(T * I);
    for (let t = 0; t < T; t++) {
      gate.set(gu.subarray(t * 2 * I, t * 2 * I + I), t * I);
      up.set(gu.subarray(t * 2 * I + I, (t + 1) * 2 * I), t * I);
    }
    const want = new Float32Array(T * I);
    swiglu(want, gate, up, T * I);
    const act = storageBuffer(device, T * I * 4);
    await runKernel(device, new SwigluKernel(device), { gu: uploadF32(device, gu), act, T, I });
    // exp in f32 vs f64: relative 1e-6 on |values| ≤ 16.
    expect(record('swiglu', maxAbsDiff(await readF32(device, act, T * I), want))).toBeLessThan(2e-5);
  });

  it('log-prob of chosen tokens and greedy sampling over the vocabulary', async () => {
    const device = await getTestDevice();
    const R = 3;
    const V = 1000;
    const logits = randomF32(R * V, 51, 8);
    logits[1 * V + 999] = 20; // a clear maximum at the last id
    logits[2 * V + 3] = 9;
    logits[2 * V + 7] = 9; // a tie: the lower id wins
    const targets = [5, 999, 7];
    const want = new Float32Array(R);
    chosenLogprobs(want, logits, targets, R, V);
    const lb = uploadF32(device, logits);
    const out = uploadF32(device, new Float32Array(R + 2));
    await runKernel(device, new LogprobKernel(device), {
      logits: lb,
      targets: uploadU32(device, targets),
      out,
      R,
      V,
      outOff: 2,
    });
    const got = (await readF32(device, out, R + 2)).subarray(2);
    expect(record('logprob', maxAbsDiff(got, want))).toBeLessThan(1e-5);

    const sOut = storageBuffer(device, R * 12);
    await runKernel(device, new SampleKernel(device), {
      logits: lb,
      rowSeq: uploadU32(device, [0, 1, 2]),
      out: sOut,
      R,
      V,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 1,
      step: 0,
    });
    const u = await readU32(device, sOut, R * 3);
    const f = new Float32Array(u.buffer);
    for (let r = 0; r < R; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
      expect(u[r * 3]).toBe(best);
      const lp = new Float32Array(1);
      chosenLogprobs(lp, row, [best], 1, V);
      expect(Math.abs(f[r * 3 + 1] - lp[0])).toBeLessThan(1e-5);
      expect(f[r * 3 + 2]).toBe(0);
    }
    expect(u[2 * 3]).toBe(3);
  });

  it('prints the largest error per kernel', () => {
    console.log('forward kernel max abs errors vs reference:', JSON.stringify(report));
    expect(Object.keys(report).length).toBeGreaterThan(0);
  });
});
