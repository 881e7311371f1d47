import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
  existsSync,
} from 'node:fs';
import { cpSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunnerState } from '../../../src/selfplay/types.ts';
import { CorruptDataError, FormatVersionError, StoreFullError } from '../../../src/store/errors.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import type { FsOp } from '../../../src/store/node-fs.ts';
import type { RunWriter } from '../../../src/store/types.ts';
import {
  drive,
  everything,
  generations,
  newRun,
  nextState,
  seededState,
  stepCommit,
  tensors,
} from './fixtures.ts';

// tmpfs where there is one: the store fsyncs at every commit, which a test does not need to wait for.
let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'tabzero-store-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('NodeRunStore: commits and reads', () => {
  it('writes the run folder of DESIGN.md and reads every part back', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('run-a', newRun());
    const last = await drive(w, 3);
    await w.commitEval({ step: 3, name: 'arith_expr_eval_100:raw', result: { accuracy: 0.5 }, time: 'now' });
    await w.close();

    const dir = path.join(root, 'run-a');
    expect(readdirSync(dir).sort()).toEqual([
      'buffers',
      'evals.jsonl',
      'run.json',
      'samples.jsonl',
      'seed.jsonl',
      'steps.jsonl',
    ]);
    expect(readdirSync(path.join(dir, 'buffers')).sort()).toEqual(['abd.jsonl', 'ded.jsonl', 'ind.jsonl']);
    const runJson = JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8'));
    expect(runJson).toMatchObject({
      format: 'tabzero-run',
      formatVersion: 1,
      step: 3,
      seed: 7,
      tabzeroVersion: '0.1.0',
    });
    expect(runJson.model.repo).toBe('tabzero/tiny');
    expect(
      readFileSync(path.join(dir, 'steps.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step),
    ).toEqual([1, 2, 3]);
    const dedLines = readFileSync(path.join(dir, 'buffers/ded.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(dedLines[0]).toMatchObject({ format: 'tabzero-buffer', formatVersion: 1, type: 'ded', step: 3 });
    expect(dedLines.slice(1)).toEqual(last.buffers.ded);

    const r = await store.readRun('run-a');
    expect((await r.meta()).step).toBe(3);
    expect(await r.state()).toEqual(last);
    expect((await r.steps()).map((s) => s.step)).toEqual([1, 2, 3]);
    expect((await r.samples()).length).toBe(2 + 3 * 3);
    expect(await r.samples(2)).toEqual(generations(2).map((g, i) => ({ ...g, i })));
    expect((await r.evals()).map((e) => [e.step, e.name])).toEqual([
      [2, 'arith_eval_200:raw'],
      [3, 'arith_expr_eval_100:raw'],
    ]);
    const seed = await r.seedSet();
    expect(seed?.source.zeroData).toBe(false);
    expect(seed?.entries.map((e) => e.id)).toEqual(['ded-1', 'ded-2', 'ind-5', 'ind-6']);
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['run-a']);
  });

  it('a reader polling while the writer commits always sees a whole commit', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 1, [1]);
    const r = await store.readRun('r');
    const expected = [seededState()];
    for (let i = 0; i < 8; i++) expected.push(nextState(expected[i]));
    let done = false;
    let reads = 0;
    const poll = (async () => {
      while (!done) {
        const state = (await r.state())!;
        expect(state).toEqual(expected[state.step]);
        const steps = await r.steps();
        expect(steps.map((s) => s.step)).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
        reads++;
      }
    })();
    await drive(w, 6);
    await w.resume(); // a rollback (cuts files) under the reader too
    await drive(w, 8);
    done = true;
    await poll;
    expect(reads).toBeGreaterThan(3);
    await w.close();
  });

  it('refuses to create a run where one exists', async () => {
    const store = new NodeRunStore(root);
    await (await store.createRun('r', newRun())).close();
    await expect(store.createRun('r', newRun())).rejects.toThrow(/already holds a run/);
  });
});

describe('NodeRunStore: checkpoints and resume', () => {
  it('a truncated checkpoint is detected by its length', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 3, [1, 3]);
    const state = path.join(root, 'r/checkpoints/step-00000003/state.json');
    writeFileSync(state, readFileSync(state).subarray(0, 10));
    const p = await w.resume();
    expect(p.step).toBe(1);
    expect(p.warnings[0]).toMatch(/step 3 is corrupt.*truncated/);
    await w.close();
  });
});

