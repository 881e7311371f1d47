// The workshop model's imitation curriculum and the workshop prompt family: every record's answer is
// the verifier's, no eval item is a deduction record, the draws are deterministic for a seed, and each of
// the six roles' prompts, rendered, fits its budget and parses back through the run's own parsers.
import { describe, expect, it } from 'vitest';
import { EVAL_SET_NAMES, resolveConfig } from '../../../src/config.ts';
import { Rng } from '../../../src/random.ts';
import { Curriculum, type CurriculumRecord } from '../../../src/selfplay/curriculum.ts';
import { evalCanonicalExpressions, toEvalItems } from '../../../src/selfplay/evalsets.ts';
import { validateProposals } from '../../../src/selfplay/validation.ts';
import { promptFamily } from '../../../src/selfplay/prompt-family.ts';
import {
  draftInductionProposal,
  draftTripletProposal,
  judgeProposal,
} from '../../../src/selfplay/proposals.ts';
import { checkSolverResponse } from '../../../src/selfplay/solver.ts';
import type { TaskEntry } from '../../../src/selfplay/types.ts';
import { InlineVerifier, wireLimits } from '../../../src/selfplay/verifier.ts';
import { runJob, toArithLimits } from '../../../src/selfplay/verifier-protocol.ts';
import { renderWorkshopPrompt, WORKSHOP_FORMAT_EXAMPLE } from '../../../src/selfplay/workshop-prompts.ts';
import { WORKSHOP_PROMPT_TOKENS } from '../../../src/trainer/engine-shape.ts';
import { RECIPES } from '../../../src/trainer/workshop-recipe.ts';
import { ChatMLTestTokenizer } from './helpers.ts';

const config = resolveConfig('workshop', RECIPES.workshop.run);
const limits = toArithLimits(wireLimits(config));
const excluded = new Set(EVAL_SET_NAMES.flatMap((s) => [...evalCanonicalExpressions(s)]));
const tokenizer = new ChatMLTestTokenizer();

function curriculum(seed: number): Curriculum {
  return new Curriculum(new Rng(seed), { bounds: config, limits, excluded });
}

/** The program and input lines of a proposer-style text (`f(...) = ...` / `input: a, b`). */
function line(text: string, prefix: string): string {
  const l = text.split('\n').find((x) => x.startsWith(prefix));
  if (l === undefined) throw new Error(`no ${prefix} line in ${text}`);
  return l;
}

const task = (over: Partial<TaskEntry>): TaskEntry =>
  ({
    id: 't',
    type: 'ded',
    program: '',
    arity: 1,
    inputs: [],
    outputs: [],
    closed: [],
    step: 0,
    seed: false,
    origin: 'model',
    ...over,
  }) as TaskEntry;

