// Spec 6.6 and 5.3: the eval sets regenerate to their pinned SHA-256 and match the committed fixtures;
// the GRPO training set excludes every eval prompt; scoring modes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config.ts';
import {
  evalCanonicalExpressions,
  generateArithEval200,
  generateArithExprEval100,
  generateEvalSetJsonl,
  sha256Hex,
  toEvalItems,
} from '../../../src/selfplay/evalsets.ts';
import { evaluate, scoreCompletion } from '../../../src/selfplay/evaluate.ts';
import { generateGrpoTrainSet, grpoReward } from '../../../src/selfplay/grpo.ts';
import { ChatMLTestTokenizer, ScriptedPolicy } from './helpers.ts';

const ARITH_EVAL_200_SHA256 = '867f1c3eac916d731507f05689f816aec7acade1b3d9b1cd24e19ec4302d898e';
const ARITH_EXPR_EVAL_100_SHA256 = '0f1cf565162bcf6b44d4eaaeed7b58bcb8d81ec8bd9a6e022ea5134ce4d60496';
const fixture = (name: string) =>
  readFileSync(new URL(`../../fixtures/eval/${name}.jsonl`, import.meta.url), 'utf8');

describe('arith_eval_200 (spec 5.2)', () => {
  it('regenerates to the golden SHA-256 and equals the committed fixture', async () => {
    const text = generateEvalSetJsonl('arith_eval_200');
    expect(await sha256Hex(text)).toBe(ARITH_EVAL_200_SHA256);
    expect(text).toBe(fixture('arith_eval_200'));
  });
  it('has the golden counts, first rows and division rows', () => {
    const rows = generateArithEval200();
    const by = (f: (r: (typeof rows)[number]) => string) =>
      rows.reduce<Record<string, number>>((m, r) => ((m[f(r)] = (m[f(r)] ?? 0) + 1), m), {});
    expect(by((r) => r.difficulty)).toEqual({ very_easy: 30, easy: 40, medium: 50, hard: 40, very_hard: 40 });
    expect(by((r) => r.metadata.operation)).toEqual({ '+': 75, '-': 58, '*': 57, '/': 10 });
    expect(new Set(rows.map((r) => r.prompt)).size).toBe(200);
    expect(rows.slice(0, 3).map((r) => r.prompt)).toEqual([
      'Calculate: 70 + 56 = ',
      'Calculate: 31 + 63 = ',
      'Calculate: 5 + 4 = ',
    ]);
    const divs = rows.filter((r) => r.metadata.operation === '/').slice(0, 3);
    expect(divs.map((r) => `${r.metadata.a} / ${r.metadata.b} = ${r.answer}`)).toEqual([
      '48 / 12 = 4',
      '93 / 3 = 31',
      '84 / 28 = 3',
    ]);
  });
});

describe('arith_expr_eval_100 (spec 5.3)', () => {
  it('regenerates to its pinned SHA-256 and equals the committed fixture', async () => {
    const text = generateEvalSetJsonl('arith_expr_eval_100');
    expect(await sha256Hex(text)).toBe(ARITH_EXPR_EVAL_100_SHA256);
    expect(text).toBe(fixture('arith_expr_eval_100'));
  });
  it('has five tiers of 20, unique prompts, and negative floor results', () => {
    const rows = generateArithExprEval100();
    const tiers = rows.reduce<Record<string, number>>(
      (m, r) => ((m[r.difficulty] = (m[r.difficulty] ?? 0) + 1), m),
      {},
    );
    expect(Object.values(tiers)).toEqual([20, 20, 20, 20, 20]);
    expect(new Set(rows.map((r) => r.prompt)).size).toBe(100);
    expect(rows.filter((r) => r.difficulty === 'negative_floor').every((r) => r.prompt.includes('('))).toBe(
      true,
    );
    expect(rows.find((r) => r.prompt === 'Calculate: (11 - 27) // 7 = ')?.answer).toBe('-3');
  });
});

