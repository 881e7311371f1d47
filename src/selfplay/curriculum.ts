// The workshop model's imitation curriculum (`tabzero pretrain`, mode 'imitation'): records of all six
// roles in exactly the workshop prompt family's format, written by the project's own AZ-Arith generator and
// verifier — every answer is the evaluator's, every proposal passes the proposer checks of spec 4.3. No
// expression of an eval set appears as a deduction item (its canonical `a op b`). Deterministic for a seed.
//
// Token shares: the deduction solver is what the eval measures, so it gets at least half the tokens
// (`dedSolveTokenShare`); the other five roles share the rest, so the model can also propose and solve the
// other task types when self-play starts.
import { closedForm, evaluateProgram, parseProgram, printProgram, type ArithLimits } from '../arith/index.ts';
import type { RunConfig } from '../config.ts';
import type { Rng } from '../random.ts';
import { ARITH_TIERS, drawTierItem } from './evalsets.ts';
import { ANSWER_STOP } from './format.ts';
import { formatInput } from './prompts.ts';
import type { TaskType } from './types.ts';
import {
  WORKSHOP_FORMAT_EXAMPLE,
  workshopAbductionSolverUser,
  workshopDeductionSolverPrompt,
  workshopInductionProposerUser,
  workshopInductionSolverUser,
  workshopProposerUser,
} from './workshop-prompts.ts';

export type CurriculumRole = `${TaskType}_${'propose' | 'solve'}`;

/** One imitation record: a prompt (a chat user turn, or the raw ded-solve text) and its target completion. */
export interface CurriculumRecord {
  role: CurriculumRole;
  /** The user turn of a chat prompt (render with renderWorkshopPrompt), or the raw prompt text (ded_solve). */
  prompt: string;
  chat: boolean;
  /** The target completion text; a raw completion is followed by the end-of-text token. */
  completion: string;
  /** The closed expression of a ded_solve record (what the eval-exclusion compares). */
  closed?: string;
  /** Eval tier of a tier-drawn ded_solve record, else 'expr'. */
  tier?: string;
}

/** What the curriculum draws from: the run's AZ-Arith bounds and induction size. */
export type CurriculumBounds = Pick<
  RunConfig,
  'inputBound' | 'outputBound' | 'maxBinaryOps' | 'inductionInputs' | 'refs' | 'maxMessageChars'
>;

export interface CurriculumOptions {
  bounds: CurriculumBounds;
  limits: ArithLimits;
  /** Canonical closed expressions that must never be a ded_solve item (the eval sets'). */
  excluded: ReadonlySet<string>;
  /** Fraction of ded_solve records that are eval-tier `a op b` items (the rest: closed forms of programs). */
  tierShare?: number;
}

/**
 * Record mix, by count. ded_solve records are ~25 tokens, the chat roles ~80–200: at 0.9 the chat roles
 * still took 60% of each step's compute and 70% of its trained tokens, and the solver learned slowly; at
 * 0.94 the deduction solver gets most of both, and the five other roles still see ~3 records a step.
 */
export const CURRICULUM_MIX: Readonly<Record<CurriculumRole, number>> = {
  ded_solve: 0.94,
  abd_solve: 0.015,
  ind_solve: 0.01,
  ded_propose: 0.012,
  abd_propose: 0.012,
  ind_propose: 0.011,
};

/**
 * How the tier-drawn ded_solve records spread over the eval tiers' ranges. very_easy's 36 prompts are all
 * eval or dev items (none is ever drawn, so it gets no weight); the ranges a 1 M-parameter model can learn
 * in an hour (sums, differences and products of numbers up to 20) get most, 2-digit products less — a
 * uniform spread spent half the tier records on products it does not learn at this size.
 */
export const TIER_WEIGHTS: Readonly<Record<string, number>> = {
  very_easy: 0,
  easy: 0.3,
  medium: 0.35,
  hard: 0.25,
  very_hard: 0.1,
};

const OPS = ['+', '-', '*', '+', '-', '*', '//', '%'] as const;
const LITERAL_MAX = 20;

interface Task {
  program: string;
  arity: number;
  inputs: number[][];
  outputs: number[];
  closed: string[];
  ops: string[];
}

export class Curriculum {
  private readonly roles: CurriculumRole[];
  private readonly cumulative: number[];
  /** Running sums of TIER_WEIGHTS over ARITH_TIERS. */
  private readonly tierCumulative: number[];

  /** Draws everything from `rng` (a run's rng: its state in a checkpoint resumes the same records). */
  constructor(
    private readonly rng: Rng,
    private readonly opts: CurriculumOptions,
  ) {
    this.roles = Object.keys(CURRICULUM_MIX) as CurriculumRole[];
    this.cumulative = runningSums(this.roles.map((r) => CURRICULUM_MIX[r]));
    this.tierCumulative = runningSums(ARITH_TIERS.map((t) => TIER_WEIGHTS[t.name] ?? 0));
  }

  /** The index that a draw u ∈ [0, total) falls into, by running sums of the weights (-1: none). */
  private pick(cumulative: readonly number[]): number {
    const u = this.rng.next() * cumulative[cumulative.length - 1];
    return cumulative.findIndex((c) => u < c);
  }

  next(): CurriculumRecord {
    return this.record(this.roles[this.pick(this.cumulative)] ?? 'ded_solve');
  }

  batch(n: number): CurriculumRecord[] {
    return Array.from({ length: n }, () => this.next());
  }

