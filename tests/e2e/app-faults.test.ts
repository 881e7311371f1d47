// Faults in the real browser (issue 19). The GPU process crashes mid-step (the DevTools protocol's
// Browser.crashGpuProcess: every page's WebGPU device is lost with reason 'unknown'): the Lab sees the
// loss, says so, acquires a new device, reloads the model, restarts the run from its last checkpoint,
// and the run finishes with steps 1…N once each and each step's samples once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launchEphemeralBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors, waitForStatus, waitForStep } from './app.ts';

const STEPS = 3;
const SHARED =
  `#preset=smoke&totalSteps=${STEPS}&batchPerGroup=1&maxProposerTokens=16&maxSolverTokens=8` +
  `&evalEvery=0&evalSets=&checkpointEverySteps=1`;
const STEP_TIMEOUT = 240_000;

let server: PreviewServer;
let url: string;

beforeAll(async () => {
  ({ server, url } = await servePreview());
});

afterAll(async () => {
  await server?.close();
});

/** Each stored step of the page's one run, and how many samples each step has, from IndexedDB. */
function storedHistory(page: Page): Promise<{ steps: number[]; generated: number[]; samples: number[] }> {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('tabzero');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction(['steps', 'samples'], 'readonly');
          const steps = tx.objectStore('steps').getAll();
          const samples = tx.objectStore('samples').getAll();
          tx.oncomplete = () => {
            const rows = steps.result as { step: number; metrics: { generatedSequences: number } }[];
            const all = samples.result as { step: number }[];
            resolve({
              steps: rows.map((r) => r.step),
              generated: rows.map((r) => r.metrics.generatedSequences),
              samples: rows.map((r) => all.filter((x) => x.step === r.step).length),
            });
          };
        };
      }),
  );
}

describe('faults in the browser', () => {
  it(
    'a crashed GPU process: the run recovers on a new device and finishes with nothing lost',
    { timeout: 3 * STEP_TIMEOUT },
    async () => {
      const { browser, context } = await launchEphemeralBrowser('compat');
      try {
        const page = await context.newPage();
        await page.setViewportSize({ width: 1280, height: 720 });
        await page.goto(`${url}?compat=1${SHARED}`);
        await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
        await page.getByTestId('source-tiny').check();
        await page.getByTestId('load-model').click();
        await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
        await page.getByTestId('tab-train').click();
        await page.getByTestId('run-name').fill('gpu crash');
        await page.getByTestId('start-run').click();
        await waitForStep(page, 1, STEP_TIMEOUT);
        // Step 1 is committed and checkpointed (checkpointEverySteps=1); crash while step 2 runs.
        await page.getByTestId('phase').waitFor({ timeout: 60_000 });
        const cdp = await browser.newBrowserCDPSession();
        const crashedAt = performance.now();
        await cdp.send('Browser.crashGpuProcess');
        await page.getByText('The GPU device was lost').first().waitFor({ timeout: 60_000 });
        await shot(page, 'gpu-crash-lost');
        // The notice is in the log (attached, maybe scrolled out of view).
        await page
          .getByText('A new GPU device was acquired and the model reloaded.')
          .first()
          .waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
        const recoveredS = (performance.now() - crashedAt) / 1000;
        await waitForStatus(page, ['finished'], 2 * STEP_TIMEOUT).catch(async (err) => {
          throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
        });
        await shot(page, 'gpu-crash-finished');
        const history = await storedHistory(page);
        expect(history.steps).toEqual([1, 2, 3]);
        expect(history.samples).toEqual(history.generated);
        console.log(`[e2e faults] GPU process crash: recovered in ${recoveredS.toFixed(1)} s`);
      } finally {
        await browser.close();
      }
    },
  );
});
