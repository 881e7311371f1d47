import 'fake-indexeddb/auto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobSource, bytesSource } from '../../../src/model/byte-source.ts';
import { memorySink } from '../../../src/model/safetensors-write.ts';
import { readRunArchive, runArchiveBlob, writeRunArchive } from '../../../src/store/archive.ts';
import { CorruptDataError, FormatVersionError } from '../../../src/store/errors.ts';
import { IdbRunStore } from '../../../src/store/idb-store.ts';
import { readRunArchiveFile, writeRunArchiveFile } from '../../../src/store/node-archive.ts';
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import { encodeSeedSet, parseSeedSet } from '../../../src/store/seed-set.ts';
import { readTarIndex, tarHeader, writeTar } from '../../../src/store/tar.ts';
import type { RunExport } from '../../../src/store/types.ts';
import { drive, newRun, seededState } from './fixtures.ts';
import { MemoryLocks } from './memory-locks.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'tabzero-archive-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A run with history past its checkpoint: 4 steps, checkpoints at 2 and 3. */
async function exportedNodeRun(): Promise<RunExport> {
  const store = new NodeRunStore(root);
  const w = await store.createRun('src', newRun());
  await drive(w, 4, [2, 3]);
  await w.setStatus('stopped');
  const data = await w.exportData();
  await w.close();
  return data;
}

async function archiveBytes(data: RunExport): Promise<Uint8Array> {
  const sink = memorySink();
  await writeRunArchive(data, sink, '0.1.0');
  return sink.bytes();
}

/** The parts of an export that must survive a move, whatever the run is called there. */
function comparable(d: RunExport) {
  return {
    ...d,
    meta: { ...d.meta, id: 'x', updatedAt: 'x' },
    checkpoint: d.checkpoint && { ...d.checkpoint, info: { ...d.checkpoint.info, runId: 'x' } },
  };
}

