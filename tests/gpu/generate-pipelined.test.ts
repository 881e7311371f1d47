// The pipelined decode loop (engine.ts decodePipelined: step n+1 submitted before step n's readback is
// awaited, its embedding reading step n's sampled ids on the GPU) against the plain loop, its reference:
// identical completions token for token and bit for bit — greedy and seeded sampling, n samples per
// prompt, stops in the middle of the batch (one sequence stopping while others run on, which the
// pipelined loop learns a step late), with a LoRA adapter on the default decode path — and the same
// dispatch count per decode step with one readback per step.
import { describe, expect, it } from 'vitest';
import type { Completion, SampleOptions } from '../../src/policy.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import { randomLora, refConfig, tinyEngine, tinyModel } from './tiny-engine.ts';

describe('pipelined decode = plain decode', async () => {
  const model = await tinyModel(41, 'F32');
  const cfg = refConfig(model);
  const engine = await tinyEngine(model, { maxBatch: 8, maxSeqLen: 48, maxTokensPerPass: 32 });
  engine.setLora(GpuLora.create(engine.ctx.device, engine.ledger, cfg, randomLora(cfg, 4, 77)).weights);
  const prompts = [
    [1, 2, 3, 4, 5],
    [100, 101],
    [7, 7, 7, 7, 7, 7, 7, 7, 7],
  ];

  async function both(opts: SampleOptions): Promise<{ plain: Completion[]; piped: Completion[] }> {
    engine.pipelinedDecode = false;
    const plain = await engine.generate(prompts, opts);
    engine.pipelinedDecode = true;
    const piped = await engine.generate(prompts, opts);
    return { plain, piped };
  }

  const same = (a: Completion[], b: Completion[]) => {
    expect(b.length).toBe(a.length);
    a.forEach((c, i) => {
      expect(b[i].ids, `completion ${i}`).toEqual(c.ids);
      expect(b[i].stopReason).toBe(c.stopReason);
      expect(b[i].text).toBe(c.text);
      expect(Array.from(b[i].logprobs)).toEqual(Array.from(c.logprobs));
      expect(Array.from(b[i].sampledLogprobs)).toEqual(Array.from(c.sampledLogprobs));
    });
  };

  /** Stop tokens that end some completions mid-way (their tokens at the given steps in a stop-free run). */
  const stopsFrom = (free: Completion[], at: [number, number][]) => at.map(([i, j]) => free[i].ids[j]);

  for (const [name, base] of [
    ['greedy', { maxNew: 12, temperature: 0, seed: 1 }],
    [
      'seeded sampling (top-k, top-p, n = 2)',
      { maxNew: 12, temperature: 1, topK: 20, topP: 0.9, seed: 5, n: 2 },
    ],
  ] as const) {
    it(`${name}: identical, with stops in the middle of the batch`, async () => {
      const free = await both({ ...base, stopTokens: [] });
      same(free.plain, free.piped);
      expect(free.plain.every((c) => c.ids.length === 12)).toBe(true);
      const stopTokens = stopsFrom(free.plain, [
        [0, 2],
        [1, 6],
      ]);
      const stopped = await both({ ...base, stopTokens });
      same(stopped.plain, stopped.piped);
      const lengths = stopped.plain.map((c) => c.ids.length);
      // Some stop early, at different steps, while others run on.
      expect(stopped.plain.some((c) => c.stopReason === 'stop_token')).toBe(true);
      expect(new Set(lengths).size).toBeGreaterThan(1);
      expect(Math.max(...lengths)).toBeGreaterThan(Math.min(...lengths));
    });
  }

  it('maxNew 1 and 2 (no decode step, one decode step)', async () => {
    for (const maxNew of [1, 2]) {
      const r = await both({ maxNew, temperature: 0, seed: 1, stopTokens: [] });
      same(r.plain, r.piped);
    }
  });

  it('the same dispatches per decode step, one readback per step', async () => {
    const counts = async (pipelined: boolean) => {
      engine.pipelinedDecode = pipelined;
      engine.resetStats();
      await engine.generate(prompts, { maxNew: 6, temperature: 0, seed: 1, stopTokens: [] });
      const st = engine.stats;
      return { steps: st.decodeSteps, perStep: st.decodeDispatches / st.decodeSteps, rb: st.decodeReadbacks };
    };
    const plain = await counts(false);
    const piped = await counts(true);
    engine.pipelinedDecode = true;
    expect(piped).toEqual(plain);
    expect(piped.steps).toBe(5);
    expect(piped.rb).toBe(5);
    // Tiny model, 2 layers, LoRA on all seven targets ('separate'): 13 per layer, embedding chunk(s),
    // head norm, LM head chunk(s), sample.
    expect(piped.perStep).toBe(
      2 * 13 + engine.weights.embedChunks.length + 1 + engine.weights.lmHeadChunks.length + 1,
    );
  });
});
