// `tabzero sweep` on the real engine: two variants of the baseline grouping on the built-in tiny model
// train one after another into two run folders, and the sweep ends with the comparison table and chart.
// Running it again skips the finished runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'tabzero-sweep-cli-'));
const env = { ...process.env, TABZERO_CACHE: join(root, 'cache') };
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tabzero(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['cli/bin.js', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

describe('tabzero sweep', () => {
  it('trains one run per variant and compares them; a second sweep skips the finished runs', async () => {
    const out = join(root, 'sweep');
    const sets = ['maxProposerTokens=8', 'maxSolverTokens=8', 'evalSets='].flatMap((s) => ['--set', s]);
    const args = ['sweep', '--model', 'tiny', '--preset', 'smoke', '--vary', 'baselines=6,1', ...sets];
    const first = await tabzero([...args, '--steps', '1', '--out', out]);
    expect(first.code, first.out).toBe(0);
    const runs = ['baselines-6', 'baselines-1'].map((name) => join(out, name));
    for (const run of runs) {
      const meta = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
      expect(meta.step).toBe(1);
      expect(meta.status).toBe('finished');
    }
    expect(JSON.parse(readFileSync(join(runs[0], 'run.json'), 'utf8')).config.baselines).toBe(6);
    expect(JSON.parse(readFileSync(join(runs[1], 'run.json'), 'utf8')).config.baselines).toBe(1);
    // The comparison: one row per run, the differing knob, and the chart.
    expect(first.out).toMatch(/baselines-6/);
    expect(first.out).toMatch(/baselines-1/);
    expect(first.out).toMatch(/Config differences/i);
    expect(existsSync(join(out, 'comparison.svg'))).toBe(true);

    const again = await tabzero([...args, '--steps', '1', '--out', out]);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/skipped/);
  });
});
