// The run folder's files and how they are committed (Node only).
//
// run.json is the commit record. It holds the run's metadata and step counter, the committed byte length
// of each append-only file (steps/samples/evals.jsonl) and the length + SHA-256 of each snapshot file
// (buffers/*.jsonl, seed.jsonl). A commit (1) appends to the JSONL files at their committed lengths and
// fsyncs, (2) writes new snapshot files as `<name>.next` and fsyncs, (3) replaces run.json atomically
// (temp, fsync, rename, fsync dir) — the commit point — and then (4) renames the `.next` files into
// place. A crash before (3) leaves bytes past the committed lengths and stray `.next` files, which
// readers ignore and the next writer removes; a crash after (3) leaves `.next` files that match run.json,
// which readers accept and the next writer renames. So a SIGKILL anywhere leaves the last commit intact.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { TaskType } from '../selfplay/types.ts';
import { CorruptDataError } from './errors.ts';
import {
  RUN_FORMAT,
  RUN_FORMAT_VERSION,
  checkFormat,
  isJsonObject,
  fromUtf8,
  parseJson,
  sha256Hex,
  utf8,
} from './format.ts';
import { exists, fileSize, readPrefix, type NodeFs } from './node-fs.ts';
import { runHeadProblems, upgradeRunHead, type RunHead } from './run-writer.ts';
import type { RunMeta } from './types.ts';

export const RUN_JSON = 'run.json';
export const APPEND_FILES = ['steps.jsonl', 'samples.jsonl', 'evals.jsonl'] as const;
export type AppendFile = (typeof APPEND_FILES)[number];
export const BUFFER_SNAPSHOT_FILES: Record<TaskType, SnapshotFile> = {
  ded: 'buffers/ded.jsonl',
  abd: 'buffers/abd.jsonl',
  ind: 'buffers/ind.jsonl',
};
export const SEED_FILE = 'seed.jsonl';
export const SNAPSHOT_FILES = [
  'buffers/ded.jsonl',
  'buffers/abd.jsonl',
  'buffers/ind.jsonl',
  'seed.jsonl',
] as const;
export type SnapshotFile = (typeof SNAPSHOT_FILES)[number];
export const CHECKPOINT_DIR = 'checkpoints';
const NEXT = '.next';

export interface SnapshotRef {
  bytes: number;
  sha256: string;
}

/** run.json: the run's head plus what is committed. */
export interface RunJson extends RunHead {
  format: typeof RUN_FORMAT;
  files: Record<AppendFile, number>;
  snapshots: Record<SnapshotFile, SnapshotRef | null>;
}

export function metaOf(run: RunJson): RunMeta {
  const { format: _f, runState: _r, files: _fi, snapshots: _s, ...meta } = run;
  return meta;
}

/** What to do about a damaged run.json (the end of its message). */
export const DAMAGED_RUN_JSON_ACTION =
  'so TabZero cannot open the run: restore run.json from a backup (or import the run from an archive), ' +
  'or start a new run in another folder.';

/** run.json's commit record (files, snapshots) where it is missing or of the wrong type. */
function commitRecordProblems(value: Record<string, unknown>): string[] {
  const bad: string[] = [];
  const files = value.files;
  const count = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!isJsonObject(files) || APPEND_FILES.some((name) => !count(files[name]))) bad.push('files');
  const snapshots = value.snapshots;
  const refOk = (r: unknown) =>
    r === null || (isJsonObject(r) && count(r.bytes) && typeof r.sha256 === 'string');
  if (!isJsonObject(snapshots) || SNAPSHOT_FILES.some((name) => !refOk(snapshots[name])))
    bad.push('snapshots');
  return bad;
}

/**
 * Reads and checks run.json: a newer format is refused by checkFormat; text that is not JSON, not an
 * object, or lacks what the store relies on is a CorruptDataError that says so and what to do.
 */
