import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { decodeFloats } from '../../src/model/dtype.ts';
import { nodeFileSource, nodeFolderSink } from '../../src/model/node-folder.ts';
import { openSafetensors } from '../../src/model/safetensors-read.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';
import { maxAbsDiff } from '../helpers/gpu.ts';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('tabzero generate / logits', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tabzero-engine-cli-'));
    await generateTinyModel(await nodeFolderSink(dir), {
      seed: 5,
      tokenizerFiles: byteTokenizerFiles(),
      tokenizerKind: 'bytes',
      dtype: 'BF16',
      hidden: 32,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      intermediate: 64,
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('webgpu and cpu backends generate the same greedy ids', async () => {
    const args = ['generate', '--model', dir, '--prompt', 'hello', '--chat', '--max-new', '5', '--json'];
    const gpu = await run([...args, '--dtype', 'f32']);
    expect(gpu.code).toBe(0);
    const cpu = await run([...args, '--backend', 'cpu']);
    expect(cpu.code).toBe(0);
    const g = JSON.parse(gpu.out);
    const c = JSON.parse(cpu.out);
    expect(g.completions[0].ids).toEqual(c.completions[0].ids);
    expect(g.completions[0].ids.length).toBeGreaterThan(0);
    expect(typeof g.completions[0].stopReason).toBe('string');
  });

  it('logits files of both backends agree', async () => {
    const files = [join(dir, 'gpu.safetensors'), join(dir, 'cpu.safetensors')];
    const tokens = '1,2,3,4;200,100,50,25';
    expect((await run(['logits', '--model', dir, '--tokens', tokens, '--out', files[0]])).code).toBe(0);
    expect(
      (await run(['logits', '--model', dir, '--tokens', tokens, '--out', files[1], '--backend', 'cpu'])).code,
    ).toBe(0);
    const read = async (f: string) => {
      const st = await openSafetensors(await nodeFileSource(f), f);
      const t = st.tensor('logits');
      expect(t.shape).toEqual([2, 4, 272]);
      return decodeFloats(await st.read('logits'), 'F32');
    };
    // bf16 weights, f16 KV cache on the GPU vs the f32 reference on the same bf16 values.
    expect(maxAbsDiff(await read(files[0]), await read(files[1]))).toBeLessThan(1e-2);
  });

  it('bad arguments exit non-zero with a one-line reason', async () => {
    const bad = await run(['generate', '--model', dir, '--prompt', 'x', '--backend', 'tpu']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--backend must be webgpu or cpu/);
    const rows = await run([
      'logits',
      '--model',
      dir,
      '--tokens',
      '1,2;3',
      '--out',
      join(dir, 'x.safetensors'),
    ]);
    expect(rows.code).not.toBe(0);
    expect(rows.err).toMatch(/equal lengths/);
  });
});
