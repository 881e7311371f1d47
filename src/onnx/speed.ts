// Decode speed of an ONNX model on onnxruntime: one prefill of a batch of prompts, then greedy decode
// steps through the KV cache, timed separately (the baseline the engine's bench compares with; the
// argmax runs in JS on the returned logits, as transformers.js does). Browser-safe.

import { argmax, type OnnxCausalLM } from './runner.ts';

/** One timed greedy decode: a prefill, then decode steps (the figures every side of a bench reports). */
export interface DecodeTiming {
  /** Prompt tokens per sequence. */
  promptTokens: number;
  /** Decode steps after the prefill (each adds one token per sequence). */
  decodeSteps: number;
  prefillMs: number;
  decodeMs: number;
  /** Prompt tokens per second of the prefill (batch × promptTokens / prefill time). */
  prefillTokensPerSecond: number;
  /** Tokens per second over the decode steps (batch × decodeSteps / decode time; prefill excluded). */
  decodeTokensPerSecond: number;
}

export interface OnnxBatchSpeed extends DecodeTiming {
  batch: number;
  /** Greedy ids per sequence: the prefill's token, then one per decode step. */
  ids: number[][];
}

/** A prefill of `prompts` (equal lengths) and `decodeSteps` greedy steps with the KV cache. */
export async function measureOnnxBatch(
  lm: OnnxCausalLM,
  prompts: readonly (readonly number[])[],
  decodeSteps: number,
): Promise<OnnxBatchSpeed> {
  const ids: number[][] = prompts.map(() => []);
  const pick = (out: Awaited<ReturnType<OnnxCausalLM['forward']>>) =>
    ids.map((row, b) => {
      const tok = argmax(out.logits, (b * out.rows + out.rows - 1) * out.vocab, out.vocab);
      row.push(tok);
      return [tok];
    });
  const t0 = performance.now();
  let out = await lm.forward({ ids: prompts, logitsToKeep: 1 });
  let next = pick(out);
  const t1 = performance.now();
  for (let i = 0; i < decodeSteps; i++) {
    out = await lm.forward({ ids: next }, out.present);
    next = pick(out);
  }
  const t2 = performance.now();
  const batch = prompts.length;
  const promptTokens = prompts[0]?.length ?? 0;
  return {
    batch,
    promptTokens,
    decodeSteps,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    prefillTokensPerSecond: (batch * promptTokens) / ((t1 - t0) / 1000),
    decodeTokensPerSecond: decodeSteps ? (batch * decodeSteps) / ((t2 - t1) / 1000) : 0,
    ids,
  };
}
