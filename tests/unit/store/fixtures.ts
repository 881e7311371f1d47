// Runs in miniature for the store tests: a config, buffer entries, runner states and step results that
// look like the Runner's (same types), with buffers that grow and evict like TaskBuffer does.
import { defaultConfig, type RunConfig } from '../../../src/config.ts';
import type { GenerationRecord, StepMetrics } from '../../../src/selfplay/types.ts';
import type { RunnerState } from '../../../src/selfplay/types.ts';
import type { TaskEntry, TaskType } from '../../../src/selfplay/types.ts';
import type { CheckpointTensor, NewRun, RunReader, RunWriter, StepCommit } from '../../../src/store/types.ts';

export const MAX_BUFFER = 6;

export function testConfig(): RunConfig {
  return { ...defaultConfig(), seed: 7, maxBuffer: MAX_BUFFER, keepLastCheckpoints: 2 };
}

export function newRun(): NewRun {
  return {
    config: testConfig(),
    model: { repo: 'tabzero/tiny', revision: 'main', sha256: 'ab'.repeat(32) },
    tabzeroVersion: '0.1.0',
    templates: { deduction: 'f(x) = ...' },
  };
}

export function task(type: TaskType, n: number, step: number, seed = false): TaskEntry {
  return {
    id: `${type}-${n}`,
    type,
    program: `f(x) = x + ${n}`,
    arity: 1,
    inputs: [[n]],
    outputs: [2 * n],
    closed: [`${n} + ${n}`],
    binaryOps: 1,
    step,
    seed,
    origin: seed ? 'template' : 'model',
  };
}

/** Runner state after seeding: two seed entries per buffer. */
export function seededState(): RunnerState {
  return {
    version: 1,
    step: 0,
    rngState: 1000,
    seeded: true,
    notZeroData: true,
    nextTaskId: 7,
    buffers: {
      ded: [task('ded', 1, 0, true), task('ded', 2, 0, true)],
      abd: [task('abd', 3, 0, true), task('abd', 4, 0, true)],
      ind: [task('ind', 5, 0, true), task('ind', 6, 0, true)],
    },
  };
}

/** The state after one more step: two new entries per buffer, oldest non-seed evicted past MAX_BUFFER. */
export function nextState(prev: RunnerState): RunnerState {
  const step = prev.step + 1;
  let id = prev.nextTaskId;
  const buffers = { ...prev.buffers };
  for (const type of ['ded', 'abd', 'ind'] as const) {
    const items = [...prev.buffers[type]];
    for (let k = 0; k < 2; k++) {
      if (items.length >= MAX_BUFFER)
        items.splice(
          items.findIndex((e) => !e.seed),
          1,
        );
      items.push(task(type, id++, step));
    }
    buffers[type] = items;
  }
  return { ...prev, step, rngState: prev.rngState + 17, nextTaskId: id, buffers };
}

export function metrics(step: number): StepMetrics {
  return { step, mode: 'azr', groups: {}, validProposals: step } as unknown as StepMetrics;
}

export function generations(step: number, n = 3): GenerationRecord[] {
  return Array.from({ length: n }, (_, j) => ({
    step,
    kind: 'solve' as const,
    type: 'ded' as const,
    role: 'solve' as const,
    prompt: `prompt ${step}/${j} — ünïcödé`,
    response: `<answer>${step * 10 + j}</answer>`,
    tokens: 5,
    stopReason: 'stop_token',
    fmt: true,
    correct: j % 2 === 0,
    reward: j % 2,
    trained: true,
  }));
}

export function stepCommit(prev: RunnerState): StepCommit {
  const state = nextState(prev);
  return {
    step: state.step,
    metrics: metrics(state.step),
    samples: generations(state.step),
    state,
    evals:
      state.step % 2 === 0 ? [{ name: 'arith_eval_200:raw', result: { accuracy: state.step / 100 } }] : [],
  };
}

/** LoRA-like tensors whose values encode the step. */
export function tensors(step: number): CheckpointTensor[] {
  const a = new Float32Array(12).map((_, i) => step + i / 16);
  const m = new Float32Array(5).map((_, i) => -step - i);
  return [
    { name: 'lora.layers.0.q_proj.A', shape: [3, 4], data: a },
    { name: 'adamw.m.layers.0.q_proj.A', shape: [5], data: m },
  ];
}

/** Seeds, then commits steps 1..n, checkpointing at the given steps. Returns the last state. */
export async function drive(w: RunWriter, n: number, checkpointAt: number[] = []): Promise<RunnerState> {
  let state = seededState();
  if ((await w.meta()).step === 0 && !(await w.meta()).seeded) {
    await w.commitSeeding({ state, samples: generations(0, 2) });
    if (checkpointAt.includes(0)) await w.saveCheckpoint({ step: 0, tensors: tensors(0), reason: 'seeded' });
  } else {
    state = (await w.state())!;
  }
  while (state.step < n) {
    const c = stepCommit(state);
    await w.commitStep(c);
    state = c.state;
    if (checkpointAt.includes(state.step)) {
      await w.saveCheckpoint({
        step: state.step,
        tensors: tensors(state.step),
        engineState: { t: state.step },
        reason: 'steps',
      });
    }
  }
  return state;
}

/** What a reader sees of a run (everything but the checkpoints' bytes). */
export async function everything(r: RunReader) {
  return {
    meta: await r.meta(),
    state: await r.state(),
    steps: await r.steps(),
    samples: await r.samples(),
    evals: await r.evals(),
    seedSet: await r.seedSet(),
    checkpoints: await r.checkpoints(),
  };
}
