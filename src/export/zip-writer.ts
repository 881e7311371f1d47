// A small ZIP writer (stored entries, no compression: safetensors weights do not compress anyway) that
// implements FolderSink, so every exporter can write one .zip the browser offers as a single download.
// Entries are written one after another straight into a ByteSink: files given whole get their CRC and
// sizes in the local header; streamed files (createFile) get a data descriptor after their bytes, so
// nothing is buffered. Classic ZIP only (no ZIP64): every entry, every offset and the whole archive must
// stay below 4 GiB (2^32 − 1 bytes) and there may be at most 65,535 entries — the merged real model in
// f32 (~2 GB) fits; anything larger is refused with a clear error, never written corrupt. Browser-safe.

import type { FolderSink } from '../model/model-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';
import { Crc32 } from './crc32.ts';

/** Largest size or offset a classic (non-ZIP64) archive can record. */
export const ZIP32_MAX = 0xffffffff;
/** Largest entry count a classic archive can record. */
export const ZIP32_MAX_ENTRIES = 0xffff;

export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_END = 0x06054b50;
export const SIG_DESCRIPTOR = 0x08074b50;

/** General-purpose flags: bit 3 = sizes and CRC in a data descriptor; bit 11 = UTF-8 names. */
export const FLAG_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;
/** "Version needed to extract" 2.0: the minimum for data descriptors and folders. */
const VERSION_NEEDED = 20;
/** "Version made by": Unix (3) in the high byte, so external attributes carry file permissions. */
const VERSION_MADE_BY = (3 << 8) | VERSION_NEEDED;
/** Regular file, rw-r--r--, in the high 16 bits of the external attributes (Unix convention). */
const UNIX_FILE_ATTRS = (0o100644 << 16) >>> 0;

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

/** MS-DOS date and time (2-second resolution, 1980–2107), from the date's UTC fields for reproducibility. */
export function dosDateTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getUTCFullYear(), 1980), 2107);
  return {
    time: (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate(),
  };
}

interface CentralEntry {
  name: Uint8Array;
  flags: number;
  crc: number;
  size: number;
  offset: number;
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
  private readonly central: CentralEntry[] = [];
  private readonly names = new Set<string>();
  private offset = 0;
  private open: string | null = null;
  private finished = false;
  private readonly dos: { time: number; date: number };
  private readonly prefix: string;

