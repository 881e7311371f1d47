import { describe, expect, it } from 'vitest';
import { DeviceLostError, Engine, type EngineEvent } from '../../src/engine/engine.ts';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';
import { qwen2Logits } from '../../src/engine/reference/qwen2.ts';
import { logSumExp } from '../../src/engine/reference/ops.ts';
import type { NodeDeviceOptions } from '../../src/engine/node-gpu.ts';
import { NARROW_K } from '../../src/engine/kernels/gemv.ts';
import { refConfig, refWeights, tinyEngine, tinyModel, TINY } from './tiny-engine.ts';

// Decode (KV cache, one row per sequence) against the reference's full recomputation of the prefix:
// same f32 tolerance as the whole-model logits test.
const LP_ATOL = 1e-3;

describe('generation', async () => {
  const model = await tinyModel(21, 'F32');
  const engine = await tinyEngine(model, { maxBatch: 4, maxSeqLen: 48, maxTokensPerPass: 16 });
  // The test device grants `subgroups`: sampling, log-probs and norms reduce with subgroup operations.
  expect(engine.info.subgroups).toBe(true);
  const prompts = [
    [1, 2, 3, 4, 5],
    [100, 101],
    [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
  ];
  const greedy = { maxNew: 8, temperature: 0, seed: 1, stopTokens: [] as number[] };

  it('KV-cache greedy decoding equals recomputing the full prefix (reference)', async () => {
    const out = await engine.generate(prompts, greedy);
    const w = await refWeights(model);
    const V = model.config.vocabSize;
    for (const c of out) {
      expect(c.ids.length).toBe(8);
      expect(c.stopReason).toBe('length');
      const p = prompts[c.promptIndex];
      const seq = [...p, ...c.ids.slice(0, -1)];
      const { logits } = qwen2Logits(refConfig(model), w, [{ ids: seq }]);
      c.ids.forEach((tok, j) => {
        const row = logits.subarray((p.length - 1 + j) * V, (p.length + j) * V);
        const lse = logSumExp(row, 0, V);
        expect(Math.abs(c.logprobs[j] - (row[tok] - lse))).toBeLessThan(LP_ATOL);
        // The greedy token is the reference's argmax (up to near-ties within the tolerance).
        let best = 0;
        for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
        expect(row[best] - row[tok]).toBeLessThan(LP_ATOL);
        expect(c.sampledLogprobs[j]).toBe(0);
      });
    }
    // And against the engine's own teacher-forced (prefill) path.
    const tf = await engine.completionLogprobs(
      out.map((c) => ({ promptIds: prompts[c.promptIndex], completionIds: c.ids })),
    );
    out.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(Math.abs(lp - tf[i][j])).toBeLessThan(1e-4)));
  });

  it('batched greedy generation equals one-at-a-time, token for token and bit for bit', async () => {
    const batched = await engine.generate(prompts, { ...greedy, maxNew: 12 });
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await engine.generate([prompts[i]], { ...greedy, maxNew: 12 });
      expect(alone.ids).toEqual(batched[i].ids);
      expect(Array.from(alone.logprobs)).toEqual(Array.from(batched[i].logprobs));
    }
  });

  it('more sequences than KV slots run in groups with the same results', async () => {
    const many = [...prompts, [9, 8], [50, 60, 70]];
    const out = await engine.generate(many, { ...greedy, n: 2 }); // 10 sequences, 4 slots
    expect(out.map((c) => c.promptIndex)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    const single = await engine.generate([many[4]], greedy);
    expect(out[8].ids).toEqual(single[0].ids);
    expect(out[9].ids).toEqual(single[0].ids);
  });

  it('sampling: seeded and reproducible, within top-k/top-p, log-probs of both distributions', async () => {
    const opts = {
      maxNew: 6,
      temperature: 0.7,
      topK: 20,
      topP: 0.9,
      seed: 1234,
      n: 4,
      stopTokens: [] as number[],
    };
    const a = await engine.generate(prompts.slice(0, 2), opts);
    const b = await engine.generate(prompts.slice(0, 2), opts);
    expect(a.map((c) => c.ids)).toEqual(b.map((c) => c.ids));
    const c = await engine.generate(prompts.slice(0, 2), { ...opts, seed: 99 });
    expect(c.map((x) => x.ids)).not.toEqual(a.map((x) => x.ids));
    // The 4 samples of a prompt draw from different random streams.
    expect(new Set(a.slice(0, 4).map((x) => x.ids.join(','))).size).toBeGreaterThan(1);

    // First token of each completion: check against the reference distribution at the last prompt row.
    const w = await refWeights(model);
    const V = model.config.vocabSize;
    for (const s of a) {
      const p = prompts[s.promptIndex];
      const { logits } = qwen2Logits(refConfig(model), w, [{ ids: p }]);
      const row = logits.subarray((p.length - 1) * V, p.length * V);
      const z = Array.from(row, (l) => l / opts.temperature);
      const order = z.map((_, i) => i).sort((x, y) => z[y] - z[x]);
      const top = order.slice(0, opts.topK);
      const zmax = z[top[0]];
      const mass = top.map((i) => Math.exp(z[i] - zmax));
      const total = mass.reduce((x, y) => x + y, 0);
      // HF top-p: the smallest prefix whose probability reaches topP.
      let cum = 0;
      const kept: number[] = [];
      for (let k = 0; k < top.length; k++) {
        kept.push(top[k]);
        cum += mass[k] / total;
        if (cum >= opts.topP) break;
      }
      const tok = s.ids[0];
      expect(kept).toContain(tok);
      const keptMass = kept.reduce((x, i) => x + Math.exp(z[i] - zmax), 0);
      const wantSampled = z[tok] - zmax - Math.log(keptMass);
      expect(Math.abs(s.sampledLogprobs[0] - wantSampled)).toBeLessThan(LP_ATOL);
      expect(Math.abs(s.logprobs[0] - (row[tok] - logSumExp(row, 0, V)))).toBeLessThan(LP_ATOL);
    }
  });

  it('top-k 1 at any temperature is greedy, with sampled log-prob 0', async () => {
    const g = await engine.generate(prompts, greedy);
    const k1 = await engine.generate(prompts, { ...greedy, temperature: 1.3, topK: 1, seed: 5 });
    expect(k1.map((c) => c.ids)).toEqual(g.map((c) => c.ids));
    for (const c of k1) for (const lp of c.sampledLogprobs) expect(Math.abs(lp)).toBeLessThan(1e-6);
  });

  it("each completion's text is its ids decoded at once (the engine decodes only new ids per step)", async () => {
    const sampled = await engine.generate(prompts, { ...greedy, maxNew: 24, temperature: 1.5, seed: 11 });
    for (const c of sampled) expect(c.text).toBe(model.tokenizer.decode(c.ids, { skipSpecialTokens: true }));
  });

  it('stop tokens, stop strings and length', async () => {
    const [free] = await engine.generate([prompts[0]], greedy);
    const stopTok = free.ids[3];
    const [byTok] = await engine.generate([prompts[0]], { ...greedy, stopTokens: [stopTok] });
    expect(byTok.stopReason).toBe('stop_token');
    expect(byTok.ids).toEqual(free.ids.slice(0, free.ids.indexOf(stopTok) + 1));
    // A trailing U+FFFD is an incomplete character, not text yet: a stop string never matches it.
    const text = model.tokenizer
      .decode(free.ids.slice(0, 3), { skipSpecialTokens: true })
      .replace(/\uFFFD+$/, '');
    if (text.length > 0) {
      const [byStr] = await engine.generate([prompts[0]], { ...greedy, stopStrings: [text.slice(-1)] });
      expect(byStr.stopReason).toBe('stop_string');
      expect(byStr.text.endsWith(text.slice(-1))).toBe(true);
      expect(byStr.ids.length).toBeLessThanOrEqual(3);
    }
    // Mixed: one sequence stops early and leaves the batch, the others go on unchanged.
    const mixed = await engine.generate(prompts, { ...greedy, stopTokens: [stopTok] });
    const alone = await engine.generate([prompts[1]], { ...greedy, stopTokens: [stopTok] });
    expect(mixed[1].ids).toEqual(alone[0].ids);
  });

  it('reuses every uniform and bind group once a batch size has been seen', async () => {
    // The Dispatcher caches one uniform buffer + bind group per (site, parameters): a batch that
    // shrinks as sequences stop, then the same generation again, creates nothing new.
    const stopTok = (await engine.generate([prompts[0]], greedy))[0].ids[2];
    const run = () => engine.generate(prompts, { ...greedy, stopTokens: [stopTok] });
    await run();
    const bytes = engine.forward.dispatcher.uniformBytes;
    await run();
    expect(engine.forward.dispatcher.uniformBytes).toBe(bytes);
  });

  it('reports dispatches and readbacks per decode step, and memory by category', () => {
    const s = engine.stats;
    const perStep = s.decodeDispatches / s.decodeSteps;
    const layers = model.config.numHiddenLayers;
    console.log(
      `decode: ${perStep.toFixed(1)} dispatches/step (${layers} layers), ${s.decodeReadbacks / s.decodeSteps} readbacks/step`,
    );
    // 9 per layer + embedding chunks + final norm + LM-head chunks + sampler.
    expect(perStep).toBeLessThanOrEqual(9 * layers + 4);
    expect(s.decodeReadbacks).toBe(s.decodeSteps);
    const mem = engine.memory();
    console.log('memory (bytes):', JSON.stringify(mem));
    expect(mem.weights).toBeGreaterThan(0);
    expect(mem.kvCache).toBe(2 * layers * 4 * 48 * model.config.numKeyValueHeads * model.config.headDim * 4);
  });
});

