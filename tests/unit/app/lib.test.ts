import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.ts';
import type { EvalRecord, RunSummary } from '../../../src/protocol.ts';
import type { GenerationRecord, GroupMetrics, StepMetrics } from '../../../src/selfplay/types.ts';
import { toUserError, withTimeout, TimeoutError } from '../../../src/app/lib/errors.ts';
import { formatBytes, formatDuration, formatNumber, formatPercent } from '../../../src/app/lib/format.ts';
import { mergeEval, mergeStep, modelChoiceForRun } from '../../../src/app/lib/history.ts';
import { runEtaSeconds } from '../../../src/app/lib/eta.ts';
import { decodeShare, diffFromPreset, encodeShare } from '../../../src/app/lib/share.ts';
import { highlightSegments, toSampleFilter, verdictOf, EMPTY_FILTER } from '../../../src/app/lib/samples.ts';
import {
  STEP_CHARTS,
  chartsWithData,
  appendColumns,
  evalChart,
  histogram01,
  stepWallMs,
  type StepPoint,
} from '../../../src/app/lib/series.ts';
import { compareEvals, evalLabel } from '../../../src/app/lib/evals.ts';
import { knobsByGroup, parseNumber, parseEnum } from '../../../src/app/lib/knobs.ts';
import { CONFIG_SCHEMA } from '../../../src/config.ts';
import { checkModelFiles } from '../../../src/app/lib/files.ts';
import { wantsCompat } from '../../../src/app/lib/page.ts';

function group(over: Partial<GroupMetrics>): GroupMetrics {
  return {
    count: 4,
    meanReward: 0,
    validRate: null,
    formatRate: 1,
    solveRate: null,
    advMean: 0,
    advStd: 1,
    zeroVariance: false,
    ...over,
  };
}

function metrics(step: number, over: Partial<StepMetrics> = {}): StepMetrics {
  return {
    step,
    mode: 'azr',
    groups: {
      'ded:solve': group({ solveRate: 0.5, meanReward: 0.5 }),
      'abd:propose': group({ validRate: 0.75, solveRate: 0.25, meanReward: 0.3, formatRate: 0.5 }),
    },
    zeroVarianceFraction: 0.5,
    bufferSizes: { abd: 4, ded: 5, ind: 6 },
    validProposals: 3,
    insertedProposals: 2,
    distinctPrograms: 3,
    meanBinaryOps: 2.5,
    meanAbsOutput: 10,
    evalContamination: 0,
    generatedSequences: 24,
    generatedTokens: 480,
    estimationRollouts: 6,
    trainedSequences: 12,
    trainedTokens: 300,
    notZeroData: true,
    policy: { loss: 0.1, gradNorm: 2, clipFactor: 1, tokens: 300, entropy: NaN, timeMs: {} },
    timeMs: { proposing: 1000, solving: 500 },
    ...over,
  };
}

function evalRecord(step: number, items: [string, string | null, boolean][], tier = 't1'): EvalRecord {
  const correct = items.filter((i) => i[2]).length;
  return {
    runId: 'r',
    step,
    set: 'arith_eval_200',
    mode: 'raw',
    limit: items.length,
    at: '2026-01-01T00:00:00Z',
    report: {
      mode: 'raw',
      n: items.length,
      correct,
      accuracy: correct / items.length,
      formatFailureRate: 0,
      perTier: { [tier]: { n: items.length, correct, accuracy: correct / items.length } },
      perOp: {},
      items: items.map(([id, prediction, ok]) => ({
        id,
        completion: String(prediction),
        prediction,
        correct: ok,
        formatOk: true,
      })),
    },
  };
}

describe('format', () => {
  it('prints sizes, durations, percents and numbers for people', () => {
    expect(formatBytes(988_000_000)).toBe('988 MB');
    expect(formatBytes(1_530_000)).toBe('1.53 MB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatDuration(45.4)).toBe('45 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(7620)).toBe('2 h 07 min');
    expect(formatDuration(undefined)).toBe('—');
    expect(formatPercent(0.256, 1)).toBe('25.6%');
    expect(formatPercent(null)).toBe('—');
    expect(formatNumber(0.5)).toBe('0.5');
    expect(formatNumber(NaN)).toBe('—');
    expect(formatNumber(1e-5)).toBe('1.00e-5');
  });
});

