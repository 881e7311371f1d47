// Greedy decoding: transformers.js (loading the exported folder from disk, no network) and our
// onnxruntime runner against the reference's greedy decoding, token for token wherever the
// reference's top-2 logit gap exceeds the variant's tolerance (random tiny models have near-ties).
import { join } from 'node:path';
import { env, AutoModelForCausalLM, AutoTokenizer, Tensor } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomRefLora } from '../../../src/engine/reference/random.ts';
import { exportOnnx } from '../../../src/onnx/export.ts';
import { loadOnnxNode, nodeOnnxTarget } from '../../../src/onnx/node.ts';
import { LOGIT_TOLERANCE, promptParity, top2Gap } from '../../../src/onnx/parity.ts';
import type { OnnxVariant } from '../../../src/onnx/qwen2-graph.ts';
import { ReferenceOracle } from '../../../src/onnx/reference-oracle.ts';
import { tinyFixture, type TinyFixture } from './fixture.ts';

const NEW_TOKENS = 16;
const PROMPTS = ['Hello, world', 'x = 3 * (4 + 5)', 'The quick brown fox'];

let fx: TinyFixture;
let exportName: string;
let oracle: ReferenceOracle;

beforeAll(async () => {
  fx = await tinyFixture(5);
  exportName = 'tjs-export';
  await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(join(fx.root, exportName)));
  oracle = new ReferenceOracle(fx.model.config, fx.weights);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = fx.root;
});

afterAll(async () => {
  await fx?.cleanup();
});

/** Number of leading steps where the two sequences must agree: up to and including the first near-tie. */
function decidablePrefix(stepLogits: Float32Array[], tol: number): number {
  const i = stepLogits.findIndex((l) => top2Gap(l) <= tol);
  return i < 0 ? stepLogits.length : i;
}

describe.each<OnnxVariant>(['fp32', 'fp16'])('greedy decoding, %s', (variant) => {
  const tol = LOGIT_TOLERANCE[variant];

  it('transformers.js generate() equals the reference token for token (until a near-tie)', async () => {
    const model = await AutoModelForCausalLM.from_pretrained(exportName, { dtype: variant, device: 'cpu' });
    const tokenizer = await AutoTokenizer.from_pretrained(exportName);
    let compared = 0;
    try {
      for (const text of PROMPTS) {
        const prompt = fx.model.tokenizer.encode(text);
        // transformers.js reads the same tokenizer files and must tokenize identically.
        expect(tokenizer.encode(text, { add_special_tokens: false })).toEqual(prompt);
        const ref = await oracle.greedy(prompt, NEW_TOKENS, []);
        const input_ids = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
        const attention_mask = new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [
          1,
          prompt.length,
        ]);
        const out = (await model.generate({
          input_ids,
          attention_mask,
          max_new_tokens: NEW_TOKENS,
          do_sample: false,
          repetition_penalty: 1.0,
          eos_token_id: [],
        })) as Tensor;
        const generated = (out.tolist() as bigint[][])[0].slice(prompt.length).map(Number);
        const n = decidablePrefix(ref.stepLogits, tol);
        expect(generated.slice(0, n)).toEqual(ref.tokens.slice(0, n));
        compared += n;
      }
    } finally {
      await model.dispose();
    }
    // Most steps are decidable on these models; a test comparing nothing would prove nothing.
    expect(compared).toBeGreaterThanOrEqual(PROMPTS.length * 4);
  });

  it('the parity check: the runner agrees on every decidable step, logits within tolerance', async () => {
    const lm = await loadOnnxNode(join(fx.root, exportName), variant);
    try {
      for (const text of PROMPTS) {
        const p = await promptParity(oracle, lm, fx.model.tokenizer.encode(text), {
          maxNewTokens: NEW_TOKENS,
          tolerance: tol,
          eosIds: [],
        });
        expect(p.steps).toBe(NEW_TOKENS);
        expect(p.decidable).toBeGreaterThan(0);
        expect(p.agreeDecidable).toBe(p.decidable);
        expect(p.maxLogitDiff).toBeLessThanOrEqual(tol);
      }
    } finally {
      await lm.release();
    }
  });
});

describe('the parity check detects a different model', () => {
  it('an export with a merged LoRA disagrees with the base reference', async () => {
    const lora = randomRefLora(fx.model.config, 2, 4, 16, ['mlp.up_proj', 'self_attn.o_proj']);
    const dir = join(fx.root, 'other');
    await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(dir), { variants: ['fp32'], lora });
    const lm = await loadOnnxNode(dir, 'fp32');
    try {
      const p = await promptParity(oracle, lm, fx.model.tokenizer.encode(PROMPTS[0]), {
        maxNewTokens: NEW_TOKENS,
        tolerance: LOGIT_TOLERANCE.fp32,
        eosIds: [],
      });
      expect(p.maxLogitDiff).toBeGreaterThan(100 * LOGIT_TOLERANCE.fp32);
      expect(p.agreeDecidable).toBeLessThan(p.decidable);
      // ... and the same export agrees with the reference that carries the adapter.
      const withAdapter = new ReferenceOracle(fx.model.config, fx.weights, lora);
      const q = await promptParity(withAdapter, lm, fx.model.tokenizer.encode(PROMPTS[0]), {
        maxNewTokens: NEW_TOKENS,
        tolerance: LOGIT_TOLERANCE.fp32,
        eosIds: [],
      });
      expect(q.agreeDecidable).toBe(q.decidable);
      expect(q.maxLogitDiff).toBeLessThanOrEqual(LOGIT_TOLERANCE.fp32);
    } finally {
      await lm.release();
    }
  });
});
