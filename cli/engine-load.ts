// Shared by the commands that load a model (generate, logits, bench, train, eval, export): a model folder onto
// a Dawn device (or as reference f32 arrays for `--backend cpu`) with its progress on stderr.
import { Engine, type EngineOptions } from '../src/engine/engine.ts';
import type { WeightDType } from '../src/engine/kernels/weights-wgsl.ts';
import { acquireNodeDevice } from '../src/engine/node-gpu.ts';
import type { RefWeights } from '../src/engine/reference/qwen2.ts';
import { decodeFloats, type FloatDType } from '../src/model/dtype.ts';
import { loadModelFolder, type LoadedModel } from '../src/model/model-folder.ts';
import { nodeFolderSource } from '../src/model/node-folder.ts';

const openSources: { close(): Promise<void> }[] = [];

/** Loads a model folder; its files stay open (weights are read on demand) until closeFolders(). */
export async function loadFolder(dir: string): Promise<LoadedModel> {
  const source = nodeFolderSource(dir);
  openSources.push(source);
  return loadModelFolder(source);
}

export async function closeFolders(): Promise<void> {
  await Promise.all(openSources.splice(0).map((s) => s.close()));
}

export function parseBackend(v: string | undefined): 'webgpu' | 'cpu' {
  const b = v ?? 'webgpu';
  if (b !== 'webgpu' && b !== 'cpu') throw new Error(`--backend must be webgpu or cpu, not "${b}"`);
  return b;
}

export function parseWeightDType(v: string | undefined): WeightDType | undefined {
  if (v === undefined) return undefined;
  if (v !== 'f32' && v !== 'f16' && v !== 'bf16')
    throw new Error(`--dtype must be f32, f16 or bf16, not "${v}"`);
  return v;
}

export function parseIntArg(name: string, v: string | undefined, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, not "${v}"`);
  return n;
}

export function parseNumberArg(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not "${v}"`);
  return n;
}

export async function loadEngine(
  model: LoadedModel,
  opts: Pick<EngineOptions, 'maxBatch' | 'maxSeqLen' | 'dtype' | 'loraDecode'> & { dawnOptions?: string[] },
): Promise<Engine> {
  const { dawnOptions, ...engineOpts } = opts;
  const ctx = await acquireNodeDevice({ dawnOptions });
  // On a terminal one line counts up in place; piped, one line when the weights are on the device.
  const tty = process.stderr.isTTY;
  let tensors = 0;
  const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
    ...engineOpts,
    onProgress: (done, total) => {
      tensors = total;
      if (tty) process.stderr.write(`\r\x1b[Kloading weights ${done}/${total}`);
    },
  }).finally(() => tty && process.stderr.write('\n'));
  if (!tty) process.stderr.write(`loaded ${tensors} weight tensors onto the GPU\n`);
  return engine;
}

export async function referenceWeights(model: LoadedModel): Promise<RefWeights> {
  const out: RefWeights = {};
  for (const t of model.weights.tensors) {
    out[t.name] = decodeFloats(await model.weights.read(t.name), t.dtype as FloatDType);
  }
  return out;
}
