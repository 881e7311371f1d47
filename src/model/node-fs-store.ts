// Node only: a directory as the hub client's ByteStore (the CLI's download cache).

import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ByteSource } from './byte-source.ts';
import { checkKey, type ByteStore, type StoredFileMeta } from './byte-store.ts';
import { nodeFileSink, nodeFileSource } from './node-folder.ts';
import type { ByteSink } from './safetensors-write.ts';

const META_SUFFIX = '.tabzero-meta.json';

export class NodeFsByteStore implements ByteStore {
  constructor(readonly root: string) {}

  private path(key: string): string {
    return join(this.root, ...checkKey(key));
  }

  async size(key: string): Promise<number | null> {
    const info = await stat(this.path(key)).catch(() => null);
    return info?.isFile() ? info.size : null;
  }

  async openAppend(key: string, offset: number): Promise<ByteSink> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    if ((await this.size(key)) === null) await writeFile(path, new Uint8Array());
    await truncate(path, offset);
    return nodeFileSink(path, 'a');
  }

  async open(key: string): Promise<ByteSource> {
    return nodeFileSource(this.path(key));
  }

  async readMeta(key: string): Promise<StoredFileMeta | null> {
    const text = await readFile(this.path(key) + META_SUFFIX, 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      return JSON.parse(text) as StoredFileMeta;
    } catch {
      return null;
    }
  }

  async writeMeta(key: string, meta: StoredFileMeta): Promise<void> {
    const path = this.path(key) + META_SUFFIX;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify(meta));
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
    await rm(this.path(key) + META_SUFFIX, { force: true });
  }
}