describe('run archive', () => {
  it('files → archive → IndexedDB → archive → files keeps everything', async () => {
    const data = await exportedNodeRun();
    expect(data.checkpoint!.info.step).toBe(3);
    const bytes = await archiveBytes(data);
    const read = await readRunArchive(bytesSource(bytes));
    expect(comparable(read)).toEqual(comparable(data));

    const idb = await IdbRunStore.open({ name: 'tabzero-archive-test', locks: new MemoryLocks() });
    await idb.importRun('imported', read);
    const w = await idb.openRun('imported');
    expect(comparable(await w.exportData())).toEqual(comparable(data));
    // Re-export from the browser store and import into a run folder.
    const back = await readRunArchive(bytesSource(await archiveBytes(await w.exportData())));
    const files = new NodeRunStore(root);
    await files.importRun('again', back);
    const r = await files.openRun('again');
    expect(comparable(await r.exportData())).toEqual(comparable(data));
    // Both continue from the archive's checkpoint: step 4 is rolled back and redone.
    for (const run of [w, r]) {
      const p = await run.resume();
      expect(p.step).toBe(3);
      expect(p.removed.steps).toBe(1);
      expect(p.state).toEqual(data.checkpoint && (await run.loadCheckpoint(3)).runnerState);
      await drive(run, 4);
      expect((await run.steps()).map((s) => s.step)).toEqual([1, 2, 3, 4]);
      await run.close();
    }
    await idb.close();
  });

  it('is a plain tar: `tar` lists and unpacks it like a run folder', async () => {
    const data = await exportedNodeRun();
    const file = path.join(root, 'run.tabzero.tar');
    await writeRunArchiveFile(file, data, '0.1.0');
    const names = execFileSync('tar', ['tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names).toEqual([
      'tabzero-archive.json',
      'run.json',
      'steps.jsonl',
      'samples.jsonl',
      'evals.jsonl',
      'seed.jsonl',
      'buffers/ded.jsonl',
      'buffers/abd.jsonl',
      'buffers/ind.jsonl',
      'checkpoint/checkpoint.json',
      'checkpoint/weights.safetensors',
      'checkpoint/state.json',
    ]);
    const out = path.join(root, 'x');
    mkdirSync(out);
    execFileSync('tar', ['xf', file, '-C', out]);
    expect(readFileSync(path.join(out, 'checkpoint/weights.safetensors'))).toEqual(
      Buffer.from(data.checkpoint!.weights),
    );
    expect(JSON.parse(readFileSync(path.join(out, 'tabzero-archive.json'), 'utf8'))).toMatchObject({
      format: 'tabzero-archive',
      formatVersion: 1,
      runId: 'src',
      step: 4,
      checkpointStep: 3,
    });
    expect(comparable(await readRunArchiveFile(file))).toEqual(comparable(data));
    // And what `tar` writes from that folder reads back too.
    const retarred = path.join(root, 'retar.tar');
    execFileSync('tar', [
      '--format=ustar',
      '-cf',
      retarred,
      '-C',
      out,
      'tabzero-archive.json',
      'run.json',
      'steps.jsonl',
      'samples.jsonl',
      'evals.jsonl',
      'seed.jsonl',
      'buffers',
      'checkpoint',
    ]);
    expect(comparable(await readRunArchiveFile(retarred))).toEqual(comparable(data));
  });

  it('as a Blob for browser downloads', async () => {
    const data = await exportedNodeRun();
    const blob = await runArchiveBlob(data, '0.1.0');
    expect(blob.type).toBe('application/x-tar');
    expect(comparable(await readRunArchive(blobSource(blob)))).toEqual(comparable(data));
  });

  it('refuses damaged, truncated, foreign and newer archives', async () => {
    const data = await exportedNodeRun();
    const bytes = await archiveBytes(data);
    const samples = new TextEncoder().encode('"response"');
    const at = Buffer.from(bytes).indexOf(Buffer.from(samples));
    const damaged = bytes.slice();
    damaged[at + 2] ^= 1;
    await expect(readRunArchive(bytesSource(damaged))).rejects.toThrow(
      /samples.jsonl fails its length or SHA-256 check/,
    );
    await expect(readRunArchive(bytesSource(bytes.subarray(0, bytes.length - 3000)))).rejects.toBeInstanceOf(
      CorruptDataError,
    );
    await expect(readRunArchive(bytesSource(new Uint8Array(2048).fill(65)))).rejects.toThrow(
      /checksum mismatch/,
    );

    const sink = memorySink();
    await writeTar(sink, [{ name: 'notes.txt', data: new Uint8Array(3) }]);
    await expect(readRunArchive(bytesSource(sink.bytes()))).rejects.toThrow(/not a TabZero run archive/);

    const newer = memorySink();
    const manifest = { format: 'tabzero-archive', formatVersion: 2, files: {} };
    await writeTar(newer, [
      { name: 'tabzero-archive.json', data: new TextEncoder().encode(JSON.stringify(manifest)) },
    ]);
    const err = await readRunArchive(bytesSource(newer.bytes())).catch((e) => e);
    expect(err).toBeInstanceOf(FormatVersionError);
    expect(err.message).toMatch(
      /newer TabZero \(tabzero-archive format version 2; this TabZero reads up to 1\)/,
    );
  });

  it('refuses an archive whose run.json lacks what a run needs, before anything is imported', async () => {
    const data = await exportedNodeRun();
    const { model: _m, ...meta } = data.meta;
    const bytes = await archiveBytes({ ...data, meta: { ...meta, step: 'four' } as never });
    const err = await readRunArchive(bytesSource(bytes), 'a.tabzero.tar').catch((e) => e);
    expect(err).toBeInstanceOf(CorruptDataError);
    expect(err.message).toBe(
      'a.tabzero.tar: run.json lacks a valid model, step (not an archive as TabZero writes them): ' +
        'export the run again where it was trained.',
    );
  });

  it('a run without checkpoint or seeding exports and imports too', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('empty', newRun());
    const data = await w.exportData();
    await w.close();
    expect(data).toMatchObject({ state: null, checkpoint: null, seedSet: null, steps: [] });
    const read = await readRunArchive(bytesSource(await archiveBytes(data)));
    expect(comparable(read)).toEqual(comparable(data));
    await store.importRun('empty2', read);
    expect((await (await store.readRun('empty2')).meta()).step).toBe(0);
  });
});

