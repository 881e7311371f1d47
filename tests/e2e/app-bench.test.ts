// The bench page (issue 9, "speed, side by side"): on the built-in tiny model, the same greedy decode runs
// on the engine (trainer worker) and on onnxruntime-web's WebGPU backend (this page, its own device, its
// files from the app's /ort/), and the page reports both speeds and their ratio. Speeds on a software
// GPU mean nothing; the test checks that both sides really ran the whole workload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreviewServer } from 'vite';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors } from './app.ts';

const PROMPT_TOKENS = 8;
const NEW_TOKENS = 4;
/** Both warm-ups, the in-memory export and two short decodes on SwiftShader. */
const BENCH_TIMEOUT = 150_000;

let server: PreviewServer;
let url: string;

beforeAll(async () => {
  ({ server, url } = await servePreview());
});

afterAll(async () => {
  await server?.close();
});

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
      await shot(page, 'bench');
      const engine = Number(await page.getByTestId('bench-engine').getAttribute('data-decode'));
      const onnx = Number(await page.getByTestId('bench-onnx').getAttribute('data-decode'));
      const ratio = Number(await page.getByTestId('bench-ratio').getAttribute('data-ratio'));
      expect(engine).toBeGreaterThan(0);
      expect(onnx).toBeGreaterThan(0);
      expect(ratio).toBeCloseTo(engine / onnx, 6);
      const table = (await page.getByTestId('bench-table').textContent()) ?? '';
      expect(table).toContain('onnxruntime-web, WebGPU execution provider');
      expect(await page.getByTestId('bench-ratio').textContent()).toContain(`of ${NEW_TOKENS + 1}`);
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
