// A real crash: a writer process is SIGKILLed at random moments while it commits steps and checkpoints;
// after each kill the run resumes from its last checkpoint with nothing lost and nothing duplicated.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import { generations, nextState, seededState } from './fixtures.ts';

const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'tabzero-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the writer until it has committed `until` steps, then waits `delayMs` and kills it. */
function runAndKill(dir: string, until: number, delayMs: number): Promise<{ resumed: number; last: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'kill-writer.ts'), dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let resumed = -1;
    let last = -1;
    let killing = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const m of out.matchAll(/resumed (\d+)/g)) resumed = Number(m[1]);
      for (const m of out.matchAll(/committed (\d+)/g)) last = Number(m[1]);
      if (!killing && last >= until) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ resumed, last });
      else reject(new Error(`writer exited with ${code}: ${err}`));
    });
  });
}

describe('SIGKILL during commits', () => {
  it('resumes from the last checkpoint with nothing lost or duplicated', async () => {
    const dir = path.join(root, 'run');
    let before = 0;
    for (const [until, delay] of [
      [2, 3],
      [1, 0],
      [2, 9],
    ]) {
      const { resumed, last } = await runAndKill(dir, before + until, delay);
      // It resumed at (or after the rollback of) what the previous process had committed and checkpointed.
      expect(resumed).toBeGreaterThanOrEqual(before - 1);
      expect(resumed).toBeLessThanOrEqual(before + 1);
      before = last;
    }
    // The killed writer left a stale lock behind; a new writer takes over, checks and resumes.
    const w = await new NodeRunStore(dir).openRun('.');
    const p = await w.resume();
    expect(p.warnings).toEqual([]);
    let expected = seededState();
    for (let s = 0; s < p.step; s++) expected = nextState(expected);
    expect(p.state).toEqual(expected);
    expect(p.checkpoint!.tensors[0].data[0]).toBe(p.step);
    expect((await w.steps()).map((s) => s.step)).toEqual(Array.from({ length: p.step }, (_, i) => i + 1));
    const samples = await w.samples();
    expect(samples.length).toBe(2 + 200 * p.step);
    expect(await w.samples(p.step)).toEqual(generations(p.step, 200).map((g, i) => ({ ...g, i })));
    await w.close();
  });
});
