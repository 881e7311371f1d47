// Prompt texts of spec 4.4 and the one function that renders them through the model's chat template.
import type { ChatMessage, Tokenizer } from '../policy.ts';
import { THINK_PREFILL } from './format.ts';
import type { TaskEntry } from './types.ts';

export const SYSTEM_PROMPT =
  'You are a helpful assistant. You first think about the reasoning process and then give the final answer. ' +
  'The reasoning is enclosed in <think> </think> and the answer in <answer> </answer>, i.e. ' +
  '<think> short reasoning here </think> <answer> answer here </answer>.';

const FLOOR_LINES = [
  '- // is floor division: it rounds down (7 // 2 = 3, -7 // 2 = -4).',
  '- % is the remainder and has the sign of the divisor (7 % 3 = 1, -7 % 3 = 2).',
  '- Parentheses first, then * // % from left to right, then + - from left to right.',
];

export const RULES = [
  'Arithmetic rules:',
  '- A function is written like f(x) = EXPRESSION or f(x, y) = EXPRESSION.',
  '- EXPRESSION uses only whole numbers, the variables, + - * // % and parentheses.',
  ...FLOOR_LINES,
].join('\n');

/** The fixed answer-format example of the ded/abd proposer prompts (spec 4.3 (d)). */
export const FORMAT_EXAMPLE = { program: 'f(x, y) = (x * 3 + y) % 7', input: [4, 9] } as const;

const VARS = ['x', 'y', 'z'];
const NUMBER_WORDS = ['', 'one whole number', 'two whole numbers', 'three whole numbers'];

export const formatInput = (tuple: readonly number[]) => tuple.join(', ');
export const arityWords = (arity: number) => NUMBER_WORDS[arity];
export const varList = (arity: number) => VARS.slice(0, arity).join(', ');

/** Renders prompt text the way the policy sees it: chat template + `<think>` prefill (spec 4.4). */
export function renderPrompt(tokenizer: Tokenizer, user: string): string {
  const messages: ChatMessage[] = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: user },
  ];
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }) + THINK_PREFILL;
}

export function renderReference(t: TaskEntry, k: number): string {
  return [
    `<example_${k}>`,
    t.program,
    `input: ${formatInput(t.inputs[0])}`,
    `output: ${t.outputs[0]}`,
    `</example_${k}>`,
  ].join('\n');
}

const DED_STUDENT =
  'A student will be shown your function and your input and must compute the output by hand. ' +
  'Make the computation take several careful steps, but keep it possible by hand.';
const ABD_STUDENT =
  'A student will be shown your function and its output for your input, and must find any input that gives this ' +
  'output. Make finding such an input take reasoning (for example working backwards), but keep it possible by hand.';

/** DED_PROPOSE / ABD_PROPOSE. */
export function proposerPrompt(type: 'ded' | 'abd', refs: readonly TaskEntry[]): string {
  return [
    '## Task: Create a new arithmetic function f and one input for it.',
    type === 'ded' ? DED_STUDENT : ABD_STUDENT,
    '',
    RULES,
    '',
    'Requirements:',
    '- Use one variable (x) or two variables (x, y), at most 6 operators, and numbers below 1000.',
    '- The input is one whole number per variable, between -1000 and 1000, separated by commas.',
    '- Your input must never cause // or % by zero.',
    '- Make your function clearly different from the reference examples.',
    '',
    'Reference examples:',
    refs.map((r, k) => renderReference(r, k + 1)).join('\n'),
    '',
    'Answer format (write exactly two lines inside <answer> </answer>):',
    FORMAT_EXAMPLE.program,
    `input: ${formatInput(FORMAT_EXAMPLE.input)}`,
  ].join('\n');
}

