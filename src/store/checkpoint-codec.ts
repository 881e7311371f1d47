// Checkpoint bytes, shared by both backends: the tensors as one safetensors file (f32, the format the
// model exporters already read), the runner + engine state as JSON, and a manifest recording each
// part's length and SHA-256 so a corrupt or truncated checkpoint is detected at load. Browser-safe.
import { bytesSource } from '../model/byte-source.ts';
import { openSafetensors } from '../model/safetensors-read.ts';
import { encodeSafetensors } from '../model/safetensors-write.ts';
import type { RunnerState } from '../selfplay/types.ts';
import { CorruptDataError, errorText } from './errors.ts';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  checkFormat,
  fromUtf8,
  jsonBytes,
  nowIso,
  parseJson,
  sha256Hex,
} from './format.ts';
import type {
  CheckpointBlob,
  CheckpointInfo,
  CheckpointInput,
  CheckpointState,
  CheckpointTensor,
  LoadedCheckpoint,
  RunMeta,
} from './types.ts';

export async function encodeCheckpoint(
  meta: RunMeta,
  input: CheckpointInput,
  runnerState: RunnerState | null,
): Promise<CheckpointBlob> {
  for (const t of input.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(
        `checkpoint tensor "${t.name}": shape [${t.shape}] needs ${n} values, got ${t.data.length}`,
      );
    }
  }
  const weights = await encodeSafetensors(
    input.tensors.map((t) => ({
      name: t.name,
      dtype: 'F32' as const,
      shape: t.shape,
      data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    })),
    { 'tabzero.format': CHECKPOINT_FORMAT, 'tabzero.run': meta.id, 'tabzero.step': String(input.step) },
  );
  const stateValue: CheckpointState = { runnerState, engineState: input.engineState ?? null };
  const state = jsonBytes(stateValue);
  const info: CheckpointInfo = {
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    runId: meta.id,
    step: input.step,
    createdAt: nowIso(),
    reason: input.reason,
    model: meta.model,
    seed: meta.seed,
    weightsBytes: weights.byteLength,
    weightsSha256: await sha256Hex(weights),
    stateBytes: state.byteLength,
    stateSha256: await sha256Hex(state),
  };
  return { info, weights, state };
}

/** The manifest as written (with its format tag), and back. */
export function checkpointManifestJson(info: CheckpointInfo): Record<string, unknown> {
  return { format: CHECKPOINT_FORMAT, ...info };
}

export function parseCheckpointManifest(value: unknown, what: string): CheckpointInfo {
  checkFormat(value, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, what);
  const { format: _format, ...info } = value as Record<string, unknown>;
  const i = info as unknown as CheckpointInfo;
  if (
    typeof i.step !== 'number' ||
    typeof i.weightsSha256 !== 'string' ||
    typeof i.stateSha256 !== 'string' ||
    typeof i.weightsBytes !== 'number' ||
    typeof i.stateBytes !== 'number'
  ) {
    throw new CorruptDataError(`${what}: manifest lacks step, lengths or hashes`);
  }
  return i;
}

/** Verifies lengths and hashes, then decodes. Throws CorruptDataError naming what failed. */
export async function decodeCheckpoint(blob: CheckpointBlob, what: string): Promise<LoadedCheckpoint> {
  const { info } = blob;
  if (blob.weights.byteLength !== info.weightsBytes) {
    throw new CorruptDataError(
      `${what}: weights are ${blob.weights.byteLength} bytes, ${info.weightsBytes} were written (truncated?)`,
    );
  }
  if (blob.state.byteLength !== info.stateBytes) {
    throw new CorruptDataError(
      `${what}: state is ${blob.state.byteLength} bytes, ${info.stateBytes} were written (truncated?)`,
    );
  }
  if ((await sha256Hex(blob.weights)) !== info.weightsSha256) {
    throw new CorruptDataError(`${what}: weights fail their SHA-256 check`);
  }
  if ((await sha256Hex(blob.state)) !== info.stateSha256) {
    throw new CorruptDataError(`${what}: state fails its SHA-256 check`);
  }
  const state = parseJson(fromUtf8(blob.state, what), `${what} state`) as CheckpointState;
  let tensors: CheckpointTensor[];
  try {
    const file = await openSafetensors(bytesSource(blob.weights), `${what} weights`);
    tensors = [];
    for (const t of file.tensors) {
      if (t.dtype !== 'F32') throw new CorruptDataError(`${what}: tensor "${t.name}" is ${t.dtype}, not F32`);
      const bytes = (await file.read(t.name)).slice();
      tensors.push({ name: t.name, shape: t.shape, data: new Float32Array(bytes.buffer) });
    }
  } catch (err) {
    if (err instanceof CorruptDataError) throw err;
    throw new CorruptDataError(`${what}: ${errorText(err)}`);
  }
  return { info, tensors, runnerState: state.runnerState, engineState: state.engineState };
}
