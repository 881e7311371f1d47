// Scoring on the held-out sets (spec 5.2): mode `raw` (morgan parity: no template, greedy, first integer)
// and mode `chat` (DED_SOLVE through the chat template, greedy, `</answer>` stop, the 4.5 answer rule).
// Reports overall, per-tier and per-op accuracy and the format-failure rate.
import type { Policy, Tokenizer } from '../policy.ts';
import { CONFIG_SCHEMA, type EvalItem, type EvalSetName, type RunConfig } from '../config.ts';
import { toEvalItems } from './evalsets.ts';
import { ANSWER_STOP, extractBody, formatOk, rawPrediction } from './format.ts';
import { encodePrompts, generateGrouped } from './generation.ts';
import { deductionSolverPrompt, renderPrompt } from './prompts.ts';
import { parseDeductionAnswer } from './solver.ts';

export type EvalMode = 'raw' | 'chat';

export interface Accuracy {
  n: number;
  correct: number;
  accuracy: number;
}

export interface EvalItemResult {
  id: string;
  completion: string;
  prediction: string | null;
  correct: boolean;
  formatOk: boolean;
}

export interface EvalReport extends Accuracy {
  mode: EvalMode;
  formatFailureRate: number;
  perTier: Record<string, Accuracy>;
  perOp: Record<string, Accuracy>;
  items: EvalItemResult[];
}

export interface EvaluateOptions {
  /** Evaluate only the first `limit` items (0 or undefined = all). */
  limit?: number;
  /** New tokens; defaults to the config defaults evalMaxNewRaw (16) / evalMaxNewChat (256). */
  maxNew?: number;
  /** Seed passed to generate (greedy decoding does not use it). */
  seed?: number;
}

function tally(into: Record<string, Accuracy>, key: string, correct: boolean): void {
  const a = (into[key] ??= { n: 0, correct: 0, accuracy: 0 });
  a.n++;
  if (correct) a.correct++;
  a.accuracy = a.correct / a.n;
}

export function scoreCompletion(item: EvalItem, mode: EvalMode, text: string): EvalItemResult {
  if (mode === 'raw') {
    const prediction = rawPrediction(text);
    return {
      id: item.id,
      completion: text,
      prediction,
      correct: prediction === item.answer,
      formatOk: prediction !== null,
    };
  }
  const fmt = formatOk(text);
  const ans = parseDeductionAnswer(extractBody(text));
  const prediction = ans === null ? null : ans.toString();
  return {
    id: item.id,
    completion: text,
    prediction,
    correct: fmt && prediction === item.answer,
    formatOk: fmt,
  };
}

export function evalPromptText(tokenizer: Tokenizer, item: EvalItem, mode: EvalMode): string {
  if (mode === 'raw') return item.prompt;
  return renderPrompt(
    tokenizer,
    deductionSolverPrompt('expression', { program: '', input: [], closed: item.expression }),
  );
}

/** Score a policy on an eval set (by name or as items); greedy decoding, one batched generate call. */
export async function evaluate(
  policy: Pick<Policy, 'generate'>,
  tokenizer: Tokenizer,
  set: EvalSetName | readonly EvalItem[],
  mode: EvalMode,
  opts: EvaluateOptions = {},
): Promise<EvalReport> {
  const all = typeof set === 'string' ? toEvalItems(set) : set;
  const items = opts.limit ? all.slice(0, opts.limit) : all.slice();
  const maxNew =
    opts.maxNew ??
    (mode === 'raw' ? CONFIG_SCHEMA.evalMaxNewRaw.default : CONFIG_SCHEMA.evalMaxNewChat.default);
  const prompts = encodePrompts(
    tokenizer,
    items.map((it) => evalPromptText(tokenizer, it, mode)),
  );
  // Evaluation measures the solver (its adapter, when proposer and solver have separate ones).
  const out = await generateGrouped(policy, prompts, {
    role: 'solve',
    n: 1,
    maxNew,
    temperature: 0,
    seed: opts.seed ?? 0,
    ...(mode === 'chat' ? { stopStrings: [ANSWER_STOP] } : {}),
  });
  const results = items.map((it, k) => scoreCompletion(it, mode, out[k][0].text));
  const perTier: Record<string, Accuracy> = {};
  const perOp: Record<string, Accuracy> = {};
  results.forEach((r, k) => {
    tally(perTier, items[k].tier, r.correct);
    tally(perOp, items[k].op, r.correct);
  });
  const correct = results.filter((r) => r.correct).length;
  return {
    mode,
    n: results.length,
    correct,
    accuracy: results.length ? correct / results.length : 0,
    formatFailureRate: results.length ? results.filter((r) => !r.formatOk).length / results.length : 0,
    perTier,
    perOp,
    items: results,
  };
}

/** The evaluations a run config asks for (evalSets, then evalFiles, × evalMode, evalLimit, token budgets), in order. */
export async function evaluateConfigured(
  policy: Pick<Policy, 'generate'>,
  tokenizer: Tokenizer,
  config: Pick<
    RunConfig,
    'evalSets' | 'evalFiles' | 'evalMode' | 'evalLimit' | 'evalMaxNewRaw' | 'evalMaxNewChat'
  >,
): Promise<(EvalReport & { set: string })[]> {
  const modes: EvalMode[] = config.evalMode === 'both' ? ['raw', 'chat'] : [config.evalMode];
  const sets: { name: string; items: EvalSetName | readonly EvalItem[] }[] = [
    ...config.evalSets.map((name) => ({ name, items: name })),
    ...config.evalFiles.map((f) => ({ name: f.name, items: f.items })),
  ];
  const out: (EvalReport & { set: string })[] = [];
  for (const set of sets) {
    for (const mode of modes) {
      const maxNew = mode === 'raw' ? config.evalMaxNewRaw : config.evalMaxNewChat;
      out.push({
        set: set.name,
        ...(await evaluate(policy, tokenizer, set.items, mode, { limit: config.evalLimit, maxNew })),
      });
    }
  }
  return out;
}

/** Whether a run config evaluates anything (a built-in set or your own file). */
export function hasConfiguredEvals(config: Pick<RunConfig, 'evalSets' | 'evalFiles'>): boolean {
  return config.evalSets.length + config.evalFiles.length > 0;
}
