// The ZIP writer every exporter writes into (it implements FolderSink), so the browser offers an export
// as a single download: fflate's streaming Zip with stored entries (safetensors weights do not
// compress anyway). Entries go out one after another straight into a ByteSink as their bytes arrive,
// each followed by a data descriptor (CRC and sizes), so nothing is buffered: a chunk written to an
// entry has reached `out` when its write resolves. fflate makes classic ZIP only (no ZIP64): every
// entry, every offset and the whole archive must stay below 4 GiB (2^32 − 1 bytes) and there may be
// at most 65,535 entries — the merged real model in f32 (~2 GB) fits; anything larger is refused here
// with a clear error before it is written, never written corrupt. Browser-safe.

import { Zip, ZipPassThrough } from 'fflate';
import type { FolderSink } from '../model/model-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';

/** Largest size or offset a classic (non-ZIP64) archive can record. */
export const ZIP32_MAX = 0xffffffff;
/** Largest entry count a classic archive can record. */
export const ZIP32_MAX_ENTRIES = 0xffff;

/** "Made by" Unix, so the external attributes carry file permissions. */
const OS_UNIX = 3;
/** Regular file, rw-r--r--, in the high 16 bits of the external attributes (Unix convention). */
const UNIX_FILE_ATTRS = (0o100644 << 16) >>> 0;
/** The years a ZIP (MS-DOS) date can hold, as fflate writes them. */
const FIRST_YEAR = 1980;
const LAST_YEAR = 2099;

export class ZipLimitError extends Error {
  override name = 'ZipLimitError';
}

/** Throws when a size or offset does not fit a classic ZIP field. */
export function checkZip32(value: number, what: string): void {
  if (value > ZIP32_MAX)
    throw new ZipLimitError(
      `zip: ${what} is ${value} bytes; this writer makes classic ZIP files (no ZIP64), limited to 4 GiB − 1`,
    );
}

/**
 * The Date to hand fflate, which records an entry's local time fields: one whose local fields are
 * `date`'s UTC fields, so an archive does not depend on the time zone it was made in. Clamped to the
 * years a ZIP date can hold.
 */
function zipTime(date: Date): Date {
  const year = date.getUTCFullYear();
  if (year < FIRST_YEAR) return new Date(FIRST_YEAR, 0, 1);
  if (year > LAST_YEAR) return new Date(LAST_YEAR, 11, 31, 23, 59, 58);
  return new Date(
    year,
    date.getUTCMonth(),
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
  );
}

export interface ZipOptions {
  /** Modification time of every entry (default: now). */
  date?: Date;
  /** Folder every entry goes under, e.g. `tabzero-merged/` (so unzipping makes one folder). */
  prefix?: string;
}

export interface ZipSummary {
  entries: number;
  /** Size of the whole archive. */
  bytes: number;
}

function validName(name: string): void {
  if (
    name === '' ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.endsWith('/') ||
    name.split('/').some((part) => part === '' || part === '.' || part === '..')
  )
    throw new Error(`zip: bad entry name "${name}" (relative path with / separators expected)`);
}

/** A ZIP archive being written to `out`: write entries through the FolderSink methods, then `finish()`. */
export class ZipWriter implements FolderSink {
  private readonly zip: Zip;
  private readonly names = new Set<string>();
  /** Archive bytes fflate has produced (written to `out`, or about to be). */
  private offset = 0;
  /** Chunks fflate produced during the current call, not yet handed to `out`. */
  private pending: Uint8Array[] = [];
  /** Writes to `out`, in order: each flush waits for the one before. */
  private writing: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private entries = 0;
  private open: string | null = null;
  private finished = false;
  private readonly mtime: Date;
  private readonly prefix: string;

  constructor(
    private readonly out: ByteSink,
    opts: ZipOptions = {},
  ) {
    this.mtime = zipTime(opts.date ?? new Date());
    this.prefix = opts.prefix ? opts.prefix.replace(/\/*$/, '/') : '';
    // fflate hands over output synchronously, during add/push/end; flush() passes it on to `out`.
    this.zip = new Zip((err, chunk) => {
      if (err) this.failure ??= err;
      else {
        this.pending.push(chunk);
        this.offset += chunk.byteLength;
      }
    });
  }

  /** Bytes written so far. */
  get size(): number {
    return this.offset;
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    checkZip32(bytes.byteLength, `entry "${this.prefix + name}"`);
    const file = this.begin(name);
    file.push(bytes, true);
    this.open = null;
    await this.flush();
  }

  async createFile(name: string): Promise<ByteSink> {
    const file = this.begin(name);
    await this.flush();
    let size = 0;
    let closed = false;
    return {
      write: async (chunk) => {
        if (closed) throw new Error(`zip: entry "${name}" is already closed`);
        checkZip32(size + chunk.byteLength, `entry "${this.prefix + name}"`);
        size += chunk.byteLength;
        file.push(chunk);
        await this.flush();
      },
      close: async () => {
        if (closed) return;
        closed = true;
        file.push(new Uint8Array(0), true);
        this.open = null;
        await this.flush();
      },
    };
  }

  /** Writes the central directory and the end record, and closes `out`. */
  async finish(): Promise<ZipSummary> {
    if (this.open) throw new Error(`zip: entry "${this.open}" is still open (close it before finish)`);
    if (this.finished) throw new Error('zip: already finished');
    this.finished = true;
    checkZip32(this.offset, 'central directory offset');
    this.zip.end();
    checkZip32(this.offset, 'archive size');
    await this.flush();
    await this.out.close();
    return { entries: this.entries, bytes: this.offset };
  }

  private begin(name: string): ZipPassThrough {
    if (this.finished) throw new Error('zip: archive already finished');
    if (this.open)
      throw new Error(`zip: cannot start "${name}" while "${this.open}" is open (one entry at a time)`);
    validName(name);
    const full = this.prefix + name;
    if (this.names.has(full)) throw new Error(`zip: entry "${full}" written twice`);
    if (this.entries >= ZIP32_MAX_ENTRIES)
      throw new ZipLimitError(
        `zip: more than ${ZIP32_MAX_ENTRIES} entries need ZIP64, which this writer does not make`,
      );
    checkZip32(this.offset, `offset of entry "${name}"`);
    this.names.add(full);
    this.open = name;
    this.entries++;
    const file = new ZipPassThrough(full);
    file.mtime = this.mtime;
    file.os = OS_UNIX;
    file.attrs = UNIX_FILE_ATTRS;
    this.zip.add(file);
    return file;
  }

  /** Hands what fflate produced to `out`; resolves when `out` has taken it. */
  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    const chunks = this.pending;
    this.pending = [];
    this.writing = this.writing.then(async () => {
      for (const chunk of chunks) if (chunk.byteLength > 0) await this.out.write(chunk);
    });
    await this.writing;
  }
}