/** Copies a prepared run folder, so each crash case starts from the same committed state. */
function clone(from: string, name: string): string {
  const to = path.join(root, name);
  cpSync(from, to, { recursive: true });
  return name;
}

class Crash extends Error {}

describe('NodeRunStore: a crash at any file operation leaves the last commit intact', () => {
  async function prepared(): Promise<{ base: string; before: RunnerState }> {
    const store = new NodeRunStore(root);
    const w = await store.createRun('base', newRun());
    const before = await drive(w, 2, [1]);
    await w.close();
    return { base: path.join(root, 'base'), before };
  }

  async function snapshot(store: NodeRunStore, id: string) {
    return everything(await store.readRun(id));
  }

  async function crashSweep(name: string, act: (w: RunWriter, before: RunnerState) => Promise<unknown>) {
    const { base, before } = await prepared();
    const plain = new NodeRunStore(root);
    const old = await snapshot(plain, 'base');
    // The reference "after": the same action without faults.
    const refId = clone(base, `${name}-ref`);
    const ref = await plain.openRun(refId);
    await act(ref, before);
    await ref.close();
    const after = await snapshot(plain, refId);
    const outcomes = new Set<string>();
    for (let k = 1; ; k++) {
      let ops = 0;
      let armed = false;
      const store = new NodeRunStore(root, {
        fault: (_op: FsOp) => {
          if (armed && ++ops === k) throw new Crash(`crash at op ${k}`);
        },
      });
      const id = clone(base, `${name}-${k}`);
      const w = await store.openRun(id);
      armed = true;
      let crashed = false;
      try {
        await act(w, before);
      } catch (err) {
        if (!(err instanceof Crash)) throw err;
        crashed = true;
      }
      armed = false;
      if (!crashed) break; // k is past the last operation
      rmSync(path.join(root, id, 'run.lock')); // the process "died": its lock is stale
      // A reader sees the old or the new commit, whole.
      const seen = await snapshot(plain, id);
      const isOld = JSON.stringify(seen) === JSON.stringify(old);
      const isNew =
        JSON.stringify({ ...seen, meta: { ...seen.meta, updatedAt: 0 } }) ===
        JSON.stringify({ ...after, meta: { ...after.meta, updatedAt: 0 } });
      expect(isOld || isNew, `crash at op ${k}: neither the old nor the new commit`).toBe(true);
      outcomes.add(isOld ? 'old' : 'new');
      // A new writer settles the folder and can carry on.
      const w2 = await plain.openRun(id);
      expect(await w2.state()).toEqual(seen.state);
      await w2.close();
      expect(
        readdirSync(path.join(root, id)).filter((f) => f.endsWith('.next') || f.endsWith('.tmp')),
      ).toEqual([]);
      rmSync(path.join(root, id), { recursive: true });
    }
    return outcomes;
  }

  it('commitStep', async () => {
    const outcomes = await crashSweep('step', async (w, before) => w.commitStep(stepCommit(before)));
    expect([...outcomes].sort()).toEqual(['new', 'old']);
  });

  it('resume (rollback)', async () => {
    const outcomes = await crashSweep('resume', async (w) => w.resume());
    expect([...outcomes].sort()).toEqual(['new', 'old']);
  });

  it('saveCheckpoint never leaves a half-written checkpoint', async () => {
    const { base, before } = await prepared();
    for (let k = 1; ; k++) {
      let ops = 0;
      let armed = false;
      const store = new NodeRunStore(root, {
        fault: () => {
          if (armed && ++ops === k) throw new Crash();
        },
      });
      const id = clone(base, `ck-${k}`);
      const w = await store.openRun(id);
      armed = true;
      const done = await w.saveCheckpoint({ step: 2, tensors: tensors(2), reason: 'timer' }).then(
        () => true,
        (err) => {
          if (!(err instanceof Crash)) throw err;
          return false;
        },
      );
      rmSync(path.join(root, id, 'run.lock'));
      const w2 = await new NodeRunStore(root).openRun(id);
      const p = await w2.resume();
      expect(p.warnings).toEqual([]); // never a corrupt one
      expect([1, 2]).toContain(p.step);
      if (p.step === 2) expect(p.state).toEqual(before);
      await w2.close();
      rmSync(path.join(root, id), { recursive: true });
      if (done) break;
    }
  });
});

