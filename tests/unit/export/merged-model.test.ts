import { describe, expect, it } from 'vitest';
import { qwen2Logits, type RefWeights } from '../../../src/engine/reference/qwen2.ts';
import { addLoraDelta } from '../../../src/export/merge.ts';
import { exportMergedModel } from '../../../src/export/merged-model.ts';
import { parseManifest } from '../../../src/export/manifest.ts';
import { readZip, zipFolderSource } from '../../../src/export/zip-reader.ts';
import { ZipWriter } from '../../../src/export/zip-writer.ts';
import { bytesSource } from '../../../src/model/byte-source.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../../../src/model/dtype.ts';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { memoryFolder } from '../../../src/model/model-source.ts';
import { openSafetensors } from '../../../src/model/safetensors-read.ts';
import { memorySink } from '../../../src/model/safetensors-write.ts';
import {
  loraRunConfig,
  maxAbsDiff,
  PROMPTS,
  provenance,
  randomAdapter,
  refWeights,
  text,
  tinyBase,
} from './fixtures.ts';
import type { HostLora } from '../../../src/model/lora.ts';

/** The merge done the plain way, in f64: W + scale · B·A, for the test to compare against. */
function naiveMerged(w: RefWeights, lora: HostLora): RefWeights {
  const out: RefWeights = { ...w };
  for (const [mod, p] of Object.entries(lora)) {
    const W = w[`${mod}.weight`];
    const inDim = p.A.length / p.rank;
    const rows = W.length / inDim;
    const m = Float64Array.from(W);
    for (let n = 0; n < rows; n++)
      for (let k = 0; k < inDim; k++) {
        let d = 0;
        for (let j = 0; j < p.rank; j++) d += p.B[n * p.rank + j] * p.A[j * inDim + k];
        m[n * inDim + k] += p.scale * d;
      }
    out[`${mod}.weight`] = m;
  }
  return out;
}

function roundAll(w: RefWeights, round: (x: number) => number): RefWeights {
  const out: RefWeights = {};
  for (const [k, v] of Object.entries(w)) out[k] = Float64Array.from(v, round);
  return out;
}
const toBf16 = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));

function logits(w: RefWeights, cfg: Parameters<typeof qwen2Logits>[0], lora: HostLora | null = null) {
  return qwen2Logits(cfg, w, PROMPTS, lora).logits;
}

describe('addLoraDelta', () => {
  it('matches the plain f64 merge for ranks that are and are not multiples of four', () => {
    const inDim = 5;
    const rows = 3;
    for (const rank of [1, 3, 4, 6]) {
      const A = Float32Array.from({ length: rank * inDim }, (_, i) => Math.sin(i + rank));
      const B = Float32Array.from({ length: (rows + 2) * rank }, (_, i) => Math.cos(3 * i));
      const W = Float32Array.from({ length: rows * inDim }, (_, i) => i / 7);
      const got = W.slice();
      // Rows 2..4 of a 5-row weight: the block's row offset picks B's rows.
      addLoraDelta(got, 2, inDim, { A, B, rank, scale: 0.5 });
      for (let n = 0; n < rows; n++)
        for (let k = 0; k < inDim; k++) {
          let d = 0;
          for (let j = 0; j < rank; j++) d += B[(n + 2) * rank + j] * A[j * inDim + k];
          expect(got[n * inDim + k]).toBeCloseTo(W[n * inDim + k] + 0.5 * d, 6);
        }
    }
  });
});

