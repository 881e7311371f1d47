// The bench page (issue 9, "speed, side by side"): on the built-in tiny model, the same greedy decode runs
// on the engine (trainer worker) and on the ONNX side (this page, its own device, onnxruntime-web's files
// from the app's /ort/): first onnxruntime-web's WebGPU backend on the model exported in the tab, then
// transformers.js loading an ONNX export from a local mock hub (the hub's URL layout, as for the official
// onnx-community repos). The page reports both speeds and their ratio. Speeds on a software GPU mean
// nothing; the test checks that both sides really ran the whole workload.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { startModelServer, type ModelServer } from '../../src/model/node-model-server.ts';
import { nodeFolderSink } from '../../src/model/node-folder.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { exportOnnxFolder } from '../../src/onnx/node.ts';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors } from './app.ts';

const PROMPT_TOKENS = 8;
const NEW_TOKENS = 4;
/** Both warm-ups, the in-memory export and two short decodes on SwiftShader. */
const BENCH_TIMEOUT = 150_000;
const REPO = 'tabzero-test/tiny-qwen2-onnx';

let server: PreviewServer;
let url: string;
let hub: ModelServer;
let root: string;
const hubRequests: string[] = [];

beforeAll(async () => {
  ({ server, url } = await servePreview());
  root = mkdtempSync(join(tmpdir(), 'tabzero-bench-hub-'));
  await generateTinyModel(await nodeFolderSink(join(root, 'model')), {
    seed: 3,
    tokenizerFiles: await loadQwen2TokenizerFiles(),
    tokenizerKind: 'qwen2',
    dtype: 'BF16',
  });
  await exportOnnxFolder(join(root, 'model'), join(root, 'onnx'), { variants: ['fp32'] });
  hub = await startModelServer({
    dir: join(root, 'onnx'),
    host: '127.0.0.1',
    port: 0,
    repo: REPO,
    onRequest: (r) => hubRequests.push(`${r.method} ${r.path} ${r.status}`),
  });
});

afterAll(async () => {
  await hub?.close();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Runs the bench and waits for the ratio, failing with the page's own words when the ONNX side fails. */
async function runBench(page: Page): Promise<{ engine: number; onnx: number; ratio: number }> {
  await page.getByTestId('bench-run').click();
  await Promise.race([
    page.getByTestId('bench-ratio').waitFor({ timeout: BENCH_TIMEOUT }),
    page
      .getByTestId('bench-onnx-error')
      .waitFor({ timeout: BENCH_TIMEOUT })
      .then(async () => {
        throw new Error(`ONNX side failed: ${await page.getByTestId('bench-onnx-error').textContent()}`);
      }),
  ]).catch(async (err) => {
    throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
  });
  return {
    engine: Number(await page.getByTestId('bench-engine').getAttribute('data-decode')),
    onnx: Number(await page.getByTestId('bench-onnx').getAttribute('data-decode')),
    ratio: Number(await page.getByTestId('bench-ratio').getAttribute('data-ratio')),
  };
}

describe('the bench page', () => {
  it('times the engine and onnxruntime-web WebGPU on the same workload and reports the ratio', async () => {
    const browser = await launchBrowser('core');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 900 });
      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      await page.goto(url);
      await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
      await page.getByTestId('tab-bench').click();
      expect(await page.getByTestId('bench-blocked').textContent()).toContain('Load a model');
      await page.getByTestId('tab-model').click();
      await page.getByTestId('source-tiny').check();
      await page.getByTestId('load-model').click();
      await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });

      await page.getByTestId('tab-bench').click();
      await page.getByTestId('bench-prompt').fill(String(PROMPT_TOKENS));
      await page.getByTestId('bench-new').fill(String(NEW_TOKENS));
      const a = await runBench(page);
      await shot(page, 'bench');
      expect(a.engine).toBeGreaterThan(0);
      expect(a.onnx).toBeGreaterThan(0);
      expect(a.ratio).toBeCloseTo(a.engine / a.onnx, 6);
      const table = (await page.getByTestId('bench-table').textContent()) ?? '';
      expect(table).toContain('onnxruntime-web, WebGPU execution provider');
      expect(await page.getByTestId('bench-ratio').textContent()).toContain(`of ${NEW_TOKENS + 1}`);

      // transformers.js, loading an ONNX export from the mock hub.
      await page.getByTestId('bench-source').selectOption('hub');
      await page.getByTestId('bench-repo').fill(REPO);
      await page.getByTestId('bench-endpoint').fill(hub.url);
      await page.getByTestId('bench-tjs-dtype').selectOption('fp32');
      const b = await runBench(page);
      await shot(page, 'bench-transformers-js');
      expect(b.onnx).toBeGreaterThan(0);
      expect(b.ratio).toBeCloseTo(b.engine / b.onnx, 6);
      const row = (await page.getByTestId('bench-onnx').textContent()) ?? '';
      expect(row).toContain('transformers.js, WebGPU');
      expect(row).toContain(REPO);
      expect(hubRequests.some((r) => r.includes(`/${REPO}/resolve/main/onnx/model.onnx`))).toBe(true);
      // The WebGPU build of onnxruntime-web came from the app's origin.
      const ort = requested.filter((u) => u.includes('ort-wasm-simd-threaded'));
      expect(ort.some((u) => u.includes('asyncify'))).toBe(true);
      expect(ort.every((u) => u.startsWith(`${url}ort/`))).toBe(true);
      expect(await shownErrors(page)).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
