// Binds the engine's training half (src/engine/train.ts: LoRA on the GPU, backward, AdamW) to a run:
// the run's LoRA spec and optimizer settings, checkpointable state (LoRA parameters + AdamW moments +
// step count as named f32 tensors), and the base/adapter switch for evals and the KL reference — or, with
// fineTune = full, every base weight with its moments (createFullTrainer). With
// config.separateAdapters the proposer and the solver train separate adapters (separate-adapters.ts).
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { readF32 } from '../engine/buffers.ts';
import { GpuLora } from '../engine/lora-gpu.ts';
import { initLora, moduleName, parsePeftName, type HostLora, type LoraSpec } from '../model/lora.ts';
import { GpuTrainer, trainablePolicy, type TrainerOptions, type TrainerState } from '../engine/train.ts';
import type { Policy } from '../policy.ts';
import type { CheckpointTensor, JsonValue } from '../store/types.ts';
import type { Trainer } from './types.ts';
import {
  ADAPTER_ROLES,
  separateAdapterPolicy,
  useAdapter,
  type AdapterRole,
  type AdapterTrainers,
} from './separate-adapters.ts';

/** What a checkpoint of the engine-side state records besides tensors. */
type EngineState = LoraState | FullState;

/** Full fine-tuning: tensors are the trainer's own (`full.<layer>.<field>`, FULL_PREFIX) with moments. */
interface FullState {
  kind: 'full';
  optimizerStep: number;
}

interface LoraState {
  kind: 'lora';
  rank: number;
  alpha: number;
  targets: string[];
  /** The (solver's, with separate adapters) AdamW step count. */
  optimizerStep: number;
  /** Separate proposer and solver adapters: tensor names carry a `propose.` / `solve.` prefix. */
  separate?: boolean;
  /** Each adapter's AdamW step count (separate adapters only). */
  optimizerSteps?: Record<AdapterRole, number>;
}

const MOMENTS = ['m', 'v'] as const;

export function loraSpecOf(config: RunConfig): LoraSpec {
  return { rank: config.loraRank, alpha: config.loraAlpha, targets: config.loraTargets };
}

export function trainerOptionsOf(config: RunConfig): TrainerOptions {
  return {
    lr: config.lr,
    beta1: config.adamBeta1,
    beta2: config.adamBeta2,
    eps: config.adamEps,
    weightDecay: config.weightDecay,
    maxGradNorm: config.gradClip,
    warmupSteps: config.warmupSteps,
    ...(config.lrSchedule === 'constant'
      ? {}
      : { decay: { kind: config.lrSchedule, totalSteps: config.totalSteps, minRatio: config.lrMinRatio } }),
    microBatch: config.microBatch,
  };
}

/** One adapter and the engine's GpuTrainer (gradients, AdamW, backward scratch) that trains it. */
interface Adapter {
  lora: GpuLora;
  trainer: GpuTrainer;
}

/** The adapters of a run: one ('' = no name prefix), or the proposer's and the solver's. */
type Adapters = Map<'' | AdapterRole, Adapter>;

// The adapters (and their training buffers) per engine and LoRA layout: creating a GpuTrainer allocates GPU
// buffers, so evals, chats and resumed runs with the same layout reuse them instead of allocating again.
const cache = new WeakMap<Engine, { key: string; adapters: Adapters }>();

/** Each adapter's init seed: the solver (or the only adapter) uses the run seed, the proposer seed + 1. */
function adapterSeed(seed: number, name: '' | AdapterRole): number {
  return name === 'propose' ? seed + 1 : seed;
}

