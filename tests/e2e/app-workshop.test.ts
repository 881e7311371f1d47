// The workshop flow in the app (compat mode), with the browser told it is offline: the shipped workshop
// model is the default choice and loads from the app's own origin; a `workshop` self-play run reaches
// step 1 with its first chart points; then the "Imitation first" phase runs a few steps on the same model
// and its loss chart fills; a `journal-grpo` step shows its KL chart; the Eval tab scores your own eval
// file and refuses a bad one line by line, and a run evaluates a file added in its form. The runs are
// made smaller than their presets for the 2-core budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { WORKSHOP_MODEL_NAME } from '../../src/trainer/workshop-recipe.ts';
import { launchBrowser, servePreview, type Browser } from './harness.ts';
import {
  LOAD_TIMEOUT,
  chartPoints,
  shot,
  shownErrors,
  waitForPoints,
  waitForStatus,
  waitForStep,
} from './app.ts';

/** One self-play step: two sequences per group, two estimation rollouts, two seeding rounds, no evals. */
const SELFPLAY_LINK = '#preset=workshop&totalSteps=1&batchPerGroup=2&nEst=2&maxSeedRounds=2&evalEvery=0';
const IMITATION_STEPS = 3;
const RUN_TIMEOUT = 300_000;

let server: PreviewServer;
let url: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

/** Sets one knob of the run form (its group folded open first). */
async function setKnob(group: string, key: string, value: number): Promise<void> {
  const details = page.getByTestId(`knob-group-${group}`);
  if ((await details.getAttribute('open')) === null) await details.locator('summary').click();
  await page.locator(`#knob-${key}`).fill(String(value));
  expect(await page.locator(`#knob-${key}`).inputValue()).toBe(String(value));
}