export async function readRunJson(dir: string): Promise<RunJson> {
  const file = path.join(dir, RUN_JSON);
  const text = await fsp.readFile(file, 'utf8');
  const damaged = (problem: string) =>
    new CorruptDataError(`${file} is damaged (${problem}), ${DAMAGED_RUN_JSON_ACTION}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw damaged(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isJsonObject(value)) throw damaged('not a JSON object');
  checkFormat(value, RUN_FORMAT, RUN_FORMAT_VERSION, file);
  // Version 1 is the only one so far; older versions would be migrated here.
  const bad = [...runHeadProblems(value), ...commitRecordProblems(value)];
  if (bad.length) throw damaged(`${bad.join(', ')} missing or of the wrong type`);
  return upgradeRunHead(value as unknown as RunJson);
}

export async function snapshotRef(bytes: Uint8Array): Promise<SnapshotRef> {
  return { bytes: bytes.byteLength, sha256: await sha256Hex(bytes) };
}

async function matches(file: string, ref: SnapshotRef): Promise<Uint8Array | null> {
  const size = await fileSize(file);
  if (size !== ref.bytes) return null;
  let bytes: Uint8Array;
  try {
    bytes = await readPrefix(file, size);
  } catch (err) {
    // Renamed away by a writer between the two calls (or cut): not this one.
    if ((err as { code?: string }).code === 'ENOENT' || err instanceof CorruptDataError) return null;
    throw err;
  }
  return (await sha256Hex(bytes)) === ref.sha256 ? bytes : null;
}

/** The committed content of a snapshot file: the file itself or its `.next` (committed, not yet renamed). */
export async function readSnapshot(
  dir: string,
  name: SnapshotFile,
  ref: SnapshotRef | null,
): Promise<Uint8Array | null> {
  if (!ref) return null;
  const file = path.join(dir, name);
  // `.next` first: a writer renames it over the file, so if it is gone by then, the file has its content.
  const bytes = (await matches(file + NEXT, ref)) ?? (await matches(file, ref));
  if (!bytes) {
    throw new CorruptDataError(
      `${file}: does not match the ${ref.bytes} bytes and SHA-256 that run.json committed (edited or damaged?)`,
    );
  }
  return bytes;
}

/** The committed part of an append-only file, as text (bytes past run.json's length are ignored). */
export async function readAppendFile(dir: string, run: RunJson, name: AppendFile): Promise<string> {
  const file = path.join(dir, name);
  return fromUtf8(await readPrefix(file, run.files[name]), file);
}

export interface CommitChanges {
  appends?: Partial<Record<AppendFile, Uint8Array>>;
  /** New content of snapshot files; null removes one. */
  snapshots?: Partial<Record<SnapshotFile, Uint8Array | null>>;
  /** Shrinks append files (rollback): new committed lengths. */
  truncate?: Partial<Record<AppendFile, number>>;
}

/** Makes `next` (the new run.json) durable together with `changes`. Returns the committed run.json. */
export async function commitRun(
  fs: NodeFs,
  dir: string,
  prev: RunJson,
  next: RunJson,
  changes: CommitChanges,
): Promise<RunJson> {
  const committed: RunJson = {
    ...next,
    files: { ...prev.files, ...changes.truncate },
    snapshots: { ...prev.snapshots },
  };
  for (const name of APPEND_FILES) {
    const data = changes.appends?.[name];
    if (!data || data.byteLength === 0) continue;
    await fs.appendAt(path.join(dir, name), committed.files[name], data);
    committed.files[name] += data.byteLength;
  }
  const renames: SnapshotFile[] = [];
  for (const name of SNAPSHOT_FILES) {
    const data = changes.snapshots?.[name];
    if (data === undefined) continue;
    if (data === null) {
      committed.snapshots[name] = null;
      continue;
    }
    const ref = await snapshotRef(data);
    const cur = prev.snapshots[name];
    if (cur && cur.sha256 === ref.sha256 && cur.bytes === ref.bytes) continue;
    await fs.mkdir(path.dirname(path.join(dir, name)));
    await fs.writeFile(path.join(dir, name + NEXT), data);
    committed.snapshots[name] = ref;
    renames.push(name);
  }
  if (renames.length) {
    for (const d of new Set(renames.map((n) => path.dirname(path.join(dir, n))))) await fs.syncDir(d);
  }
  await fs.replaceFile(path.join(dir, RUN_JSON), JSON.stringify(committed, null, 1));
  return committed;
}

/**
 * After a commit (or on opening a run as its writer): rename committed `.next` files into place, remove
 * uncommitted ones and snapshots that were dropped, cut append files to their committed lengths.
 */
export async function settleRun(fs: NodeFs, dir: string, run: RunJson): Promise<void> {
  for (const name of SNAPSHOT_FILES) {
    const file = path.join(dir, name);
    const ref = run.snapshots[name];
    if (!ref) {
      if (await exists(file + NEXT)) await fs.remove(file + NEXT);
      if (await exists(file)) await fs.remove(file);
      continue;
    }
    if (await exists(file + NEXT)) {
      if (await matches(file + NEXT, ref)) {
        await fs.rename(file + NEXT, file);
        await fs.syncDir(path.dirname(file));
      } else {
        await fs.remove(file + NEXT);
      }
    }
    if (!(await matches(file, ref))) {
      throw new CorruptDataError(`${file}: does not match what run.json committed (edited or damaged?)`);
    }
  }
  for (const name of APPEND_FILES) {
    const file = path.join(dir, name);
    const size = await fileSize(file);
    const want = run.files[name];
    if (size === null && want === 0) continue;
    if (size === null || size < want) {
      throw new CorruptDataError(`${file}: ${size ?? 'missing'} bytes on disk, ${want} committed`);
    }
    if (size > want) await fs.truncate(file, want);
  }
  const tmp = path.join(dir, RUN_JSON + '.tmp');
  if (await exists(tmp)) await fs.remove(tmp);
}

/** Byte length of the lines of `text` whose `step` ≤ `maxStep` (lines are in step order), and how many follow. */
export function cutAfterStep(
  text: string,
  maxStep: number,
  what: string,
): { bytes: number; removed: number } {
  let bytes = 0;
  let removed = 0;
  let cut = false;
  let line = 0;
  for (const s of text.split('\n')) {
    line++;
    if (s === '') continue;
    if (!cut) {
      const step = (parseJson(s, `${what} line ${line}`) as { step?: unknown }).step;
      if (typeof step !== 'number') throw new CorruptDataError(`${what} line ${line}: no step`);
      if (step > maxStep) cut = true;
      else bytes += utf8(s).byteLength + 1;
    }
    if (cut) removed++;
  }
  return { bytes, removed };
}
