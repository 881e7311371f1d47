import { describe, expect, it } from 'vitest';
import { readF32 } from '../../src/engine/buffers.ts';
import { DecodeAttentionKernel } from '../../src/engine/kernels/attention-decode.ts';
import { PrefillAttentionKernel } from '../../src/engine/kernels/attention-prefill.ts';
import { EmbeddingKernel } from '../../src/engine/kernels/embedding.ts';
import { GemvKernel } from '../../src/engine/kernels/gemv.ts';
import { LogprobKernel } from '../../src/engine/kernels/logprob.ts';
import { F16_FOLD, MatmulKernel } from '../../src/engine/kernels/matmul.ts';
import { RmsNormKernel } from '../../src/engine/kernels/rmsnorm.ts';
import { RopeKvKernel, ropeTable } from '../../src/engine/kernels/rope-kv.ts';
import { SampleKernel } from '../../src/engine/kernels/sample.ts';
import { SwigluKernel } from '../../src/engine/kernels/swiglu.ts';
import type { WeightDType } from '../../src/engine/kernels/weights-wgsl.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../../src/engine/gpu.ts';
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
import { getTestContext, getTestDevice, maxAbsDiff, randomF32 } from '../helpers/gpu.ts';
import { readU32, runKernel, storageBuffer, uploadBytes, uploadF32, uploadU32 } from './kernel-harness.ts';

/** Weights rounded to a 16-bit dtype, as stored bytes and as the f32 values the reference uses. */
function asDType(values: Float32Array, dtype: WeightDType): { bytes: Uint8Array; f32: Float32Array } {
  if (dtype === 'f32') return { bytes: new Uint8Array(values.buffer.slice(0)), f32: values };
  const file = dtype === 'f16' ? 'F16' : 'BF16';
  const bytes = encodeFloats(values, file).slice();
  return { bytes, f32: decodeFloats(bytes, file) };
}

/** The `shader-f16` path (native f16 loads/stores; f16 multiplies for f16 weights). */
const F16_SHADERS: ShaderFeatures = { f16: true, subgroups: false };
/** The `subgroups` path (subgroupAdd/subgroupMax inside a subgroup; lavapipe's subgroups have 8 lanes). */
const SUBGROUP_SHADERS: ShaderFeatures = { f16: false, subgroups: true };
/** f16 unit roundoff: one rounding to f16 moves a value by at most 2^-11 of itself. */
const U16 = 2 ** -11;

/**
 * Largest |got − want| / bound over the outputs, bound = atol + relPerTerm·Σ_k |x_k·w_k| (the error
 * analysis of an f16 dot product: each rounding moves a partial result by ≤ U16 of what it rounds).
 */
function worstRatio(got: Float32Array, want: Float32Array, absSum: Float32Array, atol: number, rel: number) {
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (atol + rel * absSum[i]));
  return worst;
}

const report: Record<string, number> = {};
function record(name: string, err: number): number {
  report[name] = Math.max(report[name] ?? 0, err);
  return err;
}