/** IND_PROPOSE for a program of the given arity; N inputs, N/2 given. */
export function inductionProposerPrompt(program: string, arity: number, n: number): string {
  const two = arity >= 2;
  return [
    `## Task: Choose ${n} inputs for the function below and write a short message.`,
    `A student will see ${n / 2} of your inputs with their outputs plus your message and must find the function. ` +
      `The other ${n / 2} inputs are used to check the student's answer.`,
    '',
    RULES,
    '',
    'Function:',
    program,
    '',
    'Requirements:',
    `- Give exactly ${n} different inputs, one per line, written as "input: " followed by ${arityWords(arity)} ` +
      'between -1000 and 1000 separated by commas.',
    '- Choose varied inputs so the function can be identified from the examples.',
    '- Write one line "message: " that describes the function in words. Do not write the formula.',
    '',
    'Answer format (inside <answer> </answer>):',
    two ? 'input: 3, 4' : 'input: 3',
    two ? 'input: -2, 10' : 'input: -2',
    `... (${n} input lines in total)`,
    two ? 'message: the result depends on both numbers ...' : 'message: the result depends on the number ...',
  ].join('\n');
}

/** DED_SOLVE in either deduction view. `closed` is the canonical closed expression p[i]. */
export function deductionSolverPrompt(
  view: 'expression' | 'program',
  t: { program: string; input: readonly number[]; closed: string },
): string {
  const what =
    view === 'expression'
      ? [`Expression: ${t.closed}`]
      : [`Function: ${t.program}`, `Compute f(${formatInput(t.input)}).`];
  return [
    'Compute the value of this expression.',
    ...FLOOR_LINES,
    '',
    ...what,
    '',
    'Think step by step briefly, then put only the final whole number inside <answer> </answer>.',
  ].join('\n');
}

const EXAMPLE_INPUTS = ['', '3', '3, -2', '3, -2, 5'];

/** ABD_SOLVE. */
export function abductionSolverPrompt(t: { program: string; arity: number; output: number }): string {
  return [
    'Find an input for the function below that gives the output shown. Any input that works is accepted.',
    '',
    RULES,
    '',
    `Function: ${t.program}`,
    `Output: ${t.output}`,
    '',
    `Think step by step briefly, then put the input inside <answer> </answer> as ${arityWords(t.arity)} separated ` +
      `by commas, for example <answer>${EXAMPLE_INPUTS[t.arity]}</answer>.`,
  ].join('\n');
}

const EXAMPLE_PROGRAMS = ['', 'x * 2 + 1', 'x * 2 + y', 'x * 2 + y - z'];
const ALT_EXAMPLE_PROGRAMS = ['', 'x + 3', 'x + y * 3', 'x + y * 3 + z'];

/** The induction solver's example program, never equal to the task's own program. */
export function inductionExampleProgram(program: string, arity: number): string {
  const main = EXAMPLE_PROGRAMS[arity];
  return program === `f(${varList(arity)}) = ${main}` ? ALT_EXAMPLE_PROGRAMS[arity] : main;
}

/** IND_SOLVE with the given pairs (first N/2) and the message. */
export function inductionSolverPrompt(t: {
  program: string;
  arity: number;
  given: { input: readonly number[]; output: number }[];
  message: string;
}): string {
  const vars = varList(t.arity);
  return [
    'Find the function f that produced these input/output pairs.',
    '',
    RULES,
    '',
    ...t.given.map((g) => `f(${formatInput(g.input)}) = ${g.output}`),
    `Message: ${t.message}`,
    '',
    `Think step by step briefly, then write the function inside <answer> </answer> using only ${vars}, whole ` +
      `numbers, + - * // % and parentheses, for example <answer>f(${vars}) = ` +
      `${inductionExampleProgram(t.program, t.arity)}</answer>.`,
  ].join('\n');
}

/** The solver prompt of any buffered task (also used for learnability estimation). */
export function solverPromptFor(t: TaskEntry, view: 'expression' | 'program'): string {
  if (t.type === 'ded') {
    return deductionSolverPrompt(view, { program: t.program, input: t.inputs[0], closed: t.closed[0] });
  }
  if (t.type === 'abd')
    return abductionSolverPrompt({ program: t.program, arity: t.arity, output: t.outputs[0] });
  const half = t.inputs.length / 2;
  return inductionSolverPrompt({
    program: t.program,
    arity: t.arity,
    given: t.inputs.slice(0, half).map((input, k) => ({ input, output: t.outputs[k] })),
    message: t.message ?? '',
  });
}
