// Policy.generate on onnxruntime (evals through the independent runtime) against the reference.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../../src/onnx/export.ts';
import { OnnxGenerator, logSoftmaxAt } from '../../../src/onnx/generator.ts';
import { loadOnnxNode, nodeOnnxTarget } from '../../../src/onnx/node.ts';
import { LOGIT_TOLERANCE, top2Gap } from '../../../src/onnx/parity.ts';
import { ReferenceOracle } from '../../../src/onnx/reference-oracle.ts';
import type { OnnxCausalLM } from '../../../src/onnx/runner.ts';
import { tinyFixture, type TinyFixture } from './fixture.ts';

let fx: TinyFixture;
let lm: OnnxCausalLM;
let gen: OnnxGenerator;
let prompt: number[];

beforeAll(async () => {
  fx = await tinyFixture(6);
  const dir = join(fx.root, 'export');
  await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(dir), { variants: ['fp32'] });
  lm = await loadOnnxNode(dir, 'fp32');
  gen = new OnnxGenerator(lm, fx.model.tokenizer);
  prompt = fx.model.tokenizer.encode('Once upon a time');
});

afterAll(async () => {
  await lm?.release();
  await fx?.cleanup();
});

describe('OnnxGenerator', () => {
  it('decodes greedily like the reference, with base-policy log-probs', async () => {
    const ref = await new ReferenceOracle(fx.model.config, fx.weights).greedy(prompt, 10, []);
    const [c] = await gen.generate([prompt], { maxNew: 10, temperature: 0, seed: 0, stopTokens: [] });
    expect(c.stopReason).toBe('length');
    const n = ref.stepLogits.findIndex((l) => top2Gap(l) <= LOGIT_TOLERANCE.fp32);
    const decidable = n < 0 ? 10 : n;
    expect(decidable).toBeGreaterThan(3);
    expect(c.ids.slice(0, decidable)).toEqual(ref.tokens.slice(0, decidable));
    for (let i = 0; i < decidable; i++) {
      expect(Math.abs(c.logprobs[i] - logSoftmaxAt(ref.stepLogits[i], ref.tokens[i]))).toBeLessThan(
        LOGIT_TOLERANCE.fp32,
      );
      expect(c.logprobs[i]).toBeLessThan(0);
    }
    expect(Array.from(c.sampledLogprobs)).toEqual(new Array(10).fill(0));
    expect(c.text).toBe(fx.model.tokenizer.decode(c.ids, { skipSpecialTokens: true }));
  });

  it('stops on a stop token (kept) and on a stop string (text cut after it)', async () => {
    const [full] = await gen.generate([prompt], { maxNew: 12, temperature: 0, seed: 0, stopTokens: [] });
    const [byToken] = await gen.generate([prompt], {
      maxNew: 12,
      temperature: 0,
      seed: 0,
      stopTokens: [full.ids[4]],
    });
    const first = full.ids.indexOf(full.ids[4]);
    expect(byToken.stopReason).toBe('stop_token');
    expect(byToken.ids).toEqual(full.ids.slice(0, first + 1));
    const stop = full.text.slice(1, 3);
    const [byString] = await gen.generate([prompt], {
      maxNew: 12,
      temperature: 0,
      seed: 0,
      stopTokens: [],
      stopStrings: [stop],
    });
    expect(byString.stopReason).toBe('stop_string');
    expect(byString.text.endsWith(stop)).toBe(true);
    expect(full.ids.slice(0, byString.ids.length)).toEqual(byString.ids);
    expect(byString.ids.length).toBeLessThan(full.ids.length);
  });

  it('returns n copies per prompt in prompt order, and refuses sampling', async () => {
    const other = fx.model.tokenizer.encode('abc');
    const out = await gen.generate([prompt, other], {
      n: 2,
      maxNew: 3,
      temperature: 0,
      seed: 0,
      stopTokens: [],
    });
    expect(out.map((c) => c.promptIndex)).toEqual([0, 0, 1, 1]);
    expect(out[0].ids).toEqual(out[1].ids);
    await expect(gen.generate([prompt], { maxNew: 3, temperature: 0.7, seed: 0 })).rejects.toThrow(
      /greedily only/,
    );
  });
});
