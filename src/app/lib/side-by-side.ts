// The bench page's measurements: the same greedy decode workload (one prompt, batch 1) on the engine,
// measured in the trainer worker, and on the ONNX side, opened here on the page's own device: either
// onnxruntime-web's WebGPU execution provider with the ONNX export of the same weights, or transformers.js
// (on onnxruntime-web) loading a model repo from the hub or a mirror, e.g. the official onnx-community
// exports. Browser-only (the CLI's side-by-side is `npm run bench -- --onnx`).
import {
  benchTransformersJs,
  type OrtWasmUrls,
  type TransformersJsSource,
} from '../../onnx/transformers-js.ts';
import { loadOnnxWebGpu } from '../../onnx/web.ts';
import { measureOnnxBatch, type DecodeTiming } from '../../onnx/speed.ts';
import { mulberry32 } from '../../random.ts';
import type { EngineDecodeBench, OnnxExportFiles } from '../../protocol.ts';

/** The app's bench page: one greedy decode workload, batch 1, on the engine and on onnxruntime-web WebGPU. */
export const BENCH_PAGE_DEFAULTS = {
  promptTokens: 64,
  newTokens: 32,
  /** Bounds of the page's inputs (the engine's KV cache holds every preset's longest sequence). */
  maxPromptTokens: 512,
  maxNewTokens: 256,
  /** Seed of the random prompt ids, so reruns time the same tokens. */
  seed: 1,
  /** The transformers.js side's suggested repo and dtype: an official ONNX export of a Qwen2-family model. */
  transformersJsRepo: 'onnx-community/Qwen2.5-0.5B-Instruct',
  transformersJsDtype: 'fp16',
} as const;

/** Prompt ids drawn below this id: ordinary tokens of any Qwen2-family vocabulary (no specials). */
const PROMPT_ID_LIMIT = 32_000;

/** A deterministic prompt of `len` token ids for a vocabulary of `vocab` entries. */
export function benchPromptIds(len: number, vocab: number, seed: number): number[] {
  const next = mulberry32(seed);
  const limit = Math.min(vocab, PROMPT_ID_LIMIT);
  return Array.from({ length: len }, () => Math.floor(next() * limit));
}

export interface OnnxDecodeBench extends DecodeTiming {
  runtime: string;
  /** Which model and precision, and why: shown beside the figures. */
  model: string;
  /** The same weights as the engine's (the in-tab export): greedy tokens are comparable. */
  sameWeights: boolean;
  loadMs: number;
  ids: number[];
}

/**
 * Opens `files` on onnxruntime-web's WebGPU EP, warms it up (its shaders compile on first use, as the
 * engine's do in its own warm-up), times one prefill and `decodeSteps` greedy steps, and releases it.
 */
export async function benchOnnxWebGpu(
  files: OnnxExportFiles,
  wasmPaths: string,
  promptIds: readonly number[],
  decodeSteps: number,
): Promise<OnnxDecodeBench> {
  const mb = (files.model.byteLength + files.data.byteLength) / 1e6;
  const started = performance.now();
  const lm = await loadOnnxWebGpu(files, { wasmPaths });
  const loadMs = performance.now() - started;
  try {
    await measureOnnxBatch(lm, [promptIds.slice(0, 4)], 2);
    const s = await measureOnnxBatch(lm, [promptIds], decodeSteps);
    return {
      runtime: 'onnxruntime-web, WebGPU execution provider',
      sameWeights: true,
      model: `this model exported to ONNX ${files.variant} (${files.variantReason}), ${mb.toFixed(1)} MB in ${(files.exportMs / 1000).toFixed(1)} s`,
      loadMs,
      promptTokens: s.promptTokens,
      decodeSteps: s.decodeSteps,
      prefillMs: s.prefillMs,
      decodeMs: s.decodeMs,
      prefillTokensPerSecond: s.prefillTokensPerSecond,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      ids: s.ids[0],
    };
  } finally {
    await lm.release();
  }
}

/**
 * The export precision for "like the engine": fp16 where the engine runs 16-bit weights and this page's
 * WebGPU adapter has shader-f16 (onnxruntime-web's fp16 kernels need it), else fp32; with the reason.
 */
export async function matchingVariant(
  engineDType: 'f32' | 'f16',
): Promise<{ variant: 'fp32' | 'fp16'; reason: string }> {
  if (engineDType === 'f32') return { variant: 'fp32', reason: 'fp32, like the engine' };
  const adapter = await navigator.gpu?.requestAdapter();
  return adapter?.features.has('shader-f16')
    ? { variant: 'fp16', reason: 'fp16, like the engine' }
    : {
        variant: 'fp32',
        reason: "fp32: this page's GPU adapter lacks shader-f16, which onnxruntime-web's fp16 needs",
      };
}

/** transformers.js (on onnxruntime-web) loading `src` from the hub or a mirror, timed on the same workload. */
export async function benchTransformersJsSide(
  src: TransformersJsSource,
  wasm: OrtWasmUrls,
  promptIds: readonly number[],
  decodeSteps: number,
): Promise<OnnxDecodeBench> {
  const s = await benchTransformersJs(src, wasm, promptIds, decodeSteps);
  const where = src.endpoint ? ` from ${src.endpoint}` : ' from the Hugging Face hub';
  return {
    ...s,
    runtime: `transformers.js, ${src.device === 'webgpu' ? 'WebGPU' : 'WASM'} (onnxruntime-web)`,
    model: `${src.repo} (${src.dtype})${where}`,
    sameWeights: false,
  };
}

/** Leading greedy tokens the two runtimes share (random weights have near-ties, so they may part). */
export function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** How many times faster the engine decodes than onnxruntime-web (above 1: the engine is faster). */
export function decodeRatio(engine: EngineDecodeBench, onnx: OnnxDecodeBench): number {
  return engine.decodeTokensPerSecond / onnx.decodeTokensPerSecond;
}