describe('NodeRunStore: full disk', () => {
  it('ENOSPC during a step raises StoreFullError and corrupts nothing', async () => {
    let failOn: string | null = null;
    const store = new NodeRunStore(root, {
      fault: (op, file) => {
        if (failOn && file.endsWith(failOn)) {
          throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), {
            code: 'ENOSPC',
          });
        }
        void op;
      },
    });
    const w = await store.createRun('r', newRun());
    const s2 = await drive(w, 2, [2]);
    for (const target of ['samples.jsonl', 'ded.jsonl.next', 'run.json']) {
      failOn = target;
      const err = await w.commitStep(stepCommit(s2)).catch((e) => e);
      expect(err).toBeInstanceOf(StoreFullError);
      expect(err.message).toMatch(
        /disk is full \(ENOSPC\) while saving step 3.*run is unchanged.*Free disk space/,
      );
      failOn = null;
      expect((await w.meta()).step).toBe(2);
      expect(await w.state()).toEqual(s2);
    }
    failOn = 'weights.safetensors';
    await expect(w.saveCheckpoint({ step: 2, tensors: tensors(3), reason: 'timer' })).resolves.toBeDefined(); // same step kept
    failOn = null;
    // After space is freed the run goes on, and what it reads is exactly the committed data.
    const s3 = await drive(w, 3);
    failOn = 'weights.safetensors';
    await expect(w.saveCheckpoint({ step: 3, tensors: tensors(3), reason: 'timer' })).rejects.toBeInstanceOf(
      StoreFullError,
    );
    failOn = null;
    await w.close();
    const r = await new NodeRunStore(root).openRun('r');
    expect(await r.state()).toEqual(s3);
    expect((await r.steps()).map((s) => s.step)).toEqual([1, 2, 3]);
    expect((await r.samples(3)).length).toBe(3);
    expect((await r.checkpoints()).map((c) => c.step)).toEqual([2]);
    expect(readdirSync(path.join(root, 'r/checkpoints'))).toEqual(['step-00000002']);
    await r.close();
  });
});

describe('NodeRunStore: torn writes and versions', () => {
  it('ignores bytes past the committed length, and the writer cuts them', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 1);
    await w.close();
    const samples = path.join(root, 'r/samples.jsonl');
    const size = readFileSync(samples).length;
    appendFileSync(samples, '{"step":2,"i":0,"prompt":"torn');
    appendFileSync(path.join(root, 'r/steps.jsonl'), '{"step":2,"metrics":{}}\n');
    const r = await store.readRun('r');
    expect((await r.steps()).map((s) => s.step)).toEqual([1]);
    expect((await r.samples()).every((s) => s.step <= 1)).toBe(true);
    const w2 = await store.openRun('r');
    expect(readFileSync(samples).length).toBe(size);
    await w2.close();
  });

  it('refuses a run.json from a newer TabZero with a clear message', async () => {
    const store = new NodeRunStore(root);
    await (await store.createRun('r', newRun())).close();
    const file = path.join(root, 'r/run.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), formatVersion: 9 }));
    const err = await store.readRun('r').catch((e) => e);
    expect(err).toBeInstanceOf(FormatVersionError);
    expect(err.message).toMatch(/newer TabZero \(tabzero-run format version 9; this TabZero reads up to 1\)/);
    await expect(store.openRun('r')).rejects.toBeInstanceOf(FormatVersionError);
    // The listing leaves it out (opening it says why), as IndexedDB does, and lists the others.
    await (await store.createRun('s', newRun())).close();
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['s']);
  });

  it('refuses a damaged run.json, saying what is wrong and what to do, and changes nothing', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 1);
    await w.close();
    const file = path.join(root, 'r/run.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    const { model: _m, files: _f, ...lacking } = good;
    const action =
      'so TabZero cannot open the run: restore run.json from a backup (or import the run from an archive), or start a new run in another folder.';
    const cases: [string, RegExp][] = [
      [
        JSON.stringify(good).slice(0, 80),
        /is damaged \(not valid JSON: .*\), so TabZero cannot open the run/,
      ],
      ['"a string"', /is damaged \(not a JSON object\), so/],
      [
        JSON.stringify({ ...lacking, step: -1 }),
        /is damaged \(model, step, files missing or of the wrong type\), so/,
      ],
      [
        JSON.stringify({ ...good, snapshots: { ...good.snapshots, 'seed.jsonl': 'x' } }),
        /\(snapshots missing/,
      ],
      [JSON.stringify({ ...good, modelPath: 3 }), /\(modelPath missing or of the wrong type\)/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(file, text);
      const before = readdirSync(path.join(root, 'r'), { recursive: true }).sort();
      for (const open of [() => store.readRun('r'), () => store.openRun('r')]) {
        const err = await open().catch((e) => e);
        expect(err).toBeInstanceOf(CorruptDataError);
        expect(err.message).toMatch(message);
        expect(err.message.startsWith(`${file} is damaged (`)).toBe(true);
        expect(err.message.endsWith(action)).toBe(true);
      }
      expect(readFileSync(file, 'utf8')).toBe(text);
      expect(readdirSync(path.join(root, 'r'), { recursive: true }).sort()).toEqual(before);
      expect(await store.listRuns()).toEqual([]);
    }
  });

  it('refuses a checkpoint manifest from a newer TabZero (falls back past it)', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 2, [1, 2]);
    const file = path.join(root, 'r/checkpoints/step-00000002/checkpoint.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), formatVersion: 2 }));
    await expect(w.loadCheckpoint(2)).rejects.toThrow(/tabzero-checkpoint format version 2/);
    await w.close();
  });

  it('detects an edited buffer file', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 1);
    await w.close();
    appendFileSync(path.join(root, 'r/buffers/abd.jsonl'), JSON.stringify({ id: 'x' }) + '\n');
    await expect((await store.readRun('r')).buffers()).rejects.toBeInstanceOf(CorruptDataError);
    expect(existsSync(path.join(root, 'r/run.lock'))).toBe(false);
  });
});

