// Proposer parsing and validity (spec 4.3, 4.5), solver answer rules, prompt rendering (spec 4.4).
import { describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../../../src/config.ts';
import { renderPrompt, solverPromptFor, inductionExampleProgram } from '../../../src/selfplay/prompts.ts';
import { parseAbductionAnswer, parseDeductionAnswer } from '../../../src/selfplay/solver.ts';
import type { TaskEntry } from '../../../src/selfplay/types.ts';
import { checkSolverResponses, validateProposals } from '../../../src/selfplay/validation.ts';
import { InlineVerifier } from '../../../src/selfplay/verifier.ts';
import { ChatMLTestTokenizer } from './helpers.ts';

const config = resolveConfig('browser', { inductionInputs: 4 });
const verifier = new InlineVerifier(config);
const ans = (body: string) => `ok</think>\n<answer>\n${body}\n</answer>`;

async function judge(type: 'ded' | 'abd', body: string, c: RunConfig = config) {
  return (await validateProposals([{ type, response: ans(body) }], new InlineVerifier(c), c))[0];
}

const source: TaskEntry = {
  id: 'ded-1',
  type: 'ded',
  program: 'f(x) = x * 2 + 1',
  arity: 1,
  inputs: [[3]],
  outputs: [7],
  closed: ['3 * 2 + 1'],
  binaryOps: 2,
  step: 0,
  seed: true,
  origin: 'model',
};

async function judgeInd(body: string, c: RunConfig = config, src: TaskEntry = source) {
  return (
    await validateProposals([{ type: 'ind', response: ans(body), source: src }], new InlineVerifier(c), c)
  )[0];
}

describe('deduction/abduction proposals', () => {
  it('accepts header, arrow and single-variable arrow lines, first matching lines win', async () => {
    const a = await judge('ded', 'Here it is:\nf(x, y) = (x*3+y) % 5\ninput: 4, -9\ninput: 1, 1');
    expect(a).toMatchObject({
      valid: true,
      task: {
        program: 'f(x, y) = (x * 3 + y) % 5',
        inputs: [[4, -9]],
        outputs: [3],
        closed: ['(4 * 3 + (-9)) % 5'],
      },
    });
    expect(await judge('abd', '(x) => x - 3\ninput = 10')).toMatchObject({
      valid: true,
      task: { outputs: [7] },
    });
    expect(await judge('abd', 'x => x // 2\nInput: -7')).toMatchObject({
      valid: true,
      task: { outputs: [-4] },
    });
  });
  it('names the reason of every invalid proposal', async () => {
    const cases: [string, string][] = [
      ['', 'no_answer'],
      ['x + 1\ninput: 3', 'no_program'],
      ['f(x) = x + 1', 'no_input'],
      ['f(x) = x + 1\ninput: three', 'bad_input'],
      ['f(x) = x / 2\ninput: 3', 'syntax'],
      ['f(x) = Math.abs(x)\ninput: 3', 'unsafe'],
      ['f(x) = x + 1\ninput: 3, 4', 'arity'],
      ['f(x) = x + 1\ninput: 1001', 'input_range'],
      ['f(x) = x * 9999\ninput: 1000', 'output_range'],
      ['f(x) = 100 // (x - 3)\ninput: 3', 'div0'],
      ['f(x) = 7\ninput: 3', 'constant_program'],
      ['f(x, y) = (x * 3 + y) % 7\ninput: 4, 9', 'example_copy'],
    ];
    for (const [body, reason] of cases) {
      expect({ body, r: await judge('ded', body) }).toMatchObject({ body, r: { valid: false, reason } });
    }
  });
  it('DEVIATION switches turn the extra checks off', async () => {
    const parity = resolveConfig('azr-parity');
    expect(await judge('ded', 'f(x) = 7\ninput: 3', parity)).toMatchObject({ valid: true });
    expect(await judge('ded', 'f(x, y) = (x * 3 + y) % 7\ninput: 4, 9', parity)).toMatchObject({
      valid: true,
    });
  });
  it('does not require the <think> format for validity', async () => {
    const r = await validateProposals(
      [{ type: 'ded', response: '<answer>f(x) = x + 2\ninput: 1</answer>' }],
      verifier,
      config,
    );
    expect(r[0]).toMatchObject({ valid: true });
  });
});

describe('induction proposals', () => {
  it('keeps the last N inputs and the first message line', async () => {
    const r = await judgeInd(
      'input: 9\ninput: 1\ninput: 2\ninput: 3\ninput: 4\nmessage: doubles and adds\nhint: other',
    );
    expect(r).toMatchObject({
      valid: true,
      task: { inputs: [[1], [2], [3], [4]], outputs: [3, 5, 7, 9], message: 'doubles and adds' },
    });
  });
  it('rejects too few inputs, missing message, duplicates and hint leaks', async () => {
    expect(await judgeInd('input: 1\ninput: 2\ninput: 3\nmessage: m')).toMatchObject({
      reason: 'too_few_inputs',
    });
    expect(await judgeInd('input: 1\ninput: 2\ninput: 3\ninput: 4')).toMatchObject({ reason: 'no_message' });
    expect(await judgeInd('input: 1\ninput: 1\ninput: 3\ninput: 4\nmessage: m')).toMatchObject({
      reason: 'duplicate_inputs',
    });
    expect(await judgeInd('input: 1\ninput: 2\ninput: 3\ninput: 4\nmessage: it is x*2 + 1')).toMatchObject({
      reason: 'hint_leak',
    });
    const off = resolveConfig('azr-parity', { inductionInputs: 4 });
    expect(await judgeInd('input: 1\ninput: 1\ninput: 3\ninput: 4\nmessage: x * 2 + 1', off)).toMatchObject({
      valid: true,
    });
  });
  it('rejects an input that breaks the program', async () => {
    const src = { ...source, program: 'f(x) = 10 // x', closed: ['10 // 3'] };
    expect(await judgeInd('input: 1\ninput: 2\ninput: 0\ninput: 4\nmessage: m', config, src)).toMatchObject({
      reason: 'div0',
    });
  });
});

describe('solver answers (spec 4.5)', () => {
  it('deduction: strips labels and a trailing dot', () => {
    expect(parseDeductionAnswer('output: -12.')).toBe(-12n);
    expect(parseDeductionAnswer('f(3) = 7')).toBe(7n);
    expect(parseDeductionAnswer('= +5')).toBe(5n);
    expect(parseDeductionAnswer('answer: 5 or 6')).toBeNull();
  });
  it('abduction: strips variable labels and parentheses, needs exactly arity integers', () => {
    expect(parseAbductionAnswer('x = 3, y = -4', 2)).toEqual([3n, -4n]);
    expect(parseAbductionAnswer('(3, 4)', 2)).toEqual([3n, 4n]);
    expect(parseAbductionAnswer('3', 2)).toBeNull();
  });
  const abd: TaskEntry = { ...source, id: 'abd-1', type: 'abd' };
  const ind: TaskEntry = {
    ...source,
    id: 'ind-1',
    type: 'ind',
    inputs: [[1], [2], [3], [4]],
    outputs: [3, 5, 7, 9],
    closed: ['1', '2', '3', '4'],
    message: 'm',
  };
  it('checks correctness and format', async () => {
    const r = await checkSolverResponses(
      [
        { task: source, response: ans('7') },
        { task: source, response: ans('8') },
        { task: source, response: '<answer>7</answer>' },
        { task: abd, response: ans('3') },
        { task: abd, response: ans('x = 4') },
        { task: ind, response: ans('I think:\n(x) => 2*x + 1') },
        { task: ind, response: ans('f(x, y) = x\nx + x + 1') },
        { task: ind, response: ans('f(x) = x + 2') },
        { task: ind, response: ans('') },
      ],
      verifier,
      config,
    );
    expect(r).toEqual([
      { fmt: true, correct: true },
      { fmt: true, correct: false },
      { fmt: false, correct: true },
      { fmt: true, correct: true },
      { fmt: true, correct: false },
      { fmt: true, correct: true },
      { fmt: true, correct: true },
      { fmt: true, correct: false },
      { fmt: false, correct: false },
    ]);
  });
});

describe('prompt rendering (spec 4.4)', () => {
  it('renders through the chat template with the <think> prefill', () => {
    const text = renderPrompt(new ChatMLTestTokenizer(), 'USER');
    expect(text.startsWith('<|im_start|>system\nYou are a helpful assistant. You first think')).toBe(true);
    expect(
      text.endsWith('<|im_end|>\n<|im_start|>user\nUSER<|im_end|>\n<|im_start|>assistant\n<think>'),
    ).toBe(true);
  });
  it('deduction view switches between expression and program + call', () => {
    const t: TaskEntry = {
      ...source,
      program: 'f(x, y) = (x * 3 + y) % 7',
      arity: 2,
      inputs: [[4, -9]],
      closed: ['(4 * 3 + (-9)) % 7'],
    };
    expect(solverPromptFor(t, 'expression')).toContain('\nExpression: (4 * 3 + (-9)) % 7\n');
    expect(solverPromptFor(t, 'program')).toContain(
      '\nFunction: f(x, y) = (x * 3 + y) % 7\nCompute f(4, -9).\n',
    );
  });
  it('never offers the task itself as the induction example', () => {
    expect(inductionExampleProgram('f(x) = x * 2 + 1', 1)).toBe('x + 3');
    expect(inductionExampleProgram('f(x, y) = x * 2 + y', 2)).toBe('x + y * 3');
    expect(inductionExampleProgram('f(x) = x', 1)).toBe('x * 2 + 1');
  });
});
