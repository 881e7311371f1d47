// Solver side: answer parsing (spec 4.5) and correctness (spec 4.2). Checks that need the evaluator
// return verifier jobs plus a decision function, so the runner can verify a whole step in one batch.
import type { RunConfig } from '../config.ts';
import { extractBody, formatOk } from './format.ts';
import { rawSolverCorrect } from './raw-proposer.ts';
import { rawPrediction } from './format.ts';
import type { TaskEntry } from './types.ts';
import type { VerifierJob, VerifierVerdict } from './verifier-protocol.ts';

const INTEGER = /^[-+]?\d+$/;
const INTEGER_PART = /^\s*[-+]?\d+\s*$/;

export interface SolverCheck {
  /** AZR format check of the response (for the induction solver an empty body is a format failure too). */
  fmt: boolean;
  /** Jobs to verify; empty when the answer is already decided. */
  jobs: VerifierJob[];
  /** Correctness from the verdicts of `jobs` (same order). */
  decide(verdicts: VerifierVerdict[]): boolean;
}

const decided = (fmt: boolean, correct: boolean): SolverCheck => ({ fmt, jobs: [], decide: () => correct });

/** Deduction answer: an integer after removing `output:`, `answer:`, `=`, `f(...) =` and a trailing dot. */
export function parseDeductionAnswer(body: string): bigint | null {
  const s = body
    .trim()
    .replace(/^(output\s*:|answer\s*:|=|f\s*\([^)]*\)\s*=)\s*/i, '')
    .replace(/\.$/, '')
    .trim();
  return INTEGER.test(s) ? BigInt(s) : null;
}

/** Abduction answer: exactly `arity` integers after removing `x =` labels and parentheses. */
export function parseAbductionAnswer(body: string, arity: number): bigint[] | null {
  const s = body.replace(/\b[xyz]\s*=/g, '').replace(/[()]/g, '');
  const parts = s.split(',');
  if (parts.length !== arity || !parts.every((p) => INTEGER_PART.test(p))) return null;
  return parts.map((p) => BigInt(p.trim()));
}

export function checkSolverResponse(task: TaskEntry, response: string, config: RunConfig): SolverCheck {
  // Closed-expression tasks exist only with raw proposer prompts: journal scoring, no format check.
  if (task.arity === 0) return decided(true, rawSolverCorrect(task, response));
  // The workshop family's deduction solver answers in the raw eval form (spec 5.2 mode A): the first
  // integer, format ok when there is one — what arith_eval_200 raw scores.
  if (config.promptFamily === 'workshop' && task.type === 'ded')
    return decided(rawPrediction(response) !== null, rawSolverCorrect(task, response));
  const fmt = formatOk(response);
  const body = extractBody(response);
  if (task.type === 'ded') {
    const ans = parseDeductionAnswer(body);
    return decided(fmt, ans !== null && ans === BigInt(task.outputs[0]));
  }
  if (task.type === 'abd') {
    const ans = parseAbductionAnswer(body, task.arity);
    const bound = BigInt(config.answerBound);
    if (!ans || ans.some((v) => (v < 0n ? -v : v) > bound)) return decided(fmt, false);
    return {
      fmt,
      jobs: [{ program: task.program, inputs: [ans.map(String)] }],
      decide: ([v]) => v.ok && v.results[0].ok && v.results[0].value === String(task.outputs[0]),
    };
  }
  // Induction: empty body is a format failure; otherwise the first line that parses with the task's
  // arity is the candidate, checked on every hidden pair.
  if (!body) return decided(false, false);
  const half = task.inputs.length / 2;
  const hiddenInputs = task.inputs.slice(half).map((t) => t.map(String));
  const hiddenOutputs = task.outputs.slice(half).map(String);
  const lines = body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return {
    fmt,
    jobs: lines.map((program) => ({ program, inputs: hiddenInputs })),
    decide: (verdicts) => {
      const candidate = verdicts.find((v) => v.ok && v.arity === task.arity);
      if (!candidate || !candidate.ok) return false;
      return candidate.results.every((r, k) => r.ok && r.value === hiddenOutputs[k]);
    },
  };
}