export async function createEngineTrainer(engine: Engine, config: RunConfig): Promise<Trainer> {
  if (config.fineTune === 'full') return createFullTrainer(engine, config);
  const spec = loraSpecOf(config);
  const separate = config.separateAdapters;
  const names: ('' | AdapterRole)[] = separate ? [...ADAPTER_ROLES] : [''];
  const key = JSON.stringify({ spec, separate });
  let entry = cache.get(engine);
  if (!entry || entry.key !== key) {
    const adapters: Adapters = new Map();
    for (const name of names) {
      const host = initLora(engine.config, spec, adapterSeed(config.seed, name));
      const lora = GpuLora.create(engine.ctx.device, engine.ledger, engine.config, host);
      adapters.set(name, { lora, trainer: new GpuTrainer(engine, lora, trainerOptionsOf(config)) });
    }
    entry = { key, adapters };
    cache.set(engine, entry);
  }
  const { adapters } = entry;
  for (const { trainer } of adapters.values()) Object.assign(trainer.opts, trainerOptionsOf(config));
  const prefix = (name: '' | AdapterRole) => (name ? `${name}.` : '');
  let policy: Policy;
  if (separate) {
    const trainers: AdapterTrainers = {
      propose: adapters.get('propose')!.trainer,
      solve: adapters.get('solve')!.trainer,
    };
    useAdapter(engine, trainers, 'solve');
    policy = separateAdapterPolicy(engine, trainers);
  } else {
    const { lora, trainer } = adapters.get('')!;
    engine.setLora(lora.weights);
    policy = trainablePolicy(engine, trainer);
  }
  engine.loraEnabled = true;
  const device = engine.ctx.device;

  const write = (buf: GPUBuffer, data: Float32Array) =>
    device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);

  return {
    policy,
    // The KL reference is the base model: the same batched log-prob pass with the adapter switched off.
    referencePolicy: {
      logprobs: async (batch) => {
        const enabled = engine.loraEnabled;
        engine.loraEnabled = false;
        try {
          return await engine.logprobs(batch);
        } finally {
          engine.loraEnabled = enabled;
        }
      },
    },
    // One switch for both adapters: the forward applies whichever is installed only when enabled.
    setAdapterEnabled: (on) => {
      engine.loraEnabled = on;
    },
    dispose: () => {
      engine.loraEnabled = false;
    },
    trainable: {
      async save() {
        const tensors: CheckpointTensor[] = [];
        const steps = {} as Record<AdapterRole, number>;
        let step = 0;
        for (const [name, { trainer }] of adapters) {
          const exported = await trainer.exportState();
          for (const [tensor, t] of Object.entries(exported.tensors)) {
            const full = prefix(name) + tensor;
            tensors.push({ name: full, shape: [t.param.length], data: t.param });
            for (const m of MOMENTS)
              tensors.push({ name: `${full}.adam_${m}`, shape: [t[m].length], data: t[m] });
          }
          if (name) steps[name] = exported.step;
          if (name === '' || name === 'solve') step = exported.step;
        }
        const state: EngineState = {
          kind: 'lora',
          rank: spec.rank,
          alpha: spec.alpha,
          targets: [...spec.targets],
          optimizerStep: step,
          ...(separate ? { separate: true, optimizerSteps: steps } : {}),
        };
        return { tensors, state: state as unknown as JsonValue };
      },
      async load(tensors, state) {
        const s = state as unknown as EngineState;
        if (s?.kind === 'full') {
          throw new Error(
            'the checkpoint holds fully fine-tuned weights, but the run config trains a LoRA adapter (fineTune = lora)',
          );
        }
        if (s?.kind !== 'lora' || s.rank !== spec.rank || s.alpha !== spec.alpha) {
          throw new Error(
            `the checkpoint holds a different adapter (rank ${s?.rank}, alpha ${s?.alpha}) than the run config ` +
              `(rank ${spec.rank}, alpha ${spec.alpha})`,
          );
        }
        if (Boolean(s.separate) !== separate) {
          throw new Error(
            s.separate
              ? 'the checkpoint holds separate proposer and solver adapters, but the run config has separateAdapters off'
              : 'the checkpoint holds one adapter, but the run config has separateAdapters on',
          );
        }
        const byName = new Map(tensors.map((t) => [t.name, t.data]));
        const get = (name: string) => byName.get(name) ?? new Float32Array(0);
        for (const [name, { lora, trainer }] of adapters) {
          const step = name ? s.optimizerSteps?.[name] : s.optimizerStep;
          if (typeof step !== 'number') throw new Error(`the checkpoint has no optimizer step for ${name}`);
          const restored: TrainerState = { step, tensors: {} };
          for (const t of lora.tensors) {
            const full = prefix(name) + t.name;
            restored.tensors[t.name] = {
              param: get(full),
              m: get(`${full}.adam_m`),
              v: get(`${full}.adam_v`),
            };
          }
          trainer.importState(restored);
        }
        engine.loraEnabled = true;
      },
      async reset(seed) {
        for (const [name, { lora, trainer }] of adapters) {
          const host = initLora(engine.config, spec, adapterSeed(seed, name));
          for (const p of lora.pairs) {
            write(p.A.param, host[p.module].A as Float32Array);
            write(p.B.param, host[p.module].B as Float32Array);
          }
          lora.resetOptimizer();
          trainer.optimizer.step = 0;
        }
        engine.loraEnabled = true;
      },
    },
  };
}

