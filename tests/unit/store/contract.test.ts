// The RunStore contract, run against both backends: IndexedDB (fake-indexeddb) and the Node run folder.
import 'fake-indexeddb/auto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptDataError, RunLockedError } from '../../../src/store/errors.ts';
import { openTabzeroDb } from '../../../src/store/idb-schema.ts';
import { IdbRunStore } from '../../../src/store/idb-store.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import type { RunStore } from '../../../src/store/types.ts';
import { drive, generations, metrics, newRun, seededState, stepCommit, tensors } from './fixtures.ts';
import { MemoryLocks } from './memory-locks.ts';

interface Backend {
  store: RunStore;
  /** Flips one byte of a checkpoint's weights, behind the store's back. */
  corrupt(runId: string, step: number): Promise<void>;
  cleanup(): Promise<void>;
}

let dbCount = 0;
const backends: Record<string, () => Promise<Backend>> = {
  indexeddb: async () => {
    const name = `tabzero-test-${++dbCount}`;
    const store = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    return {
      store,
      async corrupt(runId, step) {
        const db = await openTabzeroDb(name);
        const rec = (await db.get('checkpoints', [runId, step]))!;
        const bytes = new Uint8Array(await rec.weights.arrayBuffer());
        bytes[bytes.length - 3] ^= 0x40;
        await db.put('checkpoints', { ...rec, weights: new Blob([bytes]) });
        db.close();
      },
      async cleanup() {
        await store.close();
      },
    };
  },
  files: async () => {
    const root = mkdtempSync(
      path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'tabzero-contract-'),
    );
    return {
      store: new NodeRunStore(root),
      async corrupt(runId, step) {
        const file = path.join(
          root,
          runId,
          `checkpoints/step-${String(step).padStart(8, '0')}/weights.safetensors`,
        );
        const bytes = readFileSync(file);
        bytes[bytes.length - 3] ^= 0x40;
        writeFileSync(file, bytes);
      },
      async cleanup() {
        rmSync(root, { recursive: true, force: true });
      },
    };
  },
};

