// `tabzero pretrain` end to end on the real engine: it refuses a non-empty --out and a --resume with no
// checkpoint in one line; a run killed with SIGKILL mid-run resumes from its last checkpoint and gives the
// same losses as a run that was never killed (steps 1…N once each); the trained HF folder it writes
// evaluates exactly like its own checkpoint put back into the initial model (`eval --adapter RUN`) and
// like the run's `export --format hf`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'tabzero-pretrain-cli-'));
const env = { ...process.env, TABZERO_CACHE: join(root, 'cache') };
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The recipe, made small: 12 records per step, no evals during the run, a checkpoint after every step.
// All steps lie in the recipe's warm-up, so the learning rate does not depend on --steps.
const SETS = ['imitationBatch=12', 'microBatch=12', 'evalSets=', 'checkpointEverySteps=1'].flatMap((s) => [
  '--set',
  s,
]);

function tabzero(args: string[]): ChildProcess {
  return spawn(process.execPath, ['cli/bin.js', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function finish(
  child: ChildProcess,
  onLine?: (out: string) => void,
): Promise<{ code: number | null; out: string; stdout: string }> {
  let out = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    out += d;
    onLine?.(out);
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d;
    onLine?.(out);
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, stdout })));
}

const losses = (dir: string) =>
  readFileSync(join(dir, 'steps.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; metrics: { imitationLoss: number } });

describe('tabzero pretrain', () => {
  const whole = join(root, 'whole');
  const killed = join(root, 'killed');

  it('trains, checkpoints and writes the trained model folder', async () => {
    const r = await finish(tabzero(['pretrain', '--out', whole, '--steps', '3', ...SETS]));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/step 3\/3 {2}loss \d+\.\d+ .* ETA/);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ])
      expect(existsSync(join(whole, 'model', f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(whole, 'model', 'config.json'), 'utf8')).torch_dtype).toBe('float32');
    const rows = losses(whole);
    expect(rows.map((s) => s.step)).toEqual([1, 2, 3]);
    // Imitation learns: the loss falls from its random-init value.
    expect(rows[2].metrics.imitationLoss).toBeLessThan(rows[0].metrics.imitationLoss);
  }, 240_000);

  it('refuses a non-empty --out without --resume, and --resume without a checkpoint, in one line', async () => {
    const again = await finish(tabzero(['pretrain', '--out', whole, '--steps', '3']));
    expect(again.code).not.toBe(0);
    expect(again.out.trim().split('\n').at(-1)).toMatch(/is not empty: add --resume/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'note.txt'), 'x');
    const resume = await finish(tabzero(['pretrain', '--out', empty, '--resume']));
    expect(resume.code).not.toBe(0);
    expect(resume.out.trim().split('\n').at(-1)).toMatch(/no pretraining checkpoint to resume/);
  }, 60_000);

  it('resumes after SIGKILL with the losses of an uninterrupted run', async () => {
    const first = tabzero(['pretrain', '--out', killed, '--steps', '4', ...SETS]);
    let sent = false;
    await finish(first, (out) => {
      if (!sent && /checkpoint at step 2/.test(out)) {
        sent = true;
        first.kill('SIGKILL');
      }
    });
    expect(sent).toBe(true);
    const resumed = await finish(tabzero(['pretrain', '--out', killed, '--resume']));
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toMatch(/resuming/);
    const rows = losses(killed);
    expect(rows.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    // Same seed, same records, same warm-up learning rates: the first three steps equal the whole run's.
    const a = losses(whole).map((s) => s.metrics.imitationLoss);
    rows.slice(0, 3).forEach((s, k) => expect(Math.abs(s.metrics.imitationLoss - a[k])).toBeLessThan(1e-5));
  }, 300_000);

  it('its model folder evaluates like its checkpoint on the initial model', async () => {
    const args = ['--eval-set', 'arith_eval_200', '--limit', '12', '--json'];
    const folder = await finish(tabzero(['eval', '--model', join(whole, 'model'), ...args]));
    const checkpoint = await finish(
      tabzero(['eval', '--model', join(whole, 'init'), '--adapter', whole, ...args]),
    );
    const initial = await finish(tabzero(['eval', '--model', join(whole, 'init'), ...args]));
    const items = (r: { stdout: string }) =>
      (JSON.parse(r.stdout) as { items: { completion: string }[] }).items.map((i) => i.completion);
    expect(folder.code, folder.out).toBe(0);
    expect(checkpoint.code, checkpoint.out).toBe(0);
    expect(items(folder)).toEqual(items(checkpoint));
    // `export --format hf` of the run writes the same model; PEFT says there is no adapter.
    const hf = join(root, 'whole-hf');
    const exported = await finish(
      tabzero(['export', '--run', whole, '--format', 'hf', '--model', join(whole, 'init'), '--out', hf]),
    );
    expect(exported.code, exported.out).toBe(0);
    const fromExport = await finish(tabzero(['eval', '--model', hf, ...args]));
    expect(items(fromExport)).toEqual(items(folder));
    const peft = await finish(
      tabzero([
        'export',
        '--run',
        whole,
        '--format',
        'peft',
        '--model',
        join(whole, 'init'),
        '--out',
        join(root, 'p'),
      ]),
    );
    expect(peft.code).not.toBe(0);
    expect(peft.out).toMatch(/no adapter to export as PEFT/);
    // …and the trained weights are not the initial ones.
    expect(items(folder)).not.toEqual(items(initial));
  }, 240_000);
});
