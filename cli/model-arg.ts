// `--model DIR|tiny` for the CLI: a model folder on disk, or the built-in tiny model (the folder
// `tabzero tiny-model --seed 0` writes), generated once into the user's cache.
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { nodeFolderSink, nodeFolderSource } from '../src/model/node-folder.ts';
import type { ModelSource } from '../src/model/model-source.ts';
import { loadQwen2TokenizerFiles } from '../src/model/node-qwen2-tokenizer.ts';
import { generateTinyModel } from '../src/model/tiny-model.ts';
import { TINY_DTYPE } from '../src/trainer/builtin-tiny.ts';

export const TINY_MODEL_ARG = 'tiny';

export function cacheDir(): string {
  return (
    process.env.TABZERO_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tabzero')
  );
}

/** The folder of the built-in tiny model, generated on first use. */
export async function tinyModelDir(seed = 0): Promise<string> {
  const dir = join(cacheDir(), 'models', `tiny-seed-${seed}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await generateTinyModel(await nodeFolderSink(tmp), {
      seed,
      tokenizerFiles: await loadQwen2TokenizerFiles(),
      tokenizerKind: 'qwen2',
      dtype: TINY_DTYPE,
    });

    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  return dir;
}

export async function resolveModelArg(arg: string): Promise<string> {
  if (arg === TINY_MODEL_ARG) return tinyModelDir(0);
  if (!existsSync(join(arg, 'config.json'))) {
    throw new Error(
      `--model ${arg}: not a model folder (no config.json); use a Hugging Face model folder or "tiny"`,
    );
  }
  return arg;
}

export async function openModelArg(arg: string): Promise<ModelSource & { close(): Promise<void> }> {
  return nodeFolderSource(await resolveModelArg(arg));
}
