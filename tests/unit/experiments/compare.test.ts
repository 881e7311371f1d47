// Run comparison on two synthetic run folders whose numbers are computed by hand (fixtures.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../cli/main.ts';
import { loadRunDirs, runCompareCommand } from '../../../cli/commands/compare.ts';
import { compareRuns, normalisedArea } from '../../../src/experiments/compare.ts';
import { comparisonCurves } from '../../../src/experiments/curves.ts';
import { escapeXml, renderComparisonSvg } from '../../../src/experiments/svg-plot.ts';
import { writeTwoRuns } from './fixtures.ts';
import { parseXml } from './xml.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tabzero-compare-'));
  await writeTwoRuns(root);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dirs = () => [path.join(root, 'six'), path.join(root, 'two')];

describe('compareRuns', () => {
  it('normalised area: trapezoids over the x span', () => {
    expect(normalisedArea([])).toBeNull();
    expect(normalisedArea([[5, 0.7]])).toBe(0.7);
    expect(
      normalisedArea([
        [1, 0.2],
        [2, 0.4],
        [3, 0.6],
      ]),
    ).toBeCloseTo(0.4, 12);
    expect(
      normalisedArea([
        [10, 0.2],
        [30, 0.4],
        [60, 0.6],
      ]),
    ).toBeCloseTo(21 / 50, 12);
  });

  it('summarises each run with hand-computed numbers (x = steps)', async () => {
    const c = compareRuns(await loadRunDirs(dirs()), 'steps');
    const [six, two] = c.runs;
    expect(six).toMatchObject({
      label: 'six',
      step: 3,
      totalSteps: 3,
      status: 'finished',
      sequencesGenerated: 60,
    });
    expect(six.solverAuc).toBeCloseTo(0.4, 12);
    expect(six.meanValidRate).toBeCloseTo(0.75, 12);
    expect(six.evals).toEqual([
      {
        name: 'arith_eval_200:raw',
        final: { step: 3, accuracy: 0.25 },
        best: { step: 2, accuracy: 0.3 },
        base: 0.1,
      },
    ]);
    // Step 1 of "two": mean of 0.1, 0.3, 0.5 = 0.3; step 2: 0.6.
    expect(two.solverAuc).toBeCloseTo(0.45, 12);
    expect(two.meanValidRate).toBeCloseTo(0.3, 12);
    expect(two.sequencesGenerated).toBe(80);
    expect(two.evals[0]).toMatchObject({
      final: { step: 2, accuracy: 0.35 },
      best: { step: 2, accuracy: 0.35 },
    });
    expect(c.configDiff).toEqual([
      { key: 'seed', values: [1, 9] },
      { key: 'totalSteps', values: [3, 2] },
      { key: 'baselines', values: [6, 2] },
    ]);
  });

  it('aligns by sequences generated: positions are cumulative sequence counts', async () => {
    const runs = await loadRunDirs(dirs());
    const c = compareRuns(runs, 'sequences');
    expect(c.runs[0].solverAuc).toBeCloseTo(21 / 50, 12);
    // "two": points (40, 0.3), (80, 0.6) → 0.45 either way.
    expect(c.runs[1].solverAuc).toBeCloseTo(0.45, 12);
    const evalCurve = comparisonCurves(runs, 'sequences').find((s) => s.id === 'eval-arith_eval_200-raw')!;
    expect(evalCurve.runs[0].points).toEqual([
      [0, 0.1],
      [30, 0.3],
      [60, 0.25],
    ]);
    expect(evalCurve.runs[1].points).toEqual([
      [0, 0.1],
      [80, 0.35],
    ]);
  });
});