describe.each(Object.keys(backends))('RunStore contract: %s', (kind) => {
  let b: Backend;
  const setup = async () => {
    b = await backends[kind]();
    return b.store;
  };
  afterEach(async () => {
    await b?.cleanup();
  });

  it('commits seeding and steps, and reads them back', async () => {
    const store = await setup();
    const w = await store.createRun('run-a', newRun());
    expect(await w.state()).toBeNull();
    const last = await drive(w, 3);
    await w.commitEval({ step: 1, name: 'arith_eval_200:raw', result: { accuracy: 0.1 }, time: 't' });
    await w.commitEval({ step: 2, name: 'arith_eval_200:raw', result: { accuracy: 0.3 }, time: 't2' }); // replaces
    await w.setStatus('paused', 'paused by the user');
    await w.close();

    const r = await store.readRun('run-a');
    const meta = await r.meta();
    expect(meta).toMatchObject({
      id: 'run-a',
      formatVersion: 1,
      step: 3,
      seed: 7,
      seeded: true,
      notZeroData: true,
      status: 'paused',
      statusMessage: 'paused by the user',
      model: newRun().model,
      tabzeroVersion: '0.1.0',
      templates: newRun().templates,
    });
    expect(meta.config.maxBuffer).toBe(6);
    expect(await r.state()).toEqual(last);
    expect(await r.buffers()).toEqual(last.buffers);
    expect(await r.steps()).toEqual([1, 2, 3].map((step) => ({ step, metrics: metrics(step) })));
    expect(await r.samples(0)).toEqual(generations(0, 2).map((g, i) => ({ ...g, i })));
    expect(await r.samples(3)).toEqual(generations(3).map((g, i) => ({ ...g, i })));
    expect((await r.samples()).map((s) => [s.step, s.i])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 0],
      [2, 1],
      [2, 2],
      [3, 0],
      [3, 1],
      [3, 2],
    ]);
    expect((await r.evals()).map((e) => [e.step, e.name, e.result])).toEqual([
      [1, 'arith_eval_200:raw', { accuracy: 0.1 }],
      [2, 'arith_eval_200:raw', { accuracy: 0.3 }],
    ]);
    const seed = await r.seedSet();
    expect(seed!.source).toMatchObject({ runId: 'run-a', zeroData: false, model: newRun().model });
    expect(seed!.entries).toEqual([...seededState().buffers.ded, ...seededState().buffers.ind]);
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['run-a']);
    await store.deleteRun('run-a');
    expect(await store.listRuns()).toEqual([]);
  });

  it('refuses out-of-order steps and checkpoints off the committed step', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    const s1 = await drive(w, 1);
    await expect(w.commitStep(stepCommit(stepCommit(s1).state))).rejects.toThrow(/out of order.*expected 2/);
    await expect(w.saveCheckpoint({ step: 0, tensors: tensors(0), reason: 'manual' })).rejects.toThrow(
      /step boundary/,
    );
    expect((await w.meta()).step).toBe(1);
    await w.close();
  });

  it('resume rolls steps, samples, evals and buffers back to the checkpoint, and the run continues', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    await drive(w, 5, [2]);
    const atTwo = (await w.loadCheckpoint(2)).runnerState!;
    expect(atTwo.step).toBe(2);
    const p = await w.resume();
    expect(p.step).toBe(2);
    expect(p.warnings).toEqual([]);
    expect(p.removed).toEqual({ steps: 3, samples: 9, evals: 1, checkpoints: 0 });
    expect(p.state).toEqual(atTwo);
    expect(p.checkpoint!.tensors).toEqual(tensors(2));
    expect(p.checkpoint!.engineState).toEqual({ t: 2 });
    expect(p.checkpoint!.info).toMatchObject({ step: 2, reason: 'steps', seed: 7, model: newRun().model });
    expect((await w.meta()).step).toBe(2);
    expect((await w.steps()).map((s) => s.step)).toEqual([1, 2]);
    expect(Math.max(...(await w.samples()).map((s) => s.step))).toBe(2);
    expect((await w.evals()).map((e) => e.step)).toEqual([2]);
    expect(await w.buffers()).toEqual(atTwo.buffers);
    expect(await w.state()).toEqual(atTwo);
    // Redone steps: nothing lost, nothing duplicated.
    const s4 = await drive(w, 4);
    await w.close();
    const again = await store.openRun('r');
    expect((await again.steps()).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect((await again.samples()).length).toBe(2 + 4 * 3);
    expect(await again.state()).toEqual(s4);
    const ids = Object.values(s4.buffers)
      .flat()
      .map((e) => `${e.type}:${e.id}`);
    expect(new Set(ids).size).toBe(ids.length);
    await again.close();
  });

  it('without a checkpoint, resume rolls the run back to its creation', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    await drive(w, 2);
    const p = await w.resume();
    expect(p).toMatchObject({ step: 0, checkpoint: null, state: null });
    expect(p.warnings.join()).toMatch(/no valid checkpoint/);
    expect(await w.steps()).toEqual([]);
    expect(await w.samples()).toEqual([]);
    expect(await w.seedSet()).toBeNull();
    expect(await w.buffers()).toEqual({ ded: [], abd: [], ind: [] });
    expect((await w.meta()).seeded).toBe(false);
    await drive(w, 1);
    expect((await w.steps()).map((s) => s.step)).toEqual([1]);
    await w.close();
  });

  it('a corrupt latest checkpoint is detected and the previous one is used, with a warning', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    await drive(w, 4, [2, 4]);
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([2, 4]);
    await b.corrupt('r', 4);
    await expect(w.loadCheckpoint(4)).rejects.toBeInstanceOf(CorruptDataError);
    const p = await w.resume();
    expect(p.step).toBe(2);
    expect(p.warnings[0]).toMatch(/step 4 is corrupt.*SHA-256.*earlier one/);
    expect(p.removed).toMatchObject({ checkpoints: 1, steps: 2 });
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([2]);
    // The export carries the latest valid checkpoint.
    expect((await w.exportData()).checkpoint!.info.step).toBe(2);
    await w.close();
  });

  it('keeps the last K checkpoints; a second save at the same step keeps one', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    await drive(w, 5, [1, 2, 3, 4, 5]);
    await w.saveCheckpoint({ step: 5, tensors: tensors(5), reason: 'pause' });
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([4, 5]);
    await w.close();
  });

  it('one writer per run: a second one is told who holds it; after close it can open', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    const err = await store.openRun('r').catch((e) => e);
    expect(err).toBeInstanceOf(RunLockedError);
    expect(err.message).toMatch(
      kind === 'files' ? /already being written by pid \d+ on \S+ \(since/ : /another tab.*tab \w+ \(/,
    );
    await expect(store.deleteRun('r')).rejects.toBeInstanceOf(RunLockedError);
    // Readers need no lock.
    expect((await (await store.readRun('r')).meta()).step).toBe(0);
    await w.close();
    await expect(w.commitSeeding({ state: seededState(), samples: [] })).rejects.toThrow(/closed/);
    const w2 = await store.openRun('r');
    await w2.close();
  });
});

describe('model identity', () => {
  it('a run resumes only on the weights it was created with', async () => {
    const { checkSameModel, ModelMismatchError } = await import('../../../src/store/identity.ts');
    const store = new NodeRunStore(mkdtempSync(path.join(os.tmpdir(), 'tabzero-id-')));
    const w = await store.createRun('r', newRun());
    const meta = await w.meta();
    await w.close();
    rmSync(store.root, { recursive: true, force: true });
    expect(() =>
      checkSameModel(meta, { ...newRun().model, revision: 'other', sha256: 'AB'.repeat(32) }),
    ).not.toThrow();
    const other = { repo: 'Qwen/Qwen2-0.5B-Instruct', revision: 'main', sha256: 'cd'.repeat(32) };
    expect(() => checkSameModel(meta, other)).toThrow(ModelMismatchError);
    expect(() => checkSameModel(meta, other)).toThrow(
      /Run "r" was trained on tabzero\/tiny@main \(sha256 abababababab…\), but the loaded model is Qwen\/Qwen2-0\.5B-Instruct@main/,
    );
  });
});
