import { describe, expect, it } from 'vitest';
import {
  attention,
  attentionProbOffsets,
  embedding,
  linear,
  rmsnorm,
  rope,
  swiglu,
} from '../../../src/engine/reference/ops.ts';
import {
  attentionBackward,
  embeddingBackward,
  linearBackward,
  rmsnormBackward,
  ropeBackward,
  swigluBackward,
} from '../../../src/engine/reference/ops-backward.ts';
import { fdError, project, randF64 } from './fd.ts';

// Normalised FD error bound (see fd.ts): central differences in f64 reach ~1e-8 here.
const TOL = 1e-6;

describe('reference backward vs central finite differences (f64)', () => {
  it('embedding', () => {
    const [V, C] = [7, 3];
    const wte = randF64(V * C, 1);
    const ids = [3, 1, 3, 6];
    const r = randF64(ids.length * C, 2);
    const f = () => {
      const out = new Float64Array(ids.length * C);
      embedding(out, wte, ids, C);
      return project(out, r);
    };
    const d = new Float64Array(V * C);
    embeddingBackward(d, r, ids, C);
    expect(fdError(f, wte, d, 100)).toBeLessThan(TOL);
  });

  it('RMSNorm (input and weight)', () => {
    const [T, C] = [3, 8];
    const x = randF64(T * C, 3);
    const w = randF64(C, 4, 0.5).map((v) => v + 1);
    const r = randF64(T * C, 5);
    const f = () => {
      const out = new Float64Array(T * C);
      rmsnorm(out, null, x, w, T, C, 1e-6);
      return project(out, r);
    };
    const rstd = new Float64Array(T);
    rmsnorm(new Float64Array(T * C), rstd, x, w, T, C, 1e-6);
    const dx = new Float64Array(T * C);
    const dw = new Float64Array(C);
    rmsnormBackward(dx, dw, r, x, w, rstd, T, C);
    expect(fdError(f, x, dx, 100)).toBeLessThan(TOL);
    expect(fdError(f, w, dw, 100)).toBeLessThan(TOL);
  });

  it('linear with bias and LoRA (x, W, bias, A, B with B ≠ 0)', () => {
    const [T, N, K, R] = [3, 5, 4, 2];
    const x = randF64(T * K, 6);
    const W = randF64(N * K, 7);
    const bias = randF64(N, 8);
    const pair = { A: randF64(R * K, 9), B: randF64(N * R, 10), rank: R, scale: 2 };
    const r = randF64(T * N, 11);
    const f = () => {
      const out = new Float64Array(T * N);
      linear(out, x, W, bias, T, N, K, pair);
      return project(out, r);
    };
    const h = new Float64Array(T * R);
    linear(new Float64Array(T * N), x, W, bias, T, N, K, pair, h);
    const g = {
      dx: new Float64Array(T * K),
      dW: new Float64Array(N * K),
      dbias: new Float64Array(N),
      dA: new Float64Array(R * K),
      dB: new Float64Array(N * R),
    };
    linearBackward(g, r, x, W, T, N, K, pair, h);
    expect(fdError(f, x, g.dx, 100)).toBeLessThan(TOL);
    expect(fdError(f, W, g.dW, 100)).toBeLessThan(TOL);
    expect(fdError(f, bias, g.dbias, 100)).toBeLessThan(TOL);
    expect(fdError(f, pair.A, g.dA, 100)).toBeLessThan(TOL);
    expect(fdError(f, pair.B, g.dB, 100)).toBeLessThan(TOL);
  });

  it('RoPE (rotate-half, theta 10000, positions far from 0)', () => {
    const [T, H, d] = [3, 2, 8];
    const x = randF64(T * H * d, 12);
    const pos = [5, 17, 300];
    const r = randF64(T * H * d, 13);
    const f = () => {
      const c = Float64Array.from(x);
      rope(c, pos, T, H, d, 10000);
      return project(c, r);
    };
    const dx = Float64Array.from(r);
    ropeBackward(dx, pos, T, H, d, 10000);
    expect(fdError(f, x, dx, 100)).toBeLessThan(TOL);
  });

  it('causal GQA attention over sequences of different lengths', () => {
    const shape = { nHeads: 4, nKvHeads: 2, headDim: 3 };
    const offsets = [0, 4, 5, 8];
    const T = 8;
    const q = randF64(T * 12, 14);
    const k = randF64(T * 6, 15);
    const v = randF64(T * 6, 16);
    const r = randF64(T * 12, 17);
    const f = () => {
      const out = new Float64Array(T * 12);
      attention(out, q, k, v, offsets, shape);
      return project(out, r);
    };
    const probs = new Float64Array(attentionProbOffsets(offsets, 4)[3]);
    attention(new Float64Array(T * 12), q, k, v, offsets, shape, probs);
    const dq = new Float64Array(T * 12);
    const dk = new Float64Array(T * 6);
    const dv = new Float64Array(T * 6);
    attentionBackward(dq, dk, dv, r, q, k, v, probs, offsets, shape);
    expect(fdError(f, q, dq, 100)).toBeLessThan(TOL);
    expect(fdError(f, k, dk, 100)).toBeLessThan(TOL);
    expect(fdError(f, v, dv, 100)).toBeLessThan(TOL);
  });

  it('SwiGLU', () => {
    const n = 12;
    const gate = randF64(n, 18, 4);
    const up = randF64(n, 19);
    const r = randF64(n, 20);
    const f = () => {
      const out = new Float64Array(n);
      swiglu(out, gate, up, n);
      return project(out, r);
    };
    const dg = new Float64Array(n);
    const du = new Float64Array(n);
    swigluBackward(dg, du, r, gate, up, n);
    expect(fdError(f, gate, dg)).toBeLessThan(TOL);
    expect(fdError(f, up, du)).toBeLessThan(TOL);
  });
});
