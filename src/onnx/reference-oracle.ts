// The plain-TypeScript f32 reference forward as a GreedyOracle: each step recomputes the whole
// sequence (no cache — an independent path from onnxruntime's KV cache) and runs the LM head on the
// last row only. For tiny models and short checks. Browser-safe.

import { lmHead, qwen2Forward, type RefModelConfig, type RefWeights } from '../engine/reference/qwen2.ts';
import { argmax } from './runner.ts';
import type { GreedyOracle } from './parity.ts';
import type { HostLora } from '../model/lora.ts';

export class ReferenceOracle implements GreedyOracle {
  constructor(
    private readonly cfg: RefModelConfig,
    private readonly weights: RefWeights,
    private readonly lora: HostLora | null = null,
  ) {}

  /** Logits [vocab] after `ids`. */
  lastLogits(ids: readonly number[]): Float32Array {
    const tape = qwen2Forward(this.cfg, this.weights, [{ ids }], this.lora);
    return Float32Array.from(lmHead(this.cfg, this.weights, tape.hidden, [ids.length - 1]));
  }

  async greedy(
    prompt: readonly number[],
    maxNewTokens: number,
    eosIds: readonly number[],
  ): Promise<{ tokens: number[]; stepLogits: Float32Array[] }> {
    const ids = [...prompt];
    const tokens: number[] = [];
    const stepLogits: Float32Array[] = [];
    for (let step = 0; step < maxNewTokens; step++) {
      const logits = this.lastLogits(ids);
      const next = argmax(logits);
      tokens.push(next);
      stepLogits.push(logits);
      ids.push(next);
      if (eosIds.includes(next)) break;
    }
    return { tokens, stepLogits };
  }
}
