// A lost GPU device in the middle of a run (issue 19): the Lab sees the loss (reason 'unknown', through
// the test hook in tests/helpers/lossy-device.ts), says so, acquires a new device, reloads the model,
// restarts the run from its last checkpoint, and the run ends with steps 1…N once each, buffers without
// duplicate ids and its history intact.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { MemoryByteStore } from '../../src/model/byte-store.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import type { TrainerEvent } from '../../src/protocol.ts';
import { nodeWorkerFactory } from '../../src/selfplay/verifier-node.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { builtinTinyModel } from '../../src/trainer/builtin-tiny.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { Lab } from '../../src/trainer/lab.ts';
import { lossyContext, type LossyContext } from '../helpers/lossy-device.ts';

const root = mkdtempSync(join(tmpdir(), 'tabzero-device-loss-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const STEPS = 3;
const TIMEOUT = 600_000;

function until(
  events: TrainerEvent[],
  pred: (e: TrainerEvent) => boolean,
  what: string,
): Promise<TrainerEvent> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const hit = events.find(pred);
      if (hit) {
        clearInterval(timer);
        resolve(hit);
      } else if (Date.now() - started > TIMEOUT) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}; events: ${events.map((e) => e.type).join(' ')}`));
      }
    }, 50);
  });
}

describe('a lost GPU device', () => {
  it(
    'pauses the run, re-acquires a device, reloads the model and resumes from the last checkpoint',
    { timeout: TIMEOUT },
    async () => {
      const devices: LossyContext[] = [];
      const events: TrainerEvent[] = [];
      const lab = new Lab({
        acquireDevice: async () => {
          const d = await lossyContext();
          devices.push(d);
          return d.ctx;
        },
        modelStore: () => new MemoryByteStore(),
        openModel: async () => builtinTinyModel(0, await loadQwen2TokenizerFiles()),
        store: async () => new NodeRunStore(root),
        verifierFactory: nodeWorkerFactory(),
        storageInfo: async () => ({ usage: 0, quota: 0, persisted: false }),
        createTrainer: createEngineTrainer,
      });
      lab.subscribe((e) => events.push(e));
      await lab.loadModel({ kind: 'tiny' });
      const config = resolveConfig('smoke', {
        totalSteps: STEPS,
        maxProposerTokens: 8,
        maxSolverTokens: 8,
        evalSets: [],
        checkpointEverySteps: 1,
      });
      const run = await lab.createRun(config, 'device loss');
      await lab.startRun(run.id);

      // Step 1 is committed and checkpointed; lose the device in the middle of step 2.
      await until(events, (e) => e.type === 'checkpoint' && e.checkpoint.step === 1, 'the step-1 checkpoint');
      await until(
        events,
        (e) => e.type === 'phase' && e.progress.step === 2 && e.progress.phase === 'estimating',
        'step 2',
      );
      const lostAt = performance.now();
      devices[0].lose();

      const lost = await until(events, (e) => e.type === 'device-lost', 'the device-lost event');
      expect(lost).toMatchObject({ type: 'device-lost', reason: 'unknown', recovering: true });
      await until(events, (e) => e.type === 'device-recovered', 'the recovery');
      const recoveredMs = performance.now() - lostAt;
      const finished = await until(
        events,
        (e) => e.type === 'run-status' && e.run.id === run.id && e.run.status === 'finished',
        'the run to finish',
      );
      expect(devices.length).toBe(2);
      expect(finished.type === 'run-status' && finished.run.step).toBe(STEPS);
      // The error the page showed named the loss; the run was not marked failed.
      const shown = events.filter((e) => e.type === 'error');
      expect(shown.every((e) => e.type === 'error' && e.error.title === 'The GPU device was lost')).toBe(
        true,
      );

      expect((await lab.getSteps(run.id)).map((m) => m.step)).toEqual([1, 2, 3]);
      const buffers = await lab.getBuffers(run.id);
      for (const type of ['ded', 'abd', 'ind'] as const) {
        const ids = buffers[type].map((e) => e.id);
        expect(new Set(ids).size, `${type} buffer ids are unique`).toBe(ids.length);
      }
      // Each step's samples once: as many as the step generated (a replayed step would add its again).
      const samples = await lab.getSamples(run.id, { limit: 100_000 });
      for (const m of await lab.getSteps(run.id))
        expect(samples.records.filter((r) => r.step === m.step).length, `step ${m.step}`).toBe(
          m.generatedSequences,
        );
      console.log(
        `device loss: recovered (new device, model reloaded) in ${(recoveredMs / 1000).toFixed(1)} s`,
      );
    },
  );
});
