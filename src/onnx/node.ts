// Node only: export targets on disk and the runner on onnxruntime-node (its CPU build; it comes with
// @huggingface/transformers). In the browser the same runner takes onnxruntime-web, imported lazily
// (`await import('onnxruntime-web/wasm')`) with `ort.env.wasm.wasmPaths` pointing at the app's own
// copy of the .wasm files, and the model bytes plus `externalData: [{ path: 'model.onnx_data', data }]`.

import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { nodeFolderSink } from '../model/node-folder.ts';
import type { OnnxExportTarget } from './export.ts';
import { VARIANT_FILE, type OnnxVariant } from './qwen2-graph.ts';
import { OnnxCausalLM } from './runner.ts';

export async function nodeOnnxTarget(dir: string): Promise<OnnxExportTarget> {
  return { root: await nodeFolderSink(dir), onnx: await nodeFolderSink(join(dir, 'onnx')) };
}

/** Opens `dir/onnx/model[_fp16].onnx` (external data is found beside it). */
export async function loadOnnxNode(dir: string, variant: OnnxVariant): Promise<OnnxCausalLM> {
  return OnnxCausalLM.load(ort, join(dir, 'onnx', VARIANT_FILE[variant]), {
    executionProviders: ['cpu'],
    // One thread per session: the tests and the CLI run beside other work on small machines.
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
}