describe('forward kernels vs reference', () => {
  it('the test device offers the shader-f16 path (lavapipe does), so both paths below are exercised', async () => {
    expect((await getTestContext()).report.features['shader-f16']).toBe(true);
  });

  // The reference reads the same 16-bit-rounded weights, so every dtype meets the f32 tolerance: the
  // only difference left is f32 summation order (√K·ε growth; K ≤ 200 here).
  const MATMUL_ATOL = 1e-4;
  // f16 arithmetic (F16_FOLD-term f16 partial sums, matmul.ts): a rounded to f16, each product rounded,
  // F16_FOLD − 1 f16 additions before the f32 fold: error ≤ (F16_FOLD + 1)·U16·Σ|x·w| (first order).
  const F16_MATMUL_REL = (F16_FOLD + 1) * U16;
  for (const [dtype, math] of [
    ['f32', 'f32'],
    ['f16', 'f32'],
    ['bf16', 'f32'],
    ['f16', 'f16'],
  ] as const) {
    for (const [M, N, K] of [
      [1, 96, 64],
      [7, 13, 6],
      [65, 70, 130],
    ] as const) {
      it(`linear ${dtype} (${math} math) M=${M} N=${N} K=${K} (+bias, column window, accumulate)`, async () => {
        const device = await getTestDevice();
        const name = `linear ${dtype}${math === 'f16' ? ' f16-math' : ''}`;
        const x = randomF32(M * K, 11 + M);
        const w = asDType(randomF32(N * K, 12 + N), dtype);
        const bias = randomF32(N, 13);
        const want = new Float32Array(M * N);
        linear(want, x, w.f32, bias, M, N, K);
        // Into columns [3, 3+N) of a [M, N+5] output whose other columns must stay untouched.
        const ldo = N + 5;
        const out = uploadF32(device, new Float32Array(M * ldo).fill(7));
        const k = new MatmulKernel(device, true, dtype, math === 'f16' ? F16_SHADERS : PORTABLE_SHADERS);
        expect(k.arithmetic).toBe(math);
        const absSum = new Float32Array(M * N);
        linear(absSum, x.map(Math.abs), w.f32.map(Math.abs), null, M, N, K);
        const rel = math === 'f16' ? F16_MATMUL_REL : 0;
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
        record(name, maxAbsDiff(win, want));
        expect(worstRatio(win, want, absSum, MATMUL_ATOL, rel)).toBeLessThan(1);
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
        let worst = 0;
        for (let m = 0; m < M; m++)
          for (let j = 0; j < N; j++) {
            const e = Math.abs(got2[m * ldo + 3 + j] - (want[m * N + j] + 0.5 * noBias[m * N + j]));
            err = Math.max(err, e);
            // The first pass's error plus half the second's.
            worst = Math.max(worst, e / (2 * MATMUL_ATOL + 1.5 * rel * absSum[m * N + j]));
          }
        record(`${name} accumulate`, err);
        expect(worst).toBeLessThan(1);
      });
    }
  }

  // K = 130 takes the narrow (column-per-invocation) shader, K = 300 the split-K one (NARROW_K = 256).
  // f16 arithmetic (gemv.ts): x rounded to f16, two f16 products and one f16 add per weight pair before
  // the f32 fold: error ≤ 3·U16·Σ|x·w| (first order).
  // Subgroup sums (wide shader) reorder the f32 additions only: the f32 tolerance holds.
  const F16_GEMV_REL = 3 * U16;
  for (const [dtype, K, math, subgroups] of [
    ['f32', 130, 'f32', false],
    ['f16', 130, 'f32', false],
    ['bf16', 130, 'f32', false],
    ['f32', 300, 'f32', false],
    ['bf16', 300, 'f32', false],
    ['f16', 130, 'f16', false],
    ['f16', 300, 'f16', false],
    ['f32', 300, 'f32', true],
    ['f16', 300, 'f16', true],
  ] as const) {
    const path = `${math} math${subgroups ? ', subgroups' : ''}`;
    it(`gemv (decode matmul) ${dtype} (${path}) K=${K}: vs reference, and each row independent of M`, async () => {
      const device = await getTestDevice();
      const N = 37;
      const w = asDType(randomF32(N * K, 61, 1), dtype);
      const bias = randomF32(N, 62);
      const k = new GemvKernel(device, dtype, { f16: math === 'f16', subgroups });
      expect(k.arithmetic).toBe(math);
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
      const absSum = new Float32Array(13 * N);
      linear(absSum, x.map(Math.abs), w.f32.map(Math.abs), null, 13, N, K);
      record(`gemv ${dtype} (${path}) K=${K}`, maxAbsDiff(all, want));
      expect(worstRatio(all, want, absSum, MATMUL_ATOL, math === 'f16' ? F16_GEMV_REL : 0)).toBeLessThan(1);
      for (const M of [1, 2, 3, 8]) {
        const got = await rowsOf(M);
        expect(Array.from(got)).toEqual(Array.from(all.subarray(0, M * N)));
      }
    });
  }

  for (const [dtype, features] of [
    ['f32', PORTABLE_SHADERS],
    ['f16', PORTABLE_SHADERS],
    ['bf16', PORTABLE_SHADERS],
    ['f16', F16_SHADERS],
  ] as const) {
    const native = features.f16 && dtype === 'f16';
    it(`embedding gather ${dtype}${native ? ' (native f16 loads)' : ''} across two table chunks`, async () => {
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
      const k = new EmbeddingKernel(device, dtype, features);
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
      const got = await readF32(device, out, ids.length * C);
      expect(record(`embedding ${dtype}${native ? ' native' : ''}`, maxAbsDiff(got, want))).toBe(0);
    });
  }

  // rsqrt of a mean over ≤ 100 values in f32: relative error ~1e-6 on O(1) outputs.
  const NORM_ATOL = 1e-5;
  // Subgroup reductions reorder the sum of squares only: same tolerance.
  for (const [C, features] of [
    [8, PORTABLE_SHADERS],
    [64, PORTABLE_SHADERS],
    [100, PORTABLE_SHADERS],
    [8, SUBGROUP_SHADERS],
    [100, SUBGROUP_SHADERS],
  ] as const) {
    const sub = features.subgroups ? ' (subgroups)' : '';
    it(`rmsnorm plain / residual / residual+gather C=${C}${sub}`, async () => {
      const device = await getTestDevice();
      const T = 5;
      const eps = 1e-6;
      const x = randomF32(T * C, 21 + C, 2);
      const delta = randomF32(T * C, 22 + C);
      const w = randomF32(C, 23, 1.5);
      const k1 = new RmsNormKernel(device, { residual: false, gather: false }, features);
      const want = new Float32Array(T * C);
      rmsnorm(want, null, x, w, T, C, eps);
      const out = storageBuffer(device, T * C * 4);
      const xb = uploadF32(device, x);
      await runKernel(device, k1, { x: xb, weight: uploadF32(device, w), out, R: T, C, eps });
      expect(record(`rmsnorm${sub}`, maxAbsDiff(await readF32(device, out, T * C), want))).toBeLessThan(
        NORM_ATOL,
      );

      const sum = x.map((v, i) => v + delta[i]);
      rmsnorm(want, null, sum, w, T, C, eps);
      const k2 = new RmsNormKernel(device, { residual: true, gather: false }, features);
      await runKernel(device, k2, {
        x: xb,
        delta: uploadF32(device, delta),
        weight: uploadF32(device, w),
        out,
        R: T,
        C,
        eps,
      });
      expect(
        record(`rmsnorm residual${sub}`, maxAbsDiff(await readF32(device, out, T * C), want)),
      ).toBeLessThan(NORM_ATOL);
      expect(maxAbsDiff(await readF32(device, xb, T * C), sum)).toBe(0);

      // Gather rows 4 and 1 of x + delta (x is the original again) into output rows 1, 2.
      const rows = [4, 1];
      const k3 = new RmsNormKernel(device, { residual: true, gather: true }, features);
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
      expect(record(`rmsnorm gather${sub}`, maxAbsDiff(got, wantG))).toBeLessThan(NORM_ATOL);
    });
  }

  // RoPE uses the reference's own f32 cos/sin (host table): only the rotation's rounding differs.
  const ROPE_ATOL = 1e-6;
  // Softmax-weighted sums of ≤ 70 values in f32 against the reference's f64 softmax.
  const ATT_ATOL = 1e-5;
  // native: the f16 cache written and read as vec2<f16> (shader-f16) instead of packed u32 words.
  // subgroups: the key blocks' max and sum by subgroup reductions (sums reorder: same tolerance).
  for (const [nH, nKv, D, lens, kv, native, subgroups] of [
    [4, 2, 16, [5, 1, 70], 'f32', false, false],
    [2, 1, 8, [3, 9], 'f32', false, false],
    [3, 3, 64, [66], 'f32', false, false],
    [4, 2, 16, [5, 1, 70], 'f16', false, false],
    [7, 1, 64, [2, 33], 'f16', false, false],
    [4, 2, 16, [5, 1, 70], 'f16', true, false],
    [7, 1, 64, [2, 33], 'f16', true, false],
    [4, 2, 16, [5, 1, 70], 'f32', false, true],
    [7, 1, 64, [2, 33, 130], 'f16', true, true],
  ] as const) {
    const features: ShaderFeatures = { f16: native, subgroups };
    const cacheName = `${kv} cache${native ? ' native' : ''}${subgroups ? ', subgroups' : ''}`;
    it(`rope + KV cache (${cacheName}) + attention nH=${nH} nKv=${nKv} D=${D} lengths ${lens.join(',')}`, async () => {
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

      const maxLen = Math.max(80, ...lens);
      const cacheBytes = lens.length * maxLen * nKv * D * (kv === 'f16' ? 2 : 4);
      const kCache = storageBuffer(device, cacheBytes);
      const vCache = storageBuffer(device, cacheBytes);
      const rows = uploadU32(
        device,
        slots.flatMap((s, i) => [s, positions[i]]),
      );
      const qOut = storageBuffer(device, T * nH * D * 4);
      const qkvBuf = uploadF32(device, qkv);
      const cosSin = uploadF32(device, ropeTable(maxLen, D, theta));
      const shape = { rows, T, nH, nKv, D, maxLen };
      const ropeArgs = { qkv: qkvBuf, cosSin, q: qOut, kCache, vCache, ...shape };
      await runKernel(device, new RopeKvKernel(device, kv, features), ropeArgs);
      expect(record('rope', maxAbsDiff(await readF32(device, qOut, T * nH * D), q))).toBeLessThan(ROPE_ATOL);
      const out = storageBuffer(device, T * nH * D * 4);
      await runKernel(device, new DecodeAttentionKernel(device, kv, features), {
        q: qOut,
        kCache,
        vCache,
        out,
        ...shape,
      });
      // With an f16 cache the reference reads the same rounded k/v, so the f32 tolerance still holds.
      const got = await readF32(device, out, T * nH * D);
      expect(record(`attention (${cacheName})`, maxAbsDiff(got, want))).toBeLessThan(ATT_ATOL);
      // The prefill kernel on both adapter kinds (the decode kernel on 'gpu', per-row on 'cpu').
      for (const adapterKind of ['gpu', 'cpu'] as const) {
        const outPrefill = storageBuffer(device, T * nH * D * 4);
        await runKernel(device, new PrefillAttentionKernel(device, kv, { ...features, adapterKind }), {
          q: qOut,
          kCache,
          vCache,
          out: outPrefill,
          ...shape,
        });
        const gotPrefill = await readF32(device, outPrefill, T * nH * D);
        expect(
          record(`prefill attention ${adapterKind} (${cacheName})`, maxAbsDiff(gotPrefill, want)),
        ).toBeLessThan(ATT_ATOL);
      }
      if (native) {
        // Native f16 stores and loads are the packed path's bytes and values, bit for bit.
        const kPacked = storageBuffer(device, cacheBytes);
        const vPacked = storageBuffer(device, cacheBytes);
        const packed = { ...features, f16: false };
        await runKernel(device, new RopeKvKernel(device, kv, packed), {
          ...ropeArgs,
          kCache: kPacked,
          vCache: vPacked,
        });
        for (const [a, b] of [
          [kCache, kPacked],
          [vCache, vPacked],
        ])
          expect(Array.from(await readU32(device, a, cacheBytes / 4))).toEqual(
            Array.from(await readU32(device, b, cacheBytes / 4)),
          );
        const outPacked = storageBuffer(device, T * nH * D * 4);
        await runKernel(device, new DecodeAttentionKernel(device, kv, packed), {
          q: qOut,
          kCache,
          vCache,
          out: outPacked,
          ...shape,
        });
        expect(Array.from(await readF32(device, outPacked, T * nH * D))).toEqual(Array.from(got));
      }
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

  // Both reduction builds: the workgroup tree and subgroup operations (sums reorder f32 additions only,
  // so the same f32 tolerances hold; max, count and argmax are exact on both).
  for (const features of [PORTABLE_SHADERS, SUBGROUP_SHADERS]) {
    const sub = features.subgroups ? ' (subgroups)' : '';
    it(`log-prob of chosen tokens and greedy sampling over the vocabulary${sub}`, async () => {
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
      await runKernel(device, new LogprobKernel(device, features), {
        logits: lb,
        targets: uploadU32(device, targets),
        out,
        R,
        V,
        outOff: 2,
      });
      const got = (await readF32(device, out, R + 2)).subarray(2);
      expect(record(`logprob${sub}`, maxAbsDiff(got, want))).toBeLessThan(1e-5);

      const sample = async (f: ShaderFeatures, temperature: number, topK: number) => {
        const sOut = storageBuffer(device, R * 12);
        await runKernel(device, new SampleKernel(device, f), {
          logits: lb,
          rowSeq: uploadU32(device, [0, 1, 2]),
          out: sOut,
          R,
          V,
          temperature,
          topK,
          topP: 1,
          seed: 1,
          step: 0,
        });
        return readU32(device, sOut, R * 3);
      };
      const u = await sample(features, 0, 0);
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
      if (features.subgroups) {
        // Top-k (counts) and the Gumbel-max draw (argmax) are exact reductions: the same tokens as the tree.
        const tree = await sample(PORTABLE_SHADERS, 0.8, 50);
        const mine = await sample(features, 0.8, 50);
        expect([0, 1, 2].map((r) => mine[r * 3])).toEqual([0, 1, 2].map((r) => tree[r * 3]));
      }
    });
  }

  it('prints the largest error per kernel', () => {
    console.log('forward kernel max abs errors vs reference:', JSON.stringify(report));
    expect(Object.keys(report).length).toBeGreaterThan(0);
  });
});
