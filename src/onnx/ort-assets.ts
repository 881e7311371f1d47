// Where the app serves onnxruntime-web's own WASM files (never a CDN): one folder of the app's origin,
// filled by scripts/vite-ort-plugin.ts in `vite dev`, `vite build` / preview and `npm start`. Shared by
// that plugin (Node) and the app (browser), so both name the same folder and files. Browser-safe.

/** The folder under the app's base URL: `/ort/` when the app is served from `/`. */
export const ORT_ASSET_DIR = 'ort';

/**
 * The files served, as onnxruntime-web's dist/ names them:
 * - plain: the WASM backend (`onnxruntime-web/wasm`, the parity check and the ONNX eval);
 * - jsep: the JSEP WebGPU backend of the default bundle (`onnxruntime-web`);
 * - asyncify: the WebGPU backend of `onnxruntime-web/webgpu`, which transformers.js imports.
 * (The jspi build needs a browser flag: not served.)
 */
export const ORT_WASM_FILES = [
  'ort-wasm-simd-threaded.wasm',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.jsep.wasm',
  'ort-wasm-simd-threaded.jsep.mjs',
  'ort-wasm-simd-threaded.asyncify.wasm',
  'ort-wasm-simd-threaded.asyncify.mjs',
] as const;

/**
 * Absolute URL of the folder, for `ort.env.wasm.wasmPaths` (onnxruntime-web appends the file names).
 * `base` is the app's base URL (`import.meta.env.BASE_URL`), `page` the page's or worker's URL.
 */
export function ortWasmBase(base: string, page: string): string {
  const dir = base.endsWith('/') ? base : `${base}/`;
  return new URL(`${dir}${ORT_ASSET_DIR}/`, page).href;
}

/**
 * transformers.js's `env.backends.onnx.wasm.wasmPaths` for the app's copy: it otherwise points at a CDN
 * (jsDelivr). transformers.js runs onnxruntime-web/webgpu, whose build is the asyncify one, and takes the
 * `{ mjs, wasm }` form to cache the binary.
 */
export function transformersJsWasmPaths(base: string, page: string): { mjs: string; wasm: string } {
  const dir = ortWasmBase(base, page);
  return {
    mjs: `${dir}ort-wasm-simd-threaded.asyncify.mjs`,
    wasm: `${dir}ort-wasm-simd-threaded.asyncify.wasm`,
  };
}
