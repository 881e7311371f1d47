import { adamwStep, clipFactor, globalGradNorm } from '../../../src/engine/reference/adamw.ts';
import { describe, expect, it } from 'vitest';
import { clippedPgToken, policyGradientLoss } from '../../../src/engine/reference/loss.ts';
import {
  qwen2PolicyGradient,
  zeroGrads,
  type PgBatchSequence,
} from '../../../src/engine/reference/qwen2-backward.ts';
import { qwen2CompletionLogprobs } from '../../../src/engine/reference/qwen2.ts';
import { randomRefLora, randomRefWeights } from '../../../src/engine/reference/random.ts';
import { pgTestSequences } from '../../helpers/pg-sequences.ts';
import { fdError, randF64 } from './fd.ts';
import { TINY } from './tiny.ts';
import { learningRate } from '../../../src/engine/lr-schedule.ts';

const TOL = 1e-6;
const V = 9;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('spec 4.7 loss (reference)', () => {
  const logits = randF64(5 * V, 1, 3);
  const targets = [1, 4, 0, 8, 2];
  const tokenOffsets = [0, 3, 5];
  const base = { clipEps: 0.2, entropyCoef: 0, klBeta: 0, totalTokens: 7 };

  it('with ρ ≡ 1 the value is −Σ A·L_j / N and dL/dlogπ = −A/N', () => {
    const seqs = [{ advantage: 0.5 }, { advantage: -2 }];
    const res = policyGradientLoss(logits, targets, tokenOffsets, seqs, V, base);
    expect(res.loss).toBeCloseTo(-(0.5 * 3 - 2 * 2) / 7, 12);
    // Row sums of dlogits are 0 (softmax − onehot), the target entry carries −A/N·(1 − p).
    for (let t = 0; t < 5; t++)
      expect(
        Math.abs(Array.from(res.dlogits.subarray(t * V, t * V + V)).reduce((a, b) => a + b, 0)),
      ).toBeLessThan(1e-15);
    const p0 = Math.exp(res.logprobs[0]);
    expect(res.dlogits[1]).toBeCloseTo((-0.5 / 7) * (1 - p0), 14);
  });

  type Extra = Partial<typeof base> & { temperature?: number; weights?: [number, number] };
  const cases: [string, Extra, boolean, boolean][] = [
    ['PPO clip with old logprobs (some tokens clipped)', {}, true, false],
    ['entropy bonus', { entropyCoef: 0.3 }, false, false],
    ['k3 KL', { klBeta: 0.7 }, false, true],
    ['all terms together', { entropyCoef: 0.1, klBeta: 0.2 }, true, true],
    ['tempered (T 0.7), all terms', { entropyCoef: 0.1, klBeta: 0.2, temperature: 0.7 }, true, true],
    ['per-sequence weights, all terms', { entropyCoef: 0.1, klBeta: 0.2, weights: [2.5, 0.4] }, true, true],
    [
      'tempered (T 1.6) and weighted',
      { entropyCoef: 0.2, klBeta: 0.3, temperature: 1.6, weights: [0.3, 1.7] },
      false,
      true,
    ],
  ];
  for (const [name, { weights, ...extra }, withOld, withRef] of cases) {
    it(`gradient vs finite differences: ${name}`, () => {
      const opts = { ...base, ...extra };
      const lp0 = policyGradientLoss(logits, targets, tokenOffsets, [{ advantage: 1 }, { advantage: 1 }], V, {
        ...base,
        temperature: extra.temperature,
      }).logprobs;
      // Old logprobs: with the clip, some far (ratio clipped, gradient 0) and some near (inside the
      // range). Without it they are frozen at the current logprobs: the on-policy value is constant in
      // the logits (ρ ≡ 1) but its gradient is that of the frozen loss, which finite differences see.
      const shift = withOld ? [0.05, 0.6, -0.5, 0.1, -0.03] : [0, 0, 0, 0, 0];
      const seqs = pgTestSequences(lp0, tokenOffsets, { shift, withRef, weights });
      const res = policyGradientLoss(logits, targets, tokenOffsets, seqs, V, opts);
      if (withOld) expect(res.clipped).toBeGreaterThan(0);
      const f = () => policyGradientLoss(logits, targets, tokenOffsets, seqs, V, opts).loss;
      // Step 1e-4: at 1e-5 the f64 round-off of an O(1) loss (~1e-11 / h) is 1e-6 of a gradient entry of
      // 1e-6 (tempered rows have such entries), while the truncation error at 1e-4 stays below 1e-7.
      expect(fdError(f, logits, res.dlogits, 45, 1, 1e-4)).toBeLessThan(TOL);
    });
  }

  it("a weight scales its sequence's loss and gradient; T = 1 and w = 1 are the plain loss exactly", () => {
    const seqs = [{ advantage: 0.5 }, { advantage: -2 }];
    const opts = { ...base, entropyCoef: 0.1 };
    const plain = policyGradientLoss(logits, targets, tokenOffsets, seqs, V, opts);
    const ones = policyGradientLoss(
      logits,
      targets,
      tokenOffsets,
      seqs.map((s) => ({ ...s, weight: 1 })),
      V,
      { ...opts, temperature: 1 },
    );
    expect(ones.loss).toBe(plain.loss);
    expect(Array.from(ones.dlogits)).toEqual(Array.from(plain.dlogits));
    const w = policyGradientLoss(
      logits,
      targets,
      tokenOffsets,
      [{ ...seqs[0], weight: 3 }, seqs[1]],
      V,
      opts,
    );
    for (let i = 0; i < 3 * V; i++) expect(w.dlogits[i]).toBeCloseTo(3 * plain.dlogits[i], 14);
    for (let i = 3 * V; i < 5 * V; i++) expect(w.dlogits[i]).toBe(plain.dlogits[i]);
    // Tempered log-probs are log softmax(z / T).
    const hot = policyGradientLoss(logits, targets, tokenOffsets, seqs, V, { ...opts, temperature: 2 });
    const row = Array.from(logits.subarray(0, V), (x) => x / 2);
    const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    expect(hot.logprobs[0]).toBeCloseTo(row[targets[0]] - lse, 12);
  });

  it('clip: the unclipped branch inside [1−ε, 1+ε], zero gradient where the clip binds', () => {
    expect(clippedPgToken(1, 0, 0, 0.2)).toEqual([-1, -1, false]);
    const [l, g, c] = clippedPgToken(1, Math.log(1.5), 0, 0.2); // A > 0, ρ > 1+ε: clipped
    expect([l, g, c]).toEqual([-1.2, 0, true]);
    const [l2, g2, c2] = clippedPgToken(-1, Math.log(1.5), 0, 0.2); // A < 0, ρ > 1+ε: unclipped (pessimistic)
    expect(l2).toBeCloseTo(1.5, 12);
    expect(g2).toBeCloseTo(1.5, 12);
    expect(c2).toBe(false);
  });
});

