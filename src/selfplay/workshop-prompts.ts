// The `workshop` prompt family (promptFamily = 'workshop', a DEVIATION): the six roles of spec 4.4 with
// the same task semantics, parsing and validity checks (4.5, 4.6), in a fraction of the length, so a
// small byte-level model (the workshop model) can read and write them. Budgets, in byte-tokenizer tokens
// (one per byte, one per ChatML special): solver prompts ≤ 120, proposer prompts ≤ 200 (tests hold them).
//
// The deduction solver's prompt IS the raw eval form of spec 5.2 mode A — no chat template, `Calculate:
// {CLOSED} = ` with an exact `//` printed `/` — and is scored like it (the first integer; format ok when one
// is found), so what self-play trains is what the eval measures. The other five roles are short ChatML
// prompts with the `<think>` prefill and the spec's `<think>…</think><answer>…</answer>` format.
import { evaluateExpr, parseProgram, printExpr, type Expr } from '../arith/index.ts';
import type { ChatMessage, Tokenizer } from '../policy.ts';
import { calculatePrompt } from './evalsets.ts';
import { THINK_PREFILL } from './format.ts';
import { formatInput, varList } from './prompts.ts';
import type { TaskEntry } from './types.ts';

/** The system turn of every chat-form workshop prompt (short: the format is learnt, not read). */
export const WORKSHOP_SYSTEM = 'Math.';

/** The fixed format example of the workshop ded/abd proposer prompts (spec 4.3 (d) for this family). */
export const WORKSHOP_FORMAT_EXAMPLE = { program: 'f(x) = x + 1', input: [2] } as const;

/** Renders a workshop chat prompt: system + user turns through the model's template, then `<think>`. */
export function renderWorkshopPrompt(tokenizer: Tokenizer, user: string): string {
  const messages: ChatMessage[] = [
    { role: 'system', content: WORKSHOP_SYSTEM },
    { role: 'user', content: user },
  ];
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }) + THINK_PREFILL;
}

/** One reference triplet as three lines. */
function reference(t: Pick<TaskEntry, 'program' | 'inputs' | 'outputs'>): string {
  return `${t.program}\ninput: ${formatInput(t.inputs[0])}\noutput: ${t.outputs[0]}`;
}

const PROPOSE_HEAD = { ded: 'New task: compute f(input).', abd: 'New task: find an input.' } as const;

/** Workshop DED_PROPOSE / ABD_PROPOSE (user turn): the format example, K references, the request. */
export function workshopProposerUser(
  type: 'ded' | 'abd',
  refs: readonly Pick<TaskEntry, 'program' | 'inputs' | 'outputs'>[],
): string {
  const example = `${WORKSHOP_FORMAT_EXAMPLE.program}\ninput: ${formatInput(WORKSHOP_FORMAT_EXAMPLE.input)}`;
  return [PROPOSE_HEAD[type], `Format:\n${example}`, ...refs.map(reference), 'Yours:'].join('\n');
}

/** Workshop IND_PROPOSE (user turn). */
export function workshopInductionProposerUser(program: string, n: number): string {
  return `${program}\nGive ${n} inputs and a message.`;
}

/** Workshop ABD_SOLVE (user turn). */
export function workshopAbductionSolverUser(t: { program: string; output: number }): string {
  return `${t.program}\noutput: ${t.output}\nGive an input.`;
}

/** Workshop IND_SOLVE (user turn): the given pairs, the message, the request. */
export function workshopInductionSolverUser(t: {
  arity: number;
  given: { input: readonly number[]; output: number }[];
  message: string;
}): string {
  return [
    ...t.given.map((g) => `f(${formatInput(g.input)}) = ${g.output}`),
    `message: ${t.message}`,
    `Find f(${varList(t.arity)}).`,
  ].join('\n');
}

/**
 * A closed expression as the eval prints it: `//` whose division is exact shows as `/` (the eval's
 * `a / b` items are exact), every other operator as the canonical printer writes it.
 */
export function evalDisplay(closed: string): string {
  const parsed = parseProgram(closed);
  if (!parsed.ok) return closed;
  const exact = (e: Expr & { type: 'bin' }) => {
    if (e.op !== '//') return false;
    const a = evaluateExpr(e.left);
    const b = evaluateExpr(e.right);
    return a.ok && b.ok && b.value !== 0n && a.value % b.value === 0n;
  };
  return printExpr(parsed.value.body, (e) => (exact(e) ? '/' : e.op));
}

/** Workshop DED_SOLVE: the raw eval prompt of the task's closed expression. */
export function workshopDeductionSolverPrompt(closed: string): string {
  return calculatePrompt(evalDisplay(closed));
}

/** The user turn of a buffered abduction or induction task's workshop solver prompt. */
export function workshopSolverUser(t: TaskEntry): string {
  if (t.type === 'abd') return workshopAbductionSolverUser({ program: t.program, output: t.outputs[0] });
  const half = t.inputs.length / 2;
  return workshopInductionSolverUser({
    arity: t.arity,
    given: t.inputs.slice(0, half).map((input, k) => ({ input, output: t.outputs[k] })),
    message: t.message ?? '',
  });
}
