import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFloats } from '../../../src/model/dtype.ts';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { memoryFolder } from '../../../src/model/model-source.ts';
import { nodeFolderSink, nodeFolderSource } from '../../../src/model/node-folder.ts';
import { loadQwen2TokenizerFiles } from '../../../src/model/node-qwen2-tokenizer.ts';
import { parameterCount, parseQwen2Config, qwen2TensorShapes } from '../../../src/model/qwen2-config.ts';
import {
  BYTE_MODEL_VOCAB_SIZE,
  generateTinyModel,
  tinyModelConfigJson,
  type TinyModelOptions,
} from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';

const bytesOpts = (seed: number, extra: Partial<TinyModelOptions> = {}): TinyModelOptions => ({
  seed,
  tokenizerFiles: byteTokenizerFiles(),
  tokenizerKind: 'bytes',
  dtype: 'BF16',
  ...extra,
});

async function generate(opts: TinyModelOptions) {
  const folder = memoryFolder('tiny');
  await generateTinyModel(folder, opts);
  return folder;
}

const tmpDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('tiny-model generator', () => {
  it('is deterministic per seed and differs across seeds', async () => {
    const a = await generate(bytesOpts(7));
    const b = await generate(bytesOpts(7));
    const c = await generate(bytesOpts(8));
    expect(a.files.get('model.safetensors')).toEqual(b.files.get('model.safetensors'));
    expect(a.files.get('model.safetensors')).not.toEqual(c.files.get('model.safetensors'));
    expect([...a.files.keys()].sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });

  it('writes a folder that loads: official names, shapes, dtype, non-trivial norms and biases', async () => {
    const folder = await generate(
      bytesOpts(1, { hidden: 32, layers: 3, heads: 4, kvHeads: 1, intermediate: 48, dtype: 'F16' }),
    );
    const model = await loadModelFolder(folder);
    expect(model.config).toMatchObject({
      hiddenSize: 32,
      numHiddenLayers: 3,
      numAttentionHeads: 4,
      numKeyValueHeads: 1,
      intermediateSize: 48,
      vocabSize: BYTE_MODEL_VOCAB_SIZE,
    });
    expect(model.weights.tensors.map((t) => t.name).sort()).toEqual(
      qwen2TensorShapes(model.config)
        .map((t) => t.name)
        .sort(),
    );
    expect(model.weights.tensors.every((t) => t.dtype === 'F16')).toBe(true);
    expect(model.unusedTensors).toEqual([]);
    expect(model.tokenizer.eosTokenIds).toEqual([256, 258]);
    expect(model.identity.repo).toBe('local/tiny');
    expect(model.identity.sha256).toBe(
      createHash('sha256').update(folder.files.get('model.safetensors')!).digest('hex'),
    );
    const norm = decodeFloats(await model.weights.read('model.layers.1.input_layernorm.weight'), 'F16');
    expect(norm.some((v) => v !== 1)).toBe(true);
    expect(Math.min(...norm)).toBeGreaterThan(0.7);
    const bias = decodeFloats(await model.weights.read('model.layers.0.self_attn.k_proj.bias'), 'F16');
    expect(bias.length).toBe(8);
    expect(bias.every((v) => v !== 0)).toBe(true);
    const config = JSON.parse(new TextDecoder().decode(folder.files.get('config.json')));
    expect(config.torch_dtype).toBe('float16');
    expect(folder.files.get('model.safetensors')!.byteLength).toBeGreaterThan(
      parameterCount(model.config) * 2,
    );
  });

  it('gives the same values in every dtype up to rounding', async () => {
    const f32 = await loadModelFolder(await generate(bytesOpts(3, { dtype: 'F32' })));
    const bf16 = await loadModelFolder(await generate(bytesOpts(3, { dtype: 'BF16' })));
    const name = 'model.layers.0.mlp.down_proj.weight';
    const a = decodeFloats(await f32.weights.read(name), 'F32');
    const b = decodeFloats(await bf16.weights.read(name), 'BF16');
    for (let i = 0; i < a.length; i++)
      expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -8);
  });

  it('writes the real Qwen2 tokenizer and vocabulary to disk, loadable from a Node folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tabzero-tiny-'));
    tmpDirs.push(dir);
    const files = await loadQwen2TokenizerFiles();
    await generateTinyModel(await nodeFolderSink(dir), {
      seed: 0,
      tokenizerFiles: files,
      tokenizerKind: 'qwen2',
      dtype: 'BF16',
      hidden: 16,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      intermediate: 32,
    });
    const source = nodeFolderSource(dir);
    const model = await loadModelFolder(source);
    await source.close();
    expect(model.config.vocabSize).toBe(151936);
    expect(model.tokenizer.encode('Calculate: 12 + 7 = ')).toEqual([
      47866, 25, 220, 16, 17, 488, 220, 22, 284, 220,
    ]);
    expect(model.identity.sha256).toBe(
      createHash('sha256')
        .update(await readFile(join(dir, 'model.safetensors')))
        .digest('hex'),
    );
    const gen = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'));
    expect(gen.eos_token_id).toEqual([151645, 151643]);
  });

  it('describes the real shape for --shape qwen2-0.5b', async () => {
    const files = await loadQwen2TokenizerFiles();
    const c = parseQwen2Config(
      tinyModelConfigJson({
        seed: 0,
        tokenizerFiles: files,
        tokenizerKind: 'qwen2',
        dtype: 'BF16',
        shape: 'qwen2-0.5b',
      }),
    );
    expect(c).toMatchObject({
      hiddenSize: 896,
      numHiddenLayers: 24,
      numAttentionHeads: 14,
      numKeyValueHeads: 2,
      intermediateSize: 4864,
      vocabSize: 151936,
      tieWordEmbeddings: true,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
    });
    expect(qwen2TensorShapes(c).length).toBe(290);
    expect(parameterCount(c)).toBe(494_032_768);
  });

  it('rejects a bad seed and bad sizes', async () => {
    await expect(generate(bytesOpts(-1))).rejects.toThrow(/seed must be a non-negative integer/);
    await expect(generate(bytesOpts(1, { heads: 5 }))).rejects.toThrow(
      /not divisible by num_attention_heads 5/,
    );
  });
});
