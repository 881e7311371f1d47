// The Lab — everything the trainer worker's API does — on Node's platform pieces (Dawn, the run folder
// store, worker_threads verifier): load the built-in tiny model, run a smoke step, read history, export,
// restore a checkpoint as a new run, evaluate the base, chat. The browser worker hosts the same class.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { MemoryByteStore } from '../../src/model/byte-store.ts';
import { blobSource } from '../../src/model/byte-source.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import { readZip } from '../../src/export/zip-reader.ts';
import type { RunSummary, TrainerEvent } from '../../src/protocol.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { builtinTinyModel } from '../../src/trainer/builtin-tiny.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { Lab } from '../../src/trainer/lab.ts';
import { getTestContext } from '../helpers/gpu.ts';

const root = mkdtempSync(join(tmpdir(), 'tabzero-lab-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function nodeLab(): { lab: Lab; events: TrainerEvent[] } {
  const events: TrainerEvent[] = [];
  const lab = new Lab({
    acquireDevice: () => getTestContext(),
    modelStore: () => new MemoryByteStore(),
    openModel: async (choice) => {
      if (choice.kind !== 'tiny') throw new Error('this test loads the tiny model only');
      return builtinTinyModel(choice.seed ?? 0, await loadQwen2TokenizerFiles());
    },
    store: async () => new NodeRunStore(root),
    verifierFactory: nodeWorkerFactory(),
    storageInfo: async () => ({ usage: 0, quota: 0, persisted: false }),
    createTrainer: createEngineTrainer,
  });
  lab.subscribe((e) => events.push(e));
  return { lab, events };
}

function runEnded(events: TrainerEvent[], id: string): Promise<RunSummary> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const err = events.find((e) => e.type === 'error' && e.runId === id);
      if (err && err.type === 'error') reject(new Error(`${err.error.title}: ${err.error.message}`));
      const done = events.find(
        (e) => e.type === 'run-status' && e.run.id === id && e.run.status === 'finished',
      );
      if (done && done.type === 'run-status') {
        clearInterval(timer);
        resolve(done.run);
      }
    }, 100);
  });
}

describe('Lab on Node', () => {
  const { lab, events } = nodeLab();

  it('trains a smoke step on the built-in tiny model and serves its history, exports and checkpoints', async () => {
    const info = await lab.loadModel({ kind: 'tiny' });
    expect(info.vocab).toBe(151936);
    expect(events.some((e) => e.type === 'load-progress')).toBe(true);

    const config = resolveConfig('smoke', {
      totalSteps: 1,
      maxProposerTokens: 8,
      maxSolverTokens: 8,
      evalSets: [],
      checkpointEverySteps: 1,
    });
    const run = await lab.createRun(config, 'lab test');
    expect(run.name).toBe('lab test');
    await lab.startRun(run.id);
    const done = await runEnded(events, run.id);
    expect(done.step).toBe(1);
    expect(events.some((e) => e.type === 'phase' && e.progress.phase === 'proposing')).toBe(true);
    expect(events.some((e) => e.type === 'step' && e.metrics.step === 1)).toBe(true);

    expect((await lab.getSteps(run.id)).map((m) => m.step)).toEqual([1]);
    const samples = await lab.getSamples(run.id, { step: 1, role: 'solve' });
    expect(samples.total).toBeGreaterThan(0);
    expect(samples.records.every((r) => r.role === 'solve' && r.step === 1)).toBe(true);
    const buffers = await lab.getBuffers(run.id);
    expect(buffers.ded.length).toBeGreaterThan(0);
    const checkpoints = await lab.listCheckpoints(run.id);
    expect(checkpoints.at(-1)?.step).toBe(1);
    // The runs list shows what the run's checkpoints take.
    const listed = (await lab.listRuns()).find((r) => r.id === run.id);
    expect(listed?.bytesUsed).toBe(checkpoints.reduce((n, c) => n + c.bytes, 0));
    expect(listed?.bytesUsed).toBeGreaterThan(0);

    const peft = await lab.exportRun(run.id, 'peft');
    expect(peft.filename).toMatch(/peft\.zip$/);
    const zip = await readZip(blobSource(peft.blob, peft.filename));
    expect(zip.entries.map((e) => e.name)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/adapter_config\.json$/),
        expect.stringMatching(/adapter_model\.safetensors$/),
      ]),
    );

    const archive = await lab.exportRun(run.id, 'archive');
    const imported = await lab.importArchive(archive.blob);
    expect(imported.step).toBe(1);

    const restored = await lab.restoreCheckpoint(run.id, 0);
    expect(restored.step).toBe(0);
    expect(restored.name).toBe('lab test from step 0');
    expect((await lab.getSteps(restored.id)).length).toBe(0);

    const evalRecord = await lab.runEval({ set: 'arith_eval_200', mode: 'raw', limit: 2 });
    expect(evalRecord.report.n).toBe(2);
    expect(evalRecord.step).toBe(0);

    const reply = await lab.chat({ prompt: 'Calculate: 1 + 1 = ', maxNew: 4, temperature: 0 });
    expect(typeof reply).toBe('string');
  });

  it('runs a journal-grpo step, its KL term against the base model (the adapter switched off)', async () => {
    const config = resolveConfig('journal-grpo', {
      totalSteps: 1,
      grpoPromptsPerStep: 1,
      grpoGroupSize: 2,
      maxSolverTokens: 8,
      evalSets: [],
    });
    expect(config.klBeta).toBeGreaterThan(0);
    const run = await lab.createRun(config, 'grpo kl');
    await lab.startRun(run.id);
    expect((await runEnded(events, run.id)).step).toBe(1);
    const [step] = await lab.getSteps(run.id);
    expect(step.mode).toBe('grpo');
    expect(Number.isFinite(step.policy.loss)).toBe(true);
  });

  it('refuses to start a second run while one trains, and explains a missing model', async () => {
    const fresh = nodeLab().lab;
    await expect(fresh.createRun(resolveConfig('smoke'))).rejects.toThrow(/No model is loaded/);
  });
});
