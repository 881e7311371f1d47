// Sweep planning and the resumable sweep loop, with a stand-in trainer that commits synthetic steps to
// real run folders (the real trainer is `tabzero train`; its runs are the same folders).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRunMeta, runSweepCommand } from '../../../cli/commands/sweep.ts';
import { parseSetFlag, resolveConfig, type RunConfig } from '../../../src/config.ts';
import {
  namePart,
  parseVary,
  planSweep,
  setFlagFor,
  SweepError,
  variantStatus,
  type SweepSpec,
  type SweepTrainOptions,
} from '../../../src/experiments/sweep.ts';
import type { RunnerState } from '../../../src/selfplay/types.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import type { RunMeta } from '../../../src/store/types.ts';
import { syntheticMetrics, writeSyntheticRun } from './fixtures.ts';
import { parseXml } from './xml.ts';

const spec = (o: Partial<SweepSpec> = {}): SweepSpec => ({
  preset: 'smoke',
  vary: [parseVary('baselines=6,2,1')],
  set: [],
  steps: 2,
  out: '/tmp/sweep',
  ...o,
});

describe('sweep planning', () => {
  it('parses --vary and names one folder per value', () => {
    expect(parseVary('baselines=6,2,1')).toEqual({ key: 'baselines', raw: ['6', '2', '1'] });
    const plan = planSweep(spec());
    expect(plan.map((v) => v.name)).toEqual(['baselines-6', 'baselines-2', 'baselines-1']);
    expect(plan.map((v) => v.dir)).toEqual([
      '/tmp/sweep/baselines-6',
      '/tmp/sweep/baselines-2',
      '/tmp/sweep/baselines-1',
    ]);
    expect(plan.map((v) => v.config.baselines)).toEqual([6, 2, 1]);
    expect(plan.every((v) => v.config.totalSteps === 2 && v.config.batchPerGroup === 2)).toBe(true);
    expect(plan[1].set).toEqual(['baselines=2']);
  });
  it('takes the cartesian product of several keys, shared --set flags first', () => {
    const plan = planSweep(
      spec({
        vary: [parseVary('baselines=6,2'), parseVary('learnabilityReward=inverse,binary')],
        set: ['lr=0.0001'],
      }),
    );
    expect(plan.map((v) => v.name)).toEqual([
      'baselines-6_learnabilityReward-inverse',
      'baselines-6_learnabilityReward-binary',
      'baselines-2_learnabilityReward-inverse',
      'baselines-2_learnabilityReward-binary',
    ]);
    expect(plan[3].set).toEqual(['lr=0.0001', 'baselines=2', 'learnabilityReward=binary']);
    expect(plan[3].config).toMatchObject({ lr: 0.0001, baselines: 2, learnabilityReward: 'binary' });
  });
  it("without --steps each run takes the preset's totalSteps (the issue's sweep command has none)", () => {
    const plan = planSweep(spec({ preset: 'workshop', steps: undefined }));
    expect(plan.every((v) => v.config.totalSteps === 100)).toBe(true);
    const set = planSweep(spec({ preset: 'workshop', steps: undefined, set: ['totalSteps=7'] }));
    expect(set.every((v) => v.config.totalSteps === 7)).toBe(true);
  });
  it('list knobs join items with +, and names stay folder-safe', () => {
    expect(setFlagFor('loraTargets', 'q_proj+v_proj')).toBe('loraTargets=q_proj,v_proj');
    const plan = planSweep(spec({ vary: [parseVary('loraTargets=q_proj+v_proj,o_proj')] }));
    expect(plan[0].config.loraTargets).toEqual(['q_proj', 'v_proj']);
    expect(plan[0].name).toBe('loraTargets-q-proj-v-proj');
    expect(namePart('lr', '1e-5')).toBe('lr-1e-5');
  });
  it('refuses bad values and conflicts before anything trains', () => {
    expect(() => planSweep(spec({ vary: [parseVary('baselines=6,3')] }))).toThrow(/one of 6, 2, 1/);
    expect(() => parseVary('nonsense=1,2')).toThrow(/unknown config key/);
    expect(() => parseVary('baselines=6,,2')).toThrow(SweepError);
    expect(() => parseVary('baselines=6,6')).toThrow(/twice/);
    expect(() => planSweep(spec({ set: ['baselines=2'] }))).toThrow(/both varied and set/);
    expect(() => planSweep(spec({ vary: [parseVary('totalSteps=1,2')] }))).toThrow(SweepError);
    expect(() => planSweep(spec({ vary: [] }))).toThrow(SweepError);
  });
  it('a variant is new, resumed, done, or refused when its folder holds another config', () => {
    const [v] = planSweep(spec());
    const meta = (o: Partial<RunMeta>, c: Partial<RunConfig> = {}) =>
      ({ status: 'finished', step: 2, config: { ...v.config, ...c }, ...o }) as RunMeta;
    expect(variantStatus(v, null)).toBe('new');
    expect(variantStatus(v, meta({}))).toBe('done');
    expect(variantStatus(v, meta({ status: 'paused', step: 1 }))).toBe('resume');
    expect(variantStatus(v, meta({ status: 'running', step: 2 }))).toBe('resume');
    expect(() => variantStatus(v, meta({}, { baselines: 2 }))).toThrow(/another config \(baselines: 2/);
  });
});

/** Stand-in for runTrainCommand: creates or resumes a run and commits synthetic steps up to `steps`. */
function fakeTrainer(calls: SweepTrainOptions[]) {
  return async (o: SweepTrainOptions) => {
    calls.push(o);
    const abs = path.resolve(o.out);
    const store = new NodeRunStore(path.dirname(abs));
    const config = resolveConfig(o.preset, {
      ...Object.assign({}, ...o.set.map(parseSetFlag)),
      totalSteps: o.steps,
    });
    const writer = o.resume
      ? await store.openRun(abs)
      : await store.createRun(abs, {
          config,
          model: { repo: 'tabzero/tiny', revision: 'main', sha256: 'ab'.repeat(32) },
          tabzeroVersion: '0.0.0-test',
        });
    const acc = 0.1 * config.baselines;
    for (let step = (await writer.meta()).step + 1; step <= o.steps; step++) {
      const state: RunnerState = {
        version: 1,
        step,
        rngState: 1,
        seeded: true,
        notZeroData: false,
        nextTaskId: 1,
        buffers: { ded: [], abd: [], ind: [] },
      };
      await writer.commitStep({
        step,
        metrics: syntheticMetrics(step, {
          solve: { abd: acc, ded: acc, ind: acc },
          valid: 0.5,
          proposerReward: 0,
          generated: 12,
        }),
        samples: [],
        state,
        evals: [{ name: 'arith_eval_200:raw', result: { accuracy: acc / 2 } }],
      });
    }
    await writer.setStatus('finished');
    await writer.close();
  };
}

/** Runs the sweep command over `vary` in `root` with the stand-in trainer: the calls it made and its log. */
async function sweepIn(root: string, vary: string, x: 'steps' | 'sequences') {
  const calls: SweepTrainOptions[] = [];
  let out = '';
  await runSweepCommand(
    { ...spec({ vary: [parseVary(vary)], out: root }), model: 'tiny', x, log: (t) => (out += t) },
    fakeTrainer(calls),
  );
  return { calls, out };
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tabzero-sweep-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tabzero sweep (stand-in trainer)', () => {
  it('trains every variant, then prints the comparison and writes the chart', async () => {
    const calls: SweepTrainOptions[] = [];
    let out = '';
    const c = await runSweepCommand(
      {
        ...spec({ vary: [parseVary('baselines=6,2')], out: root }),
        model: 'tiny',
        x: 'steps',
        log: (t) => (out += t),
      },
      fakeTrainer(calls),
    );
    expect(calls.map((o) => [o.out, o.resume, o.set, o.steps, o.model, o.preset])).toEqual([
      [path.join(root, 'baselines-6'), false, ['baselines=6'], 2, 'tiny', 'smoke'],
      [path.join(root, 'baselines-2'), false, ['baselines=2'], 2, 'tiny', 'smoke'],
    ]);
    expect(c.runs.map((r) => [r.label, r.step, r.sequencesGenerated])).toEqual([
      ['baselines-6', 2, 24],
      ['baselines-2', 2, 24],
    ]);
    expect(c.runs[0].solverAuc).toBeCloseTo(0.6, 12);
    expect(c.runs[1].solverAuc).toBeCloseTo(0.2, 12);
    expect(c.configDiff).toEqual([{ key: 'baselines', values: [6, 2] }]);
    expect(out).toMatch(/sweep 1\/2 baselines-6: starting/);
    expect(out).toMatch(/Config differences:/);
    const svg = await readFile(path.join(root, 'comparison.svg'), 'utf8');
    expect(parseXml(svg).filter((e) => e.name === 'path')).toHaveLength(6 * 2);
  });

  it('skips finished runs and resumes unfinished ones', async () => {
    await writeSyntheticRun(
      root,
      'baselines-6',
      { ...resolveConfig('smoke'), baselines: 6, totalSteps: 2 },
      [1, 2].map(() => ({ solve: { ded: 0.5 }, valid: 1, proposerReward: 0, generated: 5 })),
      [],
    );
    await writeSyntheticRun(
      root,
      'baselines-2',
      { ...resolveConfig('smoke'), baselines: 2, totalSteps: 2 },
      [{ solve: { ded: 0.5 }, valid: 1, proposerReward: 0, generated: 5 }],
      [],
      { finish: false },
    );
    const { calls, out } = await sweepIn(root, 'baselines=6,2,1', 'sequences');
    expect(calls.map((o) => [path.basename(o.out), o.resume])).toEqual([
      ['baselines-2', true],
      ['baselines-1', false],
    ]);
    expect(out).toMatch(/baselines-6: finished, skipped/);
    expect(out).toMatch(/baselines-2: resuming/);
    expect((await readRunMeta(path.join(root, 'baselines-2')))!).toMatchObject({
      step: 2,
      status: 'finished',
    });
  });

  it('a run written before a knob existed reads with its default, so it is skipped, not refused', async () => {
    await writeSyntheticRun(
      root,
      'baselines-6',
      { ...resolveConfig('smoke'), baselines: 6, totalSteps: 2 },
      [1, 2].map(() => ({ solve: { ded: 0.5 }, valid: 1, proposerReward: 0, generated: 5 })),
      [],
    );
    // As a run of an older TabZero: its config has no lossAggregation (added later, with the default
    // token_mean, what every run did before).
    const file = path.join(root, 'baselines-6', 'run.json');
    const stored = JSON.parse(await readFile(file, 'utf8'));
    delete stored.config.lossAggregation;
    await writeFile(file, JSON.stringify(stored));
    expect((await readRunMeta(path.join(root, 'baselines-6')))!.config.lossAggregation).toBe('token_mean');
    const { calls, out } = await sweepIn(root, 'baselines=6,2', 'steps');
    expect(calls.map((o) => [path.basename(o.out), o.resume])).toEqual([['baselines-2', false]]);
    expect(out).toMatch(/baselines-6: finished, skipped/);
  });

  it('refuses a folder that holds a run of another config before training anything', async () => {
    await writeSyntheticRun(
      root,
      'baselines-2',
      { ...resolveConfig('smoke'), baselines: 1, totalSteps: 2 },
      [],
      [],
    );
    const calls: SweepTrainOptions[] = [];
    await expect(
      runSweepCommand(
        {
          ...spec({ vary: [parseVary('baselines=6,2')], out: root }),
          model: 'tiny',
          x: 'steps',
          log: () => {},
        },
        fakeTrainer(calls),
      ),
    ).rejects.toThrow(/another config/);
    expect(calls).toHaveLength(0);
  });
});
