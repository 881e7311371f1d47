// Buffer snapshot files (buffers/{ded,abd,ind}.jsonl in a run folder and in the archive): a header line
// (format, version, task type, step, count), then one spec-4.8 entry (with its unique id) per line.
// Browser-safe.
import type { TaskEntry, TaskType } from '../selfplay/types.ts';
import { CorruptDataError } from './errors.ts';
import {
  BUFFER_FORMAT,
  BUFFER_FORMAT_VERSION,
  checkFormat,
  fromUtf8,
  parseJsonl,
  toJsonl,
  utf8,
} from './format.ts';

export function encodeBufferFile(type: TaskType, step: number, entries: readonly TaskEntry[]): Uint8Array {
  const header = {
    format: BUFFER_FORMAT,
    formatVersion: BUFFER_FORMAT_VERSION,
    type,
    step,
    count: entries.length,
  };
  return utf8(toJsonl([header, ...entries]));
}

export function parseBufferFile(bytes: Uint8Array, what: string): TaskEntry[] {
  const [header, ...entries] = parseJsonl<Record<string, unknown>>(fromUtf8(bytes, what), what);
  checkFormat(header, BUFFER_FORMAT, BUFFER_FORMAT_VERSION, what);
  if (header.count !== entries.length) {
    throw new CorruptDataError(
      `${what}: header says ${String(header.count)} entries, file has ${entries.length}`,
    );
  }
  return entries as unknown as TaskEntry[];
}
