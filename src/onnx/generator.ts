// Policy.generate on onnxruntime, for evals scored through the independent runtime instead of the
// engine (`tabzero eval --backend onnx`, the app's eval panel). Greedy only — evals decode greedily,
// and sampling would not reproduce the engine's GPU random streams anyway. Same stop rules as the
// engine: a stop token ends the sequence (and is kept in ids), a stop string ends it after the token
// that completes it (text cut right after the string), else `maxNew`. Browser-safe.

import type { Completion, SampleOptions, StopReason, Tokenizer } from '../policy.ts';
import { argmax, type OnnxCausalLM } from './runner.ts';

/** log softmax(logits)[token], in f64. */
export function logSoftmaxAt(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[token] - max - Math.log(sum);
}

export class OnnxGenerator {
  constructor(
    private readonly lm: OnnxCausalLM,
    private readonly tokenizer: Tokenizer,
  ) {}

  async generate(prompts: number[][], opts: SampleOptions): Promise<Completion[]> {
    if (opts.temperature > 0)
      throw new Error('the onnx backend decodes greedily only (temperature 0); sample with the engine');
    const stopTokens = new Set(opts.stopTokens ?? this.tokenizer.eosTokenIds);
    const stopStrings = opts.stopStrings ?? [];
    const n = opts.n ?? 1;
    const out: Completion[] = [];
    for (const [promptIndex, prompt] of prompts.entries()) {
      // Greedy decoding is deterministic: the n copies are one decode.
      const one = await this.decode(prompt, opts.maxNew, stopTokens, stopStrings);
      for (let k = 0; k < n; k++) out.push({ promptIndex, ...one, ids: [...one.ids] });
    }
    return out;
  }

  private async decode(
    prompt: readonly number[],
    maxNew: number,
    stopTokens: ReadonlySet<number>,
    stopStrings: readonly string[],
  ): Promise<Omit<Completion, 'promptIndex'>> {
    const ids: number[] = [];
    const logprobs: number[] = [];
    let text = '';
    let stopReason: StopReason = 'length';
    let out = await this.lm.forward({ ids: [prompt], logitsToKeep: 1 });
    while (ids.length < maxNew) {
      const logits = out.logits.subarray((out.rows - 1) * out.vocab, out.rows * out.vocab);
      const tok = argmax(logits);
      ids.push(tok);
      logprobs.push(logSoftmaxAt(logits, tok));
      text = this.tokenizer.decode(ids, { skipSpecialTokens: true });
      if (stopTokens.has(tok)) {
        stopReason = 'stop_token';
        break;
      }
      const hit = stopStrings.map((s) => ({ s, at: text.indexOf(s) })).find((h) => h.at >= 0);
      if (hit) {
        stopReason = 'stop_string';
        text = text.slice(0, hit.at + hit.s.length);
        break;
      }
      if (ids.length < maxNew) out = await this.lm.forward({ ids: [[tok]] }, out.present);
    }
    return {
      ids,
      text,
      logprobs: Float32Array.from(logprobs),
      // Greedy samples from a point mass.
      sampledLogprobs: new Float32Array(ids.length),
      stopReason,
    };
  }
}