describe('GRPO training set (spec 4.11)', () => {
  it('is deterministic, excludes eval prompts, and survives the exhausted very_easy tier', () => {
    const a = generateGrpoTrainSet(2000, 1);
    expect(a).toHaveLength(2000);
    expect(generateGrpoTrainSet(2000, 1)).toEqual(a);
    const evalPrompts = new Set(generateArithEval200().map((r) => r.prompt));
    expect(a.some((x) => evalPrompts.has(x.prompt))).toBe(false);
    expect(new Set(a.map((x) => x.prompt)).size).toBe(2000);
    // very_easy has 36 possible prompts; those not in the eval set (any tier) are all it can give.
    let free = 0;
    for (let x = 0; x <= 5; x++)
      for (let y = 0; y <= 5; y++) if (!evalPrompts.has(`Calculate: ${x} + ${y} = `)) free++;
    expect(free).toBeLessThan(10);
    expect(a.filter((x) => x.tier === 'very_easy').length).toBe(free);
  });
  it('rewards: raw first-integer, azr 1/−0.5/−1, shaped distance', () => {
    const item = {
      id: 'i',
      prompt: 'Calculate: 2 + 3 = ',
      answer: '5',
      tier: 't',
      op: '+',
      expression: '2 + 3',
    };
    const raw = resolveConfig('journal-grpo');
    expect(grpoReward(raw, item, ' 5 is it')).toMatchObject({ reward: 1, correct: true });
    expect(grpoReward(raw, item, 'five')).toMatchObject({ reward: 0, fmt: false });
    // The reward's "correct" is the eval's: the raw answer's own digits, so "05" is wrong in both.
    expect(grpoReward(raw, item, '05')).toMatchObject({ reward: 0, correct: false });
    expect(scoreCompletion(item, 'raw', '05').correct).toBe(false);
    const chat = resolveConfig('browser', { mode: 'grpo' });
    expect(grpoReward(chat, item, 'x</think><answer>5</answer>').reward).toBe(1);
    expect(grpoReward(chat, item, 'x</think><answer>6</answer>').reward).toBe(-0.5);
    expect(grpoReward(chat, item, '<answer>5</answer>').reward).toBe(-1);
    const shaped = resolveConfig('journal-grpo', { grpoReward: 'shaped' });
    expect(grpoReward(shaped, item, '4').reward).toBeCloseTo(0.4, 12);
  });
});

describe('scoring modes (spec 5.2)', () => {
  it('raw: first integer, exact string match; chat: format + answer body', () => {
    const item = toEvalItems('arith_eval_200')[0];
    expect(scoreCompletion(item, 'raw', ' 126\nCalculate')).toMatchObject({
      correct: true,
      prediction: '126',
    });
    expect(scoreCompletion(item, 'raw', 'The answer')).toMatchObject({ correct: false, formatOk: false });
    expect(scoreCompletion(item, 'chat', 'ok</think> <answer>126</answer>')).toMatchObject({ correct: true });
    expect(scoreCompletion(item, 'chat', '<answer>126</answer>')).toMatchObject({
      correct: false,
      formatOk: false,
    });
  });
  it('evaluate reports overall, per-tier, per-op and format failures with greedy decoding', async () => {
    const tokenizer = new ChatMLTestTokenizer();
    const items = toEvalItems('arith_eval_200');
    const answers = new Map(items.map((it) => [it.prompt, it.answer]));
    // Knows the additions only.
    const policy = new ScriptedPolicy(tokenizer, (p) =>
      p.includes(' + ') ? ` ${answers.get(p)}` : 'no idea',
    );
    const report = await evaluate(policy, tokenizer, items, 'raw', { limit: 40, maxNew: 16 });
    expect(policy.generateCalls[0].opts).toMatchObject({ temperature: 0, maxNew: 16 });
    expect(report.n).toBe(40);
    const plus = items.slice(0, 40).filter((it) => it.op === '+').length;
    expect(report.correct).toBe(plus);
    expect(report.perOp['+']).toEqual({ n: plus, correct: plus, accuracy: 1 });
    expect(report.formatFailureRate).toBeCloseTo((40 - plus) / 40, 12);
    expect(Object.values(report.perTier).reduce((a, t) => a + t.n, 0)).toBe(40);
    const chat = await evaluate(policy, tokenizer, items, 'chat', { limit: 5, maxNew: 256 });
    expect(policy.generateCalls[1].prompts[0]).toContain('Expression: 70 + 56');
    expect(policy.generateCalls[1].opts.stopStrings).toEqual(['</answer>']);
    expect(chat.accuracy).toBe(0);
  });
  it('eval expressions are canonical, with / shown as //', () => {
    const set = evalCanonicalExpressions('arith_eval_200');
    expect(set.has('48 // 12')).toBe(true);
    expect(set.has('70 + 56')).toBe(true);
  });
});
