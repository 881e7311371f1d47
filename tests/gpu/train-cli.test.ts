// `tabzero train` end to end on the real engine and verifier: a smoke run killed with SIGKILL in the
// middle of a step resumes from its last checkpoint with nothing lost or duplicated; then the run
// exports (PEFT adapter) and archives, and the archive imports as a run at the same step.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'tabzero-train-cli-'));
const env = { ...process.env, TABZERO_CACHE: join(root, 'cache') };
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The smallest run that goes through every phase: smoke preset (templates seed the buffers of an
// untrained model), short generations, no evals, a checkpoint after every step.
const RUN_ARGS = ['--model', 'tiny', '--preset', 'smoke', '--steps', '3', '--checkpoint-every-steps', '1'];
const SETS = ['maxProposerTokens=8', 'maxSolverTokens=8', 'evalSets='].flatMap((s) => ['--set', s]);

function tabzero(args: string[]): ChildProcess {
  return spawn(process.execPath, ['cli/bin.js', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function finish(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

const jsonl = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('tabzero train', () => {
  const run = join(root, 'run');

  it('survives SIGKILL mid-step and resumes with nothing lost or duplicated', async () => {
    const first = tabzero(['train', ...RUN_ARGS, ...SETS, '--out', run]);
    let out = '';
    const killed = new Promise<void>((resolve) => {
      first.stdout!.on('data', (d) => {
        out += d;
        // Step 1 is committed and checkpointed; step 2 has started: kill it in the middle.
        if (/checkpoint at step 1/.test(out) && first.exitCode === null) {
          setTimeout(() => first.kill('SIGKILL'), 1500);
        }
      });
      first.on('close', () => resolve());
    });
    await killed;
    expect(first.signalCode).toBe('SIGKILL');
    const afterKill = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).step as number;
    expect(afterKill).toBeGreaterThanOrEqual(1);
    expect(afterKill).toBeLessThan(3);

    const second = await finish(tabzero(['train', '--model', 'tiny', '--out', run, '--resume']));
    expect(second.code, second.out).toBe(0);
    expect(second.out).toMatch(/resum/);
    expect(second.out).toMatch(/run finished at step 3/);
    // Piped, the phases come one plain line each, named with the CLI's phase words.
    for (const word of ['propose', 'verify', 'solve', 'update', 'checkpoint'])
      expect(second.out).toMatch(new RegExp(`^step 3/3 ${word}`, 'm'));
    expect(second.out.includes('\r') || second.out.includes('\x1b')).toBe(false);

    const steps = jsonl(join(run, 'steps.jsonl')).map((r) => r.step);
    expect(steps).toEqual([1, 2, 3]);
    for (const type of ['ded', 'abd', 'ind']) {
      const ids = jsonl(join(run, 'buffers', `${type}.jsonl`)).map((e) => e.id);
      expect(new Set(ids).size, `${type} buffer ids are unique`).toBe(ids.length);
    }
    const sampleSteps = jsonl(join(run, 'samples.jsonl')).map((s) => s.step);
    expect(Math.max(...sampleSteps)).toBe(3);
  });

  it('exports the adapter and round-trips the run archive', async () => {
    const peft = join(root, 'peft');
    // No --model: the run recorded its base model (`--model tiny`), still there with the same weights.
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).modelPath).toBe('tiny');
    const exported = await finish(tabzero(['export', '--run', run, '--format', 'peft', '--out', peft]));
    expect(exported.code, exported.out).toBe(0);
    const adapterConfig = JSON.parse(readFileSync(join(peft, 'adapter_config.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).config;
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: config.loraRank,
      lora_alpha: config.loraAlpha,
    });
    expect(existsSync(join(peft, 'adapter_model.safetensors'))).toBe(true);

    const archive = join(root, 'run.tabzero.tar');
    expect(
      (await finish(tabzero(['export', '--run', run, '--format', 'archive', '--out', archive]))).code,
    ).toBe(0);
    const imported = await finish(tabzero(['import', archive, '--out', join(root, 'imported')]));
    expect(imported.code, imported.out).toBe(0);
    expect(imported.out).toMatch(/at step 3 of 3/);

    // A recorded base model that is gone: one line asking for --model, nothing written.
    const moved = join(root, 'imported', 'run.json');
    writeFileSync(
      moved,
      JSON.stringify({ ...JSON.parse(readFileSync(moved, 'utf8')), modelPath: join(root, 'gone') }),
    );
    const refused = await finish(
      tabzero(['export', '--run', join(root, 'imported'), '--format', 'hf', '--out', join(root, 'hf')]),
    );
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(
      /^tabzero: --format hf needs the run's base model \(local\/tiny-seed-0@local .*\), recorded at .*gone, which is gone: give it with --model$/m,
    );
    expect(existsSync(join(root, 'hf'))).toBe(false);
  });

  it("seeds a new run from another run's exported seed set", async () => {
    const seedFile = join(root, 'seed.jsonl');
    const exported = await finish(
      tabzero(['export', '--run', run, '--format', 'seed-set', '--out', seedFile]),
    );
    expect(exported.code, exported.out).toBe(0);
    const seeded = join(root, 'seeded');
    const args = ['--model', 'tiny', '--preset', 'smoke', '--steps', '1', ...SETS, '--seed-set', seedFile];
    const child = tabzero(['train', ...args, '--out', seeded, '--json']);
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    const second = await finish(child);
    expect(second.code, second.out).toBe(0);
    // --json: stdout is protocol.ts's events, one JSON object per line, ending with the run's status.
    const events = stdout
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { type: string; message?: string; run?: { status: string; step: number } },
      );
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(['log', 'phase', 'samples', 'step', 'checkpoint', 'run-status']),
    );
    expect(events.find((e) => e.type === 'log')?.message).toMatch(
      /seeded from an imported seed set of \d+ tasks/,
    );
    expect(events.at(-1)?.run).toMatchObject({ status: 'finished', step: 1 });
    const meta = JSON.parse(readFileSync(join(seeded, 'run.json'), 'utf8'));
    // The source run seeded from templates (smoke), so the set is not zero-data, and neither is this run.
    expect(meta.notZeroData).toBe(true);
    const sourceSeeds = jsonl(seedFile)
      .slice(1)
      .map((e) => `${e.type}|${e.program}|${JSON.stringify(e.inputs)}`);
    const seeds = jsonl(join(seeded, 'seed.jsonl'))
      .slice(1)
      .map((e) => `${e.type}|${e.program}|${JSON.stringify(e.inputs)}`);
    expect(seeds.sort()).toEqual(sourceSeeds.sort());
  });
});