describe('imitation curriculum', () => {
  const records = curriculum(7).batch(3000);

  it('draws all six roles, the deduction solver with at least half the completion tokens', () => {
    const roles = new Set(records.map((r) => r.role));
    expect([...roles].sort()).toEqual(
      ['abd_propose', 'abd_solve', 'ded_propose', 'ded_solve', 'ind_propose', 'ind_solve'].sort(),
    );
    const tokens = (r: CurriculumRecord) =>
      tokenizer.encode(
        r.chat ? renderWorkshopPrompt(tokenizer, r.prompt) + r.completion : r.prompt + r.completion,
      ).length;
    const ded = records.filter((r) => r.role === 'ded_solve').reduce((n, r) => n + tokens(r), 0);
    const all = records.reduce((n, r) => n + tokens(r), 0);
    expect(ded / all).toBeGreaterThanOrEqual(0.5);
  });

  it("every completion fits the workshop self-play preset's token budgets (what the model learned, it can say)", () => {
    const preset = resolveConfig('workshop');
    for (const r of records) {
      // + 1: the end-of-text token that ends every completion.
      const n = tokenizer.encode(r.completion).length + 1;
      const budget = r.role.endsWith('_solve') ? preset.maxSolverTokens : preset.maxProposerTokens;
      expect(n, `${r.role}: ${r.completion}`).toBeLessThanOrEqual(budget);
    }
  });

  it('is deterministic for a seed and differs across seeds', () => {
    expect(curriculum(7).batch(50)).toEqual(records.slice(0, 50));
    expect(curriculum(8).batch(50)).not.toEqual(records.slice(0, 50));
  });

  it('never writes an eval item as a deduction record', () => {
    const closed = records.filter((r) => r.role === 'ded_solve').map((r) => r.closed!);
    expect(closed.length).toBeGreaterThan(2000);
    for (const c of closed) expect(excluded.has(c)).toBe(false);
  });

  it("every record's answer is the verifier's", () => {
    for (const r of records) {
      const body = r.completion.replace(/^<\/think><answer>/, '').replace(/<\/answer>$/, '');
      if (r.role === 'ded_solve') {
        const v = runJob({ program: r.closed!, inputs: [[]] }, limits);
        expect(v.ok && v.results[0].ok && v.results[0].value).toBe(r.completion);
      } else if (r.role === 'abd_solve') {
        const program = line(r.prompt, 'f(');
        const output = line(r.prompt, 'output: ').slice('output: '.length);
        const v = runJob({ program, inputs: [body.split(',').map((x) => x.trim())] }, limits);
        expect(v.ok && v.results[0].ok && v.results[0].value).toBe(output);
      } else if (r.role === 'ind_solve') {
        const pairs = r.prompt
          .split('\n')
          .filter((l) => /^f\([-\d, ]+\) = /.test(l))
          .map((l) => /^f\(([-\d, ]+)\) = (-?\d+)$/.exec(l)!);
        const v = runJob({ program: body, inputs: pairs.map((m) => m[1].split(', ')) }, limits);
        expect(v.ok).toBe(true);
        if (v.ok) expect(v.results.map((x) => x.ok && x.value)).toEqual(pairs.map((m) => m[2]));
      } else if (r.role === 'ind_propose') {
        const source = line(r.prompt, 'f(');
        const arity = (source.slice(0, source.indexOf(')')).match(/[xyz]/g) ?? []).length;
        const d = draftInductionProposal(r.completion, task({ program: source, arity }), config);
        expect(d.ok).toBe(true);
        if (d.ok) expect(judgeProposal(d, runJob(d.job, limits), config).valid).toBe(true);
      } else {
        const d = draftTripletProposal(r.role === 'ded_propose' ? 'ded' : 'abd', r.completion);
        expect(d.ok).toBe(true);
        if (d.ok) expect(judgeProposal(d, runJob(d.job, limits), config)).toMatchObject({ valid: true });
      }
    }
  });
});

