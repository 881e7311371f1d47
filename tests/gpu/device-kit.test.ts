// The device kit's bundle (scripts/device-kit.ts, `npm run device-kit`): the CLI bundled into one ES module
// with the webgpu package beside it runs from a folder outside the repository — no node_modules, no
// TypeScript — and benches a model. (The whole kit, xz and all, takes ~1.5 min to pack: not in the suite;
// the README gives the smoke run.)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleCli } from '../../scripts/device-kit.ts';

const dir = mkdtempSync(join(tmpdir(), 'tabzero-kit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kit = (args: string[]) =>
  execFileSync(process.execPath, [join(dir, 'main.mjs'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('the device kit bundle', () => {
  it('runs tabzero gpu and a bench from its own folder', { timeout: 180_000 }, async () => {
    await bundleCli(dir);
    const gpu = JSON.parse(kit(['gpu']));
    expect(gpu.description).toMatch(/\S/);
    // lavapipe offers no subgroup matrices: the tiled matmul is the path taken (issue 18).
    expect(gpu.subgroupMatrix).toEqual({ offered: false, configs: [], matmulPath: 'tiled' });
    kit(['tiny-model', '--seed', '1', '--tokenizer', 'bytes', '--out', join(dir, 'tiny')]);
    const bench = JSON.parse(
      kit(
        ['bench', '--model', join(dir, 'tiny'), '--batch', '1', '--prompt-len', '4', '--new', '2'].concat([
          '--lora',
          '16',
          '--no-kernel-times',
          '--json',
        ]),
      ),
    );
    expect(bench.adapter.subgroupMatrix.matmulPath).toBe('tiled');
    expect(bench.results[0].batch).toBe(1);
    expect(bench.results[0].decodeTokPerS).toBeGreaterThan(0);
    expect(bench.results[0].readbacksPerDecodeStep).toBe(1);
  });
});
