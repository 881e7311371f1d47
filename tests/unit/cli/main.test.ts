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

  it("prints package.json's version for --version", async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    const io = capture();
    expect(await main(['--version'])).toBe(0);
    expect(io.out().trim()).toBe(pkg.version);
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

describe('tabzero eval --eval-file', () => {
  it('refuses a file with bad lines: exit 1, nothing on stdout, one FILE:LINE line per bad line', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'tabzero-evalfile-'));
    try {
      const file = join(dir, 'mine.jsonl');
      writeFileSync(
        file,
        '{"prompt":"Calculate: 1 + 2 = ","answer":"3"}\nnope\n{"prompt":"Calculate: 1 = "}\n',
      );
      const io = capture();
      // The model is never opened: the file is refused first.
      expect(await main(['eval', '--model', join(dir, 'no-model'), '--eval-file', file])).toBe(1);
      expect(io.out()).toBe('');
      expect(io.err()).toBe(`${file}:2: not JSON\n${file}:3: "answer" must be a string\n`);
    } finally {
      process.exitCode = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the tabzero executable', () => {
  it('runs through a link, as npx and global installs start it', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync, rmSync, symlinkSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join, resolve } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'tabzero-bin-'));
    try {
      const link = join(dir, 'tabzero');
      symlinkSync(resolve('cli/bin.js'), link);
      const ok = spawnSync(process.execPath, [link, 'arith', 'x+1', '--input=2'], { encoding: 'utf8' });
      expect(ok.status).toBe(0);
      expect(ok.stdout).toContain('canonical: f(x) = x + 1');
      const bad = spawnSync(process.execPath, [link, 'frobnicate'], { encoding: 'utf8' });
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/unknown command 'frobnicate'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
