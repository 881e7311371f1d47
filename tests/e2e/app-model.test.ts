// Model loading in the app: with no network and nothing cached the first screen says so and offers
// local files and the tiny model; a tiny model loads through the hub path from a local mock hub
// (`startModelServer`, the hub's URL layout) with its size shown first and a progress bar observed;
// and one short flow in core mode (SwiftShader): load the tiny model and generate a few tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PreviewServer } from 'vite';
import { startModelServer, type ModelServer } from '../../src/model/node-model-server.ts';
import { nodeFolderSink } from '../../src/model/node-folder.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors } from './app.ts';

const REPO = 'tabzero-test/tiny-qwen2';

let server: PreviewServer;
let url: string;
let hub: ModelServer;
let modelDir: string;
const requests: string[] = [];

beforeAll(async () => {
  ({ server, url } = await servePreview());
  modelDir = mkdtempSync(join(tmpdir(), 'tabzero-hub-'));
  await generateTinyModel(await nodeFolderSink(modelDir), {
    seed: 7,
    tokenizerFiles: await loadQwen2TokenizerFiles(),
    tokenizerKind: 'qwen2',
    dtype: 'BF16',
  });
  hub = await startModelServer({
    dir: modelDir,
    host: '127.0.0.1',
    port: 0,
    repo: REPO,
    onRequest: (r) => requests.push(`${r.method} ${r.path} ${r.status}`),
  });
});

afterAll(async () => {
  await hub?.close();
  await server?.close();
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

describe('loading a model in the app', () => {
  it('says so when offline with nothing cached, and offers the workshop model, local files and the tiny model', async () => {
    const browser = await launchBrowser('compat');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 720 });
      await page.addInitScript(() =>
        Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false }),
      );
      await page.goto(`${url}?compat=1`);
      await page.getByTestId('offline-message').waitFor({ timeout: 30_000 });
      expect(await page.getByTestId('source-workshop').isChecked()).toBe(true);
      await shot(page, 'model-offline');
    } finally {
      await browser.close();
    }
  });

  it('loads a tiny model through the hub path from a local mirror, with size and progress', async () => {
    const browser = await launchBrowser('compat');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 720 });
      // Record every state of the progress bar: a local download can be over in a moment.
      await page.addInitScript(() => {
        const seen: number[] = [];
        (window as unknown as { progressSeen: number[] }).progressSeen = seen;
        new MutationObserver(() => {
          const bar = document.querySelector('[data-testid="load-progress"] [role="progressbar"]');
          const now = Number(bar?.getAttribute('aria-valuenow'));
          if (bar && Number.isFinite(now) && seen.at(-1) !== now) seen.push(now);
        }).observe(document, { subtree: true, childList: true, attributes: true });
      });
      await page.goto(`${url}?compat=1`);
      await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
      await page.getByTestId('source-hub').check();
      await page.getByTestId('hub-repo').fill(REPO);
      await page.getByTestId('use-mirror').check();
      await page.getByTestId('hub-endpoint').fill(hub.url);
      await page.waitForFunction(
        () =>
          /Download: .*MB/.test(document.querySelector('[data-testid="download-size"]')?.textContent ?? ''),
        null,
        { timeout: 30_000 },
      );
      await shot(page, 'model-hub-size');
      await page.getByTestId('load-model').click();
      await page
        .getByTestId('model-info')
        .waitFor({ timeout: LOAD_TIMEOUT })
        .catch(async (err) => {
          throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
        });
      const seen = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
      expect(seen.length).toBeGreaterThan(0);
      expect(requests.some((r) => r.startsWith('GET') && r.includes('model.safetensors'))).toBe(true);
      await shot(page, 'model-hub-loaded');
    } finally {
      await browser.close();
    }
  });

  it('core mode: loads the tiny model and generates a few tokens', async () => {
    const browser = await launchBrowser('core');
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 720 });
      await page.goto(url);
      await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
      await page.getByTestId('source-tiny').check();
      await page.getByTestId('load-model').click();
      await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
      await page.getByTestId('tab-chat').click();
      await page.getByTestId('chat-max-new').fill('4');
      await page.getByTestId('chat-send').click();
      await page.getByTestId('chat-answer').first().waitFor({ timeout: LOAD_TIMEOUT });
      expect(await shownErrors(page)).toEqual([]);
      await shot(page, 'chat-core');
    } finally {
      await browser.close();
    }
  });
});
