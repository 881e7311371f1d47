// The runner's one door to the model: render → encode → policy.generate, grouped back per prompt.
import type { RunConfig } from '../config.ts';
import type { Completion, Policy, SampleOptions, Tokenizer, TrainBatch, TrainSequence } from '../policy.ts';
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

/**
 * The batch of one policy update: the loss knobs of the config, the log-probs taken at the sampling
 * temperature (TRL and veRL divide the logits by T; greedy sampling, T = 0, has no tempered distribution
 * and trains on the plain one), and with klBeta > 0 the reference policy's log-probs on every sequence.
 */
/**
 * Per-sequence loss weights that turn the engine's global token mean (Σ L tokens) into the mean over
 * sequences of each sequence's token mean: w_i = Σ L / (n · L_i) on every term of sequence i (policy
 * gradient, KL and entropy alike). TRL's GRPO loss_type='grpo', veRL's seq-mean-token-mean.
 */
export function sequenceMeanWeights(lengths: readonly number[]): number[] {
  const total = lengths.reduce((a, b) => a + b, 0);
  return lengths.map((L) => (L > 0 ? total / (lengths.length * L) : 0));
}

export async function updateBatch(
  c: Pick<RunConfig, 'clipEps' | 'entropyCoef' | 'klBeta' | 'temperature'>,
  sequences: TrainSequence[],
  reference: Pick<Policy, 'logprobs'> | undefined,
): Promise<TrainBatch> {
  const batch: TrainBatch = {
    sequences,
    clipEps: c.clipEps,
    entropyCoef: c.entropyCoef,
    klBeta: c.klBeta,
    temperature: c.temperature > 0 ? c.temperature : 1,
  };
  if (c.klBeta > 0) {
    if (!reference) throw new Error(`klBeta = ${c.klBeta} needs a reference policy for its KL term`);
    const ref = await reference.logprobs(batch);
    sequences.forEach((s, k) => (s.refLogprobs = ref[k]));
  }
  return batch;
}
