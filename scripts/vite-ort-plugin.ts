// A vite plugin that serves onnxruntime-web's own .wasm/.mjs files from the app's origin under
// `<base>ort/` (src/onnx/ort-assets.ts names the folder and files): from node_modules in `vite dev`,
// copied into dist/ort/ by `vite build` (so `vite preview` and `npm start` serve them as static files).
// It also resolves onnxruntime-web's imports to its builds that load these files from `wasmPaths`
// (the `onnxruntime-web-use-extern-wasm` export condition), rather than its default builds, which embed
// the glue code and make vite emit a second, hashed copy of the 14 MB binary.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defaultClientConditions, type Plugin } from 'vite';
import { ORT_ASSET_DIR, ORT_WASM_FILES } from '../src/onnx/ort-assets.ts';

/** onnxruntime-web's export condition for its builds that fetch the .mjs glue and .wasm from wasmPaths. */
const EXTERN_WASM_CONDITION = 'onnxruntime-web-use-extern-wasm';

const CONTENT_TYPE: Readonly<Record<string, string>> = {
  '.wasm': 'application/wasm',
  '.mjs': 'text/javascript',
};

/** onnxruntime-web's dist/ folder, as installed (its package.json is not exported; a .wasm file is). */
export function ortDistDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`onnxruntime-web/${ORT_WASM_FILES[0]}`));
}

function contentType(file: string): string {
  const ext = file.slice(file.lastIndexOf('.'));
  return CONTENT_TYPE[ext] ?? 'application/octet-stream';
}

export function ortWasmPlugin(): Plugin {
  const served = new Set<string>(ORT_WASM_FILES);
  return {
    name: 'tabzero-ort-wasm',
    config: () => ({
      resolve: { conditions: [EXTERN_WASM_CONDITION, ...defaultClientConditions] },
    }),
    configureServer(server) {
      const dist = ortDistDir();
      server.middlewares.use(`${server.config.base}${ORT_ASSET_DIR}`, (req, res, next) => {
        const name = decodeURIComponent((req.url ?? '').split('?')[0].replace(/^\//, ''));
        if (!served.has(name)) return next();
        const path = join(dist, name);
        stat(path).then(
          (s) => {
            res.setHeader('Content-Type', contentType(name));
            res.setHeader('Content-Length', String(s.size));
            if (req.method === 'HEAD') return res.end();
            createReadStream(path).pipe(res);
          },
          (err: Error) => next(err),
        );
      });
    },
    async generateBundle() {
      const dist = ortDistDir();
      for (const name of ORT_WASM_FILES) {
        this.emitFile({
          type: 'asset',
          fileName: `${ORT_ASSET_DIR}/${name}`,
          source: await readFile(join(dist, name)),
        });
      }
    },
  };
}
