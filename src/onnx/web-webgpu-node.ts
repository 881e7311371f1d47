// Node only: onnxruntime-web's WebGPU execution provider on Dawn (the npm `webgpu` package), so the bench
// can time the runtime transformers.js uses in browsers beside the engine, in one process. Two gaps
// between Dawn's Node binding and a browser are bridged, for this process:
//  - navigator.gpu: ort-web requests its adapter there, and Node 20 has no navigator. The Dawn instance
//    stays referenced for the process lifetime (node-gpu.ts says why).
//  - ort-web's WASM memory is a SharedArrayBuffer (its threaded build), and it hands views of that memory
//    to GPUQueue.writeBuffer, which Dawn's binding rejects ("Invalid argument") or crashes on. Such views
//    are copied into an ordinary buffer first; every other call (the engine's) goes straight through.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { VARIANT_FILE, type OnnxVariant } from './qwen2-graph.ts';
import type { OnnxCausalLM } from './runner.ts';
import { loadOnnxWebGpu } from './web.ts';

let gpuForOrt: GPU | null = null;

type WriteBuffer = GPUQueue['writeBuffer'];

/** Bridges the two gaps above, once per process (loadOnnxWebGpuNode calls it). */
export function installWebGpuForOrtWeb(): void {
  if (gpuForOrt) return;
  Object.assign(globalThis, globals);
  gpuForOrt = create([]);
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav) {
    if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpuForOrt, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuForOrt }, configurable: true });
  }
  const proto = (globals as { GPUQueue: { prototype: { writeBuffer: WriteBuffer } } }).GPUQueue.prototype;
  const write = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer, offset, data, dataOffset, size) {
    const shared = ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer;
    if (!shared) return write.call(this, buffer, offset, data, dataOffset, size);
    // dataOffset and size count elements of a typed array (bytes for a DataView).
    const elem = 'BYTES_PER_ELEMENT' in data ? (data.BYTES_PER_ELEMENT as number) : 1;
    const start = (dataOffset ?? 0) * elem;
    const bytes = size === undefined ? data.byteLength - start : size * elem;
    const copy = new Uint8Array(bytes);
    copy.set(new Uint8Array(data.buffer, data.byteOffset + start, bytes));
    return write.call(this, buffer, offset, copy, 0, bytes);
  };
}

/** Opens `dir/onnx/model[_fp16].onnx` on onnxruntime-web's WebGPU EP (its own Dawn device). */
export async function loadOnnxWebGpuNode(dir: string, variant: OnnxVariant): Promise<OnnxCausalLM> {
  installWebGpuForOrtWeb();
  const require = createRequire(import.meta.url);
  // The WebGPU build of ort-web runs the asyncify WASM (the JSEP file belongs to another build).
  const wasmBinary = await readFile(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));
  const file = join(dir, 'onnx', VARIANT_FILE[variant]);
  const [model, data] = await Promise.all([readFile(file), readFile(`${file}_data`)]);
  return loadOnnxWebGpu({ variant, model, data }, { wasmBinary });
}

/** onnxruntime-web's version (the runtime's label in bench output). */
export async function ortWebVersion(): Promise<string> {
  return (await import('onnxruntime-web/webgpu')).env.versions.web ?? 'unknown';
}
