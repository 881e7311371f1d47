import { Command, CommanderError } from 'commander';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { register as serveModel } from '../../../cli/commands/serve-model.ts';
import { register as tinyModel } from '../../../cli/commands/tiny-model.ts';
import { register as tokenize } from '../../../cli/commands/tokenize.ts';

/** Runs our subcommands the way cli/main.ts does; returns stdout and the commander exit code (0 = ok). */
async function run(argv: string[]): Promise<{ out: string; code: number; err: string }> {
  const program = new Command('tabzero')
    .exitOverride()
    .configureOutput({ writeErr: (s) => void errs.push(s), writeOut: (s) => void outs.push(s) });
  for (const add of [tinyModel, tokenize, serveModel]) add(program);
  const outs: string[] = [];
  const errs: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    outs.push(String(s));
    return true;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { out: outs.join(''), code: 0, err: errs.join('') };
  } catch (e) {
    if (e instanceof CommanderError) return { out: outs.join(''), code: e.exitCode, err: errs.join('') };
    throw e;
  } finally {
    spy.mockRestore();
  }
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('tiny-model / tokenize CLI', () => {
  it('writes a tiny model and tokenizes with its chat template', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tabzero-cli-'));
    dirs.push(dir);
    const out = join(dir, 'tiny');
    const gen = await run([
      'tiny-model',
      '--out',
      out,
      '--seed',
      '3',
      '--hidden',
      '32',
      '--layers',
      '1',
      '--intermediate',
      '64',
    ]);
    expect(gen.code).toBe(0);
    expect(gen.out).toMatch(/hidden 32, layers 1, heads 4\/2, intermediate 64, vocab 151936/);
    expect((await readdir(out)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);

    const plain = await run(['tokenize', '--model', out, '--text', 'Calculate: 12 + 7 = ']);
    expect(plain.out).toBe('[47866,25,220,16,17,488,220,22,284,220]\n');
    const chat = await run(['tokenize', '--model', out, '--text', 'Hi', '--chat']);
    // <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
    expect(JSON.parse(chat.out)).toEqual([
      151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 13048, 151645, 198,
      151644, 77091, 198,
    ]);
  });

  it('writes the byte tokenizer on request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tabzero-cli-'));
    dirs.push(dir);
    const gen = await run([
      'tiny-model',
      '--out',
      dir,
      '--seed',
      '0',
      '--tokenizer',
      'bytes',
      '--dtype',
      'f32',
    ]);
    expect(gen.out).toMatch(/vocab 272,.*\(f32\)/);
    expect((await run(['tokenize', '--model', dir, '--text', 'AB'])).out).toBe('[65,66]\n');
  });

  it('rejects bad arguments with a one-line reason', async () => {
    for (const argv of [
      ['tiny-model', '--out', '/tmp/x', '--seed', 'abc'],
      ['tiny-model', '--out', '/tmp/x'],
      ['tiny-model', '--out', '/tmp/x', '--seed', '1', '--dtype', 'int8'],
      ['tiny-model', '--out', '/tmp/x', '--seed', '1', '--hidden', '0'],
      ['tokenize', '--text', 'x'],
      ['serve-model'],
      ['serve-model', '/tmp', '--port', 'http'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err.trim().split('\n')[0], argv.join(' ')).toMatch(/^error: /);
    }
    await expect(run(['tokenize', '--model', '/nonexistent', '--text', 'x'])).rejects.toThrow(
      /\/nonexistent: no tokenizer\.json/,
    );
  });
});
