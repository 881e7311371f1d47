// The few durable file operations the run folder is built from (Node only). Every change goes through
// here so that (1) data reaches the disk before the rename that makes it visible (fsync file, rename,
// fsync directory), (2) ENOSPC becomes a StoreFullError, and (3) tests can inject a fault — a full disk
// or a "crash" — before any single operation and check that the run stays consistent.
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CorruptDataError, StoreFullError, isDiskFullError } from './errors.ts';

export type FsOp = 'write' | 'append' | 'truncate' | 'rename' | 'remove' | 'mkdir' | 'fsync' | 'lock';

/** Called before every mutating operation; throwing from it simulates a failure at that point. */
export type FaultHook = (op: FsOp, file: string) => void;

export class NodeFs {
  constructor(private readonly fault?: FaultHook) {}

  private check(op: FsOp, file: string): void {
    this.fault?.(op, file);
  }

  /** Runs a write, turning a full disk into StoreFullError (what = what was being saved). */
  async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isDiskFullError(err)) {
        const code = (err as { code: string }).code;
        throw new StoreFullError(
          `The disk is full (${code}) while saving ${what}; nothing of it was kept and the run is unchanged. ` +
            'Free disk space (or move the run folder), then resume the run.',
          err,
        );
      }
      throw err;
    }
  }

  /** Writes a whole file and fsyncs it (not yet visible under its final name: rename it after). */
  async writeFile(file: string, data: Uint8Array | string): Promise<void> {
    this.check('write', file);
    const fh = await fsp.open(file, 'w');
    try {
      await fh.writeFile(data);
      this.check('fsync', file);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Cuts `file` to `offset` bytes (dropping an uncommitted tail), appends `data` there and fsyncs. */
  async appendAt(file: string, offset: number, data: Uint8Array): Promise<void> {
    this.check('append', file);
    const fh = await fsp.open(file, constants.O_RDWR | constants.O_CREAT);
    try {
      await fh.truncate(offset);
      let pos = 0;
      while (pos < data.byteLength) {
        const { bytesWritten } = await fh.write(data, pos, data.byteLength - pos, offset + pos);
        pos += bytesWritten;
      }
      this.check('fsync', file);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async truncate(file: string, length: number): Promise<void> {
    this.check('truncate', file);
    await fsp.truncate(file, length);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to);
    await fsp.rename(from, to);
  }

  async remove(file: string): Promise<void> {
    this.check('remove', file);
    await fsp.rm(file, { recursive: true, force: true });
  }

  async mkdir(dir: string): Promise<void> {
    this.check('mkdir', dir);
    await fsp.mkdir(dir, { recursive: true });
  }

  /** Makes renames and creations inside `dir` durable. Some platforms cannot fsync a directory. */
  async syncDir(dir: string): Promise<void> {
    this.check('fsync', dir);
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(dir, 'r');
      await fh.sync();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw err;
    } finally {
      await fh?.close();
    }
  }

  /** Writes `file` atomically: temp file, fsync, rename over, fsync the directory. */
  async replaceFile(file: string, data: Uint8Array | string): Promise<void> {
    const tmp = `${file}.tmp`;
    await this.writeFile(tmp, data);
    await this.rename(tmp, file);
    await this.syncDir(path.dirname(file));
  }

  /** Creates `file` only if absent (O_EXCL); false when it exists. */
  async createExclusive(file: string, data: string): Promise<boolean> {
    this.check('lock', file);
    try {
      const fh = await fsp.open(file, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') return false;
      throw err;
    }
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.stat(file);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false;
    throw err;
  }
}

/** The first `length` bytes of `file` (the committed part of an append-only file). */
export async function readPrefix(file: string, length: number): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const fh = await fsp.open(file, 'r');
  try {
    const buf = new Uint8Array(length);
    let pos = 0;
    while (pos < length) {
      const { bytesRead } = await fh.read(buf, pos, length - pos, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
    if (pos < length) {
      throw new CorruptDataError(
        `${file}: ${pos} bytes on disk, ${length} committed (file truncated outside TabZero?)`,
      );
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fsp.stat(file)).size;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}
