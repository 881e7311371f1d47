// Parity of an exported ONNX model with TabZero's own forward (the WebGPU engine, or the plain-TS
// reference while the engine has no logits API): per prompt, the oracle decodes greedily; onnxruntime
// is teacher-forced along the same tokens (so one early flip does not cascade) and also decodes on its
// own. Reported: argmax agreement per step, agreement where the oracle's top-2 gap exceeds the
// tolerance (random tiny models have near-ties that either side may break), the first step where the
// two free-running greedy sequences differ, and the largest logit difference. Browser-safe.

import { argmax, type OnnxCausalLM } from './runner.ts';
import type { OnnxVariant } from './qwen2-graph.ts';

/**
 * Largest |logit difference| each variant is held to against the f32 reference on the tiny test
 * models (hidden 64, logits up to ~5); the parity check calls top-2 gaps below it near-ties.
 * fp32 differs by summation order only: measured ≤ 4e-6 over seeds 0-7, 40 tokens. fp16 rounds
 * weights and activations to half (2^-11 relative) through the residual stream: measured ≤ 5.6e-3
 * on the same runs; the bound is ~4× that.
 */
export const LOGIT_TOLERANCE: Readonly<Record<OnnxVariant, number>> = { fp32: 1e-4, fp16: 2e-2 };

/**
 * The app's "Check against ONNX Runtime" (this parity check, run in the trainer worker by
 * src/trainer/onnx-session.ts and onnx-bridge.ts) and its ONNX eval backend (issue 9).
 */
export const ONNX_CHECK_DEFAULTS = {
  /** Eval-set prompts checked when the user gives none. */
  prompts: 3,
  /** Greedy tokens per prompt. */
  maxNewTokens: 16,
  /**
   * Largest fp32 export (bytes of weights) the check picks by default; above it, fp16. Not lower: on
   * onnxruntime-web's CPU backend an fp16 export takes more WASM memory than the fp32 one, not less
   * (its weights are cast to fp32 for the kernels), and runs slower (Qwen2-0.5B, measured in Node:
   * loading grew the process by 3.2 GB for fp16 and 2.7 GB for fp32).
   */
  fp32MaxBytes: 2.5 * 2 ** 30,
  /** WASM memory an export needs per byte of its weights file (the measurement above, rounded up). */
  wasmBytesPerDataByte: { fp32: 1.4, fp16: 3.2 },
  /** onnxruntime-web's WASM memory (4 GiB at most), less room for activations: larger exports are refused. */
  wasmMaxBytes: 3.75 * 2 ** 30,
  /** WASM threads (more than 1 needs cross-origin isolation, which the app does not set up). */
  threads: 1,
} as const;

/** Something that decodes greedily and scores teacher-forced continuations (engine or reference). */
export interface GreedyOracle {
  greedy(
    prompt: readonly number[],
    maxNewTokens: number,
    eosIds: readonly number[],
  ): Promise<{
    tokens: number[];
    stepLogits: Float32Array[];
  }>;
}

export interface PromptParity {
  promptTokens: number;
  /** Greedy tokens of the oracle. */
  tokens: number[];
  steps: number;
  /** Steps where onnxruntime's argmax (teacher-forced) equals the oracle's token. */
  agree: number;
  /** Steps whose oracle top-2 gap exceeds the tolerance, and how many of those agree. */
  decidable: number;
  agreeDecidable: number;
  /** First index where the free-running greedy sequences differ (null: identical). */
  firstDivergence: number | null;
  maxLogitDiff: number;
}

/** Top-1 minus top-2 of `x`. */
export function top2Gap(x: ArrayLike<number>): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) b = v;
  }
  return a - b;
}

export async function promptParity(
  oracle: GreedyOracle,
  onnx: OnnxCausalLM,
  prompt: readonly number[],
  opts: { maxNewTokens: number; tolerance: number; eosIds: readonly number[] },
): Promise<PromptParity> {
  const ref = await oracle.greedy(prompt, opts.maxNewTokens, opts.eosIds);
  const forced = await onnx.teacherForced(prompt, ref.tokens);
  let agree = 0;
  let decidable = 0;
  let agreeDecidable = 0;
  let maxLogitDiff = 0;
  ref.tokens.forEach((tok, i) => {
    const a = ref.stepLogits[i];
    const b = forced[i];
    const same = argmax(b) === tok;
    if (same) agree++;
    if (top2Gap(a) > opts.tolerance) {
      decidable++;
      if (same) agreeDecidable++;
    }
    for (let j = 0; j < a.length; j++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(a[j] - b[j]));
  });
  const own = await onnx.greedy(prompt, opts.maxNewTokens, opts.eosIds);
  let firstDivergence: number | null = null;
  const n = Math.max(own.tokens.length, ref.tokens.length);
  for (let i = 0; i < n; i++) {
    if (own.tokens[i] !== ref.tokens[i]) {
      firstDivergence = i;
      break;
    }
  }
  return {
    promptTokens: prompt.length,
    tokens: ref.tokens,
    steps: ref.tokens.length,
    agree,
    decidable,
    agreeDecidable,
    firstDivergence,
    maxLogitDiff,
  };
}
