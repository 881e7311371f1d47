// A minimal POSIX ustar writer and reader: the run archive is a plain .tar, so `tar tf` lists it and
// `tar xf` unpacks it, with no new dependency. Regular files only; sizes of 8 GiB and more use the
// GNU base-256 size field (full fine-tuning checkpoints). Browser-safe.
import type { ByteSource } from '../model/byte-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';
import { CorruptDataError } from './errors.ts';
import { utf8 } from './format.ts';

const BLOCK = 512;
const OCTAL_SIZE_LIMIT = 8 ** 11; // 11 octal digits

export interface TarEntry {
  name: string;
  /** Byte offset of the data in the archive. */
  offset: number;
  size: number;
}

function writeString(h: Uint8Array, offset: number, length: number, s: string): void {
  const b = utf8(s);
  if (b.byteLength > length) throw new Error(`tar: "${s}" does not fit in ${length} bytes`);
  h.set(b, offset);
}

function writeOctal(h: Uint8Array, offset: number, length: number, n: number): void {
  writeString(h, offset, length, n.toString(8).padStart(length - 1, '0') + '\0');
}

function splitName(name: string): { prefix: string; base: string } {
  if (utf8(name).byteLength <= 100) return { prefix: '', base: name };
  const cut = name.lastIndexOf('/', 155);
  if (cut <= 0 || utf8(name.slice(cut + 1)).byteLength > 100) throw new Error(`tar: name too long: ${name}`);
  return { prefix: name.slice(0, cut), base: name.slice(cut + 1) };
}

export function tarHeader(name: string, size: number, mtimeSeconds: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const { prefix, base } = splitName(name);
  writeString(h, 0, 100, base);
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  if (size < OCTAL_SIZE_LIMIT) writeOctal(h, 124, 12, size);
  else {
    h[124] = 0x80;
    let n = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(n & 0xffn);
      n >>= 8n;
    }
  }
  writeOctal(h, 136, 12, Math.floor(mtimeSeconds));
  h.fill(0x20, 148, 156);
  h[156] = 0x30; // '0': regular file
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 265, 32, 'tabzero');
  writeString(h, 297, 32, 'tabzero');
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** Writes files as a tar archive to `sink` (and closes it). */
export async function writeTar(
  sink: ByteSink,
  files: readonly { name: string; data: Uint8Array }[],
  mtime = new Date(),
): Promise<void> {
  const seconds = mtime.getTime() / 1000;
  for (const f of files) {
    await sink.write(tarHeader(f.name, f.data.byteLength, seconds));
    await sink.write(f.data);
    const pad = (BLOCK - (f.data.byteLength % BLOCK)) % BLOCK;
    if (pad) await sink.write(new Uint8Array(pad));
  }
  await sink.write(new Uint8Array(2 * BLOCK));
  await sink.close();
}

function readString(h: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && h[end] !== 0) end++;
  return new TextDecoder().decode(h.subarray(offset, end));
}

function readSize(h: Uint8Array, what: string): number {
  if (h[124] & 0x80) {
    let n = 0n;
    for (let i = 125; i < 136; i++) n = (n << 8n) | BigInt(h[i]);
    return Number(n);
  }
  const s = readString(h, 124, 12).trim();
  if (!/^[0-7]*$/.test(s)) throw new CorruptDataError(`${what}: bad size field`);
  return s === '' ? 0 : parseInt(s, 8);
}

/** An absolute path (`/x`, `C:x`, `\\x`) or one with a `..` segment: it would land outside the folder. */
function outsideRoot(name: string): boolean {
  return /^([/\\]|[A-Za-z]:)/.test(name) || name.split(/[/\\]/).includes('..');
}

/**
 * Lists the regular files of a tar archive (checksums verified); reads headers only. An entry of any
 * type whose path leads outside the archive's root refuses the whole archive: TabZero writes none.
 */
export async function readTarIndex(source: ByteSource, what: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  let pos = 0;
  while (pos + BLOCK <= source.size) {
    const h = await source.read(pos, BLOCK);
    if (h.every((b) => b === 0)) return entries;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    const stored = parseInt(readString(h, 148, 8).trim(), 8);
    if (stored !== sum)
      throw new CorruptDataError(
        `${what}: header checksum mismatch at byte ${pos} (not a tar archive, or damaged)`,
      );
    const size = readSize(h, what);
    const prefix = readString(h, 345, 155);
    const base = readString(h, 0, 100);
    const type = String.fromCharCode(h[156]);
    const offset = pos + BLOCK;
    if (offset + size > source.size)
      throw new CorruptDataError(`${what}: "${base}" runs past the end (truncated archive)`);
    const name = prefix ? `${prefix}/${base}` : base;
    if (outsideRoot(name))
      throw new CorruptDataError(
        `${what}: entry "${name}" points outside the archive (an absolute path or ".."), so TabZero reads ` +
          'none of it: this is not a run archive as TabZero writes them; export the run again where it was trained.',
      );
    if (type === '0' || type === '\0') entries.push({ name, offset, size });
    pos = offset + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new CorruptDataError(`${what}: no end-of-archive marker (truncated archive)`);
}
