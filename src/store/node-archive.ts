// Run archives as files (Node only): written to a temporary name, fsynced and renamed, so an
// interrupted export never leaves a half archive under the final name.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ByteSource } from '../model/byte-source.ts';
import { nodeFileSource } from '../model/node-folder.ts';
import { readRunArchive, writeRunArchive } from './archive.ts';
import { NodeFs } from './node-fs.ts';
import type { RunExport, RunMeta, RunStore } from './types.ts';

export async function writeRunArchiveFile(file: string, data: RunExport, exportedBy: string): Promise<void> {
  const fs = new NodeFs();
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.guard(`the archive ${file}`, async () => {
    const fh = await fsp.open(tmp, 'w');
    try {
      await writeRunArchive(
        data,
        {
          async write(chunk) {
            let pos = 0;
            while (pos < chunk.byteLength) pos += (await fh.write(chunk, pos)).bytesWritten;
          },
          async close() {
            await fh.sync();
          },
        },
        exportedBy,
      );
    } catch (err) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await fs.rename(tmp, file);
    await fs.syncDir(path.dirname(path.resolve(file)));
  });
}

export async function openArchiveFile(file: string): Promise<ByteSource & { close(): Promise<void> }> {
  return nodeFileSource(file);
}

export async function readRunArchiveFile(file: string): Promise<RunExport> {
  const source = await openArchiveFile(file);
  try {
    return await readRunArchive(source, file);
  } finally {
    await source.close();
  }
}

export async function importRunArchiveFile(store: RunStore, id: string, file: string): Promise<RunMeta> {
  return store.importRun(id, await readRunArchiveFile(file));
}