describe('NodeRunStore: the lock file', () => {
  async function deadPid(): Promise<number> {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => child.on('exit', resolve));
    return child.pid!;
  }

  function writeLock(info: object) {
    writeFileSync(
      path.join(root, 'r/run.lock'),
      JSON.stringify({ since: '2026-01-01T00:00:00Z', token: 't', ...info }),
    );
  }

  it('takes over a stale lock whose process is dead on this host', async () => {
    const store = new NodeRunStore(root);
    await (await store.createRun('r', newRun())).close();
    expect(existsSync(path.join(root, 'r/run.lock'))).toBe(false);
    writeLock({ pid: await deadPid(), hostname: os.hostname() });
    const w = await store.openRun('r');
    expect(JSON.parse(readFileSync(path.join(root, 'r/run.lock'), 'utf8'))).toMatchObject({
      pid: process.pid,
    });
    await w.close();
    expect(existsSync(path.join(root, 'r/run.lock'))).toBe(false);
  });

  // The relayed child of a SIGKILLed `tabzero` (cli/stderr-relay.ts) is an orphan; where PID 1 does not
  // reap, it stays a zombie and kill(pid, 0) still succeeds. Here a real zombie: `sleep 0.3`, whose
  // parent has exec'd into a `sleep` that never waits for it.
  it.runIf(process.platform === 'linux')(
    'takes over a lock whose process exited but was not reaped',
    async () => {
      const { spawn } = await import('node:child_process');
      const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        const pid = Number(
          await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d)))),
        );
        const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
        for (let t = 0; t < 100 && state() !== 'Z'; t++) await new Promise((r) => setTimeout(r, 50));
        expect(state()).toBe('Z');
        expect(() => process.kill(pid, 0)).not.toThrow(); // what fooled the old check
        const store = new NodeRunStore(root);
        await (await store.createRun('r', newRun())).close();
        writeLock({ pid, hostname: os.hostname() });
        const w = await store.openRun('r');
        expect(JSON.parse(readFileSync(path.join(root, 'r/run.lock'), 'utf8')).pid).toBe(process.pid);
        await w.close();
      } finally {
        parent.kill('SIGKILL');
      }
    },
  );

  it('names a live holder, or one on another host, and leaves its lock alone', async () => {
    const store = new NodeRunStore(root);
    await (await store.createRun('r', newRun())).close();
    writeLock({ pid: process.ppid, hostname: os.hostname() });
    await expect(store.openRun('r')).rejects.toThrow(
      new RegExp(
        `already being written by pid ${process.ppid} on ${os.hostname()} \\(since 2026-01-01T00:00:00Z\\)\\. Stop that process`,
      ),
    );
    writeLock({ pid: await deadPid(), hostname: 'elsewhere' });
    await expect(store.openRun('r')).rejects.toThrow(
      /on elsewhere .*If that machine no longer runs it, delete .*run\.lock/,
    );
    expect(JSON.parse(readFileSync(path.join(root, 'r/run.lock'), 'utf8')).hostname).toBe('elsewhere');
  });
});
