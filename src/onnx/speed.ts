// Decode speed of an ONNX model on onnxruntime: one prefill of a prompt, then greedy decode steps
// through the KV cache, timed separately (the baseline the engine's bench compares with). Browser-safe.

import { argmax, type OnnxCausalLM } from './runner.ts';

export interface OnnxSpeed {
  promptTokens: number;
  newTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** New tokens per second over the decode steps (prefill excluded). */
  decodeTokensPerSecond: number;
}

export async function measureOnnxSpeed(
  lm: OnnxCausalLM,
  prompt: readonly number[],
  newTokens: number,
): Promise<OnnxSpeed> {
  const t0 = performance.now();
  let out = await lm.forward({ ids: [prompt], logitsToKeep: 1 });
  const t1 = performance.now();
  for (let i = 0; i < newTokens; i++) {
    const next = argmax(out.logits, (out.rows - 1) * out.vocab, out.vocab);
    out = await lm.forward({ ids: [[next]] }, out.present);
  }
  const t2 = performance.now();
  return {
    promptTokens: prompt.length,
    newTokens,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    decodeTokensPerSecond: newTokens / ((t2 - t1) / 1000),
  };
}
