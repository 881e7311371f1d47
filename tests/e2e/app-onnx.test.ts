// The ONNX Runtime bridge in the app (issue 9): load the built-in tiny model, "Check against ONNX
// Runtime" (the trainer worker exports it to ONNX in memory and runs onnxruntime-web's WASM backend,
// loaded from the app's own /ort/ files, beside the engine) on two typed prompts, then one small eval
// on the ONNX backend. All of it, every tab and a chat, under the app's Content Security Policy (issue 19):
// the header `npm start` sends, the built page's <meta>, and no violation in the page or its workers.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
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
  it('sends its Content Security Policy with the page and with the worker scripts', async () => {
    const worker = readdirSync(join(process.cwd(), 'dist', 'assets')).find((f) =>
      /^trainer\.worker-.*\.js$/.test(f),
    );
    expect(worker).toBeDefined();
    for (const path of ['', `assets/${worker}`]) {
      const policy = (await fetch(`${url}${path}`)).headers.get('content-security-policy') ?? '';
      expect(policy, path).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(policy, path).not.toContain("'unsafe-eval'");
      expect(policy, path).toMatch(/connect-src 'self' https:\/\/huggingface\.co /);
    }
    const html = await (await fetch(url)).text();
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src/);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline scripts
  });

  it('passes on the tiny model, and evaluates on the ONNX backend, with no policy violation', async () => {
    const browser = await launchBrowser('compat');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 900 });
      // The page's and the workers' violations reach the console (reportViolations); the page's also here.
      const violations: string[] = [];
      page.on('console', (m) => {
        if (m.text().includes('Content Security Policy')) violations.push(m.text());
      });
      await page.addInitScript(() =>
        document.addEventListener('securitypolicyviolation', (e) =>
          console.error(`Content Security Policy violation (page): ${e.effectiveDirective} ${e.blockedURI}`),
        ),
      );
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

      // Every tab, then a chat with the base model.
      const tabs = page.locator('[data-testid^="tab-"]');
      for (let i = 0; i < (await tabs.count()); i++) await tabs.nth(i).click();
      await page.getByTestId('tab-chat').click();
      await page.getByTestId('chat-max-new').fill('4');
      await page.getByTestId('chat-send').click();
      await page.getByTestId('chat-answer').first().waitFor({ timeout: LOAD_TIMEOUT });
      expect(violations).toEqual([]);
      expect(await shownErrors(page)).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
