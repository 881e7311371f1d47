// A real full quota (issue 19): the browser's profile lives on a 40 MB tmpfs (mounted here, as root), so
// Chromium's per-origin IndexedDB quota is a few tens of MB (a share of that disk) instead of a share of
// the host's disk. The profile is prefilled with an imported run archive (a run to delete later); once
// the run has committed step 1, a test-only ballast database fills the origin's quota to the brim. The
// run's next commit fails with the browser's own QuotaExceededError: the run pauses at its last committed
// step with "Storage is full" and what to do; deleting the prefilled run in the Runs tab gives the space
// back; the run resumes and completes with every step once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { runArchiveBlob } from '../../src/store/archive.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { drive, newRun } from '../unit/store/fixtures.ts';
import { launchBrowser, servePreview } from './harness.ts';
import { LOAD_TIMEOUT, shot, shownErrors, waitForStatus, waitForStep } from './app.ts';

const TMPFS_MB = 40;
/** The prefilled run's checkpoint: incompressible bytes that deleting the run gives back. */
const PREFILL_BYTES = 6 * 2 ** 20;
/** Ballast records: small enough that the quota is filled to within one of them. */
const BALLAST_CHUNK = 64 * 1024;
const STEPS = 2;
const SHARED =
  `#preset=smoke&totalSteps=${STEPS}&batchPerGroup=1&maxProposerTokens=16&maxSolverTokens=8` +
  '&evalEvery=0&evalSets=&checkpointEverySteps=1';
const STEP_TIMEOUT = 240_000;

let server: PreviewServer;
let url: string;
const mountPoint = mkdtempSync(join(tmpdir(), 'tabzero-quota-'));
const work = mkdtempSync(join(tmpdir(), 'tabzero-quota-work-'));
let mounted = false;

beforeAll(async () => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', mountPoint], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    throw new Error(
      `the quota test needs a ${TMPFS_MB} MB tmpfs for the browser profile and mount refused ` +
        `(${String(err).split('\n')[0]}): run the e2e layer as root`,
      { cause: err },
    );
  }
  ({ server, url } = await servePreview());
});

