import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../../cli/main.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out: () => out.join(''), err: () => err.join('') };
}

afterEach(() => vi.restoreAllMocks());

describe('tabzero CLI', () => {
  it('prints help listing the subcommands and exits 0', async () => {
    const io = capture();
    expect(await main(['--help'])).toBe(0);
    expect(io.out()).toMatch(/Usage: tabzero/);
    expect(io.out()).toMatch(/\bgpu\b/);
  });

  it('gives every subcommand its own --help', async () => {
    for (const cmd of buildProgram().commands.map((c) => c.name())) {
      const io = capture();
      expect(await main([cmd, '--help'])).toBe(0);
      expect(io.out()).toMatch(new RegExp(`Usage: tabzero ${cmd}`));
      vi.restoreAllMocks();
    }
  });

  it('rejects an unknown command with a one-line reason and a non-zero code', async () => {
    const io = capture();
    expect(await main(['frobnicate'])).not.toBe(0);
    expect(io.err().trim().split('\n')).toHaveLength(1);
    expect(io.err()).toMatch(/unknown command 'frobnicate'/);
  });

  it('rejects an unknown option', async () => {
    const io = capture();
    expect(await main(['gpu', '--frob'])).not.toBe(0);
    expect(io.err()).toMatch(/unknown option '--frob'/);
  });

  it('rejects a bad option value before touching the GPU', async () => {
    const io = capture();
    expect(await main(['gpu', '--backend', 'metal'])).toBe(1);
    expect(io.err().trim()).toBe('tabzero: --backend must be vulkan or opengles, not "metal"');
  });
});
