// The run archive: one .tar file holding everything a run has — config and templates, runner state,
// metrics, samples, evals, buffers, seed set and the latest valid checkpoint — laid out like a run
// folder, with a manifest first (format version, and the length and SHA-256 of every other file).
// Both backends export it (RunReader.exportData) and import it (RunStore.importRun). Browser-safe.
//
//   tabzero-archive.json        {format, formatVersion, createdAt, exportedBy, runId, step, checkpointStep, files}
//   run.json                    {format: tabzero-run, formatVersion, ...RunMeta, runState}
//   steps.jsonl samples.jsonl evals.jsonl
//   seed.jsonl                  (when seeded)      buffers/{ded,abd,ind}.jsonl (when there is state)
//   checkpoint/checkpoint.json  checkpoint/weights.safetensors  checkpoint/state.json (when there is one)
import type { ByteSource } from '../model/byte-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';
import type { TaskType } from '../selfplay/types.ts';
import { encodeBufferFile, parseBufferFile } from './buffer-file.ts';
import { decodeCheckpoint, checkpointManifestJson, parseCheckpointManifest } from './checkpoint-codec.ts';
import { CorruptDataError } from './errors.ts';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_FORMAT_VERSION,
  RUN_FORMAT,
  RUN_FORMAT_VERSION,
  checkFormat,
  fromUtf8,
  nowIso,
  parseJson,
  parseJsonl,
  sha256Hex,
  toJsonl,
  utf8,
} from './format.ts';
import { BUFFER_TYPES, emptyBuffers, joinState, splitState, type RunnerStateRest } from './run-state.ts';
import { runHeadProblems, upgradeRunHead } from './run-writer.ts';
import { encodeSeedSet, parseSeedSet } from './seed-set.ts';
import { readTarIndex, writeTar } from './tar.ts';
import type { EvalRow, RunExport, RunMeta, SampleRow, StepRow } from './types.ts';

export const ARCHIVE_MANIFEST = 'tabzero-archive.json';
/** File name extension for run archives (a tar file). */
export const ARCHIVE_EXTENSION = '.tabzero.tar';

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  formatVersion: number;
  createdAt: string;
  /** The TabZero version that wrote the archive. */
  exportedBy: string;
  runId: string;
  step: number;
  checkpointStep: number | null;
  files: Record<string, { bytes: number; sha256: string }>;
}

function archiveFiles(data: RunExport): { name: string; data: Uint8Array }[] {
  const files: { name: string; data: Uint8Array }[] = [];
  const split = data.state ? splitState(data.state) : null;
  const run = {
    ...data.meta,
    format: RUN_FORMAT,
    formatVersion: RUN_FORMAT_VERSION,
    runState: split?.rest ?? null,
  };
  files.push({ name: 'run.json', data: utf8(JSON.stringify(run, null, 1)) });
  files.push({ name: 'steps.jsonl', data: utf8(toJsonl(data.steps)) });
  files.push({ name: 'samples.jsonl', data: utf8(toJsonl(data.samples)) });
  files.push({ name: 'evals.jsonl', data: utf8(toJsonl(data.evals)) });
  if (data.seedSet) files.push({ name: 'seed.jsonl', data: utf8(encodeSeedSet(data.seedSet)) });
  if (split) {
    for (const t of BUFFER_TYPES) {
      files.push({ name: `buffers/${t}.jsonl`, data: encodeBufferFile(t, data.meta.step, split.buffers[t]) });
    }
  }
  if (data.checkpoint) {
    const ck = data.checkpoint;
    files.push({
      name: 'checkpoint/checkpoint.json',
      data: utf8(JSON.stringify(checkpointManifestJson(ck.info), null, 1)),
    });
    files.push({ name: 'checkpoint/weights.safetensors', data: ck.weights });
    files.push({ name: 'checkpoint/state.json', data: ck.state });
  }
  return files;
}

/** Writes `data` as a run archive to `sink` (and closes it). `exportedBy`: this TabZero's version. */
export async function writeRunArchive(data: RunExport, sink: ByteSink, exportedBy: string): Promise<void> {
  const files = archiveFiles(data);
  const manifest: ArchiveManifest = {
    format: ARCHIVE_FORMAT,
    formatVersion: ARCHIVE_FORMAT_VERSION,
    createdAt: nowIso(),
    exportedBy,
    runId: data.meta.id,
    step: data.meta.step,
    checkpointStep: data.checkpoint?.info.step ?? null,
    files: {},
  };
  for (const f of files)
    manifest.files[f.name] = { bytes: f.data.byteLength, sha256: await sha256Hex(f.data) };
  await writeTar(sink, [{ name: ARCHIVE_MANIFEST, data: utf8(JSON.stringify(manifest, null, 1)) }, ...files]);
}