describe('errors', () => {
  it('keeps a UserError, explains a missing worker method, and names known causes', () => {
    const ue = { title: 'Quota full', message: 'm', action: 'a' };
    expect(toUserError(ue, 'X')).toEqual(ue);
    const missing = toUserError(
      new TypeError("Cannot read properties of undefined (reading 'apply')"),
      'Loading the model',
    );
    expect(missing.title).toBe('Loading the model is not available yet');
    expect(toUserError(new Error('QuotaExceededError: the quota has been exceeded'), 'Saving').title).toBe(
      'Browser storage is full',
    );
    expect(toUserError(new Error('Failed to fetch'), 'Downloading').action).toMatch(/local files/);
    const other = toUserError(new Error('boom'), 'Exporting');
    expect(other.title).toBe('Exporting failed');
    expect(other.message).toBe('boom');
  });

  it('times out a call that never answers', async () => {
    await expect(withTimeout(new Promise(() => {}), 20, 'Listing runs')).rejects.toBeInstanceOf(TimeoutError);
    await expect(withTimeout(Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
  });
});

describe('history', () => {
  it('appends new steps and replaces a step that arrives again after a rollback', () => {
    let pts: StepPoint[] = [1, 2, 3].map((s) => ({ metrics: metrics(s) }));
    pts = mergeStep(pts, { metrics: metrics(4), wallMs: 10 });
    expect(pts.map((p) => p.metrics.step)).toEqual([1, 2, 3, 4]);
    pts = mergeStep(pts, { metrics: metrics(3), wallMs: 20 });
    expect(pts.map((p) => p.metrics.step)).toEqual([1, 2, 3]);
    expect(pts[2].wallMs).toBe(20);
  });

  it('replaces an eval of the same step, set and mode, keeping step order', () => {
    const a = evalRecord(2, [['a', '1', true]]);
    const b = evalRecord(1, [['a', '2', false]]);
    const a2 = evalRecord(2, [['a', '3', false]]);
    const merged = mergeEval(mergeEval(mergeEval([], a), b), a2);
    expect(merged.map((r) => [r.step, r.report.correct])).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });

  it('keeps an ONNX Runtime eval beside the engine eval of the same weights, and labels it', () => {
    const engine = evalRecord(2, [['a', '1', true]]);
    const onnx = { ...evalRecord(2, [['a', '1', true]]), backend: 'onnx' as const };
    const merged = mergeEval(mergeEval([], engine), onnx);
    expect(merged.map((r) => r.backend ?? 'engine')).toEqual(['engine', 'onnx']);
    expect(mergeEval(merged, { ...onnx }).length).toBe(2);
    expect(evalLabel(onnx)).toMatch(/^step 2 · ONNX Runtime · /);
    expect(evalLabel(engine)).not.toMatch(/ONNX/);
  });

  it("finds how to load a run's model", () => {
    const run = (
      id: string,
      status: RunSummary['status'],
      updatedAt: string,
      repo = 'tiny-seed-3',
    ): RunSummary => ({
      id,
      name: id,
      status,
      step: 1,
      totalSteps: 2,
      preset: 'smoke',
      config: resolveConfig('smoke'),
      model: { repo, revision: 'main', sha256: 'x' },
      createdAt: updatedAt,
      updatedAt,
      notZeroData: true,
      bytesUsed: 0,
    });
    const runs = [
      run('a', 'finished', '2026-01-03'),
      run('b', 'paused', '2026-01-02'),
      run('c', 'running', '2026-01-01'),
    ];
    expect(modelChoiceForRun(runs[1])).toEqual({ kind: 'tiny', seed: 3 });
    expect(
      modelChoiceForRun(run('d', 'paused', 'x', 'Qwen/Qwen2-0.5B-Instruct'), 'http://10.0.0.2:8080'),
    ).toEqual({
      kind: 'hub',
      repo: 'Qwen/Qwen2-0.5B-Instruct',
      revision: 'main',
      endpoint: 'http://10.0.0.2:8080',
    });
    expect(modelChoiceForRun(run('e', 'paused', 'x', 'local:my-model'))).toBeNull();
    expect(modelChoiceForRun(run('t', 'paused', 'x', 'local/tiny-seed-0'))).toEqual({
      kind: 'tiny',
      seed: 0,
    });
    expect(modelChoiceForRun(run('f', 'paused', 'x', 'local/my-folder'))).toBeNull();
  });
});

describe('eta', () => {
  it('uses the recent step times', () => {
    expect(runEtaSeconds([], 0, 10)).toBeNull();
    expect(runEtaSeconds([100_000, 1000, 3000], 3, 5, 2)).toBe(4);
  });
});

describe('share link', () => {
  it('round-trips the knobs that differ from the preset', () => {
    const config = resolveConfig('workshop', {
      batchPerGroup: 2,
      loraTargets: ['q_proj', 'v_proj'],
      dedupBuffer: false,
    });
    const hash = encodeShare('workshop', config);
    expect(hash).toContain('preset=workshop');
    expect(hash).not.toContain('totalSteps');
    const back = decodeShare(hash)!;
    expect(back.problems).toEqual([]);
    expect(resolveConfig(back.preset, back.overrides)).toEqual(config);
    expect(diffFromPreset('workshop', config)).toEqual({
      batchPerGroup: 2,
      loraTargets: ['q_proj', 'v_proj'],
      dedupBuffer: false,
    });
  });

  it('leaves your own eval files out of the link (contents stay in this browser)', () => {
    const items = [
      {
        id: 'a',
        prompt: 'Calculate: 1 + 1 = ',
        answer: '2',
        tier: 'all',
        op: 'unknown',
        expression: '1 + 1',
      },
    ];
    const config = resolveConfig('workshop', {
      batchPerGroup: 2,
      evalFiles: [{ name: 'mine.jsonl', sha256: 'a'.repeat(64), items }],
    });
    const hash = encodeShare('workshop', config);
    expect(hash).not.toContain('evalFiles');
    expect(decodeShare(hash)!.problems).toEqual([]);
  });

  it('ignores bad entries with a reason, and hashes without a preset', () => {
    expect(decodeShare('#foo=1')).toBeNull();
    const bad = decodeShare('#preset=smoke&batchPerGroup=0&nope=1&temperature=0.5')!;
    expect(bad.overrides).toEqual({ temperature: 0.5 });
    expect(bad.problems).toHaveLength(2);
    const cross = decodeShare('#preset=smoke&inductionInputs=5')!;
    expect(cross.overrides).toEqual({});
    expect(cross.problems.join(' ')).toMatch(/even/);
  });
});

describe('samples', () => {
  it('splits think and answer for highlighting', () => {
    expect(highlightSegments('a<think>b</think> <answer>7</answer>')).toEqual([
      { kind: 'text', text: 'a' },
      { kind: 'tag', text: '<think>' },
      { kind: 'think', text: 'b' },
      { kind: 'tag', text: '</think>' },
      { kind: 'text', text: ' ' },
      { kind: 'tag', text: '<answer>' },
      { kind: 'answer', text: '7' },
      { kind: 'tag', text: '</answer>' },
    ]);
    expect(highlightSegments('<answer>unclosed')).toEqual([
      { kind: 'tag', text: '<answer>' },
      { kind: 'answer', text: 'unclosed' },
    ]);
  });

  it("turns the filter form into a SampleFilter and names a generation's verdict", () => {
    const f = toSampleFilter(
      { ...EMPTY_FILTER, step: '3', role: 'solve', minReward: '0.5', valid: '' },
      50,
      50,
    );
    expect(f).toEqual({ offset: 50, limit: 50, step: 3, role: 'solve', minReward: 0.5 });
    const r: GenerationRecord = {
      step: 3,
      kind: 'solve',
      type: 'ded',
      role: 'solve',
      prompt: '',
      response: '',
      tokens: 1,
      stopReason: 'eos',
      fmt: true,
      correct: true,
      reward: 1,
      trained: true,
    };
    expect(verdictOf(r)).toEqual({ tone: 'good', text: 'correct' });
    expect(verdictOf({ ...r, fmt: false }).text).toBe('format error');
    expect(
      verdictOf({ ...r, role: 'propose', kind: 'propose', valid: false, invalidReason: 'constant' }).text,
    ).toBe('invalid: constant');
  });
});

describe('chart series', () => {
  it('maps step metrics to columns and appends without rebuilding', () => {
    const spec = STEP_CHARTS.find((c) => c.id === 'solver-accuracy')!;
    const cols: (number | null)[][] = [];
    const rows = [{ metrics: metrics(1) }, { metrics: metrics(2) }];
    appendColumns(spec, cols, rows, 0);
    appendColumns(spec, cols, [...rows, { metrics: metrics(3) }], 2);
    expect(cols[0]).toEqual([1, 2, 3]);
    // abd, ded, ind: only the deduction solver group exists.
    expect(cols[1]).toEqual([null, null, null]);
    expect(cols[2]).toEqual([0.5, 0.5, 0.5]);
    const speed = STEP_CHARTS.find((c) => c.id === 'speed')!;
    // 480 generated tokens over the phases' 1.5 s, or over a measured 3 s wall time.
    expect(speed.series[0].value({ metrics: metrics(1) })).toBe(320);
    expect(speed.series[0].value({ metrics: metrics(1), wallMs: 3000 })).toBe(160);
    expect(stepWallMs({ metrics: metrics(1, { timeMs: {} }) })).toBeNull();
  });

  it('the KL chart appears only for runs whose steps report a KL (klBeta > 0)', () => {
    const plain = [{ metrics: metrics(1) }];
    expect(chartsWithData(STEP_CHARTS, plain).map((c) => c.id)).not.toContain('kl');
    const m = metrics(2);
    const withKl = [...plain, { metrics: { ...m, policy: { ...m.policy, kl: 0.0125 } } }];
    expect(chartsWithData(STEP_CHARTS, withKl).map((c) => c.id)).toContain('kl');
    expect(STEP_CHARTS.find((c) => c.id === 'kl')!.series[0].value(withKl[1])).toBe(0.0125);
    // Every chart that is not optional stays, with or without data.
    expect(chartsWithData(STEP_CHARTS, []).length).toBe(STEP_CHARTS.length - 1);
  });

  it('every chart yields a finite number or null for every series', () => {
    for (const spec of STEP_CHARTS) {
      for (const s of spec.series) {
        const v = s.value({ metrics: metrics(1) });
        expect(v === null || Number.isFinite(v), `${spec.id}/${s.label}`).toBe(true);
      }
    }
  });

  it('builds the eval chart from the tiers present and bins solve rates', () => {
    const spec = evalChart([
      evalRecord(1, [['a', '1', true]], 't1'),
      evalRecord(2, [['a', '1', true]], 't2'),
    ]);
    expect(spec.series.map((s) => s.label)).toEqual(['overall', 't1', 't2']);
    expect(histogram01([0, 0.05, 0.5, 1, 1, 2, NaN], 10)).toEqual([2, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
  });
});

describe('eval comparison', () => {
  it('lists fixed, broken and changed answers and per-tier deltas', () => {
    const a = evalRecord(0, [
      ['x', '1', false],
      ['y', '2', true],
      ['z', '3', false],
      ['w', '4', true],
    ]);
    const b = evalRecord(5, [
      ['x', '9', true],
      ['y', '5', false],
      ['z', '7', false],
      ['w', '4', true],
    ]);
    const c = compareEvals(a, b);
    expect(c.changed.map((i) => [i.id, i.change])).toEqual([
      ['x', 'fixed'],
      ['y', 'broken'],
      ['z', 'changed'],
    ]);
    expect(c.overall.delta).toBe(0);
    expect(c.perTier[0].delta).toBe(0);
    expect(c.warning).toBeNull();
    expect(compareEvals(a, { ...b, mode: 'chat' }).changed).toEqual([]);
  });
});

describe('knob form', () => {
  it('covers every knob of the schema once, and parses what people type', () => {
    const keys = knobsByGroup().flatMap((g) => g.knobs.map((k) => k.key));
    expect(keys.sort()).toEqual(Object.keys(CONFIG_SCHEMA).sort());
    expect(parseNumber(CONFIG_SCHEMA.batchPerGroup, '4')).toEqual({ ok: true, value: 4 });
    expect(parseNumber(CONFIG_SCHEMA.batchPerGroup, '4.5').ok).toBe(false);
    expect(parseNumber(CONFIG_SCHEMA.batchPerGroup, '0').ok).toBe(false);
    expect(parseNumber(CONFIG_SCHEMA.temperature, '0.7')).toEqual({ ok: true, value: 0.7 });
    expect(parseNumber(CONFIG_SCHEMA.temperature, '')).toMatchObject({ ok: false });
    expect(parseEnum(CONFIG_SCHEMA.baselines, '2')).toBe(2);
    expect(parseEnum(CONFIG_SCHEMA.advNorm, 'token')).toBe('token');
  });
});

describe('local model files', () => {
  it('names what a dropped folder lacks', () => {
    const f = (name: string) => new File(['x'], name);
    expect(checkModelFiles([f('config.json'), f('tokenizer.json'), f('model.safetensors')])).toEqual({
      ok: true,
    });
    const bad = checkModelFiles([f('config.json')]);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problem).toMatch(/tokenizer\.json, model\.safetensors/);
  });
});

describe('page', () => {
  it('reads the compat switch from the query', () => {
    expect(wantsCompat('?compat=1')).toBe(true);
    expect(wantsCompat('?x=1&compat=1')).toBe(true);
    expect(wantsCompat('?compat=0')).toBe(false);
    expect(wantsCompat('')).toBe(false);
  });
});
