// Few-shot raw proposer prompts (issue 10, proposerPrompts = 'raw'): the research journal's style, no chat
// template and no <think> format. The proposer continues `Generate arithmetic: Calculate: ` after a few
// examples; its proposal is a closed expression (arity 0, allowed in this mode only; spec 4.1 forbids it
// elsewhere) and becomes a deduction task. Solvers see `Calculate: EXPR = ` and are scored like the
// journal: the first integer of the completion, no format check.
import type { RunConfig } from '../config.ts';
import { rawPrediction } from './format.ts';
import type { JudgedProposal, ProposalDraft } from './proposals.ts';
import type { Rng } from '../random.ts';
import type { TaskEntry } from './types.ts';
import type { VerifierVerdict } from './verifier-protocol.ts';

/** The journal's fixed first example; a proposal equal to it is invalid under exampleCopyCheck. */
export const RAW_EXAMPLE = { expression: '5 + 3', value: 8 } as const;
const PROPOSE_PREFIX = 'Generate arithmetic: Calculate: ';
/** The proposal ends at its `=` (or the end of the line). */
export const RAW_PROPOSER_STOPS = ['=', '\n'] as const;
/** A raw solver answers on one line. */
export const RAW_SOLVER_STOPS = ['\n'] as const;

/** `Generate arithmetic: Calculate: 5 + 3 = ` then one line per reference, then the open line. */
export function rawProposerPrompt(refs: readonly TaskEntry[]): string {
  const shots = [RAW_EXAMPLE.expression, ...refs.map((r) => r.closed[0])];
  return shots.map((e) => `${PROPOSE_PREFIX}${e} = \n`).join('') + PROPOSE_PREFIX;
}

/** The journal/morgan solver prompt for a closed expression. */
export function rawSolverPrompt(closed: string): string {
  return `Calculate: ${closed} = `;
}

/** The proposed expression: the text before the first `=` or line break, without a `Calculate:` label. */
export function draftRawProposal(response: string): ProposalDraft {
  const expr = response
    .split(/[=\n]/)[0]
    .replace(/^\s*(calculate\s*:)?/i, '')
    .replace(/\u2212/g, '-')
    .replace(/\u00d7/g, '*')
    .trim();
  if (!expr) return { ok: false, type: 'ded', reason: 'no_answer' };
  return { ok: true, type: 'ded', job: { program: expr, inputs: [[]] }, inputs: [[]] };
}

/** Validity of a raw proposal: a closed expression that evaluates within the output bound. */
export function judgeRawProposal(
  verdict: VerifierVerdict,
  config: Pick<RunConfig, 'outputBound' | 'exampleCopyCheck'>,
): JudgedProposal {
  if (!verdict.ok) return { valid: false, reason: verdict.error };
  if (verdict.arity !== 0) return { valid: false, reason: 'not_closed' };
  const r = verdict.results[0];
  if (!r.ok) return { valid: false, reason: r.error };
  const value = BigInt(r.value);
  if ((value < 0n ? -value : value) > BigInt(config.outputBound))
    return { valid: false, reason: 'output_range' };
  if (config.exampleCopyCheck && verdict.canonical === RAW_EXAMPLE.expression) {
    return { valid: false, reason: 'example_copy' };
  }
  return {
    valid: true,
    task: {
      type: 'ded',
      program: verdict.canonical,
      arity: 0,
      inputs: [[]],
      outputs: [Number(value)],
      closed: [verdict.canonical],
      binaryOps: verdict.binaryOps,
    },
  };
}

/** Journal scoring of a raw solver completion: the first integer equals the task's value. */
export function rawSolverCorrect(task: Pick<TaskEntry, 'outputs'>, response: string): boolean {
  return rawPrediction(response) === String(task.outputs[0]);
}

const CLOSED_TEMPLATE_OPS = ['+', '-', '*'] as const;
const CLOSED_TEMPLATE_RANGE = [0, 20] as const;

/** Seed fallback in raw mode: `a op b` with seeded operands (the run becomes not zero-data). */
export function closedTemplateTask(rng: Rng): Omit<TaskEntry, 'id' | 'step' | 'seed' | 'origin'> {
  const a = rng.int(...CLOSED_TEMPLATE_RANGE);
  const b = rng.int(...CLOSED_TEMPLATE_RANGE);
  const op = rng.choice(CLOSED_TEMPLATE_OPS);
  const value = op === '+' ? a + b : op === '-' ? a - b : a * b;
  const closed = `${a} ${op} ${b}`;
  return {
    type: 'ded',
    program: closed,
    arity: 0,
    inputs: [[]],
    outputs: [value],
    closed: [closed],
    binaryOps: 1,
  };
}

/** The raw-mode seed task: the journal's example itself. */
export function rawSeedTask(): Omit<TaskEntry, 'id'> {
  return {
    type: 'ded',
    program: RAW_EXAMPLE.expression,
    arity: 0,
    inputs: [[]],
    outputs: [RAW_EXAMPLE.value],
    closed: [RAW_EXAMPLE.expression],
    binaryOps: 1,
    step: 0,
    seed: true,
    origin: 'identity_seed',
  };
}
