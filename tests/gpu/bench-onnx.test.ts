// `tabzero bench --onnx`: the engine and onnxruntime run the same decode workload in one process, and
// the bench prints both figures and their ratio. onnxruntime-node's CPU EP keeps this test fast; the
// bench's default (onnxruntime-web's WebGPU EP on Dawn) compiles its shaders for minutes on lavapipe.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import type { BenchResult } from '../../bench/engine-bench.ts';
import { nodeFolderSink } from '../../src/model/node-folder.ts';
import { exportOnnxFolder } from '../../src/onnx/node.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** The JSON the bench prints before its table. */
function benchJson(out: string): BenchResult {
  return JSON.parse(out.slice(0, out.indexOf('\n}\n') + 2)) as BenchResult;
}

const tempExports = async () =>
  (await readdir(tmpdir())).filter((n) => n.startsWith('tabzero-bench-onnx-')).length;

describe('tabzero bench --onnx', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tabzero-bench-onnx-test-'));
    await generateTinyModel(await nodeFolderSink(join(dir, 'model')), {
      seed: 7,
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

  const common = ['--prompt-len', '4', '--new', '3', '--matmul-size', '64', '--no-kernel-times'];

  it('prints engine and onnxruntime decode tok/s and their ratio per batch size', async () => {
    const before = await tempExports();
    const r = await run([
      'bench',
      '--model',
      join(dir, 'model'),
      '--batch',
      '1,2',
      ...common,
      '--onnx',
      '--onnx-runtime',
      'node-cpu',
    ]);
    expect(r.code).toBe(0);
    const j = benchJson(r.out);
    expect(j.onnx).toMatchObject({
      variant: 'fp16',
      runtime: expect.stringMatching(/^onnxruntime-node .*CPU EP/),
    });
    expect(j.results.map((x) => x.batch)).toEqual([1, 2]);
    for (const x of j.results) {
      const o = x.onnx!;
      expect(x.decodeTokPerS).toBeGreaterThan(0);
      expect(o.decodeTokPerS).toBeGreaterThan(0);
      expect(o.prefillTokPerS).toBeGreaterThan(0);
      expect(o.decodeRatio).toBeCloseTo(x.decodeTokPerS / o.decodeTokPerS, 9);
      expect(o.prefillRatio).toBeCloseTo(x.prefillTokPerS / o.prefillTokPerS, 9);
      // The table's side-by-side row: engine figure, onnx figure, ratio.
      expect(r.out).toContain(
        `${String(x.batch).padStart(5)} | ${x.decodeTokPerS.toFixed(1).padStart(19)} | ${o.decodeTokPerS
          .toFixed(1)
          .padStart(17)} | ${`${o.decodeRatio.toFixed(2)}×`.padStart(11)} |`,
      );
    }
    expect(r.out).toContain('side by side: onnxruntime-node');
    // The temporary export is gone.
    expect(await tempExports()).toBe(before);
  });

  it('uses an existing export with --onnx-dir', async () => {
    const onnxDir = join(dir, 'onnx-export');
    await exportOnnxFolder(join(dir, 'model'), onnxDir, { variants: ['fp32'] });
    const r = await run([
      'bench',
      '--model',
      join(dir, 'model'),
      '--batch',
      '1',
      ...common,
      '--onnx-dir',
      onnxDir,
      '--onnx-variant',
      'fp32',
      '--onnx-runtime',
      'node-cpu',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const j = benchJson(r.out);
    expect(j.onnx?.variant).toBe('fp32');
    expect(j.onnx?.exportMs).toBeUndefined();
    expect(j.results[0].onnx!.decodeTokPerS).toBeGreaterThan(0);
    expect(await readdir(onnxDir)).toContain('onnx');
  });

  it('refuses --onnx without a model folder, saying how to get one', async () => {
    const r = await run(['bench', '--shape', 'qwen2-0.5b', '--onnx', ...common]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('tiny-model --shape qwen2-0.5b');
  });
});
