// safetensors reader: parses and validates the header, then hands out each tensor's bytes on demand
// (or in chunks), so a 988 MB checkpoint streams tensor by tensor to the GPU instead of living in one
// JS array. Format: u64 LE header length N, N bytes of JSON, then the data section; each tensor's
// data_offsets are relative to the start of the data section. Browser-safe.

import { readChunks, type ByteSource } from './byte-source.ts';
import { DTYPE_BYTES, isDType, type DType } from './dtype.ts';

/** Header JSON larger than this is refused (the real Qwen2 header is ~30 kB; the Rust crate caps at 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsFile {
  /** Name used in error messages (usually the file name). */
  readonly fileName: string;
  /** `__metadata__` (string → string), empty when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in file order (ascending offset). */
  readonly tensors: readonly TensorInfo[];
  readonly source: ByteSource;
  /** Info of one tensor; throws naming the file and tensor when absent. */
  tensor(name: string): TensorInfo;
  has(name: string): boolean;
  /** All bytes of one tensor (one tensor at a time is fine: the largest real one is 272 MB in bf16). */
  read(name: string): Promise<Uint8Array>;
  /** A tensor's bytes in chunks of at most `chunkBytes` (for uploading huge tensors piecewise). */
  stream(name: string, chunkBytes?: number): AsyncGenerator<Uint8Array>;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

function fail(fileName: string, msg: string): never {
  throw new SafetensorsError(`${fileName}: ${msg}`);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function parseEntry(
  fileName: string,
  name: string,
  raw: unknown,
  dataStart: number,
  dataSize: number,
): TensorInfo {
  const where = `tensor "${name}"`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(fileName, `${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDType(dtype))
    fail(
      fileName,
      `${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`,
    );
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(fileName, `${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(
      fileName,
      `${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`,
    );
  }
  const [begin, end] = offsets as number[];
  if (end > dataSize)
    fail(
      fileName,
      `${where}: data_offsets [${begin}, ${end}] run past the data section (${dataSize} bytes; file truncated?)`,
    );
  const expected = elementCount(shape as number[]) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    fail(
      fileName,
      `${where}: ${end - begin} bytes of data but ${dtype}${JSON.stringify(shape)} needs ${expected}`,
    );
  }
  return { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin };
}

/** Reads and validates the header of a safetensors file. Never reads tensor data. */
export async function openSafetensors(source: ByteSource, fileName: string): Promise<SafetensorsFile> {
  if (source.size < 8) fail(fileName, `file is ${source.size} bytes, too short for a safetensors header`);
  const lenBytes = await source.read(0, 8);
  const lenView = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const headerLen = lenView.getUint32(0, true) + lenView.getUint32(4, true) * 2 ** 32;
  if (headerLen > MAX_HEADER_BYTES)
    fail(
      fileName,
      `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte cap (not a safetensors file?)`,
    );
  if (8 + headerLen > source.size)
    fail(
      fileName,
      `header length ${headerLen} is past the end of the file (${source.size} bytes; truncated?)`,
    );
  const headerBytes = await source.read(8, headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    fail(fileName, `header is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail(fileName, 'header JSON is not an object');

  const dataStart = 8 + headerLen;
  const dataSize = source.size - dataStart;
  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (
        typeof raw !== 'object' ||
        raw === null ||
        Array.isArray(raw) ||
        !Object.values(raw).every((v) => typeof v === 'string')
      ) {
        fail(fileName, '__metadata__ must map strings to strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    tensors.push(parseEntry(fileName, name, raw, dataStart, dataSize));
  }
  tensors.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1];
    if (tensors[i].offset < prev.offset + prev.byteLength) {
      fail(fileName, `tensors "${prev.name}" and "${tensors[i].name}" overlap`);
    }
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));

  const tensor = (name: string): TensorInfo => {
    const t = byName.get(name);
    if (!t) fail(fileName, `no tensor named "${name}"`);
    return t;
  };
  return {
    fileName,
    metadata,
    tensors,
    source,
    tensor,
    has: (name) => byName.has(name),
    read: async (name) => {
      const t = tensor(name);
      return source.read(t.offset, t.byteLength);
    },
    stream: (name, chunkBytes) => {
      const t = tensor(name);
      return readChunks(source, t.offset, t.byteLength, chunkBytes);
    },
  };
}
