import { describe, expect, it } from 'vitest';
import { OpfsByteStore } from '../../../src/model/opfs-store.ts';

// A minimal in-memory Origin Private File System with the semantics the store relies on: a writable
// works on a copy and commits it only on close() (abort() discards), missing entries throw
// NotFoundError. The real thing was exercised in Chromium during development; this keeps the store's
// logic under test in Node.
class FakeFile {
  data: Uint8Array = new Uint8Array();
}

class FakeWritable {
  private copy: Uint8Array;
  private pos = 0;
  constructor(
    private readonly file: FakeFile,
    keep: boolean,
  ) {
    this.copy = keep ? file.data.slice() : new Uint8Array();
  }
  async write(chunk: Uint8Array | string) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    const end = this.pos + bytes.byteLength;
    if (end > this.copy.byteLength) {
      const grown = new Uint8Array(end);
      grown.set(this.copy);
      this.copy = grown;
    }
    this.copy.set(bytes, this.pos);
    this.pos = end;
  }
  async seek(pos: number) {
    this.pos = pos;
  }
  async truncate(size: number) {
    const next = new Uint8Array(size);
    next.set(this.copy.subarray(0, size));
    this.copy = next;
    this.pos = Math.min(this.pos, size);
  }
  async close() {
    this.file.data = this.copy;
  }
  async abort() {}
}

const notFound = () => new DOMException('not found', 'NotFoundError');

class FakeFileHandle {
  constructor(readonly file: FakeFile) {}
  async getFile() {
    return new File([this.file.data as Uint8Array<ArrayBuffer>], 'f');
  }
  async createWritable(opts: { keepExistingData?: boolean } = {}) {
    return new FakeWritable(this.file, opts.keepExistingData ?? false);
  }
}

class FakeDir {
  readonly dirs = new Map<string, FakeDir>();
  readonly files = new Map<string, FakeFile>();
  async getDirectoryHandle(name: string, opts: { create?: boolean } = {}) {
    if (this.files.has(name)) throw new DOMException('file', 'TypeMismatchError');
    if (!this.dirs.has(name)) {
      if (!opts.create) throw notFound();
      this.dirs.set(name, new FakeDir());
    }
    return this.dirs.get(name)!;
  }
  async getFileHandle(name: string, opts: { create?: boolean } = {}) {
    if (!this.files.has(name)) {
      if (!opts.create) throw notFound();
      this.files.set(name, new FakeFile());
    }
    return new FakeFileHandle(this.files.get(name)!);
  }
  async removeEntry(name: string) {
    if (!this.files.delete(name) && !this.dirs.delete(name)) throw notFound();
  }
}

const newStore = () => {
  const root = new FakeDir();
  return { root, store: new OpfsByteStore(root as unknown as FileSystemDirectoryHandle) };
};

describe('OPFS byte store', () => {
  it('appends, truncates on resume, and reads back through a File', async () => {
    const { root, store } = newStore();
    const key = 'Qwen/Qwen2-0.5B-Instruct/main/model.safetensors';
    expect(await store.size(key)).toBeNull();
    const first = await store.openAppend(key, 0);
    await first.write(new Uint8Array([1, 2, 3, 4, 5]));
    await first.close();
    expect(await store.size(key)).toBe(5);
    expect(
      root.dirs
        .get('Qwen')
        ?.dirs.get('Qwen2-0.5B-Instruct')
        ?.dirs.get('main')
        ?.files.has('model.safetensors'),
    ).toBe(true);

    const resumed = await store.openAppend(key, 3); // drop bytes past what was verified
    await resumed.write(new Uint8Array([9, 9]));
    await resumed.close();
    const src = await store.open(key);
    expect(src.size).toBe(5);
    expect(await src.read(0, 5)).toEqual(new Uint8Array([1, 2, 3, 9, 9]));
  });

  it('keeps metadata next to the file and removes both', async () => {
    const { store } = newStore();
    const key = 'r/x/main/config.json';
    expect(await store.readMeta(key)).toBeNull();
    const meta = {
      complete: true,
      size: 2,
      sha256: 'ab'.repeat(32),
      etag: null,
      commit: 'c0ffee',
      url: 'http://h/r/x/resolve/main/config.json',
    };
    const sink = await store.openAppend(key, 0);
    await sink.write(new Uint8Array([123, 125]));
    await sink.close();
    await store.writeMeta(key, meta);
    expect(await store.readMeta(key)).toEqual(meta);
    await store.remove(key);
    expect(await store.size(key)).toBeNull();
    expect(await store.readMeta(key)).toBeNull();
    await store.remove(key); // removing twice is fine
    await expect(store.open(key)).rejects.toThrow('browser storage: no file "r/x/main/config.json"');
  });

  it('refuses keys that could escape the store', async () => {
    const { store } = newStore();
    await expect(store.openAppend('a/../b', 0)).rejects.toThrow(/bad store key/);
    await expect(store.size('/abs')).rejects.toThrow(/bad store key/);
  });
});
