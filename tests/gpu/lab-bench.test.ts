// The bench page's worker side (issue 9): Lab.benchDecode times the workload on the engine, and
// Lab.exportOnnxFiles hands the loaded model's ONNX export over as bytes that onnxruntime opens.
import { describe, expect, it } from 'vitest';
import { MemoryByteStore } from '../../src/model/byte-store.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import { loadOnnxWasm } from '../../src/onnx/web.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { builtinTinyModel } from '../../src/trainer/builtin-tiny.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { Lab } from '../../src/trainer/lab.ts';
import { benchPromptIds } from '../../src/app/lib/side-by-side.ts';
import { getTestContext } from '../helpers/gpu.ts';

const lab = new Lab({
  acquireDevice: () => getTestContext(),
  modelStore: () => new MemoryByteStore(),
  openModel: async () => builtinTinyModel(0, await loadQwen2TokenizerFiles()),
  store: async () => new NodeRunStore('/nonexistent-unused'),
  verifierFactory: nodeWorkerFactory(),
  storageInfo: async () => ({ usage: 0, quota: 0, persisted: false }),
  createTrainer: createEngineTrainer,
});

const NEW_TOKENS = 5;

describe('the bench page in the Lab', () => {
  it('refuses without a model', async () => {
    await expect(lab.benchDecode({ promptIds: [1, 2], newTokens: 2 })).rejects.toThrow(/model/i);
  });

  it('times a greedy decode of exactly the workload, the same tokens each time', async () => {
    const info = await lab.loadModel({ kind: 'tiny' });
    const promptIds = benchPromptIds(12, info.vocab, 1);
    const a = await lab.benchDecode({ promptIds, newTokens: NEW_TOKENS });
    expect(a.promptTokens).toBe(12);
    expect(a.decodeSteps).toBe(NEW_TOKENS);
    expect(a.ids).toHaveLength(NEW_TOKENS + 1);
    expect(a.readbacksPerStep).toBe(1);
    expect(a.dispatchesPerStep).toBeGreaterThan(info.layers);
    expect(a.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(a.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(a.kvDType).toBe('f16');
    const b = await lab.benchDecode({ promptIds, newTokens: NEW_TOKENS });
    expect(b.ids).toEqual(a.ids);
    await expect(lab.benchDecode({ promptIds: [], newTokens: 2 })).rejects.toThrow(/non-empty prompt/);
  });

  it('exports the loaded model as ONNX bytes that onnxruntime opens', async () => {
    const files = await lab.exportOnnxFiles('fp32');
    expect(files.variant).toBe('fp32');
    expect(files.variantReason).toMatch(/fp32/);
    expect(files.data.byteLength).toBeGreaterThan(files.model.byteLength);
    const lm = await loadOnnxWasm(files);
    try {
      const out = await lm.forward({ ids: [[1, 2, 3]], logitsToKeep: 1 });
      expect(out.rows).toBe(1);
      expect(out.vocab).toBeGreaterThan(150_000);
      expect(out.logits.every(Number.isFinite)).toBe(true);
    } finally {
      await lm.release();
    }
  });
});
