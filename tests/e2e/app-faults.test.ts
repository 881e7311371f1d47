// Faults in the real browser (issue 19). The GPU process crashes mid-step (the DevTools protocol's
// Browser.crashGpuProcess: every page's WebGPU device is lost with reason 'unknown'): the Lab sees the
// loss, says so, acquires a new device, reloads the model, restarts the run from its last checkpoint,
// and the run finishes with steps 1…N once each and each step's samples once. And the browser is
// SIGKILLed (not a polite reload) at five moments of a step, each reached with a test-only hold point
// (`?hold=PHASE`): a new browser on the same profile lists the run as interrupted, it resumes, and it ends
// with nothing lost or duplicated. Both start from the GPU caches of earlier browsers (harness.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors, waitForStatus, waitForStep } from './app.ts';

const STEPS = 2;
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
      const t0 = performance.now();
      const at = () => ((performance.now() - t0) / 1000).toFixed(1);
      const browser = await launchBrowser('compat');
      try {
        const page = await browser.context.newPage();
        await page.setViewportSize({ width: 1280, height: 720 });
        await page.goto(`${url}?compat=1${SHARED}`);
        await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
        await page.getByTestId('source-tiny').check();
        await page.getByTestId('load-model').click();
        await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
        const loadedAt = at();
        await page.getByTestId('tab-train').click();
        await page.getByTestId('run-name').fill('gpu crash');
        await page.getByTestId('start-run').click();
        await waitForStep(page, 1, STEP_TIMEOUT);
        const step1At = at();
        // Step 1 is committed and checkpointed (checkpointEverySteps=1); crash while step 2 runs.
        await page.getByTestId('phase').waitFor({ timeout: 60_000 });
        // A page's DevTools session accepts this Browser-domain command too.
        const cdp = await browser.context.newCDPSession(page);
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
        expect(history.steps).toEqual([1, 2]);
        expect(history.samples).toEqual(history.generated);
        console.log(
          `[e2e faults] GPU process crash: recovered in ${recoveredS.toFixed(1)} s; model loaded at ${loadedAt} s, ` +
            `step 1 at ${step1At} s, finished at ${at()} s`,
        );
      } finally {
        await browser.close();
      }
    },
  );
});

/** SIGKILLs every Chromium process of this profile (the browser, its GPU and renderer processes). */
function killBrowser(userDataDir: string): number {
  const pids = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`--user-data-dir=${userDataDir}`))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already: its parent took it down
    }
  }
  return pids.length;
}

const KILL_STEPS = 1;
const KILL_SHARED =
  `#preset=smoke&totalSteps=${KILL_STEPS}&batchPerGroup=1&maxProposerTokens=16&maxSolverTokens=8` +
  `&evalEvery=0&evalSets=&checkpointEverySteps=1`;
/** The five moments of a step the browser is killed at (`?hold=` holds the run there). */
const KILL_AT = ['proposing', 'validating', 'estimating', 'updating', 'checkpointing'] as const;

describe('a killed browser', () => {
  it(
    'SIGKILLed at five moments of a step, the run resumes each time and ends with nothing lost or duplicated',
    { timeout: 10 * STEP_TIMEOUT },
    async () => {
      const profile = mkdtempSync(join(tmpdir(), 'tabzero-e2e-kill-'));
      const landed: string[] = [];
      try {
        const seconds: string[] = [];
        for (const [k, at] of [...KILL_AT, null].entries()) {
          const t0 = performance.now();
          const browser = await launchBrowser('compat', profile);
          const page = await browser.context.newPage();
          await page.setViewportSize({ width: 1280, height: 720 });
          await page.goto(`${url}?compat=1${at ? `&hold=${at}` : ''}${k === 0 ? KILL_SHARED : ''}`);
          await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
          await page.getByTestId('source-tiny').check();
          await page.getByTestId('load-model').click();
          await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });
          const loaded = (performance.now() - t0) / 1000;
          await page.getByTestId('tab-train').click();
          if (k === 0) {
            await page.getByTestId('run-name').fill('killed');
            await page.getByTestId('start-run').click();
          } else {
            // The killed browser left the run stored as running: it is listed as interrupted.
            await waitForStatus(page, ['interrupted'], 60_000);
            await page.getByTestId('resume-run').click();
          }
          if (at === null) {
            await waitForStatus(page, ['finished'], 2 * STEP_TIMEOUT).catch(async (err) => {
              throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
            });
            const history = await storedHistory(page);
            expect(history.steps).toEqual([1]);
            expect(history.samples).toEqual(history.generated);
            await browser.close();
            seconds.push(
              `finish ${loaded.toFixed(1)}+${((performance.now() - t0) / 1000 - loaded).toFixed(1)} s`,
            );
            break;
          }
          const held = page.getByText(new RegExp(`test hold point: holding at ${at} of step \\d+`)).first();
          await held.waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
          landed.push((await held.textContent()) ?? '');
          seconds.push(
            `${at} ${loaded.toFixed(1)}+${((performance.now() - t0) / 1000 - loaded).toFixed(1)} s`,
          );
          expect(killBrowser(profile)).toBeGreaterThan(0);
          await Promise.race([
            browser.context.close().catch(() => undefined),
            new Promise((r) => setTimeout(r, 3000)),
          ]);
        }
        expect(landed.map((l) => l.replace(/^.*holding at (\w+).*$/, '$1'))).toEqual([...KILL_AT]);
        console.log(`[e2e faults] kills landed: ${landed.join(' | ')}`);
        // Per browser: launch to model loaded + loaded to the hold point (or to finished).
        console.log(`[e2e faults] seconds per browser: ${seconds.join(', ')}`);
      } finally {
        killBrowser(profile);
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
