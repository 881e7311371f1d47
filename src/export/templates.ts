// The prompt templates a run trains with (spec 4.4), in the form exports carry them (RunMeta.templates,
// tabzero.json): the system prompt, the `<think>` prefill, the stop string, and each of the six role
// prompts rendered by src/selfplay/prompts.ts — the very functions the Runner uses — for the spec's
// own example task, under the run's deductionView and inductionInputs. Someone using exported weights
// sees exactly the text the model was trained on and swaps in their own task. Browser-safe.

import type { RunConfig } from '../config.ts';
import { ANSWER_STOP, THINK_PREFILL } from '../selfplay/format.ts';
import {
  abductionSolverPrompt,
  inductionProposerPrompt,
  inductionSolverPrompt,
  proposerPrompt,
  RULES,
  solverPromptFor,
  SYSTEM_PROMPT,
} from '../selfplay/prompts.ts';
import type { TaskEntry } from '../selfplay/types.ts';

/** Spec 4.4's REF example: f(x) = (x * 7 + 3) % 10 at 12 → 7. */
const EXAMPLE: TaskEntry = {
  id: 'example',
  type: 'ded',
  program: 'f(x) = (x * 7 + 3) % 10',
  arity: 1,
  inputs: [[12]],
  outputs: [7],
  closed: ['(12 * 7 + 3) % 10'],
  binaryOps: 3,
  step: 0,
  seed: true,
  origin: 'template',
};

const EXAMPLE_IND_INPUTS = [12, -3, 5, 40, 7, -18, 0, 99, -250, 31, 64, -1, 8, 15, 2, -77, 500, 13, 21, -9];

/** Python semantics of the example program, for the induction example's outputs. */
function exampleOutput(x: number): number {
  const m = (x * 7 + 3) % 10;
  return m < 0 ? m + 10 : m;
}

export function runPromptTemplates(
  c: Pick<RunConfig, 'deductionView' | 'inductionInputs'>,
): Record<string, string> {
  const n = c.inductionInputs;
  const given = EXAMPLE_IND_INPUTS.slice(0, n / 2).map((x) => ({ input: [x], output: exampleOutput(x) }));
  return {
    system: SYSTEM_PROMPT,
    rules: RULES,
    assistant_prefill: THINK_PREFILL,
    stop_string: ANSWER_STOP,
    chat_format:
      '<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n<think>',
    ded_propose: proposerPrompt('ded', [EXAMPLE]),
    abd_propose: proposerPrompt('abd', [EXAMPLE]),
    ind_propose: inductionProposerPrompt(EXAMPLE.program, 1, n),
    ded_solve: solverPromptFor(EXAMPLE, c.deductionView),
    abd_solve: abductionSolverPrompt({ program: EXAMPLE.program, arity: 1, output: EXAMPLE.outputs[0] }),
    ind_solve: inductionSolverPrompt({
      program: EXAMPLE.program,
      arity: 1,
      given,
      message: 'the last digit of seven times the number plus three',
    }),
  };
}