describe('whole-model gradients (reference, f64)', () => {
  const w = randomRefWeights(TINY, 3, 'f64');
  const lora = randomRefLora(TINY, 4, 2, 5, undefined, 'f64');
  const batch: PgBatchSequence[] = [
    { promptIds: [1, 2, 3], completionIds: [4, 5, 6, 7], advantage: 0.8 },
    { promptIds: [9], completionIds: [10, 11], advantage: -1.1 },
    { promptIds: [12, 13, 14, 15, 16], completionIds: [17], advantage: 0.4 },
  ];
  const opts = { clipEps: 0.2, entropyCoef: 0.05, klBeta: 0 };

  // The on-policy loss value is constant in θ (ρ ≡ 1). Its gradient equals that of the same loss with
  // logπ_old frozen at θ0, whose value does move with θ: finite differences run on that one.
  const lp0 = qwen2CompletionLogprobs(TINY, w, batch, lora);
  const frozen = batch.map((s, j) => ({ ...s, oldLogprobs: lp0[j] }));

  it('on-policy gradient equals the gradient with frozen old logprobs', () => {
    const a = qwen2PolicyGradient(TINY, w, lora, batch, opts).grads.lora;
    const b = qwen2PolicyGradient(TINY, w, lora, frozen, opts).grads.lora;
    for (const k of Object.keys(a)) expect(maxDiff(a[k].dA, b[k].dA)).toBeLessThan(1e-14);
  });

  it('LoRA A and B gradients (B ≠ 0) of all 7 projections in both layers', () => {
    const res = qwen2PolicyGradient(TINY, w, lora, frozen, opts);
    const f = () => qwen2PolicyGradient(TINY, w, lora, frozen, opts).loss;
    for (const [name, pair] of Object.entries(lora)) {
      expect(fdError(f, pair.A as Float64Array, res.grads.lora[name].dA, 6), `${name} A`).toBeLessThan(TOL);
      expect(fdError(f, pair.B as Float64Array, res.grads.lora[name].dB, 6), `${name} B`).toBeLessThan(TOL);
    }
  });

  it('every base weight gradient (full fine-tuning), KL term on', () => {
    const ref = batch.map((_, j) => lp0[j].map((x) => x - 0.2));
    const withRef = frozen.map((s, j) => ({ ...s, refLogprobs: ref[j] }));
    const o = { ...opts, klBeta: 0.3 };
    const res = qwen2PolicyGradient(TINY, w, null, withRef, { ...o, weightGrads: true });
    const f = () => qwen2PolicyGradient(TINY, w, null, withRef, o).loss;
    for (const [name, t] of Object.entries(w)) {
      expect(fdError(f, t as Float64Array, res.grads.weights![name], 4), name).toBeLessThan(TOL);
    }
  });

  it('micro-batches with the global token count sum to the full-batch gradient', () => {
    const full = qwen2PolicyGradient(TINY, w, lora, batch, opts);
    const grads = zeroGrads(w, lora, false);
    const totalTokens = 7;
    let loss = 0;
    for (const part of [batch.slice(0, 1), batch.slice(1)]) {
      loss += qwen2PolicyGradient(TINY, w, lora, part, { ...opts, totalTokens, grads }).loss;
    }
    expect(loss).toBeCloseTo(full.loss, 12);
    for (const k of Object.keys(grads.lora)) {
      expect(maxDiff(grads.lora[k].dA, full.grads.lora[k].dA)).toBeLessThan(1e-14);
      expect(maxDiff(grads.lora[k].dB, full.grads.lora[k].dB)).toBeLessThan(1e-14);
    }
  });
});

describe('AdamW + clip (reference)', () => {
  it('first step moves every parameter by lr·sign(g) (bias-corrected), clip scales the norm to maxNorm', () => {
    const g = Float64Array.from([3, -4]);
    const n = globalGradNorm([g]);
    expect(n).toBe(5);
    expect(clipFactor(n, 1)).toBeCloseTo(1 / (5 + 1e-6), 15);
    expect(clipFactor(0.5, 1)).toBe(1);
    const p = Float64Array.from([1, 1]);
    const m = new Float64Array(2);
    const v = new Float64Array(2);
    adamwStep(p, g, m, v, 1, clipFactor(n, 1), {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
    });
    expect(p[0]).toBeCloseTo(1 * (1 - 0.001) - 0.1, 6);
    expect(p[1]).toBeCloseTo(1 * (1 - 0.001) + 0.1, 6);
    expect(learningRate(1, 1, 4)).toBe(0.25);
    expect(learningRate(1, 9, 4)).toBe(1);
  });
});
