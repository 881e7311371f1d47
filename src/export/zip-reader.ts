// Reads the ZIP files zip-writer.ts makes (stored entries, classic ZIP): the central directory, and each
// entry as a ByteSource over the archive, so a safetensors file inside an archive opens in place without
// being copied out. Compressed entries are refused by name. Browser-safe.

import type { ByteSource } from '../model/byte-source.ts';
import { readChunks } from '../model/byte-source.ts';
import { MissingFileError, type ModelSource } from '../model/model-source.ts';
import { Crc32 } from './crc32.ts';
import { SIG_CENTRAL, SIG_END, SIG_LOCAL } from './zip-writer.ts';

export interface ZipEntry {
  name: string;
  crc: number;
  size: number;
  /** Compression method (0 = stored; the only one read). */
  method: number;
  /** Offset of the entry's data in the archive. */
  dataOffset: number;
}

export interface ZipArchive {
  readonly entries: readonly ZipEntry[];
  has(name: string): boolean;
  /** An entry's bytes as a ByteSource (not checked against its CRC: use `verify` or `readAll`). */
  open(name: string): ByteSource;
  /** An entry's whole bytes, checked against its CRC. */
  readAll(name: string): Promise<Uint8Array>;
  /** Streams an entry and checks its CRC; throws naming the entry on a mismatch. */
  verify(name: string): Promise<void>;
}

export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

const END_RECORD_BYTES = 22;
/** The end record may be followed by a comment of up to 65,535 bytes. */
const MAX_COMMENT = 0xffff;

function fail(what: string, msg: string): never {
  throw new ZipFormatError(`${what}: ${msg}`);
}

export async function readZip(source: ByteSource, what = 'zip'): Promise<ZipArchive> {
  if (source.size < END_RECORD_BYTES) fail(what, `${source.size} bytes is too short for a ZIP file`);
  const tailLen = Math.min(source.size, END_RECORD_BYTES + MAX_COMMENT);
  const tail = await source.read(source.size - tailLen, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let endAt = -1;
  for (let i = tail.byteLength - END_RECORD_BYTES; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_END) {
      endAt = i;
      break;
    }
  }
  if (endAt < 0) fail(what, 'no end-of-central-directory record (not a ZIP file, or truncated)');
  const count = tv.getUint16(endAt + 10, true);
  const cdSize = tv.getUint32(endAt + 12, true);
  const cdOffset = tv.getUint32(endAt + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) fail(what, 'ZIP64 archives are not supported');
  if (cdOffset + cdSize > source.size) fail(what, 'central directory runs past the end of the file');
  const cd = await source.read(cdOffset, cdSize);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.byteLength || cv.getUint32(p, true) !== SIG_CENTRAL)
      fail(what, `central directory entry ${n} is damaged`);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    const compressed = cv.getUint32(p + 20, true);
    const size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    const localOffset = cv.getUint32(p + 42, true);
    const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (method === 0 && compressed !== size) fail(what, `"${name}": stored entry with differing sizes`);
    const local = await source.read(localOffset, 30);
    const lv = new DataView(local.buffer, local.byteOffset, 30);
    if (lv.getUint32(0, true) !== SIG_LOCAL) fail(what, `"${name}": local header missing`);
    const dataOffset = localOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (dataOffset + compressed > source.size) fail(what, `"${name}": data runs past the end of the file`);
    entries.push({ name, crc, size, method, dataOffset });
  }
  const byName = new Map(entries.map((e) => [e.name, e]));

  const entry = (name: string): ZipEntry => {
    const e = byName.get(name);
    if (!e) fail(what, `no entry "${name}"`);
    if (e.method !== 0)
      fail(what, `"${name}" is compressed (method ${e.method}); only stored entries are read`);
    return e;
  };
  const open = (name: string): ByteSource => {
    const e = entry(name);
    return {
      size: e.size,
      read: async (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > e.size)
          throw new RangeError(`${what}/${name}: byte range ${offset}+${length} outside ${e.size} bytes`);
        return source.read(e.dataOffset + offset, length);
      },
    };
  };
  const verify = async (name: string): Promise<void> => {
    const e = entry(name);
    const crc = new Crc32();
    for await (const chunk of readChunks(open(name))) crc.update(chunk);
    if (crc.value() !== e.crc) fail(what, `"${name}" fails its CRC-32 check (corrupt archive)`);
  };
  return {
    entries,
    has: (name) => byName.has(name),
    open,
    verify,
    readAll: async (name) => {
      const e = entry(name);
      const bytes = await source.read(e.dataOffset, e.size);
      if (new Crc32().update(bytes).value() !== e.crc)
        fail(what, `"${name}" fails its CRC-32 check (corrupt archive)`);
      return bytes;
    },
  };
}

/**
 * The files of an archive's folder (`prefix`, e.g. `tabzero-merged/`) as a ModelSource, so an exported
 * HF folder loads straight from its .zip (loadModelFolder), in place.
 */
export function zipFolderSource(zip: ZipArchive, prefix = '', name = 'zip'): ModelSource {
  const dir = prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix;
  const description = `archive ${name}${dir ? ` (${dir})` : ''}`;
  const names = zip.entries
    .map((e) => e.name)
    .filter((n) => n.startsWith(dir) && !n.slice(dir.length).includes('/'))
    .map((n) => n.slice(dir.length));
  return {
    description,
    repo: `local/${name}`,
    revision: 'local',
    list: async () => [...names].sort(),
    open: async (file) => {
      if (!names.includes(file)) throw new MissingFileError(`${description}: no file "${file}"`);
      return zip.open(dir + file);
    },
  };
}