describe('SVG chart', () => {
  it('is well-formed XML with one path per run per curve', async () => {
    const runs = await loadRunDirs(dirs());
    const sets = comparisonCurves(runs, 'steps');
    expect(sets.map((s) => s.id)).toEqual([
      'solver-accuracy-abd',
      'solver-accuracy-ded',
      'solver-accuracy-ind',
      'proposer-reward',
      'valid-rate',
      'eval-arith_eval_200-raw',
    ]);
    const svg = renderComparisonSvg(sets, { labels: ['six & <co>', 'two'], xLabel: 'step' });
    const els = parseXml(svg);
    expect(els[0].name).toBe('svg');
    const panels = els.filter((e) => e.name === 'g' && e.attrs.class === 'panel');
    expect(panels.map((p) => p.attrs['data-curve'])).toEqual(sets.map((s) => s.id));
    for (const p of panels) {
      const paths = els.filter((e) => e.name === 'path' && e.parent === p);
      expect(paths.map((e) => e.attrs['data-run'])).toEqual(['0', '1']);
      for (const e of paths) expect(e.attrs.d).toMatch(/^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)*( h0\.01)?$/);
    }
    // Run 0's solver curve has three points, run 1's two.
    const solver = els.filter((e) => e.name === 'path' && e.parent === panels[0]);
    expect(solver[0].attrs.d.split('L')).toHaveLength(3);
    expect(solver[1].attrs.d.split('L')).toHaveLength(2);
    // One x range for the figure: step 2 sits at the same place in the solver panel (column 0) and in
    // the eval panel (column 1, 420 px to the right).
    const xs = (d: string) => [...d.matchAll(/[ML]([\d.]+) /g)].map((m) => Number(m[1]));
    const evalPaths = els.filter((e) => e.name === 'path' && e.parent === panels[5]);
    expect(xs(evalPaths[0].attrs.d)[1] - 420).toBeCloseTo(xs(solver[0].attrs.d)[1], 6);
    expect(svg).toContain('six &amp; &lt;co&gt;');
    expect(escapeXml(`a"b'c`)).toBe('a&quot;b&apos;c');
  });

  it('the XML check itself rejects broken markup', () => {
    expect(() => parseXml('<svg><g></svg>')).toThrow();
    expect(() => parseXml('<svg a="1 & 2"/>')).toThrow();
    expect(() => parseXml('<svg><text>a < b</text></svg>')).toThrow();
    expect(parseXml('<svg><g a="x"/></svg>')).toHaveLength(2);
  });
});

describe('tabzero compare', () => {
  it('prints the run table and config differences and writes the SVG', async () => {
    let out = '';
    const plot = path.join(root, 'chart.svg');
    await runCompareCommand({ runs: dirs(), x: 'steps', plot, log: (t) => (out += t) });
    const lines = out.split('\n');
    const row = (label: string) => lines.find((l) => l.startsWith(label + ' '))!;
    expect(lines[0]).toMatch(
      /^run\s+steps\s+status\s+arith_eval_200:raw final\s+arith_eval_200:raw best \(step\)/,
    );
    expect(row('six').split(/\s{2,}/)).toEqual([
      'six',
      '3/3',
      'finished',
      '25.0%',
      '30.0% (2)',
      '40.0%',
      '75.0%',
      '60',
    ]);
    expect(row('two').split(/\s{2,}/)).toEqual([
      'two',
      '2/2',
      'finished',
      '35.0%',
      '35.0% (2)',
      '45.0%',
      '30.0%',
      '80',
    ]);
    expect(out).toContain('Config differences:');
    expect(row('baselines').split(/\s+/)).toEqual(['baselines', '6', '2']);
    expect(parseXml(await readFile(plot, 'utf8'))[0].name).toBe('svg');
  });

  it('refuses fewer than two runs, a PNG plot, a folder without a run, a bad axis', async () => {
    const err: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['compare', dirs()[0]])).not.toBe(0);
      expect(await main(['compare', ...dirs(), '--plot', path.join(root, 'x.png')])).not.toBe(0);
      expect(await main(['compare', dirs()[0], root])).not.toBe(0);
      expect(await main(['compare', ...dirs(), '--x', 'minutes'])).not.toBe(0);
    } finally {
      process.stderr.write = write;
    }
    expect(err.join('')).toMatch(/at least two run folders/);
    expect(err.join('')).toMatch(/PNG/);
    expect(err.join('')).toMatch(/not a run folder/);
  });
});