/** The adapter in a checkpoint (its parameters; the AdamW moments are left out), for exports. */
export function loraFromCheckpoint(tensors: readonly CheckpointTensor[], state: JsonValue): HostLora {
  const s = state as unknown as EngineState | null;
  if (s?.kind !== 'lora') throw new Error('this checkpoint holds no LoRA adapter');
  if (s.separate) {
    throw new Error(
      'this checkpoint holds separate proposer and solver adapters, not one: take one of them ' +
        "(lorasFromCheckpoint; exports and evals use the solver's, checkpointAdapter)",
    );
  }
  return loraFromTensors(tensors, s, '');
}

/**
 * The adapter a checkpoint's weights mean for export and evaluation: its only one, or with separate
 * proposer and solver adapters the solver's (the one that answers tasks — what an eval scores and an
 * exported model is used for).
 */
export function checkpointAdapter(
  tensors: readonly CheckpointTensor[],
  state: JsonValue,
): { lora: HostLora; name: string } {
  const separate = (state as { separate?: boolean } | null)?.separate === true;
  return separate
    ? { lora: lorasFromCheckpoint(tensors, state).solve, name: 'solver adapter' }
    : { lora: loraFromCheckpoint(tensors, state), name: 'adapter' };
}

/** Both adapters of a separate-adapters checkpoint (parameters only). */
export function lorasFromCheckpoint(
  tensors: readonly CheckpointTensor[],
  state: JsonValue,
): Record<AdapterRole, HostLora> {
  const s = state as unknown as EngineState | null;
  if (s?.kind !== 'lora' || !s.separate)
    throw new Error('this checkpoint holds no separate proposer and solver adapters');
  return { propose: loraFromTensors(tensors, s, 'propose.'), solve: loraFromTensors(tensors, s, 'solve.') };
}

function loraFromTensors(tensors: readonly CheckpointTensor[], s: LoraState, prefix: string): HostLora {
  const lora: HostLora = {};
  for (const t of tensors) {
    if (!t.name.startsWith(prefix)) continue;
    const parsed = parsePeftName(t.name.slice(prefix.length));
    if (!parsed) continue; // AdamW moments (`….adam_m`) and anything else
    const mod = moduleName(parsed.layer, parsed.projection);
    const pair = (lora[mod] ??= {
      A: new Float32Array(0),
      B: new Float32Array(0),
      rank: s.rank,
      scale: s.alpha / s.rank,
    });
    pair[parsed.which] = t.data;
  }
  return lora;
}

/**
 * The frozen KL reference of a full fine-tuning run: the engine's weights put back to the base (a resumed
 * run's checkpoint is loaded after this), then copied on the GPU into an engine of the same shape. Refused
 * with what to do when the copy does not fit in GPU memory.
 */
async function frozenReference(engine: Engine, restoreBase: () => void): Promise<Engine> {
  restoreBase();
  const device = engine.ctx.device;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let copy: Engine | null = null;
  let thrown: unknown = null;
  try {
    copy = engine.frozenCopy();
  } catch (e) {
    thrown = e;
  }
  const invalid = await device.popErrorScope();
  const oom = await device.popErrorScope();
  const failure = oom ?? invalid ?? thrown;
  if (failure || !copy) {
    copy?.destroy();
    const gib = (engine.ledger.report().weights / 2 ** 30).toFixed(2);
    const why =
      typeof failure === 'object' && failure !== null && 'message' in failure
        ? String(failure.message)
        : String(failure);
    throw new Error(
      `klBeta > 0 with full fine-tuning keeps a frozen copy of the base weights (${gib} GiB more) for the KL ` +
        `term, and this GPU could not allocate it (${why}): set klBeta = 0, or train a LoRA adapter ` +
        '(fineTune = lora), whose reference is the base model with the adapter switched off',
    );
  }
  return copy;
}