// Batch invariance on each shader path: subgroup reductions and f16 arithmetic (the test device offers
// both), and the portable path (workgroup trees, packed f16 in f32). An intermediate size above
// NARROW_K makes down_proj decode through gemv's wide shader, the one with the cross-invocation tree.
describe('batched greedy == one-at-a-time on each shader path (f16 weights)', async () => {
  const intermediate = 288;
  expect(intermediate).toBeGreaterThan(NARROW_K);
  const model = await tinyModel(23, 'F16', { ...TINY, intermediate });
  const paths: [string, NodeDeviceOptions, boolean][] = [
    ['subgroups + f16 arithmetic', {}, true],
    ['portable', { disableFeatures: ['subgroups', 'shader-f16'] }, false],
  ];
  for (const [name, device, fast] of paths) {
    it(name, async () => {
      const engine = await tinyEngine(model, { maxBatch: 4, maxSeqLen: 32, maxTokensPerPass: 16 }, device);
      expect(engine.info).toMatchObject({ subgroups: fast, arithmetic: fast ? 'f16' : 'f32' });
      const prompts = [
        [1, 2, 3, 4, 5],
        [100, 101],
        [7, 8, 9, 10, 11, 12, 13, 14, 15],
      ];
      const opts = { maxNew: 6, temperature: 0, seed: 1, stopTokens: [] as number[] };
      const batched = await engine.generate(prompts, opts);
      for (let i = 0; i < prompts.length; i++) {
        const [alone] = await engine.generate([prompts[i]], opts);
        expect(alone.ids).toEqual(batched[i].ids);
        expect(Array.from(alone.logprobs)).toEqual(Array.from(batched[i].logprobs));
      }
    });
  }
});

describe('device loss', () => {
  it('rejects the pending call with DeviceLostError and emits device.lost, never hangs', async () => {
    const model = await tinyModel(22, 'F32');
    const ctx = await acquireNodeDevice();
    const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
      maxBatch: 2,
      maxSeqLen: 32,
    });
    const events: EngineEvent[] = [];
    engine.on((e) => events.push(e));
    const pending = engine.generate([[1, 2, 3]], { maxNew: 20, temperature: 0, seed: 0, stopTokens: [] });
    ctx.device.destroy();
    await expect(pending).rejects.toBeInstanceOf(DeviceLostError);
    expect(events.some((e) => e.type === 'device.lost')).toBe(true);
    await expect(engine.generate([[1]], { maxNew: 2, temperature: 0, seed: 0 })).rejects.toBeInstanceOf(
      DeviceLostError,
    );
  });
});