describe('exportMergedModel', () => {
  it('f32 base → f32 folder: reloads with logits of base + adapter (tight) and weights exactly W + ΔW rounded once', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('F32');
    const lora = randomAdapter(model, config);
    const out = memoryFolder('merged');
    // Blocks of 200 elements: merged rows (64 or 128 wide) and plain tensors both span many blocks.
    const result = await exportMergedModel(
      folder,
      lora,
      { dtype: 'base', provenance: provenance(model, config), blockElements: 200 },
      out,
    );
    expect(result.mergedTensors).toHaveLength(model.config.numHiddenLayers * 7);

    const merged = await loadModelFolder(out);
    expect(merged.unusedTensors).toEqual([]);
    const base = await refWeights(model);
    const mw = await refWeights(merged);
    // Exactly the f64 merge rounded to f32 once: the reloaded folder computes the merged weights' logits.
    const expected = roundAll(naiveMerged(base, lora), Math.fround);
    for (const name of Object.keys(expected)) expect(mw[name], name).toEqual(expected[name]);

    const adapted = logits(base, model.config, lora);
    const plain = logits(base, model.config);
    const fromExport = logits(mw, merged.config);
    // The adapter moves the logits a lot; the export reproduces the adapted logits to f32 rounding
    // of the weights (relative 2^-24 per weight → ~1e-6 on O(1..10) logits).
    expect(maxAbsDiff(adapted, plain)).toBeGreaterThan(0.5);
    expect(maxAbsDiff(fromExport, adapted)).toBeLessThan(1e-5);
  });

  it('bf16 base: "base" writes bf16 rounded to nearest even; "f32" keeps the delta; logits within stated bounds', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config);
    const base = await refWeights(model);
    const adapted = logits(base, model.config, lora);
    const exact = naiveMerged(base, lora);

    const bf = memoryFolder('bf16');
    await exportMergedModel(
      folder,
      lora,
      { dtype: 'base', provenance: provenance(model, config), blockElements: 130 },
      bf,
    );
    const bfModel = await loadModelFolder(bf);
    expect(new Set(bfModel.weights.tensors.map((t) => t.dtype))).toEqual(new Set(['BF16']));
    const bfw = await refWeights(bfModel);
    // Every weight is bf16(f32(W + ΔW)), round to nearest even (the dtype helpers are tested on their own).
    const expectedBf = roundAll(exact, (x) => toBf16(Math.fround(x)));
    for (const name of Object.keys(expectedBf)) expect(bfw[name], name).toEqual(expectedBf[name]);

    const f32 = memoryFolder('f32');
    await exportMergedModel(
      folder,
      lora,
      { dtype: 'f32', provenance: provenance(model, config), blockElements: 130 },
      f32,
    );
    const f32Model = await loadModelFolder(f32);
    expect(new Set(f32Model.weights.tensors.map((t) => t.dtype))).toEqual(new Set(['F32']));
    const f32w = await refWeights(f32Model);
    const errF32 = maxAbsDiff(logits(f32w, f32Model.config), adapted);
    const errBf16 = maxAbsDiff(logits(bfw, bfModel.config), adapted);
    // f32: weights carry W + ΔW to 2^-24 → logits to ~1e-6. bf16 keeps 8 mantissa bits: each merged
    // weight moves by up to 2^-9 of itself, which over a 2-layer, 64-wide model moves O(1..10) logits by
    // a few 1e-2 (0.056 for this seed, 7.7e-7 in f32); the bound leaves ~2× headroom.
    expect(errF32).toBeLessThan(1e-5);
    expect(errBf16).toBeLessThan(0.1);
    expect(errBf16).toBeGreaterThan(100 * errF32);
  });

  it('a small delta (early training) survives in f32 but bf16 rounds most of it away', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config, 11, 1e-3);
    const name = 'model.layers.0.mlp.up_proj.weight';
    const base = await refWeights(model);
    const changed = async (dtype: 'base' | 'f32') => {
      const out = memoryFolder(dtype);
      await exportMergedModel(folder, lora, { dtype, provenance: provenance(model, config) }, out);
      const w = (await refWeights(await loadModelFolder(out)))[name];
      let n = 0;
      for (let i = 0; i < w.length; i++) if (w[i] !== base[name][i]) n++;
      return n / w.length;
    };
    expect(await changed('f32')).toBeGreaterThan(0.99);
    expect(await changed('base')).toBeLessThan(0.5);
  });

  it('copies config, tokenizer and generation files, keeps names, order and "pt" metadata, and writes tabzero.json', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config);
    const out = memoryFolder('merged');
    const prov = provenance(model, config);
    const result = await exportMergedModel(folder, lora, { dtype: 'f32', provenance: prov }, out);
    expect(result.files).toEqual([
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'model.safetensors',
      'tabzero.json',
    ]);
    expect([...out.files.keys()].sort()).toEqual([...result.files].sort());
    for (const f of ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'])
      expect(out.files.get(f), f).toEqual(folder.files.get(f));
    const baseConfig = JSON.parse(text(folder.files.get('config.json')!));
    expect(JSON.parse(text(out.files.get('config.json')!))).toEqual({
      ...baseConfig,
      torch_dtype: 'float32',
    });

    const st = await openSafetensors(bytesSource(out.files.get('model.safetensors')!), 'model.safetensors');
    expect(st.metadata.format).toBe('pt');
    expect(st.tensors.map((t) => [t.name, t.shape])).toEqual(
      model.weights.tensors.map((t) => [t.name, t.shape]),
    );
    expect(result.safetensorsBytes).toBe(out.files.get('model.safetensors')!.byteLength);
    expect(result.tensorCount).toBe(model.weights.tensors.length);

    const manifest = parseManifest(text(out.files.get('tabzero.json')!));
    expect(manifest).toEqual({
      format: 'tabzero-export',
      formatVersion: 1,
      kind: 'hf-merged',
      createdAt: '2026-11-27T12:00:00.000Z',
      tabzeroVersion: '0.1.0',
      run: { id: 'run-1', step: 7, zeroData: true },
      seed: 1234,
      baseModel: model.identity,
      config,
      templates: prov.templates,
      lora: { rank: 4, alpha: 8, targets: config.loraTargets },
      dtype: 'F32',
      files: result.files.filter((f) => f !== 'tabzero.json'),
    });
  });

  it('"base" leaves the config and every unadapted tensor byte-identical; an empty adapter re-exports the base', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const out = memoryFolder('copy');
    const r = await exportMergedModel(
      folder,
      {},
      { dtype: 'base', provenance: provenance(model, config) },
      out,
    );
    expect(r.mergedTensors).toEqual([]);
    expect(out.files.get('config.json')).toEqual(folder.files.get('config.json'));
    const a = await openSafetensors(bytesSource(out.files.get('model.safetensors')!), 'out');
    for (const t of model.weights.tensors)
      expect(await a.read(t.name), t.name).toEqual(await model.weights.read(t.name));
    expect(parseManifest(text(out.files.get('tabzero.json')!)).lora).toBeNull();
  });

  it("refuses a base other than the run's and an adapter that does not fit the model", async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('F32');
    const lora = randomAdapter(model, config);
    const prov = provenance(model, config);
    const knownHash = { ...folder, knownSha256: async () => 'f'.repeat(64) };
    await expect(
      exportMergedModel(knownHash, lora, { dtype: 'base', provenance: prov }, memoryFolder()),
    ).rejects.toThrow(/not the run's base model/);
    const wrongRank = {
      ...lora,
      'model.layers.0.self_attn.q_proj': { ...lora['model.layers.0.self_attn.q_proj'], rank: 3 },
    };
    await expect(
      exportMergedModel(folder, wrongRank, { dtype: 'base', provenance: prov }, memoryFolder()),
    ).rejects.toThrow(/q_proj/);
    const tooDeep = { ...lora, 'model.layers.9.mlp.up_proj': lora['model.layers.0.mlp.up_proj'] };
    await expect(
      exportMergedModel(folder, tooDeep, { dtype: 'base', provenance: prov }, memoryFolder()),
    ).rejects.toThrow(/not in this model/);
  });

  it('exports into a .zip that loads back in place with the same weights', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config);
    const sink = memorySink();
    const zip = new ZipWriter(sink, { prefix: 'tabzero-merged' });
    const progress: number[] = [];
    await exportMergedModel(
      folder,
      lora,
      { dtype: 'f32', provenance: provenance(model, config), onTensor: (done) => progress.push(done) },
      zip,
    );
    await zip.finish();
    expect(progress).toEqual(model.weights.tensors.map((_, i) => i + 1));
    const archive = await readZip(bytesSource(sink.bytes()));
    const fromZip = await loadModelFolder(zipFolderSource(archive, 'tabzero-merged'));
    const direct = memoryFolder();
    await exportMergedModel(folder, lora, { dtype: 'f32', provenance: provenance(model, config) }, direct);
    const directModel = await loadModelFolder(direct);
    expect(fromZip.identity.sha256).toBe(directModel.identity.sha256);
  });
});
