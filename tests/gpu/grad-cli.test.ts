// `tabzero grad --backend webgpu` against `--backend cpu` (the f64 reference) on a tiny model folder
// with a PEFT adapter on a subset of modules and non-zero B: same tensor names, gradients within f32
// accumulation error, same loss.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { initLora, savePeftLora } from '../../src/model/lora.ts';
import { bytesSource } from '../../src/model/byte-source.ts';
import { decodeFloats } from '../../src/model/dtype.ts';
import { nodeFolderSink } from '../../src/model/node-folder.ts';
import { openSafetensors } from '../../src/model/safetensors-read.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';
import { uniformSource } from '../../src/random.ts';

let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function grads(file: string): Promise<Map<string, Float32Array>> {
  const f = await openSafetensors(bytesSource(await readFile(file)), file);
  const out = new Map<string, Float32Array>();
  for (const t of f.tensors) out.set(t.name, decodeFloats(await f.read(t.name), 'F32'));
  return out;
}

describe('tabzero grad: webgpu vs cpu', () => {
  it('writes the same gradients and loss', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tabzero-gradgpu-'));
    const { config: cfg } = await generateTinyModel(await nodeFolderSink(join(dir, 'model')), {
      seed: 9,
      tokenizerFiles: byteTokenizerFiles(),
      tokenizerKind: 'bytes',
      dtype: 'F32',
      hidden: 32,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      intermediate: 48,
    });
    const lora = initLora(
      cfg,
      { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj', 'gate_proj'] },
      4,
    );
    const next = uniformSource(5);
    for (const p of Object.values(lora)) for (let i = 0; i < p.B.length; i++) p.B[i] = 0.3 * next();
    await writeFile(join(dir, 'lora.safetensors'), await savePeftLora(cfg, lora));
    const batch = [
      { prompt_ids: [256, 72, 105], completion_ids: [33, 10, 258, 40], advantage: 0.5 },
      { prompt_ids: [65, 66], completion_ids: [67], advantage: -1.25 },
      { prompt_ids: [1], completion_ids: [2, 3], advantage: 2 },
    ];
    await writeFile(join(dir, 'batch.json'), JSON.stringify(batch));
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const codes: number[] = [];
    try {
      for (const backend of ['cpu', 'webgpu']) {
        codes.push(
          await main([
            'grad',
            '--model',
            join(dir, 'model'),
            '--batch',
            join(dir, 'batch.json'),
            '--lora',
            join(dir, 'lora.safetensors'),
            '--lora-alpha',
            '8',
            '--out',
            join(dir, `${backend}.safetensors`),
            '--backend',
            backend,
          ]),
        );
      }
    } finally {
      spy.mockRestore();
    }
    expect(codes).toEqual([0, 0]);
    const cpu = await grads(join(dir, 'cpu.safetensors'));
    const gpu = await grads(join(dir, 'webgpu.safetensors'));
    expect([...gpu.keys()].sort()).toEqual([...cpu.keys()].sort());
    expect(gpu.get('loss')![0]).toBeCloseTo(cpu.get('loss')![0], 6);
    let worst = 0;
    for (const [name, want] of cpu) {
      if (name === 'loss') continue;
      const got = gpu.get(name)!;
      let m = 0;
      let s = 0;
      for (let i = 0; i < want.length; i++) {
        m = Math.max(m, Math.abs(got[i] - want[i]));
        s = Math.max(s, Math.abs(want[i]));
      }
      worst = Math.max(worst, m / s);
    }
    console.info(`grad CLI webgpu vs cpu: max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });
});
