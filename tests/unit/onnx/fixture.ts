// A tiny random Qwen2 (byte vocabulary, GQA with 2 query heads per KV head, bf16 weights like the real
// checkpoint) written to a temporary folder, with its f32 reference weights.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRefWeights } from '../../../src/engine/reference/load.ts';
import type { RefWeights } from '../../../src/engine/reference/qwen2.ts';
import { loadModelFolder, type LoadedModel } from '../../../src/model/model-folder.ts';
import { nodeFolderSink, nodeFolderSource } from '../../../src/model/node-folder.ts';
import type { ModelSource } from '../../../src/model/model-source.ts';
import { encodeFloats, type FloatDType } from '../../../src/model/dtype.ts';
import { Sfc32 } from '../../../src/model/rng.ts';
import { encodeSafetensors } from '../../../src/model/safetensors-write.ts';
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

/**
 * Unties the head of the model in `dir` (Qwen2 ≥ 1.5B have their own lm_head.weight): a random
 * lm_head.weight [V, C] joins the weights and config.json says tie_word_embeddings: false.
 */
async function untieHead(dir: string, seed: number): Promise<void> {
  const source = nodeFolderSource(dir);
  try {
    const model = await loadModelFolder(source);
    const tensors = [];
    for (const t of model.weights.tensors) {
      tensors.push({
        name: t.name,
        dtype: t.dtype as FloatDType,
        shape: t.shape,
        data: await model.weights.read(t.name),
      });
    }
    const { vocabSize: V, hiddenSize: C } = model.config;
    const head = new Float32Array(V * C);
    new Sfc32(seed).fillUniform(head, 0, Math.sqrt(3 / C));
    tensors.push({
      name: 'lm_head.weight',
      dtype: 'BF16' as const,
      shape: [V, C],
      data: encodeFloats(head, 'BF16'),
    });
    await writeFile(join(dir, 'model.safetensors'), await encodeSafetensors(tensors));
  } finally {
    await source.close();
  }
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
}

export async function tinyFixture(seed: number, opts: { untied?: boolean } = {}): Promise<TinyFixture> {
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
  if (opts.untied) await untieHead(modelDir, seed);
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
