// Runs written before still open: a Node run folder and a run archive written by TabZero 0.1.0's stores
// (format 1, before the shared run-writer, with the persisted statuses `finished`/`failed`), committed in
// tests/fixtures/runs/ (made by the store fixtures' drive(): seeding, steps 1–3, a checkpoint at step 2,
// status finished). Both backends read them, and the Lab's summaries show their status unchanged.
import 'fake-indexeddb/auto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config.ts';
import { bytesSource } from '../../../src/model/byte-source.ts';
import { readRunArchive } from '../../../src/store/archive.ts';
import { IdbRunStore } from '../../../src/store/idb-store.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import type { RunReader } from '../../../src/store/types.ts';
import { RunLibrary } from '../../../src/trainer/run-library.ts';
import { tensors } from './fixtures.ts';
import { MemoryLocks } from './memory-locks.ts';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/runs');
const tmp: string[] = [];
afterAll(async () => Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))));

async function expectFormat1Run(reader: RunReader): Promise<void> {
  const meta = await reader.meta();
  expect(meta).toMatchObject({ step: 3, status: 'finished', name: 'written by 0.1.0', preset: 'smoke' });
  expect(meta.model.sha256).toBe('ab'.repeat(32));
  // Knobs added since 0.1.0 (lossAggregation among them) read as their defaults.
  expect(Object.keys(meta.config)).toEqual(expect.arrayContaining(Object.keys(defaultConfig())));
  expect(meta.config.lossAggregation).toBe('token_mean');
  expect((await reader.steps()).map((r) => r.step)).toEqual([1, 2, 3]);
  expect((await reader.samples()).length).toBe(2 + 3 * 3);
  expect((await reader.evals()).map((e) => [e.step, e.name])).toEqual([[2, 'arith_eval_200:raw']]);
  expect((await reader.buffers()).ded.map((e) => e.id)).toContain('ded-1');
  expect((await reader.checkpoints()).map((c) => c.step)).toEqual([2]);
  const cp2 = await reader.loadCheckpoint(2);
  expect(cp2.runnerState?.step).toBe(2);
  expect(cp2.tensors.map((t) => [t.name, [...t.data]])).toEqual(tensors(2).map((t) => [t.name, [...t.data]]));
}

describe('runs written by format 1', () => {
  it('a Node run folder opens, reads and lists as finished', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tz-format1-'));
    tmp.push(root);
    await cp(join(FIXTURES, 'format-1-folder'), join(root, 'format-1-folder'), { recursive: true });
    const store = new NodeRunStore(root);
    await expectFormat1Run(await store.readRun('format-1-folder'));
    const runs = await new RunLibrary(
      async () => store,
      () => false,
    ).listRuns();
    expect(runs.map((r) => [r.id, r.status, r.step])).toEqual([['format-1-folder', 'finished', 3]]);
    // The writer opens it too (the resume prologue), and leaves it as it was.
    const w = await store.openRun('format-1-folder');
    expect((await w.meta()).step).toBe(3);
    await w.close();
  });

  it('a run archive imports into IndexedDB and into a run folder', async () => {
    const bytes = new Uint8Array(await readFile(join(FIXTURES, 'format-1.tabzero.tar')));
    const data = await readRunArchive(bytesSource(bytes, 'format-1.tabzero.tar'));
    const idb = await IdbRunStore.open({ name: 'format-1', locks: new MemoryLocks() });
    await idb.importRun('imported', { ...data, meta: { ...data.meta, id: 'imported' } });
    await expectFormat1Run(await idb.readRun('imported'));
    expect(
      (
        await new RunLibrary(
          async () => idb,
          () => false,
        ).listRuns()
      )[0].status,
    ).toBe('finished');
    await idb.close();
    const root = await mkdtemp(join(tmpdir(), 'tz-format1-'));
    tmp.push(root);
    const folder = new NodeRunStore(root);
    await folder.importRun('imported', { ...data, meta: { ...data.meta, id: 'imported' } });
    await expectFormat1Run(await folder.readRun('imported'));
  });
});