/** Name prefix of full fine-tuning checkpoint tensors (the trainer's keys: `full.3.qkv`, `full.embed0`). */
export const FULL_PREFIX = 'full.';

// One full fine-tuning trainer per engine (its gradient and moment buffers are as large as the model),
// with a host copy of the base weights as loaded, taken before the first update.
const fullCache = new WeakMap<Engine, { trainer: GpuTrainer; base: Float32Array[] }>();

/**
 * Full fine-tuning (fineTune = full; f32 weights with tied embeddings): every base weight is a parameter,
 * trained in place on the GPU. There is no adapter to switch off, so with klBeta > 0 the KL reference is a
 * frozen GPU copy of the base weights (a second engine of the same shape, made when the run's trainer is).
 * Checkpoints hold every weight with its AdamW moments. The base weights as loaded are kept on the host:
 * `reset` and `dispose` put them back, so the engine holds the base model again for the next run, eval or
 * chat.
 */
async function createFullTrainer(engine: Engine, config: RunConfig): Promise<Trainer> {
  if (config.separateAdapters)
    throw new Error('separateAdapters needs LoRA adapters: set fineTune = lora, or separateAdapters = false');
  let entry = fullCache.get(engine);
  if (!entry) {
    const trainer = new GpuTrainer(engine, null, trainerOptionsOf(config));
    const base = await Promise.all(trainer.trainables.map((x) => readF32(engine.ctx.device, x.param, x.n)));
    entry = { trainer, base };
    fullCache.set(engine, entry);
  }
  const { trainer: t, base } = entry;
  Object.assign(t.opts, trainerOptionsOf(config));
  engine.setLora(null);
  engine.loraEnabled = false;
  const device = engine.ctx.device;
  const restoreBase = () => {
    const enc = device.createCommandEncoder();
    t.trainables.forEach((x, k) => {
      write(x.param, base[k]);
      enc.clearBuffer(x.m);
      enc.clearBuffer(x.v);
    });
    device.queue.submit([enc.finish()]);
    t.optimizer.step = 0;
  };
  const write = (buf: GPUBuffer, data: Float32Array) =>
    device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const reference = config.klBeta > 0 ? await frozenReference(engine, restoreBase) : null;
  return {
    policy: trainablePolicy(engine, t),
    ...(reference ? { referencePolicy: reference } : {}),
    setAdapterEnabled: (on) => {
      if (!on)
        throw new Error(
          'a fully fine-tuned run has no adapter to switch off: evaluate the base model by loading it afresh',
        );
    },
    dispose: () => {
      restoreBase();
      reference?.destroy();
    },
    trainable: {
      async save() {
        const exported = await t.exportState();
        const tensors: CheckpointTensor[] = [];
        for (const [name, s] of Object.entries(exported.tensors)) {
          const full = FULL_PREFIX + name;
          tensors.push({ name: full, shape: [s.param.length], data: s.param });
          for (const m of MOMENTS)
            tensors.push({ name: `${full}.adam_${m}`, shape: [s[m].length], data: s[m] });
        }
        const state: FullState = { kind: 'full', optimizerStep: exported.step };
        return { tensors, state: state as unknown as JsonValue };
      },
      async load(tensors, state) {
        const s = state as unknown as EngineState | null;
        if (s?.kind !== 'full')
          throw new Error(
            'the checkpoint holds a LoRA adapter, but the run config fine-tunes every weight (fineTune = full)',
          );
        const byName = new Map(tensors.map((x) => [x.name, x.data]));
        const get = (name: string) => byName.get(name) ?? new Float32Array(0);
        const restored: TrainerState = { step: s.optimizerStep, tensors: {} };
        for (const x of t.trainables) {
          const full = FULL_PREFIX + x.name;
          restored.tensors[x.name] = { param: get(full), m: get(`${full}.adam_m`), v: get(`${full}.adam_v`) };
        }
        t.importState(restored);
      },
      async reset() {
        restoreBase();
      },
    },
  };
}
