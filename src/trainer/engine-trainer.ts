// Binds the engine's training half (src/engine/train.ts: LoRA on the GPU, backward, AdamW) to a run:
// the run's LoRA spec and optimizer settings, checkpointable state (LoRA parameters + AdamW moments +
// step count as named f32 tensors), and the base/adapter switch for evals and the KL reference.
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { GpuLora } from '../engine/lora-gpu.ts';
import { initLora, parsePeftName, type LoraSpec } from '../engine/lora.ts';
import { moduleName, type RefLora } from '../engine/reference/qwen2.ts';
import { readF32 } from '../engine/buffers.ts';
import { Trainer as EngineTrainer, trainablePolicy, type TrainerOptions } from '../engine/train.ts';
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
      'Full fine-tuning is not available in this version of the engine: use fineTune = lora (the default). ' +
        `Full fine-tuning of ${engine.config.numHiddenLayers} layers would need the base weights, their gradients and ` +
        'two AdamW moments in f32 on the GPU.',
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
        const tensors: CheckpointTensor[] = [];
        for (const t of lora.tensors) {
          tensors.push({ name: t.name, shape: [t.n], data: await readF32(device, t.param, t.n) });
          tensors.push({ name: `${t.name}.adam_m`, shape: [t.n], data: await readF32(device, t.m, t.n) });
          tensors.push({ name: `${t.name}.adam_v`, shape: [t.n], data: await readF32(device, t.v, t.n) });
        }
        const state: EngineState = {
          kind: 'lora',
          rank: spec.rank,
          alpha: spec.alpha,
          targets: [...spec.targets],
          optimizerStep: trainer.optimizer.step,
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
        for (const t of lora.tensors) {
          const parts: [GPUBuffer, string][] = [
            [t.param, t.name],
            ...MOMENTS.map((m): [GPUBuffer, string] => [t[m], `${t.name}.adam_${m}`]),
          ];
          for (const [buf, name] of parts) {
            const data = byName.get(name);
            if (!data || data.length !== t.n)
              throw new Error(`the checkpoint has no tensor ${name} of ${t.n} values`);
            write(buf, data);
          }
        }
        trainer.optimizer.step = s.optimizerStep;
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
