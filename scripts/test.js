#!/usr/bin/env node
// `npm test`: the three layers in order — unit, gpu, e2e — each timed; fails if any fails.
// Ends with one line "N passed, N failed" over all layers.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSystemDeps } from './system-deps.js';

const LAYERS = ['unit', 'gpu', 'e2e'];
const only = process.argv.slice(2).filter((a) => LAYERS.includes(a));
const layers = only.length > 0 ? only : LAYERS;
const outDir = join(process.cwd(), 'test-output');
mkdirSync(outDir, { recursive: true });

ensureSystemDeps({ gpu: layers.some((l) => l !== 'unit') });

const results = [];
for (const layer of layers) {
  const report = join(outDir, `${layer}.json`);
  rmSync(report, { force: true });
  const t0 = Date.now();
  const r = spawnSync(
    'npx',
    [
      'vitest',
      'run',
      '--project',
      layer,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
    { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : '1' } },
  );
  const seconds = (Date.now() - t0) / 1000;
  let passed;
  let failed;
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    passed = json.numPassedTests;
    // Failed tests; where none failed but the run did (a file that did not load), its failed suites.
    failed = json.numFailedTests || (json.success ? 0 : json.numFailedTestSuites);
  } catch {
    passed = 0;
    failed = 1; // no report: the runner itself failed
  }
  if (r.status !== 0 && failed === 0) failed = 1;
  results.push({ layer, seconds, passed, failed, ok: r.status === 0 });
  console.log(
    `\n[${layer}] ${r.status === 0 ? 'ok' : 'FAILED'} in ${seconds.toFixed(1)} s: ${passed} passed, ${failed} failed\n`,
  );
}

console.log('layer   time      passed  failed');
for (const r of results) {
  console.log(
    `${r.layer.padEnd(7)} ${`${r.seconds.toFixed(1)} s`.padStart(8)}  ${String(r.passed).padStart(6)}  ${String(r.failed).padStart(6)}`,
  );
}
const passed = results.reduce((s, r) => s + r.passed, 0);
const failed = results.reduce((s, r) => s + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
