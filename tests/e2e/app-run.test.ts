// The main flow on the real trainer worker (GL-compat WebGPU, the fast mode): load the built-in tiny
// model, start a smoke run from a shared link, see steps complete and the charts and tables fill, pause
// (space bar) and resume, reload mid-run and resume from the last checkpoint with history intact, click
// from a chart point to that step's samples, run an eval, export a PEFT adapter and parse it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { ARTIFACTS, launchBrowser, servePreview, type Browser } from './harness.ts';
import {
  LOAD_TIMEOUT,
  chartPoints,
  shot,
  shownErrors,
  stepOf,
  waitForPoints,
  waitForStatus,
  waitForStep,
} from './app.ts';
import { readZip, safetensorsHeader } from './zip.ts';

// The smoke preset made smaller still for the 2-core budget (the tiny model's 151,936-token LM head
// dominates, per sequence and token): one sequence per group, short generations, a checkpoint after
// every step (so a reload loses at most one), no evals during the run (the eval flow runs one).
const STEPS = 2;
const SHARED =
  `#preset=smoke&totalSteps=${STEPS}&batchPerGroup=1&maxProposerTokens=16&maxSolverTokens=8` +
  `&evalEvery=0&evalLimit=2&checkpointEverySteps=1`;
const STEP_TIMEOUT = 240_000;

let server: PreviewServer;
let url: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const timings: Record<string, number> = {};
let t0 = 0;
const lap = (name: string) => {
  timings[name] = Math.round((performance.now() - t0) / 100) / 10;
};

async function openPage(): Promise<Page> {
  const p = await browser.context.newPage();
  await p.setViewportSize({ width: 1280, height: 720 });
  p.on('pageerror', (e) => pageErrors.push(e.message));
  return p;
}

beforeAll(async () => {
  ({ server, url } = await servePreview());
  browser = await launchBrowser('compat');
  page = await openPage();
  t0 = performance.now();
});

afterAll(async () => {
  console.log('[e2e app-run] seconds since start:', JSON.stringify(timings));
  await browser?.close();
  await server?.close();
});

