// The WebGPU engine side by side with onnxruntime-node on the exported tiny model: greedy tokens
// (engine: KV-cache decode on the GPU; onnxruntime: teacher-forced and free-running) and logits.
import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register as checkOnnx } from '../../cli/commands/check-onnx.ts';
import { Engine } from '../../src/engine/engine.ts';
import { EngineOracle } from '../../src/onnx/engine-oracle.ts';
import { exportOnnx } from '../../src/onnx/export.ts';
import { loadOnnxNode, nodeOnnxTarget } from '../../src/onnx/node.ts';
import { LOGIT_TOLERANCE, promptParity } from '../../src/onnx/parity.ts';
import type { OnnxVariant } from '../../src/onnx/qwen2-graph.ts';
import { tinyFixture, type TinyFixture } from '../unit/onnx/fixture.ts';
import { getTestContext } from '../helpers/gpu.ts';

const PROMPTS = ['Hello, world', 'x = 3 * (4 + 5)'];
const NEW_TOKENS = 8;

let fx: TinyFixture;
const engines = new Map<'f32' | 'f16', Engine>();

beforeAll(async () => {
  fx = await tinyFixture(7);
  await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(join(fx.root, 'export')));
  for (const kvDType of ['f32', 'f16'] as const) {
    engines.set(
      kvDType,
      await Engine.load(await getTestContext(), fx.model.config, fx.model.weights, fx.model.tokenizer, {
        maxBatch: 1,
        maxSeqLen: 64,
        kvDType,
      }),
    );
  }
});

afterAll(async () => {
  await fx?.cleanup();
});

// The engine's f16 KV cache (its default for 16-bit weights) rounds like the fp16 variant's cache, so
// it is held to the fp16 tolerance (measured: 1.2e-3 against fp32, 3.9e-3 against fp16).
const CASES: { variant: OnnxVariant; kv: 'f32' | 'f16' }[] = [
  { variant: 'fp32', kv: 'f32' },
  { variant: 'fp16', kv: 'f32' },
  { variant: 'fp16', kv: 'f16' },
];

describe.each(CASES)('engine ($kv KV cache) vs onnxruntime-node, ONNX $variant', ({ variant, kv }) => {
  const tol = LOGIT_TOLERANCE[variant];

  it(`agrees on every decidable greedy step, logits within ${tol}`, async () => {
    const lm = await loadOnnxNode(join(fx.root, 'export'), variant);
    const oracle = new EngineOracle(engines.get(kv)!);
    try {
      let decidable = 0;
      for (const text of PROMPTS) {
        const p = await promptParity(oracle, lm, fx.model.tokenizer.encode(text), {
          maxNewTokens: NEW_TOKENS,
          tolerance: tol,
          eosIds: [],
        });
        expect(p.steps).toBe(NEW_TOKENS);
        expect(p.agreeDecidable).toBe(p.decidable);
        expect(p.maxLogitDiff).toBeLessThanOrEqual(tol);
        decidable += p.decidable;
      }
      expect(decidable).toBeGreaterThanOrEqual(PROMPTS.length * 4);
    } finally {
      await lm.release();
    }
  });
});

describe('tabzero check-onnx on the engine', () => {
  it('passes on the tiny model for both variants', async () => {
    const prompts = join(fx.root, 'prompts.txt');
    await writeFile(prompts, PROMPTS.join('\n'));
    for (const variant of ['fp32', 'fp16']) {
      const outs: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
        outs.push(String(s));
        return true;
      });
      try {
        const program = new Command('tabzero').exitOverride();
        checkOnnx(program);
        await program.parseAsync(
          [
            'check-onnx',
            '--model',
            fx.modelDir,
            '--prompts',
            prompts,
            '--variant',
            variant,
            '--max-new-tokens',
            '6',
          ],
          { from: 'user' },
        );
      } finally {
        spy.mockRestore();
      }
      const kv = variant === 'fp32' ? 'f32' : 'f16';
      expect(outs.join('')).toMatch(
        new RegExp(`${variant} vs engine \\(WebGPU, ${kv} KV\\): agreement 12/12, .*: PASS\\n$`),
      );
    }
  });
});
