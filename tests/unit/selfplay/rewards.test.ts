// Spec 6.2–6.5: format regex, learnability rewards, TRR++ and GRPO advantage vectors, k3 KL.
import { describe, expect, it } from 'vitest';
import { answerBody, extractBody, formatOk, formatOkFull } from '../../../src/selfplay/format.ts';
import {
  BASELINE_GROUPINGS,
  groupedAdvantages,
  grpoAdvantages,
  learnability,
  proposerReward,
  solverReward,
  trrppAdvantages,
} from '../../../src/selfplay/rewards.ts';

describe('format check (spec 6.2)', () => {
  it('accepts a think/answer pair with trailing text', () => {
    expect(formatOkFull('<think>a</think>\n<answer>5</answer>')).toBe(true);
    expect(formatOkFull('<think>a</think>\n<answer>5</answer> and then more text')).toBe(true);
    expect(formatOk('a</think> <answer>5</answer>')).toBe(true);
  });
  it('rejects a missing </think> and text before <think>', () => {
    expect(formatOkFull('<think>a\n<answer>5</answer>')).toBe(false);
    expect(formatOkFull('x<think>a</think><answer>5</answer>')).toBe(false);
    expect(formatOk(' hello <answer>5</answer>')).toBe(false);
    expect(formatOk('a</think> <answer>5')).toBe(false);
  });
  it('extracts the last answer body, normalising Markdown and unicode signs', () => {
    expect(answerBody('no tags')).toBe('');
    expect(answerBody('<answer>1</answer> <answer> 2 </answer>')).toBe('2');
    expect(answerBody('<answer>open to the end ')).toBe('open to the end');
    expect(extractBody('</think><answer>```\n\u22123 \u00d7 `x`\n```</answer>')).toBe('-3 * x');
    expect(extractBody('<answer>a\r\nb</answer>')).toBe('a\nb');
  });
});

describe('rewards (spec 4.6, 6.3)', () => {
  const s = (k: number, n = 8) => learnability(Array.from({ length: n }, (_, i) => i < k));
  it('learnability with n = 8', () => {
    expect(proposerReward(true, true, s(1), -0.5)).toBe(0.875);
    expect(proposerReward(true, true, s(4), -0.5)).toBe(0.5);
    expect(proposerReward(true, true, s(0), -0.5)).toBe(-0.5);
    expect(proposerReward(true, true, s(8), -0.5)).toBe(-0.5);
    expect(proposerReward(true, true, s(8), 0)).toBe(0);
    expect(proposerReward(false, true, s(4), -0.5)).toBe(-1);
    expect(proposerReward(true, false, s(4), -0.5)).toBe(-1);
  });
  it('drops timed-out samples from the mean', () => {
    expect(learnability([true, null, false, null])).toBe(0.5);
    expect(learnability([null, null])).toBeNull();
    expect(proposerReward(true, true, null, -0.5)).toBe(-0.5);
  });
  it('solver reward', () => {
    expect(solverReward(true, true)).toBe(1);
    expect(solverReward(true, false)).toBe(-0.5);
    expect(solverReward(false, true)).toBe(-1);
  });
});

describe('TRR++ (spec 4.7, 6.4)', () => {
  it('matches the spec vector', () => {
    const a = trrppAdvantages([1, -0.5, -0.5, -1]);
    const sd = Math.sqrt(0.75 + 1e-8);
    expect(a[0]).toBeCloseTo(1.25 / sd, 12);
    expect(a.map((x) => Number(x.toFixed(3)))).toEqual([1.443, -0.289, -0.289, -0.866]);
  });
  it('gives zeros for a constant group and for a single sample', () => {
    expect(trrppAdvantages([-1, -1, -1])).toEqual([0, 0, 0]);
    expect(trrppAdvantages([0.5])).toEqual([0]);
  });
  it('token norm weights by response length', () => {
    // lengths [3, 1]: μ = (3·1 + 1·0)/4 = 0.75, σ² = (3·0.0625 + 1·0.5625)/3 = 0.25
    const a = trrppAdvantages([1, 0], 'token', [3, 1]);
    expect(a[0]).toBeCloseTo(0.25 / Math.sqrt(0.25 + 1e-8), 12);
    expect(a[1]).toBeCloseTo(-0.75 / Math.sqrt(0.25 + 1e-8), 12);
    // one token per response: token weighting reduces to the per-sequence statistics
    expect(trrppAdvantages([1, 0], 'token', [1, 1])).toEqual(trrppAdvantages([1, 0], 'sequence'));
  });
  it('normalises groups independently; 2 and 1 baselines pool groups', () => {
    const seqs = [
      { type: 'ded' as const, role: 'propose' as const, reward: 1, length: 5 },
      { type: 'ded' as const, role: 'propose' as const, reward: 0, length: 5 },
      { type: 'abd' as const, role: 'propose' as const, reward: -1, length: 5 },
      { type: 'abd' as const, role: 'propose' as const, reward: 0.5, length: 5 },
      { type: 'ded' as const, role: 'solve' as const, reward: 1, length: 5 },
      { type: 'ded' as const, role: 'solve' as const, reward: 1, length: 5 },
    ];
    const six = groupedAdvantages(seqs, BASELINE_GROUPINGS[6], 'sequence');
    const changed = groupedAdvantages(
      seqs.map((s, k) => (k === 2 ? { ...s, reward: 0.9 } : s)),
      BASELINE_GROUPINGS[6],
      'sequence',
    );
    expect(changed.slice(0, 2)).toEqual(six.slice(0, 2));
    expect(changed.slice(4)).toEqual([0, 0]);
    expect(changed[2]).not.toBe(six[2]);
    const two = groupedAdvantages(seqs, BASELINE_GROUPINGS[2], 'sequence');
    expect(two.slice(0, 4)).toEqual(trrppAdvantages([1, 0, -1, 0.5]));
    const one = groupedAdvantages(seqs, BASELINE_GROUPINGS[1], 'sequence');
    expect(one).toEqual(trrppAdvantages(seqs.map((s) => s.reward)));
  });
});

describe('GRPO (spec 2, 6.5)', () => {
  it('group advantage vector', () => {
    const a = grpoAdvantages([1, 0, 0, 0], 4);
    expect(a[0]).toBeCloseTo(0.75 / 0.5001, 12);
    expect(a.map((x) => Number(x.toFixed(5)))).toEqual([1.4997, -0.4999, -0.4999, -0.4999]);
  });
  it('zero-std group gives zeros; groups are independent; scale none / batch', () => {
    expect(grpoAdvantages([1, 1, 0, 1], 2).slice(0, 2)).toEqual([0, 0]);
    expect(grpoAdvantages([1, 0, 2, 2], 2, 'none')).toEqual([0.5, -0.5, 0, 0]);
    const batchStd = Math.sqrt(((1 - 1.25) ** 2 + 1.25 ** 2 + 0.75 ** 2 * 2) / 3);
    expect(grpoAdvantages([1, 0, 2, 2], 2, 'batch')[0]).toBeCloseTo(0.5 / (batchStd + 1e-4), 12);
  });
});
