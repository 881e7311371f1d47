// Node only: where `tabzero export` writes — a folder (subfolders such as buffers/ are created as
// needed) or a single .zip file.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { FolderSink } from '../model/model-source.ts';
import { nodeFileSink } from '../model/node-folder.ts';
import { ZipWriter, type ZipOptions } from './zip-writer.ts';

/** A folder on disk as a FolderSink; names may contain `/` (subfolders are made). */
export async function nodeExportFolder(dir: string): Promise<FolderSink> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const pathOf = async (name: string) => {
    if (name.split('/').some((p) => p === '' || p === '.' || p === '..') || name.includes('\\'))
      throw new Error(`export: bad file name "${name}"`);
    const path = join(root, name);
    await mkdir(dirname(path), { recursive: true });
    return path;
  };
  return {
    writeFile: async (name, data) => writeFile(await pathOf(name), data),
    createFile: async (name) => nodeFileSink(await pathOf(name)),
  };
}

/** A .zip file on disk; call `finish()` on the result after the export. */
export async function nodeExportZip(path: string, opts: ZipOptions = {}): Promise<ZipWriter> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  return new ZipWriter(nodeFileSink(resolve(path)), opts);
}

/** `--out PATH` of `tabzero export`: a .zip file when PATH ends in .zip, else a folder. */
export async function nodeExportTarget(
  path: string,
  opts: ZipOptions = {},
): Promise<{ sink: FolderSink; kind: 'zip' | 'folder'; finish(): Promise<void> }> {
  if (path.toLowerCase().endsWith('.zip')) {
    const zip = await nodeExportZip(path, opts);
    return { sink: zip, kind: 'zip', finish: async () => void (await zip.finish()) };
  }
  return { sink: await nodeExportFolder(path), kind: 'folder', finish: async () => undefined };
}
