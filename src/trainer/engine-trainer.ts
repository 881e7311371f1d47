// Binds the engine's training half (src/engine/train.ts: LoRA on the GPU, backward, AdamW) to a run:
// the run's LoRA spec and optimizer settings, checkpointable state (LoRA parameters + AdamW moments +
// step count as named f32 tensors), and the base/adapter switch for evals and the KL reference.
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { GpuLora } from '../engine/lora-gpu.ts';
import { initLora, parsePeftName, type LoraSpec } from '../engine/lora.ts';
import { moduleName, type RefLora } from '../engine/reference/qwen2.ts';
import {
  Trainer as EngineTrainer,
  trainablePolicy,
  type TrainerOptions,
  type TrainerState,
} from '../engine/train.ts';
import type { CheckpointTensor, JsonValue } from '../store/types.ts';
import type { Trainer } from './lab.ts';

/** What a checkpoint of the engine-side state records besides tensors. */
interface EngineState {
  kind: 'lora';
  rank: number;
  alpha: number;
  targets: string[];
  optimizerStep: number;
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
    microBatch: config.microBatch,
  };
}

// One adapter (and its training buffers) per engine and LoRA shape: creating a Trainer allocates GPU
// buffers, so evals, chats and resumed runs with the same shape reuse it instead of allocating again.
const cache = new WeakMap<Engine, { key: string; lora: GpuLora; trainer: EngineTrainer }>();

export async function createEngineTrainer(engine: Engine, config: RunConfig): Promise<Trainer> {
  if (config.fineTune !== 'lora') {
    throw new Error(
      'Runs train a LoRA adapter: set fineTune = lora. (Full fine-tuning exists in the engine, with f32 weights, ' +
        'but runs cannot yet checkpoint or restore the full weights, so it is not offered for runs.)',
    );
  }
  const spec = loraSpecOf(config);
  const key = JSON.stringify(spec);
  let entry = cache.get(engine);
  if (!entry || entry.key !== key) {
    const host = initLora(engine.config, spec, config.seed);
    const lora = GpuLora.create(engine.ctx.device, engine.ledger, engine.config, host);
    entry = { key, lora, trainer: new EngineTrainer(engine, lora, trainerOptionsOf(config)) };
    cache.set(engine, entry);
  }
  const { lora, trainer } = entry;
  Object.assign(trainer.opts, trainerOptionsOf(config));
  engine.setLora(lora.weights);
  engine.loraEnabled = true;
  const device = engine.ctx.device;

  const write = (buf: GPUBuffer, data: Float32Array) =>
    device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);

  return {
    policy: trainablePolicy(engine, trainer),
    setAdapterEnabled: (on) => {
      engine.loraEnabled = on;
    },
    dispose: () => {
      engine.loraEnabled = false;
    },
    trainable: {
      async save() {
        const exported = await trainer.exportState();
        const tensors: CheckpointTensor[] = [];
        for (const [name, t] of Object.entries(exported.tensors)) {
          tensors.push({ name, shape: [t.param.length], data: t.param });
          for (const m of MOMENTS)
            tensors.push({ name: `${name}.adam_${m}`, shape: [t[m].length], data: t[m] });
        }
        const state: EngineState = {
          kind: 'lora',
          rank: spec.rank,
          alpha: spec.alpha,
          targets: [...spec.targets],
          optimizerStep: exported.step,
        };
        return { tensors, state: state as unknown as JsonValue };
      },
      async load(tensors, state) {
        const s = state as unknown as EngineState;
        if (s?.kind !== 'lora' || s.rank !== spec.rank || s.alpha !== spec.alpha) {
          throw new Error(
            `the checkpoint holds a different adapter (rank ${s?.rank}, alpha ${s?.alpha}) than the run config ` +
              `(rank ${spec.rank}, alpha ${spec.alpha})`,
          );
        }
        const byName = new Map(tensors.map((t) => [t.name, t.data]));
        const get = (name: string) => byName.get(name) ?? new Float32Array(0);
        const restored: TrainerState = { step: s.optimizerStep, tensors: {} };
        for (const t of lora.tensors) {
          restored.tensors[t.name] = {
            param: get(t.name),
            m: get(`${t.name}.adam_m`),
            v: get(`${t.name}.adam_v`),
          };
        }
        trainer.importState(restored);
        engine.loraEnabled = true;
      },
      async reset(seed) {
        const host = initLora(engine.config, spec, seed);
        for (const p of lora.pairs) {
          write(p.A.param, host[p.module].A as Float32Array);
          write(p.B.param, host[p.module].B as Float32Array);
        }
        lora.resetOptimizer();
        trainer.optimizer.step = 0;
        engine.loraEnabled = true;
      },
    },
  };
}

/** The adapter in a checkpoint (its parameters; the AdamW moments are left out), for exports. */
export function loraFromCheckpoint(tensors: readonly CheckpointTensor[], state: JsonValue): RefLora {
  const s = state as unknown as EngineState | null;
  if (s?.kind !== 'lora') throw new Error('this checkpoint holds no LoRA adapter');
  const lora: RefLora = {};
  for (const t of tensors) {
    const parsed = parsePeftName(t.name);
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
