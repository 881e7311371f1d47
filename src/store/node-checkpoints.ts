// Checkpoint folders in a run folder (Node only): checkpoints/step-00000012/ holds weights.safetensors,
// state.json and checkpoint.json (the manifest with lengths and SHA-256s). A checkpoint is written into a
// temporary folder, fsynced, and renamed into place in one step, so a half-written one never looks like
// a checkpoint; pruning and replacing move folders aside before deleting them, for the same reason.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { decodeCheckpoint, checkpointManifestJson, parseCheckpointManifest } from './checkpoint-codec.ts';
import { CorruptDataError, errorText } from './errors.ts';
import { parseJson } from './format.ts';
import { exists, type NodeFs } from './node-fs.ts';
import { CHECKPOINT_DIR } from './node-run-folder.ts';
import type { CheckpointBlob, CheckpointInfo, LoadedCheckpoint } from './types.ts';

const WEIGHTS = 'weights.safetensors';
const STATE = 'state.json';
const MANIFEST = 'checkpoint.json';
const STEP_DIR = /^step-(\d{8,})$/;

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Steps of the checkpoint folders present, ascending (not verified). */
export async function checkpointSteps(runDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(path.join(runDir, CHECKPOINT_DIR));
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((n) => STEP_DIR.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export async function readCheckpointInfo(runDir: string, step: number): Promise<CheckpointInfo> {
  const file = path.join(runDir, CHECKPOINT_DIR, checkpointDirName(step), MANIFEST);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new CorruptDataError(`${file}: cannot read the manifest (${errorText(err)})`);
  }
  return parseCheckpointManifest(parseJson(text, file), file);
}

/** The checkpoint's bytes as stored (not verified). */
export async function readCheckpointBlob(runDir: string, step: number): Promise<CheckpointBlob> {
  const dir = path.join(runDir, CHECKPOINT_DIR, checkpointDirName(step));
  const info = await readCheckpointInfo(runDir, step);
  try {
    const weights = new Uint8Array(await fsp.readFile(path.join(dir, WEIGHTS)));
    const state = new Uint8Array(await fsp.readFile(path.join(dir, STATE)));
    return { info, weights, state };
  } catch (err) {
    throw new CorruptDataError(`${dir}: cannot read the checkpoint (${errorText(err)})`);
  }
}

export async function loadCheckpointDir(runDir: string, step: number): Promise<LoadedCheckpoint> {
  const blob = await readCheckpointBlob(runDir, step);
  return decodeCheckpoint(blob, path.join(runDir, CHECKPOINT_DIR, checkpointDirName(step)));
}

/** Moves a folder aside, then deletes it: a half-deleted checkpoint must not look like one. */
export async function removeCheckpointDir(fs: NodeFs, runDir: string, step: number): Promise<void> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const dir = path.join(root, checkpointDirName(step));
  if (!(await exists(dir))) return;
  const trash = path.join(root, `.trash-${checkpointDirName(step)}-${Date.now()}`);
  await fs.rename(dir, trash);
  await fs.syncDir(root);
  await fs.remove(trash);
}

/** Writes a checkpoint folder atomically. A valid checkpoint at the same step is kept (same step, same state). */
export async function writeCheckpointDir(
  fs: NodeFs,
  runDir: string,
  blob: CheckpointBlob,
): Promise<CheckpointInfo> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const step = blob.info.step;
  const final = path.join(root, checkpointDirName(step));
  if (await exists(final)) {
    try {
      const existing = await loadCheckpointDir(runDir, step);
      return existing.info;
    } catch {
      await removeCheckpointDir(fs, runDir, step);
    }
  }
  const tmp = path.join(root, `.tmp-${checkpointDirName(step)}-${process.pid}-${Date.now()}`);
  try {
    await fs.mkdir(tmp);
    await fs.writeFile(path.join(tmp, WEIGHTS), blob.weights);
    await fs.writeFile(path.join(tmp, STATE), blob.state);
    await fs.writeFile(path.join(tmp, MANIFEST), JSON.stringify(checkpointManifestJson(blob.info), null, 1));
    await fs.syncDir(tmp);
    await fs.rename(tmp, final);
    await fs.syncDir(root);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return blob.info;
}

/** Removes leftovers of interrupted checkpoint writes and deletions. */
export async function cleanCheckpointLeftovers(fs: NodeFs, runDir: string): Promise<void> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return;
  }
  for (const n of names)
    if (n.startsWith('.tmp-') || n.startsWith('.trash-')) await fs.remove(path.join(root, n));
}
