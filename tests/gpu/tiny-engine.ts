// Shared fixture of the forward tests: a tiny random Qwen2 (byte-level vocabulary, so the LM head is
// cheap on lavapipe) generated in memory, loaded both into the engine and as reference f32 arrays.
import { decodeFloats, type FloatDType } from '../../src/model/dtype.ts';
import { loadModelFolder, type LoadedModel } from '../../src/model/model-folder.ts';
import { memoryFolder } from '../../src/model/model-source.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';
import { Engine, type EngineOptions } from '../../src/engine/engine.ts';
import type { LoraTarget } from '../../src/config.ts';
import { moduleName, projectionShape, TARGET_PROJECTION, type HostLora } from '../../src/model/lora.ts';
import { type RefModelConfig, type RefWeights } from '../../src/engine/reference/qwen2.ts';
import type { NodeDeviceOptions } from '../../src/engine/node-gpu.ts';
import { getTestContext, randomF32 } from '../helpers/gpu.ts';

export interface TinyShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
}

export const TINY: TinyShape = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 96 };

export async function tinyModel(
  seed: number,
  dtype: FloatDType,
  shape: TinyShape = TINY,
): Promise<LoadedModel> {
  const folder = memoryFolder(`tiny-${seed}-${dtype}`);
  await generateTinyModel(folder, {
    seed,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    dtype,
    ...shape,
  });
  return loadModelFolder(folder);
}

/** The model's weights as f32 arrays by HF name (16-bit files decoded exactly), for the reference. */
export async function refWeights(model: LoadedModel): Promise<RefWeights> {
  const out: RefWeights = {};
  for (const t of model.weights.tensors) {
    out[t.name] = decodeFloats(await model.weights.read(t.name), t.dtype as FloatDType);
  }
  return out;
}

export function refConfig(model: LoadedModel): RefModelConfig {
  return model.config;
}

/** `device` picks the test device, e.g. `{ disableFeatures: ['shader-f16'] }` for the portable path. */
export async function tinyEngine(
  model: LoadedModel,
  opts: Partial<EngineOptions> = {},
  device: NodeDeviceOptions = {},
): Promise<Engine> {
  const ctx = await getTestContext(device);
  return Engine.load(ctx, model.config, model.weights, model.tokenizer, {
    maxBatch: 4,
    maxSeqLen: 64,
    ...opts,
  });
}

/**
 * A random adapter (A and B both nonzero, so it moves the logits) on every target of every layer but
 * `skip` (layer → target), which leaves zero rows in a packed copy.
 */
export function randomLora(
  cfg: RefModelConfig,
  rank: number,
  seed: number,
  skip: Record<number, LoraTarget> = {},
): HostLora {
  const lora: HostLora = {};
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    for (const [target, proj] of Object.entries(TARGET_PROJECTION) as [
      LoraTarget,
      (typeof TARGET_PROJECTION)[LoraTarget],
    ][]) {
      if (skip[l] === target) continue;
      const [out, inp] = projectionShape(cfg, proj);
      lora[moduleName(l, proj)] = {
        A: randomF32(rank * inp, seed++, 0.1),
        B: randomF32(out * rank, seed++, 0.1),
        rank,
        scale: 2,
      };
    }
  }
  return lora;
}
