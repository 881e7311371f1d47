// The prompt texts of a run's roles, by config.promptFamily: spec 4.4's (`spec`, with the deduction solver
// by deductionView) or the short `workshop` family (workshop-prompts.ts). azr-step and seeding render every
// proposer and solver prompt through this, so a family is one switch, not a branch at each call site.
import type { RunConfig } from '../config.ts';
import type { Tokenizer } from '../policy.ts';
import { inductionProposerPrompt, proposerPrompt, renderPrompt, solverPromptFor } from './prompts.ts';
import { rawSolverPrompt } from './raw-proposer.ts';
import type { TaskEntry } from './types.ts';
import {
  renderWorkshopPrompt,
  workshopDeductionSolverPrompt,
  workshopInductionProposerUser,
  workshopProposerUser,
  workshopSolverUser,
} from './workshop-prompts.ts';

export interface PromptFamily {
  /** DED_PROPOSE / ABD_PROPOSE, rendered. */
  proposer(type: 'ded' | 'abd', refs: readonly TaskEntry[]): string;
  /** IND_PROPOSE for a source program, rendered. */
  inductionProposer(program: string, arity: number, n: number): string;
  /** The solver (and estimation) prompt of a task, rendered. */
  solver(task: TaskEntry): string;
}

export function promptFamily(
  tokenizer: Tokenizer,
  c: Pick<RunConfig, 'promptFamily' | 'deductionView'>,
): PromptFamily {
  if (c.promptFamily === 'workshop') {
    return {
      proposer: (type, refs) => renderWorkshopPrompt(tokenizer, workshopProposerUser(type, refs)),
      inductionProposer: (program, _arity, n) =>
        renderWorkshopPrompt(tokenizer, workshopInductionProposerUser(program, n)),
      solver: (task) =>
        task.type === 'ded'
          ? workshopDeductionSolverPrompt(task.closed[0])
          : renderWorkshopPrompt(tokenizer, workshopSolverUser(task)),
    };
  }
  return {
    proposer: (type, refs) => renderPrompt(tokenizer, proposerPrompt(type, refs)),
    inductionProposer: (program, arity, n) =>
      renderPrompt(tokenizer, inductionProposerPrompt(program, arity, n)),
    // Closed-expression tasks (raw proposer prompts) are solved in the journal's raw form.
    solver: (task) =>
      task.arity === 0
        ? rawSolverPrompt(task.closed[0])
        : renderPrompt(tokenizer, solverPromptFor(task, c.deductionView)),
  };
}
