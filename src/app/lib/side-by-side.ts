// The bench page's measurements: the same greedy decode workload (one prompt, batch 1) on the engine,
// measured in the trainer worker, and on onnxruntime-web's WebGPU execution provider — the runtime
// transformers.js uses — opened here, on the page's own device, with the ONNX export of the same weights.
// Browser-only (the CLI's side-by-side is `npm run bench -- --onnx`).
import { loadOnnxWebGpu } from '../../onnx/web.ts';
import { measureOnnxBatch } from '../../onnx/speed.ts';
import { mulberry32 } from '../../random.ts';
import type { EngineDecodeBench, OnnxExportFiles } from '../../protocol.ts';

/** Prompt ids drawn below this id: ordinary tokens of any Qwen2-family vocabulary (no specials). */
const PROMPT_ID_LIMIT = 32_000;

/** A deterministic prompt of `len` token ids for a vocabulary of `vocab` entries. */
export function benchPromptIds(len: number, vocab: number, seed: number): number[] {
  const next = mulberry32(seed);
  const limit = Math.min(vocab, PROMPT_ID_LIMIT);
  return Array.from({ length: len }, () => Math.floor(next() * limit));
}

export interface OnnxDecodeBench {
  runtime: string;
  variant: OnnxExportFiles['variant'];
  variantReason: string;
  /** Bytes of the export (graph and weights). */
  bytes: number;
  exportMs: number;
  loadMs: number;
  promptTokens: number;
  decodeSteps: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
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
  const bytes = files.model.byteLength + files.data.byteLength;
  const started = performance.now();
  const lm = await loadOnnxWebGpu(files, { wasmPaths });
  const loadMs = performance.now() - started;
  try {
    await measureOnnxBatch(lm, [promptIds.slice(0, 4)], 2);
    const s = await measureOnnxBatch(lm, [promptIds], decodeSteps);
    return {
      runtime: 'onnxruntime-web, WebGPU execution provider',
      variant: files.variant,
      variantReason: files.variantReason,
      bytes,
      exportMs: files.exportMs,
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
