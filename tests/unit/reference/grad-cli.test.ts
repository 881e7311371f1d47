import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../cli/main.ts';
import {
  initLora,
  loadPeftLora,
  parsePeftName,
  peftTensorName,
  savePeftLora,
} from '../../../src/model/lora.ts';
import { loadRefWeights } from '../../../src/engine/reference/load.ts';
import { qwen2PolicyGradient } from '../../../src/engine/reference/qwen2-backward.ts';
import { convertLora } from '../../../src/engine/reference/random.ts';
import { bytesSource } from '../../../src/model/byte-source.ts';
import { decodeFloats } from '../../../src/model/dtype.ts';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { nodeFolderSink, nodeFolderSource } from '../../../src/model/node-folder.ts';
import { qwen2TensorShapes, type Qwen2Config } from '../../../src/model/qwen2-config.ts';
import { openSafetensors } from '../../../src/model/safetensors-read.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';
import { uniformSource } from '../../../src/random.ts';

let dir = '';
let cfg: Qwen2Config;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabzero-grad-'));
  const res = await generateTinyModel(await nodeFolderSink(join(dir, 'model')), {
    seed: 7,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    dtype: 'F32',
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
  });
  cfg = res.config;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err.push(String(s));
    return true;
  });
  try {
    return { code: await main(argv), out: out.join(''), err: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('PEFT naming and LoRA init', () => {
  it('names and parses PEFT tensors; init is Kaiming-uniform A and zero B', () => {
    expect(peftTensorName('model.layers.3.self_attn.q_proj', 'A')).toBe(
      'base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight',
    );
    expect(parsePeftName('base_model.model.model.layers.12.mlp.down_proj.lora_B.weight')).toEqual({
      module: 'model.layers.12.mlp.down_proj',
      layer: 12,
      projection: 'mlp.down_proj',
      which: 'B',
    });
    expect(parsePeftName('model.layers.0.mlp.down_proj.weight')).toBeNull();
    const lora = initLora(cfg, { rank: 4, alpha: 8, targets: ['q_proj', 'down_proj'] }, 1);
    expect(Object.keys(lora).sort()).toEqual([
      'model.layers.0.mlp.down_proj',
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.mlp.down_proj',
      'model.layers.1.self_attn.q_proj',
    ]);
    const down = lora['model.layers.0.mlp.down_proj'];
    expect(down.A.length).toBe(4 * 48);
    expect(down.scale).toBe(2);
    expect(Math.max(...down.A.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(48));
    expect(Math.max(...down.A.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(48));
    expect(down.B.every((x) => x === 0)).toBe(true);
  });
});

describe('tabzero grad --backend cpu', () => {
  it('writes every LoRA gradient under its PEFT name and the loss, equal to the reference', async () => {
    // A subset of modules with non-zero B (any rank).
    const lora = initLora(cfg, { rank: 3, alpha: 6, targets: ['v_proj', 'up_proj', 'o_proj'] }, 2);
    const next = uniformSource(3);
    for (const p of Object.values(lora)) for (let i = 0; i < p.B.length; i++) p.B[i] = 0.3 * next();
    await writeFile(join(dir, 'lora.safetensors'), await savePeftLora(cfg, lora));
    const batch = [
      { prompt_ids: [256, 72, 105], completion_ids: [33, 10, 258], advantage: 0.5 },
      { prompt_ids: [65], completion_ids: [66, 67], advantage: -1.25 },
    ];
    await writeFile(join(dir, 'batch.json'), JSON.stringify(batch));
    const out = join(dir, 'grads.safetensors');
    const args = [
      'grad',
      '--backend',
      'cpu',
      '--model',
      join(dir, 'model'),
      '--batch',
      join(dir, 'batch.json'),
    ];
    const res = await runCli([
      ...args,
      '--lora',
      join(dir, 'lora.safetensors'),
      '--lora-alpha',
      '6',
      '--out',
      out,
    ]);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);

    const file = await openSafetensors(bytesSource(await readFile(out)), 'grads');
    const names = file.tensors.map((t) => t.name).sort();
    expect(names).toEqual(
      [...Object.keys(lora).flatMap((m) => [peftTensorName(m, 'A'), peftTensorName(m, 'B')]), 'loss'].sort(),
    );
    const loss = decodeFloats(await file.read('loss'), 'F32')[0];
    expect(loss).toBeCloseTo(-(0.5 * 3 - 1.25 * 2) / 5, 6);

    // Independent recomputation straight from the reference.
    const src = nodeFolderSource(join(dir, 'model'));
    const model = await loadModelFolder(src);
    const w = await loadRefWeights(
      model.weights,
      qwen2TensorShapes(cfg).map((t) => t.name),
      { dtype: 'f64' },
    );
    await src.close();
    const l64 = convertLora(await loadPeftLora(await savePeftLora(cfg, lora), 6, cfg), 'f64');
    const want = qwen2PolicyGradient(
      cfg,
      w,
      l64,
      batch.map((b) => ({
        promptIds: b.prompt_ids,
        completionIds: b.completion_ids,
        advantage: b.advantage,
      })),
      { clipEps: 0, entropyCoef: 0, klBeta: 0 },
    );
    let maxAbs = 0;
    for (const [mod, g] of Object.entries(want.grads.lora)) {
      const a = decodeFloats(await file.read(peftTensorName(mod, 'A')), 'F32');
      const b = decodeFloats(await file.read(peftTensorName(mod, 'B')), 'F32');
      expect(a.length).toBe(g.dA.length);
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(g.dA[i], 6);
      for (let i = 0; i < b.length; i++) expect(b[i]).toBeCloseTo(g.dB[i], 6);
      maxAbs = Math.max(maxAbs, ...Array.from(g.dB, Math.abs));
    }
    expect(maxAbs).toBeGreaterThan(1e-4); // the check above is not vacuous
  });

  it('refuses bad arguments with a one-line reason and a non-zero exit', async () => {
    const base = [
      'grad',
      '--backend',
      'cpu',
      '--model',
      join(dir, 'model'),
      '--batch',
      join(dir, 'batch.json'),
    ];
    const more = ['--lora', join(dir, 'lora.safetensors'), '--out', join(dir, 'x.safetensors')];
    const bad = await runCli([...base, ...more, '--lora-alpha', '-1']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--lora-alpha/);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    const backend = await runCli([
      'grad',
      ...base.slice(3),
      ...more,
      '--lora-alpha',
      '2',
      '--backend',
      'tpu',
    ]);
    expect(backend.code).not.toBe(0);
    await writeFile(
      join(dir, 'bad.json'),
      JSON.stringify([{ prompt_ids: [], completion_ids: [1], advantage: 1 }]),
    );
    const emptyPrompt = await runCli([
      'grad',
      '--backend',
      'cpu',
      '--model',
      join(dir, 'model'),
      '--batch',
      join(dir, 'bad.json'),
      ...more,
      '--lora-alpha',
      '2',
    ]);
    expect(emptyPrompt.code).not.toBe(0);
    expect(emptyPrompt.err).toMatch(/prompt_ids/);
  });
});
