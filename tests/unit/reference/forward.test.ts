import { describe, expect, it } from 'vitest';
import {
  attention,
  chosenLogprobs,
  linear,
  logSoftmax,
  rmsnorm,
  rope,
} from '../../../src/engine/reference/ops.ts';
import { qwen2CompletionLogprobs, qwen2Forward, qwen2Logits } from '../../../src/engine/reference/qwen2.ts';
import {
  convertLora,
  convertWeights,
  randomRefLora,
  randomRefWeights,
} from '../../../src/engine/reference/random.ts';
import { TINY } from './tiny.ts';
import { moduleName } from '../../../src/model/lora.ts';
import { uniformSource } from '../../../src/random.ts';

function rand(n: number, seed: number): Float64Array {
  const next = uniformSource(seed);
  return Float64Array.from({ length: n }, next);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('reference ops', () => {
  it('RMSNorm: unit RMS before the weight, then scaled by it', () => {
    const x = Float64Array.from([3, 4, 0, 0]);
    const w = Float64Array.from([1, 2, 1, 1]);
    const out = new Float64Array(4);
    const rstd = new Float64Array(1);
    rmsnorm(out, rstd, x, w, 1, 4, 0);
    expect(rstd[0]).toBeCloseTo(1 / 2.5, 12);
    expect(Array.from(out)).toEqual([1.2, 3.2, 0, 0].map((v) => expect.closeTo(v, 12)));
  });

  it('RoPE: position 0 is the identity, norms are kept, scores depend only on the offset', () => {
    const d = 8;
    const q = rand(d, 1);
    const k = rand(d, 2);
    const at = (v: Float64Array, pos: number) => {
      const c = Float64Array.from(v);
      rope(c, [pos], 1, 1, d, 10000);
      return c;
    };
    expect(maxDiff(at(q, 0), q)).toBe(0);
    const norm = (v: Float64Array) => Math.hypot(...v);
    expect(norm(at(q, 7))).toBeCloseTo(norm(q), 12);
    const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);
    expect(dot(at(q, 9), at(k, 4))).toBeCloseTo(dot(at(q, 105), at(k, 100)), 10);
    // rotate-half: the pair (i, i + d/2) rotates together, at frequency theta^(-2i/d).
    const e = new Float64Array(d);
    e[0] = 1;
    const r = at(e, 1);
    expect(r[0]).toBeCloseTo(Math.cos(1), 12);
    expect(r[d / 2]).toBeCloseTo(Math.sin(1), 12);
    const inv = Float64Array.from(r);
    rope(inv, [1], 1, 1, d, 10000, true);
    expect(maxDiff(inv, e)).toBeLessThan(1e-15);
  });

  it('attention: the first token sees only itself; GQA maps query heads onto shared KV heads', () => {
    const shape = { nHeads: 4, nKvHeads: 2, headDim: 2 };
    const T = 3;
    const q = rand(T * 8, 3);
    const k = rand(T * 4, 4);
    const v = rand(T * 4, 5);
    const out = new Float64Array(T * 8);
    attention(out, q, k, v, [0, T], shape);
    // token 0, heads 0,1 → kv head 0; heads 2,3 → kv head 1
    expect(Array.from(out.subarray(0, 8))).toEqual([v[0], v[1], v[0], v[1], v[2], v[3], v[2], v[3]]);
    // two sequences packed = each alone
    const out2 = new Float64Array(T * 8);
    attention(out2, q, k, v, [0, 1, T], shape);
    const alone = new Float64Array(2 * 8);
    attention(alone, q.subarray(8), k.subarray(4), v.subarray(4), [0, 2], shape);
    expect(maxDiff(out2.subarray(8), alone)).toBe(0);
  });

  it('linear with LoRA equals the merged weight W + scale·B·A', () => {
    const [T, N, K, r] = [3, 5, 4, 2];
    const x = rand(T * K, 6);
    const W = rand(N * K, 7);
    const bias = rand(N, 8);
    const pair = { A: rand(r * K, 9), B: rand(N * r, 10), rank: r, scale: 1.5 };
    const merged = Float64Array.from(W);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < r; j++) s += pair.B[n * r + j] * pair.A[j * K + k];
        merged[n * K + k] += pair.scale * s;
      }
    const a = new Float64Array(T * N);
    const b = new Float64Array(T * N);
    linear(a, x, W, bias, T, N, K, pair);
    linear(b, x, merged, bias, T, N, K);
    expect(maxDiff(a, b)).toBeLessThan(1e-14);
  });

  it('log-softmax rows exponentiate to 1 and chosen logprobs pick from them', () => {
    const logits = rand(2 * 6, 11).map((x) => x * 30);
    const ls = new Float64Array(12);
    logSoftmax(ls, logits, 2, 6);
    for (let t = 0; t < 2; t++)
      expect(ls.subarray(t * 6, t * 6 + 6).reduce((s, x) => s + Math.exp(x), 0)).toBeCloseTo(1, 12);
    const lp = new Float64Array(2);
    chosenLogprobs(lp, logits, [4, 1], 2, 6);
    expect(lp[0]).toBeCloseTo(ls[4], 12);
    expect(lp[1]).toBeCloseTo(ls[7], 12);
  });
});

