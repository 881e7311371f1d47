// The run comparison behind the app's Compare view: Lab.compareRuns on real stored runs (the synthetic,
// hand-computed runs of the experiments tests) and the overlay of per-run points into chart rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configCell, overlayRows, overlaySpec, sharedXRange } from '../../../src/app/lib/compare.ts';
import type { CurveSet } from '../../../src/experiments/curves.ts';
import { RUN_COLORS } from '../../../src/experiments/svg-plot.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import { Lab } from '../../../src/trainer/lab.ts';
import type { LabPlatform } from '../../../src/trainer/types.ts';
import { writeTwoRuns } from '../experiments/fixtures.ts';

let root: string;
let lab: Lab;

const unused = (what: string) => () => {
  throw new Error(`${what} is not used by a comparison`);
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tabzero-compare-'));
  await writeTwoRuns(root);
  const platform: LabPlatform = {
    acquireDevice: unused('acquireDevice'),
    modelStore: unused('modelStore'),
    openModel: unused('openModel'),
    store: async () => new NodeRunStore(root),
    verifierFactory: unused('verifierFactory'),
    storageInfo: unused('storageInfo'),
    createTrainer: unused('createTrainer'),
  };
  lab = new Lab(platform);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('Lab.compareRuns', () => {
  it('compares two stored runs by step', async () => {
    const c = await lab.compareRuns(['six', 'two'], 'steps');
    expect(c.labels).toEqual(['six', 'two']);
    expect(c.xLabel).toBe('step');
    expect(c.comparison.runs.map((r) => r.sequencesGenerated)).toEqual([60, 80]);
    expect(c.comparison.configDiff.map((d) => d.key)).toEqual(
      expect.arrayContaining(['totalSteps', 'baselines', 'seed']),
    );
    const abd = c.curves.find((s) => s.id === 'solver-accuracy-abd')!;
    expect(abd.runs.map((r) => r.points)).toEqual([
      [
        [1, 0.2],
        [2, 0.4],
        [3, 0.6],
      ],
      [
        [1, 0.1],
        [2, 0.6],
      ],
    ]);
    expect(c.curves.map((s) => s.id)).toContain('eval-arith_eval_200-raw');
    // Plain data: it crosses the worker boundary by structured clone.
    expect(structuredClone(c)).toEqual(c);
  });

  it('aligns by sequences generated', async () => {
    const c = await lab.compareRuns(['six', 'two'], 'sequences');
    expect(c.xLabel).toBe('sequences generated');
    const valid = c.curves.find((s) => s.id === 'valid-rate')!;
    expect(valid.runs.map((r) => r.points.map((p) => p[0]))).toEqual([
      [10, 30, 60],
      [40, 80],
    ]);
  });

  it('needs two different runs', async () => {
    await expect(lab.compareRuns(['six'], 'steps')).rejects.toThrow(/two or more/);
    await expect(lab.compareRuns(['six', 'six'], 'steps')).rejects.toThrow(/two or more/);
  });
});

describe('overlay rows for the chart', () => {
  const set: CurveSet = {
    id: 'valid-rate',
    title: 'Valid',
    yRange: [0, 1],
    runs: [
      {
        label: 'a',
        points: [
          [1, 0.2],
          [3, 0.6],
        ],
      },
      {
        label: 'b',
        points: [
          [2, 0.5],
          [1, 0.1],
        ],
      },
    ],
  };

  it('puts every run on the union of x positions, null where a run has no point', () => {
    expect(overlayRows(set)).toEqual([
      { x: 1, values: [0.2, 0.1] },
      { x: 2, values: [null, 0.5] },
      { x: 3, values: [0.6, null] },
    ]);
  });

  it('gives one series per run in the run colours', () => {
    const spec = overlaySpec(set, ['a', 'b'], 'hint');
    expect(spec.id).toBe('compare-valid-rate');
    expect(spec.yRange).toEqual([0, 1]);
    expect(spec.series.map((s) => s.color)).toEqual([RUN_COLORS[0], RUN_COLORS[1]]);
    expect(spec.series[1].value({ x: 2, values: [null, 0.5] })).toBe(0.5);
  });

  it('shares one x range across the charts of a comparison', () => {
    const evals: CurveSet = { id: 'eval', title: 'Eval', runs: [{ label: 'a', points: [[0, 0.1]] }] };
    expect(sharedXRange([set, evals])).toEqual([0, 3]);
    expect(overlaySpec(set, ['a', 'b'], 'hint', [0, 3]).xRange).toEqual([0, 3]);
    expect(sharedXRange([{ ...evals, runs: [{ label: 'a', points: [] }] }])).toBeUndefined();
  });

  it('prints config values as cells', () => {
    expect(configCell('azr')).toBe('azr');
    expect(configCell(6)).toBe('6');
    expect(configCell([1, 2])).toBe('[1,2]');
    expect(configCell(undefined)).toBe('—');
  });
});
