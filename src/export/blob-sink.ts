// A ByteSink that ends as a Blob: how the browser turns an export (a ZipWriter's output) into one
// download. Chunks are folded into a Blob every FOLD_BYTES, which lets the browser move a large
// export (the merged f32 model is ~2 GB) out of the JS heap onto its own Blob storage. Browser-safe
// (Node ≥ 18 has Blob too, which the tests use).

import type { ByteSink } from '../model/safetensors-write.ts';

/** Pending chunk bytes before they are folded into the Blob. */
const FOLD_BYTES = 64 << 20;

export interface BlobSink extends ByteSink {
  /** The finished Blob; throws before `close()`. */
  blob(): Blob;
}

export function blobSink(type = 'application/zip'): BlobSink {
  let folded = new Blob([], { type });
  let pending: Uint8Array<ArrayBuffer>[] = [];
  let pendingBytes = 0;
  let done: Blob | null = null;
  const fold = () => {
    folded = new Blob([folded, ...pending], { type });
    pending = [];
    pendingBytes = 0;
  };
  return {
    async write(chunk) {
      if (done) throw new Error('blob sink: already closed');
      // Copy: callers may reuse their chunk buffers after write resolves.
      pending.push(new Uint8Array(chunk));
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= FOLD_BYTES) fold();
    },
    async close() {
      if (done) return;
      fold();
      done = folded;
    },
    blob() {
      if (!done) throw new Error('blob sink: not closed yet');
      return done;
    },
  };
}
