import { describe, expect, it } from 'vitest';
import { planMicroBatches } from '../../../src/engine/train.ts';
import { trainStepFlops } from '../../../src/engine/train-bench.ts';
import { parseQwen2Config, qwen2_0_5bConfigJson } from '../../../src/model/qwen2-config.ts';

const seq = (p: number, c: number, advantage = 1) => ({
  promptIds: Array.from({ length: p }, (_, i) => i + 1),
  completionIds: Array.from({ length: c }, (_, i) => 100 + i),
  advantage,
});

describe('micro-batch planning', () => {
  it('packs sequences under the slot, token and micro-batch limits, in order', () => {
    const seqs = [seq(3, 2), seq(5, 4), seq(1, 1), seq(2, 6)];
    const lens = [4, 8, 1, 7];
    const all = planMicroBatches(seqs, { maxSlots: 8, maxTokens: 64, maxLen: 16 });
    expect(all).toHaveLength(1);
    expect(all[0].ids).toHaveLength(lens.reduce((a, b) => a + b, 0));
    const byTokens = planMicroBatches(seqs, { maxSlots: 8, maxTokens: 12, maxLen: 16 });
    expect(byTokens.map((m) => m.seqs.length)).toEqual([2, 2]);
    const bySlots = planMicroBatches(seqs, { maxSlots: 3, maxTokens: 64, maxLen: 16 });
    expect(bySlots.map((m) => m.seqs.length)).toEqual([3, 1]);
    const byKnob = planMicroBatches(seqs, { maxSlots: 8, maxTokens: 64, maxLen: 16 }, 1);
    expect(byKnob).toHaveLength(4);
  });

  it('maps each completion token to the row that predicts it, with its sequence data', () => {
    const [mb] = planMicroBatches(
      [seq(3, 2, 0.5), { ...seq(1, 3, -2), oldLogprobs: Float32Array.of(-1, -2, -3), weight: 0.25 }],
      { maxSlots: 4, maxTokens: 64, maxLen: 16 },
    );
    // sequence 0: rows 0..3 (prompt 3 + 1 completion input); sequence 1: rows 4..6
    expect(mb.lmRows).toEqual([2, 3, 4, 5, 6]);
    expect(Array.from(mb.targets)).toEqual([100, 101, 100, 101, 102]);
    expect(Array.from(mb.slotRows)).toEqual([0, 4, 4, 3]);
    expect(mb.positions).toEqual([0, 1, 2, 3, 0, 1, 2]);
    expect(mb.slots).toEqual([0, 0, 0, 0, 1, 1, 1]);
    // (advantage, old, ref, weight): an unweighted sequence has weight 1.
    expect(Array.from(mb.rowData.subarray(0, 4))).toEqual([0.5, 0, 0, 1]);
    expect(Array.from(mb.rowData.subarray(12, 16))).toEqual([-2, -2, 0, 0.25]);
    expect(mb.tokenOffsets).toEqual([0, 2, 5]);
  });

  it('skips empty completions and refuses what cannot fit', () => {
    expect(planMicroBatches([seq(3, 0)], { maxSlots: 4, maxTokens: 64, maxLen: 16 })).toHaveLength(0);
    expect(() => planMicroBatches([seq(20, 2)], { maxSlots: 4, maxTokens: 64, maxLen: 16 })).toThrow(
      /positions/,
    );
    expect(() => planMicroBatches([seq(10, 2)], { maxSlots: 4, maxTokens: 8, maxLen: 16 })).toThrow(
      /tokens per pass/,
    );
    expect(() => planMicroBatches([seq(0, 2)], { maxSlots: 4, maxTokens: 8, maxLen: 16 })).toThrow(
      /prompt token/,
    );
  });
});

describe('training FLOP count', () => {
  it('counts the layer matmuls three times and the LM head twice, on completion tokens only', () => {
    const c = parseQwen2Config(qwen2_0_5bConfigJson());
    const f = trainStepFlops(c, [{ prompt: 1, completion: 1 }], { rank: 16, inOutSum: 0 });
    // one input token: 3 × 24 layers × 2·896·(1152 + 896 + 3·4864) FLOPs
    expect(f.layers).toBe(3 * 24 * 2 * 896 * (1152 + 896 + 3 * 4864));
    expect(f.lmHead).toBe(4 * 151936 * 896);
  });
});
