// Reads a ZIP file (what zip-writer.ts makes, or any classic or ZIP64 archive with stored or deflated
// entries) with fflate's unzipSync: the whole archive is read into memory, so this is for checking
// exports and loading small ones back, not for multi-gigabyte archives. fflate does not check the
// entries' CRC-32 (the tests check what the writer makes with Debian's unzip -t). Browser-safe.

import { unzipSync } from 'fflate';
import { bytesSource, type ByteSource } from '../model/byte-source.ts';
import { MissingFileError, type ModelSource } from '../model/model-source.ts';

export interface ZipEntry {
  name: string;
  /** Uncompressed size. */
  size: number;
  /** Compression method (0 = stored, 8 = deflated). */
  method: number;
}

export interface ZipArchive {
  /** In the archive's (central directory's) order. */
  readonly entries: readonly ZipEntry[];
  has(name: string): boolean;
  /** An entry's bytes as a ByteSource. */
  open(name: string): ByteSource;
  /** An entry's whole bytes. */
  readAll(name: string): Promise<Uint8Array>;
}

export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

export async function readZip(source: ByteSource, what = 'zip'): Promise<ZipArchive> {
  const bytes = await source.read(0, source.size);
  const entries: ZipEntry[] = [];
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        entries.push({ name: f.name, size: f.originalSize, method: f.compression });
        return true;
      },
    });
  } catch (e) {
    throw new ZipFormatError(
      `${what}: not a readable ZIP file (truncated, damaged, or not a ZIP at all): ${(e as Error).message}`,
    );
  }
  const entry = (name: string): Uint8Array => {
    const data = Object.hasOwn(files, name) ? files[name] : undefined;
    if (!data) throw new ZipFormatError(`${what}: no entry "${name}"`);
    return data;
  };
  return {
    entries,
    has: (name) => Object.hasOwn(files, name),
    open: (name) => bytesSource(entry(name), `${what}/${name}`),
    readAll: async (name) => entry(name),
  };
}

/**
 * The files of an archive's folder (`prefix`, e.g. `tabzero-merged/`) as a ModelSource, so an exported
 * HF folder loads straight from its .zip (loadModelFolder).
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