  constructor(
    private readonly out: ByteSink,
    opts: ZipOptions = {},
  ) {
    this.dos = dosDateTime(opts.date ?? new Date());
    this.prefix = opts.prefix ? opts.prefix.replace(/\/*$/, '/') : '';
  }

  /** Bytes written so far. */
  get size(): number {
    return this.offset;
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const entry = this.begin(name, 0);
    entry.crc = new Crc32().update(bytes).value();
    entry.size = bytes.byteLength;
    checkZip32(entry.size, `entry "${name}"`);
    await this.emit(this.localHeader(entry));
    await this.emit(bytes);
    this.end(entry);
  }

  async createFile(name: string): Promise<ByteSink> {
    const entry = this.begin(name, FLAG_DESCRIPTOR);
    await this.emit(this.localHeader(entry));
    const crc = new Crc32();
    let closed = false;
    return {
      write: async (chunk) => {
        if (closed) throw new Error(`zip: entry "${name}" is already closed`);
        crc.update(chunk);
        entry.size += chunk.byteLength;
        checkZip32(entry.size, `entry "${name}"`);
        await this.emit(chunk);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        entry.crc = crc.value();
        const d = new DataView(new ArrayBuffer(16));
        d.setUint32(0, SIG_DESCRIPTOR, true);
        d.setUint32(4, entry.crc, true);
        d.setUint32(8, entry.size, true);
        d.setUint32(12, entry.size, true);
        await this.emit(new Uint8Array(d.buffer));
        this.end(entry);
      },
    };
  }

  /** Writes the central directory and the end record, and closes `out`. */
  async finish(): Promise<ZipSummary> {
    if (this.open) throw new Error(`zip: entry "${this.open}" is still open (close it before finish)`);
    if (this.finished) throw new Error('zip: already finished');
    this.finished = true;
    const cdStart = this.offset;
    checkZip32(cdStart, 'central directory offset');
    for (const e of this.central) await this.emit(this.centralHeader(e));
    const cdSize = this.offset - cdStart;
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, SIG_END, true);
    end.setUint16(8, this.central.length, true);
    end.setUint16(10, this.central.length, true);
    end.setUint32(12, cdSize, true);
    end.setUint32(16, cdStart, true);
    await this.emit(new Uint8Array(end.buffer));
    checkZip32(this.offset, 'archive size');
    await this.out.close();
    return { entries: this.central.length, bytes: this.offset };
  }

  private begin(name: string, flags: number): CentralEntry {
    if (this.finished) throw new Error('zip: archive already finished');
    if (this.open)
      throw new Error(`zip: cannot start "${name}" while "${this.open}" is open (one entry at a time)`);
    validName(name);
    const full = this.prefix + name;
    if (this.names.has(full)) throw new Error(`zip: entry "${full}" written twice`);
    if (this.central.length >= ZIP32_MAX_ENTRIES)
      throw new ZipLimitError(
        `zip: more than ${ZIP32_MAX_ENTRIES} entries need ZIP64, which this writer does not make`,
      );
    checkZip32(this.offset, `offset of entry "${name}"`);
    this.names.add(full);
    this.open = name;
    return {
      name: new TextEncoder().encode(full),
      flags: flags | FLAG_UTF8,
      crc: 0,
      size: 0,
      offset: this.offset,
    };
  }

  private end(entry: CentralEntry): void {
    this.central.push(entry);
    this.open = null;
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    await this.out.write(bytes);
    this.offset += bytes.byteLength;
  }

  private localHeader(e: CentralEntry): Uint8Array {
    const streamed = (e.flags & FLAG_DESCRIPTOR) !== 0;
    const h = new Uint8Array(30 + e.name.byteLength);
    const d = new DataView(h.buffer);
    d.setUint32(0, SIG_LOCAL, true);
    d.setUint16(4, VERSION_NEEDED, true);
    d.setUint16(6, e.flags, true);
    d.setUint16(8, 0, true); // method: stored
    d.setUint16(10, this.dos.time, true);
    d.setUint16(12, this.dos.date, true);
    // Streamed entries: CRC and sizes are zero here and follow the data in the descriptor.
    d.setUint32(14, streamed ? 0 : e.crc, true);
    d.setUint32(18, streamed ? 0 : e.size, true);
    d.setUint32(22, streamed ? 0 : e.size, true);
    d.setUint16(26, e.name.byteLength, true);
    d.setUint16(28, 0, true);
    h.set(e.name, 30);
    return h;
  }

  private centralHeader(e: CentralEntry): Uint8Array {
    const h = new Uint8Array(46 + e.name.byteLength);
    const d = new DataView(h.buffer);
    d.setUint32(0, SIG_CENTRAL, true);
    d.setUint16(4, VERSION_MADE_BY, true);
    d.setUint16(6, VERSION_NEEDED, true);
    d.setUint16(8, e.flags, true);
    d.setUint16(10, 0, true);
    d.setUint16(12, this.dos.time, true);
    d.setUint16(14, this.dos.date, true);
    d.setUint32(16, e.crc, true);
    d.setUint32(20, e.size, true);
    d.setUint32(24, e.size, true);
    d.setUint16(28, e.name.byteLength, true);
    // extra length, comment length, disk number, internal attributes: all 0 (bytes 30..37)
    d.setUint32(38, UNIX_FILE_ATTRS, true);
    d.setUint32(42, e.offset, true);
    h.set(e.name, 46);
    return h;
  }
}
