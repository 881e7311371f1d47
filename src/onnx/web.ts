// The runner on onnxruntime-web's WASM backend (CPU, no GPU device: the trainer worker stays the only
// owner of the GPU), and on its WebGPU execution provider for speed comparisons (the bench: it opens
// its own device, so only while no training holds the GPU). onnxruntime-web is imported on first use, so it never weighs on the trainer path,
// and its .wasm files come from `wasmPaths` — the app serves its own copy, never a CDN. The model
// arrives as bytes (OPFS, file picker or fetch from the app's origin) with its external data file.
// Browser-safe; also runs in Node.

import { VARIANT_FILE, type OnnxVariant } from './qwen2-graph.ts';
import type { InferenceSession } from 'onnxruntime-common';
import { OnnxCausalLM } from './runner.ts';

export interface WasmModelFiles {
  variant: OnnxVariant;
  /** onnx/model[_fp16].onnx */
  model: Uint8Array;
  /** onnx/model[_fp16].onnx_data */
  data: Uint8Array;
}

export interface WasmOptions {
  /** URL prefix of the ort-wasm-*.wasm files (e.g. the app's `/ort/`); default: beside the module. */
  wasmPaths?: string;
  /** WASM threads (needs cross-origin isolation for more than 1). */
  threads?: number;
}

export async function loadOnnxWasm(files: WasmModelFiles, opts: WasmOptions = {}): Promise<OnnxCausalLM> {
  return openOnnxWeb(await import('onnxruntime-web/wasm'), files, opts, { executionProviders: ['wasm'] });
}

export interface WebGpuOptions extends WasmOptions {
  /**
   * The WebGPU build's .wasm bytes (`ort-wasm-simd-threaded.asyncify.wasm`), where there is no URL to
   * fetch them from (Node); browsers load them from `wasmPaths`.
   */
  wasmBinary?: Uint8Array;
}

/** onnxruntime-web's WebGPU execution provider (it requests its own device from navigator.gpu). */
export async function loadOnnxWebGpu(files: WasmModelFiles, opts: WebGpuOptions = {}): Promise<OnnxCausalLM> {
  return openOnnxWeb(await import('onnxruntime-web/webgpu'), files, opts, {
    executionProviders: ['webgpu'],
    // The KV cache stays on the GPU between steps, as transformers.js keeps it; only logits come back.
    preferredOutputLocation: 'gpu-buffer',
  });
}

type OrtWeb = typeof import('onnxruntime-web/wasm');

/** Points an onnxruntime-web build at its files and opens `files` with its weights as external data. */
function openOnnxWeb(
  ort: OrtWeb,
  files: WasmModelFiles,
  opts: WebGpuOptions,
  session: InferenceSession.SessionOptions,
): Promise<OnnxCausalLM> {
  if (opts.wasmPaths !== undefined) ort.env.wasm.wasmPaths = opts.wasmPaths;
  if (opts.wasmBinary !== undefined) ort.env.wasm.wasmBinary = opts.wasmBinary;
  ort.env.wasm.numThreads = opts.threads ?? 1;
  return OnnxCausalLM.load(ort, files.model, {
    ...session,
    // The location recorded in the model's external tensors.
    externalData: [{ path: `${VARIANT_FILE[files.variant]}_data`, data: files.data }],
  });
}