describe.sequential('a smoke run in the app (compat mode)', () => {
  it('loads the built-in tiny model', async () => {
    await page.goto(`${url}?compat=1${SHARED}`);
    await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
    await page.getByTestId('source-tiny').check();
    await page.getByTestId('load-model').click();
    await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
    expect(await page.getByTestId('model-id').textContent()).toContain('tiny-seed-0');
    await page.getByTestId('memory-total').waitFor({ timeout: 30_000 });
    await shot(page, 'model');
    lap('model loaded');
  });

  it('starts a run from the shared link, pauses with the space bar and resumes', async () => {
    await page.getByTestId('tab-train').click();
    expect(await page.getByTestId('preset').inputValue()).toBe('smoke');
    expect(await page.locator('#knob-totalSteps').inputValue()).toBe(String(STEPS));
    await page.getByTestId('run-name').fill('e2e smoke');
    await page.getByTestId('start-run').click();
    await page.getByTestId('phase').waitFor({ timeout: 60_000 });
    lap('started');
    // Space pauses at the next safe point (after seeding or after the step in flight).
    await page.locator('h1').click();
    await page.keyboard.press('Space');
    await waitForStatus(page, ['paused'], STEP_TIMEOUT).catch(async (err) => {
      throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
    });
    lap(`paused at step ${await stepOf(page)}`);
    await shot(page, 'train-paused');
    await page.getByTestId('resume-run').click();
    await waitForStep(page, 1, STEP_TIMEOUT);
    lap('step 1');
    await waitForPoints(page, 'solver-accuracy', 1, 10_000);
    await waitForPoints(page, 'loss', 1, 10_000);
    expect(await page.getByTestId('live-feed').locator('li').count()).toBeGreaterThan(0);
    await shot(page, 'train-running');
  });

  it('reloads mid-run and resumes from the last checkpoint with its history', async () => {
    const before = await stepOf(page);
    expect(before).toBeLessThan(STEPS);
    await page.reload();
    await page.getByTestId('tab-train').click();
    // The stored run is shown with its curves; the page is not running it.
    const status = await waitForStatus(page, ['interrupted', 'paused'], 60_000);
    await waitForPoints(page, 'solver-accuracy', 1, 30_000);
    const restored = await chartPoints(page, 'solver-accuracy');
    expect(restored).toBeGreaterThanOrEqual(1);
    expect(restored).toBeLessThanOrEqual(before);
    await shot(page, 'train-after-reload');
    lap(`reloaded (${status})`);
    await page.getByTestId('resume-run').click();
    await waitForStatus(page, ['finished'], STEP_TIMEOUT * 2);
    lap('done');
    expect(await stepOf(page)).toBe(STEPS);
    expect(await chartPoints(page, 'solver-accuracy')).toBe(STEPS);
    await shot(page, 'train-done');
    // Workshop view: the "How it works" panel next to the live numbers, in large type.
    await page.getByTestId('toggle-how').click();
    await page.getByTestId('toggle-presentation').click();
    await page.getByTestId('how-it-works').waitFor();
    await shot(page, 'workshop-presentation');
    await page.getByTestId('toggle-presentation').click();
    await page.getByTestId('toggle-how').click();
  });

  it('clicks through from a chart point to that step’s samples', async () => {
    const over = page.getByTestId('chart-solver-accuracy').locator('.u-over');
    await over.scrollIntoViewIfNeeded();
    const box = (await over.boundingBox())!;
    // The first point sits at the left edge of the plotting area.
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.click(box.x + 2, box.y + box.height / 2);
    await page.getByTestId('samples-table').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('filter-step').inputValue()).toBe('1');
    await page.getByTestId('sample-row').first().waitFor({ timeout: 20_000 });
    const steps = await page.getByTestId('sample-row').locator('td:first-child').allTextContents();
    expect(new Set(steps)).toEqual(new Set(['1']));
    await page.getByTestId('filter-role').selectOption('propose');
    await page.waitForTimeout(600);
    const roles = await page.getByTestId('sample-row').locator('td:nth-child(4)').allTextContents();
    expect(roles.length).toBeGreaterThan(0);
    expect(new Set(roles)).toEqual(new Set(['propose']));
    await shot(page, 'samples');
    await page.getByTestId('tab-buffers').click();
    await page.getByTestId('buffer-table').locator('tbody tr').first().waitFor({ timeout: 20_000 });
    await shot(page, 'buffers');
  });

  it('runs an eval of the current weights', async () => {
    await page.getByTestId('tab-eval').click();
    await page.getByTestId('eval-limit').fill('3');
    await page.getByTestId('run-eval').click();
    await page.getByTestId('eval-result').waitFor({ timeout: STEP_TIMEOUT });
    expect(await page.getByTestId('eval-accuracy').textContent()).toMatch(/%$/);
    await shot(page, 'eval');
    lap('eval');
  });

  it('exports a PEFT adapter that parses', async () => {
    await page.getByTestId('tab-runs').click();
    const row = page.getByTestId('run-row').filter({ hasText: 'e2e smoke' });
    await row.getByTestId('export-format').selectOption('peft');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 120_000 }),
      row.getByTestId('export-run').click(),
    ]);
    const path = join(ARTIFACTS, download.suggestedFilename());
    await download.saveAs(path);
    lap('exported');
    const files = readZip(readFileSync(path));
    const names = [...files.keys()].map((n) => n.split('/').at(-1));
    expect(names).toContain('adapter_config.json');
    expect(names).toContain('adapter_model.safetensors');
    const entry = (base: string) => [...files].find(([n]) => n.endsWith(base))![1];
    const config = JSON.parse(entry('adapter_config.json').toString('utf8')) as Record<string, unknown>;
    expect(config.peft_type).toBe('LORA');
    const tensors = safetensorsHeader(entry('adapter_model.safetensors'));
    expect(Object.keys(tensors).some((k) => k.includes('lora_A'))).toBe(true);
    await shot(page, 'runs');
  });

  it('exports a run archive, imports it and replays it step by step', async () => {
    const row = page.getByTestId('run-row').filter({ hasText: 'e2e smoke' }).first();
    await row.getByTestId('export-format').selectOption('archive');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 120_000 }),
      row.getByTestId('export-run').click(),
    ]);
    const path = join(ARTIFACTS, download.suggestedFilename());
    await download.saveAs(path);
    const before = await page.getByTestId('run-row').count();
    await page.getByTestId('import-archive').setInputFiles(path);
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid="run-row"]').length > n,
      before,
      {
        timeout: 60_000,
      },
    );
    lap('archive imported');
    // The run shown in the Train view is the original; the import is the other row.
    await page.locator('[data-testid="run-row"]:not(.current)').first().getByTestId('replay-run').click();
    await page.getByTestId('replay-controls').waitFor({ timeout: 30_000 });
    await waitForPoints(page, 'solver-accuracy', STEPS, 30_000);
    await shot(page, 'replay');
    lap('replayed');
    expect(pageErrors).toEqual([]);
  });

  it("seeds a new run from another run's exported seed set", async () => {
    await page.getByTestId('tab-runs').click();
    const row = page.getByTestId('run-row').filter({ hasText: 'e2e smoke' }).first();
    await row.getByTestId('export-format').selectOption('seed-set');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 60_000 }),
      row.getByTestId('export-run').click(),
    ]);
    const path = join(ARTIFACTS, download.suggestedFilename());
    await download.saveAs(path);
    expect(readFileSync(path, 'utf8').split('\n')[0]).toContain('tabzero-seed-set');
    await page.getByTestId('tab-train').click();
    await page.getByTestId('seed-set-file').setInputFiles(path);
    await page.getByTestId('run-name').fill('e2e seeded');
    await page.getByTestId('start-run').click();
    // Seeding from the file replaces proposing: the log says so, and the run is not zero-data.
    await page
      .getByTestId('trainer-log')
      .getByText(/seeded from an imported seed set/)
      .waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
    await page.getByTestId('stop-run').click();
    await waitForStatus(page, ['stopped', 'finished'], STEP_TIMEOUT);
    await expect(page.getByTestId('run-status').getByText('not zero-data').count()).resolves.toBe(1);
    lap('seeded from a file');
    expect(pageErrors).toEqual([]);
  });
});