/** The archive as a Blob (browser downloads), without copying the parts into one array. */
export async function runArchiveBlob(data: RunExport, exportedBy: string): Promise<Blob> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  await writeRunArchive(
    data,
    {
      async write(chunk) {
        parts.push(chunk as Uint8Array<ArrayBuffer>);
      },
      async close() {},
    },
    exportedBy,
  );
  return new Blob(parts, { type: 'application/x-tar' });
}

/** Reads and verifies a run archive (every file's length and SHA-256, every format version). */
export async function readRunArchive(source: ByteSource, what = 'run archive'): Promise<RunExport> {
  const index = await readTarIndex(source, what);
  if (index[0]?.name !== ARCHIVE_MANIFEST) {
    throw new CorruptDataError(`${what}: not a TabZero run archive (no ${ARCHIVE_MANIFEST} at its start)`);
  }
  const read = async (name: string) => {
    const e = index.find((x) => x.name === name);
    if (!e) throw new CorruptDataError(`${what}: ${name} is missing`);
    return source.read(e.offset, e.size);
  };
  const manifest = parseJson(fromUtf8(await read(ARCHIVE_MANIFEST), what), `${what}: ${ARCHIVE_MANIFEST}`);
  checkFormat(manifest, ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, what);
  const m = manifest as ArchiveManifest;
  const files = new Map<string, Uint8Array>();
  for (const [name, ref] of Object.entries(m.files)) {
    const bytes = await read(name);
    if (bytes.byteLength !== ref.bytes || (await sha256Hex(bytes)) !== ref.sha256) {
      throw new CorruptDataError(`${what}: ${name} fails its length or SHA-256 check (damaged archive)`);
    }
    files.set(name, bytes);
  }
  const text = (name: string) => fromUtf8(files.get(name)!, `${what}: ${name}`);
  const need = (name: string) => {
    if (!files.has(name)) throw new CorruptDataError(`${what}: ${name} is missing`);
    return text(name);
  };

  const run = parseJson(need('run.json'), `${what}: run.json`);
  checkFormat(run, RUN_FORMAT, RUN_FORMAT_VERSION, `${what}: run.json`);
  const bad = runHeadProblems(run as Record<string, unknown>);
  if (bad.length)
    throw new CorruptDataError(
      `${what}: run.json lacks a valid ${bad.join(', ')} (not an archive as TabZero writes them): ` +
        'export the run again where it was trained.',
    );
  const {
    format: _f,
    runState,
    ...meta
  } = upgradeRunHead(run as RunMeta & { format: string; runState: RunnerStateRest | null });

  let state = null;
  if (runState) {
    const buffers = emptyBuffers();
    for (const t of BUFFER_TYPES as readonly TaskType[]) {
      buffers[t] = parseBufferFile(utf8(need(`buffers/${t}.jsonl`)), `${what}: buffers/${t}.jsonl`);
    }
    state = joinState(runState, buffers);
  }
  let checkpoint: RunExport['checkpoint'] = null;
  if (files.has('checkpoint/checkpoint.json')) {
    const info = parseCheckpointManifest(
      parseJson(text('checkpoint/checkpoint.json'), what),
      `${what}: checkpoint`,
    );
    const blob = {
      info,
      weights: files.get('checkpoint/weights.safetensors')!,
      state: files.get('checkpoint/state.json')!,
    };
    if (!blob.weights || !blob.state) throw new CorruptDataError(`${what}: checkpoint files are missing`);
    await decodeCheckpoint(blob, `${what}: checkpoint`);
    checkpoint = blob;
  }
  return {
    meta,
    state,
    steps: parseJsonl<StepRow>(need('steps.jsonl'), `${what}: steps.jsonl`),
    samples: parseJsonl<SampleRow>(need('samples.jsonl'), `${what}: samples.jsonl`),
    evals: parseJsonl<EvalRow>(need('evals.jsonl'), `${what}: evals.jsonl`),
    seedSet: files.has('seed.jsonl') ? parseSeedSet(text('seed.jsonl'), `${what}: seed.jsonl`) : null,
    checkpoint,
  };
}
