// The ONNX Runtime bridge in the app (issue 9): load the built-in tiny model, "Check against ONNX
// Runtime" (the trainer worker exports it to ONNX in memory and runs onnxruntime-web's WASM backend,
// loaded from the app's own /ort/ files, beside the engine) on two typed prompts, then one small eval
// on the ONNX backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreviewServer } from 'vite';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors } from './app.ts';

const NEW_TOKENS = '4';
/** Typed by the user: each is rendered with the chat template the engine uses. */
const PROMPTS = ['What is 17 * 23 - 5?', 'Compute (48 // 5) % 7.'];
const EVAL_ITEMS = 3;
/** Export, load and a few prompts on the tiny model: seconds, on a software GPU and one WASM thread. */
const CHECK_TIMEOUT = 120_000;

let server: PreviewServer;
let url: string;

beforeAll(async () => {
  ({ server, url } = await servePreview());
});

afterAll(async () => {
  await server?.close();
});

describe('Check against ONNX Runtime, in the app', () => {
  it('passes on the tiny model, and evaluates on the ONNX backend', async () => {
    const browser = await launchBrowser('compat');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 900 });
      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      await page.goto(`${url}?compat=1`);
      await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
      await page.getByTestId('source-tiny').check();
      await page.getByTestId('load-model').click();
      await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });

      await page.getByTestId('tab-eval').click();
      await page.getByTestId('onnx-max-new').fill(NEW_TOKENS);
      await page.getByTestId('onnx-prompts').fill(PROMPTS.join('\n'));
      await page.getByTestId('onnx-run').click();
      await page
        .getByTestId('onnx-result')
        .waitFor({ timeout: CHECK_TIMEOUT })
        .catch(async (err) => {
          throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
        });
      await shot(page, 'onnx-check');
      expect(await page.getByTestId('onnx-verdict').textContent()).toBe('PASS');
      expect(await page.getByTestId('onnx-variant-used').textContent()).toBe('fp32');
      const tolerance = Number(await page.getByTestId('onnx-result').getAttribute('data-tolerance'));
      expect(tolerance).toBeGreaterThan(0);
      const rows = page.getByTestId('onnx-row');
      expect(await rows.count()).toBe(PROMPTS.length);
      for (let i = 0; i < PROMPTS.length; i++) {
        const row = rows.nth(i);
        expect(await row.getAttribute('data-pass')).toBe('true');
        const [agree, decidable] = ((await row.getByTestId('onnx-decidable').textContent()) ?? '')
          .split('/')
          .map(Number);
        expect(agree).toBe(decidable);
        expect(Number(await row.getByTestId('onnx-max-diff').textContent())).toBeLessThanOrEqual(tolerance);
      }
      // onnxruntime-web's WASM came from the app's origin, never a CDN.
      const ort = requested.filter((u) => u.includes('ort-wasm-simd-threaded'));
      expect(ort.length).toBeGreaterThan(0);
      expect(ort.every((u) => u.startsWith(`${url}ort/`))).toBe(true);

      await page.getByTestId('eval-backend').selectOption('onnx');
      await page.getByTestId('eval-mode').selectOption('raw');
      await page.getByTestId('eval-limit').fill(String(EVAL_ITEMS));
      await page.getByTestId('run-eval').click();
      await page.getByTestId('eval-result').waitFor({ timeout: CHECK_TIMEOUT });
      const result = (await page.getByTestId('eval-result').textContent()) ?? '';
      expect(result).toContain('ONNX Runtime');
      expect(result).toMatch(new RegExp(`\\d+ of ${EVAL_ITEMS} correct`));
      expect(await shownErrors(page)).toEqual([]);
      await shot(page, 'onnx-eval');
    } finally {
      await browser.close();
    }
  });
});
