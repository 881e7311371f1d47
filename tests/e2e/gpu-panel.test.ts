import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { PreviewServer } from 'vite';
import { ARTIFACTS, launchBrowser, servePreview, type GpuMode } from './harness.ts';

let server: PreviewServer;
let url: string;

beforeAll(async () => {
  ({ server, url } = await servePreview());
});

afterAll(async () => {
  await server?.close();
});

describe.each<GpuMode>(['core', 'compat'])('app shell in headless Chromium (%s mode)', (mode) => {
  it('shows the worker’s real adapter and runs the matmul kernel inside the trainer worker', async () => {
    const browser = await launchBrowser(mode);
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(mode === 'compat' ? `${url}?compat=1` : url);
      await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
      const adapter = await page.getByTestId('gpu-adapter').textContent();
      expect(adapter?.trim().length).toBeGreaterThan(0);
      console.log(`[e2e ${mode}] adapter: ${adapter?.replace(/\s+/g, ' ').trim()}`);
      // Neither SwiftShader nor llvmpipe offers subgroup matrices: the panel says the tiled matmul runs.
      expect(await page.getByTestId('subgroup-matrix').textContent()).toMatch(
        /not offered: the tiled matmul runs/,
      );

      await page.getByTestId('matmul-check').click();
      const result = page.getByTestId('matmul-result');
      await result.waitFor({ timeout: 120_000 });
      const text = (await result.textContent()) ?? '';
      const err = Number(/max error ([0-9.e+-]+)/.exec(text)?.[1]);
      // f32 accumulation over K = 257 terms in [-1, 1): 1e-4 is ~20× the expected worst case.
      expect(err).toBeLessThan(1e-4);
      await page.screenshot({ path: join(ARTIFACTS, `gpu-panel-${mode}.png`), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
