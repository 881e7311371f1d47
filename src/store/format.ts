// Format names and versions of everything the store writes, and the one check that refuses files from a
// newer TabZero with a message saying so. Plus the small encoders every backend shares. Browser-safe.
import { CorruptDataError, FormatVersionError } from './errors.ts';

/** Run folder (run.json and its JSONL files) and the IndexedDB `runs` record. */
export const RUN_FORMAT = 'tabzero-run';
export const RUN_FORMAT_VERSION = 1;
/** Checkpoint manifests (checkpoint.json / the `checkpoints` record). */
export const CHECKPOINT_FORMAT = 'tabzero-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;
/** Buffer snapshot files (header line of buffers/*.jsonl). */
export const BUFFER_FORMAT = 'tabzero-buffer';
export const BUFFER_FORMAT_VERSION = 1;
/** Seed sets (header line of seed.jsonl and of exported seed sets). */
export const SEED_SET_FORMAT = 'tabzero-seed-set';
export const SEED_SET_FORMAT_VERSION = 1;
/** Run archives (tabzero-archive.json inside the archive). */
export const ARCHIVE_FORMAT = 'tabzero-archive';
export const ARCHIVE_FORMAT_VERSION = 1;

/**
 * Checks `{format, formatVersion}` of a parsed header. Returns the version (older supported versions are
 * the caller's to migrate); refuses unknown formats and versions newer than `current`.
 */
export function checkFormat(header: unknown, format: string, current: number, what: string): number {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CorruptDataError(`${what}: not a ${format} header (expected a JSON object)`);
  }
  const h = header as { format?: unknown; formatVersion?: unknown };
  if (h.format !== format) {
    throw new FormatVersionError(
      `${what}: format is ${JSON.stringify(h.format)}, expected "${format}" (not a TabZero file of this kind)`,
    );
  }
  const v = h.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new FormatVersionError(`${what}: format version ${JSON.stringify(v)} is not a positive integer`);
  }
  if (v > current) {
    throw new FormatVersionError(
      `${what}: written by a newer TabZero (${format} format version ${v}; this TabZero reads up to ${current}). ` +
        'Update TabZero to open it.',
    );
  }
  return v;
}

/** A parsed JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new CorruptDataError(`${what}: not valid UTF-8`);
  }
}

export function jsonBytes(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CorruptDataError(`${what}: invalid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** One JSON value per line, each line ending in "\n". */
export function toJsonl(rows: readonly unknown[]): string {
  let out = '';
  for (const r of rows) out += JSON.stringify(r) + '\n';
  return out;
}

/** Parses complete lines; a final line without "\n" is a torn write and is an error here (callers cut first). */
export function parseJsonl<T>(text: string, what: string): T[] {
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new CorruptDataError(`${what}: last line is incomplete (torn write)`);
  }
  const rows: T[] = [];
  let line = 0;
  for (const s of text.split('\n')) {
    line++;
    if (s === '') continue;
    rows.push(parseJson(s, `${what} line ${line}`) as T);
  }
  return rows;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function nowIso(): string {
  return new Date().toISOString();
}
