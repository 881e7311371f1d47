// The app serves onnxruntime-web's own WASM files from its origin under /ort/ (scripts/vite-ort-plugin.ts),
// never from a CDN: `vite build` copies them into dist/ort/, `vite preview` (and so `npm start`) serves
// them from there, and `vite dev` serves them from node_modules — byte for byte, with the content type
// WebAssembly.instantiateStreaming and module imports need.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type PreviewServer } from 'vite';
import { ORT_ASSET_DIR, ORT_WASM_FILES } from '../../src/onnx/ort-assets.ts';
import { ortDistDir } from '../../scripts/vite-ort-plugin.ts';
import { servePreview } from './harness.ts';

const EXPECTED_TYPE = (file: string) => (file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');

let preview: PreviewServer;
let previewUrl: string;

beforeAll(async () => {
  ({ server: preview, url: previewUrl } = await servePreview());
});

afterAll(async () => {
  await preview?.close();
});

describe('onnxruntime-web WASM files served by the app', () => {
  it('are in dist/ort/ after the build, identical to onnxruntime-web’s', () => {
    const source = ortDistDir();
    for (const file of ORT_WASM_FILES) {
      const built = join(process.cwd(), 'dist', ORT_ASSET_DIR, file);
      expect(statSync(built).size, file).toBe(statSync(join(source, file)).size);
    }
    const glue = ORT_WASM_FILES.find((f) => f.endsWith('.mjs'))!;
    expect(readFileSync(join(process.cwd(), 'dist', ORT_ASSET_DIR, glue))).toEqual(
      readFileSync(join(source, glue)),
    );
  });

  it('are served by vite preview (npm start) with their content types', async () => {
    for (const file of ORT_WASM_FILES) {
      const res = await fetch(`${previewUrl}${ORT_ASSET_DIR}/${file}`, { method: 'HEAD' });
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type'), file).toContain(EXPECTED_TYPE(file));
      expect(Number(res.headers.get('content-length')), file).toBe(statSync(join(ortDistDir(), file)).size);
    }
  });

  it('are served by vite dev from node_modules, and nothing else under /ort/', async () => {
    const dev = await createServer({ logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
    try {
      await dev.listen();
      const address = dev.httpServer?.address();
      if (!address || typeof address === 'string') throw new Error('vite dev did not bind a TCP port');
      const base = `http://127.0.0.1:${address.port}/${ORT_ASSET_DIR}/`;
      for (const file of ORT_WASM_FILES) {
        const res = await fetch(`${base}${file}`, { method: 'HEAD' });
        expect(res.status, file).toBe(200);
        expect(res.headers.get('content-type'), file).toBe(EXPECTED_TYPE(file));
      }
      const glue = 'ort-wasm-simd-threaded.mjs';
      const body = new Uint8Array(await (await fetch(`${base}${glue}`)).arrayBuffer());
      expect(body).toEqual(new Uint8Array(readFileSync(join(ortDistDir(), glue))));
      const wasm = await fetch(`${base}ort-wasm-simd-threaded.wasm`);
      expect((await wasm.arrayBuffer()).byteLength).toBe(
        statSync(join(ortDistDir(), 'ort-wasm-simd-threaded.wasm')).size,
      );
      // Only the listed files: not a window onto node_modules.
      const other = await fetch(`${base}ort.wasm.min.mjs`);
      expect(other.headers.get('content-type') ?? '').not.toBe('text/javascript');
    } finally {
      await dev.close();
    }
  });
});
