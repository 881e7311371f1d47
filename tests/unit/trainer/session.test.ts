// The run loop against the real Node run store, with a scripted policy (the real engine drives the
// same loop in the gpu layer and through `tabzero train`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../../../src/config.ts';
import { InlineVerifier, wireLimits } from '../../../src/selfplay/verifier.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import { StoreFullError } from '../../../src/store/errors.ts';
import type { CheckpointTensor, JsonValue } from '../../../src/store/types.ts';
import { TrainingSession, type SessionEvent, type TrainableState } from '../../../src/trainer/session.ts';
import { arithmeticScript, ChatMLTestTokenizer, ScriptedPolicy } from '../selfplay/helpers.ts';

/** A trainable state that is just a counter of optimizer steps, so checkpoints can be checked exactly. */
class CountingTrainable implements TrainableState {
  updates = 0;
  async save(): Promise<{ tensors: CheckpointTensor[]; state: JsonValue }> {
    return {
      tensors: [{ name: 'w', shape: [1], data: new Float32Array([this.updates]) }],
      state: { updates: this.updates },
    };
  }
  async load(tensors: CheckpointTensor[], state: JsonValue): Promise<void> {
    this.updates = tensors[0].data[0];
    expect((state as { updates: number }).updates).toBe(this.updates);
  }
  async reset(): Promise<void> {
    this.updates = 0;
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(overrides: Partial<RunConfig> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'tabzero-session-'));
  dirs.push(root);
  const config = resolveConfig('smoke', { evalLimit: 4, checkpointEverySteps: 1, ...overrides });
  const tokenizer = new ChatMLTestTokenizer();
  const store = new NodeRunStore(root);
  return { root, config, tokenizer, store };
}

function session(
  writer: Awaited<ReturnType<NodeRunStore['openRun']>>,
  tokenizer: ChatMLTestTokenizer,
  trainable: CountingTrainable,
  events: SessionEvent[],
) {
  const policy = new ScriptedPolicy(tokenizer, arithmeticScript(0.6));
  const origStep = policy.step.bind(policy);
  policy.step = async (batch) => {
    trainable.updates++;
    return origStep(batch);
  };
  return new TrainingSession({
    writer,
    policy,
    tokenizer,
    verifier: new InlineVerifier(wireLimits(resolveConfig('smoke'))),
    trainable,
    onEvent: (e) => events.push(e),
  });
}

const model = { repo: 'local/test', revision: 'local', sha256: '0'.repeat(64) };

describe('TrainingSession', () => {
  it('seeds, evaluates the base at step 0, runs to totalSteps and checkpoints', async () => {
    const { config, tokenizer, store } = setup({ totalSteps: 3 });
    const writer = await store.createRun('run', { config, model, tabzeroVersion: 'test' });
    const events: SessionEvent[] = [];
    const trainable = new CountingTrainable();
    expect(await session(writer, tokenizer, trainable, events).run()).toBe('finished');
    const steps = await writer.steps();
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
    expect((await writer.meta()).status).toBe('finished');
    const evals = await writer.evals();
    expect(evals.some((e) => e.step === 0)).toBe(true);
    const cps = await writer.checkpoints();
    expect(cps.at(-1)?.step).toBe(3);
    expect((await writer.loadCheckpoint(3)).tensors[0].data[0]).toBe(3);
    expect(events.filter((e) => e.type === 'step')).toHaveLength(3);
    await writer.close();
  });

  it('pauses at a step boundary and resumes to the same place, with nothing lost or duplicated', async () => {
    const { config, tokenizer, store } = setup({ totalSteps: 4, evalSets: [] });
    let writer = await store.createRun('run', { config, model, tabzeroVersion: 'test' });
    const trainable = new CountingTrainable();
    const events: SessionEvent[] = [];
    const s1 = session(writer, tokenizer, trainable, events);
    const origOn = events.push.bind(events);
    events.push = (...e: SessionEvent[]) => {
      if (e.some((x) => x.type === 'step' && x.result.step === 2)) s1.requestPause();
      return origOn(...e);
    };
    expect(await s1.run()).toBe('paused');
    expect((await writer.meta()).step).toBe(2);
    const bufferIdsBefore = Object.values(await writer.buffers())
      .flat()
      .map((t) => t.id);
    await writer.close();

    writer = await store.openRun('run');
    const trainable2 = new CountingTrainable();
    expect(await session(writer, tokenizer, trainable2, []).run()).toBe('finished');
    expect(trainable2.updates).toBe(4); // 2 restored from the checkpoint + 2 new
    expect((await writer.steps()).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    const ids = Object.values(await writer.buffers())
      .flat()
      .map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of bufferIdsBefore) expect(ids).toContain(id);
    await writer.close();
  });

  it('rolls back steps committed after the last checkpoint when resuming', async () => {
    const { config, tokenizer, store } = setup({ totalSteps: 3, evalSets: [], checkpointEverySteps: 2 });
    let writer = await store.createRun('run', { config, model, tabzeroVersion: 'test' });
    const trainable = new CountingTrainable();
    const s = session(writer, tokenizer, trainable, []);
    // Simulate a crash right after step 3 commits and before its checkpoint: stop the trainable's save.
    let saves = 0;
    trainable.save = async () => {
      saves++;
      if (saves > 2) throw new Error('killed');
      return {
        tensors: [{ name: 'w', shape: [1], data: new Float32Array([trainable.updates]) }],
        state: { updates: trainable.updates },
      };
    };
    await expect(s.run()).rejects.toThrow('killed');
    expect((await writer.meta()).step).toBe(3);
    await writer.close();

    writer = await store.openRun('run');
    const trainable2 = new CountingTrainable();
    const end = await session(writer, tokenizer, trainable2, []).run();
    expect(end).toBe('finished');
    expect(trainable2.updates).toBe(3); // checkpoint at 2, step 3 redone once
    expect((await writer.steps()).map((r) => r.step)).toEqual([1, 2, 3]);
    await writer.close();
  });

  it('stops cleanly when the disk is full, keeps what was committed, and resumes once there is room', async () => {
    const { root, config, tokenizer } = setup({ totalSteps: 3, evalSets: [] });
    let full = false;
    const store = new NodeRunStore(root, {
      fault: (op, file) => {
        if (full && (op === 'write' || op === 'append') && /steps\.jsonl|samples\.jsonl/.test(file)) {
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        }
      },
    });
    let writer = await store.createRun('run', { config, model, tabzeroVersion: 'test' });
    const trainable = new CountingTrainable();
    const events: SessionEvent[] = [];
    const s1 = session(writer, tokenizer, trainable, events);
    const push = events.push.bind(events);
    events.push = (...e: SessionEvent[]) => {
      if (e.some((x) => x.type === 'step' && x.result.step === 1)) full = true;
      return push(...e);
    };
    const err = await s1.run().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreFullError);
    expect((err as Error).message).toMatch(/full|space/i);
    expect((await writer.meta()).step).toBe(1);
    expect((await writer.steps()).map((r) => r.step)).toEqual([1]);
    await writer.close();

    full = false;
    writer = await store.openRun('run');
    expect(await session(writer, tokenizer, new CountingTrainable(), []).run()).toBe('finished');
    expect((await writer.steps()).map((r) => r.step)).toEqual([1, 2, 3]);
    await writer.close();
  });
});