describe('workshop prompt family', () => {
  const family = promptFamily(tokenizer, config);
  const ded = task({ program: 'f(x) = x * 7 - 3', inputs: [[12]], outputs: [81], closed: ['12 * 7 - 3'] });
  const abd = task({ ...ded, type: 'abd' });
  const ind = task({
    type: 'ind',
    program: 'f(x, y) = x + y * 2',
    arity: 2,
    inputs: [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
    ],
    outputs: [5, 11, 17, 23],
    closed: ['1 + 2 * 2', '3 + 4 * 2', '5 + 6 * 2', '7 + 8 * 2'],
    message: 'uses + and *',
  });
  const refs = [ded, task({ program: 'f(x, y) = (x + 19) % y', arity: 2, inputs: [[80, 7]], outputs: [1] })];

  it('keeps solver prompts within 120 tokens and proposer prompts within 200 (byte tokenizer)', () => {
    for (const t of [ded, abd, ind])
      expect(tokenizer.encode(family.solver(t)).length).toBeLessThanOrEqual(120);
    for (const type of ['ded', 'abd'] as const)
      expect(tokenizer.encode(family.proposer(type, refs)).length).toBeLessThanOrEqual(200);
    expect(tokenizer.encode(family.inductionProposer(ind.program, 2, 10)).length).toBeLessThanOrEqual(200);
  });

  it('fits every prompt the workshop bounds allow into the engine shape of a workshop run', () => {
    // Worst case: two references with programs at maxSourceChars (plus canonical spacing), the widest
    // inputs and outputs, and the longest induction program.
    const program = `f(x, y) = ${'(x - 99) * (y - 99) '.repeat(4)}`.slice(0, config.maxSourceChars + 12);
    const wide = task({
      program,
      arity: 2,
      inputs: [[-config.inputBound, -config.inputBound]],
      outputs: [-9999],
    });
    const longest = Math.max(
      ...(['ded', 'abd'] as const).map((t) => tokenizer.encode(family.proposer(t, [wide, wide])).length),
      tokenizer.encode(family.inductionProposer(program, 2, config.inductionInputs)).length,
      tokenizer.encode(family.solver({ ...wide, type: 'abd' })).length,
    );
    expect(longest).toBeLessThanOrEqual(WORKSHOP_PROMPT_TOKENS);
  });

  it("the deduction solver's prompt is the raw eval form, scored by the first integer", () => {
    expect(family.solver(ded)).toBe('Calculate: 12 * 7 - 3 = ');
    expect(family.solver(task({ ...ded, closed: ['84 // 4'], outputs: [21] }))).toBe('Calculate: 84 / 4 = ');
    expect(family.solver(task({ ...ded, closed: ['85 // 4'], outputs: [21] }))).toBe('Calculate: 85 // 4 = ');
    expect(checkSolverResponse(ded, '81<|endoftext|>', config)).toMatchObject({ fmt: true, jobs: [] });
    expect(checkSolverResponse(ded, '81', config).decide([])).toBe(true);
    expect(checkSolverResponse(ded, ' 80', config).decide([])).toBe(false);
    expect(checkSolverResponse(ded, 'eighty-one', config)).toMatchObject({ fmt: false });
  });

  it('abduction and induction solver answers round-trip through the 4.5 parsers', async () => {
    expect(family.solver(abd)).toMatch(/<\|im_start\|>assistant\n<think>$/);
    const verifier = new InlineVerifier(wireLimits(config));
    for (const [t, answer] of [
      [abd, '12'],
      [ind, 'f(x, y) = x + 2 * y'],
    ] as const) {
      const check = checkSolverResponse(t, `</think><answer>${answer}</answer>`, config);
      expect(check.fmt).toBe(true);
      expect(check.decide(await verifier.verify(check.jobs))).toBe(true);
    }
  });

  it("proposer prompts show the family's format example, and copying it is invalid", () => {
    expect(family.proposer('ded', refs)).toContain(`Format:\n${WORKSHOP_FORMAT_EXAMPLE.program}\ninput: 2`);
    const d = draftTripletProposal('ded', `</think><answer>f(x) = x + 1\ninput: 2</answer>`);
    expect(d.ok).toBe(true);
    if (d.ok)
      expect(judgeProposal(d, runJob(d.job, limits), config)).toMatchObject({ reason: 'example_copy' });
  });

  it('excludeEvalItems keeps a triplet whose closed form is an eval item out; the commuted form stays', async () => {
    // An eval sum whose operands are valid inputs (within the workshop's inputBound) and whose commuted
    // form is no eval item.
    const operands = (e: string) => e.split(' + ').map(Number);
    const item = toEvalItems('arith_eval_200').find((i) => {
      const [x, y] = operands(i.expression);
      return i.op === '+' && x !== y && Math.max(x, y) <= config.inputBound && !excluded.has(`${y} + ${x}`);
    })!;
    const [a, b] = operands(item.expression);
    const commuted = `${b} + ${a}`;
    expect(excluded.has(commuted)).toBe(false);
    const verifier = new InlineVerifier(wireLimits(config));
    const answer = (program: string, input: number) => `</think><answer>${program}\ninput: ${input}</answer>`;
    const judged = await validateProposals(
      [
        { type: 'ded', response: answer(`f(x) = x + ${b}`, a) },
        { type: 'ded', response: answer(`f(x) = x + ${a}`, b) },
      ],
      verifier,
      config,
      excluded,
    );
    expect(judged[0]).toEqual({ valid: false, reason: 'eval_item' });
    expect(judged[1].valid).toBe(true);
    const off = await validateProposals(
      [{ type: 'ded', response: answer(`f(x) = x + ${b}`, a) }],
      verifier,
      { ...config, excludeEvalItems: false },
      excluded,
    );
    expect(off[0].valid).toBe(true);
  });
});