afterAll(async () => {
  await server?.close();
  if (mounted) execFileSync('umount', ['--lazy', mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** A run archive whose checkpoint holds `bytes` of random data. */
async function bigArchive(bytes: number): Promise<string> {
  const store = new NodeRunStore(work);
  const w = await store.createRun('prefill', { ...newRun(), name: 'prefill', preset: 'smoke' });
  await drive(w, 1);
  const data = new Float32Array(bytes / 4).map(() => Math.random());
  await w.saveCheckpoint({
    step: 1,
    tensors: [{ name: 'ballast', shape: [data.length], data }],
    reason: 'steps',
  });
  await w.close();
  const blob = await runArchiveBlob(await (await store.readRun('prefill')).exportData(), 'tabzero e2e');
  const file = join(work, 'prefill.tabzero.tar');
  writeFileSync(file, new Uint8Array(await blob.arrayBuffer()));
  return file;
}

/**
 * Writes incompressible chunks into a database of its own in the app's origin until the browser refuses
 * one with QuotaExceededError; returns the bytes written and the refusal's name.
 */
function fillQuota(page: Page, chunk: number): Promise<{ bytes: number; refusal: string }> {
  return page.evaluate(async (size) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('quota-ballast', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('chunks');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    let bytes = 0;
    for (let k = 0; ; k++) {
      const data = new Uint8Array(size);
      for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
      const tx = db.transaction('chunks', 'readwrite');
      tx.objectStore('chunks').put(data, k);
      const refusal = await new Promise<string | null>((resolve) => {
        tx.oncomplete = () => resolve(null);
        tx.onabort = () => resolve(tx.error?.name ?? 'AbortError');
      });
      if (refusal !== null) {
        db.close();
        return { bytes, refusal };
      }
      bytes += size;
    }
  }, chunk);
}

/** The steps stored for the run named `name`, from IndexedDB. */
function storedSteps(page: Page, name: string): Promise<number[]> {
  return page.evaluate(
    (runName) =>
      new Promise<number[]>((resolve, reject) => {
        const open = indexedDB.open('tabzero');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction(['runs', 'steps'], 'readonly');
          const runs = tx.objectStore('runs').getAll();
          const steps = tx.objectStore('steps').getAll();
          tx.oncomplete = () => {
            const run = (runs.result as { id: string; name: string }[]).find((r) => r.name === runName);
            resolve(
              (steps.result as { runId: string; step: number }[])
                .filter((s) => s.runId === run?.id)
                .map((s) => s.step),
            );
          };
        };
      }),
    name,
  );
}

describe('a full quota', () => {
  it(
    'pauses the run at its last committed step with "Storage is full"; deleting a run lets it finish',
    { timeout: 4 * STEP_TIMEOUT },
    async () => {
      const archive = await bigArchive(PREFILL_BYTES);
      // Without the shared GPU caches (harness.ts): their few MB on the tmpfs would run the disk out
      // before the origin's quota (the ballast then fails with DataError, not QuotaExceededError).
      const browser = await launchBrowser('compat', join(mountPoint, 'profile'), { gpuCache: false });
      try {
        const page = await browser.context.newPage();
        await page.setViewportSize({ width: 1280, height: 720 });
        page.on('dialog', (d) => void d.accept());
        await page.goto(`${url}?compat=1${SHARED}`);
        await page.getByTestId('gpu-report').waitFor({ timeout: 60_000 });
        await page.getByTestId('tab-runs').click();
        await page.getByTestId('import-archive').setInputFiles(archive);
        await page.getByTestId('run-row').filter({ hasText: 'prefill' }).waitFor({ timeout: 60_000 });
        await page.getByTestId('tab-model').click();
        await page.getByTestId('source-tiny').check();
        await page.getByTestId('load-model').click();
        await page.getByTestId('model-info').waitFor({ timeout: LOAD_TIMEOUT });

        await page.getByTestId('tab-train').click();
        await page.getByTestId('run-name').fill('quota');
        await page.getByTestId('start-run').click();
        await waitForStep(page, 1, STEP_TIMEOUT);
        // Step 1 is committed with its checkpoint; fill the quota while step 2 runs.
        const fillStart = performance.now();
        const ballast = await fillQuota(page, BALLAST_CHUNK);
        const fillS = (performance.now() - fillStart) / 1000;
        expect(ballast.refusal).toBe('QuotaExceededError');
        const quota = await page.evaluate(() => navigator.storage.estimate());
        console.log(
          `[e2e quota] ballast ${(ballast.bytes / 2 ** 20).toFixed(1)} MB in ${fillS.toFixed(1)} s (a step takes ` +
            `~25 s), then ${ballast.refusal}; ` +
            `usage ${((quota.usage ?? 0) / 2 ** 20).toFixed(1)} MB`,
        );
        const fullAt = performance.now();
        await page
          .getByText('Storage is full')
          .first()
          .waitFor({ timeout: STEP_TIMEOUT })
          .catch(async (err) => {
            await shot(page, 'quota-not-full');
            throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
          });
        await waitForStatus(page, ['paused'], 60_000).catch(async (err) => {
          const status = await page.getByTestId('run-status-value').textContent();
          throw new Error(`${err}\nstatus shown: ${status}`);
        });
        expect((await shownErrors(page)).join(' | ')).toMatch(
          /Delete old runs or export and remove them, then resume/,
        );
        await shot(page, 'quota-full');
        const committed = await storedSteps(page, 'quota');
        expect(committed.length).toBeGreaterThanOrEqual(1);
        expect(committed).toEqual(committed.map((_, k) => k + 1));
        expect(committed.length).toBeLessThan(STEPS);

        await page.getByTestId('tab-runs').click();
        const prefill = page.getByTestId('run-row').filter({ hasText: 'prefill' });
        await prefill.getByTestId('delete-run').click();
        await prefill.waitFor({ state: 'detached', timeout: 30_000 });
        await page.getByTestId('tab-train').click();
        await page.getByTestId('resume-run').click();
        await waitForStatus(page, ['finished'], 2 * STEP_TIMEOUT).catch(async (err) => {
          throw new Error(`${err}\napp errors: ${(await shownErrors(page)).join(' | ')}`);
        });
        const recoveredS = (performance.now() - fullAt) / 1000;
        await shot(page, 'quota-finished');
        expect(await storedSteps(page, 'quota')).toEqual([1, 2]);
        console.log(
          `[e2e quota] paused at step ${committed.length} with "Storage is full"; after deleting the ` +
            `prefilled run it finished (${recoveredS.toFixed(1)} s from the full quota to finished)`,
        );
      } finally {
        await browser.close();
      }
    },
  );
});
