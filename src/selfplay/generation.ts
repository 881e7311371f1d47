// The runner's one door to the model: render → encode → policy.generate, grouped back per prompt.
import type { Completion, Policy, SampleOptions, Tokenizer } from '../policy.ts';
import { ANSWER_STOP } from './format.ts';

export interface EncodedPrompt {
  text: string;
  ids: number[];
}

export function encodePrompts(tokenizer: Tokenizer, texts: readonly string[]): EncodedPrompt[] {
  return texts.map((text) => ({ text, ids: tokenizer.encode(text) }));
}

/** Generates n completions per prompt; result[i] holds prompt i's completions in the order returned. */
export async function generateGrouped(
  policy: Policy,
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
  n = 1,
  stopStrings: readonly string[] = [ANSWER_STOP],
): SampleOptions {
  return {
    n,
    maxNew,
    temperature: c.temperature,
    topP: c.topP,
    ...(c.topK > 0 ? { topK: c.topK } : {}),
    seed,
    stopStrings,
  };
}
