// The WebGPU engine as a GreedyOracle: tokens from its own greedy generation (KV-cache decode on the
// GPU), and the logits that chose them from one prefill of prompt + tokens (`allLogits`, the LM head on
// the completion's rows only), so the
// parity check compares onnxruntime with both of the engine's paths. Browser-safe.

import type { Engine } from '../engine/engine.ts';
import type { GreedyOracle } from './parity.ts';

export class EngineOracle implements GreedyOracle {
  constructor(private readonly engine: Engine) {}

  async greedy(
    prompt: readonly number[],
    maxNewTokens: number,
    eosIds: readonly number[],
  ): Promise<{ tokens: number[]; stepLogits: Float32Array[] }> {
    const [completion] = await this.engine.generate([[...prompt]], {
      maxNew: maxNewTokens,
      temperature: 0,
      seed: 0,
      stopTokens: eosIds,
    });
    const tokens = completion.ids;
    const V = this.engine.config.vocabSize;
    // Only the rows that chose the tokens: the prompt's last position on.
    const rows = await this.engine.allLogits([[...prompt, ...tokens.slice(0, -1)]], [prompt.length - 1]);
    const stepLogits = tokens.map((_, i) => rows.slice(i * V, (i + 1) * V));
    return { tokens, stepLogits };
  }
}
