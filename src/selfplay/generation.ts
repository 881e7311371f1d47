// The runner's one door to the model: render → encode → policy.generate, grouped back per prompt.
import type { Completion, Policy, SampleOptions, Tokenizer } from '../policy.ts';
import { ANSWER_STOP } from './format.ts';
import type { Role } from './types.ts';

/**
 * Sampling options with the role whose policy generates always set (SampleOptions.role): with
 * separateAdapters the engine samples proposals with the proposer adapter and solver/estimation/eval
 * completions with the solver adapter. Every generate call of the runner is single-role.
 */
export type RoleSampleOptions = SampleOptions & { role: Role };

export interface EncodedPrompt {
  text: string;
  ids: number[];
}

export function encodePrompts(tokenizer: Tokenizer, texts: readonly string[]): EncodedPrompt[] {
  return texts.map((text) => ({ text, ids: tokenizer.encode(text) }));
}

/** Generates n completions per prompt; result[i] holds prompt i's completions in the order returned. */
export async function generateGrouped(
  policy: Pick<Policy, 'generate'>,
  prompts: readonly EncodedPrompt[],
  opts: SampleOptions,
): Promise<Completion[][]> {
  const out: Completion[][] = prompts.map(() => []);
  if (prompts.length === 0) return out;
  const completions = await policy.generate(
    prompts.map((p) => p.ids),
    opts,
  );
  for (const c of completions) out[c.promptIndex].push(c);
  const n = opts.n ?? 1;
  out.forEach((list, i) => {
    if (list.length !== n)
      throw new Error(`policy returned ${list.length} completions for prompt ${i}, expected ${n}`);
  });
  return out;
}

/** Sampling options shared by proposer, estimation and solver calls (spec 4.4: stop on `</answer>`). */
export function samplingOptions(
  c: { temperature: number; topP: number; topK: number },
  maxNew: number,
  seed: number,
  role: Role,
  n = 1,
  stopStrings: readonly string[] = [ANSWER_STOP],
): RoleSampleOptions {
  return {
    role,
    n,
    maxNew,
    temperature: c.temperature,
    topP: c.topP,
    ...(c.topK > 0 ? { topK: c.topK } : {}),
    seed,
    stopStrings,
  };
}
