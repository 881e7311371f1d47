// Node only: a model folder on disk as a ModelSource (read through a file handle, never whole) and
// as a FolderSink (tiny-model writes here).

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ByteSource } from './byte-source.ts';
import type { FolderSink, ModelSource } from './model-source.ts';
import { MissingFileError } from './model-source.ts';
import type { ByteSink } from './safetensors-write.ts';

/** A file on disk as a ByteSource. The handle closes when `close()` is called or the process ends. */
export interface NodeFileSource extends ByteSource {
  close(): Promise<void>;
}

export async function nodeFileSource(path: string): Promise<NodeFileSource> {
  const handle: FileHandle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(
          `${path}: byte range ${offset}..${offset + length} is outside the file (${size} bytes)`,
        );
      }
      const out = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(out, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${path}: file shrank while reading (at byte ${offset + got})`);
        got += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

/** A model folder on disk. Its identity is `local/<folder name>` at revision `local`. */
export function nodeFolderSource(dir: string): ModelSource & { close(): Promise<void> } {
  const root = resolve(dir);
  const description = `folder ${root}`;
  const opened: NodeFileSource[] = [];
  return {
    description,
    repo: `local/${basename(root)}`,
    revision: 'local',
    list: async () => {
      const entries = await readdir(root, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`${description}: cannot list (${err.code ?? err.message})`);
      });
      return entries
        .filter((e) => e.isFile())
        .map((e) => e.name)
        .sort();
    },
    open: async (file) => {
      if (file.includes('/') || file.includes('\\') || file.startsWith('.'))
        throw new MissingFileError(`${description}: bad file name "${file}"`);
      const path = join(root, file);
      const info = await stat(path).catch(() => null);
      if (!info?.isFile()) throw new MissingFileError(`${description}: no file "${file}"`);
      const src = await nodeFileSource(path);
      opened.push(src);
      return src;
    },
    // node:crypto hashes ~10x faster than the portable JS SHA-256.
    knownSha256: async (file) => {
      const hash = createHash('sha256');
      await pipeline(createReadStream(join(root, file)), hash);
      return hash.digest('hex');
    },
    close: async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}

/** A ByteSink appending to a file through a write stream (respects backpressure). */
export function nodeFileSink(path: string, flags = 'w'): ByteSink {
  const stream = createWriteStream(path, { flags });
  const failed = new Promise<never>((_, reject) => stream.once('error', reject));
  failed.catch(() => undefined);
  return {
    async write(chunk) {
      if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), failed]);
    },
    async close() {
      stream.end();
      await Promise.race([once(stream, 'finish'), failed]);
    },
  };
}

export async function nodeFolderSink(dir: string): Promise<FolderSink> {
  await mkdir(dir, { recursive: true });
  return {
    writeFile: (name, data) => writeFile(join(dir, name), data),
    createFile: async (name) => nodeFileSink(join(dir, name)),
  };
}