describe('reference Qwen2 forward', () => {
  const w = randomRefWeights(TINY, 1, 'f64');

  it('is causal: later tokens do not change earlier logits', () => {
    const a = qwen2Logits(TINY, w, [{ ids: [1, 2, 3, 4, 5] }]).logits;
    const b = qwen2Logits(TINY, w, [{ ids: [1, 2, 3, 9, 7] }]).logits;
    expect(maxDiff(a.subarray(0, 3 * TINY.vocabSize), b.subarray(0, 3 * TINY.vocabSize))).toBe(0);
    expect(maxDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it('a sequence gives the same logits alone and packed with others of different lengths', () => {
    const alone = qwen2Logits(TINY, w, [{ ids: [7, 8, 9] }]).logits;
    const packed = qwen2Logits(TINY, w, [{ ids: [1, 2, 3, 4, 5] }, { ids: [7, 8, 9] }, { ids: [3] }]).logits;
    const V = TINY.vocabSize;
    expect(maxDiff(packed.subarray(5 * V, 8 * V), alone)).toBe(0);
  });

  it('explicit positions shift RoPE: a sequence at positions p.. equals its own tokens after a prefix only through attention', () => {
    // With a single token, attention returns v regardless of position, so its logits ignore the position.
    const a = qwen2Logits(TINY, w, [{ ids: [5], positions: [0] }]).logits;
    const b = qwen2Logits(TINY, w, [{ ids: [5], positions: [17] }]).logits;
    expect(maxDiff(a, b)).toBeLessThan(1e-12);
    // With two tokens the relative offset matters, the absolute start does not.
    const c = qwen2Logits(TINY, w, [{ ids: [5, 6], positions: [0, 1] }]).logits;
    const e = qwen2Logits(TINY, w, [{ ids: [5, 6], positions: [30, 31] }]).logits;
    expect(maxDiff(c, e)).toBeLessThan(1e-10);
  });

  it('LoRA with B = 0 changes nothing; with B ≠ 0 it does', () => {
    const lora = randomRefLora(TINY, 2, 3, 6, undefined, 'f64');
    const zeroB = Object.fromEntries(
      Object.entries(lora).map(([k, p]) => [k, { ...p, B: new Float64Array(p.B.length) }]),
    );
    const seqs = [{ ids: [1, 2, 3, 4] }];
    const base = qwen2Logits(TINY, w, seqs).logits;
    expect(maxDiff(qwen2Logits(TINY, w, seqs, zeroB).logits, base)).toBe(0);
    expect(maxDiff(qwen2Logits(TINY, w, seqs, lora).logits, base)).toBeGreaterThan(1e-3);
    expect(Object.keys(lora)).toContain(moduleName(1, 'mlp.down_proj'));
  });

  it('completion logprobs read the row before each completion token', () => {
    const batch = [
      { promptIds: [1, 2], completionIds: [3, 4, 5] },
      { promptIds: [6], completionIds: [7] },
    ];
    const lps = qwen2CompletionLogprobs(TINY, w, batch);
    const full = qwen2Logits(TINY, w, [{ ids: [1, 2, 3, 4, 5] }]).logits;
    const V = TINY.vocabSize;
    const ls = new Float64Array(5 * V);
    logSoftmax(ls, full, 5, V);
    expect(lps[0][0]).toBeCloseTo(ls[1 * V + 3], 12);
    expect(lps[0][2]).toBeCloseTo(ls[3 * V + 5], 12);
    expect(lps[1].length).toBe(1);
  });

  it('the f32 path agrees with the f64 path', () => {
    const w32 = convertWeights(w, 'f32');
    const lora = randomRefLora(TINY, 3, 2, 4, undefined, 'f64');
    const seqs = [{ ids: [1, 2, 3, 4, 5, 6] }, { ids: [9, 8] }];
    const a = qwen2Forward(TINY, w, seqs, lora).hidden;
    const b = qwen2Forward(TINY, w32, seqs, convertLora(lora, 'f32')).hidden;
    expect(b).toBeInstanceOf(Float32Array);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
  });
});
