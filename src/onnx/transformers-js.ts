// The reference runner people use in browsers: transformers.js (on onnxruntime-web), imported on first
// use, loading a transformers.js model folder from the hub — the official onnx-community / Qwen ONNX
// exports, or a TabZero ONNX export served by a mirror (`tabzero serve-model DIR`) — and timing the same
// greedy decode workload the engine's bench runs. Its onnxruntime-web files come from the app itself
// (`wasmPaths`), never from the CDN transformers.js defaults to. Browser-safe.

import type { DecodeTiming } from './speed.ts';

export type TransformersJsDevice = 'webgpu' | 'wasm';

export interface TransformersJsSource {
  /** e.g. `onnx-community/Qwen2.5-0.5B-Instruct`. */
  repo: string;
  revision?: string;
  /** Hub or mirror URL (default: huggingface.co). */
  endpoint?: string;
  /** transformers.js's dtype: which onnx/model_<dtype>.onnx file (fp32, fp16, q4f16, ...). */
  dtype: string;
  device: TransformersJsDevice;
}

export interface TransformersJsSpeed extends DecodeTiming {
  loadMs: number;
  /** Greedy ids: the prefill's pick, then one per decode step. */
  ids: number[];
}

/** URLs of the app's onnxruntime-web WebGPU build (ort-assets.ts's transformersJsWasmPaths). */
export interface OrtWasmUrls {
  mjs: string;
  wasm: string;
}

/**
 * Loads `src` with transformers.js, warms it up, then times greedy generation of 1 and of
 * `decodeSteps + 1` new tokens after `promptIds`, and disposes of the model.
 */
export async function benchTransformersJs(
  src: TransformersJsSource,
  wasm: OrtWasmUrls,
  promptIds: readonly number[],
  decodeSteps: number,
): Promise<TransformersJsSpeed> {
  const tjs = await import('@huggingface/transformers');
  // Before the first session: transformers.js otherwise fetches onnxruntime-web's files from a CDN.
  tjs.env.backends.onnx.wasm!.wasmPaths = { ...wasm };
  tjs.env.allowLocalModels = false;
  tjs.env.allowRemoteModels = true;
  if (src.endpoint) tjs.env.remoteHost = src.endpoint.endsWith('/') ? src.endpoint : `${src.endpoint}/`;
  const started = performance.now();
  const model = await tjs.AutoModelForCausalLM.from_pretrained(src.repo, {
    revision: src.revision ?? 'main',
    dtype: src.dtype as 'fp32',
    device: src.device,
  });
  const loadMs = performance.now() - started;
  try {
    const n = promptIds.length;
    const inputs = {
      input_ids: new tjs.Tensor('int64', BigInt64Array.from(promptIds.map(BigInt)), [1, n]),
      attention_mask: new tjs.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    };
    const generate = async (newTokens: number) => {
      const t0 = performance.now();
      const out = (await model.generate({
        ...inputs,
        max_new_tokens: newTokens,
        min_new_tokens: newTokens,
        do_sample: false,
        repetition_penalty: 1.0,
        eos_token_id: [],
      })) as InstanceType<typeof tjs.Tensor>;
      const ms = performance.now() - t0;
      return { ms, ids: (out.tolist() as bigint[][])[0].slice(n).map(Number) };
    };
    await generate(2); // compiles the shaders / kernels, as the engine's warm-up does
    const one = await generate(1);
    const all = await generate(decodeSteps + 1);
    // prefillMs: a generate() of one new token (the prefill and its pick); decodeMs: what `decodeSteps`
    // more tokens add to it.
    const decodeMs = Math.max(all.ms - one.ms, Number.EPSILON);
    return {
      loadMs,
      promptTokens: n,
      decodeSteps,
      prefillMs: one.ms,
      decodeMs,
      prefillTokensPerSecond: n / (one.ms / 1000),
      decodeTokensPerSecond: decodeSteps / (decodeMs / 1000),
      ids: all.ids,
    };
  } finally {
    await model.dispose();
  }
}
