// Random-access byte sources: how every reader in src/model sees a file, so the same code reads a
// browser File/Blob, an OPFS file, bytes in memory or (node-folder.ts) a Node file handle, without ever
// holding a whole 988 MB file in one JS array. Browser-safe.

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Bytes [offset, offset + length). Rejects when the range is outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases an underlying handle (Node files); absent where there is nothing to release. */
  close?(): Promise<void>;
}

function checkRange(size: number, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${what}: bad byte range ${offset}+${length}`);
  }
  if (offset + length > size) {
    throw new RangeError(`${what}: byte range ${offset}..${offset + length} is past the end (${size} bytes)`);
  }
}

/** A Blob or File (the browser's file picker, drag and drop, OPFS `getFile()`, `Response.blob()`). */
export function blobSource(blob: Blob, what = 'blob'): ByteSource {
  return {
    size: blob.size,
    async read(offset, length) {
      checkRange(blob.size, offset, length, what);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

export function bytesSource(bytes: Uint8Array, what = 'bytes'): ByteSource {
  return {
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange(bytes.byteLength, offset, length, what);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A fetch Response, fully received first (as a Blob, which browsers keep on disk when large). */
export async function responseSource(
  response: Response,
  what = response.url || 'response',
): Promise<ByteSource> {
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${response.statusText}`);
  return blobSource(await response.blob(), what);
}

/** Default chunk for streaming reads: large enough to be efficient, small enough to stay off the heap. */
export const STREAM_CHUNK_BYTES = 8 << 20;

/** Bytes [offset, offset+length) in chunks of at most `chunkBytes`. */
export async function* readChunks(
  source: ByteSource,
  offset = 0,
  length = source.size - offset,
  chunkBytes = STREAM_CHUNK_BYTES,
): AsyncGenerator<Uint8Array> {
  for (let pos = 0; pos < length; pos += chunkBytes) {
    yield await source.read(offset + pos, Math.min(chunkBytes, length - pos));
  }
}

export async function readText(source: ByteSource): Promise<string> {
  return new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size));
}
