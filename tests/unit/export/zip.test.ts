import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blobSource, bytesSource } from '../../../src/model/byte-source.ts';
import { memoryFolder, type FolderSink } from '../../../src/model/model-source.ts';
import { memorySink } from '../../../src/model/safetensors-write.ts';
import { blobSink } from '../../../src/export/blob-sink.ts';
import { exportMergedModel } from '../../../src/export/merged-model.ts';
import { exportPeftAdapter } from '../../../src/export/peft-adapter.ts';
import { nodeExportFolder, nodeExportTarget, nodeExportZip } from '../../../src/export/node-export-sink.ts';
import { readZip } from '../../../src/export/zip-reader.ts';
import { checkZip32, ZIP32_MAX, ZipLimitError, ZipWriter } from '../../../src/export/zip-writer.ts';
import { loraRunConfig, provenance, randomAdapter, tinyBase } from './fixtures.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
/** Byte equality without vitest's element-by-element diffing (slow on 300 kB). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Skips without Debian's unzip, except in CI, where `npm test` installs it (scripts/system-deps.js). */
function needUnzip(skip: (note: string) => void): void {
  if (hasTool('unzip')) return;
  if (process.env.CI)
    throw new Error('unzip is not installed (npm test installs it: scripts/system-deps.js)');
  skip('no unzip on this machine');
}

/** Bytes that are not all one value, so a CRC or offset mistake shows. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A two-style archive: a file given whole, a streamed one in uneven chunks, a nested name, a UTF-8 name. */
async function sampleZip(): Promise<{ bytes: Uint8Array; files: Record<string, Uint8Array> }> {
  const files: Record<string, Uint8Array> = {
    'config.json': utf8('{"a": 1}\n'),
    'model.safetensors': pattern(300_001, 7),
    'buffers/ded.jsonl': utf8('{"id":"x"}\n'),
    'ünïcode.txt': utf8('é'),
    'empty.txt': new Uint8Array(0),
  };
  const sink = memorySink();
  const zip = new ZipWriter(sink, { date: new Date('2026-11-27T12:34:56Z') });
  await zip.writeFile('config.json', '{"a": 1}\n');
  const w = await zip.createFile('model.safetensors');
  const big = files['model.safetensors'];
  for (let pos = 0; pos < big.length; pos += 77_777) await w.write(big.subarray(pos, pos + 77_777));
  await w.close();
  await zip.writeFile('buffers/ded.jsonl', files['buffers/ded.jsonl']);
  await zip.writeFile('ünïcode.txt', 'é');
  await (await zip.createFile('empty.txt')).close();
  const summary = await zip.finish();
  expect(sink.closed).toBe(true);
  const bytes = sink.bytes();
  expect(summary).toEqual({ entries: 5, bytes: bytes.byteLength });
  return { bytes, files };
}