describe('tar', () => {
  it('writes sizes of 8 GiB and more in base-256 and reads them back', async () => {
    const size = 9 * 2 ** 30 + 5;
    const header = tarHeader('checkpoint/weights.safetensors', size, 0);
    expect(header[124]).toBe(0x80);
    const total = 512 + Math.ceil(size / 512) * 512 + 1024;
    const source = {
      size: total,
      async read(offset: number, length: number) {
        return offset === 0 ? header.subarray(0, length) : new Uint8Array(length);
      },
    };
    expect(await readTarIndex(source, 'big')).toEqual([
      { name: 'checkpoint/weights.safetensors', offset: 512, size },
    ]);
  });

  it('refuses an archive with an entry outside its root (absolute, .., in the name or the prefix)', async () => {
    const long = `${'d'.repeat(120)}/../../evil.jsonl`; // split into ustar prefix + name
    for (const name of ['../evil', '/etc/evil', 'a/../../evil', 'C:/evil', '..\\evil', long]) {
      const sink = memorySink();
      await writeTar(sink, [
        { name: 'ok.txt', data: new Uint8Array(1) },
        { name, data: new Uint8Array(3) },
      ]);
      const err = await readTarIndex(bytesSource(sink.bytes()), 'x.tar').catch((e) => e);
      expect(err, name).toBeInstanceOf(CorruptDataError);
      expect(err.message).toMatch(new RegExp(`^x\\.tar: entry ".*evil.*" points outside the archive`));
    }
    // Names that only look alike are fine.
    const sink = memorySink();
    await writeTar(sink, [{ name: 'a/..b/c..', data: new Uint8Array(1) }]);
    expect((await readTarIndex(bytesSource(sink.bytes()), 'x.tar')).map((e) => e.name)).toEqual([
      'a/..b/c..',
    ]);
  });

  it('splits long names into ustar prefix and name', async () => {
    const name = `${'d'.repeat(120)}/file.jsonl`;
    const sink = memorySink();
    await writeTar(sink, [{ name, data: new Uint8Array([1, 2, 3]) }]);
    const file = path.join(root, 'long.tar');
    writeFileSync(file, sink.bytes());
    expect(execFileSync('tar', ['tf', file], { encoding: 'utf8' }).trim()).toBe(name);
    expect(await readTarIndex(bytesSource(sink.bytes()), 'long')).toEqual([{ name, offset: 512, size: 3 }]);
  });
});

describe('seed set files', () => {
  const set = {
    source: { runId: 'r1', model: newRun().model, zeroData: true, createdAt: '2026-01-01T00:00:00.000Z' },
    entries: [...seededState().buffers.ded, ...seededState().buffers.ind],
  };

  it('round-trips as JSONL with a header line', () => {
    const text = encodeSeedSet(set);
    const lines = text.trim().split('\n');
    expect(lines.length).toBe(1 + set.entries.length);
    expect(JSON.parse(lines[0])).toMatchObject({
      format: 'tabzero-seed-set',
      formatVersion: 1,
      runId: 'r1',
      zeroData: true,
    });
    expect(parseSeedSet(text)).toEqual(set);
  });

  it('is exported by the store and refused when newer or not a seed set', async () => {
    const store = new NodeRunStore(root);
    const w = await store.createRun('r', newRun());
    await drive(w, 1);
    const exported = encodeSeedSet((await w.seedSet())!);
    await w.close();
    expect(parseSeedSet(exported).entries.map((e) => e.id)).toEqual(['ded-1', 'ded-2', 'ind-5', 'ind-6']);
    const newer = exported.replace('"formatVersion":1', '"formatVersion":4');
    expect(() => parseSeedSet(newer, 'my.jsonl')).toThrow(/my.jsonl: written by a newer TabZero/);
    const action = "use a run's seed.jsonl or an exported seed set (tabzero export --format seed-set)";
    expect(() => parseSeedSet('{"program":"f(x) = x"}\n', 'f')).toThrow(
      `f: not a seed set (line 1 is not a tabzero-seed-set header); ${action}`,
    );
    expect(() => parseSeedSet('', 'f')).toThrow(`f: not a seed set (the file is empty); ${action}`);
    expect(() => parseSeedSet(' \n\n', 'f')).toThrow(/the file is empty/);
    expect(() => parseSeedSet('hello', 'f')).toThrow(`f: not a seed set (line 1 is not JSON); ${action}`);
    const [head, ...rest] = exported.trimEnd().split('\n');
    expect(() => parseSeedSet([head, rest[0], '[1]'].join('\n'), 'f')).toThrow(
      `f: line 3 is not a task (needs program, inputs and outputs); ${action}`,
    );
    expect(() => parseSeedSet([head, '', 'nope'].join('\n'), 'f')).toThrow(/^f line 3: invalid JSON/);
    // Saved by hand without the final newline, or with blank lines: still the same set.
    expect(parseSeedSet([head, '', ...rest].join('\n'))).toEqual(parseSeedSet(exported));
  });
});
