// The browser's Origin Private File System as a ByteStore: downloaded model files survive reloads, so a
// second visit loads offline, and a partial file can be resumed with HTTP Range (the Cache API cannot
// hold partial responses). Browser only (uses navigator.storage); no node: imports.

import { blobSource, type ByteSource } from './byte-source.ts';
import { checkKey, type ByteStore, type StoredFileMeta } from './byte-store.ts';
import type { ByteSink } from './safetensors-write.ts';

const META_SUFFIX = '.tabzero-meta.json';
/**
 * A FileSystemWritableFileStream commits only on close(), so a tab closed mid-download would lose
 * everything since it opened. Committing every this-many bytes bounds that loss.
 */
const COMMIT_EVERY_BYTES = 32 << 20;

function isNotFound(err: unknown): boolean {
  return err instanceof DOMException && (err.name === 'NotFoundError' || err.name === 'TypeMismatchError');
}

export class OpfsByteStore implements ByteStore {
  /** `root` defaults to the origin's OPFS root; pass a subdirectory to keep the store apart. */
  constructor(private readonly root?: FileSystemDirectoryHandle) {}

  private async dirFor(
    key: string,
    create: boolean,
  ): Promise<{ dir: FileSystemDirectoryHandle; name: string }> {
    const parts = checkKey(key);
    let dir = this.root ?? (await navigator.storage.getDirectory());
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create });
    return { dir, name: parts[parts.length - 1] };
  }

  private async fileHandle(key: string, create: boolean): Promise<FileSystemFileHandle | null> {
    try {
      const { dir, name } = await this.dirFor(key, create);
      return await dir.getFileHandle(name, { create });
    } catch (err) {
      if (!create && isNotFound(err)) return null;
      throw err;
    }
  }

  async size(key: string): Promise<number | null> {
    const handle = await this.fileHandle(key, false);
    return handle ? (await handle.getFile()).size : null;
  }

  async openAppend(key: string, offset: number): Promise<ByteSink> {
    const handle = (await this.fileHandle(key, true))!;
    let position = offset;
    let sinceCommit = 0;
    const openWritable = async () => {
      const w = await handle.createWritable({ keepExistingData: true });
      await w.truncate(position);
      await w.seek(position);
      return w;
    };
    let writable = await openWritable();
    return {
      write: async (chunk) => {
        await writable.write(chunk as Uint8Array<ArrayBuffer>);
        position += chunk.byteLength;
        sinceCommit += chunk.byteLength;
        if (sinceCommit >= COMMIT_EVERY_BYTES) {
          await writable.close();
          writable = await openWritable();
          sinceCommit = 0;
        }
      },
      // close() commits; the hub client calls it on errors too, so a partial download is kept.
      close: () => writable.close(),
    };
  }

  async open(key: string): Promise<ByteSource> {
    const handle = await this.fileHandle(key, false);
    if (!handle) throw new Error(`browser storage: no file "${key}"`);
    return blobSource(await handle.getFile(), key);
  }

  async readMeta(key: string): Promise<StoredFileMeta | null> {
    const handle = await this.fileHandle(key + META_SUFFIX, false);
    if (!handle) return null;
    try {
      return JSON.parse(await (await handle.getFile()).text()) as StoredFileMeta;
    } catch {
      return null; // a torn write: treat as unknown, the download re-verifies
    }
  }

  async writeMeta(key: string, meta: StoredFileMeta): Promise<void> {
    const handle = (await this.fileHandle(key + META_SUFFIX, true))!;
    const w = await handle.createWritable();
    await w.write(JSON.stringify(meta));
    await w.close();
  }

  async remove(key: string): Promise<void> {
    for (const k of [key, key + META_SUFFIX]) {
      try {
        const { dir, name } = await this.dirFor(k, false);
        await dir.removeEntry(name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}