async function failWithErrors(err: unknown): Promise<never> {
  throw new Error(`${String(err)}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
}

beforeAll(async () => {
  ({ server, url } = await servePreview());
  browser = await launchBrowser('compat');
  page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false }));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.sequential('the workshop model in the app (offline, compat mode)', () => {
  it('loads the workshop model from the app’s origin with no network', async () => {
    await page.goto(`${url}?compat=1${SELFPLAY_LINK}`);
    await page.getByTestId('offline-message').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('source-workshop').isChecked()).toBe(true);
    await page.getByTestId('load-model').click();
    await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
    expect(await page.getByTestId('model-id').textContent()).toContain(WORKSHOP_MODEL_NAME);
  });

  it('runs a workshop self-play step and shows its first chart points', async () => {
    await page.getByTestId('tab-train').click();
    expect(await page.getByTestId('preset').inputValue()).toBe('workshop');
    // The workshop preset's spec DEVIATIONs are named in one badge.
    const deviations = await page.getByTestId('active-deviations').textContent();
    for (const key of ['promptFamily', 'excludeEvalItems', 'seedFallback']) expect(deviations).toContain(key);
    await page.getByTestId('run-name').fill('e2e workshop self-play');
    await page.getByTestId('start-run').click();
    await waitForStep(page, 1, RUN_TIMEOUT).catch(failWithErrors);
    await waitForPoints(page, 'solver-accuracy', 1, 30_000);
    await waitForPoints(page, 'loss', 1, 30_000);
    await waitForStatus(page, ['finished'], 60_000);
    await shot(page, 'workshop-train-step1');
  });

  it('runs the "Imitation first" phase for a few steps and fills its loss chart', async () => {
    await page.getByTestId('phase-imitation').check();
    await page.getByTestId('imitation-note').waitFor();
    await setKnob('run', 'totalSteps', IMITATION_STEPS);
    await setKnob('imitation', 'imitationBatch', 8);
    await setKnob('eval', 'evalEvery', 0);
    await page.getByTestId('run-name').fill('e2e imitation');
    await page.getByTestId('start-run').click();
    await waitForStatus(page, ['finished'], RUN_TIMEOUT).catch(failWithErrors);
    await waitForPoints(page, 'imitation-loss', IMITATION_STEPS, 30_000);
    expect(await chartPoints(page, 'imitation-loss')).toBe(IMITATION_STEPS);
    await shot(page, 'workshop-imitation');
    expect(pageErrors).toEqual([]);
  });

  it('runs a journal-grpo step and shows its KL chart', async () => {
    await page.getByTestId('preset').selectOption('journal-grpo');
    await page.getByTestId('phase-selfplay').waitFor();
    await setKnob('run', 'totalSteps', 1);
    await setKnob('grpo', 'grpoGroupSize', 4);
    await setKnob('grpo', 'grpoPromptsPerStep', 2);
    await setKnob('eval', 'evalEvery', 0);
    await page.getByTestId('run-name').fill('e2e journal-grpo');
    await page.getByTestId('start-run').click();
    // The KL chart exists only for this run's steps (klBeta > 0); the KL to the base (LoRA switched off)
    // is 0 before the first update: one point, at 0. Then the run finishes.
    await waitForPoints(page, 'kl', 1, RUN_TIMEOUT).catch(failWithErrors);
    await waitForStatus(page, ['finished'], RUN_TIMEOUT).catch(failWithErrors);
    await shot(page, 'workshop-journal-grpo');
  });

  it('scores your own eval file in the Eval tab, and names every bad line of a broken one', async () => {
    await page.getByTestId('tab-eval').click();
    await page.getByTestId('eval-set').selectOption('own-file');
    const bad = '{"prompt":"Calculate: 1 + 2 = ","answer":"3"}\nnot json\n{"prompt":"Calculate: 2 = "}\n';
    await page
      .getByTestId('eval-file')
      .setInputFiles({ name: 'broken.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(bad) });
    await page.getByTestId('eval-file-errors').waitFor();
    expect(await page.getByTestId('eval-file-errors').locator('li').allTextContents()).toEqual([
      'broken.jsonl:2: not JSON',
      'broken.jsonl:3: "answer" must be a string',
    ]);
    expect(await page.getByTestId('run-eval').isDisabled()).toBe(true);
    const good = ['Calculate: 12 + 7 = |19', 'Calculate: 9 * 3 = |27', 'Calculate: 40 - 55 = |-15']
      .map((l, i) => JSON.stringify({ id: `mine${i}`, prompt: l.split('|')[0], answer: l.split('|')[1] }))
      .join('\n');
    await page
      .getByTestId('eval-file')
      .setInputFiles({ name: 'mine.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(good) });
    await page.getByTestId('eval-file-ok').waitFor();
    expect(await page.getByTestId('eval-file-ok').textContent()).toContain('mine.jsonl: 3 items');
    await page.getByTestId('eval-limit').fill('0');
    await page.getByTestId('run-eval').click();
    await page.getByTestId('eval-result').waitFor({ timeout: RUN_TIMEOUT });
    expect(await page.getByTestId('eval-result').textContent()).toMatch(/mine\.jsonl.* of 3 correct/s);
    await shot(page, 'workshop-eval-file');
    expect(pageErrors).toEqual([]);
  });

  it('a run evaluates the eval file added in its form, at step 0 and after its step', async () => {
    await page.getByTestId('tab-train').click();
    await page.getByTestId('preset').selectOption('journal-grpo');
    await setKnob('run', 'totalSteps', 1);
    await setKnob('grpo', 'grpoGroupSize', 4);
    await setKnob('grpo', 'grpoPromptsPerStep', 2);
    await setKnob('eval', 'evalEvery', 1);
    await setKnob('eval', 'evalLimit', 2);
    const mine = [
      '{"prompt":"Calculate: 12 + 7 = ","answer":"19"}',
      '{"prompt":"Calculate: 9 * 3 = ","answer":"27"}',
    ];
    await page.getByTestId('knob-evalFiles-add').setInputFiles({
      name: 'mine.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(mine.join('\n')),
    });
    await page.getByTestId('eval-file-entry').waitFor();
    expect(await page.getByTestId('eval-file-entry').textContent()).toContain('mine.jsonl: 2 items');
    await page.getByTestId('run-name').fill('e2e eval file run');
    await page.getByTestId('start-run').click();
    await waitForPoints(page, 'kl', 1, RUN_TIMEOUT).catch(failWithErrors);
    await waitForStatus(page, ['finished'], RUN_TIMEOUT).catch(failWithErrors);
    // arith_eval_200 and mine.jsonl, each at step 0 and at step 1.
    await waitForPoints(page, 'eval', 4, 30_000);
    expect(pageErrors).toEqual([]);
  });
});