  record(role: CurriculumRole): CurriculumRecord {
    const chat = (user: string, answer: string): CurriculumRecord => ({
      role,
      prompt: user,
      chat: true,
      completion: `</think><answer>${answer}${ANSWER_STOP}`,
    });
    switch (role) {
      case 'ded_solve':
        return this.deductionSolve();
      case 'abd_solve': {
        const t = this.task(1);
        return chat(
          workshopAbductionSolverUser({ program: t.program, output: t.outputs[0] }),
          formatInput(t.inputs[0]),
        );
      }
      case 'ind_solve': {
        const t = this.task(this.opts.bounds.inductionInputs);
        const half = t.inputs.length / 2;
        const given = t.inputs.slice(0, half).map((input, k) => ({ input, output: t.outputs[k] }));
        return chat(
          workshopInductionSolverUser({ arity: t.arity, given, message: this.message(t) }),
          t.program,
        );
      }
      case 'ded_propose':
      case 'abd_propose': {
        const refs = Array.from({ length: this.opts.bounds.refs }, () => this.task(1));
        const t = this.task(1);
        return chat(
          workshopProposerUser(role === 'ded_propose' ? 'ded' : 'abd', refs),
          `${t.program}\ninput: ${formatInput(t.inputs[0])}`,
        );
      }
      case 'ind_propose': {
        const t = this.task(this.opts.bounds.inductionInputs);
        const lines = t.inputs.map((i) => `input: ${formatInput(i)}`);
        return chat(
          workshopInductionProposerUser(t.program, t.inputs.length),
          [...lines, `message: ${this.message(t)}`].join('\n'),
        );
      }
    }
  }

  /** A ded_solve record: an eval-tier `a op b` (not an eval item) or a program's closed form. */
  private deductionSolve(): CurriculumRecord {
    const tierShare = this.opts.tierShare ?? 0.7;
    for (;;) {
      let closed: string;
      let value: number;
      let tier = 'expr';
      if (this.rng.next() < tierShare) {
        const t = this.tier();
        const d = drawTierItem(() => this.rng.next(), t);
        if (!d) continue;
        const p = parseProgram(`${d.a} ${d.op === '/' ? '//' : d.op} ${d.b}`, this.opts.limits);
        if (!p.ok) continue;
        closed = printProgram(p.value);
        const v = evaluateProgram(p.value, [], this.opts.limits);
        if (!v.ok) continue;
        value = Number(v.value);
        tier = t.name;
      } else {
        const t = this.task(1);
        closed = t.closed[0];
        value = t.outputs[0];
      }
      if (this.opts.excluded.has(closed)) continue;
      return {
        role: 'ded_solve',
        prompt: workshopDeductionSolverPrompt(closed),
        chat: false,
        completion: String(value),
        closed,
        tier,
      };
    }
  }

  /** An eval tier, drawn by TIER_WEIGHTS. */
  private tier(): (typeof ARITH_TIERS)[number] {
    return ARITH_TIERS.at(this.pick(this.tierCumulative)) ?? ARITH_TIERS[ARITH_TIERS.length - 1];
  }

  /**
   * A random task program of arity 1 or 2 with 1..maxBinaryOps operators (literals 1..20), evaluated on
   * `count` distinct inputs in [0, inputBound] — every output within the output bound, no division by zero,
   * a program that uses a variable and is not the format example.
   */
  private task(count: number): Task {
    const { inputBound, outputBound, maxBinaryOps } = this.opts.bounds;
    for (;;) {
      const arity = this.rng.next() < 0.5 ? 1 : 2;
      const vars = arity === 1 ? ['x'] : ['x', 'y'];
      const nOps = this.rng.int(1, Math.max(1, Math.min(2, maxBinaryOps)));
      const ops: string[] = [];
      const operand = (k: number) =>
        k < vars.length && this.rng.next() < 0.8 ? vars[k] : String(this.rng.int(1, LITERAL_MAX));
      let expr = operand(0);
      for (let k = 0; k < nOps; k++) {
        const op = this.rng.choice(OPS);
        ops.push(op);
        const right = operand(k + 1);
        expr = k > 0 && this.rng.next() < 0.3 ? `(${expr}) ${op} ${right}` : `${expr} ${op} ${right}`;
      }
      const parsed = parseProgram(`f(${vars.join(', ')}) = ${expr}`, this.opts.limits);
      if (!parsed.ok) continue;
      const p = parsed.value;
      const program = printProgram(p);
      if (!vars.some((v) => program.slice(program.indexOf('=')).includes(v))) continue;
      if (program === WORKSHOP_FORMAT_EXAMPLE.program) continue;
      const inputs: number[][] = [];
      const seen = new Set<string>();
      const outputs: number[] = [];
      const closed: string[] = [];
      let tries = 0;
      while (inputs.length < count && tries++ < 50) {
        const input = vars.map(() => this.rng.int(0, inputBound));
        const key = input.join(',');
        if (seen.has(key)) continue;
        const big = input.map(BigInt);
        const v = evaluateProgram(p, big, this.opts.limits);
        if (!v.ok) continue;
        const out = Number(v.value);
        if (Math.abs(out) > outputBound) continue;
        seen.add(key);
        inputs.push(input);
        outputs.push(out);
        closed.push(closedForm(p, big));
      }
      if (inputs.length < count) continue;
      return { program, arity, inputs, outputs, closed, ops };
    }
  }

  /** An induction message naming the operators it uses (never the formula: the hint-leak check). */
  private message(t: Task): string {
    return `uses ${[...new Set(t.ops)].join(' and ')}`.slice(0, this.opts.bounds.maxMessageChars);
  }
}

function runningSums(weights: readonly number[]): number[] {
  let acc = 0;
  return weights.map((w) => (acc += w));
}
