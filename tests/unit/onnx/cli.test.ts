// `tabzero export-onnx` and `tabzero check-onnx` on a tiny byte-vocabulary model.
import { Command, CommanderError } from 'commander';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register as checkOnnx } from '../../../cli/commands/check-onnx.ts';
import { register as exportOnnx } from '../../../cli/commands/export-onnx.ts';
import { register as tinyModel } from '../../../cli/commands/tiny-model.ts';
import { savePeftLora } from '../../../src/model/lora.ts';
import { randomRefLora } from '../../../src/engine/reference/random.ts';
import { parseQwen2Config } from '../../../src/model/qwen2-config.ts';

/** Runs our subcommands the way cli/main.ts does; returns stdout and the commander exit code. */
async function run(argv: string[]): Promise<{ out: string; code: number }> {
  const outs: string[] = [];
  const program = new Command('tabzero')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => void outs.push(s) });
  for (const add of [tinyModel, exportOnnx, checkOnnx]) add(program);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    outs.push(String(s));
    return true;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { out: outs.join(''), code: 0 };
  } catch (e) {
    if (e instanceof CommanderError) return { out: outs.join(''), code: e.exitCode };
    throw e;
  } finally {
    spy.mockRestore();
  }
}

let root: string;
const tiny = (seed: number) => [
  'tiny-model',
  '--out',
  join(root, `m${seed}`),
  '--seed',
  String(seed),
  '--tokenizer',
  'bytes',
  '--hidden',
  '32',
  '--layers',
  '1',
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tabzero-onnx-cli-'));
  expect((await run(tiny(1))).code).toBe(0);
  expect((await run(tiny(2))).code).toBe(0);
  await writeFile(join(root, 'prompts.txt'), 'Hello there\n\n2 + 2 =\n');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tabzero export-onnx', () => {
  it('writes the transformers.js folder', async () => {
    const out = join(root, 'export-fp16');
    const r = await run(['export-onnx', '--model', join(root, 'm1'), '--out', out, '--variants', 'fp16']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fp16: onnx\/model_fp16\.onnx .* \+ onnx\/model_fp16\.onnx_data/);
    expect((await readdir(join(out, 'onnx'))).sort()).toEqual(['model_fp16.onnx', 'model_fp16.onnx_data']);
    expect(await readdir(out)).toContain('tokenizer.json');
  });

  it('rejects bad arguments', async () => {
    expect((await run(['export-onnx', '--model', join(root, 'm1')])).code).not.toBe(0);
    expect(
      (await run(['export-onnx', '--model', join(root, 'm1'), '--out', root, '--variants', 'int4'])).code,
    ).not.toBe(0);
    await expect(
      run(['export-onnx', '--model', join(root, 'nope'), '--out', join(root, 'x')]),
    ).rejects.toThrow(/not a model folder/);
  });
});

describe('tabzero check-onnx', () => {
  it('reports agreement and logit differences per prompt, and passes on a faithful export', async () => {
    const r = await run([
      'check-onnx',
      '--backend',
      'cpu',
      '--model',
      join(root, 'm1'),
      '--prompts',
      join(root, 'prompts.txt'),
    ]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^prompt 1 \(11 tokens\): agree 16\/16, decidable \d+\/\d+, greedy identical, max \|Δlogit\| /,
    );
    expect(lines[2]).toMatch(/^fp32 vs reference .*: PASS$/);
  });

  it('prints JSON per prompt with --json', async () => {
    const r = await run([
      'check-onnx',
      '--backend',
      'cpu',
      '--model',
      join(root, 'm1'),
      '--prompts',
      join(root, 'prompts.txt'),
      '--variant',
      'fp16',
      '--max-new-tokens',
      '4',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { steps: number; maxLogitDiff: number });
    expect(rows).toHaveLength(2);
    expect(rows.every((p) => p.steps === 4 && p.maxLogitDiff > 0)).toBe(true);
  });

  it('fails on an export of another model', async () => {
    const other = join(root, 'export-m2');
    expect(
      (await run(['export-onnx', '--model', join(root, 'm2'), '--out', other, '--variants', 'fp32'])).code,
    ).toBe(0);
    await expect(
      run([
        'check-onnx',
        '--backend',
        'cpu',
        '--model',
        join(root, 'm1'),
        '--onnx',
        other,
        '--prompts',
        join(root, 'prompts.txt'),
      ]),
    ).rejects.toThrow(/ONNX parity check failed/);
  });

  it('rejects bad arguments', async () => {
    expect((await run(['check-onnx', '--backend', 'cpu', '--model', join(root, 'm1')])).code).not.toBe(0);
    expect(
      (
        await run([
          'check-onnx',
          '--backend',
          'cpu',
          '--model',
          join(root, 'm1'),
          '--prompts',
          'p',
          '--max-new-tokens',
          '0',
        ])
      ).code,
    ).not.toBe(0);
    await writeFile(join(root, 'empty.txt'), '\n\n');
    await expect(
      run([
        'check-onnx',
        '--backend',
        'cpu',
        '--model',
        join(root, 'm1'),
        '--prompts',
        join(root, 'empty.txt'),
      ]),
    ).rejects.toThrow(/no prompts/);
    await expect(
      run([
        'check-onnx',
        '--backend',
        'cpu',
        '--model',
        join(root, 'm1'),
        '--prompts',
        join(root, 'missing.txt'),
      ]),
    ).rejects.toThrow(/cannot read/);
  });

  it('checks a LoRA-trained model: the adapter merged into the export, and applied to the reference', async () => {
    const cfg = parseQwen2Config(await readFile(join(root, 'm1', 'config.json'), 'utf8'));
    const alpha = 16;
    const lora = randomRefLora(cfg, 9, 4, alpha, ['self_attn.k_proj', 'mlp.gate_proj']);
    const adapter = join(root, 'adapter');
    await mkdir(adapter, { recursive: true });
    await writeFile(join(adapter, 'adapter_model.safetensors'), await savePeftLora(cfg, lora));
    await writeFile(
      join(adapter, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: alpha }),
    );
    const merged = join(root, 'export-merged');
    const args = ['--model', join(root, 'm1'), '--prompts', join(root, 'prompts.txt')];
    expect(
      (await run(['export-onnx', '--model', join(root, 'm1'), '--out', merged, '--adapter', adapter])).code,
    ).toBe(0);
    const r = await run(['check-onnx', '--backend', 'cpu', ...args, '--onnx', merged, '--adapter', adapter]);
    expect(r.out).toMatch(/: PASS\n$/);
    // The base reference does not match the merged export.
    await expect(run(['check-onnx', '--backend', 'cpu', ...args, '--onnx', merged])).rejects.toThrow(
      /ONNX parity check failed/,
    );
  });
});
