// Shared test inputs for the export tests: a tiny byte-tokenizer model in memory, a run config with a
// LoRA that adapts every projection, a random (non-zero) adapter, and provenance.
import { defaultConfig, type RunConfig } from '../../../src/config.ts';
import { TARGET_PROJECTION, type HostLora } from '../../../src/model/lora.ts';
import { loadRefWeights } from '../../../src/engine/reference/load.ts';
import type { RefWeights } from '../../../src/engine/reference/qwen2.ts';
import { randomRefLora } from '../../../src/engine/reference/random.ts';
import type { ExportProvenance } from '../../../src/export/manifest.ts';
import type { FloatDType } from '../../../src/model/dtype.ts';
import { loadModelFolder, type LoadedModel } from '../../../src/model/model-folder.ts';
import { memoryFolder, type MemoryFolder } from '../../../src/model/model-source.ts';
import { qwen2TensorShapes } from '../../../src/model/qwen2-config.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';
import { SYSTEM_PROMPT } from '../../../src/selfplay/prompts.ts';

export const RANK = 4;
export const ALPHA = 8;

export function loraRunConfig(): RunConfig {
  return { ...defaultConfig(), seed: 1234, loraRank: RANK, loraAlpha: ALPHA, fineTune: 'lora' };
}

export async function tinyBase(
  dtype: FloatDType,
  seed = 3,
): Promise<{ folder: MemoryFolder; model: LoadedModel }> {
  const folder = memoryFolder(`tiny-${dtype}`);
  await generateTinyModel(folder, {
    seed,
    dtype,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
  });
  return { folder, model: await loadModelFolder(folder) };
}

/** A random adapter on the config's targets of every layer; `bScale` shrinks B (a small, early-training delta). */
export function randomAdapter(model: LoadedModel, config: RunConfig, seed = 11, bScale = 1): HostLora {
  const lora = randomRefLora(
    model.config,
    seed,
    config.loraRank,
    config.loraAlpha,
    config.loraTargets.map((t) => TARGET_PROJECTION[t]),
  );
  if (bScale !== 1)
    for (const p of Object.values(lora)) for (let i = 0; i < p.B.length; i++) p.B[i] *= bScale;
  return lora;
}

export function provenance(model: LoadedModel, config: RunConfig): ExportProvenance {
  return {
    base: model.identity,
    runConfig: config,
    templates: { system: SYSTEM_PROMPT, user: 'Compute the value of {EXPRESSION}.' },
    run: { id: 'run-1', step: 7, zeroData: true },
    tabzeroVersion: '0.1.0',
    createdAt: '2026-11-27T12:00:00.000Z',
  };
}

export async function refWeights(model: LoadedModel): Promise<RefWeights> {
  return loadRefWeights(
    model.weights,
    qwen2TensorShapes(model.config).map((t) => t.name),
    { dtype: 'f64' },
  );
}

/** Byte sequences the byte tokenizer reads as text, for logits comparisons. */
export const PROMPTS = [
  { ids: [...new TextEncoder().encode('f(x) = x // 2')] },
  { ids: [257, 104, 105, 258, 10] },
];

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export const text = (b: Uint8Array) => new TextDecoder().decode(b);
