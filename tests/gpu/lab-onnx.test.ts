// "Check against ONNX Runtime" and the ONNX eval backend in the Lab (the trainer worker's API) on Node:
// the built-in tiny model exported in memory and run on onnxruntime-web's WASM backend, against the
// engine — the base model, and a run's checkpoint whose LoRA adapter is merged into the export.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { MemoryByteStore } from '../../src/model/byte-store.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import type { TrainerEvent } from '../../src/protocol.ts';
import { mulberry32 } from '../../src/random.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { builtinTinyModel } from '../../src/trainer/builtin-tiny.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { Lab } from '../../src/trainer/lab.ts';
import type { Trainer } from '../../src/trainer/types.ts';
import { getTestContext } from '../helpers/gpu.ts';

const root = mkdtempSync(join(tmpdir(), 'tabzero-lab-onnx-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const store = new NodeRunStore(root);
const events: TrainerEvent[] = [];
let lastTrainer: Trainer | null = null;
const lab = new Lab({
  acquireDevice: () => getTestContext(),
  modelStore: () => new MemoryByteStore(),
  openModel: async (choice) =>
    builtinTinyModel(choice.kind === 'tiny' ? (choice.seed ?? 0) : 0, await loadQwen2TokenizerFiles()),
  store: async () => store,
  verifierFactory: nodeWorkerFactory(),
  storageInfo: async () => ({ usage: 0, quota: 0, persisted: false }),
  createTrainer: async (engine, config) => (lastTrainer = await createEngineTrainer(engine, config)),
});
lab.subscribe((e) => events.push(e));

const NEW_TOKENS = 6;
const PROMPTS = ['Calculate: 12 + 7 = ', 'x = 3'];

describe('the Lab against onnxruntime-web (WASM)', () => {
  it('checks the base model and evaluates on the ONNX backend', async () => {
    await lab.loadModel({ kind: 'tiny' });
    // Short prompts of one's own (the default eval-set prompts, ~190 tokens each, run in the e2e test).
    const report = await lab.checkOnnx({ prompts: PROMPTS, maxNewTokens: NEW_TOKENS });
    expect(report.export).toMatchObject({ variant: 'fp32', step: 0, reused: false });
    expect(report.export.variantReason).toMatch(/^fp32: /);
    expect(report.engineKv).toBe('f16');
    expect(report.prompts.map((p) => p.label)).toEqual(['your prompt 1', 'your prompt 2']);
    for (const p of report.prompts) {
      expect(p.steps).toBe(NEW_TOKENS);
      expect(p.agreeDecidable).toBe(p.decidable);
      expect(p.maxLogitDiff).toBeLessThanOrEqual(report.tolerance);
      expect(p.pass).toBe(true);
    }
    expect(report.prompts.reduce((n, p) => n + p.decidable, 0)).toBeGreaterThanOrEqual(NEW_TOKENS);
    expect(report.pass).toBe(true);
    const phases = new Set(events.flatMap((e) => (e.type === 'onnx-progress' ? [e.progress.phase] : [])));
    expect([...phases]).toEqual(expect.arrayContaining(['export', 'load', 'prompt']));

    const engine = await lab.runEval({ set: 'arith_eval_200', mode: 'raw', limit: 3 });
    // An ONNX eval and a check at once: they take turns on the one open export, which they reuse.
    const [onnx, again] = await Promise.all([
      lab.runEval({ set: 'arith_eval_200', mode: 'raw', limit: 3, backend: 'onnx' }),
      lab.checkOnnx({ prompts: ['1 + 1'], maxNewTokens: 2 }),
    ]);
    expect(onnx.backend).toBe('onnx');
    expect(onnx.report.n).toBe(3);
    expect(onnx.report.items.map((i) => i.id)).toEqual(engine.report.items.map((i) => i.id));
    expect(events.some((e) => e.type === 'onnx-progress' && e.progress.phase === 'eval')).toBe(true);
    // The run's history is the engine's: an ONNX eval is returned, not announced as the run's eval.
    expect(events.filter((e) => e.type === 'eval').length).toBe(1);
    expect(again.export.reused).toBe(true);
    expect(again.pass).toBe(true);
  });

  it("merges a run checkpoint's LoRA adapter into the export and still matches the engine", async () => {
    const config = resolveConfig('smoke', { loraRank: 4, loraAlpha: 8 });
    const run = await lab.createRun(config, 'onnx lora');
    // A checkpoint at step 0 holding a clearly non-zero adapter (a fresh one has B = 0, a no-op).
    await lab.runEval({ runId: run.id, set: 'arith_eval_200', mode: 'raw', limit: 1 });
    const saved = await lastTrainer!.trainable.save();
    const next = mulberry32(11);
    const tensors = saved.tensors.map((t) =>
      /adam_/.test(t.name) ? t : { ...t, data: Float32Array.from(t.data, () => (next() * 2 - 1) * 0.2) },
    );
    const writer = await store.openRun(run.id);
    await writer.saveCheckpoint({ step: 0, tensors, engineState: saved.state, reason: 'manual' });
    await writer.close();

    const prompts = [PROMPTS[1]];
    const base = await lab.checkOnnx({ prompts, maxNewTokens: NEW_TOKENS });
    const merged = await lab.checkOnnx({ runId: run.id, prompts, maxNewTokens: NEW_TOKENS });
    expect(merged.export.reused).toBe(false);
    expect(merged.export.weights).toMatch(/adapter at step 0 merged/);
    expect(merged.pass).toBe(true);
    for (const p of merged.prompts) expect(p.agreeDecidable).toBe(p.decidable);
    // The adapter changes what the model says, so the check did run the merged weights.
    expect(merged.prompts.map((p) => p.completion)).not.toEqual(base.prompts.map((p) => p.completion));
  });
});
