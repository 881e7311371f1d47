// Where downloads land: a keyed store of files that can be appended to (resume) and read back at random
// (load). OPFS in the browser (opfs-store.ts), a directory in Node (node-fs-store.ts), memory in
// tests. Browser-safe.

import { bytesSource, type ByteSource } from './byte-source.ts';
import type { ByteSink } from './safetensors-write.ts';

/** What the hub client records next to a file. `complete` only after size and hash were verified. */
export interface StoredFileMeta {
  complete: boolean;
  /** Expected (while partial) or verified (when complete) size; null when the server did not say. */
  size: number | null;
  /** Expected (while partial) or verified (when complete) SHA-256; null when unknown. */
  sha256: string | null;
  /** The server's ETag, to notice that a partial download's file changed upstream. */
  etag: string | null;
  /** Hub commit the file came from (`x-repo-commit`), when the server said. */
  commit: string | null;
  url: string;
}

export interface ByteStore {
  /** Bytes currently stored under `key` (partial or complete), or null when nothing is. */
  size(key: string): Promise<number | null>;
  /** A sink that truncates the file to `offset` bytes, then appends. Data written before an error survives. */
  openAppend(key: string, offset: number): Promise<ByteSink>;
  open(key: string): Promise<ByteSource>;
  readMeta(key: string): Promise<StoredFileMeta | null>;
  writeMeta(key: string, meta: StoredFileMeta): Promise<void>;
  remove(key: string): Promise<void>;
}

/** Keys are `repo/revision/file`; refuse anything that could escape the store's root. */
export function checkKey(key: string): string[] {
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\')))
    throw new Error(`bad store key "${key}"`);
  return parts;
}

export class MemoryByteStore implements ByteStore {
  readonly files = new Map<string, Uint8Array>();
  readonly metas = new Map<string, StoredFileMeta>();

  async size(key: string): Promise<number | null> {
    return this.files.get(key)?.byteLength ?? null;
  }

  async openAppend(key: string, offset: number): Promise<ByteSink> {
    checkKey(key);
    const start = (this.files.get(key) ?? new Uint8Array()).subarray(0, offset);
    this.files.set(key, start.slice());
    return {
      write: async (chunk) => {
        const cur = this.files.get(key)!;
        const next = new Uint8Array(cur.byteLength + chunk.byteLength);
        next.set(cur);
        next.set(chunk, cur.byteLength);
        this.files.set(key, next);
      },
      close: async () => undefined,
    };
  }

  async open(key: string): Promise<ByteSource> {
    const bytes = this.files.get(key);
    if (!bytes) throw new Error(`memory store: no file "${key}"`);
    return bytesSource(bytes, key);
  }

  async readMeta(key: string): Promise<StoredFileMeta | null> {
    return this.metas.get(key) ?? null;
  }

  async writeMeta(key: string, meta: StoredFileMeta): Promise<void> {
    this.metas.set(key, { ...meta });
  }

  async remove(key: string): Promise<void> {
    this.files.delete(key);
    this.metas.delete(key);
  }
}
