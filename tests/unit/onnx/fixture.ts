// A tiny random Qwen2 (byte vocabulary, GQA with 2 query heads per KV head, bf16 weights like the real
// checkpoint) written to a temporary folder, with its f32 reference weights.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRefWeights } from '../../../src/engine/reference/load.ts';
import type { RefWeights } from '../../../src/engine/reference/qwen2.ts';
import { loadModelFolder, type LoadedModel } from '../../../src/model/model-folder.ts';
import { nodeFolderSink, nodeFolderSource } from '../../../src/model/node-folder.ts';
import type { ModelSource } from '../../../src/model/model-source.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';

export interface TinyFixture {
  root: string;
  modelDir: string;
  source: ModelSource & { close(): Promise<void> };
  model: LoadedModel;
  weights: RefWeights;
  cleanup(): Promise<void>;
}

export async function tinyFixture(seed: number): Promise<TinyFixture> {
  const root = await mkdtemp(join(tmpdir(), 'tabzero-onnx-'));
  const modelDir = join(root, 'model');
  await generateTinyModel(await nodeFolderSink(modelDir), {
    seed,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    dtype: 'BF16',
    hidden: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 128,
  });
  const source = nodeFolderSource(modelDir);
  const model = await loadModelFolder(source);
  const weights = await loadRefWeights(
    model.weights,
    model.weights.tensors.map((t) => t.name),
    { dtype: 'f32' },
  );
  return {
    root,
    modelDir,
    source,
    model,
    weights,
    cleanup: async () => {
      await source.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Largest |a − b| over the first n values (n defaults to a.length). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
