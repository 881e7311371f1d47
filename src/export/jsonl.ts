// Export (c): task buffers and samples as JSONL — one JSON object per line, no header line, so
// `pandas.read_json(lines=True)` and `datasets.load_dataset("json")` read them as they are; the
// provenance goes in tabzero.json beside them. Rows are written as they come (sync or async
// iterables) in chunks of about CHUNK_BYTES, so a long run's samples never sit in memory as one
// string. Browser-safe.

import type { FolderSink } from '../model/model-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';
import type { GenerationRecord } from '../selfplay/types.ts';
import { TASK_TYPES, type TaskEntry, type TaskType } from '../selfplay/types.ts';
import { buildManifest, MANIFEST_FILE, manifestJson, type ExportProvenance } from './manifest.ts';

/** Lines are gathered into chunks of about this many characters before each write. */
const CHUNK_CHARS = 1 << 20;

export const BUFFER_FILES: Readonly<Record<TaskType, string>> = {
  ded: 'buffers/ded.jsonl',
  abd: 'buffers/abd.jsonl',
  ind: 'buffers/ind.jsonl',
};
export const SAMPLES_FILE = 'samples.jsonl';

/**
 * A buffer entry as one JSONL object: spec 4.8's fields first (id, program, arity, inputs, outputs,
 * message, step), then the rest TabZero keeps (type, closed expressions, operator count, seed flag, origin).
 */
export interface BufferRow {
  id: string;
  type: TaskType;
  program: string;
  arity: number;
  inputs: number[][];
  outputs: number[];
  message?: string;
  step: number;
  seed: boolean;
  origin: TaskEntry['origin'];
  closed: string[];
  binaryOps: number;
}

export function bufferRow(e: TaskEntry): BufferRow {
  return {
    id: e.id,
    type: e.type,
    program: e.program,
    arity: e.arity,
    inputs: e.inputs,
    outputs: e.outputs,
    ...(e.message !== undefined ? { message: e.message } : {}),
    step: e.step,
    seed: e.seed,
    origin: e.origin,
    closed: e.closed,
    binaryOps: e.binaryOps,
  };
}

/** Writes rows as JSONL to `sink` and closes it; returns the number of lines. */
export async function writeJsonl<T>(
  sink: ByteSink,
  rows: Iterable<T> | AsyncIterable<T>,
  toRow: (r: T) => unknown = (r) => r,
): Promise<number> {
  const encoder = new TextEncoder();
  let pending = '';
  let lines = 0;
  for await (const r of rows) {
    const line = JSON.stringify(toRow(r));
    if (line === undefined) throw new Error('JSONL: a row has no JSON form');
    pending += line + '\n';
    lines++;
    if (pending.length >= CHUNK_CHARS) {
      await sink.write(encoder.encode(pending));
      pending = '';
    }
  }
  if (pending) await sink.write(encoder.encode(pending));
  await sink.close();
  return lines;
}

export interface JsonlExportData {
  /** The buffers as of the exported step (RunReader.buffers()). */
  buffers: Readonly<Record<TaskType, readonly TaskEntry[]>>;
  /** Generation records (RunReader.samples(), or any iterable of them). */
  samples: Iterable<GenerationRecord> | AsyncIterable<GenerationRecord>;
}

export interface JsonlExportResult {
  /** Lines per file written. */
  lines: Record<string, number>;
  files: string[];
}

/** Writes buffers/{ded,abd,ind}.jsonl, samples.jsonl and tabzero.json. */
export async function exportJsonl(
  data: JsonlExportData,
  provenance: ExportProvenance,
  out: FolderSink,
): Promise<JsonlExportResult> {
  const lines: Record<string, number> = {};
  for (const type of TASK_TYPES) {
    const file = BUFFER_FILES[type];
    lines[file] = await writeJsonl(await out.createFile(file), data.buffers[type] ?? [], bufferRow);
  }
  lines[SAMPLES_FILE] = await writeJsonl(await out.createFile(SAMPLES_FILE), data.samples);
  const files = Object.keys(lines);
  const manifest = buildManifest('jsonl', provenance, { lora: null, dtype: null, files });
  await out.writeFile(MANIFEST_FILE, manifestJson(manifest));
  return { lines, files: [...files, MANIFEST_FILE] };
}
