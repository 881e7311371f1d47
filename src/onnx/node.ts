// Node only: export targets on disk and the runner on onnxruntime-node (its CPU build; it comes with
// @huggingface/transformers). In the browser the same runner takes onnxruntime-web, imported lazily
// (`await import('onnxruntime-web/wasm')`) with `ort.env.wasm.wasmPaths` pointing at the app's own
// copy of the .wasm files, and the model bytes plus `externalData: [{ path: 'model.onnx_data', data }]`.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPeftLora } from '../model/lora.ts';
import { loadModelFolder } from '../model/model-folder.ts';
import { nodeFolderSink, nodeFolderSource } from '../model/node-folder.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import {
  exportOnnx,
  type ExportOnnxOptions,
  type OnnxExportResult,
  type OnnxExportTarget,
  type OnnxLora,
} from './export.ts';
import { VARIANT_FILE, type OnnxVariant } from './qwen2-graph.ts';
import { OnnxCausalLM } from './runner.ts';

export async function nodeOnnxTarget(dir: string): Promise<OnnxExportTarget> {
  return { root: await nodeFolderSink(dir), onnx: await nodeFolderSink(join(dir, 'onnx')) };
}

export interface NodeSessionOptions {
  /** onnxruntime-node's bundled providers: 'cpu' (default) or 'webgpu' (its own Dawn). */
  executionProvider?: 'cpu' | 'webgpu';
  /** Intra-op threads (default 1: tests and the CLI run beside other work on small machines). */
  threads?: number;
}

/** Opens `dir/onnx/model[_fp16].onnx` (external data is found beside it). */
export async function loadOnnxNode(
  dir: string,
  variant: OnnxVariant,
  opts: NodeSessionOptions = {},
): Promise<OnnxCausalLM> {
  // Imported on first use: the native binding is not loaded for CLI commands that never need it.
  const ort = await import('onnxruntime-node');
  return OnnxCausalLM.load(ort, join(dir, 'onnx', VARIANT_FILE[variant]), {
    executionProviders: [opts.executionProvider ?? 'cpu'],
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
  });
}

/** Reads a PEFT adapter folder (adapter_config.json's lora_alpha + adapter_model.safetensors). */
export async function readPeftAdapterFolder(dir: string, config: Qwen2Config): Promise<OnnxLora> {
  const configText = await readFile(join(dir, 'adapter_config.json'), 'utf8').catch(() => {
    throw new Error(`${dir}: no adapter_config.json (is this a PEFT adapter folder?)`);
  });
  let adapterConfig: { lora_alpha?: unknown } | null;
  try {
    adapterConfig = JSON.parse(configText) as { lora_alpha?: unknown } | null;
  } catch (err) {
    throw new Error(
      `${join(dir, 'adapter_config.json')}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  const alpha = adapterConfig?.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha))
    throw new Error(`${join(dir, 'adapter_config.json')}: lora_alpha must be a number`);
  const bytes = await readFile(join(dir, 'adapter_model.safetensors')).catch(() => {
    throw new Error(`${dir}: no adapter_model.safetensors`);
  });
  return loadPeftLora(new Uint8Array(bytes), alpha, config, join(dir, 'adapter_model.safetensors'));
}

export interface ExportOnnxFolderOptions extends ExportOnnxOptions {
  /** A PEFT adapter folder to merge (instead of, not beside, `lora`). */
  adapterDir?: string;
}

/**
 * `tabzero export --format onnx`: the model folder `modelDir` (plus an optional adapter) exported as
 * a transformers.js folder at `outDir`.
 */
export async function exportOnnxFolder(
  modelDir: string,
  outDir: string,
  opts: ExportOnnxFolderOptions = {},
): Promise<OnnxExportResult> {
  const source = nodeFolderSource(modelDir);
  try {
    const model = await loadModelFolder(source);
    const lora = opts.adapterDir ? await readPeftAdapterFolder(opts.adapterDir, model.config) : opts.lora;
    return await exportOnnx(source, model, await nodeOnnxTarget(outDir), { ...opts, lora });
  } finally {
    await source.close();
  }
}