const tmp = mkdtempSync(join(tmpdir(), 'tabzero-zip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ZipWriter', () => {
  it('round-trips through its own reader', async () => {
    const { bytes, files } = await sampleZip();
    const zip = await readZip(bytesSource(bytes));
    expect(zip.entries.map((e) => e.name)).toEqual(Object.keys(files));
    for (const [name, data] of Object.entries(files)) {
      expect(same(await zip.readAll(name), data), name).toBe(true);
    }
    // Entries read in place (what openSafetensors does with an archive member).
    expect(await zip.open('model.safetensors').read(1000, 5)).toEqual(
      files['model.safetensors'].subarray(1000, 1005),
    );
  });

  it('is accepted by the system unzip', async ({ skip }) => {
    needUnzip(skip);
    const { bytes, files } = await sampleZip();
    const path = join(tmp, 'sample.zip');
    writeFileSync(path, bytes);
    const test = execFileSync('unzip', ['-t', path], { encoding: 'utf8' });
    expect(test).toContain('No errors detected');
    const out = join(tmp, 'unzipped');
    execFileSync('unzip', ['-q', '-o', path, '-d', out]);
    for (const [name, data] of Object.entries(files))
      expect(same(readFileSync(join(out, name)), data), name).toBe(true);
  });

  it('is accepted by Python zipfile (when python3 is installed)', async ({ skip }) => {
    if (!hasTool('python3')) skip('no python3 on this machine');
    const { bytes } = await sampleZip();
    const path = join(tmp, 'py.zip');
    writeFileSync(path, bytes);
    const script =
      'import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nprint(z.testzip())\nprint(len(z.read("model.safetensors")))';
    expect(
      execFileSync('python3', ['-c', script, path], { encoding: 'utf8' }).split('\n').slice(0, 2),
    ).toEqual(['None', '300001']);
  });

  it('streams: a chunk written to an entry has reached the sink when its write resolves', async () => {
    const sink = memorySink();
    const zip = new ZipWriter(sink);
    await zip.writeFile('config.json', '{}');
    const received = () => sink.chunks.reduce((n, c) => n + c.byteLength, 0);
    expect(received()).toBe(zip.size);
    const w = await zip.createFile('model.safetensors');
    const chunk = pattern(1 << 20, 5);
    for (let i = 0; i < 8; i++) {
      const before = received();
      await w.write(chunk);
      // The chunk itself (and at most the entry's local header before it): nothing held back.
      expect(received() - before).toBeGreaterThanOrEqual(chunk.byteLength);
      expect(received()).toBe(zip.size);
    }
    await w.close();
    expect(received()).toBe(zip.size);
    const summary = await zip.finish();
    expect(received()).toBe(summary.bytes);
  });

  it('reads archives the hand-written writer made before fflate (stored, data descriptor, UTF-8 name)', async () => {
    // ZipWriter before it used fflate: writeFile('config.json'), a createFile('weights.bin') streamed in
    // two writes, writeFile('ünïcode.txt'), under prefix 'old-export', dated 2026-11-27T12:34:56Z.
    const old = Buffer.from(
      'UEsDBBQAAAgAAFxke136oUdcCQAAAAkAAAAWAAAAb2xkLWV4cG9ydC9jb25maWcuanNvbnsiYSI6IDF9ClBLAwQUAAgIAABcZHtd' +
        'AAAAAAAAAAAAAAAAFgAAAG9sZC1leHBvcnQvd2VpZ2h0cy5iaW4BAgMEBQYHCAkKUEsHCHtXICUKAAAACgAAAFBLAwQUAAAIAABc' +
        'ZHtdPo0EDgIAAAACAAAAGAAAAG9sZC1leHBvcnQvw7xuw69jb2RlLnR4dMOpUEsBAhQDFAAACAAAXGR7XfqhR1wJAAAACQAAABYA' +
        'AAAAAAAAAAAAAKSBAAAAAG9sZC1leHBvcnQvY29uZmlnLmpzb25QSwECFAMUAAgIAABcZHtde1cgJQoAAAAKAAAAFgAAAAAAAAAA' +
        'AAAApIE9AAAAb2xkLWV4cG9ydC93ZWlnaHRzLmJpblBLAQIUAxQAAAgAAFxke10+jQQOAgAAAAIAAAAYAAAAAAAAAAAAAACkgYsA' +
        'AABvbGQtZXhwb3J0L8O8bsOvY29kZS50eHRQSwUGAAAAAAMAAwDOAAAAwwAAAAAA',
      'base64',
    );
    const zip = await readZip(bytesSource(new Uint8Array(old)));
    expect(zip.entries.map((e) => e.name)).toEqual([
      'old-export/config.json',
      'old-export/weights.bin',
      'old-export/ünïcode.txt',
    ]);
    expect(text(await zip.readAll('old-export/config.json'))).toBe('{"a": 1}\n');
    expect([...(await zip.readAll('old-export/weights.bin'))]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(text(await zip.readAll('old-export/ünïcode.txt'))).toBe('é');
  });

  it('refuses a truncated archive', async () => {
    const { bytes } = await sampleZip();
    await expect(readZip(bytesSource(bytes.subarray(0, bytes.length - 30)))).rejects.toThrow(
      /not a readable ZIP file/,
    );
  });

  it('puts entries under a prefix folder and records the date', async () => {
    const sink = memorySink();
    const zip = new ZipWriter(sink, { prefix: 'tabzero-merged', date: new Date('2026-11-27T12:34:56Z') });
    await zip.writeFile('config.json', '{}');
    await zip.finish();
    const read = await readZip(bytesSource(sink.bytes()));
    expect(read.entries.map((e) => e.name)).toEqual(['tabzero-merged/config.json']);
    // The local header's MS-DOS time and date, from the date's UTC fields (whatever the time zone):
    // 2026-11-27 12:34:56 → date (46 << 9) | (11 << 5) | 27, time (12 << 11) | (34 << 5) | 28.
    const dv = new DataView(sink.bytes().buffer);
    expect({ time: dv.getUint16(10, true), date: dv.getUint16(12, true) }).toEqual({
      date: (46 << 9) | (11 << 5) | 27,
      time: (12 << 11) | (34 << 5) | 28,
    });
  });

  it('refuses misuse: overlapping entries, duplicates, bad names, writes after finish', async () => {
    const zip = new ZipWriter(memorySink());
    const open = await zip.createFile('a.bin');
    await expect(zip.writeFile('b.txt', 'x')).rejects.toThrow(/one entry at a time/);
    await expect(zip.finish()).rejects.toThrow(/still open/);
    await open.close();
    await expect(zip.writeFile('a.bin', 'x')).rejects.toThrow(/twice/);
    for (const bad of ['', '/abs', 'a/../b', 'dir/', 'a\\b'])
      await expect(zip.writeFile(bad, 'x')).rejects.toThrow(/bad entry name/);
    await zip.finish();
    await expect(zip.writeFile('c.txt', 'x')).rejects.toThrow(/finished/);
  });

  it('refuses sizes past 4 GiB − 1 instead of writing a corrupt archive (no ZIP64)', () => {
    expect(() => checkZip32(ZIP32_MAX, 'entry')).not.toThrow();
    expect(() => checkZip32(ZIP32_MAX + 1, 'entry "model.safetensors"')).toThrow(ZipLimitError);
    // The merged real model in f32 (494,032,768 parameters × 4 bytes + header) fits.
    expect(() => checkZip32(494_032_768 * 4 + 40_000, 'entry')).not.toThrow();
  });

  it('streams into a Blob (the browser download path)', async () => {
    const sink = blobSink();
    const zip = new ZipWriter(sink);
    const w = await zip.createFile('w.bin');
    const data = pattern(70_000, 3);
    await w.write(data);
    data.fill(0); // the sink must have copied the chunk
    await w.close();
    await zip.finish();
    const blob = sink.blob();
    expect(blob.type).toBe('application/zip');
    const read = await readZip(blobSource(blob));
    expect(same(await read.readAll('w.bin'), pattern(70_000, 3))).toBe(true);
  });

  it('writes to a .zip file and to a folder with subfolders in Node', async () => {
    const zipPath = join(tmp, 'out', 'export.zip');
    const zip = await nodeExportZip(zipPath);
    await zip.writeFile('buffers/abd.jsonl', '{}\n');
    await zip.finish();
    const read = await readZip(bytesSource(new Uint8Array(readFileSync(zipPath))));
    expect(text(await read.readAll('buffers/abd.jsonl'))).toBe('{}\n');

    const folder = await nodeExportFolder(join(tmp, 'folder'));
    await folder.writeFile('buffers/ded.jsonl', 'x\n');
    const sink = await folder.createFile('samples.jsonl');
    await sink.write(utf8('y\n'));
    await sink.close();
    expect(readFileSync(join(tmp, 'folder', 'buffers', 'ded.jsonl'), 'utf8')).toBe('x\n');
    expect(readFileSync(join(tmp, 'folder', 'samples.jsonl'), 'utf8')).toBe('y\n');
    await expect(folder.writeFile('../escape.txt', 'x')).rejects.toThrow(/bad file name/);

    const z = await nodeExportTarget(join(tmp, 'target', 'a.ZIP'), { prefix: 'a' });
    await z.sink.writeFile('x.txt', 'x');
    await z.finish();
    expect(z.kind).toBe('zip');
    const zr = await readZip(bytesSource(new Uint8Array(readFileSync(join(tmp, 'target', 'a.ZIP')))));
    expect(zr.entries.map((e) => e.name)).toEqual(['a/x.txt']);
    const f = await nodeExportTarget(join(tmp, 'target', 'dir'));
    await f.sink.writeFile('x.txt', 'y');
    await f.finish();
    expect(f.kind).toBe('folder');
    expect(readFileSync(join(tmp, 'target', 'dir', 'x.txt'), 'utf8')).toBe('y');
  });
});

describe("real exports as .zip files (the CLI's --out x.zip path)", () => {
  /** Exports into a .zip through nodeExportTarget and into memory; returns the zip's path and the files. */
  async function exportBoth(
    file: string,
    prefix: string,
    write: (out: FolderSink) => Promise<unknown>,
  ): Promise<{ path: string; files: Map<string, Uint8Array> }> {
    const path = join(tmp, 'exports', file);
    const target = await nodeExportTarget(path, { prefix });
    expect(target.kind).toBe('zip');
    await write(target.sink);
    await target.finish();
    const direct = memoryFolder();
    await write(direct);
    return { path, files: direct.files };
  }

  /** `unzip -t` passes (every CRC and size checked) and the unzipped files are the direct export's. */
  function checkWithUnzip(path: string, prefix: string, files: Map<string, Uint8Array>, name: string): void {
    expect(execFileSync('unzip', ['-t', path], { encoding: 'utf8' })).toContain('No errors detected');
    const listed = execFileSync('unzip', ['-Z1', path], { encoding: 'utf8' }).trim().split('\n');
    expect(listed).toEqual([...files.keys()].map((f) => `${prefix}/${f}`));
    const out = join(tmp, `unzipped-${name}`);
    execFileSync('unzip', ['-q', '-o', path, '-d', out]);
    for (const [f, data] of files) expect(same(readFileSync(join(out, prefix, f)), data), f).toBe(true);
  }

  it('the merged HF model passes unzip -t and unzips to the same files', async ({ skip }) => {
    needUnzip(skip);
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config);
    const prov = provenance(model, config);
    const { path, files } = await exportBoth('merged.zip', 'tabzero-merged', (out) =>
      exportMergedModel(folder, lora, { dtype: 'f32', provenance: prov }, out),
    );
    expect(files.get('model.safetensors')!.byteLength).toBeGreaterThan(100_000);
    checkWithUnzip(path, 'tabzero-merged', files, 'merged');
  });

  it('the PEFT adapter passes unzip -t and unzips to the same files', async ({ skip }) => {
    needUnzip(skip);
    const config = loraRunConfig();
    const { model } = await tinyBase('F32');
    const lora = randomAdapter(model, config);
    const opts = { provenance: provenance(model, config), model: model.config };
    const { path, files } = await exportBoth('peft.zip', 'tabzero-peft', (out) =>
      exportPeftAdapter(lora, opts, out),
    );
    expect([...files.keys()]).toContain('adapter_model.safetensors');
    checkWithUnzip(path, 'tabzero-peft', files, 'peft');
  });
});
