// Helpers for driving the app in e2e flows: wait for steps, statuses and chart points, take screenshots.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ARTIFACTS } from './harness.ts';

/** The tiny model is generated in the worker (real Qwen2 tokenizer): allow for a slow software GPU. */
export const LOAD_TIMEOUT = 180_000;

/** Waits until the run's step counter reaches `step`. */
export async function waitForStep(page: Page, step: number, timeout: number): Promise<void> {
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="run-step"]')?.textContent?.split('/')[0]) >= n,
    step,
    { timeout, polling: 250 },
  );
}

export async function waitForStatus(page: Page, statuses: string[], timeout: number): Promise<string> {
  const handle = await page.waitForFunction(
    (wanted) => {
      const t = document.querySelector('[data-testid="run-status-value"]')?.textContent?.trim() ?? '';
      return wanted.includes(t) ? t : false;
    },
    statuses,
    { timeout, polling: 250 },
  );
  return (await handle.jsonValue()) as string;
}

/** Waits until a chart holds at least `n` points. */
export async function waitForPoints(page: Page, chartId: string, n: number, timeout: number): Promise<void> {
  await page.waitForFunction(
    ([id, min]) =>
      Number(document.querySelector(`[data-testid="chart-${id}"]`)?.getAttribute('data-points')) >= min,
    [chartId, n] as const,
    { timeout, polling: 250 },
  );
}

export async function chartPoints(page: Page, chartId: string): Promise<number> {
  return Number(await page.getByTestId(`chart-${chartId}`).getAttribute('data-points'));
}

export async function stepOf(page: Page): Promise<number> {
  const text = (await page.getByTestId('run-step').textContent()) ?? '';
  return Number(text.split('/')[0]);
}

/**
 * Saves a screenshot for review. In GL-compat mode the GPU process also composites the page, so while
 * a long WebGPU dispatch runs a screenshot can wait; a missed screenshot is logged, not a failure.
 */
export async function shot(page: Page, name: string, timeout = 20_000): Promise<void> {
  try {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), timeout });
  } catch (err) {
    console.log(`[e2e] screenshot ${name} skipped: ${String(err).split('\n')[0]}`);
  }
}

/** The app's own error messages (what happened / what to do), for assertion messages. */
export async function shownErrors(page: Page): Promise<string[]> {
  return page.getByTestId('user-error').allTextContents();
}
