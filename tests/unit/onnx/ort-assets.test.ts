import { describe, expect, it } from 'vitest';
import { ortWasmBase, transformersJsWasmPaths } from '../../../src/onnx/ort-assets.ts';

describe('the app’s onnxruntime-web WASM URLs', () => {
  it('are absolute, under the base URL, on the page’s origin', () => {
    expect(ortWasmBase('/', 'http://127.0.0.1:5173/assets/trainer.worker-abc.js')).toBe(
      'http://127.0.0.1:5173/ort/',
    );
    expect(ortWasmBase('/tabzero/', 'https://example.org/tabzero/index.html')).toBe(
      'https://example.org/tabzero/ort/',
    );
    expect(ortWasmBase('/tabzero', 'https://example.org/tabzero/')).toBe('https://example.org/tabzero/ort/');
  });

  it('point transformers.js at the app’s asyncify build, not a CDN', () => {
    expect(transformersJsWasmPaths('/', 'http://127.0.0.1:4000/')).toEqual({
      mjs: 'http://127.0.0.1:4000/ort/ort-wasm-simd-threaded.asyncify.mjs',
      wasm: 'http://127.0.0.1:4000/ort/ort-wasm-simd-threaded.asyncify.wasm',
    });
  });
});
