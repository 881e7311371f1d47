// The RunStore contract, run against both backends: IndexedDB (fake-indexeddb) and the Node run folder.
import 'fake-indexeddb/auto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptDataError, RunLockedError, StoreFullError } from '../../../src/store/errors.ts';
import { openTabzeroDb } from '../../../src/store/idb-schema.ts';
import { IdbRunStore } from '../../../src/store/idb-store.ts';
import type { FsOp } from '../../../src/store/node-fs.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import type { RunStore } from '../../../src/store/types.ts';
import {
  drive,
  everything,
  generations,
  metrics,
  newRun,
  seededState,
  stepCommit,
  task,
  tensors,
  testConfig,
} from './fixtures.ts';
import { MemoryLocks } from './memory-locks.ts';

interface Backend {
  store: RunStore;
  /** Flips one byte of a checkpoint's weights, behind the store's back. */
  corrupt(runId: string, step: number): Promise<void>;
  /** Makes every write fail as it does when the browser's quota or the disk is used up (until set back). */
  setFull(full: boolean): void;
  cleanup(): Promise<void>;
}

const originalPut = IDBObjectStore.prototype.put;
const originalAdd = IDBObjectStore.prototype.add;
function quotaExceeded(): never {
  throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
}
function setFull(full: boolean) {
  IDBObjectStore.prototype.put = full ? quotaExceeded : originalPut;
  IDBObjectStore.prototype.add = full ? quotaExceeded : originalAdd;
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
        const rec = (await db.get('checkpointData', [runId, step]))!;
        const bytes = new Uint8Array(await rec.weights.arrayBuffer());
        bytes[bytes.length - 3] ^= 0x40;
        await db.put('checkpointData', { ...rec, weights: new Blob([bytes]) });
        db.close();
      },
      setFull,
      async cleanup() {
        setFull(false);
        await store.close();
      },
    };
  },
  files: async () => {
    const root = mkdtempSync(
      path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'tabzero-contract-'),
    );
    let full = false;
    const fault = (op: FsOp, file: string) => {
      if (full && (op === 'write' || op === 'append' || op === 'mkdir'))
        throw Object.assign(new Error(`ENOSPC: no space left on device, ${op} '${file}'`), {
          code: 'ENOSPC',
        });
    };
    return {
      store: new NodeRunStore(root, { fault }),
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
      setFull(on) {
        full = on;
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
    await expect(w.commitSeeding({ state: seededState(), samples: [] })).rejects.toThrow(
      /at step 1; seeding belongs to step 0/,
    );
    await expect(w.commitEval({ step: 2, name: 'e', result: 1, time: 't' })).rejects.toThrow(
      /step 2 is past the committed step 1/,
    );
    const c2 = stepCommit(s1);
    await expect(w.commitStep({ ...c2, state: { ...c2.state, step: 3 } })).rejects.toThrow(
      /runner state is at step 3/,
    );
    const twice = { ...c2.state.buffers, abd: [...c2.state.buffers.abd, task('abd', 3, 2)] };
    await expect(w.commitStep({ ...c2, state: { ...c2.state, buffers: twice } })).rejects.toThrow(
      /buffer abd: id "abd-3" appears twice/,
    );
    expect((await w.meta()).step).toBe(1);
    expect(await w.state()).toEqual(s1);
    await w.commitStep(c2); // nothing of the refused calls was kept
    expect((await w.steps()).map((s) => s.step)).toEqual([1, 2]);
    await w.close();
  });

  it('runs calls one at a time in call order; a refused call does not stop the ones after it', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    const s0 = seededState();
    const c1 = stepCommit(s0);
    const c2 = stepCommit(c1.state);
    const c3 = stepCommit(c2.state);
    // Nothing awaited in between: each call sees what the ones before it committed.
    const calls = [
      w.commitSeeding({ state: s0, samples: generations(0, 2) }),
      w.commitStep(c1),
      w.commitStep(c3), // out of order: refused
      w.commitStep(c2),
      w.saveCheckpoint({ step: 2, tensors: tensors(2), reason: 'manual' }),
      w.commitEval({ step: 2, name: 'late', result: 1, time: 't' }),
      w.setStatus('paused', 'queued'),
      w.commitStep(c3),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(await w.meta()).toMatchObject({ step: 3, status: 'paused', statusMessage: 'queued' });
    expect(await w.state()).toEqual(c3.state);
    expect((await w.steps()).map((s) => s.step)).toEqual([1, 2, 3]);
    expect((await w.evals()).map((e) => [e.step, e.name])).toEqual([
      [2, 'arith_eval_200:raw'],
      [2, 'late'],
    ]);
    // The checkpoint holds the state committed when its turn came (step 2), not a later one.
    expect((await w.loadCheckpoint(2)).runnerState).toEqual(c2.state);
    // close() waits its turn too; what is called after it is refused.
    const closing = w.close();
    const late = w.setStatus('running');
    await closing;
    await expect(late).rejects.toThrow(/closed/);
    expect((await (await store.readRun('r')).meta()).status).toBe('paused');
  });

  it('a full store refuses a commit whole: the run stays at its last committed step and goes on once there is room', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    const s3 = await drive(w, 3, [1, 2]);
    const before = await everything(w);
    b.setFull(true);
    const attempts: [string, () => Promise<unknown>][] = [
      ['step 4', () => w.commitStep(stepCommit(s3))],
      ['the eval e at step 3', () => w.commitEval({ step: 3, name: 'e', result: 1, time: 't' })],
      [`the run's status`, () => w.setStatus('paused')],
      [
        'the checkpoint at step 3',
        () => w.saveCheckpoint({ step: 3, tensors: tensors(3), reason: 'hidden' }),
      ],
      ['the rollback to step 2', () => w.resume()],
    ];
    for (const [what, attempt] of attempts) {
      const err = (await attempt().catch((e) => e)) as Error;
      expect(err, what).toBeInstanceOf(StoreFullError);
      expect(err.message).toMatch(new RegExp(`full .* while saving ${what}; nothing of it was kept`));
    }
    b.setFull(false);
    // Nothing changed, not even the checkpoints (a failed save prunes none), for the writer and a reader.
    expect(await everything(w)).toEqual(before);
    expect(await everything(await store.readRun('r'))).toEqual(before);
    expect(before.checkpoints.map((c) => c.step)).toEqual([1, 2]);
    // The same writer carries on.
    await drive(w, 4);
    await w.saveCheckpoint({ step: 4, tensors: tensors(4), reason: 'timer' });
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([2, 4]);
    await w.close();
    const again = await store.openRun('r');
    expect((await again.steps()).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect((await again.samples()).length).toBe(2 + 4 * 3);
    await again.close();
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

  it('resume to the checkpoint taken after seeding keeps the seeding (step 0) and rolls back every step', async () => {
    const store = await setup();
    const w = await store.createRun('r', newRun());
    await drive(w, 2, [0]);
    const p = await w.resume();
    expect(p).toMatchObject({ step: 0, state: seededState(), warnings: [] });
    expect(p.removed).toEqual({ steps: 2, samples: 6, evals: 1, checkpoints: 0 });
    expect(await w.meta()).toMatchObject({ step: 0, seeded: true, notZeroData: true });
    expect(await w.steps()).toEqual([]);
    expect(await w.samples()).toEqual(generations(0, 2).map((g, i) => ({ ...g, i })));
    expect(await w.evals()).toEqual([]);
    expect(await w.state()).toEqual(seededState());
    expect((await w.seedSet())!.entries).toEqual([
      ...seededState().buffers.ded,
      ...seededState().buffers.ind,
    ]);
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

  it('keeps at least one checkpoint, whatever keepLastCheckpoints says', async () => {
    const store = await setup();
    const w = await store.createRun('r', {
      ...newRun(),
      config: { ...testConfig(), keepLastCheckpoints: 0 },
    });
    await drive(w, 3, [1, 2, 3]);
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([3]);
    expect((await w.resume()).step).toBe(3);
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
