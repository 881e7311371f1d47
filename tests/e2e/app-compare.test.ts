// The Compare view (issue 10): two small run archives written in Node (real stored runs with
// hand-chosen committed steps, the experiments tests' fixtures) are imported through the Runs tab, then
// compared: overlaid curves on shared axes, by step and by sequences generated, with the summary and
// the config-difference tables. No model and no training: the flow stays well under a minute.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { ARCHIVE_EXTENSION } from '../../src/store/archive.ts';
import { writeRunArchiveFile } from '../../src/store/node-archive.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { writeTwoRuns } from '../unit/experiments/fixtures.ts';
import { ARTIFACTS, launchBrowser, servePreview, type Browser } from './harness.ts';

let server: PreviewServer;
let url: string;
let browser: Browser;
let page: Page;
let root: string;
const archives: string[] = [];
const pageErrors: string[] = [];
let t0 = 0;

/** Points (rows on the union of the runs' x positions) a comparison chart holds. */
const points = async (id: string) =>
  Number(await page.getByTestId(`chart-compare-${id}`).getAttribute('data-points'));

beforeAll(async () => {
  t0 = performance.now();
  root = mkdtempSync(join(tmpdir(), 'tabzero-e2e-compare-'));
  await writeTwoRuns(root);
  const store = new NodeRunStore(root);
  for (const id of ['six', 'two']) {
    const file = join(root, `${id}${ARCHIVE_EXTENSION}`);
    await writeRunArchiveFile(file, await (await store.readRun(id)).exportData(), 'e2e compare');
    archives.push(file);
  }
  ({ server, url } = await servePreview());
  browser = await launchBrowser('compat');
  page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  console.log(`[e2e app-compare] ${Math.round((performance.now() - t0) / 100) / 10} s`);
  await browser?.close();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.sequential('comparing runs in the app', () => {
  it('imports two run archives', async () => {
    await page.goto(`${url}?compat=1`);
    await page.getByTestId('tab-runs').click();
    await page.getByTestId('runs').waitFor({ timeout: 30_000 });
    for (const [k, file] of archives.entries()) {
      await page.getByTestId('import-archive').setInputFiles(file);
      await page.waitForFunction(
        (n) => document.querySelectorAll('[data-testid="run-row"]').length >= n,
        k + 1,
        { timeout: 30_000 },
      );
    }
    expect(await page.getByTestId('compare-pick').count()).toBe(2);
  });

  it('overlays the two runs by step, with the summary and config-difference tables', async () => {
    await expect(page.getByTestId('compare-runs').isDisabled()).resolves.toBe(true);
    for (const box of await page.getByTestId('compare-pick').all()) await box.check();
    await page.getByTestId('compare-runs').click();
    await page.locator('[data-testid="compare-result"][data-x="steps"]').waitFor({ timeout: 30_000 });
    // Run "six" has steps 1-3, run "two" steps 1-2: one shared axis of 3 steps.
    expect(await points('solver-accuracy-abd')).toBe(3);
    expect(await points('eval-arith_eval_200-raw')).toBe(3);
    for (const id of ['solver-accuracy-ded', 'solver-accuracy-ind', 'proposer-reward', 'valid-rate']) {
      expect(await points(id)).toBe(3);
    }
    // uPlot draws one series per run (plus the x series) in the legend. The chart is built after its
    // data-points attribute is set (a later frame, slower under load), so the count is waited for.
    const legend = page.getByTestId('chart-compare-valid-rate').locator('.u-legend .u-series');
    await expect.poll(() => legend.count(), { timeout: 15_000 }).toBe(3);
    expect(await page.getByTestId('compare-summary-row').count()).toBe(2);
    const diff = await page.getByTestId('compare-config-row').locator('th').allTextContents();
    expect(diff).toEqual(expect.arrayContaining(['totalSteps', 'baselines', 'seed']));
    const baselines = page.getByTestId('compare-config-row').filter({ hasText: 'baselines' });
    // Columns follow the runs' order in the comparison: pair each value with its run's header.
    const heads = await page.getByTestId('compare-config-diff').locator('thead th').allTextContents();
    const values = await baselines.locator('td').allTextContents();
    const byRun = Object.fromEntries(heads.slice(1).map((h, i) => [h.split('-')[0], values[i]]));
    expect(byRun).toEqual({ six: '6', two: '2' });
  });

  it('re-aligns by sequences generated and shows it', async () => {
    await page.getByTestId('compare-x-sequences').check();
    await page.locator('[data-testid="compare-result"][data-x="sequences"]').waitFor({ timeout: 30_000 });
    // Cumulative sequences: six at 10, 30, 60; two at 40, 80 — five distinct x positions.
    expect(await points('solver-accuracy-abd')).toBe(5);
    const sequencesOf = (run: string) =>
      page
        .getByTestId('compare-summary-row')
        .filter({ hasText: run })
        .locator('td:nth-child(5)')
        .textContent();
    expect(await sequencesOf('six')).toBe('60');
    expect(await sequencesOf('two')).toBe('80');
    await page.getByTestId('compare').scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await page.getByTestId('compare').screenshot({ path: join(ARTIFACTS, 'compare.png') });
    expect(pageErrors).toEqual([]);
  });
});
