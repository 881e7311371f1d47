// safetensors writer, streaming: the header is planned from names, dtypes and shapes alone, then the
// tensors are written one after another in that order, so a generator can produce a 988 MB file in
// bounded memory. Files carry `__metadata__.format = "pt"` because Python transformers refuses
// safetensors checkpoints without it. Browser-safe.

import { DTYPE_BYTES, type DType } from './dtype.ts';

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

export interface SafetensorsPlan {
  /** The 8-byte length prefix plus the space-padded JSON header. */
  headerBytes: Uint8Array;
  /** Tensors in the order their data must be written, with byte lengths. */
  tensors: { spec: TensorSpec; byteLength: number }[];
  /** Total file size. */
  fileSize: number;
}

/** Header alignment: the Rust crate pads the JSON with spaces to a multiple of 8 so data is aligned. */
const HEADER_ALIGN = 8;

export function tensorByteLength(spec: TensorSpec): number {
  return spec.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[spec.dtype];
}

export function planSafetensors(
  specs: readonly TensorSpec[],
  metadata: Record<string, string> = {},
): SafetensorsPlan {
  const seen = new Set<string>();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  const tensors = specs.map((spec) => {
    if (seen.has(spec.name)) throw new Error(`safetensors writer: tensor "${spec.name}" listed twice`);
    if (spec.name === '__metadata__')
      throw new Error('safetensors writer: "__metadata__" is not a tensor name');
    seen.add(spec.name);
    const byteLength = tensorByteLength(spec);
    header[spec.name] = {
      dtype: spec.dtype,
      shape: [...spec.shape],
      data_offsets: [offset, offset + byteLength],
    };
    offset += byteLength;
    return { spec, byteLength };
  });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / HEADER_ALIGN) * HEADER_ALIGN;
  const headerBytes = new Uint8Array(8 + padded).fill(0x20);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(padded), true);
  headerBytes.set(json, 8);
  return { headerBytes, tensors, fileSize: headerBytes.byteLength + offset };
}

/** Where a writer puts bytes: a Node write stream, an OPFS writable, an in-memory list of chunks. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/**
 * Writes a whole safetensors file to `sink`. `produce(spec)` yields each tensor's bytes in any chunking;
 * the total must equal the planned length (checked, so a generator bug cannot write a corrupt file).
 */
export async function writeSafetensors(
  sink: ByteSink,
  specs: readonly TensorSpec[],
  produce: (spec: TensorSpec) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  metadata: Record<string, string> = {},
): Promise<SafetensorsPlan> {
  const plan = planSafetensors(specs, metadata);
  await sink.write(plan.headerBytes);
  for (const { spec, byteLength } of plan.tensors) {
    let written = 0;
    for await (const chunk of produce(spec)) {
      written += chunk.byteLength;
      if (written > byteLength)
        throw new Error(`safetensors writer: tensor "${spec.name}" got more than ${byteLength} bytes`);
      await sink.write(chunk);
    }
    if (written !== byteLength)
      throw new Error(`safetensors writer: tensor "${spec.name}" got ${written} of ${byteLength} bytes`);
  }
  await sink.close();
  return plan;
}

/** A sink that collects everything in memory (small files, tests, the browser's built-in tiny model). */
export function memorySink(): ByteSink & { chunks: Uint8Array[]; bytes(): Uint8Array; closed: boolean } {
  const chunks: Uint8Array[] = [];
  const sink = {
    chunks,
    closed: false,
    async write(chunk: Uint8Array) {
      chunks.push(chunk.slice());
    },
    async close() {
      sink.closed = true;
    },
    bytes() {
      const total = chunks.reduce((n, c) => n + c.byteLength, 0);
      const out = new Uint8Array(total);
      let pos = 0;
      for (const c of chunks) {
        out.set(c, pos);
        pos += c.byteLength;
      }
      return out;
    },
  };
  return sink;
}

/** Small-file convenience: tensors given as bytes, whole file returned as bytes. */
export async function encodeSafetensors(
  tensors: readonly (TensorSpec & { data: Uint8Array })[],
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const sink = memorySink();
  const data = new Map(tensors.map((t) => [t.name, t.data]));
  await writeSafetensors(sink, tensors, (spec) => [data.get(spec.name)!], metadata);
  return sink.bytes();
}
